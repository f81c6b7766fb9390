package operators

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
)

// This file holds Merge and the core shared by the fan-in stages (Merge,
// FlatMap, Zip, MergePriority):
//
//   - finHub: the downstream Subscription of a fan-in stage. Request and
//     Cancel only record their signal; one drain loop, serialised by a
//     work-in-progress counter, does all the work (rule 3.3: recursion
//     depth 1), on whichever goroutine signalled first.
//   - finLink: a guarded handle on one upstream Subscription, which may be
//     cancelled before it is set.
//   - finInner: the Subscriber of one source, with its own bounded SPSC ring
//     (the source is the producer, the drain loop the consumer), its own
//     prefetch and 75 % replenishment.
//   - fanIn: the drain loop of Merge and FlatMap.

// defaultMergePrefetch is the per-source prefetch of Merge, Zip and
// MergePriority.
const defaultMergePrefetch = 256

// The bits of finHub.state.
const (
	finReady     uint32 = 1 << iota // downstream's OnSubscribe has returned
	finCancelled                    // downstream cancelled
	finBad                          // downstream requested n <= 0; see badN
	finFailed                       // a source or user function failed; see err
	finEnded                        // the drain loop has ended the stream
)

// finHub is the downstream half of a fan-in stage: demand, the drain-loop
// token and the signals the loop acts on. pass is the stage's drain pass;
// it runs with the token held, so never concurrently with itself.
type finHub struct {
	wip     atomic.Int32
	_       [60]byte
	demand  flow.Demand
	state   atomic.Uint32
	badOnce atomic.Bool
	badN    int64 // written before finBad
	err     atomic.Pointer[error]
	// halt is set with finCancelled, finBad and finFailed: the stream
	// is ending. It is the stop flag of FlatMap's inline runs (see
	// flatOuter.inline), which a fused Filter checks on the items it
	// rejects.
	halt atomic.Bool
	pass func()
	// recheck, if set, reports whether items were published that the
	// loop must look at; it runs after the loop has released the token
	// (see signal), so it may read only goroutine-safe state.
	recheck func() bool
	// Set at Subscribe, before downstream's OnSubscribe and before any
	// source is subscribed: the monitor counters (nil when not
	// monitored; Next, Returned and Flush only with the drain-loop token
	// held) and the context that every subscriber the stage passes
	// upstream exposes (see finInner.Context), so that the sources
	// register under this stage.
	probe *probe.Stage
	ctx   context.Context
}

// lazyRing is the SPSC ring of a finInner, allocated by the producer when
// it first queues an item (FlatMap's inner sources often deliver every
// item directly, see tryEmit), or at construction. Its methods are those
// of ring.SPSC, and treat a ring not yet allocated as empty.
type lazyRing[X any] struct {
	p atomic.Pointer[ring.SPSC[X]]
}

// Offer queues v, allocating the ring for capacity items if needed.
// Producer only.
func (r *lazyRing[X]) Offer(v X, capacity int64) bool {
	q := r.p.Load()
	if q == nil {
		q = ring.NewSPSC[X](int(capacity))
		r.p.Store(q)
	}
	return q.Offer(v)
}

func (r *lazyRing[X]) Poll() (v X, ok bool) {
	if q := r.p.Load(); q != nil {
		return q.Poll()
	}
	return v, false
}

func (r *lazyRing[X]) Empty() bool {
	q := r.p.Load()
	return q == nil || q.Empty()
}

func (r *lazyRing[X]) Release() {
	if q := r.p.Load(); q != nil {
		q.Release()
	}
}

func (r *lazyRing[X]) Len() int {
	if q := r.p.Load(); q != nil {
		return q.Len()
	}
	return 0
}

// signal records work for the drain loop and runs it if it is idle.
//
// A source's OnNext may skip signal when it sees the loop active (see
// finInner.lazy): publishing the item to its ring and loading wip are
// sequentially consistent, as are the loop's release of wip and recheck's
// look at the rings, so either the producer sees the loop idle and
// signals, or recheck sees the item and the loop takes the token back.
func (h *finHub) signal() {
	if h.wip.Add(1) != 1 {
		return // the goroutine in the loop will see it
	}
	h.pass()
	h.drain(1)
}

