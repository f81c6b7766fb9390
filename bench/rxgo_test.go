package bench

import (
	"context"
	"runtime"
	"testing"

	rx "github.com/reactivex/rxgo/v2"

	"github.com/sluicego/sluice/flow"
	rxinterop "github.com/sluicego/sluice/interop/rxgo"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// BenchmarkRxInterop measures the rxgo adapters over 1e5 ints beside
// rxgo alone, in the same run: rx.Range → Reduce in rxgo only (the
// baseline); rx.Range → FromObservable (a buffer of 256, Block or
// DropNewest) → sinks.Reduce; and sources.Range → ToObservable → rxgo's
// Reduce.
//
//	go test -run '^$' -bench RxInterop -count 5 ./bench/
func BenchmarkRxInterop(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	want := sumTo(n)
	rxSum := func(_ context.Context, acc, v any) (any, error) {
		if acc == nil {
			return v, nil
		}
		return acc.(int) + v.(int), nil
	}
	run := func(b *testing.B, f func() error) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for b.Loop() {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		reportItems(b, n, &before, &after)
	}
	b.Run("rxgo/range-reduce/n=1e5", func(b *testing.B) {
		run(b, func() error {
			got, err := rx.Range(0, n).Reduce(rxSum).Get()
			if err != nil {
				return err
			}
			return check("rxgo Reduce", got.V, any(want))
		})
	})
	for _, p := range []flow.Overflow{flow.Block, flow.DropNewest} {
		b.Run("from-observable/policy="+p.String()+"/n=1e5", func(b *testing.B) {
			run(b, func() error {
				got, err := sinks.Reduce(ctx, rxinterop.FromObservable[int](rx.Range(0, n), 256, p), 0, sumFn)
				if err != nil {
					return err
				}
				if p == flow.Block {
					return check("Reduce", got, want)
				}
				return nil // DropNewest may drop: the sum is not checked
			})
		})
	}
	b.Run("to-observable/n=1e5", func(b *testing.B) {
		run(b, func() error {
			got, err := rxinterop.ToObservable(sources.Range(0, n)).Reduce(rxSum).Get()
			if err != nil {
				return err
			}
			return check("rxgo Reduce", got.V, any(want))
		})
	})
}
