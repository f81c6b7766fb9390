package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	rx "github.com/reactivex/rxgo/v2"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// The functions every scenario applies. They are package-level func
// values, called indirectly as sluice calls user functions, so that the
// baselines pay for the same calls.
var (
	sumFn    = func(acc, v int) int { return acc + v }
	doubleFn = func(v int) int { return v * 2 }
	keepFn   = func(v int) bool { return v%3 != 0 }
)

// sumTo returns 0 + 1 + … + (n-1).
func sumTo(n int) int { return n * (n - 1) / 2 }

// mfrWant is the result of the map-filter-reduce chain over 0..n-1.
func mfrWant(n int) int {
	acc := 0
	for i := range n {
		if v := doubleFn(i); keepFn(v) {
			acc = sumFn(acc, v)
		}
	}
	return acc
}

// Scenarios returns sluice's standard suite, in the order the CLI runs it.
// Every group holds sluice's variants and the baselines they are compared
// with (the plain loop, Go channels, rxgo v2):
//
//   - map-filter-reduce: Range → Map(×2) → Filter(%3 != 0) → Reduce(+) on
//     one goroutine and with an async boundary between each stage,
//     against the plain loop, three goroutines joined by channels
//     (unbuffered, buffered 256, carrying 256-item slices) and rxgo
//     (unbuffered and WithBufferedChannel(256));
//   - batch: Batch(256), against a plain loop that allocates the same
//     slices;
//   - merge: Merge of 4 Range sources (synchronous, and each on its own
//     goroutine), against 4 goroutines sending to one channel;
//   - parallel-map: ParallelMap of a ~1 µs CPU-bound function on 1, 2 and
//     GOMAXPROCS workers, ordered and unordered, against the serial loop
//     and a Go worker pool on channels (100 000 items by default);
//   - broadcast: Broadcast to 2 subscribers on their own goroutines,
//     against a goroutine sending to two channels;
//   - slow-sink: a fast source on its own goroutine, a Buffer of 1024 under
//     each overflow policy, and a sink that spends ~100 ns per item on
//     another goroutine, against the sink's own loop; each run reports
//     the items delivered and dropped with [ReportMetric].
//
// Every Run checks its result and returns an error matching
// [ErrWrongResult] if it is wrong.
func Scenarios() []Scenario {
	var s []Scenario
	s = append(s, mapFilterReduce()...)
	s = append(s, batchScenarios()...)
	s = append(s, mergeScenarios()...)
	s = append(s, parallelMapScenarios()...)
	s = append(s, broadcastScenarios()...)
	s = append(s, slowSinkScenarios()...)
	return s
}

// ---- map → filter → reduce ----

func mapFilterReduce() []Scenario {
	const g = "map-filter-reduce"
	return []Scenario{
		{Group: g, Library: "go", Name: "plain-loop", Baseline: true, Run: func(_ context.Context, n int) error {
			f, m, k := sumFn, doubleFn, keepFn
			acc := 0
			for i := range n {
				if v := m(i); k(v) {
					acc = f(acc, v)
				}
			}
			return check("plain loop", acc, mfrWant(n))
		}},
		{Group: g, Library: "sluice", Name: "sync", Run: func(ctx context.Context, n int) error {
			got, err := sinks.Reduce(ctx, operators.Filter(operators.Map(sources.Range(0, n), doubleFn), keepFn), 0, sumFn)
			if err != nil {
				return err
			}
			return check("Reduce", got, mfrWant(n))
		}},
		{Group: g, Library: "sluice", Name: "async", Run: func(ctx context.Context, n int) error {
			return SluiceAsyncChain(ctx, n)
		}},
		{Group: g, Library: "go", Name: "chan/unbuffered", Run: func(ctx context.Context, n int) error {
			return check("channels", ChanChain(n, 0), mfrWant(n))
		}},
		{Group: g, Library: "go", Name: "chan/buffered=256", Baseline: true, Run: func(ctx context.Context, n int) error {
			return check("channels", ChanChain(n, 256), mfrWant(n))
		}},
		{Group: g, Library: "go", Name: "chan/slices=256", Run: func(ctx context.Context, n int) error {
			return check("channels", ChanSliceChain(n, 256), mfrWant(n))
		}},
		{Group: g, Library: "rxgo", Name: "unbuffered", Baseline: true, Run: func(ctx context.Context, n int) error {
			return RxChain(ctx, n)
		}},
		{Group: g, Library: "rxgo", Name: "buffered=256", Run: func(ctx context.Context, n int) error {
			return RxChain(ctx, n, rx.WithBufferedChannel(256))
		}},
	}
}

