package operators

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
)

// batchAhead caps the number of batches Batch fills ahead of downstream
// demand when that demand is large (or Unbounded): memory stays bounded
// by (batchAhead+1) batches plus the one being filled.
const batchAhead = 4

// maxInitialBatch caps the capacity a batch is allocated with; larger
// batches grow as items arrive.
const maxInitialBatch = 1 << 12

// Batch groups the items of src into slices of up to size items. A batch
// is emitted when it holds size items, or, when maxWait > 0, when maxWait
// has passed since its first item arrived; maxWait == 0 means by size
// only.
//
// What it requests upstream: with a downstream demand of n batches
// outstanding, it keeps at most size × (min(n, 4) + 1) items requested
// upstream and not yet emitted. So it requests size items at subscription
// even before downstream asks (the one batch of prefetch), never more than
// k × size plus one batch for k batches of demand, and requests the
// difference each time a batch is emitted or demand arrives.
//
// When it emits: a batch only against downstream demand, never an empty
// one, never more batches than requested. With no demand it never fails:
// it holds one full batch and stops requesting (Reactor's bufferTimeout
// errors instead, reactor-core #1557 and #3106). A batch whose maxWait
// expires while there is no demand is held, keeps filling up to size with
// the items already requested, and is emitted as soon as demand arrives.
// Full batches are emitted in order before a timed-out partial one.
//
// What it buffers: the batch being filled and the full batches waiting
// for demand, at most size × (min(n, 4) + 1) items in all.
//
// How it ends: on upstream OnComplete, the partial batch is emitted (when
// demanded) and then OnComplete. On upstream OnError, the batches already
// formed and the partial batch are delivered first, as demand allows, and
// then the error (delayError semantics: nothing buffered is lost because
// upstream failed). On Cancel or Request(n <= 0), upstream is cancelled
// and the items held are dropped with [flow.ReasonCancelled] and passed
// to the [OnDrop] hook, as are items that arrive after the cancel. With
// maxWait > 0 the batch being filled is dropped at once; with maxWait == 0
// the producer alone owns it (that is what keeps the item path free of
// atomics), so its items are dropped when upstream next signals (OnNext,
// OnComplete or OnError), and an upstream that falls silent after Cancel
// leaves them unreported.
//
// Each emitted slice is new and owned by the receiver, unless
// [ReuseBatches] is given: then it is valid only until OnNext returns. The timer is one
// time.AfterFunc per subscription, armed once per batch (at its first
// item) and stopped when the batch is handed on or the stream ends; it
// works under testing/synctest.
//
// Cost: with maxWait == 0, an item costs a slice store and a load of the
// cancel flag, with no atomic write; a batch costs the allocation of its
// slice, a mutex-guarded hand-off, a pass of the drain loop and one
// downstream OnNext. With maxWait > 0 each item also costs one atomic add
// (about 8 ns on the 2-core reference machine), which lets the timer take
// a partial batch while the producer is idle. See BenchmarkBatch, which
// runs beside a plain loop that allocates the same slices.
//
// size <= 0 or maxWait < 0 panics.
func Batch[T any](src flow.Publisher[T], size int, maxWait time.Duration, opts ...Option) flow.Publisher[[]T] {
	if src == nil {
		panic("sluice: Batch: nil source")
	}
	if size <= 0 {
		panic("sluice: Batch: size <= 0")
	}
	if maxWait < 0 {
		panic("sluice: Batch: maxWait < 0")
	}
	cfg, name := newConfig("batch", opts)
	reuse := reuseBatches(opts)
	if reuse && maxWait > 0 {
		panic("sluice: Batch: ReuseBatches needs maxWait == 0")
	}
	p := &batchPublisher[T]{
		src:     src,
		size:    size,
		maxWait: maxWait,
		name:    name,
		hook:    stage.DropHook[T](&cfg, name),
		reuse:   reuse,
	}
	if l, ok := src.(fuse.Loop[T]); ok && maxWait == 0 {
		return batchLoop[T]{p, l} // loop.go
	}
	return p
}

