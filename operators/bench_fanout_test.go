package operators_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
)

// Broadcast of a fast synchronous source to subscribers that request
// Unbounded, against the naive baseline: a goroutine that copies each
// item to one channel per subscriber (buffered 256), each drained by a
// goroutine of its own.
func BenchmarkBroadcast(b *testing.B) {
	for _, subs := range []int{1, 2} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			for b.Loop() {
				bc := operators.Broadcast[int](btFastSource{n: benchItems}, operators.MinSubscribers(subs))
				sinks := make([]*btSink[int], subs)
				for i := range sinks {
					sinks[i] = &btSink[int]{}
					bc.Subscribe(sinks[i])
				}
				for _, s := range sinks {
					if !s.done || s.n != benchItems {
						b.Fatalf("got %d items, done %v", s.n, s.done)
					}
				}
			}
			reportPerItem(b, benchItems)
		})
	}
	b.Run("channels/subs=2", func(b *testing.B) {
		for b.Loop() {
			chans := []chan int{make(chan int, 256), make(chan int, 256)}
			var wg sync.WaitGroup
			counts := make([]int, len(chans))
			for i, ch := range chans {
				wg.Go(func() {
					for range ch {
						counts[i]++
					}
				})
			}
			for v := range benchItems {
				for _, ch := range chans {
					ch <- v
				}
			}
			for _, ch := range chans {
				close(ch)
			}
			wg.Wait()
			if counts[0] != benchItems || counts[1] != benchItems {
				b.Fatalf("counts %v", counts)
			}
		}
		reportPerItem(b, benchItems)
	})
}

// foSpin is a CPU-bound stage of about 1 µs on the 2-core reference
// machine.
func foSpin(v int) int {
	x := uint64(v) | 1
	for range 350 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return int(x & 1)
}

// Balance to parallel workers, each output consumed on its own goroutine
// (PublishOn on its own scheduler.NewSingle) through a CPU-bound stage of
// about 1 µs: workers=2 should take about half the time per item of
// workers=1. Baselines: "direct" is the same stage with no Balance and no
// async boundary, on one goroutine; "split=2" is the ideal split, two
// independent halves of the source, each on its own worker, with no
// Balance.
func BenchmarkBalance(b *testing.B) {
	const items = 20_000
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			n, err := sinks.Drain(ctx, operators.Map[int](btFastSource{n: items}, foSpin))
			if err != nil || n != items {
				b.Fatalf("%d items, %v", n, err)
			}
		}
		reportPerItem(b, items)
	})
	b.Run("split=2", func(b *testing.B) {
		scheds := []*scheduler.Pool{scheduler.NewSingle(), scheduler.NewSingle()}
		defer func() {
			for _, s := range scheds {
				s.Close()
			}
		}()
		for b.Loop() {
			var wg sync.WaitGroup
			for _, s := range scheds {
				stage := operators.Map(operators.PublishOn[int](btFastSource{n: items / 2}, s), foSpin)
				wg.Go(func() {
					if n, err := sinks.Drain(ctx, stage); err != nil || n != items/2 {
						panic(fmt.Sprint(n, err))
					}
				})
			}
			wg.Wait()
		}
		reportPerItem(b, items)
	})
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			scheds := make([]*scheduler.Pool, workers)
			for i := range scheds {
				scheds[i] = scheduler.NewSingle()
			}
			defer func() {
				for _, s := range scheds {
					s.Close()
				}
			}()
			counts := make([]int64, workers)
			for b.Loop() {
				outs := operators.Balance[int](btFastSource{n: items}, workers)
				var wg sync.WaitGroup
				for i, out := range outs {
					stage := operators.Map(operators.PublishOn(out, scheds[i]), foSpin)
					wg.Go(func() {
						n, err := sinks.Drain(ctx, stage)
						if err != nil {
							panic(err)
						}
						counts[i] = n
					})
				}
				wg.Wait()
				var total int64
				for _, n := range counts {
					total += n
				}
				if total != items {
					b.Fatalf("%d items", total)
				}
			}
			reportPerItem(b, items)
		})
	}
}
