package sources

import (
	"math"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/stage"
)

// Range returns a publisher that emits the count integers start,
// start+1, …, start+count-1 and then completes. With count == 0 it
// completes at once, without waiting for demand.
//
// Each subscription starts again from start. Its Subscription is
// goroutine-safe; items are emitted on the goroutine whose Request moved
// the demand off zero (see the package doc). It is the fastest source: an
// item costs about what a plain for loop calling OnNext through the
// interface costs (2.3 ns on a 2-core 2.3 GHz machine, 1.9 ns under
// Unbounded demand), and it allocates only at Subscribe.
//
// Range panics if count < 0 or if start+count overflows int.
//
// Options: [Name] names the stage for the monitor package; without it a
// monitored Range is named "range#N" when subscribed.
func Range(start, count int, opts ...Option) flow.Publisher[int] {
	if count < 0 {
		panic("sluice: Range: count < 0")
	}
	if start > 0 && count > math.MaxInt-start {
		panic("sluice: Range: start+count overflows int")
	}
	return rangePublisher{start: start, end: start + count, name: givenName(opts)}
}

type rangePublisher struct {
	start, end int
	name       string // given with Name, or empty
}

// givenName returns the name set by opts, or "" (the monitor derives one
// when it registers the stage). Sources without a drop hook use it, so
// that constructing one takes no lock.
func givenName(opts []Option) string {
	if len(opts) == 0 {
		return ""
	}
	var c stage.Config
	for _, o := range opts {
		if o == nil {
			panic("sluice: nil Option")
		}
		o.apply(&c)
	}
	return c.Name
}

// FusedLoop runs the whole range as a plain loop (see internal/fuse).
func (p rangePublisher) FusedLoop(run *fuse.Run, yield func(int) bool) error {
	if run.Attach("range", p.name, probe.Source) != nil {
		return fusedRange(run, p.start, p.end, yield)
	}
	for i := p.start; i < p.end; i++ {
		if !yield(i) {
			break
		}
	}
	return nil
}

// FusedBound returns the count of the range (see fuse.Bounded).
func (p rangePublisher) FusedBound() (int64, bool) { return int64(p.end - p.start), true }

// fusedRange is the loop of a monitored fused Range: it publishes the
// counts of the whole run (fuse.Run.Publish) when due, looked at once per
// run of 64 items, between items. The runs themselves go through
// rangeRun, a loop with nothing live across yield but its own three
// values, so a monitored run costs per item what an unmonitored one does.
func fusedRange(run *fuse.Run, start, end int, yield func(int) bool) error {
	for i := start; i < end; {
		if k := int64(i - start); run.Due(k) {
			run.Publish(k)
		}
		next, ok := rangeRun(i, min(i+64, end), yield)
		if !ok {
			run.Publish(int64(next - start))
			return nil
		}
		i = next
	}
	run.Publish(int64(end - start))
	return nil
}

// rangeRun yields i, …, lim-1 and returns where it stopped (one past the
// item whose yield returned false) and whether it got to lim.
//
//go:noinline
func rangeRun(i, lim int, yield func(int) bool) (int, bool) {
	for ; i < lim; i++ {
		if !yield(i) {
			return i + 1, false
		}
	}
	return i, true
}

// FusedRange runs the range through body, the first layer's own loop, a
// run of at most 64 ints at a time (see fuse.RangeLoop); a monitored run
// publishes its counts between runs, as FusedLoop does.
func (p rangePublisher) FusedRange(run *fuse.Run, body func(lo, hi int) (int, bool)) error {
	monitored := run.Attach("range", p.name, probe.Source) != nil
	for i := p.start; i < p.end; {
		if monitored {
			if k := int64(i - p.start); run.Due(k) {
				run.Publish(k)
			}
		}
		next, ok := body(i, min(i+64, p.end))
		if !ok {
			if monitored {
				run.Publish(int64(next - p.start))
			}
			return nil
		}
		i = next
	}
	if monitored {
		run.Publish(int64(p.end - p.start))
	}
	return nil
}

// FusedRunsOK reports true: a Range can always hand a sink runs (see
// fuse.RunLoop).
func (p rangePublisher) FusedRunsOK() bool { return true }