// BatchWeighted groups the items of src into slices whose total weight
// is at most maxWeight, for writes bounded by bytes or cost. An item's
// weight is max(weight(item), 1), so a batch never holds more than
// maxWeight items. A batch is emitted when the next item would take it
// above maxWeight, when it reaches maxWeight, or when maxWait > 0 has
// passed since its first item. An item heavier than maxWeight is emitted
// alone in its batch.
//
// What it requests upstream: the number of items per batch is not known
// in advance, so it requests items in chunks: P items at subscription (P
// is the Prefetch option, default 256), then 75 % of P each time that
// many have arrived, but only while fewer than min(n, 4) + 1 full batches
// wait for a downstream demand of n batches. Outstanding upstream requests
// never exceed P items.
//
// When it emits, what it buffers, how it ends: as [Batch]. A weight
// function that panics, or returns a negative weight, ends the stream:
// the item is dropped with [flow.ReasonError], upstream is cancelled, the
// batches already formed are delivered, then the error (a
// *[flow.PanicError] for a panic, wrapped with the stage name).
//
// Cost: one call of weight per item, plus Batch's costs.
//
// maxWeight <= 0, a nil weight or maxWait < 0 panics.
func BatchWeighted[T any](src flow.Publisher[T], maxWeight int64, weight func(T) int64, maxWait time.Duration, opts ...Option) flow.Publisher[[]T] {
	if src == nil {
		panic("sluice: BatchWeighted: nil source")
	}
	if maxWeight <= 0 {
		panic("sluice: BatchWeighted: maxWeight <= 0")
	}
	if weight == nil {
		panic("sluice: BatchWeighted: nil weight function")
	}
	if maxWait < 0 {
		panic("sluice: BatchWeighted: maxWait < 0")
	}
	cfg, name := newConfig("batchWeighted", opts)
	prefetch := int64(256)
	if cfg.Prefetch > 0 {
		prefetch = int64(cfg.Prefetch)
	}
	return &batchPublisher[T]{
		src:       src,
		maxWeight: maxWeight,
		weight:    weight,
		prefetch:  prefetch,
		maxWait:   maxWait,
		name:      name,
		hook:      stage.DropHook[T](&cfg, name),
	}
}

type batchPublisher[T any] struct {
	reuse     bool // ReuseBatches: recycle the slices emitted
	src       flow.Publisher[T]
	size      int           // count mode; 0 in weighted mode
	maxWeight int64         // weighted mode
	weight    func(T) int64 // weighted mode; nil in count mode
	prefetch  int64         // weighted mode
	maxWait   time.Duration // 0: no timer
	name      string
	hook      func(T, flow.DropReason)
}

func (p *batchPublisher[T]) Subscribe(s flow.Subscriber[[]T]) {
	flow.RequireSubscriber(s)
	b := &batchSubscriber[T]{
		size:      p.size,
		maxWeight: p.maxWeight,
		weight:    p.weight,
		prefetch:  p.prefetch,
		replenish: p.prefetch - p.prefetch/4,
		maxWait:   p.maxWait,
		timed:     p.maxWait > 0,
		name:      p.name,
		down:      s,
		reuse:     p.reuse,
	}
	if b.timed {
		b.epoch = time.Now()
	}
	b.drops.Init(p.hook, p.name, &b.dropCounts)
	kind := "batch"
	if p.weight != nil {
		kind = "batchWeighted"
	}
	b.probe, b.ctx = probe.Attach(s, kind, p.name, probe.Operator)
	b.drops.SetProbe(b.probe)
	b.probe.SetLen(func() int { return int(b.queueLen()) })
	b.badN.Store(noBadRequest)
	p.src.Subscribe(b)
}

const noBadRequest = 1

// The state word of a timed batch: the count of published items of the
// current batch, a sealed bit set by the drain loop when it took the
// batch, and the batch's generation.
const (
	stCount  = 1<<32 - 1
	stSealed = 1 << 32
	stGen    = 33 // shift
)

type batchItems[T any] struct{ items []T }

