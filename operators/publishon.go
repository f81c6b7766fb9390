package operators

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
	"github.com/sluicego/sluice/scheduler"
)

// defaultAsyncPrefetch is the prefetch of the async boundaries.
const defaultAsyncPrefetch = 256

// PublishOn returns a publisher that emits the items of src unchanged, in
// order, but delivers every signal after OnSubscribe (OnNext, OnError,
// OnComplete) on a [scheduler.Worker] of s: an async boundary. Upstream
// runs on whatever goroutine it runs on (for a synchronous source, the
// worker itself, since the requests come from there); downstream runs on
// the worker, one signal at a time.
//
// Demand: PublishOn prefetches. It requests P items upstream (the
// [Prefetch] option, default 256) as soon as downstream's OnSubscribe has
// returned, before any downstream demand, and L = P − P/4 more each time
// downstream has consumed L (Reactor's 75 % rule), whatever downstream
// asks for: a Request(n) from downstream only allows n more deliveries
// from the queue. Every upstream Request is made from the drain loop, so
// serially. Upstream emitting
// more than it was asked for ends the stream with an error that matches
// flow.ErrOverflow.
//
// Synchronous sources: when upstream delivers only inside Request, on the
// requesting goroutine (Range and Slice, directly or through Map, Filter
// and the other synchronous one-to-one stages, but not through RateLimit,
// which requests from its timer), a queue would only pass
// items from the worker to itself. PublishOn then prefetches nothing: its
// drain loop requests what downstream has asked for, at most P at a time,
// and delivers each item as it arrives, on the worker, without queueing
// it (Reactor's synchronous fusion of publishOn with its source).
//
// Queue and wake-ups: items go into a bounded lock-free single-producer
// single-consumer ring of capacity P. The drain loop is a task on one
// Worker of s, chosen at Subscribe: it delivers while there are demand
// and items, then returns; it never blocks waiting. The producer
// (OnNext) schedules the task only when it is not already scheduled or
// running (a work-in-progress counter, read with one atomic load per
// item), so a batch of items costs one wake-up. Request and Cancel only
// record their signal and schedule the task the same way.
//
// Termination: OnComplete is delivered after the queued items. An
// upstream error too, unless [DelayError](false) is given, in which case
// it is delivered at once and the queued items are dropped. OnSubscribe
// is delivered on the goroutine that subscribes, and nothing is delivered
// before downstream's OnSubscribe returns.
//
// Cancel cancels upstream at once, from the caller's goroutine; the
// worker then drops the queued items, each counted and passed to the
// [OnDrop] hook with flow.ReasonCancelled, and drops its reference to
// the subscriber (rule 3.13). A Request(n <= 0) does the same and
// delivers an error that matches flow.ErrNonPositiveRequest (rule 3.9). A
// panic in downstream's OnNext is recovered on the worker: upstream is
// cancelled, the queue dropped, and downstream receives one OnError with
// the *flow.PanicError, wrapped with the stage name (a panic in its
// OnError or OnComplete is not recovered). If s is closed under a live
// stream that downstream has not cancelled, the stream ends with an error
// that matches scheduler.ErrClosed, delivered on the goroutine that
// failed to schedule the drain.
//
// Adjacent boundaries: when src is another PublishOn, directly or through
// synchronous one-to-one stages (Map, Filter, Tap, Scan, Take…), every
// item arrives inside a drain pass of that upstream boundary. PublishOn
// then publishes items to its ring in batches of P/4, and the upstream
// boundary publishes the rest at the end of each of its passes, so an item
// never waits for a batch to fill.
//
// Runs: when downstream is one of sluice's own stages (Map, Filter, a
// sink, another PublishOn), monitored or not, the drain loop
// hands it runs of up to 256 queued items in place, one call per run, and
// an upstream stage hands PublishOn runs that it queues with one copy;
// see "Runs between stages" in docs/architecture.md. A user's Subscriber
// receives single OnNext calls.
//
// Options: [Name], [Prefetch], [DelayError], [OnDrop]. The subscription
// is goroutine-safe. Cost: per item, the producer writes the ring and
// makes one atomic load, or a copy per run; it publishes with one atomic
// store (an XCHG on amd64) per item, or per batch behind another
// PublishOn, or not at all over a synchronous source. The consumer makes
// no atomic write per item (it publishes the room it made once per
// batch). The chain Range → PublishOn → Map → PublishOn → Filter →
// PublishOn → Reduce runs at about 16.5 ns per item on a 2-core x86 VM,
// against about 177 ns for goroutines joined by channels buffered 256
// (medians of 10, go test -run '^$' -bench AsyncChain -count 10 ./bench/).
// Subscribe allocates the ring and a few small objects; nothing is
// allocated per item. PublishOn panics if src or s is nil.
func PublishOn[T any](src flow.Publisher[T], s scheduler.Scheduler, opts ...Option) flow.Publisher[T] {
	mustSource("PublishOn", src)
	if s == nil {
		panic("sluice: PublishOn: nil scheduler")
	}
	c, name := newConfig("publishon", opts)
	p := &publishOnPublisher[T]{
		src:        src,
		sched:      s,
		name:       name,
		hook:       stage.DropHook[T](&c, name),
		prefetch:   defaultAsyncPrefetch,
		delayError: asyncConfig(opts),
	}
	if c.Prefetch > 0 {
		p.prefetch = c.Prefetch
	}
	return p
}

