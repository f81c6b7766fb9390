package operators_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sources"
)

// rsSpy wraps a publisher and records every Request(n) made to it, with
// the time since start, as "n@t".
type rsSpy[T any] struct {
	src   flow.Publisher[T]
	start time.Time
	mu    sync.Mutex
	log   []string
	total int64
}

// Total returns the sum of the positive requests, saturated.
func (p *rsSpy[T]) Total() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

func (p *rsSpy[T]) Subscribe(s flow.Subscriber[T]) {
	p.src.Subscribe(&rsSpySub[T]{Subscriber: s, p: p})
}

func (p *rsSpy[T]) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{}, p.log...)
}

type rsSpySub[T any] struct {
	flow.Subscriber[T]
	p  *rsSpy[T]
	up flow.Subscription
}

func (s *rsSpySub[T]) OnSubscribe(up flow.Subscription) {
	s.up = up
	s.Subscriber.OnSubscribe(s)
}

func (s *rsSpySub[T]) Request(n int64) {
	s.p.mu.Lock()
	s.p.log = append(s.p.log, fmt.Sprintf("%d@%v", n, time.Since(s.p.start)))
	if n > 0 {
		s.p.total = flow.AddCap(s.p.total, n)
	}
	s.p.mu.Unlock()
	s.up.Request(n)
}

func (s *rsSpySub[T]) Cancel() { s.up.Cancel() }

func TestRateLimitPacing(t *testing.T) {
	type step struct {
		at      time.Duration
		request int64
	}
	tests := []struct {
		name     string
		r        rate.Limit
		burst    int
		n        int
		initial  int64
		steps    []step
		times    []time.Duration
		requests []string
	}{
		{
			name: "burst 1: one request per token", r: 10, burst: 1, n: 5, initial: unb,
			times:    []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms},
			requests: []string{"1@0s", "1@100ms", "1@200ms", "1@300ms", "1@400ms"},
		},
		{
			name: "a full bucket goes at once, then one per token", r: 10, burst: 3, n: 6, initial: unb,
			times:    []time.Duration{0, 0, 0, 100 * ms, 200 * ms, 300 * ms},
			requests: []string{"3@0s", "1@100ms", "1@200ms", "1@300ms"},
		},
		{
			name: "never more than downstream asked for", r: 10, burst: 3, n: 6, initial: 1,
			steps:    []step{{at: time.Second, request: 2}, {at: 1010 * ms, request: 3}},
			times:    []time.Duration{0, time.Second, time.Second, 1010 * ms, 1100 * ms, 1200 * ms},
			requests: []string{"1@0s", "2@1s", "1@1.01s", "1@1.1s", "1@1.2s"},
		},
		{
			name: "tokens saved while idle make a burst", r: 2, burst: 4, n: 6, initial: 2,
			steps:    []step{{at: 3 * time.Second, request: 4}},
			times:    []time.Duration{0, 0, 3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second},
			requests: []string{"2@0s", "4@3s"},
		},
		{
			name: "rate.Inf passes demand through", r: rate.Inf, burst: 1, n: 4, initial: 3,
			steps:    []step{{at: ms, request: 1}},
			times:    []time.Duration{0, 0, 0, ms},
			requests: []string{"3@0s", "1@1ms"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				spy := &rsSpy[int]{src: sources.Range(0, tt.n), start: time.Now()}
				rec := newRec[int](t, tt.initial)
				operators.RateLimit[int](spy, tt.r, tt.burst).Subscribe(rec)
				for _, st := range tt.steps {
					time.Sleep(st.at - time.Since(rec.start))
					rec.Request(st.request)
				}
				time.Sleep(time.Hour)
				synctest.Wait()
				want := []any{tt.times, tt.requests, "complete"}
				got := []any{rec.Times(), spy.Log(), rec.Result()}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			})
		})
	}
}

