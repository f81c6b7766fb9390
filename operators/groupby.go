package operators

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
)

// GroupBy splits src into groups by key: the first item with a new key
// opens a [Group], which is emitted downstream and then receives, in
// order, every item with that key while it is open. At most maxGroups
// groups are open at once.
//
// Groups: a Group is a flow.Publisher of its items for one subscriber;
// subscribing a second time gets OnError. Items that arrive before the
// group is subscribed wait in its queue. A group is open from its first
// item until it ends: when src ends (every open group gets src's terminal
// signal after its queued items), when its subscriber cancels it (or
// requests n <= 0), or when its queue overflows under
// GroupOverflow(flow.Fail). A group that ended frees its slot; a later
// item with the same key opens a new group.
//
// What it requests upstream: GroupBy keeps at most P items (the Prefetch
// option, default 256) requested from src and not yet routed to a group:
// P at subscription, before any demand, then 75 % of P each time as many
// have been routed. Downstream demand (n groups on the outer
// subscription, n items on a group) only moves items out of queues: it is
// not forwarded, so what is requested upstream never depends on n, only
// on how fast items are routed. An item that would open a group while
// maxGroups are open waits at the head of the routing queue, and the
// items behind it wait too (head-of-line blocking). Each group has a
// queue of P items, with the policy set by [GroupOverflow]:
//
//   - [flow.Block] (the default): an item whose group's queue is full
//     waits at the head of the routing queue too, until its group's
//     subscriber makes room; as nothing is routed meanwhile, nothing more
//     is requested upstream. A group whose subscriber requests nothing
//     thus holds back every group once P of its items are queued.
//   - [flow.DropNewest], [flow.DropOldest]: routing never waits for a
//     group. When a group's queue is full, the arriving item
//     (flow.ReasonNewest), or that group's oldest queued item
//     (flow.ReasonOldest), is dropped, counted and passed to OnDrop; the
//     other groups and upstream keep flowing: GroupBy goes on requesting
//     P, then 75 % of P, as it routes, whatever any group's demand.
//   - [flow.Fail]: as the drop policies until a group's queue overflows.
//     Then that group alone ends: the item is dropped with
//     flow.ReasonOverflow, and the group's subscriber receives its queued
//     items and then an error that matches [flow.ErrOverflow], as a
//     Partition output with this policy does. The outer subscriber,
//     the other groups and upstream go on. Until the failed group has
//     delivered its error, later items with its key are dropped with
//     flow.ReasonCancelled; then its slot is freed, as a cancelled
//     group's, and a later item with its key opens a new group.
//
// At the bound: by default, an item with a new key while maxGroups groups
// are open waits until a group is cancelled, with upstream backpressured
// meanwhile. With [FailAtMaxGroups] it ends the stream instead: the item
// is dropped with flow.ReasonOverflow, upstream is cancelled, and the
// outer subscriber and every open group get an error that matches
// [ErrTooManyGroups], after their queued items.
//
// Known stall: under Block, a group nobody consumes (never subscribed, or
// not requesting) stops the whole GroupBy once its queue is full, and so
// does reaching maxGroups while the open groups wait for items instead of
// being cancelled — groups complete only when src completes. The stream
// is then live, items are ready, and nobody has demand for them: exactly
// what a stall detector reports. Subscribe to every group and request
// from it, cancel groups you are done with (Take, TakeWhile), give the
// groups another policy with GroupOverflow to shed a slow group's excess
// (or end that group) instead of waiting for it, or use FailAtMaxGroups
// to get an error instead of a wait at the bound.
//
// How it ends: src's OnComplete reaches every open group and then the
// outer subscriber, after their queued items. src's OnError reaches the
// outer subscriber and every open group, after their queued items; items
// that were waiting to be routed are dropped with flow.ReasonCancelled.
// A key function that panics ends everything the same way with a
// *flow.PanicError wrapped with the stage name, upstream cancelled, the
// item dropped with flow.ReasonError. Cancelling the outer subscription
// does not end the groups already emitted: they go on receiving their
// items; groups not yet emitted are cancelled, items with new keys are
// dropped with flow.ReasonCancelled, and src is cancelled once every
// group is done too.
//
// Routing and group delivery run in one serial loop, on the goroutine
// that delivers from upstream or that requested; a group's subscriber is
// signalled serially but may share that goroutine with other groups.
// Every dropped item is counted and passed to the OnDrop hook, one call at
// a time per subscription. Options: [Name], [OnDrop], [Prefetch],
// [FailAtMaxGroups], [GroupOverflow]. Cost: per item, the key function, a
// map lookup and a lock-free ring hop, about 1.5× a Buffer under Block
// (see BenchmarkGroupBy), the same under every policy; per group, a queue
// of P items. maxGroups <= 0 or a nil src or key panics.
func GroupBy[T any, K comparable](src flow.Publisher[T], key func(T) K, maxGroups int, opts ...Option) flow.Publisher[*Group[K, T]] {
	if src == nil {
		panic("sluice: GroupBy: nil source")
	}
	mustFunc("GroupBy", key == nil)
	if maxGroups <= 0 {
		panic("sluice: GroupBy: maxGroups <= 0")
	}
	cfg, name := newConfig("groupBy", opts)
	prefetch := int64(defaultKeyedPrefetch)
	if cfg.Prefetch > 0 {
		prefetch = int64(cfg.Prefetch)
	}
	keyed := keyedConfig(opts)
	return &groupBy[T, K]{
		src:       src,
		key:       key,
		maxGroups: maxGroups,
		failAtMax: keyed.failAtMax,
		policy:    keyed.groupOverflow,
		name:      name,
		hook:      stage.DropHook[T](&cfg, name),
		prefetch:  prefetch,
		limit:     prefetch - prefetch/4,
	}
}

