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

// This file holds ParallelMap and the engine it shares with MapAsync
// (mapasync.go): a fixed set of worker goroutines owned by one
// subscription, fed from a bounded input queue, whose results are
// delivered downstream by one serial drain loop.
//
// Per subscription there are three kinds of goroutines:
//
//   - the producer: whoever calls OnNext/OnComplete/OnError (upstream);
//     it appends to the input queue under mu and wakes a parked worker,
//     only if one is parked;
//   - the workers: each takes a batch of items under mu, calls the user
//     function on them without any lock, appends the batch of results to
//     pend under outMu (one lock per batch) and signals the drain loop;
//   - the drain loop, serialised by a flow.WIP: it runs on whichever
//     goroutine signalled work (a worker, downstream's Request, upstream's
//     terminal signal, Cancel). It swaps pend for an empty slice (one lock
//     per swap, not per item), delivers within downstream demand, makes
//     every upstream Request, and sends the terminal signal. It never
//     blocks: with no demand it returns and the results wait in pend.
//
// Nothing is ever full: at most window items are requested upstream and
// not yet delivered, and every queue has room for window items, so a
// worker never parks on output and the drain never waits for a worker.

// pmTakeCPU is the most items a ParallelMap worker takes from the input
// queue at once (MapAsync workers take one: their calls wait on I/O).
const pmTakeCPU = 16

// ParallelMap returns a publisher that emits f(item) for every item of
// src, calling f on workers goroutines at once: for CPU-bound f.
//
// Goroutines: each subscription starts its own workers goroutines when
// upstream's OnSubscribe arrives, and every one of them ends once the
// stream is over (complete, error or cancel): no goroutine outlives the
// subscription, and none is started per item. f is called concurrently
// from the workers, so it must be goroutine-safe; it is never called
// after the terminal signal.
//
// Order: with [Ordered], items are emitted in the order of src, early
// results waiting in a reorder buffer; otherwise results are emitted in
// the order they complete, as demand allows (a worker hands back the up
// to 16 items it took together), so the order may differ from src's.
//
// Demand: ParallelMap prefetches, whatever downstream asks. With P the
// [Prefetch] option (default 256) and W = workers, it requests P + W
// items upstream once downstream's OnSubscribe has returned, then
// L = P − P/4 (at least 1) each time L more items have been delivered
// downstream (Reactor's 75 % rule). A downstream Request(n) only allows n
// more deliveries of ready results. So at every moment at most P + W
// items are in flight (requested upstream and not yet delivered or
// dropped), and after the first request never fewer than W + P/4 are
// requested and not yet delivered, so every worker can be kept busy;
// the input queue, the result queue and the
// reorder buffer each hold at most P + W items. Every upstream Request is
// made from the drain loop, so serially. Upstream emitting more than it
// was asked for ends the stream with an error that matches
// flow.ErrOverflow.
//
// Emission: results are delivered by one serial drain loop (never
// re-entered, rule 3.3), on the goroutine that made work for it: usually
// a worker that just finished a batch, or downstream's Request. A worker
// never waits for downstream demand: without demand, results wait in the
// bounded queue.
//
// Termination: OnComplete comes once every item has been delivered and
// every worker has ended. An upstream error comes after the items
// received before it too, unless [DelayError](false) is given, in which
// case it ends the stream at once, as below. A panic in f becomes a
// *flow.PanicError wrapped with the stage name ("parallelMap#1: sluice:
// panic: …"); it ends the stream: upstream is cancelled, the other
// workers finish the call they are in and stop, and once all have ended
// downstream receives one OnError. So does a panic in downstream's
// OnNext. The item f panicked on is dropped with flow.ReasonError, every
// other item taken from upstream and not delivered with
// flow.ReasonCancelled; each is counted and passed to the [OnDrop] hook,
// whose item type is T, the input's. Cancel cancels upstream at once,
// drops the subscriber (rule 3.13) and the undelivered items
// (ReasonCancelled); the workers end after the call they are in. A
// Request(n <= 0) fails the stream with an error that matches
// flow.ErrNonPositiveRequest (rule 3.9).
//
// Options: [Name], [Prefetch], [Ordered], [DelayError], [OnDrop];
// [Concurrency] is ignored (workers says it). The subscription is
// goroutine-safe. Cost: workers take up to 16 items per lock acquisition
// and hand results back in the same batches (one drain pass per batch);
// the producer takes one uncontended lock per item, and wakes a worker
// only when one is parked on an empty queue, which is rare once the
// window is full. With f a ~1 µs CPU-bound function on the 2-core
// reference machine, one worker runs within about 40 ns per item (6 %) of
// a plain loop, and 2 workers get the speed-up that the machine allows
// an ideal split of the work (BenchmarkParallelMap,
// BenchmarkParallelMapSpeedup). Subscribe allocates the queues
// (O(P + W)); nothing is allocated per item. ParallelMap panics if src or
// f is nil or workers <= 0.
func ParallelMap[T, R any](src flow.Publisher[T], f func(T) R, workers int, opts ...Option) flow.Publisher[R] {
	mustSource("ParallelMap", src)
	mustFunc("ParallelMap", f == nil)
	if workers <= 0 {
		panic("sluice: ParallelMap: workers <= 0")
	}
	c, name := newConfig("parallelMap", opts)
	call := func(_ context.Context, v T) (R, error) { return f(v), nil }
	return newPMPublisher(src, call, workers, pmTakeCPU, false, c, name, opts)
}

