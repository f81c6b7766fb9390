package operators_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

// ---- helpers shared by the resilience tests ----

const ms = time.Millisecond

// rsScript is what one subscription of an rsSource does: emit items, as
// demand allows, then fail with err, or complete if err is nil.
type rsScript struct {
	items []int
	err   error
}

// rsSource is a cold source whose k-th subscription plays scripts[k] (the
// last script repeats). It records, per subscription, the time since
// start at which it was subscribed and every Request(n). Emission runs on
// the requesting goroutine, serialised by a flow.Demand as in Range.
type rsSource struct {
	scripts []rsScript
	start   time.Time

	mu       sync.Mutex
	subTimes []time.Duration
	requests [][]int64
	cancels  int
}

func (p *rsSource) Subscribe(s flow.Subscriber[int]) {
	flow.RequireSubscriber(s)
	p.mu.Lock()
	k := len(p.subTimes)
	p.subTimes = append(p.subTimes, time.Since(p.start))
	p.requests = append(p.requests, []int64{})
	sc := p.scripts[min(k, len(p.scripts)-1)]
	p.mu.Unlock()
	sub := &rsSub{p: p, k: k, s: s, sc: sc}
	s.OnSubscribe(sub)
	if len(sc.items) == 0 {
		sub.finish()
	}
}

func (p *rsSource) SubTimes() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.subTimes...)
}

func (p *rsSource) Requests() [][]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]int64, len(p.requests))
	for i, r := range p.requests {
		out[i] = append([]int64{}, r...)
	}
	return out
}

func (p *rsSource) Cancels() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cancels
}

type rsSub struct {
	p      *rsSource
	k      int
	s      flow.Subscriber[int]
	sc     rsScript
	demand flow.Demand
	i      int
	done   atomic.Bool
}

func (r *rsSub) Request(n int64) {
	r.p.mu.Lock()
	r.p.requests[r.k] = append(r.p.requests[r.k], n)
	r.p.mu.Unlock()
	if r.done.Load() {
		return
	}
	if n <= 0 {
		if r.done.CompareAndSwap(false, true) {
			r.s.OnError(flow.NonPositiveRequestError(n))
		}
		return
	}
	if r.demand.Add(n) != 0 {
		return
	}
	left := r.demand.Load()
	for left > 0 && !r.done.Load() && r.i < len(r.sc.items) {
		v := r.sc.items[r.i]
		r.i++
		r.s.OnNext(v)
		if r.i == len(r.sc.items) {
			r.finish()
			return
		}
		left = r.demand.Produced(1)
	}
}

func (r *rsSub) finish() {
	if r.done.CompareAndSwap(false, true) {
		if r.sc.err != nil {
			r.s.OnError(r.sc.err)
		} else {
			r.s.OnComplete()
		}
	}
}

func (r *rsSub) Cancel() {
	if r.done.CompareAndSwap(false, true) {
		r.p.mu.Lock()
		r.p.cancels++
		r.p.mu.Unlock()
	}
}

// rsRec wraps a flowtest.Subscriber and records when the stream ended,
// as time since start.
type rsRec[T any] struct {
	*flowtest.Subscriber[T]
	start time.Time
	mu    sync.Mutex
	endAt time.Duration
}

func newRec[T any](t *testing.T, initial int64, opts ...flowtest.Option) *rsRec[T] {
	return &rsRec[T]{Subscriber: flowtest.NewSubscriber[T](t, initial, opts...), start: time.Now(), endAt: -1}
}

func (r *rsRec[T]) OnError(err error) {
	r.mu.Lock()
	r.endAt = time.Since(r.start)
	r.mu.Unlock()
	r.Subscriber.OnError(err)
}

func (r *rsRec[T]) OnComplete() {
	r.mu.Lock()
	r.endAt = time.Since(r.start)
	r.mu.Unlock()
	r.Subscriber.OnComplete()
}

