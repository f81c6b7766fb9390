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

func TestAdaptiveLimitAIMD(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes []int
		l := operators.NewAdaptiveLimit(operators.AdaptiveConfig{
			Min: 2, Max: 6, Initial: 4, Target: 100 * ms,
			OnLimit: func(n int) { changes = append(changes, n) },
		})
		ctx := context.Background()
		acquire := func(n int) []time.Time {
			var starts []time.Time
			for range n {
				s, err := l.Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				starts = append(starts, s)
			}
			return starts
		}
		var limits []int
		// Four fast calls at once: the limit is in use, it grows while at
		// least half of it is in flight: 4 → 5 (4 of 4), → 6 (3 of 5),
		// then 2 of 6 and 1 of 6 leave it.
		starts := acquire(4)
		time.Sleep(10 * ms)
		for _, s := range starts {
			l.Release(s, nil)
			limits = append(limits, l.Limit())
		}
		// At the ceiling it stays.
		starts = acquire(6)
		for _, s := range starts {
			l.Release(s, nil)
		}
		limits = append(limits, l.Limit())
		// Slow calls and failures shrink it: floor(6×0.9) = 5, then
		// floor(5×0.9) = 4, floor(4×0.9) = 3, then the floor 2.
		s := acquire(1)[0]
		time.Sleep(101 * ms)
		l.Release(s, nil)
		limits = append(limits, l.Limit())
		for range 3 {
			l.Release(acquire(1)[0], errBoom)
			limits = append(limits, l.Limit())
		}
		// A cancelled call is not overload: judged by its latency, it
		// counts as a success (1 of 2 in use): 2 → 3.
		l.Release(acquire(1)[0], context.Canceled)
		limits = append(limits, l.Limit())
		want := []any{[]int{5, 6, 6, 6, 6, 5, 4, 3, 2, 3}, []int{5, 6, 5, 4, 3, 2, 3}, 0}
		got := []any{limits, changes, l.InFlight()}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestAdaptiveLimitAcquireWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := operators.NewAdaptiveLimit(operators.AdaptiveConfig{Max: 4, Target: time.Second})
		start := time.Now()
		s1, _ := l.Acquire(context.Background()) // the limit is 1 (Min)
		time.AfterFunc(50*ms, func() { l.Release(s1, nil) })
		_, err := l.Acquire(context.Background())
		waited := time.Since(start)
		ctx, cancel := context.WithTimeout(context.Background(), 30*ms)
		defer cancel()
		_, err2 := l.Acquire(ctx) // the limit is 2 now, one in flight
		_, err3 := l.Acquire(ctx) // full: waits for ctx
		got := []any{err, waited, err2, errors.Is(err3, context.DeadlineExceeded), time.Since(start), l.InFlight()}
		want := []any{nil, 50 * ms, nil, true, 80 * ms, 2}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

// rsConcurrency counts calls in flight and records the largest count.
type rsConcurrency struct {
	mu       sync.Mutex
	now, top int
}

func (c *rsConcurrency) enter() {
	c.mu.Lock()
	c.now++
	c.top = max(c.top, c.now)
	c.mu.Unlock()
}

func (c *rsConcurrency) leave() {
	c.mu.Lock()
	c.now--
	c.mu.Unlock()
}

func TestMapAsyncAdaptive(t *testing.T) {
	tests := []struct {
		name      string
		latency   func(v int) time.Duration
		initial   int
		wantLimit int
		wantTop   int
	}{
		{"a fast service is pushed to the ceiling", func(int) time.Duration { return 10 * ms }, 1, 8, 8},
		{"a slow service is backed off to the floor", func(int) time.Duration { return 200 * ms }, 8, 2, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var conc rsConcurrency
				var mu sync.Mutex
				var limits []int
				l := operators.NewAdaptiveLimit(operators.AdaptiveConfig{
					Min: 2, Max: 8, Initial: max(2, tt.initial), Target: 100 * ms,
					OnLimit: func(n int) { mu.Lock(); limits = append(limits, n); mu.Unlock() },
				})
				f := func(ctx context.Context, v int) (int, error) {
					conc.enter()
					defer conc.leave()
					time.Sleep(tt.latency(v))
					return v * 2, nil
				}
				got, err := sinks.Collect(context.Background(), operators.MapAsyncAdaptive(sources.Range(0, 100), f, l))
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				want := make([]int, 100)
				for i := range want {
					want[i] = 2 * i
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("results (-want +got)\n%s", diff)
				}
				if got := []int{l.Limit(), conc.top}; !cmp.Equal(got, []int{tt.wantLimit, tt.wantTop}) {
					t.Errorf("limit, most in flight = %v, want [%d %d] (limits %v)", got, tt.wantLimit, tt.wantTop, limits)
				}
			})
		})
	}
}