func newPMPublisher[T, R any](src flow.Publisher[T], call func(context.Context, T) (R, error),
	workers, take int, useCtx bool, c stage.Config, name string, opts []Option) *pmPublisher[T, R] {
	p := &pmPublisher[T, R]{
		src:        src,
		call:       call,
		workers:    workers,
		take:       take,
		useCtx:     useCtx,
		ordered:    c.Ordered,
		delayError: asyncConfig(opts),
		name:       name,
		hook:       stage.DropHook[T](&c, name),
	}
	prefetch := defaultAsyncPrefetch
	if c.Prefetch > 0 {
		prefetch = c.Prefetch
	}
	p.window = int64(prefetch) + int64(workers)
	p.limit = int64(max(1, prefetch-prefetch/4))
	return p
}

type pmPublisher[T, R any] struct {
	src        flow.Publisher[T]
	call       func(context.Context, T) (R, error)
	workers    int
	take       int
	useCtx     bool
	ordered    bool
	delayError bool
	window     int64 // P + W: the most items in flight
	limit      int64 // L: the replenishing request
	name       string
	hook       func(T, flow.DropReason)
	dropped    [ring.NumReasons]atomic.Int64 // across subscriptions
}

func (p *pmPublisher[T, R]) Subscribe(s flow.Subscriber[R]) {
	flow.RequireSubscriber(s)
	x := &pmSub[T, R]{
		call:       p.call,
		workers:    p.workers,
		take:       p.take,
		window:     p.window,
		limit:      p.limit,
		ordered:    p.ordered,
		delayError: p.delayError,
		useCtx:     p.useCtx,
		name:       p.name,
		down:       s,
	}
	x.drops.Init(p.hook, p.name, &p.dropped)
	x.cond.L = &x.mu
	kind := "parallelMap"
	if p.useCtx {
		kind = "mapAsync"
	}
	x.probe, x.pctx = probe.Attach(s, kind, p.name, probe.Operator)
	x.drops.SetProbe(x.probe)
	x.probe.SetLen(x.held)
	p.src.Subscribe(x)
}

// pmJob is an item waiting for a worker; seq is its position in src.
type pmJob[T any] struct {
	seq uint64
	in  T
}

// pmResult is a finished item; in is kept so that it can be passed to
// the OnDrop hook if the result is never delivered.
type pmResult[T, R any] struct {
	seq uint64
	in  T
	out R
	ok  bool // in a reorder slot: the slot is taken
}