type groupBy[T any, K comparable] struct {
	src             flow.Publisher[T]
	key             func(T) K
	maxGroups       int
	failAtMax       bool
	policy          flow.Overflow // of every group's queue
	name            string
	hook            func(T, flow.DropReason)
	prefetch, limit int64
	stats           ring.Stats // items, over every subscription and group
	groupStats      ring.Stats // groups, in the outer queue
}

func (p *groupBy[T, K]) Subscribe(s flow.Subscriber[*Group[K, T]]) {
	flow.RequireSubscriber(s)
	r := &groupByRun[T, K]{
		p:      p,
		inbox:  ring.New[T](int(p.prefetch)),
		groups: make(map[K]*Group[K, T]),
		hook:   serialHook(p.hook),
	}
	r.drops.Init(r.hook, p.name, &p.stats.Dropped)
	r.probe, r.ctx = probe.Attach(s, "groupBy", p.name, probe.Operator)
	r.drops.SetProbe(r.probe)
	r.outer = ring.NewBuffer(ring.Config[*Group[K, T]]{
		Probe:      r.probe,
		Capacity:   p.maxGroups,
		Policy:     flow.Block,
		Name:       p.name,
		Stats:      &p.groupStats,
		LateReason: flow.ReasonCancelled,
		OnRoom: func() {
			if r.outer.Stopped() {
				r.signal()
			}
		},
	})
	r.down = &groupByOuter[T, K]{down: s}
	p.src.Subscribe(r)
}

// Group is one group of a [GroupBy]: the items with one key, as a
// flow.Publisher for one subscriber. Its Subscription is goroutine-safe.
type Group[K comparable, T any] struct {
	key  K
	buf  *ring.Buffer[T]
	name string // the stage's

	// State for monitoring (stall detection): the group's queue length,
	// its buffered count, is buf.Len(); requested is the total demand its
	// subscriber signalled, saturating at flow.Unbounded; delivered and
	// dropped items are counted in the stage's stats.
	requested atomic.Int64

	subscribed atomic.Bool // a subscriber (or the discard on outer cancel) was attached
	emitted    atomic.Bool // passed to the outer subscriber's OnNext
	reaped     bool        // loop-owned: its slot was freed
}

// Key returns the key shared by the group's items.
func (g *Group[K, T]) Key() K { return g.key }