// SluiceAsyncChain runs Range(n) → PublishOn → Map → PublishOn → Filter →
// PublishOn → Reduce, each boundary on a scheduler.NewSingle of its own
// (three goroutines, as in [ChanChain]), and checks the result.
func SluiceAsyncChain(ctx context.Context, n int) error {
	s1, s2, s3 := scheduler.NewSingle(), scheduler.NewSingle(), scheduler.NewSingle()
	defer s1.Close()
	defer s2.Close()
	defer s3.Close()
	pub := operators.PublishOn(
		operators.Filter(
			operators.PublishOn(
				operators.Map(operators.PublishOn(sources.Range(0, n), s1), doubleFn),
				s2),
			keepFn),
		s3)
	got, err := sinks.Reduce(ctx, pub, 0, sumFn)
	if err != nil {
		return err
	}
	return check("Reduce", got, mfrWant(n))
}

// ChanChain is the Go programmer's version of the async chain: the
// source, the map and the filter each on a goroutine of their own, joined
// by channels of capacity buf, and the reduction on the caller's
// goroutine. It returns the sum.
func ChanChain(n, buf int) int {
	src, mapped, kept := make(chan int, buf), make(chan int, buf), make(chan int, buf)
	double, keep, f := doubleFn, keepFn, sumFn
	go func() {
		for i := range n {
			src <- i
		}
		close(src)
	}()
	go func() {
		for v := range src {
			mapped <- double(v)
		}
		close(mapped)
	}()
	go func() {
		for v := range mapped {
			if keep(v) {
				kept <- v
			}
		}
		close(kept)
	}()
	acc := 0
	for v := range kept {
		acc = f(acc, v)
	}
	return acc
}

// ChanSliceChain is [ChanChain] with channels that carry slices of up to
// batch items, the usual hand-made batching: one channel operation per
// batch. Slices are recycled through a return channel, so the steady
// state allocates nothing.
func ChanSliceChain(n, batch int) int {
	const depth = 4 // slices in flight per hop
	src, mapped, kept := make(chan []int, depth), make(chan []int, depth), make(chan []int, depth)
	free := make(chan []int, 3*depth+3)
	for range cap(free) {
		free <- make([]int, 0, batch)
	}
	double, keep, f := doubleFn, keepFn, sumFn
	go func() {
		buf := <-free
		for i := range n {
			buf = append(buf, i)
			if len(buf) == batch {
				src <- buf
				buf = (<-free)[:0]
			}
		}
		if len(buf) > 0 {
			src <- buf
		} else {
			free <- buf
		}
		close(src)
	}()
	go func() {
		for b := range src {
			for i, v := range b {
				b[i] = double(v)
			}
			mapped <- b
		}
		close(mapped)
	}()
	go func() {
		for b := range mapped {
			out := b[:0]
			for _, v := range b {
				if keep(v) {
					out = append(out, v)
				}
			}
			kept <- out
		}
		close(kept)
	}()
	acc := 0
	for b := range kept {
		for _, v := range b {
			acc = f(acc, v)
		}
		free <- b[:0]
	}
	return acc
}

// RxChain runs the chain in rxgo v2: Range → Map → Filter → Reduce, each
// operator given opts (rxgo runs each on a goroutine of its own, joined
// by channels), and checks the result.
func RxChain(ctx context.Context, n int, opts ...rx.Option) error {
	double, keep, f := doubleFn, keepFn, sumFn
	opts = append(opts, rx.WithContext(ctx))
	item, err := rx.Range(0, n, opts...).
		Map(func(_ context.Context, v any) (any, error) { return double(v.(int)), nil }, opts...).
		Filter(func(v any) bool { return keep(v.(int)) }, opts...).
		Reduce(func(_ context.Context, acc, v any) (any, error) {
			if acc == nil {
				return v, nil
			}
			return f(acc.(int), v.(int)), nil
		}, opts...).Get()
	if err != nil {
		return err
	}
	if item.Error() {
		return item.E
	}
	got, _ := item.V.(int)
	return check("rxgo Reduce", got, mfrWant(n))
}

// ---- Batch ----