// drain releases missed units of work, and runs passes while more
// arrived meanwhile. The caller holds the token and has just run a pass
// (or done the work of one).
func (h *finHub) drain(missed int32) {
	for {
		h.probe.Flush() // with the token held: the count is exact at rest
		if missed = h.wip.Add(-missed); missed == 0 {
			if h.recheck == nil || !h.recheck() || !h.wip.CompareAndSwap(0, 1) {
				return
			}
			missed = 1
		}
		h.pass()
	}
}

// Request adds n to downstream's demand. It never requests upstream
// itself: the drain loop does, per source, as it consumes.
func (h *finHub) Request(n int64) {
	h.probe.Request(n)
	if n <= 0 {
		if h.badOnce.CompareAndSwap(false, true) {
			h.badN = n
			h.state.Or(finBad)
			h.halt.Store(true)
		}
	} else {
		h.demand.Add(n)
	}
	h.signal()
}

// Cancel ends the subscription: the drain loop cancels every source,
// drops what is queued and forgets the subscriber.
func (h *finHub) Cancel() {
	if h.state.Or(finCancelled)&finCancelled == 0 {
		h.halt.Store(true)
		h.probe.End(probe.Cancelled)
		h.signal()
	}
}

// fail records err as the stream's failure, unless one was recorded
// first, and wakes the drain loop.
func (h *finHub) fail(err error) {
	h.setErr(err)
	h.signal()
}

// setErr records err as the stream's failure, unless one was recorded
// first. A source that fails records its error before it marks itself
// done, so a pass that sees it done sees the error too (see settled).
func (h *finHub) setErr(err error) {
	if h.err.CompareAndSwap(nil, &err) {
		h.state.Or(finFailed)
		h.halt.Store(true)
	}
}

// stopCause reads, at the top of a drain pass, what ends or cuts the
// stream, in this order: a cancel (the stream ends, nothing signalled), a
// non-positive request, then the recorded failure or else dropErr (the
// stage's own drop error). end reports that the pass must finish the
// stream now with err; a failure under delayError comes back with end
// false: the pass cancels its sources and still delivers what it holds.
func (h *finHub) stopCause(st uint32, dropErr error, delayError bool) (err error, end bool) {
	switch {
	case st&finCancelled != 0:
		return nil, true
	case st&finBad != 0:
		return flow.NonPositiveRequestError(h.badN), true
	}
	if err = h.failure(); err == nil {
		err = dropErr
	}
	return err, err != nil && !delayError
}

// terminate ends the stage's monitor record and delivers err to d, or
// OnComplete when err is nil: the last signal of a fan-in stage.
func (h *finHub) terminate(d interface {
	OnError(error)
	OnComplete()
}, err error) {
	if err != nil {
		h.probe.End(probe.Failed)
		d.OnError(err)
	} else {
		h.probe.End(probe.Completed)
		d.OnComplete()
	}
}

// failure returns the recorded failure, or nil.
func (h *finHub) failure() error {
	if p := h.err.Load(); p != nil {
		return *p
	}
	return nil
}

// finLink is a stage's handle on one upstream Subscription that may be
// cancelled from the drain loop before the upstream has called
// OnSubscribe: the later OnSubscribe then cancels at once.
type finLink struct {
	sub       flow.Subscription // written before ready
	subbed    atomic.Bool
	ready     atomic.Bool
	cancelled atomic.Bool
}

// set stores s and reports whether the caller may use it; on false the
// caller must not request (s was cancelled, or was a second subscription).
func (u *finLink) set(s flow.Subscription) bool {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if !u.subbed.CompareAndSwap(false, true) {
		s.Cancel() // rule 2.5
		return false
	}
	u.sub = s
	u.ready.Store(true)
	if u.cancelled.Load() {
		s.Cancel()
		return false
	}
	return true
}

// request asks upstream for n (> 0) more, unless cancelled. It must be
// called after set.
func (u *finLink) request(n int64) {
	if !u.cancelled.Load() {
		u.sub.Request(n)
	}
}

// cancel cancels upstream, now if it is set, or as soon as it is.
func (u *finLink) cancel() {
	if u.cancelled.CompareAndSwap(false, true) && u.ready.Load() {
		u.sub.Cancel()
	}
}

// finInner subscribes to one source of a fan-in stage. Items go into q;
// done is set after the last one is published. The drain loop owns
// consumed and polls q.
type finInner[X any] struct {
	finLink
	h               *finHub
	q               lazyRing[X]
	fx              *fanIn[X]      // FlatMap: delivers directly when it can (see tryEmit)
	drops           *ring.Drops[X] // counts an overflowing item; nil: not counted
	name            string
	prefetch, limit int64
	done            atomic.Bool
	overflowed      atomic.Bool
	consumed        int64 // drain-owned
	// lazy: OnNext does not signal a loop that is already active; the
	// hub's recheck must then cover this ring.
	lazy bool
}