type publishOnPublisher[T any] struct {
	src        flow.Publisher[T]
	sched      scheduler.Scheduler
	name       string
	hook       func(T, flow.DropReason)
	prefetch   int
	delayError bool
	dropped    [ring.NumReasons]atomic.Int64 // across subscriptions
}

func (p *publishOnPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	x := &publishOn[T]{
		down:       s,
		worker:     p.sched.Worker(),
		q:          ring.NewSPSC[T](p.prefetch),
		prefetch:   int64(p.prefetch),
		limit:      int64(p.prefetch - p.prefetch/4),
		delayError: p.delayError,
		name:       p.name,
		batch:      1,
	}
	x.drops.Init(p.hook, p.name, &p.dropped)
	x.probe, x.ctx = probe.Attach(s, "publishOn", p.name, probe.Operator)
	x.drops.SetProbe(x.probe)
	x.probe.SetLen(x.q.Len)
	x.task = x.drain // one allocation here, none per wake-up
	p.src.Subscribe(x)
}

// publishOn is one subscription: the Subscriber of upstream and the
// Subscription of downstream.
//
// Goroutines: OnNext, OnError and OnComplete come serially from upstream
// (the producer); Request and Cancel from anywhere; the drain loop runs
// on the worker, serialised by wip, and owns the fields marked so.
type publishOn[T any] struct {
	// Set at Subscribe (up in OnSubscribe) and only read afterwards.
	q          *ring.SPSC[T]
	task       func() // x.drain, scheduled on worker
	worker     scheduler.Worker
	up         flow.Subscription
	drops      ring.Drops[T]
	prefetch   int64
	limit      int64
	delayError bool
	name       string
	probe      *probe.Stage    // monitor counters, nil when not monitored
	ctx        context.Context // exposed upstream by Context

	// Set in OnSubscribe, before ready, and only read afterwards; kept off
	// the lines that either side writes per item, which the other side
	// would otherwise have to fetch again for every item.
	//
	// syncUp: upstream delivers only inside Request (stage.SyncEmitter),
	// so items arrive on the drain loop's goroutine inside requestUp and
	// are delivered from there, without the queue (see emitDirect).
	syncUp bool
	// flushDown: written by the downstream hop that linked itself.
	flushDown hopFlusher
	_         [64]byte

	wip    atomic.Int32
	wokeAt atomic.Int64 // when monitored: when the drain task was last scheduled // drain-loop token; see signal and OnNext
	_      [60]byte

	// Signals for the drain loop; read once per item, written rarely.
	state atomic.Uint32 // st* bits
	badN  int64         // the first non-positive request; before stBad
	err   error         // upstream's error; written before stDone
	_     [64]byte

	demand      flow.Demand
	subscribed  atomic.Bool
	upCancelled atomic.Bool
	badOnce     atomic.Bool
	_           [64]byte

	// producer-owned: items Put but not yet published, and how many to
	// Put before publishing (1 unless upstream is another PublishOn that
	// flushes at the end of its passes, see linkDown, or emits only inside
	// requestUp, see syncUp)
	unpub int64
	batch int64
	_     [48]byte

	// drain-owned
	down     flow.Subscriber[T] // nil once ended
	started  bool               // the initial request was made
	finished bool               // a terminal signal was sent, or the stream was cut short
	ended    atomic.Bool        // finished, for reads without the loop token
	consumed int64              // towards the next replenishing request
	schedErr error              // the scheduler refused the drain task
	inNext   bool               // downstream's OnNext is running
	want     int64              // direct mode: requested by the running requestUp
	got      int64              // direct mode: delivered by it so far
}

