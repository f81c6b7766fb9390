package operators

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
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
// most n inner publishers are live at once. Each inner publisher gets its
// own prefetch: P items at its subscription (the [Prefetch] option,
// default 32) and L = P − P/4 more each time L of its items have been
// delivered. A downstream Request(n) only allows n more deliveries.
//
// When it emits and what it buffers: f runs on src's goroutine, in
// OnNext, and the inner publisher is subscribed there. Every finInner
// publisher has a bounded ring of P items; one drain loop (see
// [MergeWith]) delivers from the rings round-robin, as items arrive. With
// [Ordered], it delivers the items of the inner publishers in the order
// of the items of src that made them (Reactor's concatMap with eager
// subscription): up to n inner publishers run at once, and those behind
// the first one fill their rings and wait; a slot is given back to src
// only when the first one is done and drained. Either way FlatMap holds at
// most n × P items.
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
// [OnDrop]. The subscription is goroutine-safe. Cost: when the drain loop
// is idle and nothing is queued ahead of it, an inner item is delivered
// at once by the goroutine that emits it; an inner's ring (P items) is
// allocated only when it first has to queue. Per item of src: f, one
// inner subscription and about 200 bytes; per inner item, as [MergeWith]
// or less. On the 2-core reference machine (BenchmarkFlatMap), inner
// Range sources of 100 items cost about 50 ns per item, and of one item
// about 430 ns per item (the allocations of a subscription dominate).
// FlatMap panics if src or f is nil.
//
// Monitoring: when downstream's context carries a monitor registry, each
// subscription registers as a "flatMap" stage, and src and every inner
// publisher register under it; Buffered is not reported.
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
	p.src.Subscribe(&flatOuter[T, R]{x: x, f: p.f, prefetch: pf, concurrency: int64(p.concurrency)})
}

// flatOuter is FlatMap's subscriber to src. Its signals are serial; it
// is the producer of x.newq.
type flatOuter[T, R any] struct {
	x           *fanIn[R]
	f           func(T) flow.Publisher[R]
	prefetch    int64
	concurrency int64
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
