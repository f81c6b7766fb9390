package bench

import (
	"context"
	"testing"

	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// The async chain of the performance budget: Range(1e6) → Map → Filter →
// Reduce with a goroutine hop between each stage, in sluice (three
// PublishOn) and as the Go programmer would write it (three goroutines
// joined by channels, the reduction on the caller's goroutine).

var (
	asyncDouble = func(v int) int { return v * 2 }
	asyncKeep   = func(v int) bool { return v%3 != 0 }
)

// asyncWant is the result every variant must produce.
func asyncWant() int {
	acc := 0
	for i := range items {
		if v := asyncDouble(i); asyncKeep(v) {
			acc = add(acc, v)
		}
	}
	return acc
}

// BenchmarkAsyncChain runs the chain through three PublishOn boundaries.
// "singles" gives each boundary a scheduler of its own (three goroutines,
// as in the channel baseline); "pool=2" pins the three to a pool sized to
// the machine's two cores.
//
// "handwritten" is the floor: the same three goroutines joined by the
// leanest rings one can write for this one chain, with no protocol at all
// (handwritten_test.go).
//
// Medians of 10 on a 2-core x86 VM (go test -run '^$' -bench AsyncChain
// -count 10 ./bench/), which drift by ±20 % between runs: sluice 16.5
// ns/item (singles) and 19.9 (pool=2), hand-written rings 15.8, channels
// buffered 256: 176.6, unbuffered: 682. The target of the performance
// budget, 10× the buffered channels, is met on singles (10.7×) and not
// on pool=2 (8.9×); see docs/benchmarks.md.
func BenchmarkAsyncChain(b *testing.B) {
	ctx := context.Background()
	want := asyncWant()
	run := func(b *testing.B, s1, s2, s3 scheduler.Scheduler, opts ...operators.Option) {
		b.ReportAllocs()
		pub := operators.PublishOn(
			operators.Filter(
				operators.PublishOn(
					operators.Map(operators.PublishOn(sources.Range(0, items), s1, opts...), asyncDouble),
					s2, opts...),
				asyncKeep),
			s3, opts...)
		for b.Loop() {
			got, err := sinks.Reduce(ctx, pub, 0, add)
			if err != nil || got != want {
				b.Fatalf("Reduce = %d, %v; want %d", got, err, want)
			}
		}
		reportPerItem(b, items)
	}
	b.Run("sluice/singles/n=1e6", func(b *testing.B) {
		s1, s2, s3 := scheduler.NewSingle(), scheduler.NewSingle(), scheduler.NewSingle()
		defer s1.Close()
		defer s2.Close()
		defer s3.Close()
		run(b, s1, s2, s3)
	})
	b.Run("sluice/pool=2/n=1e6", func(b *testing.B) {
		p := scheduler.NewPool(2)
		defer p.Close()
		run(b, p, p, p)
	})
	// A larger prefetch means fewer hand-overs between goroutines per
	// item; the channels below gain nothing from a larger buffer.
	b.Run("sluice/singles/prefetch=1024/n=1e6", func(b *testing.B) {
		s1, s2, s3 := scheduler.NewSingle(), scheduler.NewSingle(), scheduler.NewSingle()
		defer s1.Close()
		defer s2.Close()
		defer s3.Close()
		run(b, s1, s2, s3, operators.Prefetch(1024))
	})
	// The floor: hand-written rings with no protocol (handwritten_test.go).
	b.Run("handwritten/spsc=256/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got := handwrittenChain(items); got != want {
				b.Fatalf("handwrittenChain = %d, want %d", got, want)
			}
		}
		reportPerItem(b, items)
	})
	b.Run("chan/buffered=256/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got := chanChain(256); got != want {
				b.Fatalf("chanChain = %d, want %d", got, want)
			}
		}
		reportPerItem(b, items)
	})
	b.Run("chan/buffered=1024/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got := ChanChain(items, 1024); got != want {
				b.Fatalf("ChanChain = %d, want %d", got, want)
			}
		}
		reportPerItem(b, items)
	})
	b.Run("chan/unbuffered/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got := chanChain(0); got != want {
				b.Fatalf("chanChain = %d, want %d", got, want)
			}
		}
		reportPerItem(b, items)
	})
}

// chanChain is the baseline: the source, the map and the filter each on a
// goroutine of their own, joined by channels of capacity buf, and the
// reduction on the caller's goroutine (ChanChain, shared with sluicebench).
func chanChain(buf int) int { return ChanChain(items, buf) }