func newFinInner[X any](h *finHub, prefetch int64, name string, drops *ring.Drops[X]) *finInner[X] {
	in := newLazyInner(h, prefetch, name, drops)
	in.q.p.Store(ring.NewSPSC[X](int(prefetch)))
	return in
}

// newLazyInner is newFinInner without the ring, which the first item
// that has to be queued allocates.
func newLazyInner[X any](h *finHub, prefetch int64, name string, drops *ring.Drops[X]) *finInner[X] {
	return &finInner[X]{
		h:        h,
		drops:    drops,
		name:     name,
		prefetch: prefetch,
		limit:    prefetch - prefetch/4,
	}
}

// Context returns the context of the stage's downstream, naming the
// stage, so that the source registers under it with the monitor.
func (in *finInner[X]) Context() context.Context { return in.h.ctx }

func (in *finInner[X]) OnSubscribe(s flow.Subscription) {
	if in.set(s) {
		in.request(in.prefetch)
	}
}

func (in *finInner[X]) OnNext(v X) {
	if in.fx != nil && in.fx.tryEmit(in, v) {
		return
	}
	if !in.q.Offer(v, in.prefetch) {
		in.overflow()
		if in.drops != nil {
			in.drops.Drop(v, flow.ReasonOverflow)
		}
		return
	}
	if in.lazy && in.h.wip.Load() != 0 {
		return // the loop is active: it, or its recheck, will see the item
	}
	in.h.signal()
}

// overflow fails the stream because the source sent more than requested.
func (in *finInner[X]) overflow() {
	if in.overflowed.CompareAndSwap(false, true) {
		in.cancel()
		in.h.fail(fmt.Errorf("%s: %w: a source emitted more than requested", in.name, flow.ErrOverflow))
	}
}

func (in *finInner[X]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	in.h.setErr(err) // before done: see setErr
	in.done.Store(true)
	in.h.signal()
}

func (in *finInner[X]) OnComplete() {
	in.done.Store(true)
	in.h.signal()
}

// took records one item taken from q and replenishes the source by limit
// once limit items have been taken. Drain loop only.
func (in *finInner[X]) took() {
	if in.consumed++; in.consumed == in.limit {
		in.consumed = 0
		in.q.Release() // room before the request that fills it
		in.request(in.limit)
	}
}

// finDelayError returns the value of the last DelayError option in opts,
// or def when there is none.
func finDelayError(opts []Option, def bool) bool {
	for _, o := range opts {
		if d, ok := o.(delayErrorOption); ok {
			def = bool(d)
		}
	}
	return def
}

// fanIn is one subscription of Merge or FlatMap.
type fanIn[T any] struct {
	finHub
	name       string
	drops      ring.Drops[T]
	delayError bool
	ordered    bool
	quantum    int    // most items taken from one source per visit
	stopMask   uint32 // state bits that end the stream at once

	// FlatMap only: the outer source, and the inners it subscribed that
	// the loop has not taken into active yet (outer's OnNext produces).
	outer     *finLink
	newq      *ring.SPSC[*finInner[T]]
	outerDone atomic.Bool // Merge: always

	// drain-owned
	down        flow.Subscriber[T] // nil once ended
	active      []*finInner[T]     // live sources, in subscription order
	retired     []*finInner[T]     // cancelled by a failure and removed: items in flight are dropped
	next        int                // where the next round-robin sweep starts
	finished    bool               // a terminal signal was sent, or the stream was cancelled
	cut         bool               // failed with delayError: sources cancelled, draining the queues
	outerCredit int64              // inners finished since the last request to outer
}

func newFanIn[T any](down flow.Subscriber[T], name string, hook func(T, flow.DropReason),
	counts *[ring.NumReasons]atomic.Int64, delayError, ordered bool, quantum int) *fanIn[T] {
	x := &fanIn[T]{down: down, name: name, delayError: delayError, ordered: ordered, quantum: max(1, quantum)}
	x.drops.Init(hook, name, counts)
	x.stopMask = finCancelled | finBad
	if !delayError {
		x.stopMask |= finFailed
	}
	x.finHub.pass = x.pass
	return x
}