// Subscribe attaches s to the group's queue: s gets OnSubscribe at once,
// then the group's items as it requests them. A group has one subscriber:
// a second Subscribe gets OnSubscribe and then OnError. Subscribe(nil)
// panics.
func (g *Group[K, T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	if !g.subscribed.CompareAndSwap(false, true) {
		flow.Reject(s, fmt.Errorf("sluice: %s: group %v already has a subscriber, or was discarded", g.name, g.key))
		return
	}
	g.buf.Attach(&groupSubscriber[K, T]{g: g, down: s})
}

// groupSubscriber sits between a group's queue and its subscriber, to
// count the demand the subscriber signals.
type groupSubscriber[K comparable, T any] struct {
	g    *Group[K, T]
	down flow.Subscriber[T]
}

func (s *groupSubscriber[K, T]) OnSubscribe(sub flow.Subscription) {
	s.down.OnSubscribe(&groupSubscription[K, T]{g: s.g})
}
func (s *groupSubscriber[K, T]) OnNext(v T)        { s.down.OnNext(v) }
func (s *groupSubscriber[K, T]) OnError(err error) { s.down.OnError(err); s.down = nil }
func (s *groupSubscriber[K, T]) OnComplete()       { s.down.OnComplete(); s.down = nil }

type groupSubscription[K comparable, T any] struct{ g *Group[K, T] }

func (s *groupSubscription[K, T]) Request(n int64) {
	if n > 0 {
		for {
			cur := s.g.requested.Load()
			if s.g.requested.CompareAndSwap(cur, flow.AddCap(cur, n)) {
				break
			}
		}
	}
	s.g.buf.Request(n)
}

func (s *groupSubscription[K, T]) Cancel() { s.g.buf.Cancel() }

// groupDiscard is attached to the groups that were never emitted when the
// outer subscriber cancels: it cancels at once, which drops their items
// with flow.ReasonCancelled.
type groupDiscard[T any] struct{}

func (groupDiscard[T]) OnSubscribe(s flow.Subscription) { s.Cancel() }
func (groupDiscard[T]) OnNext(T)                        {}
func (groupDiscard[T]) OnError(error)                   {}
func (groupDiscard[T]) OnComplete()                     {}

// groupByOuter marks each group as emitted on its way to the outer
// subscriber.
type groupByOuter[T any, K comparable] struct {
	down flow.Subscriber[*Group[K, T]]
}

func (o *groupByOuter[T, K]) OnSubscribe(s flow.Subscription) { o.down.OnSubscribe(s) }
func (o *groupByOuter[T, K]) OnNext(g *Group[K, T]) {
	g.emitted.Store(true)
	o.down.OnNext(g)
}
func (o *groupByOuter[T, K]) OnError(err error) { o.down.OnError(err); o.down = nil }
func (o *groupByOuter[T, K]) OnComplete()       { o.down.OnComplete(); o.down = nil }

// groupByRun is one subscription of a GroupBy. Upstream's OnNext pushes
// into the inbox; one serial loop (signal) routes the inbox to the
// groups, opens and reaps groups, requests upstream and ends the run.
type groupByRun[T any, K comparable] struct {
	probe *probe.Stage    // the outer stage's counters (in groups), nil when not monitored
	ctx   context.Context // exposed upstream by Context
	p     *groupBy[T, K]
	up    ring.Upstream
	outer *ring.Buffer[*Group[K, T]]
	down  flow.Subscriber[*Group[K, T]] // until OnSubscribe
	inbox *ring.Ring[T]
	hook  func(T, flow.DropReason)
	drops ring.Drops[T]

	// outstanding counts the items requested upstream and not yet routed
	// (in flight, in the inbox or waiting at its head).
	outstanding atomic.Int64
	wip         flow.WIP
	subscribed  atomic.Bool
	upDone      atomic.Bool // upstream ended; upErr is set
	upErr       error
	closed      atomic.Bool // the run is over: drop what arrives
	groupsDied  atomic.Bool // some group ended since the loop last looked
	blocked     atomic.Bool // the head item waits for room in its group's queue

	// loop-owned
	groups       map[K]*Group[K, T]
	open         int  // groups open: len(groups), not yet reaped
	head         T    // an item that could not be routed yet
	hasHead      bool // head is set
	outerStopped bool
	finished     bool
}

// Context returns the downstream's context, naming this stage (see
// package monitor).
func (r *groupByRun[T, K]) Context() context.Context { return r.ctx }

func (r *groupByRun[T, K]) groupEnded() {
	r.groupsDied.Store(true)
	r.signal()
}

func (r *groupByRun[T, K]) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if !r.up.Set(s) {
		s.Cancel() // rule 2.5
		return
	}
	d := r.down
	r.down = nil
	r.outer.Attach(d)
	r.subscribed.Store(true)
	r.signal()
}

