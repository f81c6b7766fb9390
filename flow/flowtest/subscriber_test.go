package flowtest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sluicego/sluice/flow"
)

// recorder is a TB that records what it is told instead of failing.
type recorder struct {
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// end runs the cleanups, as the end of a test does.
func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// subscription counts the calls made to it.
type subscription struct {
	mu       sync.Mutex
	requests []int64
	cancels  int
}

func (s *subscription) Request(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, n)
}

func (s *subscription) Cancel() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancels++
}

func (s *subscription) calls() ([]int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.requests...), s.cancels
}

func next(items ...int64) []Signal[int64] {
	sigs := []Signal[int64]{{Kind: OnSubscribe}}
	for _, v := range items {
		sigs = append(sigs, Signal[int64]{Kind: OnNext, Item: v})
	}
	return sigs
}

var completed = Signal[int64]{Kind: OnComplete}

func TestSubscriberRecordsSignalsInOrder(t *testing.T) {
	sub := NewSubscriber[int64](t, 2)
	rangePub{n: 3}.Subscribe(sub)
	if diff := cmp.Diff(next(0, 1), sub.Signals()); diff != "" {
		t.Errorf("after the initial request (-want +got):\n%s", diff)
	}
	if sub.Completed() || sub.Terminated() {
		t.Errorf("Completed() = %v, Terminated() = %v before the end", sub.Completed(), sub.Terminated())
	}
	sub.Request(5)
	if diff := cmp.Diff(append(next(0, 1, 2), completed), sub.Signals()); diff != "" {
		t.Errorf("after Request(5) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{0, 1, 2}, sub.Items()); diff != "" {
		t.Errorf("Items (-want +got):\n%s", diff)
	}
	if !sub.Completed() || !sub.Terminated() || sub.Err() != nil || sub.Requested() != 7 {
		t.Errorf("Completed() = %v, Terminated() = %v, Err() = %v, Requested() = %d; want true, true, nil, 7",
			sub.Completed(), sub.Terminated(), sub.Err(), sub.Requested())
	}
}

func TestSubscriberRecordsAnError(t *testing.T) {
	sub := NewSubscriber[int64](t, 0)
	failing.Subscribe(sub)
	if got := sub.AwaitError(); got == nil || got.Error() != "failing publisher" {
		t.Errorf("AwaitError() = %v, want the publisher's error", got)
	}
	if sub.Completed() || !sub.Terminated() {
		t.Errorf("Completed() = %v, Terminated() = %v; want false, true", sub.Completed(), sub.Terminated())
	}
	want := []Signal[int64]{{Kind: OnSubscribe}, {Kind: OnError, Err: sub.Err()}}
	if diff := cmp.Diff(want, sub.Signals(), cmpopts.EquateErrors()); diff != "" {
		t.Errorf("Signals (-want +got):\n%s", diff)
	}
}

func TestSubscriberDemand(t *testing.T) {
	t.Run("requests made before OnSubscribe are made on arrival, in order", func(t *testing.T) {
		sub := NewSubscriber[int64](t, 1)
		sub.Request(2)
		sub.Request(3)
		up := &subscription{}
		sub.OnSubscribe(up)
		requests, cancels := up.calls()
		if diff := cmp.Diff([]int64{1, 2, 3}, requests); diff != "" || cancels != 0 {
			t.Errorf("requests (-want +got):\n%s; cancels = %d", diff, cancels)
		}
		if sub.Requested() != 6 {
			t.Errorf("Requested() = %d, want 6", sub.Requested())
		}
	})
	t.Run("Cancel before OnSubscribe cancels on arrival and requests nothing", func(t *testing.T) {
		sub := NewSubscriber[int64](t, 5)
		sub.Cancel()
		up := &subscription{}
		sub.OnSubscribe(up)
		if requests, cancels := up.calls(); len(requests) != 0 || cancels != 1 {
			t.Errorf("requests = %v, cancels = %d; want none, 1", requests, cancels)
		}
	})
	t.Run("RequestOnNext consumes one at a time", func(t *testing.T) {
		sub := NewSubscriber[int64](t, 1, RequestOnNext(1))
		rangePub{n: 4}.Subscribe(sub)
		if diff := cmp.Diff(append(next(0, 1, 2, 3), completed), sub.Signals()); diff != "" {
			t.Errorf("Signals (-want +got):\n%s", diff)
		}
	})
	t.Run("CancelAfter cancels inside the n-th OnNext", func(t *testing.T) {
		sub := NewSubscriber[int64](t, 1, RequestOnNext(1), CancelAfter(2))
		rangePub{n: 10}.Subscribe(sub)
		if diff := cmp.Diff(next(0, 1), sub.Signals()); diff != "" {
			t.Errorf("Signals (-want +got):\n%s", diff)
		}
	})
	t.Run("non-positive requests go through, for rule 3.9 tests", func(t *testing.T) {
		sub := NewSubscriber[int64](t, 0)
		rangePub{n: 3}.Subscribe(sub)
		sub.Request(0)
		if err := sub.AwaitError(); !errors.Is(err, flow.ErrNonPositiveRequest) {
			t.Errorf("AwaitError() = %v, want ErrNonPositiveRequest", err)
		}
		if sub.Requested() != 0 {
			t.Errorf("Requested() = %d, want 0", sub.Requested())
		}
	})
	t.Run("the end of the test cancels a live subscription", func(t *testing.T) {
		rec := &recorder{}
		sub := NewSubscriber[int64](rec, 1)
		up := &subscription{}
		sub.OnSubscribe(up)
		rec.end()
		if _, cancels := up.calls(); cancels != 1 {
			t.Errorf("cancels = %d after the test ended, want 1", cancels)
		}
	})
	t.Run("the end of the test leaves an ended stream alone", func(t *testing.T) {
		rec := &recorder{}
		sub := NewSubscriber[int64](rec, 1)
		up := &subscription{}
		sub.OnSubscribe(up)
		sub.OnComplete()
		rec.end()
		if _, cancels := up.calls(); cancels != 0 {
			t.Errorf("cancels = %d, want 0", cancels)
		}
	})
}

func TestSubscriberFlagsViolations(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		initial int64
		signal  func(s *Subscriber[int64])
		want    []string
	}{
		{
			name:    "OnNext before OnSubscribe",
			initial: 1,
			signal:  func(s *Subscriber[int64]) { s.OnNext(7) },
			want:    []string{"OnNext(7) before OnSubscribe (rule 1.9)"},
		},
		{
			name: "OnComplete before OnSubscribe",
			signal: func(s *Subscriber[int64]) {
				s.OnComplete()
			},
			want: []string{"OnComplete before OnSubscribe (rule 1.9)"},
		},
		{
			name:    "a second OnSubscribe",
			initial: 1,
			signal: func(s *Subscriber[int64]) {
				s.OnSubscribe(&subscription{})
				s.OnSubscribe(&subscription{})
			},
			want: []string{"OnSubscribe called a second time; the second Subscription is cancelled (rules 2.5, 2.12)"},
		},
		{
			name:    "more OnNext than requested",
			initial: 2,
			signal: func(s *Subscriber[int64]) {
				s.OnSubscribe(&subscription{})
				s.OnNext(1)
				s.OnNext(2)
				s.OnNext(3)
			},
			want: []string{"OnNext(3) is item 3, but only 2 were requested (rule 1.1)"},
		},
		{
			name:    "signals after OnComplete",
			initial: 5,
			signal: func(s *Subscriber[int64]) {
				s.OnSubscribe(&subscription{})
				s.OnComplete()
				s.OnNext(1)
				s.OnComplete()
				s.OnError(boom)
			},
			want: []string{
				"OnNext(1) after OnComplete (rule 1.7)",
				"OnComplete after OnComplete (rule 1.7)",
				"OnError(boom) after OnComplete (rule 1.7)",
			},
		},
		{
			name: "OnComplete after OnError",
			signal: func(s *Subscriber[int64]) {
				s.OnSubscribe(&subscription{})
				s.OnError(boom)
				s.OnComplete()
			},
			want: []string{"OnComplete after OnError(boom) (rule 1.7)"},
		},
		{
			name: "OnSubscribe(nil) panics",
			signal: func(s *Subscriber[int64]) {
				if flow.Catch(func() { s.OnSubscribe(nil) }) == nil {
					panic("no panic")
				}
			},
			want: []string{"OnSubscribe(nil) (rule 2.13)"},
		},
		{
			name: "OnError(nil) panics",
			signal: func(s *Subscriber[int64]) {
				s.OnSubscribe(&subscription{})
				if flow.Catch(func() { s.OnError(nil) }) == nil {
					panic("no panic")
				}
			},
			want: []string{"OnError(nil) (rule 2.13)"},
		},
		{
			name:    "unbounded demand allows any number of items",
			initial: flow.Unbounded,
			signal: func(s *Subscriber[int64]) {
				s.OnSubscribe(&subscription{})
				for i := range int64(100) {
					s.OnNext(i)
				}
				s.OnComplete()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			sub := NewSubscriber[int64](rec, tt.initial)
			tt.signal(sub)
			if diff := cmp.Diff(tt.want, sub.Violations()); diff != "" {
				t.Errorf("Violations (-want +got):\n%s", diff)
			}
			var reported []string
			for _, v := range tt.want {
				reported = append(reported, "flowtest: protocol violation: "+v)
			}
			if diff := cmp.Diff(reported, rec.errors()); diff != "" {
				t.Errorf("reported (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSubscriberCancelsASecondSubscription(t *testing.T) {
	sub := NewSubscriber[int64](&recorder{}, 1)
	first, second := &subscription{}, &subscription{}
	sub.OnSubscribe(first)
	sub.OnSubscribe(second)
	if _, cancels := second.calls(); cancels != 1 {
		t.Errorf("second Subscription cancelled %d times, want 1", cancels)
	}
	if requests, cancels := first.calls(); cancels != 0 || len(requests) != 1 {
		t.Errorf("first Subscription: requests %v, cancels %d; want [1], 0", requests, cancels)
	}
}

func TestSubscriberStopsReportingWhenTheTestEnds(t *testing.T) {
	rec := &recorder{}
	sub := NewSubscriber[int64](rec, 0)
	sub.OnSubscribe(&subscription{})
	rec.end()
	sub.OnNext(1) // a late signal of an asynchronous publisher
	if diff := cmp.Diff([]string{"OnNext(1) is item 1, but only 0 were requested (rule 1.1)"}, sub.Violations()); diff != "" {
		t.Errorf("Violations (-want +got):\n%s", diff)
	}
	if got := rec.errors(); len(got) != 0 {
		t.Errorf("reported after the test ended: %q", got)
	}
}

func TestSubscriberFlagsOverlappingSignals(t *testing.T) {
	t.Run("OnNext from another goroutine while OnNext runs", func(t *testing.T) {
		rec := &recorder{}
		sub := NewSubscriber[int64](rec, 2)
		sub.OnSubscribe(&subscription{})
		inFirst, secondDone := make(chan struct{}), make(chan struct{})
		var first atomic.Bool
		sub.hookNext = func(int64) {
			if !first.Swap(true) {
				close(inFirst)
				<-secondDone // the first OnNext is still running
			}
		}
		go func() {
			<-inFirst
			sub.OnNext(2)
			close(secondDone)
		}()
		sub.OnNext(1)
		want := []string{"OnNext delivered on another goroutine while a signal handler was still running (rule 1.3)"}
		if diff := cmp.Diff(want, sub.Violations()); diff != "" {
			t.Errorf("Violations (-want +got):\n%s", diff)
		}
	})
	t.Run("synchronous re-entry from OnSubscribe's Request is allowed", func(t *testing.T) {
		rec := &recorder{}
		sub := NewSubscriber[int64](rec, 100)
		rangePub{n: 100}.Subscribe(sub) // all 100 items nested in OnSubscribe
		if got := sub.Violations(); len(got) != 0 {
			t.Errorf("Violations = %q, want none", got)
		}
		if len(sub.Items()) != 100 || !sub.Completed() {
			t.Errorf("%d items, Completed() = %v; want 100, true", len(sub.Items()), sub.Completed())
		}
	})
	t.Run("synchronous recursion from OnNext's Request is allowed", func(t *testing.T) {
		rec := &recorder{}
		sub := NewSubscriber[int64](rec, 1, RequestOnNext(1))
		rangePub{n: 20, bug: pubRecursive}.Subscribe(sub)
		if got := sub.Violations(); len(got) != 0 {
			t.Errorf("Violations = %q, want none", got)
		}
		if len(sub.Items()) != 20 || !sub.Completed() {
			t.Errorf("%d items, Completed() = %v; want 20, true", len(sub.Items()), sub.Completed())
		}
	})
}

// ticker emits 0 ... n-1, one every period, from a goroutine, then
// completes; it ignores demand beyond the first request, which the tests
// make large enough.
func ticker(n int64, period time.Duration) flow.Publisher[int64] {
	return flow.PublisherFunc[int64](func(s flow.Subscriber[int64]) {
		s.OnSubscribe(&subscription{})
		go func() {
			for i := range n {
				time.Sleep(period)
				s.OnNext(i)
			}
			if n >= 0 {
				s.OnComplete()
			}
		}()
	})
}

func TestSubscriberAwaitsInASynctestBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		sub := NewSubscriber[int64](t, 10)
		ticker(3, 100*time.Millisecond).Subscribe(sub)
		if !sub.AwaitSubscribed() || !sub.AwaitItems(2) {
			t.Fatal("Await failed")
		}
		if got := time.Since(start); got != 200*time.Millisecond {
			t.Errorf("AwaitItems(2) returned after %v, want 200ms", got)
		}
		if !sub.AwaitCompleted() {
			t.Fatal("AwaitCompleted failed")
		}
		if got := time.Since(start); got != 300*time.Millisecond {
			t.Errorf("AwaitCompleted returned after %v, want 300ms", got)
		}
		if !sub.ExpectNone() {
			t.Error("ExpectNone failed after the end of the stream")
		}
	})
}

func TestSubscriberItemTimesUseTheFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		sub := NewSubscriber[int64](t, 10)
		if got := sub.ItemTimes(); len(got) != 0 {
			t.Errorf("ItemTimes before any item = %v, want none", got)
		}
		if got := sub.Outcome(); got != "open" {
			t.Errorf("Outcome before the end = %q, want open", got)
		}
		ticker(3, 100*time.Millisecond).Subscribe(sub)
		if !sub.AwaitCompleted() {
			t.Fatal("AwaitCompleted failed")
		}
		want := []time.Time{
			start.Add(100 * time.Millisecond),
			start.Add(200 * time.Millisecond),
			start.Add(300 * time.Millisecond),
		}
		if diff := cmp.Diff(want, sub.ItemTimes()); diff != "" {
			t.Errorf("ItemTimes (-want +got):\n%s", diff)
		}
		wantOffsets := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
		if diff := cmp.Diff(wantOffsets, sub.ItemOffsets(start)); diff != "" {
			t.Errorf("ItemOffsets (-want +got):\n%s", diff)
		}
		if got := sub.Outcome(); got != "complete" {
			t.Errorf("Outcome = %q, want complete", got)
		}
	})
}

