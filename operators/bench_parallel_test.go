package operators_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sources"
)

// pmHash is the CPU-bound function of the benchmarks: iters rounds of
// xorshift and multiply, calibrated by pmIters to take about 1µs.
func pmHash(v, iters int) int {
	x := uint64(v) | 1
	for range iters {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		x *= 0x9E3779B97F4A7C15
	}
	return int(x)
}

var pmSinkInt int

// pmIters is the number of pmHash rounds that take about 1µs here,
// measured once.
var pmIters = sync.OnceValue(func() int {
	const rounds, calls = 1000, 5000
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		for i := range calls {
			pmSinkInt += pmHash(i, rounds)
		}
		best = min(best, time.Since(start))
	}
	perRound := float64(best) / (rounds * calls)
	return max(1, int(float64(time.Microsecond)/perRound))
})

// pmBenchSink requests everything and closes done at the end.
type pmBenchSink struct {
	n    int
	done chan struct{}
}

func (s *pmBenchSink) OnSubscribe(sub flow.Subscription) { sub.Request(flow.Unbounded) }
func (s *pmBenchSink) OnNext(v int)                      { s.n++ }
func (s *pmBenchSink) OnError(err error)                 { panic(err) }
func (s *pmBenchSink) OnComplete()                       { close(s.done) }

const pmBenchItems = 20_000

// BenchmarkParallelMap maps a ~1µs CPU-bound function over 20 000 items
// with 1, 2 and GOMAXPROCS workers, ordered or not; ns/item is the wall
// time per item. Compare the workers=2 and workers=1 lines of one run:
//
//	go test -run '^$' -bench 'ParallelMap' -count 5 ./operators/
//
// The baseline sub-benchmarks run the same function in a plain loop, split
// in equal ranges over w goroutines (the ideal speed-up, which a loaded
// machine may not allow), and on the naive Go worker pool: goroutines
// joined by channels buffered 256, one send and one receive per item each
// way (unordered).
func BenchmarkParallelMap(b *testing.B) {
	iters := pmIters()
	f := func(v int) int { return pmHash(v, iters) }
	workers := []int{1, 2}
	if p := runtime.GOMAXPROCS(0); p > 2 {
		workers = append(workers, p)
	}
	for _, ordered := range []bool{false, true} {
		for _, w := range workers {
			b.Run(fmt.Sprintf("workers=%d/ordered=%t", w, ordered), func(b *testing.B) {
				var opts []operators.Option
				if ordered {
					opts = append(opts, operators.Ordered())
				}
				stage := operators.ParallelMap(sources.Range(0, pmBenchItems), f, w, opts...)
				for b.Loop() {
					s := &pmBenchSink{done: make(chan struct{})}
					stage.Subscribe(s)
					<-s.done
					if s.n != pmBenchItems {
						b.Fatalf("%d items", s.n)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pmBenchItems), "ns/item")
			})
		}
	}
	b.Run("baseline=loop", func(b *testing.B) {
		for b.Loop() {
			for i := range pmBenchItems {
				pmSinkInt += f(i)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pmBenchItems), "ns/item")
	})
	for _, w := range workers {
		// The ideal: the items split in w equal ranges, one goroutine
		// each, nothing shared. Its speed-up is what the machine allows.
		b.Run(fmt.Sprintf("baseline=split/workers=%d", w), func(b *testing.B) {
			sums := make([]int, w)
			for b.Loop() {
				var wg sync.WaitGroup
				for g := range w {
					wg.Go(func() {
						for i := g * pmBenchItems / w; i < (g+1)*pmBenchItems/w; i++ {
							sums[g] += f(i)
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pmBenchItems), "ns/item")
		})
		b.Run(fmt.Sprintf("baseline=channels/workers=%d", w), func(b *testing.B) {
			for b.Loop() {
				in, out := make(chan int, 256), make(chan int, 256)
				var wg sync.WaitGroup
				for range w {
					wg.Go(func() {
						for v := range in {
							out <- f(v)
						}
					})
				}
				go func() {
					for i := range pmBenchItems {
						in <- i
					}
					close(in)
					wg.Wait()
					close(out)
				}()
				n := 0
				for range out {
					n++
				}
				if n != pmBenchItems {
					b.Fatalf("%d items", n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pmBenchItems), "ns/item")
		})
	}
}

// BenchmarkMapAsync measures what MapAsync adds per item around a call
// that returns at once: the hand-off to a worker and back, one item at a
// time per worker.
func BenchmarkMapAsync(b *testing.B) {
	f := func(_ context.Context, v int) (int, error) { return v, nil }
	for _, conc := range []int{1, 8} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			stage := operators.MapAsync(sources.Range(0, pmBenchItems), f, conc)
			b.ReportAllocs()
			for b.Loop() {
				s := &pmBenchSink{done: make(chan struct{})}
				stage.Subscribe(s)
				<-s.done
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pmBenchItems), "ns/item")
		})
	}
}

// BenchmarkParallelMapSpeedup runs, in every iteration, the 20 000 items
// through 1 worker, then through 2, then the ideal split over 1 and 2
// goroutines, and reports the ratios of the summed times: "speedup" is
// ParallelMap's 2-worker speed-up over 1 worker and "ideal" the speed-up
// the machine allowed meanwhile. Pairing the runs keeps the ratio
// meaningful when other processes load the CPU.
func BenchmarkParallelMapSpeedup(b *testing.B) {
	iters := pmIters()
	f := func(v int) int { return pmHash(v, iters) }
	split := func(w int) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for g := range w {
			wg.Go(func() {
				s := 0
				for i := g * pmBenchItems / w; i < (g+1)*pmBenchItems/w; i++ {
					s += f(i)
				}
				pmSinks[g] = s
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	for _, ordered := range []bool{false, true} {
		b.Run(fmt.Sprintf("ordered=%t", ordered), func(b *testing.B) {
			var opts []operators.Option
			if ordered {
				opts = append(opts, operators.Ordered())
			}
			run := func(w int) time.Duration {
				start := time.Now()
				s := &pmBenchSink{done: make(chan struct{})}
				operators.ParallelMap(sources.Range(0, pmBenchItems), f, w, opts...).Subscribe(s)
				<-s.done
				return time.Since(start)
			}
			var t1, t2, i1, i2 time.Duration
			for b.Loop() {
				t1 += run(1)
				t2 += run(2)
				i1 += split(1)
				i2 += split(2)
			}
			b.ReportMetric(float64(t1)/float64(t2), "speedup")
			b.ReportMetric(float64(i1)/float64(i2), "ideal")
			b.ReportMetric(float64(t2.Nanoseconds())/float64(b.N*pmBenchItems), "ns/item@2")
			b.ReportMetric(float64(t1.Nanoseconds())/float64(b.N*pmBenchItems), "ns/item@1")
		})
	}
}

var pmSinks [64]int