// The bits of publishOn.state.
const (
	stReady     uint32 = 1 << iota // downstream's OnSubscribe has returned
	stCancelled                    // downstream cancelled
	stBad                          // downstream requested n <= 0; see badN
	stOverflow                     // upstream emitted beyond demand
	stDone                         // upstream ended; see err

	stStop = stCancelled | stBad | stOverflow // end the stream now
)

// ---- upstream side (the producer) ----

// Context returns the downstream's context, naming this stage (see
// package monitor).
func (x *publishOn[T]) Context() context.Context { return x.ctx }

func (x *publishOn[T]) OnSubscribe(up flow.Subscription) {
	if up == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if !x.subscribed.CompareAndSwap(false, true) {
		up.Cancel() // rule 2.5
		return
	}
	x.up = up
	if upstreamSync(up) {
		x.syncUp = true
	} else if h := upstreamHop(up); h != nil && h.linkDown(x) {
		x.batch = max(1, x.prefetch/4)
	}
	x.down.OnSubscribe(x) // no drain touches down before ready
	x.state.Or(stReady)
	x.signal() // the first pass makes the initial request
}

func (x *publishOn[T]) OnNext(item T) {
	if x.syncUp {
		x.onNextDirect(item)
		return
	}
	if !x.q.Put(item) {
		// More than requested (rule 1.1): the ring holds everything
		// upstream may have in flight.
		x.flush()
		x.drops.Drop(item, flow.ReasonOverflow)
		x.state.Or(stOverflow)
		x.signal()
		return
	}
	if x.unpub++; x.unpub >= x.batch {
		x.publish()
	}
}

// OnNextBatch queues a run of items, as len(items) OnNext calls would,
// with one copy (see stage.BatchSubscriber).
func (x *publishOn[T]) OnNextBatch(items []T) {
	if x.syncUp {
		x.onNextDirectBatch(items)
		return
	}
	n := x.q.PutRun(items)
	x.unpub += int64(n)
	if n < len(items) { // more than requested, as in OnNext
		x.flush()
		for _, v := range items[n:] {
			x.drops.Drop(v, flow.ReasonOverflow)
		}
		x.state.Or(stOverflow)
		x.signal()
		return
	}
	if x.unpub >= x.batch {
		x.publish()
	}
}

// publish makes the items Put so far visible to the drain loop and
// schedules it if it is idle. The ring's store of the tail and the load of
// wip are sequentially consistent, as are the drain loop's release of wip
// and its check of the ring (see drain): either this load sees the loop
// still active, and the loop will see the items, or it sees zero and
// schedules it. Producer only.
func (x *publishOn[T]) publish() {
	x.unpub = 0
	x.q.Publish()
	if x.wip.Load() == 0 && x.wip.Add(1) == 1 {
		x.dispatch()
	}
}

