package operators

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
)

// Defaults of FlatMap.
const (
	defaultFlatMapConcurrency = 16
	defaultFlatMapPrefetch    = 32
)

// FlatMap returns a publisher that maps every item of src to an inner
// publisher with f, subscribes to up to n inner publishers at once, and
// emits their items, merged into one stream as [MergeWith] does.
//
// Demand: n is the [Concurrency] option (default 16). As soon as
// downstream's OnSubscribe has returned, FlatMap requests n items from
// src, whatever downstream asks for, and one more for each inner
// publisher that has completed and whose items have all been delivered
// (one request per drain pass, for all those the pass saw finish), so at
// most n inner publishers are live at once. Each subscribed inner
// publisher gets its own prefetch: P items at its subscription (the
// [Prefetch] option, default 32) and L = P − P/4 more each time L of its
// items have been delivered; an inner run inline (see below) is asked for
// nothing, and runs only when downstream's demand covers all its items. A
// downstream Request(n) only allows n more deliveries.
//
// When it emits and what it buffers: f runs on src's goroutine, in
// OnNext, and the inner publisher is subscribed there (or run inline, see
// below). Every subscribed inner publisher has a bounded ring of P items;
// one drain loop (see [MergeWith]) delivers from the rings round-robin,
// as items arrive. With [Ordered], it delivers the items of the inner
// publishers in the order of the items of src that made them (Reactor's
// concatMap with eager subscription): up to n inner publishers run at
// once, and those behind the first one fill their rings and wait; a slot
// is given back to src only when the first one is done and drained.
// Either way FlatMap holds at most n × P items.
//
// Inline inners: an inner publisher that is a synchronous loop of known
// bound (sources.Range, Slice and Just, and [Map], [MapErr], [Filter] and
// [Tap] over them; the bound is the source's length, for a Filter an
// upper bound) is not subscribed
// when that cannot be observed: the stage is not monitored, the drain
// loop is idle and the stream running, downstream's outstanding demand is
// at least the bound, and, with Ordered, no earlier inner publisher is
// live or queued. FlatMap then runs it in OnNext as a plain loop, holding
// the drain loop's token, and delivers each item at once (Reactor's
// tryScalarSource, widened to short inners). Nothing else changes: the
// same items with the same order guarantees, never more than downstream
// requested, the same errors (an error of the inner, or a panic in one of
// its functions as the *flow.PanicError wrapped with that stage's name,
// exactly what the subscribed inner sends), cancellation between two
// items, and src credited one item when the inner is done; only the
// inner's functions (a Map's f, a Tap's fn) run as its items are
// delivered, not ahead of demand as a subscribed inner's prefetch runs
// them. Otherwise the inner is subscribed with its prefetch, as above.
//
// How it ends: OnComplete once src and every inner publisher have
// completed and every item was delivered. An error from src or from an
// inner publisher, a panic in f (as a *flow.PanicError), or f returning a
// nil publisher, cancels src and every inner publisher and is delivered
// at once; the items still queued are dropped (Reactor's flatMap).
// With [DelayError](true) the queued items are delivered first. Cancel and
// Request(n <= 0) are as for [MergeWith]. Every dropped item is counted and
// passed to the [OnDrop] hook (of the output type R).
//
// Options: [Name], [Concurrency], [Prefetch], [Ordered], [DelayError],
// [OnDrop]. The subscription is goroutine-safe. Cost: per item of src, f
// and then either an inline run or a subscription. An inline run
// allocates nothing beyond what f allocates (a boxed Range is one small
// object; a Map over it allocates its per-item closure once per run),
// costs a few atomic operations per run and one OnNext per item. A
// subscribed inner costs about 200 bytes in a few objects; when the drain
// loop is idle and nothing is queued ahead of it, its items are delivered
// at once by the goroutine that emits them, and its ring (P items) is
// allocated only when it first has to queue; per inner item, as
// [MergeWith] or less. BenchmarkFlatMap/inner=1/subscribed measures the
// subscribed path for one-item inners (about 430 ns per item on the
// 2-core reference machine, the allocations of a subscription
// dominating) and inner=1 the inline path, which allocates only the
// boxed Range per item.
// FlatMap panics if src or f is nil.
//
// Monitoring: when downstream's context carries a monitor registry, each
// subscription registers as a "flatMap" stage, and src and every inner
// publisher register under it; Buffered is not reported. A monitored
// stage subscribes every inner publisher, never runs one inline, so that
// each inner registers and every stage's counts stay exact.
func FlatMap[T, R any](src flow.Publisher[T], f func(T) flow.Publisher[R], opts ...Option) flow.Publisher[R] {
	mustSource("FlatMap", src)
	mustFunc("FlatMap", f == nil)
	c, name := newConfig("flatMap", opts)
	p := &flatMapPublisher[T, R]{
		src:         src,
		f:           f,
		name:        name,
		hook:        stage.DropHook[R](&c, name),
		prefetch:    defaultFlatMapPrefetch,
		concurrency: defaultFlatMapConcurrency,
		ordered:     c.Ordered,
		delayError:  finDelayError(opts, false),
	}
	if c.Prefetch > 0 {
		p.prefetch = c.Prefetch
	}
	if c.Concurrency > 0 {
		p.concurrency = c.Concurrency
	}
	return p
}

