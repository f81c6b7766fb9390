package sources_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

func TestGenerateFibonacci(t *testing.T) {
	fib := sources.Generate(
		func() [2]int { return [2]int{0, 1} },
		func(s [2]int) (int, [2]int, error) {
			if s[0] > 20 {
				return 0, s, sources.Stop
			}
			return s[0], [2]int{s[1], s[0] + s[1]}, nil
		})
	for _, demand := range []int64{1, 4, flow.Unbounded} {
		r := newRecorder[int](t)
		r.onSubscribe = requestFirst[int](demand)
		r.onNext = func(r *recorder[int], i, _ int) {
			if int64(i+1)%demand == 0 {
				r.sub.Request(demand)
			}
		}
		fib.Subscribe(r)
		if diff := cmp.Diff(logOf([]int{0, 1, 1, 2, 3, 5, 8, 13}, "OnComplete"), r.Log()); diff != "" {
			t.Errorf("demand %d: (-want +got)\n%s", demand, diff)
		}
	}
}

// TestGenerateCalls counts the calls of init and next: init once per
// subscription at the first Request, next once per item requested, plus
// the call that ends the stream, and never after the end.
func TestGenerateCalls(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		end   error // what next returns at state 3
		drive func(*recorder[int])
		want  []string
		calls string // "init=…, next=…"
	}{
		{
			name:  "no request, no call",
			end:   sources.Stop,
			drive: func(r *recorder[int]) { r.sub.Cancel() },
			want:  logOf[int](nil),
			calls: "init=0 next=0",
		},
		{
			name:  "one next per item requested",
			end:   sources.Stop,
			drive: func(r *recorder[int]) { r.sub.Request(2) },
			want:  logOf(ints(0, 2)),
			calls: "init=1 next=2",
		},
		{
			name:  "Stop completes and discards its item",
			end:   sources.Stop,
			drive: func(r *recorder[int]) { r.sub.Request(10); r.sub.Request(10) },
			want:  logOf(ints(0, 3), "OnComplete"),
			calls: "init=1 next=4",
		},
		{
			name:  "an error wrapping Stop completes",
			end:   fmt.Errorf("done: %w", sources.Stop),
			drive: func(r *recorder[int]) { r.sub.Request(flow.Unbounded) },
			want:  logOf(ints(0, 3), "OnComplete"),
			calls: "init=1 next=4",
		},
		{
			name:  "another error fails the stream and discards its item",
			end:   boom,
			drive: func(r *recorder[int]) { r.sub.Request(10); r.sub.Request(10) },
			want:  logOf(ints(0, 3), "OnError(boom)"),
			calls: "init=1 next=4",
		},
		{
			name:  "cancel stops calling next",
			end:   sources.Stop,
			drive: func(r *recorder[int]) { r.sub.Request(1); r.sub.Cancel(); r.sub.Request(5) },
			want:  logOf(ints(0, 1)),
			calls: "init=1 next=1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inits, nexts := 0, 0
			pub := sources.Generate(
				func() int { inits++; return 0 },
				func(i int) (int, int, error) {
					nexts++
					if i == 3 {
						return 99, i, tt.end
					}
					return i, i + 1, nil
				})
			r := newRecorder[int](t)
			pub.Subscribe(r)
			tt.drive(r)
			if diff := cmp.Diff(tt.want, r.Log()); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if got := fmt.Sprintf("init=%d next=%d", inits, nexts); got != tt.calls {
				t.Errorf("calls: %s, want %s", got, tt.calls)
			}
			if tt.end == boom && r.Err() != boom {
				t.Errorf("OnError(%v), want the error next returned", r.Err())
			}
		})
	}
}

func TestGenerateStatePerSubscription(t *testing.T) {
	pub := countTo(3)
	a, b := newRecorder[int](t), newRecorder[int](t)
	pub.Subscribe(a)
	pub.Subscribe(b)
	a.sub.Request(2)
	b.sub.Request(4)
	a.sub.Request(2)
	want := logOf(ints(0, 3), "OnComplete")
	if diff := cmp.Diff(want, a.Log()); diff != "" {
		t.Errorf("first subscription (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(want, b.Log()); diff != "" {
		t.Errorf("second subscription (-want +got)\n%s", diff)
	}
}

func TestGeneratePanics(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		init  func() int
		next  func(int) (int, int, error)
		items []int
		value any
	}{
		{
			name:  "in init",
			init:  func() int { panic("init boom") },
			next:  func(i int) (int, int, error) { return i, i + 1, nil },
			value: "init boom",
		},
		{
			name: "in next",
			init: func() int { return 0 },
			next: func(i int) (int, int, error) {
				if i == 2 {
					panic(boom)
				}
				return i, i + 1, nil
			},
			items: ints(0, 2),
			value: boom,
		},
	}
	for _, tt := range tests {
		for _, demand := range []int64{1, flow.Unbounded} {
			t.Run(fmt.Sprintf("%s/demand %d", tt.name, demand), func(t *testing.T) {
				r := newRecorder[int](t)
				r.onSubscribe = requestFirst[int](demand)
				r.onNext = requestEach[int](1)
				sources.Generate(tt.init, tt.next).Subscribe(r)
				want := logOf(tt.items, fmt.Sprintf("OnError(sluice: panic: %v)", tt.value))
				if diff := cmp.Diff(want, r.Log()); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
				var pe *flow.PanicError
				if !errors.As(r.Err(), &pe) {
					t.Fatalf("OnError(%v), want a *flow.PanicError", r.Err())
				}
				if pe.Value != tt.value {
					t.Errorf("PanicError.Value = %v, want %v", pe.Value, tt.value)
				}
			})
		}
	}
}