// batchSubscriber is at once the stage's Subscriber to upstream (the
// producer side: OnNext fills the current batch) and downstream's
// Subscription (the drain loop emits batches).
//
// The producer owns the batch being filled. Full batches are handed to
// the drain loop through a small mutex-guarded queue, once per batch. In
// timed mode the drain loop may also take the partial batch: the producer
// publishes each item with one atomic add on st, and the drain loop
// claims the batch by setting the sealed bit with a compare-and-swap, so
// exactly one of them hands each batch on.
type batchSubscriber[T any] struct {
	size      int
	maxWeight int64
	weight    func(T) int64
	prefetch  int64
	replenish int64
	maxWait   time.Duration
	timed     bool
	name      string

	up         ring.Upstream
	drops      ring.Drops[T]
	dropCounts [ring.NumReasons]atomic.Int64
	probe      *probe.Stage    // monitor counters (in batches), nil when not monitored
	ctx        context.Context // exposed upstream by Context

	down      flow.Subscriber[[]T] // owned by the drain loop
	demand    flow.Demand
	wip       flow.WIP
	cancelled atomic.Bool
	badN      atomic.Int64
	stopped   atomic.Bool // cancelled, bad request, hook panic or ended
	done      atomic.Bool // the producer finished and handed everything on; err is set
	err       error

	qmu   sync.Mutex
	q     [][]T // full batches waiting for demand
	qh    int
	reuse bool  // ReuseBatches, count mode only
	free  [][]T // reuse: emitted batches, empty, ready to be refilled

	// producer-owned
	cur     []T            // count mode, untimed: the batch being filled
	curb    *batchItems[T] // timed or weighted: the batch being filled
	n       int            // items in the current batch
	w       int64          // weight of the current batch
	gen     uint64         // timed: generation of the current batch
	lastLen int            // weighted: items in the previous batch
	recv    int64          // weighted: items received
	lastPub int64          // weighted: recv when last published
	pclosed bool           // upstream terminated, or the stage failed

	// shared with the drain loop and the timer
	st      atomic.Uint64
	bufp    atomic.Pointer[batchItems[T]]
	timer   atomic.Pointer[time.Timer] // created at the first batch, re-armed with Reset
	armed   atomic.Uint64              // generation+1 of the batch the timer is armed for
	armedAt atomic.Int64               // when it was armed, in ns since epoch
	epoch   time.Time
	fired   atomic.Uint64 // generation+1 of the last batch whose timer fired
	arrived atomic.Int64  // weighted: recv, published every `replenish` items

	// drain-owned
	requested int64
	emitted   int64 // items emitted downstream
	finished  bool
}

// ---- producer side (upstream signals, serial) ----

// Context returns the downstream's context, naming this stage (see
// package monitor).
func (b *batchSubscriber[T]) Context() context.Context { return b.ctx }

func (b *batchSubscriber[T]) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if !b.up.Set(s) {
		s.Cancel() // rule 2.5
		return
	}
	b.down.OnSubscribe(b)
	b.drain() // the initial request
}

func (b *batchSubscriber[T]) OnNext(v T) {
	if b.pclosed {
		b.drops.Drop(v, flow.ReasonCancelled)
		return
	}
	if b.stopped.Load() {
		b.dropCurrent()
		b.drops.Drop(v, flow.ReasonCancelled)
		return
	}
	switch {
	case b.weight != nil:
		b.nextWeighted(v)
	case b.timed:
		if !b.add(v) {
			b.add(v) // the drain loop took the batch: v starts the next one
		}
		if b.n == b.size {
			b.cut()
		}
	default: // the hot path: no atomics
		if b.n == 0 {
			b.cur = b.newBatch()
		}
		b.cur = append(b.cur, v)
		b.n++
		if b.n == b.size {
			full := b.cur
			b.cur, b.n = nil, 0
			b.handoff(full)
		}
	}
}

func (b *batchSubscriber[T]) nextWeighted(v T) {
	wt, err := b.callWeight(v)
	if err != nil {
		b.drops.Drop(v, flow.ReasonError)
		b.up.Cancel()
		b.finishProducer(err)
		return
	}
	wt = max(wt, 1)
	if b.n > 0 && b.w+wt > b.maxWeight {
		b.cut()
	}
	if !b.add(v) {
		b.add(v)
	}
	b.w += wt
	if b.w >= b.maxWeight {
		b.cut()
	}
	if b.recv++; b.recv-b.lastPub >= b.replenish {
		b.lastPub = b.recv
		b.arrived.Store(b.recv)
		b.drain()
	}
}