// FusedRuns runs the range for a sink that takes runs: the ints of each
// run of up to 64 are written into one buffer, allocated once, and
// handed to yield.
func (p rangePublisher) FusedRuns(run *fuse.Run, yield func([]int) bool) error {
	buf := make([]int, 64)
	return p.FusedRange(run, func(lo, hi int) (int, bool) {
		r := buf[:hi-lo]
		for k := range r {
			r[k] = lo + k
		}
		return hi, yield(r)
	})
}

// FusedRunsOK reports true: a Slice can always hand a sink runs (see
// fuse.RunLoop).
func (p slicePublisher[T]) FusedRunsOK() bool { return true }

// FusedRuns runs the slice for a sink that takes runs: each run is a
// piece of the slice itself, up to 64 items, not a copy.
func (p slicePublisher[T]) FusedRuns(run *fuse.Run, yield func([]T) bool) error {
	return p.FusedSlice(run, func(items []T) (int, bool) {
		return len(items), yield(items[:len(items):len(items)])
	})
}

// FusedSlice runs the slice through body, the first layer's own loop, a
// run of at most 64 items at a time (see fuse.SliceLoop).
func (p slicePublisher[T]) FusedSlice(run *fuse.Run, body func(items []T) (int, bool)) error {
	monitored := run.Attach("slice", p.name, probe.Source) != nil
	i := 0
	for i < len(p.items) {
		if monitored && run.Due(int64(i)) {
			run.Publish(int64(i))
		}
		n, ok := body(p.items[i:min(i+64, len(p.items))])
		i += n
		if !ok {
			break
		}
	}
	if monitored {
		run.Publish(int64(i))
	}
	return nil
}

// fusedSlice is fusedRange over the items of a slice.
func fusedSlice[T any](run *fuse.Run, items []T, yield func(T) bool) error {
	for i := 0; i < len(items); {
		if run.Due(int64(i)) {
			run.Publish(int64(i))
		}
		n, ok := sliceRun(items[i:min(i+64, len(items))], yield)
		i += n
		if !ok {
			run.Publish(int64(i))
			return nil
		}
	}
	run.Publish(int64(len(items)))
	return nil
}

// sliceRun yields the items of batch and returns how many it yielded and
// whether it got to the end.
//
//go:noinline
func sliceRun[T any](batch []T, yield func(T) bool) (int, bool) {
	for i, v := range batch {
		if !yield(v) {
			return i + 1, false
		}
	}
	return len(batch), true
}

func (p rangePublisher) Subscribe(s flow.Subscriber[int]) {
	flow.RequireSubscriber(s)
	if p.start == p.end {
		flow.Complete(s)
		return
	}
	if st, _ := probe.Attach(s, "range", p.name, probe.Source); st != nil {
		s = probe.Observe(st, s)
	}
	s.OnSubscribe(&rangeSubscription{s: s, index: p.start, end: p.end})
}

// rangeSubscription emits [index, end). The demand is the ownership token
// of the emission loop: the goroutine whose Add moves it off zero runs the
// loop until Produced brings it back to zero. A loop that ends the stream
// (complete, cancel, error) leaves the demand above zero for ever, so no
// later call can enter. Fields after the blank line belong to the loop owner.
type rangeSubscription struct {
	demand    flow.Demand
	cancelled atomic.Bool
	failure   atomic.Pointer[error] // a non-positive request, signalled on stop

	s     flow.Subscriber[int]
	buf   []int // the run handed to s when it takes runs
	index int
	end   int
}

// EmitsInRequest reports true: Range delivers only from inside Request
// (see stage.SyncEmitter). Cancel signals nothing unless a non-positive
// Request came first.
func (r *rangeSubscription) EmitsInRequest() bool { return true }

func (r *rangeSubscription) Request(n int64) {
	if n <= 0 {
		r.badRequest(n)
		return
	}
	if r.demand.Add(n) == 0 {
		r.emit()
	}
}

func (r *rangeSubscription) Cancel() {
	if r.cancelled.CompareAndSwap(false, true) && r.demand.Add(1) == 0 {
		r.stop()
	}
}

func (r *rangeSubscription) badRequest(n int64) {
	if r.cancelled.Load() {
		return // rule 3.6
	}
	err := flow.NonPositiveRequestError(n)
	r.failure.CompareAndSwap(nil, &err)
	if r.cancelled.CompareAndSwap(false, true) && r.demand.Add(1) == 0 {
		r.stop()
	}
}

