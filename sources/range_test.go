package sources_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

func TestRangeValues(t *testing.T) {
	const maxInt = int(^uint(0) >> 1)
	tests := []struct {
		name         string
		start, count int
		want         []int
	}{
		{"from zero", 0, 4, []int{0, 1, 2, 3}},
		{"negative start", -2, 4, []int{-2, -1, 0, 1}},
		{"one item", 42, 1, []int{42}},
		{"up to MaxInt-1", maxInt - 2, 2, []int{maxInt - 2, maxInt - 1}},
		{"from MinInt", -maxInt - 1, 2, []int{-maxInt - 1, -maxInt}},
		{"empty at MaxInt", maxInt, 0, nil},
	}
	for _, tt := range tests {
		for _, demand := range []int64{1, flow.Unbounded} {
			r := newRecorder[int](t)
			r.onSubscribe = requestFirst[int](demand)
			r.onNext = requestEach[int](1)
			sources.Range(tt.start, tt.count).Subscribe(r)
			if diff := cmp.Diff(logOf(tt.want, "OnComplete"), r.Log()); diff != "" {
				t.Errorf("%s, demand %d: (-want +got)\n%s", tt.name, demand, diff)
			}
		}
	}
}

func TestRangeResubscribeStartsAgain(t *testing.T) {
	pub := sources.Range(3, 3)
	for range 2 {
		r := newRecorder[int](t)
		r.onSubscribe = requestFirst[int](flow.Unbounded)
		pub.Subscribe(r)
		if diff := cmp.Diff(logOf([]int{3, 4, 5}, "OnComplete"), r.Log()); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	}
}

func TestSliceValues(t *testing.T) {
	words := []string{"a", "b", "c"}
	pub := sources.Slice(words)
	for _, demand := range []int64{1, 2, flow.Unbounded} {
		r := newRecorder[string](t)
		r.onSubscribe = requestFirst[string](demand)
		r.onNext = func(r *recorder[string], i int, _ string) {
			if int64(i+1)%demand == 0 {
				r.sub.Request(demand)
			}
		}
		pub.Subscribe(r)
		if diff := cmp.Diff(logOf(words, "OnComplete"), r.Log()); diff != "" {
			t.Errorf("demand %d: (-want +got)\n%s", demand, diff)
		}
	}
}

func TestJustValues(t *testing.T) {
	r := newRecorder[string](t)
	r.onSubscribe = requestFirst[string](flow.Unbounded)
	sources.Just("x", "y").Subscribe(r)
	if diff := cmp.Diff(logOf([]string{"x", "y"}, "OnComplete"), r.Log()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// TestRangeEmitsOnTheRequestingGoroutine: no goroutine of its own, and a
// Request from inside OnNext does not recurse (depth 1, rule 3.3).
func TestRangeRecursionDepthIsOne(t *testing.T) {
	for _, src := range finiteSources {
		t.Run(src.name, func(t *testing.T) {
			depth, maxDepth := 0, 0
			r := newRecorder[int](t)
			r.onSubscribe = requestFirst[int](1)
			caller := goid()
			r.onNext = func(r *recorder[int], _, _ int) {
				if g := goid(); g != caller {
					t.Errorf("OnNext on goroutine %d, want the requesting goroutine %d", g, caller)
				}
				depth++
				maxDepth = max(maxDepth, depth)
				r.sub.Request(1)
				depth--
			}
			src.new(50).Subscribe(r)
			if maxDepth != 1 {
				t.Errorf("OnNext recursion depth %d, want 1", maxDepth)
			}
			if !r.Terminated() {
				t.Error("not completed")
			}
		})
	}
}