// OnNext is the single place where GroupBy receives an item.
func (r *groupByRun[T, K]) OnNext(v T) {
	if r.closed.Load() {
		r.dropItem(v, flow.ReasonCancelled)
		return
	}
	if !r.inbox.Push(v) {
		r.dropItem(v, flow.ReasonOverflow)
		r.upErr = fmt.Errorf("%w: %s: upstream sent more than was requested", flow.ErrOverflow, r.p.name)
		r.up.Cancel()
		r.upDone.Store(true)
	}
	r.signal()
}

func (r *groupByRun[T, K]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	if r.upDone.Load() {
		return
	}
	r.upErr = err
	r.upDone.Store(true)
	r.signal()
}

func (r *groupByRun[T, K]) OnComplete() {
	r.upDone.Store(true)
	r.signal()
}

func (r *groupByRun[T, K]) signal() {
	if !r.wip.Enter() {
		return
	}
	for missed := int32(1); missed != 0; missed = r.wip.Leave(missed) {
		if r.subscribed.Load() {
			r.loop()
		}
	}
}

func (r *groupByRun[T, K]) loop() {
	if !r.outerStopped && r.outer.Stopped() {
		// The outer subscriber cancelled, or received its terminal signal
		// (then every group was emitted): the groups it will never see are
		// discarded, dropping their items.
		r.outerStopped = true
		for _, g := range r.groups {
			if !g.emitted.Load() && g.subscribed.CompareAndSwap(false, true) {
				g.buf.Attach(groupDiscard[T]{})
			}
		}
	}
	if r.finished {
		if r.outerStopped {
			r.groups = nil // nothing more to discard
		}
		r.dropInbox()
		return
	}
	if r.groupsDied.Swap(false) {
		for k, g := range r.groups {
			if g.buf.Stopped() {
				r.reap(k, g)
			}
		}
	}
	if err := r.drops.Err(); err != nil {
		// The OnDrop hook panicked.
		r.up.Cancel()
		r.end(err)
		return
	}
	if r.route() {
		return // failed
	}
	done := r.upDone.Load()
	switch {
	case done && r.upErr != nil:
		r.end(r.upErr)
	case done && !r.hasHead && r.inbox.Empty():
		r.end(nil)
	case r.outerStopped && r.open == 0:
		// Nobody is left to receive anything.
		r.up.Cancel()
		r.closed.Store(true)
		r.finished = true
		r.outer.Finish(nil)
		r.outer.Signal()
		r.dropInbox()
	case !done:
		r.requestMore()
	}
}

// requestMore is the single place where GroupBy requests upstream.
func (r *groupByRun[T, K]) requestMore() {
	out := r.outstanding.Load()
	if n := r.p.prefetch - out; n > 0 && (n >= r.p.limit || out == 0) {
		r.outstanding.Add(n)
		r.up.Request(n)
	}
}