// EndAt returns when the stream ended, or -1 if it has not.
func (r *rsRec[T]) EndAt() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.endAt
}

// Result is "complete", "open" or the error's message.
func (r *rsRec[T]) Result() string {
	switch {
	case r.Completed():
		return "complete"
	case r.Err() != nil:
		return r.Err().Error()
	}
	return "open"
}

// Times returns the item times relative to the recorder's start.
func (r *rsRec[T]) Times() []time.Duration {
	out := []time.Duration{}
	for _, at := range r.ItemTimes() {
		out = append(out, at.Sub(r.start))
	}
	return out
}

func rsConst(u float64) func() float64 { return func() float64 { return u } }

type rsRetryCall struct {
	Attempt int
	Delay   time.Duration
	Err     string
}

// ---- Retry ----

func TestRetryResubscribesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		src := &rsSource{start: time.Now(), scripts: []rsScript{
			{items: []int{0, 1}, err: boom},
			{err: boom},
			{items: []int{0, 1, 2}},
		}}
		var calls []rsRetryCall
		policy := operators.RetryPolicy{
			MaxAttempts: 5,
			Rand:        rsConst(0.5), // full jitter: half the exponential delay
			OnRetry: func(attempt int, d time.Duration, err error) {
				calls = append(calls, rsRetryCall{attempt, d, err.Error()})
			},
		}
		rec := newRec[int](t, unb)
		operators.Retry[int](src, policy).Subscribe(rec)
		time.Sleep(time.Second)
		synctest.Wait()
		got := []any{rec.Items(), rec.Result(), src.SubTimes(), calls, rec.EndAt()}
		want := []any{
			[]int{0, 1, 0, 1, 2}, // the cold source is replayed: duplicates
			"complete",
			[]time.Duration{0, 50 * ms, 150 * ms},
			[]rsRetryCall{{2, 50 * ms, "boom"}, {3, 100 * ms, "boom"}},
			150 * ms,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestRetryCarriesOutstandingDemandOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &rsSource{start: time.Now(), scripts: []rsScript{
			{items: []int{0, 1}, err: errBoom},
			{items: []int{10, 11, 12, 13, 14, 15}},
		}}
		rec := newRec[int](t, 5)
		operators.Retry[int](src, operators.RetryPolicy{Jitter: operators.NoJitter}).Subscribe(rec)
		time.Sleep(time.Second)
		synctest.Wait()
		got1 := []any{rec.Items(), src.Requests()}
		rec.Request(2)
		synctest.Wait()
		got2 := []any{rec.Items(), src.Requests(), rec.Result()}
		want1 := []any{[]int{0, 1, 10, 11, 12}, [][]int64{{5}, {3}}}
		want2 := []any{[]int{0, 1, 10, 11, 12, 13, 14}, [][]int64{{5}, {3, 2}}, "open"}
		if diff := cmp.Diff(want1, got1); diff != "" {
			t.Errorf("after the retry (-want +got)\n%s", diff)
		}
		if diff := cmp.Diff(want2, got2); diff != "" {
			t.Errorf("after Request(2) (-want +got)\n%s", diff)
		}
		rec.Cancel()
	})
}

func TestRetryRequestsNothingWithoutDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &rsSource{start: time.Now(), scripts: []rsScript{
			{items: []int{0, 1}, err: errBoom},
			{items: []int{10, 11}},
		}}
		rec := newRec[int](t, 2)
		operators.Retry[int](src, operators.RetryPolicy{Jitter: operators.NoJitter}).Subscribe(rec)
		time.Sleep(time.Second)
		synctest.Wait()
		// The first attempt used up the demand before it failed: the
		// second is subscribed but asked for nothing.
		got := []any{rec.Items(), src.Requests(), src.SubTimes()}
		want := []any{[]int{0, 1}, [][]int64{{2}, {}}, []time.Duration{0, 100 * ms}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		rec.Cancel()
		if got := src.Cancels(); got != 1 {
			t.Errorf("cancels = %d, want 1", got)
		}
	})
}

