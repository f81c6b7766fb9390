package operators

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
)

// defaultKeyedPrefetch is the queue size of a Partition output, a GroupBy
// group and the GroupBy inbox when no Prefetch option is given.
const defaultKeyedPrefetch = 256

// Partition splits src into n outputs: each item goes to output
// route(item), and only there. Outputs keep the order of src among their
// own items.
//
// Connection: each output accepts one subscriber per run. A run starts,
// and subscribes to src, when all n outputs have a subscriber: until then
// an item for an output nobody listens to would have nowhere to go, so
// nothing is requested. Each subscriber gets OnSubscribe at once and may
// request meanwhile. A second subscriber to the same output joins the next
// run, which starts its own subscription to src once its n outputs are
// subscribed. A run ends when src ends (every output gets its terminal
// signal, after its queued items), or when every output has cancelled
// (src is cancelled then), or, with [EagerCancel], when one output
// cancels.
//
// What it requests upstream: every output has a queue of P items (the
// Prefetch option, default 256). Upstream is requested only what fits in
// every [flow.Block] output's queue, whichever output the items are routed
// to: with O items requested and not yet received, and F the least free
// room among the live Block outputs, Partition requests F − O when that is
// at least 75 % of P (or when nothing is outstanding), at the start and
// each time an output drains or an item arrives. Downstream demand moves
// items out of queues; it is not forwarded. So a slow Block output — one
// whose subscriber requests nothing — backpressures the whole stage: the
// other outputs receive nothing more once its queue is full. To shed a
// slow output instead, give it another policy with [OutputOverflow]:
// [flow.DropNewest] and [flow.DropOldest] drop its excess (counted and
// passed to [OnDrop]), [flow.Fail] ends that output alone with
// [flow.ErrOverflow]; such outputs do not limit the request. When no
// output is Block, Partition requests flow.Unbounded once.
//
// When it emits: an item goes straight to its output's subscriber when
// that output has demand and nothing queued, on the goroutine that
// delivers the item from upstream; otherwise it is queued and delivered
// from the output's Request. Each output's signals are serial (rule 1.3);
// different outputs may be signalled concurrently.
//
// How it ends: upstream's OnComplete and OnError reach every live output,
// after that output's queued items. A route that panics or returns an
// index outside [0, n) ends every output with an error naming the stage
// (a *flow.PanicError for a panic), after the queued items; upstream is
// cancelled and the item is dropped with flow.ReasonError. Request(n <= 0)
// on an output ends that output with flow.NonPositiveRequestError; for
// the rest of the stage it counts as a cancel of that output. Cancelling
// one output drops its queued items with flow.ReasonCancelled. By
// default it does not stop the others: the items routed to it afterwards
// are dropped with flow.ReasonCancelled too, and upstream is cancelled
// only once every output has cancelled or ended. With [EagerCancel],
// while upstream is live, cancelling any output cancels upstream at once
// and completes every other output at once, without waiting for demand:
// the items queued for them, and those still arriving, are dropped with
// flow.ReasonCancelled.
//
// Every dropped item is counted and passed to the OnDrop hook, one call at
// a time per run. Options: [Name], [OnDrop], [Prefetch], [OutputOverflow],
// [EagerCancel].
// The returned publishers are goroutine-safe. Cost: per item, the route
// call, a few atomic operations and, when the output has no demand, a
// lock-free ring push and pop: about the cost of a Buffer under Block
// (see BenchmarkPartition). n <= 0 or a nil src or route panics.
func Partition[T any](src flow.Publisher[T], n int, route func(T) int, opts ...Option) []flow.Publisher[T] {
	if src == nil {
		panic("sluice: Partition: nil source")
	}
	if n <= 0 {
		panic("sluice: Partition: n <= 0")
	}
	mustFunc("Partition", route == nil)
	policies := partitionPolicies(n, opts)
	cfg, name := newConfig("partition", opts)
	p := &partition[T]{
		src:      src,
		route:    route,
		name:     name,
		hook:     stage.DropHook[T](&cfg, name),
		policies: policies,
		prefetch: defaultKeyedPrefetch,
		eager:    keyedConfig(opts).eagerCancel,
	}
	if cfg.Prefetch > 0 {
		p.prefetch = cfg.Prefetch
	}
	outs := make([]flow.Publisher[T], n)
	for i := range outs {
		outs[i] = &partitionOutput[T]{p: p, i: i}
	}
	return outs
}

