package operators

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
)

// defaultAging is the aging step of MergePriority.
const defaultAging = 100 * time.Millisecond

// PrioritySource is one input of [MergePriority]: a publisher and its
// priority. A higher Priority is served first; priorities may be
// negative.
type PrioritySource[T any] struct {
	Source   flow.Publisher[T]
	Priority int
}

// Aging sets the aging step d of [MergePriority]: an item that has waited
// k·d in its source's queue is served as if its source's priority were k
// higher, so that a low-priority source is delayed, never starved. The
// default is 100 ms. Other stages ignore it. d <= 0 panics.
func Aging(d time.Duration) Option {
	if d <= 0 {
		panic("sluice: Aging: d <= 0")
	}
	return agingOption(d)
}

type agingOption time.Duration

func (agingOption) apply(*stage.Config) {} // read by MergePriority

// MergePriority returns a publisher that subscribes to every source at
// once and emits their items as they arrive, serialised into one stream,
// choosing among the items waiting to be delivered by priority: the
// oldest waiting item of each source competes with its effective
// priority, Priority + ⌊waited / aging⌋ (see [Aging], default 100 ms), and
// the highest wins; ties go to the item that has waited longest. So
// while downstream is slower than the sources, a high-priority source is
// served first, and the oldest item of a lower one is served at the latest
// once it has waited (difference in priority + 1) × aging longer than the
// higher one's oldest item: a steady stream of fresh high-priority items
// delays a low-priority one by at most that much, it cannot starve it.
// The items of one source keep their order.
//
// Demand, buffering, termination: as [MergeWith]. Each source gets P
// items requested at subscription (the [Prefetch] option, default 256)
// and P − P/4 more each time that many of its items have been
// delivered; each has a bounded ring of P items. Completion comes after
// every source has completed and every item was delivered; a source's
// error cancels the others and is delivered after the queued items
// (unless [DelayError](false)); Cancel and Request(n <= 0) cancel every
// source and drop the queue, each dropped item counted and passed to the
// [OnDrop] hook.
//
// Time is read with time.Now: once per item when it arrives and once per
// delivery pass, so the stage is exact under testing/synctest.
//
// Options: [Name], [Prefetch], [Aging], [DelayError], [OnDrop]. The
// subscription is goroutine-safe. Cost: per item, a clock read on the
// source's side, and a scan of the sources on the drain side (O(number of
// sources)); nothing is allocated per item: about 60 ns per item for four
// Range sources on the 2-core reference machine (BenchmarkMergePriority),
// three times Merge. MergePriority panics if a
// source is nil; no source completes at once.
//
// Monitoring: when downstream's context carries a monitor registry, each
// subscription registers as a "mergePriority" stage (Buffered: the items
// in the rings, not the oldest item of each source held for the choice)
// and the sources register under it.
func MergePriority[T any](srcs []PrioritySource[T], opts ...Option) flow.Publisher[T] {
	for _, s := range srcs {
		mustSource("MergePriority", s.Source)
	}
	c, name := newConfig("mergePriority", opts)
	p := &prioPublisher[T]{
		srcs:       slices.Clone(srcs),
		name:       name,
		hook:       stage.DropHook[T](&c, name),
		prefetch:   defaultMergePrefetch,
		aging:      defaultAging,
		delayError: finDelayError(opts, true),
	}
	if c.Prefetch > 0 {
		p.prefetch = c.Prefetch
	}
	for _, o := range opts {
		if a, ok := o.(agingOption); ok {
			p.aging = time.Duration(a)
		}
	}
	return p
}

type prioPublisher[T any] struct {
	srcs       []PrioritySource[T]
	name       string
	hook       func(T, flow.DropReason)
	prefetch   int
	aging      time.Duration
	delayError bool
	dropped    [ring.NumReasons]atomic.Int64
}

func (p *prioPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	if len(p.srcs) == 0 {
		flow.Complete(s)
		return
	}
	x := &prioMerge[T]{down: s, name: p.name, aging: p.aging, delayError: p.delayError, base: time.Now()}
	x.drops.Init(p.hook, p.name, &p.dropped)
	x.probe, x.ctx = probe.Attach(s, "mergePriority", p.name, probe.Operator)
	x.drops.SetProbe(x.probe)
	x.finHub.pass = x.pass
	x.stopMask = finCancelled | finBad
	if !p.delayError {
		x.stopMask |= finFailed
	}
	ins := make([]*prioIn[T], len(p.srcs))
	for i, src := range p.srcs {
		ins[i] = &prioIn[T]{
			finInner: newFinInner[stamped[T]](&x.finHub, int64(p.prefetch), p.name, nil),
			x:        x,
			prio:     int64(src.Priority),
		}
	}
	x.live = slices.Clone(ins)
	inners := make([]*finInner[stamped[T]], len(ins))
	for i, in := range ins {
		inners[i] = in.finInner
		in.lazy = true
	}
	x.finHub.recheck = func() bool { return rechecked(&x.finHub, inners) }
	if x.probe != nil {
		// The rings only: the head item a source holds for pick (at most
		// one per source) is drain-owned and not counted.
		x.probe.SetLen(func() int { return queuedIn(inners) })
	}
	s.OnSubscribe(x)
	for i, src := range p.srcs { // all of them before the first pass, as in Merge
		if x.state.Load()&(finCancelled|finBad) != 0 {
			break
		}
		src.Source.Subscribe(ins[i])
	}
	x.state.Or(finReady)
	x.signal()
}

