package sinks_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// The sinks run Range and Slice as a plain loop (internal/fuse) unless an
// option fixes the request pattern. These tests check that the fused path
// gives exactly what the subscription path gives.

func TestFusedPathMatchesSubscriptionPath(t *testing.T) {
	ctx := context.Background()
	pubs := map[string]flow.Publisher[int]{
		"range":       sources.Range(3, 1000),
		"empty range": sources.Range(0, 0),
		"slice":       sources.Slice([]int{5, 4, 3, 2, 1}),
	}
	for name, pub := range pubs {
		t.Run(name, func(t *testing.T) {
			type result struct {
				Items []int
				Sum   int
				Count int64
			}
			run := func(opts ...sinks.Option) result {
				var r result
				err := sinks.ForEach(ctx, pub, func(v int) error { r.Items = append(r.Items, v); return nil }, opts...)
				if err != nil {
					t.Fatalf("ForEach: %v", err)
				}
				collected, err := sinks.Collect(ctx, pub, opts...)
				if err != nil || !cmp.Equal(collected, r.Items, cmpopts.EquateEmpty()) {
					t.Fatalf("Collect = %v, %v; ForEach saw %v", collected, err, r.Items)
				}
				if r.Sum, err = sinks.Reduce(ctx, pub, 0, func(a, v int) int { return a + v }, opts...); err != nil {
					t.Fatalf("Reduce: %v", err)
				}
				if r.Count, err = sinks.Drain(ctx, pub, opts...); err != nil {
					t.Fatalf("Drain: %v", err)
				}
				return r
			}
			fused, subscribed := run(), run(sinks.Prefetch(7))
			if diff := cmp.Diff(subscribed, fused, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("fused path differs from subscription path (-subscribed +fused)\n%s", diff)
			}
		})
	}
}

func TestFusedPathStopsOnContextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var seen []int
		err := sinks.ForEach(ctx, sources.Range(0, 1_000_000), func(v int) error {
			seen = append(seen, v)
			if v == 4 {
				cancel()
				synctest.Wait() // let the context's AfterFunc run
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ForEach = %v, want context.Canceled", err)
		}
		if diff := cmp.Diff([]int{0, 1, 2, 3, 4}, seen); diff != "" {
			t.Errorf("items seen (-want +got)\n%s", diff)
		}
	})
}

func TestFusedPathReturnsFnErrorAndPanics(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	var seen []int
	err := sinks.ForEach(ctx, sources.Range(0, 100), func(v int) error {
		seen = append(seen, v)
		if v == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("ForEach = %v, want boom", err)
	}
	if diff := cmp.Diff([]int{0, 1, 2}, seen); diff != "" {
		t.Errorf("items seen (-want +got)\n%s", diff)
	}

	acc, err := sinks.Reduce(ctx, sources.Range(1, 100), 0, func(a, v int) int {
		if v == 4 {
			panic(boom)
		}
		return a + v
	})
	var pe *flow.PanicError
	if !errors.As(err, &pe) || !errors.Is(err, boom) {
		t.Errorf("Reduce error = %v, want a *flow.PanicError wrapping boom", err)
	}
	if acc != 1+2+3 {
		t.Errorf("Reduce acc = %d, want the accumulator before the panic, 6", acc)
	}
}

func TestFusedPathDoesNotRunWhenContextIsDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	err := sinks.ForEach(ctx, sources.Range(0, 10), func(int) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Errorf("ForEach = %v after %d calls, want context.Canceled after 0", err, calls)
	}
}

// twoWay runs as a fused loop and as a subscription, and records which
// one a sink chose.
type twoWay struct {
	flow.Publisher[int]
	used *[]string
}

func (p twoWay) Subscribe(s flow.Subscriber[int]) {
	*p.used = append(*p.used, "subscribe")
	p.Publisher.Subscribe(s)
}

func (p twoWay) FusedLoop(run *fuse.Run, yield func(int) bool) error {
	*p.used = append(*p.used, "loop")
	for i := range 3 {
		if !yield(i) {
			break
		}
	}
	return nil
}

func TestSinksChooseTheFusedLoopOnlyWithDefaultDemand(t *testing.T) {
	ctx := context.Background()
	var used []string
	pub := twoWay{Publisher: sources.Range(0, 3), used: &used}
	sum := func(a, v int) int { return a + v }
	for _, opts := range [][]sinks.Option{nil, {sinks.Prefetch(8)}, {sinks.Unbounded()}} {
		if _, err := sinks.Reduce(ctx, pub, 0, sum, opts...); err != nil {
			t.Fatal(err)
		}
		if _, err := sinks.Drain(ctx, pub, opts...); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"loop", "loop", "subscribe", "subscribe", "loop", "loop"}
	if diff := cmp.Diff(want, used); diff != "" {
		t.Errorf("paths taken (-want +got)\n%s", diff)
	}
}