// pass does everything that can be done now. It runs with the finHub's
// token held.
func (x *fanIn[T]) pass() {
	st := x.state.Load()
	if st&finReady == 0 {
		return
	}
	od := x.outerDone.Load() // before takeNew: the outer pushes before it completes
	x.takeNew()
	if x.finished {
		x.dropQueued() // items that raced with the end
		return
	}
	err, end := x.stopCause(st, x.drops.Err(), x.delayError)
	if end {
		x.finish(err, err != nil)
		return
	}
	if err != nil {
		if !x.cut {
			x.cut = true
			x.cancelSources()
		}
		x.dropRetired()
	}
	if x.ordered {
		x.emitOrdered()
	} else {
		x.emitMerged()
	}
	if x.finished {
		return
	}
	if x.outerCredit > 0 && x.outer != nil && !x.cut {
		n := x.outerCredit
		x.outerCredit = 0
		x.outer.request(n)
	}
	if len(x.active) == 0 && (od || x.cut) && (x.newq == nil || x.newq.Len() == 0) {
		x.finish(x.settled(err), true)
	}
}

// tryEmit is FlatMap's fast path, called by an inner source's OnNext: if
// the drain loop is idle, it takes the token and, when nothing is ahead
// of v (downstream has demand, in has nothing queued and, if ordered, in
// is the first source), delivers v at once, without queueing it;
// otherwise it queues v and runs a pass. It reports false, having done
// nothing, when the loop is busy.
func (x *fanIn[T]) tryEmit(in *finInner[T], v T) bool {
	if x.wip.Load() != 0 || !x.wip.CompareAndSwap(0, 1) {
		return false
	}
	x.takeNew()
	if x.state.Load() != finReady || x.cut || x.finished || x.demand.Load() == 0 || !in.q.Empty() ||
		(x.ordered && x.active[0] != in) {
		if !in.q.Offer(v, in.prefetch) {
			in.overflow()
			x.drops.Drop(v, flow.ReasonOverflow)
		}
		x.pass()
		x.drain(1)
		return true
	}
	if pr := x.probe; pr != nil {
		pr.Next()
		x.down.OnNext(v)
		pr.Returned()
	} else {
		x.down.OnNext(v)
	}
	x.demand.Produced(1)
	in.took()
	x.drain(1)
	return true
}

// settled returns the error to end the stream with once every source is
// done: err, the failure seen at the start of the pass, or one recorded
// since by a source the pass then saw done.
func (h *finHub) settled(err error) error {
	if err == nil {
		err = h.failure()
	}
	return err
}

// takeNew moves the inners the outer source subscribed into active.
func (x *fanIn[T]) takeNew() {
	if x.newq == nil {
		return
	}
	for {
		in, ok := x.newq.Poll()
		if !ok {
			break
		}
		if x.cut || x.finished {
			in.cancel()
		}
		x.active = append(x.active, in)
	}
	x.newq.Release()
}

// emitMerged delivers queued items while there is demand, sweeping the
// sources round-robin from x.next and taking at most quantum items from
// each per visit, and removes the sources that are done and drained. The
// sweep starts after the last source that delivered, so a subscriber
// that requests one item at a time is served by each source in turn.
func (x *fanIn[T]) emitMerged() {
	pr := x.probe
	r := x.demand.Load()
	var e int64
	for len(x.active) > 0 {
		progress := false
		i := x.next
		for n := len(x.active); n > 0 && len(x.active) > 0; n-- {
			if i >= len(x.active) {
				i = 0
			}
			in := x.active[i]
			done := x.cut || in.done.Load() // before the queue: done follows the last item
			took := 0
			for e != r && took < x.quantum {
				if x.state.Load()&x.stopMask != 0 {
					x.produced(e)
					return // the next pass ends the stream
				}
				v, ok := in.q.Poll()
				if !ok {
					break
				}
				if pr != nil {
					pr.Next()
					x.down.OnNext(v)
					pr.Returned()
				} else {
					x.down.OnNext(v)
				}
				e++
				took++
				in.took()
			}
			if took > 0 {
				progress = true
				x.next = i + 1
			}
			if done && in.q.Empty() {
				x.remove(i)
				progress = true
				continue
			}
			i++
		}
		if !progress || e == r {
			break
		}
	}
	x.produced(e)
}

