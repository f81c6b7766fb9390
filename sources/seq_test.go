package sources_test

import (
	"errors"
	"iter"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

// countingSeq yields 0..n-1 (or forever if n < 0) and counts how many
// times it started and how many times it returned, however it returned.
type countingSeq struct {
	n         int
	panicAt   int // panic with "seq boom" before yielding this value; -1: never
	starts    atomic.Int32
	returns   atomic.Int32
	goroutine atomic.Int64 // the goroutine the seq body last ran on
}

func (c *countingSeq) seq(yield func(int) bool) {
	c.starts.Add(1)
	defer c.returns.Add(1)
	c.goroutine.Store(goid())
	for i := 0; c.n < 0 || i < c.n; i++ {
		if i == c.panicAt {
			panic("seq boom")
		}
		if !yield(i) {
			return
		}
	}
}

func TestFromSeqStopsTheIteratorOnce(t *testing.T) {
	tests := []struct {
		name        string
		n, panicAt  int
		onSubscribe func(*recorder[int])
		onNext      func(*recorder[int], int, int)
		outside     func(*recorder[int])
		want        []string
		starts      int32
	}{
		{
			name: "completion, pulled one at a time",
			n:    3, panicAt: -1,
			onSubscribe: requestFirst[int](1), onNext: requestEach[int](1),
			want: logOf(ints(0, 3), "OnComplete"), starts: 1,
		},
		{
			name: "completion, unbounded fast path",
			n:    3, panicAt: -1,
			onSubscribe: requestFirst[int](flow.Unbounded),
			want:        logOf(ints(0, 3), "OnComplete"), starts: 1,
		},
		{
			name: "cancel inside OnNext, pulled",
			n:    -1, panicAt: -1,
			onSubscribe: requestFirst[int](10), onNext: cancelAt(2),
			want: logOf(ints(0, 3)), starts: 1,
		},
		{
			name: "cancel inside OnNext, unbounded fast path",
			n:    -1, panicAt: -1,
			onSubscribe: requestFirst[int](flow.Unbounded), onNext: cancelAt(2),
			want: logOf(ints(0, 3)), starts: 1,
		},
		{
			name: "cancel from outside between requests",
			n:    -1, panicAt: -1,
			outside: func(r *recorder[int]) { r.sub.Request(2); r.sub.Cancel() },
			want:    logOf(ints(0, 2)), starts: 1,
		},
		{
			name: "non-positive request inside OnNext",
			n:    -1, panicAt: -1,
			onSubscribe: requestFirst[int](10), onNext: badRequestAt(1, 0),
			want: logOf(ints(0, 2), badRequest(0)), starts: 1,
		},
		{
			name: "panic in the seq, pulled",
			n:    -1, panicAt: 2,
			onSubscribe: requestFirst[int](10),
			want:        logOf(ints(0, 2), "OnError(sluice: panic: seq boom)"), starts: 1,
		},
		{
			name: "panic in the seq, unbounded fast path",
			n:    -1, panicAt: 2,
			onSubscribe: requestFirst[int](flow.Unbounded),
			want:        logOf(ints(0, 2), "OnError(sluice: panic: seq boom)"), starts: 1,
		},
		{
			name: "cancel before any request never starts the seq",
			n:    -1, panicAt: -1,
			outside: func(r *recorder[int]) { r.sub.Cancel(); r.sub.Request(1) },
			want:    logOf[int](nil), starts: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &countingSeq{n: tt.n, panicAt: tt.panicAt}
			r := newRecorder[int](t)
			r.onSubscribe, r.onNext = tt.onSubscribe, tt.onNext
			sources.FromSeq(c.seq).Subscribe(r)
			if tt.outside != nil {
				tt.outside(r)
			}
			if diff := cmp.Diff(tt.want, r.Log()); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			got := [2]int32{c.starts.Load(), c.returns.Load()}
			if want := [2]int32{tt.starts, tt.starts}; got != want {
				t.Errorf("seq started %d times and returned %d times, want %d and %d", got[0], got[1], want[0], want[1])
			}
		})
	}
}

func TestFromSeqPanicError(t *testing.T) {
	boom := errors.New("boom")
	for _, demand := range []int64{1, flow.Unbounded} {
		r := newRecorder[int](t)
		r.onSubscribe = requestFirst[int](demand)
		sources.FromSeq(func(func(int) bool) { panic(boom) }).Subscribe(r)
		var pe *flow.PanicError
		if !errors.As(r.Err(), &pe) {
			t.Fatalf("demand %d: OnError(%v), want a *flow.PanicError", demand, r.Err())
		}
		if pe.Value != boom || !errors.Is(r.Err(), boom) {
			t.Errorf("demand %d: PanicError.Value = %v, want the panic value", demand, pe.Value)
		}
	}
}

