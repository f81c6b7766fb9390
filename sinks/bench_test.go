package sinks_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sinks"
)

// intRange emits start, start+1, …, start+count-1 and completes: a
// synchronous source as lean as sources.Range, kept here so that the
// benchmarks and examples of this package do not depend on package
// sources. Its emission loop is owned by the Request that moves the
// demand off zero (flow.Demand) and checks a cancelled flag per item.
func intRange(start, count int) flow.Publisher[int] {
	return rangePub{start: start, end: start + count}
}

type rangePub struct{ start, end int }

func (p rangePub) Subscribe(s flow.Subscriber[int]) {
	flow.RequireSubscriber(s)
	s.OnSubscribe(&rangeSub{s: s, i: p.start, end: p.end})
}

type rangeSub struct {
	demand    flow.Demand
	cancelled atomic.Bool
	s         flow.Subscriber[int]
	i, end    int
}

func (r *rangeSub) Request(n int64) {
	if n > 0 && r.demand.Add(n) == 0 {
		r.emit()
	}
}

func (r *rangeSub) Cancel() { r.cancelled.Store(true) }

func (r *rangeSub) emit() {
	s, i, end := r.s, r.i, r.end
	n := r.demand.Load()
	var e int64
	for {
		for e != n && i != end {
			if r.cancelled.Load() {
				return
			}
			s.OnNext(i)
			i++
			e++
		}
		if i == end {
			if !r.cancelled.Load() {
				r.s = nil
				s.OnComplete()
			}
			return
		}
		if n = r.demand.Load(); n == e {
			r.i = i
			if n = r.demand.Produced(e); n == 0 {
				return
			}
			e = 0
		}
	}
}

// sum is called through a func value by both Reduce and the plain loop.
var sum = func(acc, v int) int { return acc + v }

var sink int

func perItem(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/item")
}

// BenchmarkReduce compares Range(1e6) → Reduce with the loops it
// replaces: "loop" is the compiler's best (sum inlined), "loop-func"
// calls sum through a func value, as Reduce must.
func BenchmarkReduce(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	b.Run("n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			acc, err := sinks.Reduce(ctx, intRange(0, n), 0, sum)
			if err != nil || acc != n*(n-1)/2 {
				b.Fatal(acc, err)
			}
		}
		perItem(b, n)
	})
	b.Run("n=1e6/unbounded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			acc, err := sinks.Reduce(ctx, intRange(0, n), 0, sum, sinks.Unbounded())
			if err != nil || acc != n*(n-1)/2 {
				b.Fatal(acc, err)
			}
		}
		perItem(b, n)
	})
	b.Run("n=1e6/loop", func(b *testing.B) {
		for b.Loop() {
			sink = plainSum(n)
		}
		perItem(b, n)
	})
	b.Run("n=1e6/loop-func", func(b *testing.B) {
		for b.Loop() {
			sink = plainReduce(n, 0, sum)
		}
		perItem(b, n)
	})
}

// plainSum is the loop Reduce replaces, with sum inlined. It is kept out
// of the b.Loop body, where the compiler keeps acc in memory.
//
//go:noinline
func plainSum(n int) int {
	acc := 0
	for i := range n {
		acc += i
	}
	return acc
}

// plainReduce calls f through a func value, as Reduce must.
//
//go:noinline
func plainReduce(n, acc int, f func(int, int) int) int {
	for i := range n {
		acc = f(acc, i)
	}
	return acc
}

// BenchmarkSinks measures the other sinks over the same source.
func BenchmarkSinks(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	b.Run("Drain/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if c, err := sinks.Drain(ctx, intRange(0, n)); err != nil || c != n {
				b.Fatal(c, err)
			}
		}
		perItem(b, n)
	})
	b.Run("ForEach/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			acc := 0
			err := sinks.ForEach(ctx, intRange(0, n), func(v int) error { acc += v; return nil })
			if err != nil {
				b.Fatal(err)
			}
			sink = acc
		}
		perItem(b, n)
	})
	b.Run("Collect/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if items, err := sinks.Collect(ctx, intRange(0, n)); err != nil || len(items) != n {
				b.Fatal(len(items), err)
			}
		}
		perItem(b, n)
	})
	b.Run("All/n=1e6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			acc := 0
			for v, err := range sinks.All(ctx, intRange(0, n)) {
				if err != nil {
					b.Fatal(err)
				}
				acc += v
			}
			sink = acc
		}
		perItem(b, n)
	})
	b.Run("ToChannel/n=1e5/cap=256", func(b *testing.B) {
		const n = 100_000
		b.ReportAllocs()
		for b.Loop() {
			ch := make(chan int, 256)
			errc := make(chan error, 1)
			go func() { errc <- sinks.ToChannel(ctx, intRange(0, n), ch) }()
			acc := 0
			for v := range ch {
				acc += v
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			sink = acc
		}
		perItem(b, n)
	})
}