// The bits of pmSub.state.
const (
	pmReady     uint32 = 1 << iota // downstream's OnSubscribe has returned
	pmDone                         // upstream ended; see upErr
	pmHalted                       // the stream is cut short; see haltErr
	pmCancelled                    // downstream cancelled
)

// pmSub is one subscription: the Subscriber of upstream and the
// Subscription of downstream. See the top of the file for who owns what.
type pmSub[T, R any] struct {
	// Set before the workers start; read-only afterwards.
	probe      *probe.Stage    // monitor counters, nil when not monitored
	pctx       context.Context // downstream's context, exposed upstream by Context
	call       func(context.Context, T) (R, error)
	ctx        context.Context
	stopCtx    context.CancelFunc // nil without a context
	up         ring.Upstream
	drops      ring.Drops[T]
	workers    int
	take       int
	window     int64
	limit      int64
	ordered    bool
	delayError bool
	useCtx     bool
	name       string
	_          [64]byte

	wip     flow.WIP
	demand  flow.Demand
	state   atomic.Uint32 // pm* bits
	live    atomic.Int32  // workers not yet ended
	allowed atomic.Int64  // total requested upstream
	halt1   atomic.Bool   // the first halt wins
	haltErr error         // written by the winning halt before pmHalted; nil: cancelled
	upErr   error         // written by the producer before pmDone
	_       [64]byte

	// producer-owned
	recv uint64 // items received; the seq of the next
	_    [56]byte

	// input queue, under mu
	mu     sync.Mutex
	cond   sync.Cond // workers park here when the queue is empty
	q      []pmJob[T]
	qh, qn int  // head index and length
	idle   int  // workers parked and not yet signalled
	inDone bool // upstream ended: workers end once the queue is empty
	_      [64]byte

	// results handed to the drain loop, under outMu
	outMu sync.Mutex
	pend  []pmResult[T, R]
	_     [64]byte

	// drain-owned
	down      flow.Subscriber[R] // nil once ended
	ready     []pmResult[T, R]   // swapped out of pend; delivered from ri
	ri        int
	slots     []pmResult[T, R] // ordered: reorder buffer indexed by seq & mask
	mask      uint64
	head      uint64 // ordered: the seq to deliver next
	delivered uint64
	consumed  int64 // towards the next replenishing request
	started   bool  // the initial request was made
	finished  bool  // the subscription is over on the drain side
	inNext    bool  // downstream's OnNext is running
	scratch   []pmJob[T]
}

// ---- upstream side ----

// Context returns the downstream's context, naming this stage (see
// package monitor).
func (x *pmSub[T, R]) Context() context.Context { return x.pctx }

// held returns the items waiting for a worker and the results waiting for
// the drain loop, for the monitor; it takes the two queue locks, once per
// monitor read.
func (x *pmSub[T, R]) held() int {
	x.mu.Lock()
	n := x.qn
	x.mu.Unlock()
	x.outMu.Lock()
	n += len(x.pend)
	x.outMu.Unlock()
	return n
}

func (x *pmSub[T, R]) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if !x.up.Set(s) {
		s.Cancel() // rule 2.5
		return
	}
	x.q = make([]pmJob[T], x.window)
	x.pend = make([]pmResult[T, R], 0, x.window)
	x.ready = make([]pmResult[T, R], 0, x.window)
	if x.ordered {
		n := uint64(1)
		for n < uint64(x.window) {
			n <<= 1
		}
		x.slots = make([]pmResult[T, R], n)
		x.mask = n - 1
	}
	x.ctx = context.Background()
	if x.useCtx {
		parent := context.Background()
		if c, ok := x.down.(interface{ Context() context.Context }); ok {
			if pc := c.Context(); pc != nil {
				parent = pc
			}
		}
		x.ctx, x.stopCtx = context.WithCancel(parent)
	}
	x.live.Store(int32(x.workers))
	x.down.OnSubscribe(x) // the drain does not touch down before pmReady
	for range x.workers {
		go x.work()
	}
	x.state.Or(pmReady)
	x.signal() // the first pass makes the initial request
}