// stamped is an item and when it arrived, since prioMerge.base.
type stamped[T any] struct {
	v  T
	at time.Duration
}

type prioIn[T any] struct {
	*finInner[stamped[T]]
	x    *prioMerge[T]
	prio int64
	head stamped[T] // drain-owned: the oldest item, taken from q
	has  bool
}

func (in *prioIn[T]) OnNext(v T) {
	if !in.q.Offer(stamped[T]{v, time.Since(in.x.base)}, in.prefetch) {
		in.overflow()
		in.x.drops.Drop(v, flow.ReasonOverflow)
		return
	}
	if in.h.wip.Load() != 0 {
		return // lazy: see finInner.lazy
	}
	in.h.signal()
}

func (in *prioIn[T]) fill() bool {
	if !in.has {
		in.head, in.has = in.q.Poll()
	}
	return in.has
}

// prioMerge is one subscription of MergePriority.
type prioMerge[T any] struct {
	finHub
	name       string
	drops      ring.Drops[T]
	aging      time.Duration
	base       time.Time
	delayError bool
	stopMask   uint32

	// drain-owned
	down     flow.Subscriber[T]
	live     []*prioIn[T]
	retired  []*prioIn[T] // cancelled by a failure and removed: items in flight are dropped
	finished bool
	cut      bool
}

func (x *prioMerge[T]) pass() {
	st := x.state.Load()
	if st&finReady == 0 {
		return
	}
	if x.finished {
		x.dropQueued()
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
			for _, in := range x.live {
				in.cancel()
			}
		}
		x.dropQueuedOf(x.retired)
	}
	pr := x.probe
	r := x.demand.Load()
	var e int64
	now := time.Since(x.base)
	for e != r && x.state.Load()&x.stopMask == 0 {
		best := x.pick(now)
		if best == nil {
			break
		}
		v := best.head.v
		best.head, best.has = stamped[T]{}, false
		best.took()
		if pr != nil {
			pr.Next()
			x.down.OnNext(v)
			pr.Returned()
		} else {
			x.down.OnNext(v)
		}
		e++
	}
	for _, in := range x.live {
		in.q.Release()
	}
	if e != 0 {
		x.demand.Produced(e)
	}
	if x.state.Load()&x.stopMask != 0 {
		return // the next pass ends the stream
	}
	// forget the sources that are done and drained
	x.live = slices.DeleteFunc(x.live, func(in *prioIn[T]) bool {
		done := in.done.Load()
		if !(x.cut || done) || in.has || !in.q.Empty() {
			return false
		}
		if !done {
			x.retired = append(x.retired, in) // cancelled: an item may still arrive
		}
		return true
	})
	if len(x.live) == 0 {
		x.finish(x.settled(err), true)
	}
}

// pick returns the source whose oldest item wins, or nil if nothing is
// queued.
func (x *prioMerge[T]) pick(now time.Duration) *prioIn[T] {
	var best *prioIn[T]
	var bestEff int64
	for _, in := range x.live {
		if !in.fill() {
			continue
		}
		eff := in.prio + int64((now-in.head.at)/x.aging)
		if best == nil || eff > bestEff || (eff == bestEff && in.head.at < best.head.at) {
			best, bestEff = in, eff
		}
	}
	return best
}

func (x *prioMerge[T]) finish(err error, signal bool) {
	x.finished = true
	x.state.Or(finEnded)
	for _, in := range x.live {
		in.cancel()
	}
	d := x.down
	x.down = nil
	x.dropQueued()
	if signal {
		x.terminate(d, err)
	}
}

func (x *prioMerge[T]) dropQueued() {
	x.dropQueuedOf(x.retired)
	x.dropQueuedOf(x.live)
}

// dropQueuedOf drops the items held by ins, with flow.ReasonCancelled.
func (x *prioMerge[T]) dropQueuedOf(ins []*prioIn[T]) {
	for _, in := range ins {
		if in.has {
			x.drops.Drop(in.head.v, flow.ReasonCancelled)
			in.head, in.has = stamped[T]{}, false
		}
		for {
			s, ok := in.q.Poll()
			if !ok {
				break
			}
			x.drops.Drop(s.v, flow.ReasonCancelled)
		}
		in.q.Release()
	}
}