type partition[T any] struct {
	src      flow.Publisher[T]
	route    func(T) int
	name     string
	hook     func(T, flow.DropReason)
	policies []flow.Overflow
	prefetch int
	eager    bool // EagerCancel
	stats    ring.Stats

	mu      sync.Mutex
	pending []*partitionRun[T] // runs waiting for subscribers, oldest first
}

// partitionOutput is output i of a Partition.
type partitionOutput[T any] struct {
	p *partition[T]
	i int
}

func (o *partitionOutput[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	p := o.p
	p.mu.Lock()
	var run *partitionRun[T]
	for _, r := range p.pending {
		if r.outs[o.i] == nil {
			run = r
			break
		}
	}
	if run == nil {
		run = newPartitionRun(p)
		p.pending = append(p.pending, run)
	}
	oname := fmt.Sprintf("%s[%d]", p.name, o.i)
	st, ctx := probe.Attach(s, "partition", oname, probe.Operator)
	if run.ctx == nil || (probe.FromContext(run.ctx) == nil && st != nil) {
		run.ctx = ctx // the run exposes the first monitored output's context upstream
	}
	var b *ring.Buffer[T]
	b = ring.NewBuffer(ring.Config[T]{
		Probe:      st,
		Capacity:   p.prefetch,
		Policy:     p.policies[o.i],
		Name:       oname,
		Hook:       run.hook,
		Stats:      &p.stats,
		LateReason: flow.ReasonCancelled,
		OnRoom:     func() { run.onRoom(b) },
	})
	run.outs[o.i] = b
	run.attached++
	start := run.attached == len(run.outs)
	if start {
		p.pending = deleteRun(p.pending, run)
	}
	p.mu.Unlock()
	if p.eager {
		b.Attach(&partitionWatch[T]{down: s, run: run, b: b})
	} else {
		b.Attach(s)
	}
	if start {
		p.src.Subscribe(run)
	}
}

// partitionWatch sits between an output's queue b and its subscriber
// under EagerCancel, to see the subscriber cancel.
type partitionWatch[T any] struct {
	down flow.Subscriber[T]
	run  *partitionRun[T]
	b    *ring.Buffer[T]
}

func (w *partitionWatch[T]) OnSubscribe(flow.Subscription) {
	w.down.OnSubscribe(&partitionWatchSub[T]{run: w.run, b: w.b})
}
func (w *partitionWatch[T]) OnNext(v T)        { w.down.OnNext(v) }
func (w *partitionWatch[T]) OnError(err error) { w.down.OnError(err); w.down = nil }
func (w *partitionWatch[T]) OnComplete()       { w.down.OnComplete(); w.down = nil }

// partitionWatchSub is the Subscription of an output under EagerCancel.
// A Cancel or a non-positive Request after the output has ended does
// nothing more than on any output (rules 3.6, 3.7).
type partitionWatchSub[T any] struct {
	run *partitionRun[T]
	b   *ring.Buffer[T]
}

func (s *partitionWatchSub[T]) Request(n int64) {
	live := n <= 0 && !s.b.Stopped()
	s.b.Request(n)
	if live {
		s.run.outputCancelled()
	}
}

func (s *partitionWatchSub[T]) Cancel() {
	live := !s.b.Stopped()
	s.b.Cancel()
	if live {
		s.run.outputCancelled()
	}
}

func deleteRun[T any](runs []*partitionRun[T], r *partitionRun[T]) []*partitionRun[T] {
	for i, x := range runs {
		if x == r {
			copy(runs[i:], runs[i+1:])
			runs[len(runs)-1] = nil
			return runs[:len(runs)-1]
		}
	}
	return runs
}

// partitionRun is one run of a Partition: one subscription to src, n
// output buffers. The upstream subscriber is the producer of every
// buffer; the run's request loop (signal) is the only caller of
// up.Request.
type partitionRun[T any] struct {
	ctx      context.Context // exposed upstream by Context; set under p.mu before the run starts
	p        *partition[T]
	outs     []*ring.Buffer[T] // set under p.mu until the run starts
	attached int               // under p.mu
	hook     func(T, flow.DropReason)
	drops    ring.Drops[T] // for the items that reach no output
	up       ring.Upstream

	// outstanding counts the items requested upstream and not yet
	// received. The request loop adds, OnNext subtracts.
	outstanding atomic.Int64
	wip         flow.WIP
	subscribed  atomic.Bool // upstream's OnSubscribe happened
	ended       atomic.Bool // upstream ended, failed or was cancelled: request nothing more
	cut         atomic.Bool // EagerCancel: an output cancelled
	cutDone     atomic.Bool // EagerCancel: cancelAll ran

	// request-loop-owned
	unbounded bool // flow.Unbounded was requested
	// producer-owned (OnNext, OnError, OnComplete)
	failed bool
}

func newPartitionRun[T any](p *partition[T]) *partitionRun[T] {
	r := &partitionRun[T]{
		p:    p,
		outs: make([]*ring.Buffer[T], len(p.policies)),
		hook: serialHook(p.hook),
	}
	r.drops.Init(r.hook, p.name, &p.stats.Dropped)
	return r
}

// serialHook wraps an OnDrop hook so that the queues of one run, each
// with its own drain loop, call it one at a time. nil stays nil.
func serialHook[T any](hook func(T, flow.DropReason)) func(T, flow.DropReason) {
	if hook == nil {
		return nil
	}
	var mu sync.Mutex
	return func(v T, r flow.DropReason) {
		mu.Lock()
		defer mu.Unlock()
		hook(v, r)
	}
}

// Context returns the context of the first monitored output (see package
// monitor), or of the first output.
func (r *partitionRun[T]) Context() context.Context { return r.ctx }

func (r *partitionRun[T]) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if !r.up.Set(s) {
		s.Cancel() // rule 2.5
		return
	}
	r.subscribed.Store(true)
	r.signal()
}