func (x *pmSub[T, R]) OnNext(v T) {
	if x.recv >= uint64(x.allowed.Load()) {
		x.drops.Drop(v, flow.ReasonOverflow)
		x.halt(fmt.Errorf("%s: %w: upstream emitted more than requested", x.name, flow.ErrOverflow))
		return
	}
	seq := x.recv
	x.recv++
	x.mu.Lock()
	if x.state.Load()&pmHalted != 0 {
		x.mu.Unlock()
		x.drops.Drop(v, flow.ReasonCancelled)
		return
	}
	i := x.qh + x.qn
	if i >= len(x.q) {
		i -= len(x.q)
	}
	x.q[i] = pmJob[T]{seq, v}
	x.qn++
	if x.idle > 0 {
		x.idle--
		x.cond.Signal()
	}
	x.mu.Unlock()
}

func (x *pmSub[T, R]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	x.upEnd(err)
}

func (x *pmSub[T, R]) OnComplete() { x.upEnd(nil) }

func (x *pmSub[T, R]) upEnd(err error) {
	if x.state.Load()&pmDone != 0 {
		return
	}
	x.upErr = err
	x.probe.UpstreamDone()
	x.mu.Lock()
	x.inDone = true
	x.idle = 0
	x.cond.Broadcast()
	x.mu.Unlock()
	x.state.Or(pmDone)
	x.signal()
}

// ---- downstream side ----

// Request allows n more deliveries. It does not request upstream itself:
// the drain loop keeps the window topped up.
func (x *pmSub[T, R]) Request(n int64) {
	x.probe.Request(n)
	if n <= 0 {
		x.halt(flow.NonPositiveRequestError(n))
		return
	}
	x.demand.Add(n)
	x.signal()
}

// Cancel cancels upstream and the context of the calls in flight at once;
// the drain loop then drops the subscriber and the undelivered items.
func (x *pmSub[T, R]) Cancel() {
	if x.state.Or(pmCancelled)&pmCancelled == 0 {
		x.probe.End(probe.Cancelled)
		x.halt(nil)
		x.signal()
	}
}

// halt cuts the stream short, once: err is what downstream will receive
// (nil when it cancelled). Upstream and the calls' context are cancelled
// at once, parked workers are woken to end, and the drain loop is
// signalled. It reports whether this call was the one that halted.
func (x *pmSub[T, R]) halt(err error) bool {
	if !x.halt1.CompareAndSwap(false, true) {
		return false
	}
	x.haltErr = err
	x.state.Or(pmHalted)
	x.up.Cancel()
	if x.stopCtx != nil {
		x.stopCtx()
	}
	x.mu.Lock()
	x.idle = 0
	x.cond.Broadcast()
	x.mu.Unlock()
	x.signal()
	return true
}

// ---- workers ----

func (x *pmSub[T, R]) work() {
	defer x.workerDone()
	batch := make([]pmJob[T], 0, x.take)
	out := make([]pmResult[T, R], 0, x.take)
	for {
		batch = x.takeJobs(batch[:0])
		if len(batch) == 0 {
			return
		}
		for i := range batch {
			if x.state.Load()&pmHalted != 0 {
				x.dropJobs(batch[i:])
				break
			}
			j := &batch[i]
			r, err := x.invoke(j.in)
			if err != nil {
				if x.halt(fmt.Errorf("%s: %w", x.name, err)) {
					x.drops.Drop(j.in, flow.ReasonError)
				} else {
					x.drops.Drop(j.in, flow.ReasonCancelled) // the stream was over already
				}
				x.dropJobs(batch[i+1:])
				break
			}
			out = append(out, pmResult[T, R]{seq: j.seq, in: j.in, out: r})
		}
		clear(batch)
		x.publish(out)
		clear(out)
		out = out[:0]
	}
}