func TestRetryGivesUp(t *testing.T) {
	fatal := errors.New("fatal")
	tests := []struct {
		name     string
		policy   operators.RetryPolicy
		scripts  []rsScript
		subTimes []time.Duration
		result   string
		endAt    time.Duration
	}{
		{
			name:     "after MaxAttempts, with the last error",
			policy:   operators.RetryPolicy{Jitter: operators.NoJitter},
			scripts:  []rsScript{{err: errors.New("first")}, {err: errBoom}},
			subTimes: []time.Duration{0, 100 * ms, 300 * ms},
			result:   "r: attempt 3 of 3: boom",
			endAt:    300 * ms,
		},
		{
			name: "at once on an error that is not transient",
			policy: operators.RetryPolicy{
				Retryable: func(err error) bool { return !errors.Is(err, fatal) },
			},
			scripts:  []rsScript{{err: fatal}},
			subTimes: []time.Duration{0},
			result:   "r: attempt 1 of 3: fatal",
			endAt:    0,
		},
		{
			name:     "on a panic, by default",
			policy:   operators.RetryPolicy{},
			scripts:  []rsScript{{err: flow.NewPanicError("bug")}},
			subTimes: []time.Duration{0},
			result:   "r: attempt 1 of 3: sluice: panic: bug",
			endAt:    0,
		},
		{
			name: "when the next delay would overrun MaxElapsed",
			policy: operators.RetryPolicy{
				MaxAttempts: 10, Jitter: operators.NoJitter, MaxElapsed: 250 * ms,
			},
			scripts:  []rsScript{{err: errBoom}},
			subTimes: []time.Duration{0, 100 * ms},
			result:   "r: attempt 2, retry budget 250ms spent: boom",
			endAt:    100 * ms,
		},
		{
			name:     "never, with MaxAttempts 1",
			policy:   operators.RetryPolicy{MaxAttempts: 1},
			scripts:  []rsScript{{err: errBoom}},
			subTimes: []time.Duration{0},
			result:   "r: attempt 1 of 1: boom",
			endAt:    0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := &rsSource{start: time.Now(), scripts: tt.scripts}
				rec := newRec[int](t, unb)
				operators.Retry[int](src, tt.policy, operators.Name("r")).Subscribe(rec)
				time.Sleep(10 * time.Second)
				synctest.Wait()
				got := []any{src.SubTimes(), rec.Result(), rec.EndAt()}
				want := []any{tt.subTimes, tt.result, tt.endAt}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
				last := tt.scripts[len(tt.scripts)-1].err
				if !errors.Is(rec.Err(), last) {
					t.Errorf("errors.Is(%v, %v) = false", rec.Err(), last)
				}
			})
		})
	}
}

func TestRetryCancelDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &rsSource{start: time.Now(), scripts: []rsScript{{err: errBoom}}}
		rec := newRec[int](t, unb)
		operators.Retry[int](src, operators.RetryPolicy{Jitter: operators.NoJitter}).Subscribe(rec)
		time.Sleep(50 * ms)
		rec.Cancel()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		got := []any{src.SubTimes(), rec.Result()}
		want := []any{[]time.Duration{0}, "open"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestRetryHookPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &rsSource{start: time.Now(), scripts: []rsScript{{err: errBoom}}}
		rec := newRec[int](t, unb)
		policy := operators.RetryPolicy{OnRetry: func(int, time.Duration, error) { panic("hook") }}
		operators.Retry[int](src, policy, operators.Name("r")).Subscribe(rec)
		synctest.Wait()
		var pe *flow.PanicError
		if !errors.As(rec.Err(), &pe) || pe.Value != "hook" {
			t.Fatalf("error = %v, want a *flow.PanicError of \"hook\"", rec.Err())
		}
		if diff := cmp.Diff([]time.Duration{0}, src.SubTimes()); diff != "" {
			t.Errorf("subscriptions (-want +got)\n%s", diff)
		}
	})
}