// OnNext routes v: the single place where Partition receives an item.
func (r *partitionRun[T]) OnNext(v T) {
	if r.failed {
		r.outs[0].Offer(v) // counted and dropped as late: every buffer is finished
		r.signalAll()
		return
	}
	i, err := r.callRoute(v)
	if err == nil && (i < 0 || i >= len(r.outs)) {
		err = fmt.Errorf("sluice: %s: route returned output %d, want 0 <= output < %d", r.p.name, i, len(r.outs))
	}
	if err != nil {
		r.fail(v, err)
		return
	}
	b := r.outs[i]
	if b.Emit(v) == ring.Full {
		// Only a Block output can be full, and only if upstream sent more
		// than was requested.
		b.Overflow(v, fmt.Errorf("%w: %s: upstream sent more than was requested", flow.ErrOverflow, r.p.name))
		b.Signal()
	}
	// After the item is counted in its queue (or delivered), so that the
	// request loop never sees room that is not there.
	if r.mayRequest(r.outstanding.Add(-1)) {
		r.signal()
	}
}

// mayRequest reports whether requestMore could request anything with out
// items outstanding: it requests F − out with F <= P, and only when that
// is at least limit or out is 0.
func (r *partitionRun[T]) mayRequest(out int64) bool {
	return out == 0 || int64(r.p.prefetch)-out >= r.limit()
}