// invoke calls the user function, recovering a panic as a
// *flow.PanicError.
func (x *pmSub[T, R]) invoke(v T) (r R, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = flow.NewPanicError(p)
		}
	}()
	return x.call(x.ctx, v)
}

// takeJobs waits for items and moves up to take of them (fewer when the
// queue is short, so that every worker gets some) into buf. It returns
// an empty buf when the worker must end.
func (x *pmSub[T, R]) takeJobs(buf []pmJob[T]) []pmJob[T] {
	x.mu.Lock()
	for x.qn == 0 {
		if x.inDone || x.state.Load()&pmHalted != 0 {
			x.mu.Unlock()
			return buf
		}
		x.idle++
		x.cond.Wait() // the signaller took us off idle
	}
	if x.state.Load()&pmHalted != 0 {
		x.mu.Unlock()
		return buf
	}
	k := min(x.qn, max(1, x.qn/x.workers), x.take)
	for range k {
		buf = append(buf, x.q[x.qh])
		x.q[x.qh] = pmJob[T]{}
		if x.qh++; x.qh == len(x.q) {
			x.qh = 0
		}
	}
	x.qn -= k
	x.mu.Unlock()
	return buf
}

// publish hands a batch of results to the drain loop: one lock and one
// signal per batch.
func (x *pmSub[T, R]) publish(out []pmResult[T, R]) {
	if len(out) == 0 {
		return
	}
	x.outMu.Lock()
	if x.state.Load()&pmHalted != 0 {
		x.outMu.Unlock()
		for i := range out {
			x.drops.Drop(out[i].in, flow.ReasonCancelled)
		}
		return
	}
	x.pend = append(x.pend, out...)
	x.outMu.Unlock()
	x.signal()
}

func (x *pmSub[T, R]) dropJobs(jobs []pmJob[T]) {
	for i := range jobs {
		x.drops.Drop(jobs[i].in, flow.ReasonCancelled)
	}
}

func (x *pmSub[T, R]) workerDone() {
	x.live.Add(-1)
	x.signal()
}

// ---- the drain loop ----

// signal records work for the drain loop and runs it if it was idle.
func (x *pmSub[T, R]) signal() {
	if !x.wip.Enter() {
		return
	}
	for missed := int32(1); missed != 0; missed = x.wip.Leave(missed) {
		x.pass()
	}
}

func (x *pmSub[T, R]) pass() {
	st := x.state.Load()
	switch {
	case st&pmReady == 0:
		return
	case x.finished:
		x.dropHeld() // results that raced with the end
		return
	case st&pmCancelled != 0:
		x.release()
		return
	case st&pmHalted != 0:
		if x.live.Load() != 0 {
			return // every worker signals when it ends
		}
		d, err := x.down, x.haltErr
		x.release()
		x.probe.End(probe.Failed)
		d.OnError(err)
		return
	case x.drops.Err() != nil:
		x.halt(x.drops.Err()) // loops again through halt's signal
		return
	case st&pmDone != 0 && x.upErr != nil && !x.delayError:
		x.halt(x.upErr)
		return
	}
	if !x.started {
		x.started = true
		x.requestUp(x.window) // a synchronous upstream fills the queue here
	}
	x.emit()
}