func batchScenarios() []Scenario {
	const g, size = "batch", 256
	sumBatch := func(acc int, b []int) int {
		for _, v := range b {
			acc += v
		}
		return acc
	}
	return []Scenario{
		{Group: g, Library: "go", Name: "plain-loop/size=256", Baseline: true, Run: func(_ context.Context, n int) error {
			acc, f := 0, sumBatch
			b := make([]int, 0, size)
			for i := range n {
				b = append(b, i)
				if len(b) == size {
					acc = f(acc, b)
					b = make([]int, 0, size)
				}
			}
			acc = f(acc, b)
			return check("plain loop", acc, sumTo(n))
		}},
		{Group: g, Library: "sluice", Name: "size=256", Run: func(ctx context.Context, n int) error {
			got, err := sinks.Reduce(ctx, operators.Batch(sources.Range(0, n), size, 0), 0, sumBatch)
			if err != nil {
				return err
			}
			return check("Reduce", got, sumTo(n))
		}},
	}
}

// ---- Merge ----

func mergeScenarios() []Scenario {
	const g, k = "merge", 4
	ranges := func(n int) []flow.Publisher[int] {
		srcs := make([]flow.Publisher[int], k)
		for i := range k {
			lo, hi := i*n/k, (i+1)*n/k
			srcs[i] = sources.Range(lo, hi-lo)
		}
		return srcs
	}
	return []Scenario{
		{Group: g, Library: "go", Name: "chan/sources=4/buffered=256", Baseline: true, Run: func(_ context.Context, n int) error {
			ch := make(chan int, 256)
			var wg sync.WaitGroup
			for i := range k {
				lo, hi := i*n/k, (i+1)*n/k
				wg.Go(func() {
					for v := lo; v < hi; v++ {
						ch <- v
					}
				})
			}
			go func() { wg.Wait(); close(ch) }()
			acc, f := 0, sumFn
			for v := range ch {
				acc = f(acc, v)
			}
			return check("channels", acc, sumTo(n))
		}},
		{Group: g, Library: "sluice", Name: "sources=4/sync", Run: func(ctx context.Context, n int) error {
			got, err := sinks.Reduce(ctx, operators.Merge(ranges(n)...), 0, sumFn)
			if err != nil {
				return err
			}
			return check("Reduce", got, sumTo(n))
		}},
		{Group: g, Library: "sluice", Name: "sources=4/async", Run: func(ctx context.Context, n int) error {
			srcs := ranges(n)
			for i, s := range srcs {
				w := scheduler.NewSingle()
				defer w.Close()
				srcs[i] = operators.SubscribeOn(s, w)
			}
			got, err := sinks.Reduce(ctx, operators.Merge(srcs...), 0, sumFn)
			if err != nil {
				return err
			}
			return check("Reduce", got, sumTo(n))
		}},
	}
}

// ---- ParallelMap ----

// CPUWork is the CPU-bound function of the parallel-map scenarios:
// rounds of xorshift and multiply.
func CPUWork(v, rounds int) int {
	x := uint64(v) | 1
	for range rounds {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		x *= 0x9E3779B97F4A7C15
	}
	return int(x)
}

var cpuSink atomic.Int64

// CPURounds returns the number of [CPUWork] rounds that take about 1 µs
// on this machine, measured once per process: the fastest of 100 short
// windows (20 calls of 1000 rounds, about 100 µs each), so that a
// loaded machine, which interrupts some windows, does not skew it.
var CPURounds = sync.OnceValue(func() int { return max(1, int(float64(time.Microsecond)/cpuRoundNs())) })

// cpuRoundNs returns the time of one CPUWork round in nanoseconds, as
// CPURounds measures it.
func cpuRoundNs() float64 {
	const rounds, calls, windows = 1000, 20, 100
	best := time.Duration(1 << 62)
	acc := 0
	for range windows {
		start := time.Now()
		for i := range calls {
			acc += CPUWork(i, rounds)
		}
		best = min(best, time.Since(start))
	}
	cpuSink.Add(int64(acc))
	return max(float64(best.Nanoseconds()), 1) / (rounds * calls)
}

// ParallelWorkers returns the worker counts of the parallel-map group: 1,
// 2 and GOMAXPROCS when it is more than 2.
func ParallelWorkers() []int {
	w := []int{1, 2}
	if p := runtime.GOMAXPROCS(0); p > 2 {
		w = append(w, p)
	}
	return w
}