// outputCancelled is called, under EagerCancel, when the subscriber of an
// output cancels or makes a non-positive request. It ends the run at
// once, on the goroutine that cancelled, rather than from the request
// loop: a synchronous upstream may be emitting from inside the loop's
// Request, and would go on until that Request returns. Before upstream
// has subscribed, OnSubscribe's request loop ends the run instead.
func (r *partitionRun[T]) outputCancelled() {
	r.cut.Store(true)
	if r.subscribed.Load() {
		r.cancelAll()
	}
}

// cancelAll ends the run for EagerCancel, once: upstream is cancelled and
// every output completes at once, its queued items dropped. It does
// nothing once upstream has ended.
func (r *partitionRun[T]) cancelAll() {
	if r.ended.Load() || !r.cutDone.CompareAndSwap(false, true) {
		return
	}
	r.ended.Store(true)
	r.up.Cancel()
	for _, b := range r.outs {
		b.CompleteNow()
	}
}

// onRoom is called by output b's drain loop after it delivered, and when
// it ends.
func (r *partitionRun[T]) onRoom(b *ring.Buffer[T]) {
	if b.Stopped() || r.mayRequest(r.outstanding.Load()) {
		r.signal()
	}
}

func (r *partitionRun[T]) callRoute(v T) (i int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %w", r.p.name, flow.NewPanicError(p))
		}
	}()
	return r.p.route(v), nil
}

// fail ends every output with err after its queued items, and cancels
// upstream. v is the item route failed on.
func (r *partitionRun[T]) fail(v T, err error) {
	r.failed = true
	r.ended.Store(true)
	r.up.Cancel()
	r.p.stats.Produced.Add(1)
	r.drops.Drop(v, flow.ReasonError)
	r.finish(err)
}

func (r *partitionRun[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	r.ended.Store(true)
	if !r.failed {
		r.failed = true
		r.finish(err)
	}
}

func (r *partitionRun[T]) OnComplete() {
	r.ended.Store(true)
	if !r.failed {
		r.failed = true
		r.finish(nil)
	}
}

func (r *partitionRun[T]) finish(err error) {
	for _, b := range r.outs {
		b.Finish(err)
	}
	r.signalAll()
}

func (r *partitionRun[T]) signalAll() {
	for _, b := range r.outs {
		b.Signal()
	}
}

// limit is the least request Partition makes while items are outstanding.
func (r *partitionRun[T]) limit() int64 {
	p := int64(r.p.prefetch)
	return p - p/4
}

// signal runs the request loop: the single place where Partition requests
// upstream. It is called when upstream subscribes, when an output drains
// or ends (OnRoom), and when an item arrives.
func (r *partitionRun[T]) signal() {
	if !r.wip.Enter() {
		return
	}
	for missed := int32(1); missed != 0; missed = r.wip.Leave(missed) {
		r.requestMore()
	}
}

func (r *partitionRun[T]) requestMore() {
	if !r.subscribed.Load() || r.ended.Load() {
		return
	}
	if r.cut.Load() {
		r.cancelAll() // an output cancelled before upstream subscribed
		return
	}
	// Read outstanding before the queue lengths: an item in transit is
	// then counted twice, never zero times.
	out := r.outstanding.Load()
	free := int64(r.p.prefetch)
	live, block := false, false
	for i, b := range r.outs {
		if b.Stopped() {
			continue
		}
		live = true
		if r.p.policies[i] != flow.Block {
			continue
		}
		block = true
		free = min(free, int64(r.p.prefetch-b.Len()))
	}
	if !live {
		// Every output cancelled or ended: nobody wants more.
		r.ended.Store(true)
		r.up.Cancel()
		return
	}
	if r.unbounded {
		return
	}
	if !block {
		r.unbounded = true
		r.outstanding.Store(flow.Unbounded / 2) // never reaches 0: no further signals matter
		r.up.Request(flow.Unbounded)
		return
	}
	if n := free - out; n > 0 && (n >= r.limit() || out == 0) {
		r.outstanding.Add(n)
		r.up.Request(n)
	}
}