// stop ends a cancelled subscription. The caller owns the loop.
func (r *rangeSubscription) stop() {
	s := r.s
	r.s = nil
	if err := r.failure.Load(); err != nil {
		s.OnError(*err)
	}
}

// emit is the emission loop; the caller owns it. Each pass emits up to
// the demand seen, or to the end, in a loop whose only per-item work is
// the cancelled check and OnNext; unbounded demand is one pass.
func (r *rangeSubscription) emit() {
	s, i, end := r.s, r.index, r.end
	n := r.demand.Load()
	var e int64 // emitted since the last Produced
	for {
		lim := end
		if left := n - e; n != flow.Unbounded && left < int64(end-i) {
			lim = i + int(left)
		}
		if !r.runAny(s, i, lim) {
			r.stop()
			return
		}
		if lim == end {
			r.complete(s)
			return
		}
		e += int64(lim - i)
		i = lim
		if n = r.demand.Load(); n == e {
			r.index = i
			if n = r.demand.Produced(e); n == 0 {
				return
			}
			e = 0
		}
	}
}

// runAny emits i, …, lim-1 as run does: in runs of up to
// stage.MaxBatch when the subscriber takes batches (sluice's own stages),
// one by one otherwise.
func (r *rangeSubscription) runAny(s flow.Subscriber[int], i, lim int) bool {
	b := stage.Batcher(s)
	if b == nil {
		return r.run(s, i, lim)
	}
	if r.buf == nil {
		r.buf = make([]int, stage.MaxBatch)
	}
	for i != lim {
		if r.cancelled.Load() {
			return false
		}
		n := min(lim-i, len(r.buf))
		run := r.buf[:n]
		for k := range run {
			run[k] = i + k
		}
		b.OnNextBatch(run)
		i += n
	}
	return true
}

// run emits i, …, lim-1 and reports whether it got to lim without
// seeing the cancelled flag. It is kept out of line so that only the
// values it needs are live across each OnNext call (Go has no callee-saved
// registers: everything live is reloaded after every call).
//
//go:noinline
func (r *rangeSubscription) run(s flow.Subscriber[int], i, lim int) bool {
	for ; i != lim; i++ {
		if r.cancelled.Load() {
			return false
		}
		s.OnNext(i)
	}
	return true
}

func (r *rangeSubscription) complete(s flow.Subscriber[int]) {
	if r.cancelled.Load() {
		r.stop()
		return
	}
	r.s = nil
	s.OnComplete()
}

// Slice returns a publisher that emits the items of items in order and
// then completes. With no items it completes at once, without waiting for
// demand.
//
// Slice does not copy items: the caller must not modify the slice while
// any subscription to it is live. Each subscription starts again from the
// first item. Its Subscription is goroutine-safe; items are emitted on the
// goroutine whose Request moved the demand off zero (see the package doc).
// Like [Range], an item costs about what a plain loop over items calling
// OnNext through the interface costs, and it allocates only at Subscribe.
//
// Options: [Name], as for Range.
func Slice[T any](items []T, opts ...Option) flow.Publisher[T] {
	return slicePublisher[T]{items: items, name: givenName(opts)}
}

// Just returns a publisher that emits its arguments in order and then
// completes; with no arguments it completes at once. It is [Slice] over
// the argument slice, and has the same properties.
func Just[T any](items ...T) flow.Publisher[T] {
	return Slice(items)
}

type slicePublisher[T any] struct {
	items []T
	name  string
}

// FusedLoop runs the whole slice as a plain loop (see internal/fuse).
func (p slicePublisher[T]) FusedLoop(run *fuse.Run, yield func(T) bool) error {
	if run.Attach("slice", p.name, probe.Source) != nil {
		return fusedSlice(run, p.items, yield)
	}
	for _, v := range p.items {
		if !yield(v) {
			break
		}
	}
	return nil
}

// FusedBound returns the length of the slice (see fuse.Bounded).
func (p slicePublisher[T]) FusedBound() (int64, bool) { return int64(len(p.items)), true }

func (p slicePublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	if len(p.items) == 0 {
		flow.Complete(s)
		return
	}
	if st, _ := probe.Attach(s, "slice", p.name, probe.Source); st != nil {
		s = probe.Observe(st, s)
	}
	s.OnSubscribe(&sliceSubscription[T]{s: s, items: p.items})
}