// emitOrdered delivers queued items of the first source only, and moves
// to the next once the first is done and drained (FlatMap with Ordered).
func (x *fanIn[T]) emitOrdered() {
	pr := x.probe
	r := x.demand.Load()
	var e int64
	for len(x.active) > 0 {
		in := x.active[0]
		done := x.cut || in.done.Load()
		for e != r {
			if x.state.Load()&x.stopMask != 0 {
				x.produced(e)
				return
			}
			v, ok := in.q.Poll()
			if !ok {
				break
			}
			if pr != nil {
				pr.Next()
				x.down.OnNext(v)
				pr.Returned()
			} else {
				x.down.OnNext(v)
			}
			e++
			in.took()
		}
		if !done || !in.q.Empty() {
			break
		}
		x.remove(0)
	}
	x.produced(e)
}

// remove forgets the finished source at i and credits the outer source.
func (x *fanIn[T]) remove(i int) {
	x.active[i].q.Release()
	if x.cut && !x.active[i].done.Load() {
		x.retired = append(x.retired, x.active[i]) // cancelled: an item may still arrive
	}
	x.active = slices.Delete(x.active, i, i+1)
	if x.next > i {
		x.next--
	}
	x.outerCredit++
}

func (x *fanIn[T]) produced(e int64) {
	for _, in := range x.active {
		in.q.Release()
	}
	if e != 0 {
		x.demand.Produced(e)
	}
}

// finish ends the stream: every source is cancelled, the queues are
// dropped, the subscriber is forgotten (rule 3.13) and, if signal, gets
// OnError(err) or, when err is nil, OnComplete.
func (x *fanIn[T]) finish(err error, signal bool) {
	x.finished = true
	x.state.Or(finEnded)
	x.cancelSources()
	d := x.down
	x.down = nil
	x.dropQueued()
	if signal {
		x.terminate(d, err)
	}
}

func (x *fanIn[T]) cancelSources() {
	if x.outer != nil {
		x.outer.cancel()
	}
	for _, in := range x.active {
		in.cancel()
	}
}

// dropRetired drops the items that reached retired sources.
func (x *fanIn[T]) dropRetired() { x.dropQueuedOf(x.retired) }

// dropQueued drops every queued item, with flow.ReasonCancelled.
func (x *fanIn[T]) dropQueued() {
	x.dropQueuedOf(x.retired)
	x.dropQueuedOf(x.active)
}

// dropQueuedOf drops the items queued by ins, with flow.ReasonCancelled.
func (x *fanIn[T]) dropQueuedOf(ins []*finInner[T]) {
	for _, in := range ins {
		for {
			v, ok := in.q.Poll()
			if !ok {
				break
			}
			x.drops.Drop(v, flow.ReasonCancelled)
		}
		in.q.Release()
	}
}

// rechecked is the recheck of a hub whose sources are lazy: it reports
// whether one of them has published an item that the loop must deliver
// (there is demand) or drop (the stream has ended). After a pass that
// leaves demand, every ring is empty, so a true answer means new items.
// It is goroutine-safe: it reads only atomics.
func rechecked[X any](h *finHub, ins []*finInner[X]) bool {
	st := h.state.Load()
	if st&finReady == 0 || (st&finEnded == 0 && h.demand.Load() == 0) {
		return false
	}
	for _, in := range ins {
		if in.q.Len() != 0 {
			return true
		}
	}
	return false
}

// queuedIn returns the number of items queued in the rings of ins, for
// the monitor. It is goroutine-safe: it reads only the rings' published
// indexes (ring.SPSC.Len).
func queuedIn[X any](ins []*finInner[X]) int {
	n := 0
	for _, in := range ins {
		n += in.q.Len()
	}
	return n
}

// ---- Merge ----

// Merge returns a publisher that emits the items of every source as they
// arrive, interleaved, and completes when all of them have completed.
// Merge() with no source completes at once. It is [MergeWith] without
// options.
func Merge[T any](srcs ...flow.Publisher[T]) flow.Publisher[T] {
	return MergeWith(srcs)
}