func parallelMapScenarios() []Scenario {
	const g, items = "parallel-map", 100_000
	// The expected sum depends on n and on the calibration: Prepare
	// computes it, untimed, and the runs compare with it.
	var mu sync.Mutex
	wants := map[[2]int]int{}
	prepare := func(n int) error {
		r := CPURounds()
		mu.Lock()
		defer mu.Unlock()
		if _, ok := wants[[2]int{n, r}]; !ok {
			acc := 0
			for i := range n {
				acc += CPUWork(i, r)
			}
			wants[[2]int{n, r}] = acc
		}
		return nil
	}
	wantOf := func(n, rounds int) int {
		mu.Lock()
		defer mu.Unlock()
		return wants[[2]int{n, rounds}]
	}
	s := []Scenario{
		{Group: g, Library: "go", Name: "serial-loop", Baseline: true, Items: items, Prepare: prepare, Run: func(_ context.Context, n int) error {
			r := CPURounds()
			acc := 0
			for i := range n {
				acc += CPUWork(i, r)
			}
			return check("serial loop", acc, wantOf(n, r))
		}},
	}
	s = append(s, Scenario{Group: g, Library: "go", Name: "chan-pool/workers=2", Items: items, Prepare: prepare, Run: func(_ context.Context, n int) error {
		r := CPURounds()
		in, out := make(chan int, 256), make(chan int, 256)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for v := range in {
					out <- CPUWork(v, r)
				}
			})
		}
		go func() {
			for i := range n {
				in <- i
			}
			close(in)
		}()
		go func() { wg.Wait(); close(out) }()
		acc := 0
		for v := range out {
			acc += v
		}
		return check("worker pool", acc, wantOf(n, r))
	}})
	for _, ordered := range []bool{false, true} {
		for _, w := range ParallelWorkers() {
			s = append(s, Scenario{
				Group: g, Library: "sluice", Items: items, Prepare: prepare,
				Name: fmt.Sprintf("workers=%d/ordered=%t", w, ordered),
				Run: func(ctx context.Context, n int) error {
					r := CPURounds()
					var opts []operators.Option
					if ordered {
						opts = append(opts, operators.Ordered())
					}
					f := func(v int) int { return CPUWork(v, r) }
					got, err := sinks.Reduce(ctx, operators.ParallelMap(sources.Range(0, n), f, w, opts...), 0, sumFn)
					if err != nil {
						return err
					}
					return check("Reduce", got, wantOf(n, r))
				},
			})
		}
	}
	return s
}

// ---- Broadcast ----

func broadcastScenarios() []Scenario {
	const g = "broadcast"
	return []Scenario{
		{Group: g, Library: "go", Name: "chan/subs=2/buffered=256", Baseline: true, Run: func(_ context.Context, n int) error {
			chs := []chan int{make(chan int, 256), make(chan int, 256)}
			go func() {
				for i := range n {
					chs[0] <- i
					chs[1] <- i
				}
				close(chs[0])
				close(chs[1])
			}()
			var sums [2]int
			var wg sync.WaitGroup
			for j, ch := range chs {
				wg.Go(func() {
					acc, f := 0, sumFn
					for v := range ch {
						acc = f(acc, v)
					}
					sums[j] = acc
				})
			}
			wg.Wait()
			return errors.Join(check("subscriber 0", sums[0], sumTo(n)), check("subscriber 1", sums[1], sumTo(n)))
		}},
		{Group: g, Library: "sluice", Name: "subs=2", Run: func(ctx context.Context, n int) error {
			bc := operators.Broadcast(sources.Range(0, n), operators.MinSubscribers(2))
			var sums [2]int
			var errs [2]error
			var wg sync.WaitGroup
			for j := range 2 {
				wg.Go(func() { sums[j], errs[j] = sinks.Reduce(ctx, bc, 0, sumFn) })
			}
			wg.Wait()
			return errors.Join(errs[0], errs[1],
				check("subscriber 0", sums[0], sumTo(n)), check("subscriber 1", sums[1], sumTo(n)))
		}},
	}
}

// ---- slow sink, fast source ----

// SlowSinkRounds is the number of [CPUWork] rounds of the slow sink of the
// slow-sink group: about 100 ns on the 2-core reference machine, where a
// round takes 3 ns (a few times what the source takes per item).
const SlowSinkRounds = 33

// SlowSinkBuffer is the capacity of the Buffer of the slow-sink group.
const SlowSinkBuffer = 1024

// SlowSinkResult is the accounting of one [SlowSink] run.
type SlowSinkResult struct {
	// Emitted counts the items the source emitted, Delivered those the
	// sink received, Dropped those the Buffer dropped, by reason (counted
	// by its OnDrop hook).
	Emitted, Delivered int64
	Dropped            map[flow.DropReason]int64
	// Err is the error the sink returned (under Fail, the overflow).
	Err error
}

// TotalDropped returns the sum of r.Dropped.
func (r SlowSinkResult) TotalDropped() int64 {
	var t int64
	for _, d := range r.Dropped {
		t += d
	}
	return t
}