// TestFromSeqPullsLazily: no iter.Pull (and no seq code) before the first
// Request, then exactly one value per unit of demand.
func TestFromSeqPullsLazily(t *testing.T) {
	var pulled atomic.Int32
	seq := func(yield func(int) bool) {
		for i := 0; ; i++ {
			pulled.Add(1)
			if !yield(i) {
				return
			}
		}
	}
	r := newRecorder[int](t)
	sources.FromSeq(seq).Subscribe(r)
	var got []int32
	got = append(got, pulled.Load())
	r.sub.Request(3)
	got = append(got, pulled.Load())
	r.sub.Request(2)
	got = append(got, pulled.Load())
	r.sub.Cancel()
	if diff := cmp.Diff([]int32{0, 3, 5}, got); diff != "" {
		t.Errorf("values computed after Subscribe, Request(3), Request(2) (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(logOf(ints(0, 5)), r.Log()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// TestFromSeqFastPathHasNoCoroutine: under Unbounded demand from the
// start, the seq runs on the requesting goroutine; under bounded demand
// it runs in iter.Pull's coroutine.
func TestFromSeqFastPathHasNoCoroutine(t *testing.T) {
	for _, tt := range []struct {
		demand        int64
		sameGoroutine bool
	}{{flow.Unbounded, true}, {5, false}} {
		c := &countingSeq{n: 3, panicAt: -1}
		r := newRecorder[int](t)
		r.onSubscribe = requestFirst[int](tt.demand)
		sources.FromSeq(c.seq).Subscribe(r)
		if got := c.goroutine.Load() == goid(); got != tt.sameGoroutine {
			t.Errorf("demand %d: seq ran on the requesting goroutine = %t, want %t", tt.demand, got, tt.sameGoroutine)
		}
		if !r.Terminated() {
			t.Errorf("demand %d: not completed", tt.demand)
		}
	}
}

// TestFromSeqUnboundedLaterKeepsPulling: once pulling has started, later
// Unbounded demand keeps using the same iterator (no restart).
func TestFromSeqUnboundedLaterKeepsPulling(t *testing.T) {
	c := &countingSeq{n: 5, panicAt: -1}
	r := newRecorder[int](t)
	sources.FromSeq(c.seq).Subscribe(r)
	r.sub.Request(2)
	r.sub.Request(flow.Unbounded)
	if diff := cmp.Diff(logOf(ints(0, 5), "OnComplete"), r.Log()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if got := c.starts.Load(); got != 1 {
		t.Errorf("seq started %d times, want 1", got)
	}
}

// TestFromSeqIgnoringYieldFalse: on the fast path, a seq that keeps
// yielding after yield returned false makes the runtime panic inside it;
// after a cancellation that panic has nowhere to go and is dropped. (Under
// iter.Pull such a seq would spin for ever: yield keeps returning false.)
func TestFromSeqIgnoringYieldFalse(t *testing.T) {
	bad := func(yield func(int) bool) {
		for i := 0; ; i++ {
			yield(i)
		}
	}
	r := newRecorder[int](t)
	r.onSubscribe = requestFirst[int](flow.Unbounded)
	r.onNext = cancelAt(2)
	sources.FromSeq(bad).Subscribe(r)
	if diff := cmp.Diff(logOf(ints(0, 3)), r.Log()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// TestFromSeqSubscriberPanicIsNotRecovered: on the fast path, a panic in
// the subscriber's OnNext unwinds to the caller of Request instead of
// being reported to the same subscriber as a source failure.
func TestFromSeqSubscriberPanicIsNotRecovered(t *testing.T) {
	c := &countingSeq{n: 5, panicAt: -1}
	r := newRecorder[int](t)
	r.onNext = func(*recorder[int], int, int) { panic("subscriber boom") }
	sources.FromSeq(c.seq).Subscribe(r)
	got := mustPanic(t, func() { r.sub.Request(flow.Unbounded) })
	if got != "subscriber boom" {
		t.Errorf("panic(%v), want the subscriber's", got)
	}
	r.inSignal.Store(0) // the recorder's OnNext did not get to leave
	if diff := cmp.Diff(logOf(ints(0, 1)), r.Log()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if got := c.returns.Load(); got != 1 {
		t.Errorf("seq returned %d times, want 1", got)
	}
}

// TestFromSeqCancelFromAnotherGoroutineStopsOnce races Cancel against a
// pulling loop: the iterator is stopped exactly once, and stop never runs
// concurrently with next (the race detector checks the seq's plain
// variable).
func TestFromSeqCancelFromAnotherGoroutineStopsOnce(t *testing.T) {
	for range 50 {
		var stops atomic.Int32
		var plain int // touched by next and by stop; a race would be reported
		seq := func(yield func(int) bool) {
			defer func() { plain++; stops.Add(1) }()
			for i := 0; ; i++ {
				plain++
				if !yield(i) {
					return
				}
			}
		}
		r := newRecorder[int](t)
		sources.FromSeq(iter.Seq[int](seq)).Subscribe(r)
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 100 {
				r.sub.Request(3)
			}
		})
		wg.Go(func() { r.sub.Cancel() })
		wg.Wait()
		if got := stops.Load(); got > 1 {
			t.Fatalf("stop ran %d times", got)
		}
		if r.Terminated() {
			t.Fatalf("terminal signal after Cancel: %v", r.Log())
		}
		if n := len(r.Items()); n > 0 && stops.Load() != 1 {
			t.Fatalf("seq started but stopped %d times", stops.Load())
		}
	}
}
