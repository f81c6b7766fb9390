package bench

import (
	"context"
	"testing"

	"github.com/sluicego/sluice/monitor"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

const items = 1_000_000

// add is the reduction every scenario uses. It is a package-level func
// value, called indirectly as sluice calls user functions, so the plain
// loop pays for the same call.
var add = func(acc, v int) int { return acc + v }

func reportPerItem(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/item")
}

// sink keeps results alive so the compiler cannot drop the loops.
var sink int

// BenchmarkPlainLoop is the floor: the same reduction with no pipeline.
func BenchmarkPlainLoop(b *testing.B) {
	b.Run("n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		f := add
		for b.Loop() {
			acc := 0
			for i := range items {
				acc = f(acc, i)
			}
			sink = acc
		}
		reportPerItem(b, items)
	})
}

// BenchmarkRangeReduce is the core budget: Range(1e6) → sinks.Reduce on
// one goroutine. With default options the sink runs Range as a fused loop;
// the "subscribed" variant forces the Request/OnNext path.
func BenchmarkRangeReduce(b *testing.B) {
	ctx := context.Background()
	src := sources.Range(0, items)
	b.Run("n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			acc, err := sinks.Reduce(ctx, src, 0, add)
			if err != nil || acc != items*(items-1)/2 {
				b.Fatalf("Reduce = %d, %v", acc, err)
			}
		}
		reportPerItem(b, items)
	})
	// The same through the protocol: an explicit Prefetch turns off the
	// fused loop, so every item is an OnNext and every 192 a Request.
	b.Run("n=1e6/subscribed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			acc, err := sinks.Reduce(ctx, src, 0, add, sinks.Prefetch(sinks.DefaultPrefetch))
			if err != nil || acc != items*(items-1)/2 {
				b.Fatalf("Reduce = %d, %v", acc, err)
			}
		}
		reportPerItem(b, items)
	})
}

// BenchmarkChain is the synchronous chain of the performance budget:
// Range(1e6) → Map → Filter → Reduce on one goroutine.
func BenchmarkChain(b *testing.B) {
	ctx := context.Background()
	double := func(v int) int { return v * 2 }
	keep := func(v int) bool { return v%3 != 0 }
	b.Run("sync/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		pub := operators.Filter(operators.Map(sources.Range(0, items), double), keep)
		for b.Loop() {
			if _, err := sinks.Reduce(ctx, pub, 0, add); err != nil {
				b.Fatal(err)
			}
		}
		reportPerItem(b, items)
	})
	// The same chain with monitoring on: a registry in the sink's
	// context, so every stage registers and counts. One registry per run
	// (registration is per subscription, about a microsecond).
	b.Run("sync/n=1e6/monitor=on", func(b *testing.B) {
		b.ReportAllocs()
		pub := operators.Filter(operators.Map(sources.Range(0, items), double), keep)
		for b.Loop() {
			reg := monitor.New("bench", monitor.Logger(nil))
			if _, err := sinks.Reduce(reg.Context(ctx), pub, 0, add); err != nil {
				b.Fatal(err)
			}
			reg.Close()
		}
		reportPerItem(b, items)
	})
	// The floor for any library: the same loop calling the three
	// functions through func values the compiler cannot inline (package
	// variables), as sluice must call the functions it is given. The
	// "plain" loop below lets the compiler inline double and keep.
	b.Run("plain/n=1e6/funcvalues", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			acc := 0
			for i := range items {
				if v := doubleFn(i); keepFn(v) {
					acc = sumFn(acc, v)
				}
			}
			sink = acc
		}
		reportPerItem(b, items)
	})
	b.Run("plain/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		f, m, k := add, double, keep
		for b.Loop() {
			acc := 0
			for i := range items {
				if v := m(i); k(v) {
					acc = f(acc, v)
				}
			}
			sink = acc
		}
		reportPerItem(b, items)
	})
}