// flush publishes the items Put but not yet published. It is called on
// the producer's side: by the upstream PublishOn this one is linked to, at
// the end of each of its drain passes, and by OnError and OnComplete.
func (x *publishOn[T]) flush() {
	if x.unpub != 0 {
		x.publish()
	}
}

func (x *publishOn[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	if x.state.Load()&stDone != 0 {
		return
	}
	x.flush()
	x.err = err
	x.probe.UpstreamDone()
	x.state.Or(stDone)
	x.signal()
}

func (x *publishOn[T]) OnComplete() {
	if x.state.Load()&stDone != 0 {
		return
	}
	x.flush()
	x.probe.UpstreamDone()
	x.state.Or(stDone)
	x.signal()
}

// ---- downstream side ----

// Request allows n more deliveries from the queue. It does not request
// upstream itself: the drain loop keeps the prefetch topped up.
func (x *publishOn[T]) Request(n int64) {
	x.probe.Request(n)
	if n <= 0 {
		if x.badOnce.CompareAndSwap(false, true) {
			x.badN = n
			x.state.Or(stBad)
		}
	} else {
		x.demand.Add(n)
	}
	x.signal()
}

// Cancel cancels upstream at once; the drain loop then drops the queue
// and the subscriber.
func (x *publishOn[T]) Cancel() {
	if x.state.Or(stCancelled)&stCancelled == 0 {
		x.probe.End(probe.Cancelled)
		x.cancelUp()
		x.signal()
	}
}

// ---- the drain loop ----

// signal records work for the drain loop and schedules it if it was idle.
func (x *publishOn[T]) signal() {
	if x.wip.Add(1) == 1 {
		x.dispatch()
	}
}

// dispatch schedules the drain loop; the caller holds the wip token. If
// the scheduler refuses, the loop runs here, once, to end the stream.
func (x *publishOn[T]) dispatch() {
	if x.probe != nil {
		x.wokeAt.Store(time.Now().UnixNano())
	}
	if err := x.worker.Schedule(x.task); err != nil {
		x.schedErr = err // we own the loop: no drain is running
		x.drain()
	}
}

// drain is the task: it runs passes until no work is left, then releases
// the wip token. Because OnNext skips the increment when it sees the loop
// active, the loop looks at the ring once more after releasing, and takes
// the token back if an item arrived that it can deliver or must drop.
func (x *publishOn[T]) drain() {
	missed := int32(1)
	for {
		x.pass()
		if missed = x.wip.Add(-missed); missed != 0 {
			continue
		}
		// The token is released: only goroutine-safe reads from here on
		// (another goroutine may own the loop already, such as a drain run
		// inline because the scheduler refused the task).
		if x.q.Len() == 0 || !(x.ended.Load() || x.demand.Load() != 0) || !x.wip.CompareAndSwap(0, 1) {
			return
		}
		missed = 1
	}
}

// pass does everything that can be done now, then publishes what this
// pass delivered to a linked downstream PublishOn.
func (x *publishOn[T]) pass() {
	if x.state.Load()&stReady == 0 {
		return // flushDown may still be being written
	}
	x.passReady()
	if x.flushDown != nil {
		x.flushDown.flush()
	}
}

func (x *publishOn[T]) passReady() {
	for {
		if x.finished {
			x.dropQueued() // items that raced with the end
			return
		}
		st := x.state.Load()
		switch { // a cancel wins: a cancelled stream ends without a signal
		case st&stCancelled != 0:
			x.stop(nil)
			continue
		case st&stBad != 0:
			x.stop(flow.NonPositiveRequestError(x.badN))
			continue
		case x.schedErr != nil:
			x.stop(fmt.Errorf("%s: %w", x.name, x.schedErr))
			continue
		case st&stOverflow != 0:
			x.stop(fmt.Errorf("%s: %w: upstream emitted more than requested", x.name, flow.ErrOverflow))
			continue
		case x.drops.Err() != nil:
			x.stop(x.drops.Err())
			continue
		case st&stDone != 0 && x.err != nil && !x.delayError:
			x.stop(x.err)
			continue
		}
		if x.syncUp {
			if x.emitDirect() {
				continue
			}
			return
		}
		if !x.started {
			x.started = true
			x.requestUp(x.prefetch) // a synchronous upstream fills the ring here
			continue
		}
		if x.emit() {
			continue
		}
		return
	}
}

// emit delivers queued items while there is demand, and the terminal
// signal once the queue is empty. It reports whether the state changed in
// a way the caller must look at (a cancel, an error, a panic).
func (x *publishOn[T]) emit() (again bool) {
	d, pr := x.down, x.probe
	r := x.demand.Load()
	var e int64
	if pr != nil {
		if t := x.wokeAt.Swap(0); t != 0 && r != 0 && !x.q.Empty() {
			pr.ObserveLatency(time.Duration(time.Now().UnixNano() - t))
		}
	}
	x.inNext = true
	defer func() {
		if x.inNext { // downstream's OnNext panicked
			x.inNext = false
			if v := recover(); v != nil {
				pe := flow.NewPanicError(v)
				x.stop(fmt.Errorf("%s: %w", x.name, pe))
				again = true
			}
		}
	}()
	if bd := stage.Batcher(x.down); bd != nil { // one type assertion per pass
		return x.emitBatches(bd, r)
	}
	for e != r {
		done, stop := x.emitState() // before Poll: items were queued before stDone
		if stop {
			again = true
			break
		}
		v, ok := x.q.Poll()
		if !ok {
			if done {
				return x.endEmit(e, false) // delivers the terminal signal
			}
			break
		}
		if pr != nil {
			pr.Next()
			d.OnNext(v)
			pr.Returned()
		} else {
			d.OnNext(v)
		}
		e++
		x.consume(1)
	}
	return x.endEmit(e, again)
}

// emitState reads the state once per item or run delivered from the
// queue: whether upstream is done, and whether the stream must stop now
// (a cancel, a bad request, an overflow, a failure, or upstream's error
// without DelayError).
func (x *publishOn[T]) emitState() (done, stop bool) {
	st := x.state.Load()
	done = st&stDone != 0
	return done, st&stStop != 0 || done && x.err != nil && !x.delayError
}

// consume counts n items delivered from the queue and makes the
// replenishing request each time the count reaches the limit.
func (x *publishOn[T]) consume(n int64) {
	if x.consumed += n; x.consumed == x.limit {
		x.consumed = 0
		x.q.Release() // room before the request that fills it
		x.requestUp(x.limit)
	}
}

// endEmit ends a pass of emit that delivered e items: it publishes the
// room made, the demand used and the monitor's counts, and delivers the
// terminal signal if upstream is done and the queue empty.
func (x *publishOn[T]) endEmit(e int64, again bool) bool {
	x.inNext = false
	x.delivered(e)
	x.probe.Flush()
	if !again && x.state.Load()&stDone != 0 && x.q.Empty() && (x.err == nil || x.delayError) {
		x.terminate() // no demand is needed for a terminal signal
	}
	return again
}

// handRun hands b a run of items in one call, counting it for the monitor
// when pr is not nil (Next and Returned for the whole run).
func handRun[T any](pr *probe.Stage, b stage.BatchSubscriber[T], items []T) {
	if pr == nil {
		b.OnNextBatch(items)
		return
	}
	pr.NextN(int64(len(items)))
	b.OnNextBatch(items)
	pr.Returned()
}

// emitBatches is emit's loop for a downstream that takes batches: it
// hands downstream runs of the queue in place, up to the demand r and to
// the next replenishing request, with the checks emit makes per item
// made once per run, and counts each run for the monitor. The caller set
// inNext and recovers a panic.
func (x *publishOn[T]) emitBatches(bd stage.BatchSubscriber[T], r int64) (again bool) {
	var e int64
	for e != r {
		done, stop := x.emitState() // before PollRun: items were queued before stDone
		if stop {
			again = true
			break
		}
		run := x.q.PollRun(int(min(r-e, x.limit-x.consumed, stage.MaxBatch)))
		if len(run) == 0 {
			if done {
				return x.endEmit(e, false) // delivers the terminal signal
			}
			break
		}
		handRun(x.probe, bd, run)
		e += int64(len(run))
		x.consume(int64(len(run)))
	}
	return x.endEmit(e, again)
}

// upstreamSync reports whether the subscription a PublishOn received
// comes, directly or through synchronous one-to-one stages, from a source
// that delivers only inside Request (see stage.SyncEmitter). Since
// PublishOn makes every upstream Request from its drain loop, such a
// source's items arrive on the drain loop's goroutine, inside requestUp.
func upstreamSync(s flow.Subscription) bool {
	for range 32 {
		switch v := s.(type) {
		case stage.SyncEmitter:
			return v.EmitsInRequest()
		case requestsElsewhere:
			return false
		case relayUpstream:
			s = v.relayUp()
		default:
			return false
		}
	}
	return false
}

// ---- direct delivery from a source that emits inside Request ----

// When upstream delivers only inside Request (stage.SyncEmitter: Range,
// Slice, and synchronous one-to-one stages over them), a queue would only
// hand items from the drain loop's goroutine to itself. PublishOn then
// requests what downstream asked for, up to P at a time, from the drain
// loop, and OnNext delivers each item downstream at once, on the worker:
// Reactor's synchronous fusion of publishOn with a fuseable source. Items
// are still delivered on the worker, serially, and never beyond demand.

// emitDirect requests up to P items for downstream's outstanding demand
// and delivers them as they arrive. It reports whether the caller must
// look at the state again (it asked for more, or the stream changed).
func (x *publishOn[T]) emitDirect() (again bool) {
	if x.state.Load()&stDone != 0 {
		x.terminate() // nothing is queued: the end needs no demand
		return false
	}
	r := x.demand.Load()
	if r == 0 {
		return false
	}
	if pr := x.probe; pr != nil {
		if t := x.wokeAt.Swap(0); t != 0 {
			pr.ObserveLatency(time.Duration(time.Now().UnixNano() - t))
		}
	}
	x.want, x.got = min(r, x.prefetch), 0
	x.inNext = true
	defer func() {
		if x.inNext { // downstream's OnNext panicked inside requestUp
			x.inNext = false
			if v := recover(); v != nil {
				pe := flow.NewPanicError(v)
				x.stop(fmt.Errorf("%s: %w", x.name, pe))
				again = true
			}
		}
	}()
	x.requestUp(x.want)
	x.inNext = false
	x.delivered(x.got)
	x.probe.Flush()
	if x.got < x.want && x.state.Load()&(stDone|stStop) == 0 {
		// The source broke its stage.SyncEmitter promise: the rest would
		// arrive on another goroutine. End the stream rather than race.
		x.stop(fmt.Errorf("%s: internal error: upstream delivered %d of %d items outside Request", x.name, x.got, x.want))
	}
	return true
}

// onNextDirect delivers item downstream. It runs on the drain loop's
// goroutine, inside requestUp.
func (x *publishOn[T]) onNextDirect(item T) {
	if x.got == x.want || x.down == nil {
		reason := flow.ReasonCancelled
		if x.down != nil {
			reason = flow.ReasonOverflow
			x.state.Or(stOverflow)
		}
		x.drops.Drop(item, reason)
		return
	}
	x.got++
	if pr := x.probe; pr != nil {
		pr.Next()
		x.down.OnNext(item)
		pr.Returned()
		return
	}
	x.down.OnNext(item)
}

// onNextDirectBatch is onNextDirect for a run of items: a run that fits
// the request is handed downstream in one call when downstream takes
// batches (counted as a run when monitored); anything else goes item by
// item, which handles the ends and the overflow exactly as OnNext does.
func (x *publishOn[T]) onNextDirectBatch(items []T) {
	if bd := stage.Batcher(x.down); bd != nil && int64(len(items)) <= x.want-x.got {
		x.got += int64(len(items))
		handRun(x.probe, bd, items)
		return
	}
	for _, v := range items {
		x.onNextDirect(v)
	}
}

// requestsElsewhere is implemented by the one-to-one stages that make
// upstream requests from a goroutine of their own (RateLimit, from its
// timer's): a source behind them emits on that goroutine, not inside the
// requester's Request, so upstreamSync must stop there.
type requestsElsewhere interface{ requestsFromTimer() }

// ---- linking adjacent boundaries ----

// When a PublishOn's upstream is another PublishOn, directly or through
// synchronous one-to-one stages (Map, Filter, Tap… whose per-subscription
// objects embed relay and deliver inside their own OnNext), every item
// reaches the downstream hop inside a drain pass of the upstream hop, on
// its goroutine. The downstream hop then Puts items without publishing
// them one by one: it publishes every batch items and whenever the
// upstream hop's pass ends, which saves the atomic store per item that
// crossing goroutines costs otherwise.

// hopFlusher is the downstream hop, seen from the upstream one.
type hopFlusher interface{ flush() }

// hopLinker is the upstream hop, seen from the downstream one.
type hopLinker interface {
	linkDown(f hopFlusher) bool
}

// relayUpstream is implemented by the synchronous one-to-one stages: every
// stage whose per-subscription object embeds relay. Linking relies on them
// calling downstream's OnNext only from inside their own OnNext; a stage
// that embeds relay but emits from elsewhere (a timer, a goroutine) must
// not be walked through.
type relayUpstream interface{ relayUp() flow.Subscription }

func (l *relay[R]) relayUp() flow.Subscription { return l.up }

// upstreamHop walks up from the subscription a PublishOn received through
// synchronous stages, and returns the PublishOn it finds, if any.
func upstreamHop(s flow.Subscription) hopLinker {
	for range 32 {
		switch v := s.(type) {
		case hopLinker:
			return v
		case relayUpstream:
			s = v.relayUp()
		default:
			return nil
		}
	}
	return nil
}

// linkDown makes f flushed at the end of every drain pass. It is called
// from the subscribing goroutine, inside this hop's OnSubscribe, before
// ready is set, which publishes flushDown to the drain loop.
func (x *publishOn[T]) linkDown(f hopFlusher) bool {
	if x.flushDown != nil || x.state.Load()&stReady != 0 {
		return false
	}
	x.flushDown = f
	return true
}

func (x *publishOn[T]) delivered(e int64) {
	x.q.Release()
	if e != 0 {
		x.demand.Produced(e)
	}
}

func (x *publishOn[T]) requestUp(n int64) {
	if !x.upCancelled.Load() {
		x.up.Request(n)
	}
}

func (x *publishOn[T]) cancelUp() {
	if x.upCancelled.CompareAndSwap(false, true) {
		x.up.Cancel()
	}
}

// terminate delivers upstream's terminal signal.
func (x *publishOn[T]) terminate() {
	d, err := x.down, x.err
	x.release()
	if err != nil {
		x.probe.End(probe.Failed)
		d.OnError(err)
	} else {
		x.probe.End(probe.Completed)
		d.OnComplete()
	}
}

// stop cuts the stream short: upstream cancelled, the queue dropped, and
// err (if not nil) delivered.
func (x *publishOn[T]) stop(err error) {
	x.cancelUp()
	d := x.down
	x.release()
	if err != nil {
		x.probe.End(probe.Failed)
		d.OnError(err)
	}
}

// release ends the subscription on the drain side: the queue is dropped
// and the subscriber forgotten (rule 3.13).
func (x *publishOn[T]) release() {
	x.finished = true
	x.ended.Store(true)
	x.down = nil
	x.dropQueued()
}

func (x *publishOn[T]) dropQueued() {
	for {
		v, ok := x.q.Poll()
		if !ok {
			break
		}
		x.drops.Drop(v, flow.ReasonCancelled)
	}
	x.q.Release()
}