func (b *batchSubscriber[T]) callWeight(v T) (w int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %w", b.name, flow.NewPanicError(p))
		}
	}()
	w = b.weight(v)
	if w < 0 {
		return 0, fmt.Errorf("sluice: %s: negative weight %d", b.name, w)
	}
	return w, nil
}

// add appends v to the current batch (timed or weighted mode), starting a
// batch if needed. It reports false, without adding v, when the drain
// loop had taken the current batch; the producer then starts afresh.
func (b *batchSubscriber[T]) add(v T) bool {
	switch {
	case b.n == 0:
		c := min(b.size, maxInitialBatch)
		if b.weight != nil { // start with the size of the previous batch
			c = int(min(b.maxWeight, int64(max(b.lastLen, 16))))
		}
		b.curb = &batchItems[T]{items: make([]T, c)}
		if b.timed {
			b.bufp.Store(b.curb)
		}
	case b.n == len(b.curb.items): // grow
		limit := int64(b.size)
		if b.weight != nil {
			limit = b.maxWeight
		}
		c := min(int64(2*b.n), limit)
		nb := &batchItems[T]{items: make([]T, c)}
		copy(nb.items, b.curb.items[:b.n])
		b.curb = nb
		if b.timed {
			b.bufp.Store(nb)
		}
	}
	b.curb.items[b.n] = v
	if b.timed {
		if b.st.Add(1)&stSealed != 0 {
			// The drain loop took items[:n] before this item was
			// published; items[n] is past the end of what it took.
			var zero T
			b.curb.items[b.n] = zero
			b.newGen()
			return false
		}
		if b.n == 0 {
			b.armTimer()
		}
	}
	b.n++
	return true
}

// newGen starts a new, empty batch after the drain loop took the current
// one.
func (b *batchSubscriber[T]) newGen() {
	b.gen++
	b.n, b.w, b.curb = 0, 0, nil
	b.st.Store(b.gen << stGen)
}

// cut hands the current batch on (timed or weighted mode), unless the
// drain loop took it first.
func (b *batchSubscriber[T]) cut() {
	if b.n == 0 {
		return
	}
	items := b.curb.items[:b.n:b.n]
	b.lastLen = b.n
	if b.timed {
		b.stopTimer()
		st := b.st.Load()
		if st&stSealed != 0 || !b.st.CompareAndSwap(st, (b.gen+1)<<stGen) {
			b.newGen() // sealed: the drain loop has it
			return
		}
		b.gen++
	}
	b.n, b.w, b.curb = 0, 0, nil
	b.handoff(trim(items))
}

// trim returns a batch that does not pin a much larger array.
func trim[T any](items []T) []T {
	if len(items) < cap(items)/2 {
		return append([]T(nil), items...)
	}
	return items
}

// newBatch returns an empty slice for the next batch (count mode): a
// recycled one under ReuseBatches, when one is free, else a new one.
func (b *batchSubscriber[T]) newBatch() []T {
	if b.reuse {
		b.qmu.Lock()
		if n := len(b.free); n > 0 {
			s := b.free[n-1]
			b.free = b.free[:n-1]
			b.qmu.Unlock()
			return s
		}
		b.qmu.Unlock()
	}
	return make([]T, 0, min(b.size, maxInitialBatch))
}

// recycle takes back a batch the subscriber's OnNext has returned from,
// under ReuseBatches. At most batchAhead+2 slices are kept: as many as can
// be in the stage at once.
func (b *batchSubscriber[T]) recycle(batch []T) {
	clear(batch) // drop references to the items
	b.qmu.Lock()
	if len(b.free) < batchAhead+2 {
		b.free = append(b.free, batch[:0])
	}
	b.qmu.Unlock()
}

func (b *batchSubscriber[T]) handoff(batch []T) {
	b.qmu.Lock()
	b.q = append(b.q, batch)
	b.qmu.Unlock()
	b.drain()
}