func TestRetryNonPositiveRequest(t *testing.T) {
	t.Run("while subscribed: upstream's rule 3.9 error, not retried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := &rsSource{start: time.Now(), scripts: []rsScript{{items: []int{0, 1, 2}}}}
			rec := newRec[int](t, 0)
			operators.Retry[int](src, operators.RetryPolicy{}).Subscribe(rec)
			rec.Request(0)
			time.Sleep(time.Second)
			synctest.Wait()
			if !errors.Is(rec.Err(), flow.ErrNonPositiveRequest) {
				t.Errorf("error = %v, want ErrNonPositiveRequest", rec.Err())
			}
			if diff := cmp.Diff([]time.Duration{0}, src.SubTimes()); diff != "" {
				t.Errorf("subscriptions (-want +got)\n%s", diff)
			}
		})
	})
	t.Run("during a backoff: at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := &rsSource{start: time.Now(), scripts: []rsScript{{err: errBoom}}}
			rec := newRec[int](t, unb)
			operators.Retry[int](src, operators.RetryPolicy{Jitter: operators.NoJitter}).Subscribe(rec)
			time.Sleep(10 * ms)
			rec.Request(-1)
			time.Sleep(time.Second)
			synctest.Wait()
			if !errors.Is(rec.Err(), flow.ErrNonPositiveRequest) {
				t.Errorf("error = %v, want ErrNonPositiveRequest", rec.Err())
			}
			if got := rec.EndAt(); got != 10*ms {
				t.Errorf("ended at %v, want 10ms", got)
			}
			if diff := cmp.Diff([]time.Duration{0}, src.SubTimes()); diff != "" {
				t.Errorf("subscriptions (-want +got)\n%s", diff)
			}
		})
	})
}