func TestSubscriberOutcomeOfAnError(t *testing.T) {
	sub := NewSubscriber[int](t, 1)
	flow.Reject[int](sub, errorString("boom"))
	if got := sub.Outcome(); got != "error: boom" {
		t.Errorf("Outcome = %q, want %q", got, "error: boom")
	}
}

func TestSubscriberAwaitTimeouts(t *testing.T) {
	tests := []struct {
		name  string
		pub   flow.Publisher[int64]
		await func(s *Subscriber[int64]) bool
		want  []string
	}{
		{
			name:  "AwaitItems on a slow publisher",
			pub:   ticker(5, time.Second),
			await: func(s *Subscriber[int64]) bool { return s.AwaitItems(3) },
			want:  []string{"flowtest: 2 items within 2.5s, want 3"},
		},
		{
			name:  "AwaitItems on a stream that ends early",
			pub:   rangePub{n: 2},
			await: func(s *Subscriber[int64]) bool { return s.AwaitItems(3) },
			want:  []string{"flowtest: the stream ended after 2 items, want 3"},
		},
		{
			name:  "AwaitCompleted on an endless stream",
			pub:   ticker(-1, time.Second),
			await: func(s *Subscriber[int64]) bool { return s.AwaitCompleted() },
			want:  []string{"flowtest: no OnComplete or OnError within 2.5s"},
		},
		{
			name:  "AwaitCompleted on a failed stream",
			pub:   failing,
			await: func(s *Subscriber[int64]) bool { return s.AwaitCompleted() },
			want:  []string{"flowtest: OnError(failing publisher), want OnComplete"},
		},
		{
			name:  "AwaitError on a completed stream",
			pub:   rangePub{n: 1},
			await: func(s *Subscriber[int64]) bool { return s.AwaitError() != nil },
			want:  []string{"flowtest: OnComplete, want OnError"},
		},
		{
			name:  "ExpectNone with a late item",
			pub:   ticker(1, 10*time.Millisecond),
			await: func(s *Subscriber[int64]) bool { return s.ExpectNone() },
			want:  []string{"flowtest: unexpected OnNext(0), want no signal"},
		},
		{
			name: "AwaitSubscribed on a publisher that never subscribes",
			pub: flow.PublisherFunc[int64](func(s flow.Subscriber[int64]) {
			}),
			await: func(s *Subscriber[int64]) bool { return s.AwaitSubscribed() },
			want:  []string{"flowtest: no OnSubscribe within 2.5s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				sub := NewSubscriber[int64](rec, 10, Timeout(2500*time.Millisecond))
				tt.pub.Subscribe(sub)
				if tt.await(sub) {
					t.Error("the wait succeeded, want a failure")
				}
				if diff := cmp.Diff(tt.want, rec.errors()); diff != "" {
					t.Errorf("reported (-want +got):\n%s", diff)
				}
				time.Sleep(10 * time.Second) // let the tickers finish
				rec.end()
			})
		})
	}
}