type flatMapPublisher[T, R any] struct {
	src         flow.Publisher[T]
	f           func(T) flow.Publisher[R]
	name        string
	hook        func(R, flow.DropReason)
	prefetch    int
	concurrency int
	ordered     bool
	delayError  bool
	dropped     [ring.NumReasons]atomic.Int64
}

func (p *flatMapPublisher[T, R]) Subscribe(s flow.Subscriber[R]) {
	flow.RequireSubscriber(s)
	pf := int64(p.prefetch)
	x := newFanIn(s, p.name, p.hook, &p.dropped, p.delayError, p.ordered, int(pf-pf/4))
	// No SetLen: the live inners are drain-owned, so there is no cheap
	// goroutine-safe count of what is queued.
	x.probe, x.ctx = probe.Attach(s, "flatMap", p.name, probe.Operator)
	x.drops.SetProbe(x.probe)
	x.outer = &finLink{}
	x.newq = ring.NewSPSC[*finInner[R]](p.concurrency)
	o := &flatOuter[T, R]{x: x, f: p.f, prefetch: pf, concurrency: int64(p.concurrency)}
	if x.probe == nil {
		// Unmonitored: inner loops may run inline (see inline). A
		// monitored stage subscribes every inner publisher, so that each
		// registers and the counts stay exact.
		o.run = fuse.NewRun(nil, &x.halt) // no context: the layers attach nothing
		o.yield = func(v R) bool { return o.deliver(v) }
	}
	p.src.Subscribe(o)
}

// flatOuter is FlatMap's subscriber to src. Its signals are serial; it
// is the producer of x.newq.
//
// What FlatMap requests upstream, which the inline path must not change:
// src is asked for concurrency items once downstream's OnSubscribe has
// returned, then, in each drain pass, for one more per inner publisher
// that the pass saw finish and drained (x.outerCredit); nothing else is
// ever requested from src. A subscribed inner is asked for prefetch items
// at its subscription and limit more each time limit of them have been
// delivered (finInner.took). An inner run inline (see inline) is not
// subscribed, so it is asked nothing: it is a fuse.Loop, cold and without
// side effects of its own, run only when downstream's outstanding demand
// covers its bound, and it finishes within the call, which credits src
// with one item exactly as a subscribed inner that completed does.
type flatOuter[T, R any] struct {
	x           *fanIn[R]
	f           func(T) flow.Publisher[R]
	prefetch    int64
	concurrency int64

	// The inline path; run is nil when the stage is monitored. They are
	// used only in OnNext, so serially.
	run     *fuse.Run    // reused by every inline run (fuse.Run.Reset)
	yield   func(R) bool // deliver, as the run's sink layer
	sent    int64        // items the run in progress has delivered
	inYield bool         // the run is in deliver: a panic there is not a layer's
}

// Context returns the context of the stage's downstream, naming the
// stage, so that src registers under it with the monitor.
func (o *flatOuter[T, R]) Context() context.Context { return o.x.ctx }

func (o *flatOuter[T, R]) OnSubscribe(s flow.Subscription) {
	x := o.x
	if !x.outer.set(s) {
		return
	}
	x.down.OnSubscribe(x) // the loop does not touch down before ready
	x.state.Or(finReady)
	x.outer.request(o.concurrency)
	x.signal()
}

var errFinNilInner = errors.New("f returned a nil Publisher")

func (o *flatOuter[T, R]) OnNext(v T) {
	x := o.x
	if x.state.Load()&^finReady != 0 || x.outer.cancelled.Load() {
		return // ending: the item is not mapped
	}
	pub, err := o.call(v)
	if err == nil && pub == nil {
		err = errFinNilInner
	}
	if err != nil {
		x.outer.cancel()
		x.fail(fmt.Errorf("%s: %w", x.name, err))
		return
	}
	if o.run != nil {
		if l, ok := pub.(fuse.Loop[R]); ok {
			if n, ok := fuse.BoundOf(l); ok && o.inline(l, n) {
				return
			}
		}
	}
	in := newLazyInner(&x.finHub, o.prefetch, x.name, &x.drops)
	in.fx = x
	if !x.newq.Offer(in) {
		x.outer.cancel()
		x.fail(fmt.Errorf("%s: %w: the source emitted more than requested", x.name, flow.ErrOverflow))
		return
	}
	x.signal() // the loop takes in before any of its items can arrive
	pub.Subscribe(in)
}