func TestRetryPolicyBackoff(t *testing.T) {
	base := operators.RetryPolicy{InitialDelay: 100 * ms, MaxDelay: time.Second, Rand: rsConst(0.5)}
	with := func(j operators.Jitter) operators.RetryPolicy { p := base; p.Jitter = j; return p }
	seq := func(p operators.RetryPolicy) []time.Duration {
		var out []time.Duration
		for k := 1; k <= 6; k++ {
			out = append(out, p.Backoff(k))
		}
		return out
	}
	got := map[string][]time.Duration{
		"full":  seq(with(operators.FullJitter)),
		"equal": seq(with(operators.EqualJitter)),
		"none":  seq(with(operators.NoJitter)),
		"x3":    seq(operators.RetryPolicy{Multiplier: 3, Jitter: operators.NoJitter}),
	}
	want := map[string][]time.Duration{
		"full":  {50 * ms, 100 * ms, 200 * ms, 400 * ms, 500 * ms, 500 * ms},
		"equal": {75 * ms, 150 * ms, 300 * ms, 600 * ms, 750 * ms, 750 * ms},
		"none":  {100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second},
		"x3":    {100 * ms, 300 * ms, 900 * ms, 2700 * ms, 8100 * ms, 10 * time.Second},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// Property: with any random number, full jitter stays in [0, d] and equal
// jitter in [d/2, d], where d is the capped exponential delay.
func TestRetryPolicyJitterBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, j := range []operators.Jitter{operators.FullJitter, operators.EqualJitter} {
		var lo, hi time.Duration = time.Hour, 0
		p := operators.RetryPolicy{Jitter: j, InitialDelay: 10 * ms, MaxDelay: 300 * ms, Rand: rng.Float64}
		for i := range 10000 {
			k := 1 + i%8
			d := min(300*ms, 10*ms<<(k-1))
			got := p.Backoff(k)
			floor := time.Duration(0)
			if j == operators.EqualJitter {
				floor = d / 2
			}
			if got < floor || got > d {
				t.Fatalf("%v: Backoff(%d) = %v, want in [%v, %v]", j, k, got, floor, d)
			}
			if k == 8 {
				lo, hi = min(lo, got), max(hi, got)
			}
		}
		// The draws spread over the range: a constant would pass the bounds.
		if spread := hi - lo; spread < 100*ms {
			t.Errorf("%v: delays at the cap spread over %v only", j, spread)
		}
	}
	// Extreme draws are clamped.
	for _, u := range []float64{-1, 2} {
		p := operators.RetryPolicy{InitialDelay: 10 * ms, Rand: rsConst(u)}
		if got := p.Backoff(1); got < 0 || got > 10*ms {
			t.Errorf("Rand() = %v: Backoff(1) = %v, want in [0, 10ms]", u, got)
		}
	}
}

func TestRetryPolicyPanics(t *testing.T) {
	tests := map[string]func(){
		"sluice: Retry: nil source": func() { operators.Retry[int](nil, operators.RetryPolicy{}) },
		"sluice: Retry: RetryPolicy.MaxAttempts < 0": func() {
			operators.Retry[int](&rsSource{}, operators.RetryPolicy{MaxAttempts: -1})
		},
		"sluice: Retry: RetryPolicy.Multiplier < 1": func() {
			operators.Retry[int](&rsSource{}, operators.RetryPolicy{Multiplier: 0.5})
		},
		"sluice: RetryFunc: RetryPolicy.MaxDelay < InitialDelay": func() {
			operators.RetryFunc(func(context.Context, int) (int, error) { return 0, nil },
				operators.RetryPolicy{InitialDelay: time.Second, MaxDelay: ms})
		},
		"sluice: RetryFunc: nil function": func() {
			operators.RetryFunc[int, int](nil, operators.RetryPolicy{})
		},
		"sluice: RetryPolicy.Backoff: k < 1": func() { operators.RetryPolicy{}.Backoff(0) },
	}
	for want, f := range tests {
		t.Run(want, func(t *testing.T) {
			defer func() {
				if got := fmt.Sprint(recover()); got != want {
					t.Errorf("panic = %q, want %q", got, want)
				}
			}()
			f()
		})
	}
}

// ---- RetryFunc ----

func TestRetryFunc(t *testing.T) {
	t.Run("calls again after each backoff until success", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			var at []time.Duration
			f := func(ctx context.Context, v int) (string, error) {
				at = append(at, time.Since(start))
				if len(at) < 3 {
					return "", errBoom
				}
				return fmt.Sprint("ok ", v), nil
			}
			g := operators.RetryFunc(f, operators.RetryPolicy{Jitter: operators.EqualJitter, Rand: rsConst(0)})
			r, err := g(context.Background(), 7)
			got := []any{r, err, at}
			want := []any{"ok 7", nil, []time.Duration{0, 50 * ms, 150 * ms}}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("gives up with the last error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			calls := 0
			f := func(ctx context.Context, v int) (int, error) { calls++; return 0, errBoom }
			_, err := operators.RetryFunc(f, operators.RetryPolicy{})(context.Background(), 1)
			if !errors.Is(err, errBoom) || err.Error() != "retry: attempt 3 of 3: boom" || calls != 3 {
				t.Errorf("err = %v after %d calls, want \"retry: attempt 3 of 3: boom\" after 3", err, calls)
			}
		})
	})
	t.Run("returns at once when ctx ends during the backoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(30*ms, cancel)
			calls := 0
			f := func(ctx context.Context, v int) (int, error) { calls++; return 0, errBoom }
			_, err := operators.RetryFunc(f, operators.RetryPolicy{Jitter: operators.NoJitter})(ctx, 1)
			if !errors.Is(err, context.Canceled) || !errors.Is(err, errBoom) {
				t.Errorf("err = %v, want one that matches context.Canceled and boom", err)
			}
			if got := []any{calls, time.Since(start)}; !cmp.Equal(got, []any{1, 30 * ms}) {
				t.Errorf("calls, elapsed = %v, want [1 30ms]", got)
			}
		})
	})
}