// route moves items from the inbox to their groups until one does not
// fit. It reports whether the run failed.
func (r *groupByRun[T, K]) route() (failed bool) {
	for {
		if !r.hasHead {
			v, ok := r.inbox.Pop()
			if !ok {
				return false
			}
			r.head, r.hasHead = v, true
		}
		k, err := r.callKey(r.head)
		if err != nil {
			r.failWith(flow.ReasonError, err)
			return true
		}
		g := r.groups[k]
		if g != nil && g.buf.Stopped() {
			r.reap(k, g)
			g = nil
		}
		if g == nil {
			if r.outerStopped {
				r.dropItem(r.takeHead(), flow.ReasonCancelled)
				continue
			}
			if r.open == r.p.maxGroups {
				if !r.p.failAtMax {
					return false // wait for a group to be cancelled
				}
				r.failWith(flow.ReasonOverflow, fmt.Errorf("%w: %s: key %v would open group %d of at most %d",
					ErrTooManyGroups, r.p.name, k, r.open+1, r.p.maxGroups))
				return true
			}
			g = r.openGroup(k)
			g.buf.Offer(r.takeHead()) // the queue is empty: accepted
			r.outer.Offer(g)          // at most maxGroups are open: accepted
			r.outer.Signal()
			continue
		}
		if g.buf.Emit(r.head) == ring.Full {
			// Only under Block. Wait for the group to drain: tell its
			// OnRoom, then look again, in case it drained before it could
			// see the flag.
			r.blocked.Store(true)
			if g.buf.Emit(r.head) == ring.Full {
				return false
			}
		}
		r.blocked.Store(false)
		// Accepted (maybe delivered), or Dropped or Closed: counted as
		// dropped by the queue, under its policy or as late.
		r.takeHead()
	}
}

func (r *groupByRun[T, K]) takeHead() T {
	v := r.head
	var zero T
	r.head, r.hasHead = zero, false
	r.outstanding.Add(-1)
	return v
}

func (r *groupByRun[T, K]) callKey(v T) (k K, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %w", r.p.name, flow.NewPanicError(p))
		}
	}()
	return r.p.key(v), nil
}

func (r *groupByRun[T, K]) openGroup(k K) *Group[K, T] {
	g := &Group[K, T]{key: k, name: r.p.name}
	// Each group is a stage of its own for the monitor, registered when
	// it opens, under the GroupBy: a group nobody requests from is
	// reported by the stall detector.
	gname := fmt.Sprintf("%s[%v]", r.p.name, k)
	g.buf = ring.NewBuffer(ring.Config[T]{
		Probe:      probe.Child(r.ctx, r.probe, "group", gname),
		Capacity:   int(r.p.prefetch),
		Policy:     r.p.policy,
		Name:       gname,
		Hook:       r.hook,
		Stats:      &r.p.stats,
		LateReason: flow.ReasonCancelled,
		OnRoom: func() {
			if g.buf.Stopped() {
				r.groupEnded()
			} else if r.blocked.Load() {
				r.signal()
			}
		},
	})
	r.groups[k] = g
	r.open++
	return g
}

func (r *groupByRun[T, K]) reap(k K, g *Group[K, T]) {
	if g.reaped {
		return
	}
	g.reaped = true
	delete(r.groups, k)
	r.open--
}

// failWith ends the run with err: the head item is dropped for reason,
// the rest of the inbox with ReasonCancelled, upstream is cancelled, and
// every open group and the outer subscriber get err after their queues.
func (r *groupByRun[T, K]) failWith(reason flow.DropReason, err error) {
	r.up.Cancel()
	r.dropItem(r.takeHead(), reason)
	r.end(err)
}

// end finishes every open group and the outer queue with err (nil for
// completion) and drops what is left to route.
func (r *groupByRun[T, K]) end(err error) {
	r.closed.Store(true)
	r.finished = true
	if r.hasHead {
		r.dropItem(r.takeHead(), flow.ReasonCancelled)
	}
	r.dropInbox()
	for _, g := range r.groups {
		g.buf.Finish(err)
		g.buf.Signal()
	}
	r.outer.Finish(err)
	r.outer.Signal()
}

// dropItem drops an item that reached no group: the single place where
// the run itself drops.
func (r *groupByRun[T, K]) dropItem(v T, reason flow.DropReason) {
	r.p.stats.Produced.Add(1)
	r.drops.Drop(v, reason)
}

func (r *groupByRun[T, K]) dropInbox() {
	for {
		v, ok := r.inbox.Pop()
		if !ok {
			return
		}
		r.outstanding.Add(-1)
		r.dropItem(v, flow.ReasonCancelled)
	}
}
