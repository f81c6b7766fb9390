package operators_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// fiDrain runs pub into sinks.Drain and fails b unless it emitted n items.
func fiDrain[T any](b *testing.B, pub flow.Publisher[T], n int) {
	got, err := sinks.Drain(context.Background(), pub)
	if err != nil || got != int64(n) {
		b.Fatalf("drained %d items (%v), want %d", got, err, n)
	}
}

// BenchmarkMerge merges k Range sources of 1e6/k items each into Drain,
// beside the same number of goroutines sending into one channel buffered
// 256 (the naive baseline).
func BenchmarkMerge(b *testing.B) {
	for _, k := range []int{1, 4, 16} {
		per := benchItems / k
		b.Run(fmt.Sprintf("sources=%d", k), func(b *testing.B) {
			srcs := make([]flow.Publisher[int], k)
			for i := range srcs {
				srcs[i] = sources.Range(i*per, per)
			}
			pub := operators.Merge(srcs...)
			for b.Loop() {
				fiDrain(b, pub, k*per)
			}
			reportPerItem(b, k*per)
		})
		b.Run(fmt.Sprintf("baseline=channels/sources=%d", k), func(b *testing.B) {
			for b.Loop() {
				ch := make(chan int, 256)
				var wg sync.WaitGroup
				for i := range k {
					wg.Go(func() {
						for v := i * per; v < (i+1)*per; v++ {
							ch <- v
						}
					})
				}
				go func() { wg.Wait(); close(ch) }()
				n := 0
				for range ch {
					n++
				}
				if n != k*per {
					b.Fatal(n)
				}
			}
			reportPerItem(b, k*per)
		})
	}
}

// BenchmarkConcat concatenates k Range sources of 1e6/k items each.
func BenchmarkConcat(b *testing.B) {
	for _, k := range []int{4, 1000} {
		per := benchItems / k
		b.Run(fmt.Sprintf("sources=%d", k), func(b *testing.B) {
			srcs := make([]flow.Publisher[int], k)
			for i := range srcs {
				srcs[i] = sources.Range(i*per, per)
			}
			pub := operators.Concat(srcs...)
			for b.Loop() {
				fiDrain(b, pub, k*per)
			}
			reportPerItem(b, k*per)
		})
	}
}

// BenchmarkZip zips two Range sources of 1e6 items (per row).
func BenchmarkZip(b *testing.B) {
	b.Run("sources=2", func(b *testing.B) {
		pub := operators.Zip2(sources.Range(0, benchItems), sources.Range(0, benchItems), func(x, y int) int { return x + y })
		for b.Loop() {
			fiDrain(b, pub, benchItems)
		}
		reportPerItem(b, benchItems)
	})
}

// BenchmarkFlatMap maps 1e6/per items to Range sources of per items.
// Drain keeps 64 to 256 items requested, so an inner of one or two items
// always runs inline, and one of 100 whenever the demand left covers it.
// inner=1/subscribed hides the Range behind a flow.PublisherFunc, so that
// FlatMap subscribes to it (the path every inner took before the inline
// one); inner=just2 maps v to Just(v, v).
func BenchmarkFlatMap(b *testing.B) {
	bench := func(name string, per int, ordered bool, inner func(v int) flow.Publisher[int]) {
		b.Run(fmt.Sprintf("inner=%s/ordered=%v", name, ordered), func(b *testing.B) {
			opts := []operators.Option{}
			if ordered {
				opts = append(opts, operators.Ordered())
			}
			n := benchItems / per
			pub := operators.FlatMap(sources.Range(0, n), inner, opts...)
			for b.Loop() {
				fiDrain(b, pub, n*per)
			}
			reportPerItem(b, n*per)
		})
	}
	for _, ordered := range []bool{false, true} {
		for _, per := range []int{1, 100} {
			bench(fmt.Sprint(per), per, ordered, func(v int) flow.Publisher[int] { return sources.Range(v*per, per) })
		}
		bench("1/subscribed", 1, ordered, func(v int) flow.Publisher[int] {
			return flow.PublisherFunc[int](sources.Range(v, 1).Subscribe)
		})
		bench("just2", 2, ordered, func(v int) flow.Publisher[int] { return sources.Just(v, v) })
	}
}

// BenchmarkMergePriority merges 4 Range sources of 250 000 items with
// different priorities.
func BenchmarkMergePriority(b *testing.B) {
	b.Run("sources=4", func(b *testing.B) {
		per := benchItems / 4
		var srcs []operators.PrioritySource[int]
		for i := range 4 {
			srcs = append(srcs, operators.PrioritySource[int]{Source: sources.Range(i*per, per), Priority: i})
		}
		pub := operators.MergePriority(srcs)
		for b.Loop() {
			fiDrain(b, pub, 4*per)
		}
		reportPerItem(b, 4*per)
	})
}