func TestAdaptiveLimitNeverExceeded(t *testing.T) {
	// Stress under -race: concurrent callers with random latencies and
	// errors; the number in flight never exceeds the limit at admission,
	// nor Max, and every slot is given back.
	l := operators.NewAdaptiveLimit(operators.AdaptiveConfig{Min: 1, Max: 5, Target: 200 * time.Microsecond})
	var conc rsConcurrency
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := operators.WithAdaptiveLimit(l, func(ctx context.Context, v int) (int, error) {
				conc.enter()
				defer conc.leave()
				if v%7 == 0 {
					return 0, errBoom
				}
				time.Sleep(time.Duration(v%3) * 100 * time.Microsecond)
				return v, nil
			})
			for i := range 100 {
				_, _ = f(context.Background(), g*100+i)
			}
		}()
	}
	wg.Wait()
	if conc.top > 5 || l.InFlight() != 0 || l.Limit() < 1 || l.Limit() > 5 {
		t.Errorf("most in flight %d (max 5), in flight at the end %d, limit %d", conc.top, l.InFlight(), l.Limit())
	}
}

func TestAdaptivePanics(t *testing.T) {
	tests := map[string]func(){
		"sluice: NewAdaptiveLimit: AdaptiveConfig.Max < Min (Max is required)": func() {
			operators.NewAdaptiveLimit(operators.AdaptiveConfig{Target: ms})
		},
		"sluice: NewAdaptiveLimit: AdaptiveConfig.Target <= 0 (Target is required)": func() {
			operators.NewAdaptiveLimit(operators.AdaptiveConfig{Max: 2})
		},
		"sluice: NewAdaptiveLimit: AdaptiveConfig.Backoff outside (0, 1)": func() {
			operators.NewAdaptiveLimit(operators.AdaptiveConfig{Max: 2, Target: ms, Backoff: 1})
		},
		"sluice: NewAdaptiveLimit: AdaptiveConfig.Initial outside [Min, Max]": func() {
			operators.NewAdaptiveLimit(operators.AdaptiveConfig{Max: 2, Target: ms, Initial: 3})
		},
		"sluice: MapAsyncAdaptive: nil AdaptiveLimit": func() {
			operators.MapAsyncAdaptive(sources.Range(0, 1), func(context.Context, int) (int, error) { return 0, nil }, nil)
		},
		"sluice: WithAdaptiveLimit: nil function": func() {
			operators.WithAdaptiveLimit[int, int](operators.NewAdaptiveLimit(operators.AdaptiveConfig{Max: 1, Target: ms}), nil)
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

// BenchmarkAdaptiveLimit measures the cost of a call through
// WithAdaptiveLimit with a function that returns at once.
func BenchmarkAdaptiveLimit(b *testing.B) {
	l := operators.NewAdaptiveLimit(operators.AdaptiveConfig{Max: 8, Target: time.Second})
	g := operators.WithAdaptiveLimit(l, func(ctx context.Context, v int) (int, error) { return v, nil })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = g(ctx, 1)
	}
}