// inline is FlatMap's scalar fast path (Reactor's tryScalarSource,
// widened to short synchronous inners): it runs l, an inner publisher
// that yields at most bound items, as a plain loop on this goroutine,
// delivering each item downstream at once, instead of subscribing to it.
// It reports false, having delivered nothing and run nothing of l, when
// it cannot; the caller then subscribes to l as usual.
//
// It runs only when that is unobservable apart from speed. It needs the
// drain-loop token, as tryEmit does, so delivery stays serial and the
// hub's wip protocol is kept: a Request or Cancel from downstream (even
// from inside its OnNext) only records its signal, and the drain after
// the run acts on it. With the token held it needs the stream running
// (no cancel, failure or end), downstream's outstanding demand at least
// bound, so that it never delivers more than was requested (demand only
// grows while the token is held), and, with Ordered, no earlier inner
// still live or queued, so that outer order is kept. Without Ordered the
// run may overtake items queued by other inners, an interleaving the
// subscribed path allows too.
//
// The run ends as the subscribed inner would: its error (a MapErr error,
// wrapped with that stage's name) fails the stream as the inner's
// OnError does, and a panic in a fused layer becomes the
// *flow.PanicError wrapped with the panicking stage's name
// (fuse.Run.Attribute), the error that stage's subscriber sends. A
// cancel, Request(n <= 0) or failure during the run stops it before the
// next item (the fused layers see x.halt): the subscribed path cancels
// the inner then. Either way the inner is done, and the outer is
// credited one item, as when a subscribed inner finishes.
func (o *flatOuter[T, R]) inline(l fuse.Loop[R], bound int64) bool {
	x := o.x
	if x.demand.Load() < bound || x.wip.Load() != 0 || !x.wip.CompareAndSwap(0, 1) {
		return false
	}
	x.takeNew()
	if x.state.Load() != finReady || x.cut || x.finished || x.demand.Load() < bound ||
		(x.ordered && len(x.active) != 0) {
		x.pass()
		x.drain(1)
		return false
	}
	if err := o.runLoop(l); err != nil {
		x.setErr(err)
	}
	x.outerCredit++
	x.pass()
	x.drain(1)
	return true
}

// runLoop runs l with deliver as its sink and returns the error it ended
// with. It recovers a panic of a fused layer, as a sink's fused run does
// (sinks.runFused); a panic in downstream's OnNext (rule 2.13) is raised
// again, as it propagates from a subscribed inner.
func (o *flatOuter[T, R]) runLoop(l fuse.Loop[R]) (err error) {
	run := o.run
	run.Reset()
	o.sent = 0
	defer func() {
		v := recover()
		o.x.demand.Produced(o.sent)
		if v != nil {
			if o.inYield {
				o.inYield = false
				panic(v)
			}
			err = run.Attribute(v) // the stack still holds the panic's frames
		}
	}()
	return l.FusedLoop(run, fuse.Layer(run, "", o.yield))
}

// deliver is the sink of an inline run: it delivers v downstream, and
// tells the run to stop once the stream is no longer running. An item
// that meets a stream already stopping is dropped, as the subscribed path
// drops it from the inner's ring.
func (o *flatOuter[T, R]) deliver(v R) bool {
	x := o.x
	o.inYield = true
	if x.state.Load()&x.stopMask != 0 {
		x.drops.Drop(v, flow.ReasonCancelled)
		o.inYield = false
		return false
	}
	x.down.OnNext(v)
	o.sent++
	o.inYield = false
	return x.state.Load() == finReady
}

// call runs f under a deferred recover.
func (o *flatOuter[T, R]) call(v T) (pub flow.Publisher[R], err error) {
	defer func() {
		if r := recover(); r != nil {
			err = flow.NewPanicError(r)
		}
	}()
	return o.f(v), nil
}

func (o *flatOuter[T, R]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	o.x.setErr(err) // before outerDone: see setErr
	o.x.outerDone.Store(true)
	o.x.signal()
}

func (o *flatOuter[T, R]) OnComplete() {
	o.x.outerDone.Store(true)
	o.x.signal()
}