func TestRateLimitShared(t *testing.T) {
	t.Run("two streams share the tokens", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			lim := rate.NewLimiter(10, 1)
			a := &rsSpy[int]{src: sources.Range(0, 3), start: time.Now()}
			b := &rsSpy[int]{src: sources.Range(0, 3), start: time.Now()}
			ra, rb := newRec[int](t, unb), newRec[int](t, unb)
			operators.RateLimitShared[int](a, lim).Subscribe(ra)
			operators.RateLimitShared[int](b, lim).Subscribe(rb)
			time.Sleep(time.Hour)
			synctest.Wait()
			// Six tokens at 10/s: the last item goes at 500ms, whoever
			// gets which token.
			all := append(ra.Times(), rb.Times()...)
			if got := max(all[0], all[1], all[2], all[3], all[4], all[5]); got != 500*ms {
				t.Errorf("last item at %v, want 500ms (items at %v and %v)", got, ra.Times(), rb.Times())
			}
			if ra.Result() != "complete" || rb.Result() != "complete" {
				t.Errorf("results %q, %q, want complete", ra.Result(), rb.Result())
			}
		})
	})
	t.Run("cancel gives the reserved token back", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			lim := rate.NewLimiter(1, 1)
			rec := newRec[int](t, unb)
			operators.RateLimitShared(sources.Range(0, 5), lim).Subscribe(rec)
			synctest.Wait() // item 0 at once, token 1 reserved for 1s
			before := lim.Tokens()
			rec.Cancel()
			after := lim.Tokens()
			time.Sleep(time.Hour)
			synctest.Wait()
			got := []any{rec.Items(), before, after}
			if diff := cmp.Diff([]any{[]int{0}, -1.0, 0.0}, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
}

func TestRateLimitCancelStopsPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spy := &rsSpy[int]{src: sources.Range(0, 100), start: time.Now()}
		rec := newRec[int](t, unb)
		operators.RateLimit[int](spy, 10, 1).Subscribe(rec)
		time.Sleep(150 * ms)
		rec.Cancel()
		time.Sleep(time.Hour)
		synctest.Wait()
		got := []any{rec.Items(), spy.Log(), rec.Result()}
		want := []any{[]int{0, 1}, []string{"1@0s", "1@100ms"}, "open"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestRateLimitPassesErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRec[int](t, 0)
		operators.RateLimit(sources.Error[int](errBoom), 1, 1).Subscribe(rec)
		synctest.Wait()
		bad := newRec[int](t, 0)
		operators.RateLimit(sources.Range(0, 3), 1, 1).Subscribe(bad)
		bad.Request(-2)
		synctest.Wait()
		got := []any{rec.Result(), errors.Is(bad.Err(), flow.ErrNonPositiveRequest), bad.Items()}
		if diff := cmp.Diff([]any{"boom", true, []int{}}, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestRateLimitPanics(t *testing.T) {
	tests := map[string]func(){
		"sluice: RateLimit: nil source":        func() { operators.RateLimit[int](nil, 1, 1) },
		"sluice: RateLimit: r <= 0":            func() { operators.RateLimit(sources.Range(0, 1), 0, 1) },
		"sluice: RateLimit: burst < 1":         func() { operators.RateLimit(sources.Range(0, 1), 1, 0) },
		"sluice: RateLimitShared: nil limiter": func() { operators.RateLimitShared(sources.Range(0, 1), nil) },
		"sluice: RateLimitShared: nil source": func() {
			operators.RateLimitShared[int](nil, rate.NewLimiter(1, 1))
		},
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

// Stress: RateLimit under -race with random demand from one goroutine
// racing with the timer's goroutine. Properties: no protocol violation,
// every item in order, nothing dropped, and upstream never asked for
// more than downstream.
func TestRateLimitStress(t *testing.T) {
	for iter := range 30 {
		rng := rand.New(rand.NewPCG(uint64(iter), 3))
		spy := &rsSpy[int]{src: sources.Range(0, 60), start: time.Now()}
		rec := flowtest.NewSubscriber[int](t, 0, flowtest.Timeout(5*time.Second))
		operators.RateLimit[int](spy, rate.Limit(2e4+rng.Float64()*1e5), 1+rng.IntN(5)).Subscribe(rec)
		for !rec.Terminated() {
			rec.Request(1 + rng.Int64N(5))
			time.Sleep(time.Duration(rng.IntN(50)) * time.Microsecond)
		}
		want := make([]int, 60)
		for i := range want {
			want[i] = i
		}
		if diff := cmp.Diff(want, rec.Items()); diff != "" || !rec.Completed() {
			t.Fatalf("#%d: completed=%v (-want +got)\n%s", iter, rec.Completed(), diff)
		}
		if up, down := spy.Total(), rec.Requested(); up > down {
			t.Fatalf("#%d: requested %d upstream for %d from downstream", iter, up, down)
		}
	}
}
