package operators_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// cbHarness drives a breaker with calls whose outcome the test chooses,
// and records state changes and outcomes as strings.
type cbHarness struct {
	cb     *operators.CircuitBreaker
	start  time.Time
	mu     sync.Mutex
	events []string
	calls  int
}

func newCBHarness(cfg operators.BreakerConfig) *cbHarness {
	h := &cbHarness{start: time.Now()}
	cfg.OnStateChange = func(from, to operators.BreakerState) {
		h.events = append(h.events, fmt.Sprintf("%v->%v@%v", from, to, time.Since(h.start)))
	}
	h.cb = operators.NewCircuitBreaker(cfg)
	return h
}

// call makes one call through the breaker that fails if fail is set, and
// returns "ok", "fail" or "rejected".
func (h *cbHarness) call(fail bool) string {
	f := operators.Protect(h.cb, func(ctx context.Context, v int) (int, error) {
		h.mu.Lock()
		h.calls++
		h.mu.Unlock()
		if fail {
			return 0, errBoom
		}
		return v, nil
	}, nil)
	_, err := f(context.Background(), 1)
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, operators.ErrCircuitOpen):
		return "rejected"
	}
	return "fail"
}

func TestCircuitBreakerTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newCBHarness(operators.BreakerConfig{
			Name: "cb", Window: 4, MinCalls: 4, FailureRate: 0.5, CoolDown: time.Second, HalfOpenProbes: 2,
		})
		var got []string
		do := func(fails ...bool) {
			for _, f := range fails {
				got = append(got, h.call(f))
			}
		}
		const ok, fail = false, true
		do(fail, ok, ok, ok) // 1 of 4: closed
		do(fail)             // the window slides: [ok ok ok fail], 1 of 4
		do(fail)             // [ok ok fail fail]: 2 of 4 opens
		do(ok)               // rejected without a call
		time.Sleep(999 * ms)
		do(ok) // still open
		time.Sleep(ms)
		do(ok, fail) // half-open: the first probe succeeds, the second fails
		do(ok)       // open again: rejected
		time.Sleep(time.Second)
		do(ok, ok)           // half-open, two probes succeed: closed
		do(fail, fail, fail) // the window restarted: 3 calls < MinCalls
		do(fail)             // 4 of 4: open
		want := []string{
			"fail", "ok", "ok", "ok", "fail", "fail", "rejected", "rejected",
			"ok", "fail", "rejected", "ok", "ok", "fail", "fail", "fail", "fail",
		}
		wantEvents := []string{
			"closed->open@0s", "open->half-open@1s", "half-open->open@1s",
			"open->half-open@2s", "half-open->closed@2s", "closed->open@2s",
		}
		checkBreakerRun(t, want, got, wantEvents, h.events)
		if got, want := h.calls, len(want)-3; got != want {
			t.Errorf("f called %d times, want %d (rejected calls do not call it)", got, want)
		}
		if got := h.cb.State(); got != operators.BreakerOpen {
			t.Errorf("State() = %v, want open", got)
		}
	})
}

func TestCircuitBreakerHalfOpenLimitsProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cb := operators.NewCircuitBreaker(operators.BreakerConfig{Window: 1, CoolDown: time.Second})
		_ = cb.Do(context.Background(), func(context.Context) error { return errBoom }) // opens
		time.Sleep(time.Second)
		release := make(chan struct{})
		probe := make(chan error)
		go func() {
			probe <- cb.Do(context.Background(), func(context.Context) error { <-release; return nil })
		}()
		synctest.Wait() // the probe is in flight
		second := cb.Do(context.Background(), func(context.Context) error { return nil })
		state := cb.State()
		close(release)
		got := []any{errors.Is(second, operators.ErrCircuitOpen), state, <-probe == nil, cb.State()}
		want := []any{true, operators.BreakerHalfOpen, true, operators.BreakerClosed}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

// A failure admitted before the breaker opened, and returned after it
// closed again, belongs to an old window: it must not count, with a
// count-based window or a time-based one.
func TestCircuitBreakerIgnoresStaleResults(t *testing.T) {
	for name, cfg := range map[string]operators.BreakerConfig{
		"count": {Window: 2, MinCalls: 1, CoolDown: time.Second},
		"time":  {WindowDuration: time.Minute, MinCalls: 1, CoolDown: time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cb := operators.NewCircuitBreaker(cfg)
				release := make(chan struct{})
				slow := make(chan error)
				go func() {
					slow <- cb.Do(context.Background(), func(context.Context) error { <-release; return errBoom })
				}()
				synctest.Wait()
				_ = cb.Do(context.Background(), func(context.Context) error { return errBoom }) // opens
				time.Sleep(time.Second)
				_ = cb.Do(context.Background(), func(context.Context) error { return nil }) // probe: closes
				close(release)
				<-slow // a failure admitted while closed, before the breaker opened
				if got := cb.State(); got != operators.BreakerClosed {
					t.Errorf("State() = %v, want closed: a stale failure was counted", got)
				}
			})
		})
	}
}