func TestInvalidArgumentsPanic(t *testing.T) {
	for want, f := range map[string]func(){
		"sluice: flowtest.NewSubscriber: nil TB":             func() { NewSubscriber[int](nil, 0) },
		"sluice: flowtest.NewSubscriber: initialRequest < 0": func() { NewSubscriber[int](&recorder{}, -1) },
		"sluice: flowtest.Timeout: d <= 0":                   func() { Timeout(0) },
		"sluice: flowtest.NoSignalTimeout: d <= 0":           func() { NoSignalTimeout(-time.Second) },
		"sluice: flowtest.RequestOnNext: n <= 0":             func() { RequestOnNext(0) },
		"sluice: flowtest.CancelAfter: n <= 0":               func() { CancelAfter(0) },
	} {
		err := flow.Catch(f)
		var pe *flow.PanicError
		if !errors.As(err, &pe) || pe.Value != want {
			t.Errorf("panic = %v, want %q", err, want)
		}
	}
}

func TestSignalStrings(t *testing.T) {
	got := fmt.Sprint([]Signal[int]{{Kind: OnSubscribe}, {Kind: OnNext, Item: 3}, {Kind: OnError, Err: errors.New("boom")}, {Kind: OnComplete}, {Kind: 9}})
	if want := "[OnSubscribe OnNext(3) OnError(boom) OnComplete Kind(9)]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestGoid(t *testing.T) {
	ids := make(chan uint64, 2)
	go func() { ids <- goid() }()
	go func() { ids <- goid() }()
	a, b, me := <-ids, <-ids, goid()
	if a == 0 || b == 0 || me == 0 || a == b || a == me || b == me {
		t.Errorf("goroutine ids %d, %d and %d are not distinct and non-zero", a, b, me)
	}
	if strings.Contains(fmt.Sprint(me), "-") {
		t.Errorf("goid = %d", me)
	}
}

// BenchmarkSubscriber measures what the test Subscriber costs per item
// behind a synchronous publisher.
func BenchmarkSubscriber(b *testing.B) {
	for _, mode := range []string{"unbounded", "one by one"} {
		b.Run(mode, func(b *testing.B) {
			const n = 10_000
			for b.Loop() {
				var sub *Subscriber[int64]
				if mode == "unbounded" {
					sub = NewSubscriber[int64](b, flow.Unbounded)
				} else {
					sub = NewSubscriber[int64](b, 1, RequestOnNext(1))
				}
				rangePub{n: n}.Subscribe(sub)
				if !sub.Completed() {
					b.Fatal("not completed")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		})
	}
}
