package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/sluicego/sluice/flow"
)

// The scenario benchmarks run every variant of a group of [Scenarios],
// sluice's and its baselines', in the same run, and report ns/item,
// allocs/item and B/item. Compare the lines of one run:
//
//	go test -run '^$' -bench 'MapFilterReduce|Batch256|Merge4|ParallelMap|Broadcast2|SlowSink' -count 5 ./bench/
//
// The CLI (go run ./bench/cmd/sluicebench) runs the same scenarios and
// prints medians, ranges and ratios to the baselines.

// benchScenario times s over n items per b.Loop iteration.
func benchScenario(b *testing.B, s Scenario, n int) {
	ctx := context.Background()
	if s.Prepare != nil {
		if err := s.Prepare(n); err != nil {
			b.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		if err := s.Run(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	reportItems(b, n, &before, &after)
}

// reportItems reports ns/item, allocs/item and B/item for b.N runs of n
// items, the memory figures from the MemStats taken around the loop.
func reportItems(b *testing.B, n int, before, after *runtime.MemStats) {
	per := float64(b.N) * float64(n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/item")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/per, "allocs/item")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/per, "B/item")
}

// benchGroup runs every scenario of group as a sub-benchmark named
// library/name/n=….
func benchGroup(b *testing.B, group string) {
	found := false
	for _, s := range Scenarios() {
		if s.Group != group {
			continue
		}
		found = true
		n := s.Items
		if n == 0 {
			n = DefaultItems
		}
		b.Run(s.Library+"/"+s.Name+"/n="+itemsLabel(n), func(b *testing.B) { benchScenario(b, s, n) })
	}
	if !found {
		b.Fatalf("no scenario in group %q", group)
	}
}

// BenchmarkMapFilterReduce: Range(1e6) → Map → Filter → Reduce in sluice
// (one goroutine; three PublishOn boundaries), as a plain loop, as three
// goroutines joined by channels (unbuffered, buffered 256, carrying
// 256-item slices) and in rxgo v2.5.0 (unbuffered, WithBufferedChannel(256)).
func BenchmarkMapFilterReduce(b *testing.B) { benchGroup(b, "map-filter-reduce") }

// BenchmarkBatch256: Batch(256) over 1e6 ints, against a plain loop that
// allocates the same slices.
func BenchmarkBatch256(b *testing.B) { benchGroup(b, "batch") }

// BenchmarkMerge4: Merge of 4 Range sources of 250 000 ints, synchronous
// and each on its own goroutine, against 4 goroutines sending to one
// channel buffered 256.
func BenchmarkMerge4(b *testing.B) { benchGroup(b, "merge") }

// BenchmarkParallelMap: ParallelMap of a ~1 µs CPU-bound function over
// 1e5 ints on 1, 2 and GOMAXPROCS workers, ordered and unordered, against
// the serial loop and a 2-goroutine worker pool on channels.
func BenchmarkParallelMap(b *testing.B) { benchGroup(b, "parallel-map") }

// BenchmarkBroadcast2: Broadcast of 1e6 ints to 2 subscribers on their own
// goroutines, against a goroutine sending to two channels buffered 256.
func BenchmarkBroadcast2(b *testing.B) { benchGroup(b, "broadcast") }

// BenchmarkSlowSink: a fast source on its own goroutine, a Buffer of 1024
// under each overflow policy, and a sink spending ~100 ns per item on a
// third goroutine (see [SlowSink]). Besides the per-item figures it
// reports the peak of live heap objects during the runs (peak-heap-B,
// sampled every millisecond from runtime/metrics), the mean number of items
// dropped per run (drops/run, counted by the OnDrop hook; each run checks
// that emitted = delivered + dropped exactly) and the items delivered per
// run. Two item counts show that the heap does not grow with the stream.
func BenchmarkSlowSink(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{100_000, 1_000_000} {
		for _, p := range []flow.Overflow{flow.Block, flow.DropNewest, flow.DropOldest, flow.Fail} {
			b.Run(fmt.Sprintf("policy=%v/n=%s", p, itemsLabel(n)), func(b *testing.B) {
				stop := sampleHeap()
				var drops, delivered int64
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for b.Loop() {
					r, err := SlowSink(ctx, n, p)
					if err != nil {
						b.Fatal(err)
					}
					drops += r.TotalDropped()
					delivered += r.Delivered
				}
				runtime.ReadMemStats(&after)
				peak := stop()
				reportItems(b, n, &before, &after)
				b.ReportMetric(float64(peak), "peak-heap-B")
				b.ReportMetric(float64(drops)/float64(b.N), "drops/run")
				b.ReportMetric(float64(delivered)/float64(b.N), "delivered/run")
			})
		}
	}
}

// TestScenarios runs every scenario once over a few items: each checks
// its own result.
func TestScenarios(t *testing.T) {
	ctx := context.Background()
	for _, s := range Scenarios() {
		t.Run(s.ID(), func(t *testing.T) {
			const n = 4096
			if s.Prepare != nil {
				if err := s.Prepare(n); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Run(ctx, n); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSlowSinkAccounting checks the exact accounting of the slow-sink
// scenario: under Block nothing is dropped; under the drop policies every
// emitted item is delivered or dropped with the policy's reason; under
// Fail exactly one item is dropped for overflow.
func TestSlowSinkAccounting(t *testing.T) {
	const n = 20_000
	reasons := map[flow.Overflow]flow.DropReason{
		flow.DropNewest: flow.ReasonNewest,
		flow.DropOldest: flow.ReasonOldest,
	}
	for _, p := range []flow.Overflow{flow.Block, flow.DropNewest, flow.DropOldest, flow.Fail} {
		t.Run(p.String(), func(t *testing.T) {
			// Off Block, the sink holds its first item until the source
			// has overflowed the Buffer or emitted everything: the
			// outcome does not depend on the goroutines' speeds.
			r, err := slowSink(context.Background(), n, p, p != flow.Block)
			if err != nil {
				t.Fatal(err)
			}
			switch p {
			case flow.Block:
				if r.Delivered != n || r.TotalDropped() != 0 {
					t.Errorf("Block: delivered %d, dropped %v; want %d, none", r.Delivered, r.Dropped, n)
				}
			case flow.Fail:
				if r.Dropped[flow.ReasonOverflow] != 1 {
					t.Errorf("Fail: dropped %v, want exactly 1 overflow", r.Dropped)
				}
			default:
				if got := r.Delivered + r.Dropped[reasons[p]]; got != n {
					t.Errorf("%v: delivered %d + dropped %v = %d, want %d", p, r.Delivered, r.Dropped, got, n)
				}
				if r.Delivered < SlowSinkBuffer {
					t.Errorf("%v: delivered %d, want at least the buffer (%d)", p, r.Delivered, SlowSinkBuffer)
				}
			}
		})
	}
}