func TestCircuitBreakerFailureKinds(t *testing.T) {
	cb := operators.NewCircuitBreaker(operators.BreakerConfig{Window: 1})
	// A cancelled caller is not the service's failure.
	_ = cb.Do(context.Background(), func(context.Context) error { return context.Canceled })
	st1 := cb.State()
	// A panic is a failure, and is re-raised.
	func() {
		defer func() { _ = recover() }()
		_ = cb.Do(context.Background(), func(context.Context) error { panic("bug") })
	}()
	st2 := cb.State()
	err := cb.Do(context.Background(), func(context.Context) error { return nil })
	got := []any{st1, st2, err.Error()}
	want := []any{operators.BreakerClosed, operators.BreakerOpen, cb.Name() + ": sluice: circuit open"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestCircuitBreakerWithMapAsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cb := operators.NewCircuitBreaker(operators.BreakerConfig{Window: 3, MinCalls: 3, CoolDown: time.Second})
		call := func(ctx context.Context, v int) (string, error) {
			time.Sleep(10 * ms)
			if v >= 2 && v < 6 {
				return "", errBoom // the service is down for a while
			}
			return fmt.Sprint(v), nil
		}
		fallback := func(ctx context.Context, v int, err error) (string, error) {
			return fmt.Sprintf("cached %d", v), nil
		}
		// Failures that get through the breaker are turned into a
		// result too, so that the stream goes on.
		tolerant := func(ctx context.Context, v int) (string, error) {
			r, err := operators.Protect(cb, call, fallback)(ctx, v)
			if err != nil {
				return fmt.Sprintf("failed %d", v), nil
			}
			return r, nil
		}
		got, err := sinks.Collect(context.Background(), operators.MapAsync(sources.Range(0, 8), tolerant, 1))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"0", "1", "failed 2", "failed 3", "cached 4", "cached 5", "cached 6", "cached 7"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

// hammerBreaker makes 4000 calls through cb from 8 goroutines, a third of
// them failing, and checks that every call was made or rejected.
func hammerBreaker(t *testing.T, cb *operators.CircuitBreaker) {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				err := cb.Do(context.Background(), func(context.Context) error {
					if (g+i)%3 == 0 {
						return errBoom
					}
					return nil
				})
				k := "ok"
				switch {
				case errors.Is(err, operators.ErrCircuitOpen):
					k = "rejected"
				case err != nil:
					k = "fail"
				}
				mu.Lock()
				counts[k]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got := counts["ok"] + counts["fail"] + counts["rejected"]; got != 4000 {
		t.Errorf("outcomes %v add up to %d, want 4000", counts, got)
	}
}

func TestCircuitBreakerConcurrentUse(t *testing.T) {
	// Many goroutines through one breaker under -race: every call is
	// either made or rejected, and the counts add up.
	cb := operators.NewCircuitBreaker(operators.BreakerConfig{Window: 10, CoolDown: ms})
	hammerBreaker(t, cb)
	if !slices.Contains([]operators.BreakerState{operators.BreakerClosed, operators.BreakerOpen, operators.BreakerHalfOpen}, cb.State()) {
		t.Errorf("State() = %v", cb.State())
	}
}

func TestCircuitBreakerPanics(t *testing.T) {
	tests := map[string]func(){
		"sluice: NewCircuitBreaker: BreakerConfig.Window < 0": func() {
			operators.NewCircuitBreaker(operators.BreakerConfig{Window: -1})
		},
		"sluice: NewCircuitBreaker: BreakerConfig.MinCalls > Window": func() {
			operators.NewCircuitBreaker(operators.BreakerConfig{Window: 2, MinCalls: 3})
		},
		"sluice: NewCircuitBreaker: BreakerConfig.FailureRate outside (0, 1]": func() {
			operators.NewCircuitBreaker(operators.BreakerConfig{FailureRate: 1.5})
		},
		"sluice: Protect: nil CircuitBreaker": func() {
			operators.Protect[int, int](nil, func(context.Context, int) (int, error) { return 0, nil }, nil)
		},
		"sluice: Protect: nil function": func() {
			operators.Protect[int, int](operators.NewCircuitBreaker(operators.BreakerConfig{}), nil, nil)
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

func TestBreakerStateString(t *testing.T) {
	got := []string{operators.BreakerClosed.String(), operators.BreakerOpen.String(),
		operators.BreakerHalfOpen.String(), operators.BreakerState(9).String()}
	if diff := cmp.Diff([]string{"closed", "open", "half-open", "BreakerState(9)"}, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// BenchmarkCircuitBreaker measures the cost of a call through Protect
// with a function that returns at once, next to the bare call.
func BenchmarkCircuitBreaker(b *testing.B) {
	f := func(ctx context.Context, v int) (int, error) { return v, nil }
	ctx := context.Background()
	b.Run("impl=bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = f(ctx, 1)
		}
	})
	b.Run("impl=Protect", func(b *testing.B) {
		g := operators.Protect(operators.NewCircuitBreaker(operators.BreakerConfig{}), f, nil)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = g(ctx, 1)
		}
	})
}