// emit delivers ready results within demand, and the terminal signal
// once upstream has ended, every worker has ended and every item has
// been delivered.
func (x *pmSub[T, R]) emit() {
	d, pr := x.down, x.probe
	r := x.demand.Load()
	var e int64
	x.inNext = true
	defer func() {
		if x.inNext { // downstream's OnNext panicked
			x.inNext = false
			if v := recover(); v != nil {
				x.demand.Produced(e)
				x.halt(fmt.Errorf("%s: %w", x.name, flow.NewPanicError(v)))
			}
		}
	}()
	for e != r && x.state.Load()&pmHalted == 0 {
		v, ok := x.next()
		if !ok {
			break
		}
		e++ // before OnNext: the item is delivered even if OnNext panics
		if pr != nil {
			pr.Next()
			d.OnNext(v)
			pr.Returned()
		} else {
			d.OnNext(v)
		}
		if x.consumed++; x.consumed == x.limit {
			x.consumed = 0
			x.requestUp(x.limit)
		}
	}
	x.inNext = false
	if e != 0 {
		x.demand.Produced(e)
	}
	pr.Flush()
	st := x.state.Load()
	if st&pmDone != 0 && st&pmHalted == 0 && x.live.Load() == 0 && x.delivered == x.recv {
		// recv is final: upstream wrote it before pmDone
		err := x.upErr
		x.release()
		if x.stopCtx != nil {
			x.stopCtx()
		}
		if err != nil {
			pr.End(probe.Failed)
			d.OnError(err)
		} else {
			pr.End(probe.Completed)
			d.OnComplete()
		}
	}
}

// next returns the next result to deliver, if one is ready.
func (x *pmSub[T, R]) next() (v R, ok bool) {
	if x.ordered {
		s := &x.slots[x.head&x.mask]
		if !s.ok {
			x.absorb()
			if !s.ok {
				return v, false
			}
		}
		v = s.out
		*s = pmResult[T, R]{}
		x.head++
	} else {
		if x.ri == len(x.ready) && !x.refill() {
			return v, false
		}
		v = x.ready[x.ri].out
		x.ready[x.ri] = pmResult[T, R]{}
		x.ri++
	}
	x.delivered++
	return v, true
}

// refill swaps the results the workers handed over into ready; the caller
// has delivered everything in ready.
func (x *pmSub[T, R]) refill() bool {
	x.ready, x.ri = x.ready[:0], 0
	x.outMu.Lock()
	x.ready, x.pend = x.pend, x.ready
	x.outMu.Unlock()
	return len(x.ready) != 0
}

// absorb moves the results the workers handed over into the reorder
// buffer. No two items in flight share a slot: their seqs lie in
// [head, head+window) and the buffer has at least window slots.
func (x *pmSub[T, R]) absorb() {
	if !x.refill() {
		return
	}
	for i := range x.ready {
		r := &x.ready[i]
		r.ok = true
		x.slots[r.seq&x.mask] = *r
		*r = pmResult[T, R]{}
	}
	x.ready = x.ready[:0]
}

func (x *pmSub[T, R]) requestUp(n int64) {
	x.allowed.Add(n) // before the request: a synchronous upstream emits inside it
	x.up.Request(n)
}

// release ends the subscription on the drain side: the subscriber is
// forgotten (rule 3.13) and the undelivered items dropped.
func (x *pmSub[T, R]) release() {
	x.finished = true
	x.down = nil
	x.dropHeld()
}

// dropHeld drops, with ReasonCancelled, every item the stage holds: in
// the input queue, handed over by the workers, or in the reorder buffer.
func (x *pmSub[T, R]) dropHeld() {
	x.mu.Lock()
	for x.qn != 0 {
		x.scratch = append(x.scratch, x.q[x.qh])
		x.q[x.qh] = pmJob[T]{}
		if x.qh++; x.qh == len(x.q) {
			x.qh = 0
		}
		x.qn--
	}
	x.mu.Unlock()
	x.dropJobs(x.scratch)
	clear(x.scratch)
	x.scratch = x.scratch[:0]
	for {
		for i := x.ri; i < len(x.ready); i++ {
			x.drops.Drop(x.ready[i].in, flow.ReasonCancelled)
			x.ready[i] = pmResult[T, R]{}
		}
		if !x.refill() {
			break
		}
	}
	for i := range x.slots {
		if x.slots[i].ok {
			x.drops.Drop(x.slots[i].in, flow.ReasonCancelled)
			x.slots[i] = pmResult[T, R]{}
		}
	}
}