// sliceSubscription is rangeSubscription over the indexes of items.
type sliceSubscription[T any] struct {
	demand    flow.Demand
	cancelled atomic.Bool
	failure   atomic.Pointer[error]

	s     flow.Subscriber[T]
	items []T
	index int
}

// EmitsInRequest reports true, as for Range.
func (r *sliceSubscription[T]) EmitsInRequest() bool { return true }

func (r *sliceSubscription[T]) Request(n int64) {
	if n <= 0 {
		r.badRequest(n)
		return
	}
	if r.demand.Add(n) == 0 {
		r.emit()
	}
}

func (r *sliceSubscription[T]) Cancel() {
	if r.cancelled.CompareAndSwap(false, true) && r.demand.Add(1) == 0 {
		r.stop()
	}
}

func (r *sliceSubscription[T]) badRequest(n int64) {
	if r.cancelled.Load() {
		return // rule 3.6
	}
	err := flow.NonPositiveRequestError(n)
	r.failure.CompareAndSwap(nil, &err)
	if r.cancelled.CompareAndSwap(false, true) && r.demand.Add(1) == 0 {
		r.stop()
	}
}

func (r *sliceSubscription[T]) stop() {
	s := r.s
	r.s = nil
	r.items = nil
	if err := r.failure.Load(); err != nil {
		s.OnError(*err)
	}
}

// emit is rangeSubscription.emit over the indexes of items.
func (r *sliceSubscription[T]) emit() {
	s, items, i := r.s, r.items, r.index
	n := r.demand.Load()
	var e int64
	for {
		batch := items[i:]
		if left := n - e; n != flow.Unbounded && left < int64(len(batch)) {
			batch = batch[:left]
		}
		if !r.runAny(s, batch) {
			r.stop()
			return
		}
		i += len(batch)
		if i == len(items) {
			r.complete(s)
			return
		}
		e += int64(len(batch))
		if n = r.demand.Load(); n == e {
			r.index = i
			if n = r.demand.Produced(e); n == 0 {
				return
			}
			e = 0
		}
	}
}

// runAny emits batch as run does: in runs of up to stage.MaxBatch, handed
// over in place, when the subscriber takes batches, one by one otherwise.
func (r *sliceSubscription[T]) runAny(s flow.Subscriber[T], batch []T) bool {
	b := stage.Batcher(s)
	if b == nil {
		return r.run(s, batch)
	}
	for len(batch) != 0 {
		if r.cancelled.Load() {
			return false
		}
		n := min(len(batch), stage.MaxBatch)
		b.OnNextBatch(batch[:n:n])
		batch = batch[n:]
	}
	return true
}

// run emits batch and reports whether it got to its end without seeing
// the cancelled flag; out of line for the reason given at
// rangeSubscription.run.
//
//go:noinline
func (r *sliceSubscription[T]) run(s flow.Subscriber[T], batch []T) bool {
	for _, item := range batch {
		if r.cancelled.Load() {
			return false
		}
		s.OnNext(item)
	}
	return true
}

func (r *sliceSubscription[T]) complete(s flow.Subscriber[T]) {
	if r.cancelled.Load() {
		r.stop()
		return
	}
	r.s = nil
	r.items = nil
	s.OnComplete()
}

// Empty returns a publisher that completes every subscriber at once,
// without waiting for demand. Its Subscription ignores Request and Cancel.
// It is goroutine-safe and allocates nothing per subscription.
func Empty[T any]() flow.Publisher[T] {
	return emptyPublisher[T]{}
}

type emptyPublisher[T any] struct{}

func (emptyPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	flow.Complete(s)
}

// Error returns a publisher that fails every subscriber at once with err:
// OnSubscribe, then OnError(err), without waiting for demand. Its
// Subscription ignores Request and Cancel. It is goroutine-safe and
// allocates nothing per subscription.
//
// Error panics if err is nil.
func Error[T any](err error) flow.Publisher[T] {
	if err == nil {
		panic("sluice: Error: nil error")
	}
	return errorPublisher[T]{err: err}
}

type errorPublisher[T any] struct{ err error }

func (p errorPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	flow.Reject(s, p.err)
}
