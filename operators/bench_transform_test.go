package operators_test

import (
	"context"
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// trReducer is a synchronous reducing sink: it sums ints and requests 256
// up front and 192 after every 192 consumed, as an async boundary with the
// default prefetch would.
type trReducer struct {
	sub      flow.Subscription
	sum      int
	consumed int
	done     bool
}

func (r *trReducer) OnSubscribe(s flow.Subscription) { r.sub = s; s.Request(256) }
func (r *trReducer) OnNext(v int) {
	r.sum += v
	if r.consumed++; r.consumed == 192 {
		r.consumed = 0
		r.sub.Request(192)
	}
}
func (r *trReducer) OnError(err error) { panic(err) }
func (r *trReducer) OnComplete()       { r.done = true }

const trBenchItems = 1_000_000

// trWantSum is the sum of 3i over the even i in [0, trBenchItems).
var trWantSum = func() int {
	s := 0
	for i := 0; i < trBenchItems; i += 2 {
		s += 3 * i
	}
	return s
}()

// BenchmarkChain measures Range(1e6) → Map → Filter → sinks.Reduce on one
// goroutine (Reduce requests 256, then 192 after every 192), next to the
// loops that compute the same sum: impl=loop with the functions inlined,
// impl=loop-func calling them through func values, as the stages must.
func BenchmarkChain(b *testing.B) {
	triple := func(v int) int { return 3 * v }
	even := func(v int) bool { return v%2 == 0 }
	add := func(a, v int) int { return a + v }
	perItem := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/trBenchItems, "ns/item")
	}
	b.Run("impl=loop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sum := 0
			for i := range trBenchItems {
				if v := 3 * i; v%2 == 0 {
					sum += v
				}
			}
			if sum != trWantSum {
				b.Fatalf("sum = %d, want %d", sum, trWantSum)
			}
		}
		perItem(b)
	})
	b.Run("impl=loop-func", func(b *testing.B) {
		b.ReportAllocs()
		f, keep, red := trOpaque(triple), trOpaque(even), trOpaque(add)
		for b.Loop() {
			sum := 0
			for i := range trBenchItems {
				if v := f(i); keep(v) {
					sum = red(sum, v)
				}
			}
			if sum != trWantSum {
				b.Fatalf("sum = %d, want %d", sum, trWantSum)
			}
		}
		perItem(b)
	})
	b.Run("impl=sluice", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		pub := operators.Filter(operators.Map(sources.Range(0, trBenchItems), triple), even)
		for b.Loop() {
			sum, err := sinks.Reduce(ctx, pub, 0, add)
			if err != nil || sum != trWantSum {
				b.Fatalf("sum = %d, %v; want %d", sum, err, trWantSum)
			}
		}
		perItem(b)
	})
}

// trOpaque returns f through a variable the compiler cannot see through,
// so the loop-func baseline really calls it indirectly.
//
//go:noinline
func trOpaque[F any](f F) F { return f }

// BenchmarkStage measures one stage at a time over Range(1e6), with the
// reducing sink; impl=none is Range and the sink alone.
func BenchmarkStage(b *testing.B) {
	var ops operators.Stages[int]
	stages := []struct {
		name  string
		stage operators.Stage[int]
	}{
		{"none", func(p flow.Publisher[int]) flow.Publisher[int] { return p }},
		{"map", ops.Map(func(v int) int { return v })},
		{"filter-keep-all", ops.Filter(func(int) bool { return true })},
		{"filter-keep-half", ops.Filter(func(v int) bool { return v%2 == 0 })},
		{"filter-keep-tenth", ops.Filter(func(v int) bool { return v%10 == 0 })},
		{"take", ops.Take(trBenchItems)},
		{"scan", ops.Scan(0, func(a, v int) int { return v })},
	}
	for _, st := range stages {
		b.Run("stage="+st.name, func(b *testing.B) {
			b.ReportAllocs()
			pub := operators.Pipe(sources.Range(0, trBenchItems), st.stage)
			for b.Loop() {
				r := &trReducer{}
				pub.Subscribe(r)
				if !r.done {
					b.Fatal("not done")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/trBenchItems, "ns/item")
		})
	}
}