// dropCurrent drops the batch being filled, after a cancel.
func (b *batchSubscriber[T]) dropCurrent() {
	if b.n == 0 {
		return
	}
	var items []T
	if b.timed {
		st := b.st.Load()
		if st&stSealed != 0 || !b.st.CompareAndSwap(st, st|stSealed) {
			b.newGen() // the drain loop took and dropped it
			return
		}
		items = b.curb.items[:b.n]
		b.newGen()
	} else if b.curb != nil {
		items = b.curb.items[:b.n]
	} else {
		items = b.cur[:b.n]
	}
	b.n, b.w, b.cur, b.curb = 0, 0, nil, nil
	b.drops.DropAll(items, flow.ReasonCancelled)
}

func (b *batchSubscriber[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	b.finishProducer(err)
}

func (b *batchSubscriber[T]) OnComplete() { b.finishProducer(nil) }

func (b *batchSubscriber[T]) finishProducer(err error) {
	if b.pclosed {
		return
	}
	b.pclosed = true
	b.stopTimer()
	if b.stopped.Load() {
		b.dropCurrent()
	} else if b.n > 0 {
		if b.timed || b.weight != nil {
			b.cut()
		} else {
			last := b.cur[:b.n:b.n]
			b.cur, b.n = nil, 0
			b.handoff(trim(last))
		}
	}
	b.err = err
	b.done.Store(true)
	b.drain()
}

// ---- timer ----

// armTimer arms the timer for the current batch. One timer serves the
// whole subscription: a fire left over from an earlier batch is told apart
// by its age, so armedAt is stored before armed, and read after it.
func (b *batchSubscriber[T]) armTimer() {
	b.armedAt.Store(int64(time.Since(b.epoch)))
	b.armed.Store(b.gen + 1)
	if t := b.timer.Load(); t != nil {
		t.Reset(b.maxWait)
	} else {
		b.timer.Store(time.AfterFunc(b.maxWait, b.onTimer))
	}
}

func (b *batchSubscriber[T]) onTimer() {
	g := b.armed.Load()
	if g == 0 || time.Since(b.epoch)-time.Duration(b.armedAt.Load()) < b.maxWait {
		return // stale: re-armed for a later batch
	}
	b.fired.Store(g)
	b.drain()
}

func (b *batchSubscriber[T]) stopTimer() {
	if t := b.timer.Load(); t != nil {
		t.Stop()
	}
}

// seal takes the partial batch from the producer (timed mode): only the
// batch of generation gen+1 when fired != 0, any batch otherwise.
func (b *batchSubscriber[T]) seal(fired uint64) ([]T, bool) {
	for {
		st := b.st.Load()
		if st&stSealed != 0 || st&stCount == 0 || (fired != 0 && st>>stGen != fired-1) {
			return nil, false
		}
		// Read the buffer before claiming it: if the claim succeeds, the
		// producer had not moved past this batch, so p is its buffer.
		p := b.bufp.Load()
		if b.st.CompareAndSwap(st, st|stSealed) {
			k := int(st & stCount)
			return trim(p.items[:k:k]), true
		}
	}
}

// ---- downstream side: Subscription and drain loop ----

// Request implements flow.Subscription: n more batches.
func (b *batchSubscriber[T]) Request(n int64) {
	b.probe.Request(n)
	if n <= 0 {
		b.badN.CompareAndSwap(noBadRequest, n)
		b.stopped.Store(true)
	} else {
		b.demand.Add(n)
	}
	b.drain()
}

// Cancel implements flow.Subscription.
func (b *batchSubscriber[T]) Cancel() {
	if b.cancelled.CompareAndSwap(false, true) {
		b.probe.End(probe.Cancelled)
		b.stopped.Store(true)
		b.drain()
	}
}

func (b *batchSubscriber[T]) drain() {
	if !b.wip.Enter() {
		return
	}
	for missed := int32(1); missed != 0; missed = b.wip.Leave(missed) {
		b.drainPass()
	}
}

// drainPass emits what it can, then requests upstream what plan allows.
// The request is made from inside the loop, so requests are serial; a
// synchronous upstream then fills at most batchAhead+1 batches before the
// loop emits them.
func (b *batchSubscriber[T]) drainPass() {
	for {
		if b.finished {
			b.dropHeld() // items that raced with the end
			return
		}
		if n := b.badN.Load(); n != noBadRequest {
			b.stop(flow.NonPositiveRequestError(n))
			return
		}
		if b.cancelled.Load() {
			b.stop(nil)
			return
		}
		if err := b.drops.Err(); err != nil {
			b.stop(err)
			return
		}
		r := b.demand.Load()
		var e int64
		interrupted := false
		for e != r {
			if b.stopped.Load() {
				interrupted = true
				break
			}
			done := b.done.Load()
			batch, ok := b.dequeue()
			if !ok && b.timed {
				if f := b.fired.Load(); f != 0 {
					batch, ok = b.seal(f)
				}
			}
			if !ok {
				if done {
					b.demand.Produced(e)
					b.terminate()
					return
				}
				break
			}
			if pr := b.probe; pr != nil {
				pr.Next()
				b.down.OnNext(batch)
				pr.Returned()
			} else {
				b.down.OnNext(batch)
			}
			e++
			b.emitted += int64(len(batch))
			if b.reuse {
				b.recycle(batch)
			}
		}
		if e != 0 {
			b.demand.Produced(e)
		}
		if interrupted {
			continue
		}
		if e == r && b.done.Load() && b.queueEmpty() {
			b.terminate()
			return
		}
		if n := b.plan(); n > 0 {
			b.up.Request(n)
			continue // a synchronous upstream has delivered meanwhile
		}
		return
	}
}

// plan returns how many more items to request upstream.
func (b *batchSubscriber[T]) plan() int64 {
	ahead := min(b.demand.Load(), batchAhead)
	if b.weight == nil {
		if b.requested == flow.Unbounded {
			return 0
		}
		if int64(b.size) > flow.Unbounded/(ahead+1) { // absurd sizes
			b.requested = flow.Unbounded
			return flow.Unbounded
		}
		target := int64(b.size) * (ahead + 1)
		if inflight := b.requested - b.emitted; inflight < target {
			b.requested += target - inflight
			return target - inflight
		}
		return 0
	}
	if b.queueLen() > ahead {
		return 0
	}
	if out := b.requested - b.arrived.Load(); out < b.prefetch {
		b.requested += b.prefetch - out
		return b.prefetch - out
	}
	return 0
}

func (b *batchSubscriber[T]) dequeue() ([]T, bool) {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	if b.qh == len(b.q) {
		return nil, false
	}
	batch := b.q[b.qh]
	b.q[b.qh] = nil
	b.qh++
	if b.qh == len(b.q) {
		b.q, b.qh = b.q[:0], 0
	}
	return batch, true
}

func (b *batchSubscriber[T]) queueLen() int64 {
	b.qmu.Lock()
	defer b.qmu.Unlock()
	return int64(len(b.q) - b.qh)
}

func (b *batchSubscriber[T]) queueEmpty() bool { return b.queueLen() == 0 }

func (b *batchSubscriber[T]) terminate() {
	s, err := b.down, b.err
	b.release()
	if err != nil {
		b.probe.End(probe.Failed)
		s.OnError(err)
	} else {
		b.probe.End(probe.Completed)
		s.OnComplete()
	}
}

// stop ends the subscription early: upstream cancelled, held items
// dropped with ReasonCancelled, err (if not nil) delivered.
func (b *batchSubscriber[T]) stop(err error) {
	b.up.Cancel()
	b.stopTimer()
	b.dropHeld()
	s := b.down
	b.release()
	if err != nil {
		b.probe.End(probe.Failed)
		s.OnError(err)
	}
}

// dropHeld drops the queued batches and, in timed mode, the partial
// batch.
func (b *batchSubscriber[T]) dropHeld() {
	for {
		batch, ok := b.dequeue()
		if !ok {
			break
		}
		b.drops.DropAll(batch, flow.ReasonCancelled)
	}
	if b.timed {
		if batch, ok := b.seal(0); ok {
			b.drops.DropAll(batch, flow.ReasonCancelled)
		}
	}
}

func (b *batchSubscriber[T]) release() {
	b.down = nil // rule 3.13
	b.finished = true
	b.stopped.Store(true)
}
