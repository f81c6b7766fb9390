package operators_test

import (
	"context"
	"fmt"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
	"testing"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
)

// btFastSource emits the ints 0..n-1 as fast as it can, with the same
// Demand-guarded loop as a sluice source, on the goroutine that requests.
type btFastSource struct{ n int }

func (p btFastSource) Subscribe(s flow.Subscriber[int]) {
	sub := &btFastSub{n: p.n, s: s}
	s.OnSubscribe(sub)
}

type btFastSub struct {
	n, i      int
	s         flow.Subscriber[int]
	demand    flow.Demand
	cancelled bool
}

func (b *btFastSub) Request(n int64) {
	if b.demand.Add(n) != 0 {
		return
	}
	for {
		r := b.demand.Load()
		var e int64
		for e != r && b.i < b.n {
			b.s.OnNext(b.i)
			b.i++
			e++
		}
		if b.i == b.n {
			b.s.OnComplete()
			return
		}
		if b.demand.Produced(e) == 0 {
			return
		}
	}
}

func (b *btFastSub) Cancel() { b.cancelled = true }

// btSink requests Unbounded and counts what it receives.
type btSink[T any] struct {
	n    int
	done bool
}

func (s *btSink[T]) OnSubscribe(sub flow.Subscription) { sub.Request(flow.Unbounded) }
func (s *btSink[T]) OnNext(T)                          { s.n++ }
func (s *btSink[T]) OnError(err error)                 { panic(err) }
func (s *btSink[T]) OnComplete()                       { s.done = true }

// btBatchSink requests one batch at a time, as a writer would.
type btBatchSink[T any] struct {
	sub   flow.Subscription
	items int
	done  bool
}

func (s *btBatchSink[T]) OnSubscribe(sub flow.Subscription) { s.sub = sub; sub.Request(1) }
func (s *btBatchSink[T]) OnNext(b []T)                      { s.items += len(b); s.sub.Request(1) }
func (s *btBatchSink[T]) OnError(err error)                 { panic(err) }
func (s *btBatchSink[T]) OnComplete()                       { s.done = true }

const benchItems = 1_000_000

func reportPerItem(b *testing.B, items int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(items), "ns/item")
}

// BenchmarkBatch measures Batch(256) over 1e6 items on one goroutine,
// beside the plain loop that appends to slices (the baseline).
func BenchmarkBatch(b *testing.B) {
	b.Run("baseline=loop", func(b *testing.B) {
		var batches int
		for b.Loop() {
			var cur []int
			for i := range benchItems {
				if cur == nil {
					cur = make([]int, 0, 256)
				}
				cur = append(cur, i)
				if len(cur) == 256 {
					batches++
					cur = nil
				}
			}
		}
		reportPerItem(b, benchItems)
	})
	b.Run("baseline=source", func(b *testing.B) {
		for b.Loop() {
			s := &btSink[int]{}
			btFastSource{benchItems}.Subscribe(s)
		}
		reportPerItem(b, benchItems)
	})
	for _, maxWait := range []time.Duration{0, time.Second} {
		b.Run(fmt.Sprintf("size=256/maxWait=%v/sink=unbounded", maxWait), func(b *testing.B) {
			pub := operators.Batch[int](btFastSource{benchItems}, 256, maxWait)
			for b.Loop() {
				s := &btSink[[]int]{}
				pub.Subscribe(s)
				if !s.done {
					b.Fatal("not complete")
				}
			}
			reportPerItem(b, benchItems)
		})
		b.Run(fmt.Sprintf("size=256/maxWait=%v/sink=one-at-a-time", maxWait), func(b *testing.B) {
			pub := operators.Batch[int](btFastSource{benchItems}, 256, maxWait)
			for b.Loop() {
				s := &btBatchSink[int]{}
				pub.Subscribe(s)
				if !s.done || s.items != benchItems {
					b.Fatal("not complete")
				}
			}
			reportPerItem(b, benchItems)
		})
	}
	// ReuseBatches: the subscriber does not keep the slices, so the stage
	// recycles them and allocates nothing per batch.
	b.Run("size=256/maxWait=0/reuse/sink=unbounded", func(b *testing.B) {
		pub := operators.Batch[int](btFastSource{benchItems}, 256, 0, operators.ReuseBatches())
		for b.Loop() {
			s := &btSink[[]int]{}
			pub.Subscribe(s)
			if !s.done {
				b.Fatal("not complete")
			}
		}
		reportPerItem(b, benchItems)
	})
	b.Run("size=256/maxWait=0/reuse/sink=one-at-a-time", func(b *testing.B) {
		pub := operators.Batch[int](btFastSource{benchItems}, 256, 0, operators.ReuseBatches())
		for b.Loop() {
			s := &btBatchSink[int]{}
			pub.Subscribe(s)
			if !s.done || s.items != benchItems {
				b.Fatal("not complete")
			}
		}
		reportPerItem(b, benchItems)
	})
	// Range → Batch(256) → Drain, as a sink runs it: fused into one loop
	// (Batch by size only fuses), allocating each batch or reusing them.
	for _, reuse := range []bool{false, true} {
		b.Run(fmt.Sprintf("size=256/maxWait=0/fused/reuse=%v", reuse), func(b *testing.B) {
			var opts []operators.Option
			if reuse {
				opts = append(opts, operators.ReuseBatches())
			}
			pub := operators.Batch(sources.Range(0, benchItems), 256, 0, opts...)
			for b.Loop() {
				if n, err := sinks.Drain(context.Background(), pub); err != nil || n != (benchItems+255)/256 {
					b.Fatalf("Drain = %d, %v", n, err)
				}
			}
			reportPerItem(b, benchItems)
		})
	}
	b.Run("weighted/max=256", func(b *testing.B) {
		pub := operators.BatchWeighted[int](btFastSource{benchItems}, 256, func(int) int64 { return 1 }, 0)
		for b.Loop() {
			s := &btSink[[]int]{}
			pub.Subscribe(s)
		}
		reportPerItem(b, benchItems)
	})
}

// BenchmarkBuffer measures Buffer(1024) per policy on one goroutine, with
// a sink that requests Unbounded (so nothing is dropped), beside a Go
// channel of the same capacity written and read on one goroutine.
func BenchmarkBuffer(b *testing.B) {
	b.Run("baseline=chan", func(b *testing.B) {
		ch := make(chan int, 1024)
		for b.Loop() {
			for i := range benchItems {
				ch <- i
				<-ch
			}
		}
		reportPerItem(b, benchItems)
	})
	for _, policy := range []flow.Overflow{flow.Block, flow.DropNewest, flow.DropOldest, flow.Fail} {
		b.Run("policy="+policy.String(), func(b *testing.B) {
			pub := operators.Buffer[int](btFastSource{benchItems}, 1024, policy)
			for b.Loop() {
				s := &btSink[int]{}
				pub.Subscribe(s)
				if s.n != benchItems {
					b.Fatalf("got %d items", s.n)
				}
			}
			reportPerItem(b, benchItems)
		})
	}
	b.Run("limitRate=256,192", func(b *testing.B) {
		pub := operators.LimitRate[int](btFastSource{benchItems}, 256, 192)
		for b.Loop() {
			s := &btSink[int]{}
			pub.Subscribe(s)
		}
		reportPerItem(b, benchItems)
	})
}