// MergeWith returns a publisher that subscribes to every source at once
// and emits their items as they arrive, interleaved, serialised into one
// stream. The items of one source keep their order; there is no order
// between sources.
//
// Demand: each source gets its own prefetch. As soon as downstream's
// OnSubscribe has returned, MergeWith requests P items from each source
// (the [Prefetch] option, default 256), whatever downstream asks for, and
// L = P − P/4 more from a source each time L of its items have been
// delivered (Reactor's 75 % rule). A downstream Request(n) only allows n
// more deliveries from the queues. A source that emits more than it was
// asked for ends the stream with an error that matches flow.ErrOverflow.
//
// When it emits and what it buffers: Subscribe subscribes to the sources
// in order, after downstream's OnSubscribe has returned, and nothing is
// delivered before all of them are subscribed. Every source has a bounded
// lock-free ring of capacity P. One drain loop, run by whichever goroutine signals
// first (a source's OnNext, a Request), delivers while there are demand
// and queued items, so signals from sources on different goroutines are
// serialised and never re-entered (rule 3.3). The loop sweeps the rings
// round-robin, taking at most L items from one before it moves on, and
// starts each sweep after the last source that delivered: no source is
// starved, whatever the others do.
//
// How it ends: OnComplete after every source has completed and its items
// have been delivered; it needs no demand. A source's error cancels every
// other source at once and, by default, is delivered after the items
// already queued (as [PublishOn], Reactor's delayError); with
// [DelayError](false) it is delivered at once and the queued items are
// dropped. Items that arrive after that are dropped too. Cancel, or a
// Request(n <= 0) (which delivers an error that matches
// flow.ErrNonPositiveRequest), cancels every source and drops the queued
// items. Every dropped item is counted and passed to the [OnDrop] hook
// with its reason (flow.ReasonCancelled, or flow.ReasonOverflow for an
// item beyond demand). Errors from sources are passed on unchanged; the
// stage's own failures are wrapped with its name.
//
// Options: [Name], [Prefetch], [DelayError], [OnDrop]. The subscription
// is goroutine-safe. Cost: Subscribe allocates a ring of P items per
// source; nothing is allocated per item. Per item, the source's side
// writes and publishes the ring (one atomic store) and takes the
// drain-loop token only when the loop is idle; the drain side makes no
// atomic write per item. Four Range sources of 250 000 items into Drain
// cost about 20 ns per item on the 2-core reference machine, against
// about 89 ns for four goroutines sending into one channel buffered 256
// (medians of 5, go test -run '^$' -bench 'Merge' -count 5 ./operators/).
// A nil source panics.
//
// Monitoring: when downstream's context carries a monitor registry, each
// subscription registers as a "merge" stage (Buffered: the items in the
// rings) and the sources register under it.
func MergeWith[T any](srcs []flow.Publisher[T], opts ...Option) flow.Publisher[T] {
	for _, s := range srcs {
		mustSource("Merge", s)
	}
	c, name := newConfig("merge", opts)
	p := &mergePublisher[T]{
		srcs:       slices.Clone(srcs),
		name:       name,
		hook:       stage.DropHook[T](&c, name),
		prefetch:   defaultMergePrefetch,
		delayError: finDelayError(opts, true),
	}
	if c.Prefetch > 0 {
		p.prefetch = c.Prefetch
	}
	return p
}

type mergePublisher[T any] struct {
	srcs       []flow.Publisher[T]
	name       string
	hook       func(T, flow.DropReason)
	prefetch   int
	delayError bool
	dropped    [ring.NumReasons]atomic.Int64 // across subscriptions
}

func (p *mergePublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	if len(p.srcs) == 0 {
		flow.Complete(s)
		return
	}
	pf := int64(p.prefetch)
	x := newFanIn(s, p.name, p.hook, &p.dropped, p.delayError, false, int(pf-pf/4))
	x.probe, x.ctx = probe.Attach(s, "merge", p.name, probe.Operator)
	x.drops.SetProbe(x.probe)
	x.outerDone.Store(true)
	ins := make([]*finInner[T], len(p.srcs))
	for i := range ins {
		ins[i] = newFinInner(&x.finHub, pf, p.name, &x.drops)
	}
	if x.probe != nil {
		x.probe.SetLen(func() int { return queuedIn(ins) }) // rings: goroutine-safe Len
	}
	x.active = slices.Clone(ins)
	for _, in := range ins {
		in.lazy = true
	}
	x.finHub.recheck = func() bool { return rechecked(&x.finHub, ins) }
	s.OnSubscribe(x)
	// Every source is subscribed, and a synchronous one prefetched, before
	// the loop may deliver: the first sweep sees them all.
	for i, src := range p.srcs {
		if x.state.Load()&(finCancelled|finBad) != 0 {
			break // the first pass cancels every source
		}
		src.Subscribe(ins[i])
	}
	x.state.Or(finReady)
	x.signal()
}