// SlowSink runs n items from a fast source (Range on a goroutine of its
// own, through SubscribeOn) into Buffer(SlowSinkBuffer, policy), then
// through a PublishOn to a sink that spends SlowSinkRounds rounds of
// [CPUWork] per item on a third goroutine, and returns the accounting.
// Under flow.Block the source is slowed to the sink's pace; under the
// other policies the Buffer requests everything and the source runs free.
// It checks that every emitted item was delivered or dropped, that
// nothing was dropped under Block, and that a Fail run either overflowed
// (the sink got flow.ErrOverflow, exactly one item was dropped for
// overflow) or delivered everything; it returns an error matching
// [ErrWrongResult] if not. With n much larger than the buffer, the Fail
// run overflows.
func SlowSink(ctx context.Context, n int, policy flow.Overflow) (SlowSinkResult, error) {
	return slowSink(ctx, n, policy, false)
}

// slowSink is SlowSink. With holdFirst, the sink holds its first item
// until the source has emitted all n items or the Buffer has dropped one
// for overflow, so that a run under a non-Block policy overflows whatever
// the relative speed of the goroutines (the race detector, for one, slows
// the source more than the sink); under Block it would wait forever.
func slowSink(ctx context.Context, n int, policy flow.Overflow, holdFirst bool) (SlowSinkResult, error) {
	src, mid := scheduler.NewSingle(), scheduler.NewSingle()
	var emitted, delivered atomic.Int64
	var drops [flow.ReasonError + 1]atomic.Int64
	pub := operators.PublishOn(
		operators.Buffer(
			operators.Tap(operators.SubscribeOn(sources.Range(0, n), src), func(int) { emitted.Add(1) }),
			SlowSinkBuffer, policy,
			operators.OnDrop(func(_ int, r flow.DropReason) { drops[r].Add(1) })),
		mid)
	err := sinks.ForEach(ctx, pub, func(v int) error {
		for holdFirst && emitted.Load() < int64(n) && drops[flow.ReasonOverflow].Load() == 0 {
			runtime.Gosched()
		}
		holdFirst = false
		cpuSink.Add(int64(CPUWork(v, SlowSinkRounds)))
		delivered.Add(1)
		return nil
	})
	// Close waits for the source's goroutine to end: the counters are
	// final after it.
	src.Close()
	mid.Close()
	res := SlowSinkResult{Emitted: emitted.Load(), Delivered: delivered.Load(), Err: err}
	for r := range drops {
		if d := drops[r].Load(); d != 0 {
			if res.Dropped == nil {
				res.Dropped = map[flow.DropReason]int64{}
			}
			res.Dropped[flow.DropReason(r)] = d
		}
	}
	if policy == flow.Fail && err != nil {
		if !errors.Is(err, flow.ErrOverflow) {
			return res, fmt.Errorf("%w: Fail: err = %v, want ErrOverflow", ErrWrongResult, err)
		}
		if err := check("Fail: overflow drops", res.Dropped[flow.ReasonOverflow], 1); err != nil {
			return res, err
		}
		return res, check("Fail: delivered+dropped", res.Delivered+res.TotalDropped(), res.Emitted)
	}
	if err != nil {
		return res, err
	}
	if err := check(policy.String()+": emitted", res.Emitted, int64(n)); err != nil {
		return res, err
	}
	if err := check(policy.String()+": delivered+dropped", res.Delivered+res.TotalDropped(), res.Emitted); err != nil {
		return res, err
	}
	if policy == flow.Block || policy == flow.Fail {
		return res, check(policy.String()+": dropped", res.TotalDropped(), 0)
	}
	return res, nil
}

func slowSinkScenarios() []Scenario {
	const g = "slow-sink"
	s := []Scenario{
		{Group: g, Library: "go", Name: "sink-loop", Baseline: true, Run: func(_ context.Context, n int) error {
			acc := 0
			for i := range n {
				acc += CPUWork(i, SlowSinkRounds)
			}
			cpuSink.Add(int64(acc))
			return nil
		}},
	}
	for _, p := range []flow.Overflow{flow.Block, flow.DropNewest, flow.DropOldest, flow.Fail} {
		s = append(s, Scenario{Group: g, Library: "sluice", Name: "buffer=1024/" + p.String(), Run: func(ctx context.Context, n int) error {
			r, err := SlowSink(ctx, n, p)
			ReportMetric(ctx, "delivered", float64(r.Delivered))
			ReportMetric(ctx, "dropped", float64(r.TotalDropped()))
			return err
		}})
	}
	return s
}
