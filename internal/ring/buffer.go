package ring

import (
	"fmt"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
)

// Result is the outcome of Buffer.Offer.
type Result uint8

const (
	// Accepted: the item is buffered (under DropOldest, possibly after
	// evicting the oldest one).
	Accepted Result = iota
	// Dropped: the item was counted as dropped and handed to the hook
	// (DropNewest; Fail, which also ends the stream).
	Dropped
	// Full: under Block, there was no room. The item was not taken and
	// not counted; it is still the caller's.
	Full
	// Closed: the buffer was finished or cancelled; the item was counted
	// as dropped with Config.LateReason and handed to the hook.
	Closed
)

// Config configures a Buffer.
type Config[T any] struct {
	// Capacity is the ring's size; it must be positive.
	Capacity int
	// Policy is applied when an item arrives at a full ring.
	Policy flow.Overflow
	// Name is the stage name, used in errors.
	Name string
	// Hook is the OnDrop hook, or nil.
	Hook func(T, flow.DropReason)
	// Stats receives the counts. Required.
	Stats *Stats
	// Up is the upstream subscription of a stage, nil for a hot source.
	// Under Block the buffer requests Prefetch items from it at Attach
	// and Limit more each time Limit items have been delivered, from its
	// drain loop; under the other policies it requests flow.Unbounded at
	// Attach, once.
	Up *Upstream
	// Prefetch and Limit: see Up. Prefetch must not exceed Capacity.
	Prefetch, Limit int64
	// LateReason is the reason for items offered after the buffer was
	// finished or cancelled.
	LateReason flow.DropReason
	// OnRoom, if set, is called by the drain loop after it took items out
	// of the ring, and once when the subscription ends.
	OnRoom func()
	// Probe receives the monitor counters of the stage, or is nil.
	Probe *probe.Stage
}

const noBad = 1 // Buffer.badN when no non-positive request was seen

// Buffer.cutReason: how the subscription was cut short, if it was.
const (
	cutCancel   = 1 // the subscriber cancelled
	cutComplete = 2 // CompleteNow
)

// Buffer is a bounded buffer with an overflow policy between one producer
// and one subscriber: the producer calls Offer and Finish serially; the
// subscriber receives the Buffer as its Subscription. Delivery runs in a
// drain loop serialised by a flow.WIP, on the goroutine of whoever
// signalled work: the producer that offered an item, or the subscriber's
// Request. Items are delivered in order; a terminal signal comes after
// every buffered item has been delivered (an error too, like Reactor's
// delayError), except that a cancel, a non-positive request, a hook panic
// or CompleteNow ends the stream at once, dropping what is buffered with
// ReasonCancelled.
type Buffer[T any] struct {
	cfg   Config[T]
	ring  *Ring[T]
	drops Drops[T]
	stats *Stats

	probe     atomic.Pointer[probe.Stage]
	down      flow.Subscriber[T] // owned by the drain loop once attached
	attached  atomic.Bool
	demand    flow.Demand
	wip       flow.WIP
	cutReason atomic.Int32 // cutCancel or cutComplete once the subscription is cut short
	badN      atomic.Int64
	stopped   atomic.Bool // cut short, bad request, hook panic or ended: take nothing more
	done      atomic.Bool // the producer finished; err is set
	err       error

	// producer-owned
	closed bool

	// drain-owned
	started  bool
	finished bool
	consumed int64
}

// NewBuffer returns a buffer that counts into cfg.Stats from now on (items
// offered before Attach are buffered and count as Buffered).
func NewBuffer[T any](cfg Config[T]) *Buffer[T] {
	b := &Buffer[T]{cfg: cfg, ring: New[T](cfg.Capacity), stats: cfg.Stats}
	b.drops.Init(cfg.Hook, cfg.Name, &cfg.Stats.Dropped)
	b.SetProbe(cfg.Probe)
	b.badN.Store(noBad)
	b.stats.Register(b.ring)
	return b
}

// SetProbe makes the buffer count into st (nil: stop counting). A hot
// source whose buffer exists before its subscriber calls it when the
// subscriber arrives, before Attach.
func (b *Buffer[T]) SetProbe(st *probe.Stage) {
	st.SetLen(b.ring.Len)
	b.drops.SetProbe(st)
	b.probe.Store(st)
}

// Attach makes s the subscriber: it calls s.OnSubscribe(b), makes the
// initial upstream request, and delivers what is ready (a terminal signal
// does not wait for demand).
func (b *Buffer[T]) Attach(s flow.Subscriber[T]) {
	b.down = s
	// Nothing is delivered before OnSubscribe has returned (rule 1.3): a
	// Request made inside it only adds demand, and a producer that
	// signals meanwhile finds the buffer not attached yet. The drain
	// below delivers what is due.
	s.OnSubscribe(b)
	b.attached.Store(true)
	if up := b.cfg.Up; up != nil && b.cfg.Policy != flow.Block {
		// The only request this buffer makes; made outside the drain loop
		// so that a synchronous upstream's items are delivered as they
		// come while downstream has demand.
		up.Request(flow.Unbounded)
	}
	b.drain() // under Block, makes the initial request
}

// Len returns the number of buffered items.
func (b *Buffer[T]) Len() int { return b.ring.Len() }

// Offer hands v to the buffer and applies the overflow policy when the
// ring is full. Producer only. Offer, Overflow and Finish never deliver
// anything themselves (so a producer may call them under its own lock):
// the caller must call Signal afterwards, outside any lock.
func (b *Buffer[T]) Offer(v T) Result {
	b.stats.Produced.Add(1)
	if b.closed || b.stopped.Load() {
		b.drop(v, b.cfg.LateReason)
		return Closed
	}
	if b.ring.Push(v) {
		return Accepted
	}
	switch b.cfg.Policy {
	case flow.DropNewest:
		b.drop(v, flow.ReasonNewest)
		return Dropped
	case flow.DropOldest:
		for {
			if old, ok := b.ring.Pop(); ok {
				b.drop(old, flow.ReasonOldest)
			}
			if b.ring.Push(v) {
				return Accepted
			}
		}
	case flow.Fail:
		b.stats.Produced.Add(-1) // Overflow counts it
		b.Overflow(v, fmt.Errorf("%w: %s (capacity %d)", flow.ErrOverflow, b.cfg.Name, b.cfg.Capacity))
		return Dropped
	}
	b.stats.Produced.Add(-1)
	return Full
}

// Emit is Offer followed by Signal, for a producer that holds no lock of
// its own. When downstream has demand, nothing is buffered and no drain
// loop is running, v goes straight to the subscriber, without touching
// the ring.
func (b *Buffer[T]) Emit(v T) Result {
	if b.closed || b.demand.Load() == 0 || !b.attached.Load() || !b.wip.Enter() {
		r := b.Offer(v)
		b.Signal()
		return r
	}
	// This goroutine owns the drain loop. Look at the demand again: a
	// drain loop that ran between the check above and Enter may have used
	// it up.
	var r Result
	if !b.finished && !b.stopped.Load() && b.demand.Load() != 0 && b.ring.Empty() {
		b.stats.Produced.Add(1)
		b.down.OnNext(v)
		if !b.stopped.Load() {
			b.consumedOne()
		}
		b.delivered(1)
		r = Accepted
	} else {
		r = b.Offer(v)
		b.drainPass()
	}
	for missed := b.wip.Leave(1); missed != 0; missed = b.wip.Leave(missed) {
		b.drainPass()
	}
	return r
}

// Overflow counts v as produced and dropped with ReasonOverflow, and
// finishes the buffer with err: what is buffered is still delivered, then
// err. The upstream, if any, is cancelled. Producer only.
func (b *Buffer[T]) Overflow(v T, err error) {
	b.stats.Produced.Add(1)
	b.drop(v, flow.ReasonOverflow)
	if b.cfg.Up != nil {
		b.cfg.Up.Cancel()
	}
	b.Finish(err)
}

// Finish ends the producer's side: after the buffered items, the
// subscriber receives OnError(err), or OnComplete when err is nil. Later
// offers are dropped with LateReason. Producer only; idempotent.
func (b *Buffer[T]) Finish(err error) {
	if b.closed {
		return
	}
	b.closed = true
	b.err = err
	b.probe.Load().UpstreamDone()
	b.done.Store(true)
}

// Stopped reports whether the buffer takes no more items: the subscriber
// cancelled or made a non-positive request, the hook panicked, or the
// subscription ended.
func (b *Buffer[T]) Stopped() bool { return b.stopped.Load() }

// Request implements flow.Subscription.
func (b *Buffer[T]) Request(n int64) {
	b.probe.Load().Request(n)
	if n <= 0 {
		b.badN.CompareAndSwap(noBad, n)
		b.stopped.Store(true)
	} else {
		b.demand.Add(n)
	}
	b.drain()
}

// Cancel implements flow.Subscription.
func (b *Buffer[T]) Cancel() {
	if b.cutReason.CompareAndSwap(0, cutCancel) {
		b.probe.Load().End(probe.Cancelled)
		b.stopped.Store(true)
		b.drain()
	}
}

// CompleteNow ends the subscription at once, from any goroutine: what is
// buffered is dropped with ReasonCancelled, upstream (if any) is
// cancelled, the subscriber receives OnComplete without waiting for
// demand, and later offers are dropped with LateReason. It does nothing
// once the subscriber has cancelled or the subscription has ended.
func (b *Buffer[T]) CompleteNow() {
	if b.cutReason.CompareAndSwap(0, cutComplete) {
		b.stopped.Store(true)
		b.drain()
	}
}

func (b *Buffer[T]) drop(v T, r flow.DropReason) {
	b.drops.Drop(v, r)
	if b.drops.Err() != nil {
		b.stopped.Store(true)
	}
}

// Signal runs the drain loop if it may have something to do, after Offer,
// Overflow or Finish. The producer's push and the subscriber's demand.Add
// are both sequentially consistent, so either Signal sees the demand or
// the loop started by Request sees the item.
func (b *Buffer[T]) Signal() {
	if b.demand.Load() != 0 || b.stopped.Load() || b.done.Load() {
		b.drain()
	}
}

func (b *Buffer[T]) drain() {
	if !b.wip.Enter() {
		return
	}
	for missed := int32(1); missed != 0; missed = b.wip.Leave(missed) {
		if b.attached.Load() {
			b.drainPass()
		}
	}
}

func (b *Buffer[T]) drainPass() {
	for {
		if b.finished {
			b.dropBuffered() // items that raced with the end
			return
		}
		if n := b.badN.Load(); n != noBad {
			b.stop(flow.NonPositiveRequestError(n))
			return
		}
		if b.cutReason.Load() != 0 {
			b.stop(nil)
			return
		}
		if err := b.drops.Err(); err != nil {
			b.stop(err)
			return
		}
		if !b.started {
			b.started = true
			if b.cfg.Up != nil && b.cfg.Policy == flow.Block {
				b.cfg.Up.Request(b.cfg.Prefetch)
				continue // look at the stop conditions again
			}
		}
		r := b.demand.Load()
		var e int64
		interrupted := false
		for e != r {
			if b.cutReason.Load() != 0 || b.badN.Load() != noBad {
				interrupted = true
				break
			}
			done := b.done.Load()
			v, ok := b.ring.Pop()
			if !ok {
				if done {
					b.delivered(e)
					b.terminate()
					return
				}
				break
			}
			if st := b.probe.Load(); st != nil {
				st.Next()
				b.down.OnNext(v)
				st.Returned()
			} else {
				b.down.OnNext(v)
			}
			e++
			if b.stopped.Load() {
				interrupted = true
				break
			}
			b.consumedOne()
		}
		b.delivered(e)
		if st := b.probe.Load(); st != nil {
			st.Flush()
		}
		if interrupted {
			continue
		}
		if e == r && b.done.Load() && b.ring.Empty() {
			b.terminate()
		}
		return
	}
}

// consumedOne counts a delivered item towards the Block policy's next
// replenishing request.
func (b *Buffer[T]) consumedOne() {
	// Once upstream has finished, its subscription is over (rule 2.4): no
	// more requests, even while the buffered items are being delivered.
	if b.cfg.Limit > 0 && !b.done.Load() {
		if b.consumed++; b.consumed == b.cfg.Limit {
			b.consumed = 0
			b.cfg.Up.Request(b.cfg.Limit)
		}
	}
}

func (b *Buffer[T]) delivered(e int64) {
	if e == 0 {
		return
	}
	b.demand.Produced(e)
	b.stats.Delivered.Add(e)
	if b.cfg.OnRoom != nil {
		b.cfg.OnRoom()
	}
}

// terminate delivers the producer's terminal signal.
func (b *Buffer[T]) terminate() {
	s, err := b.down, b.err
	b.release()
	if err != nil {
		b.probe.Load().End(probe.Failed)
		s.OnError(err)
	} else {
		b.probe.Load().End(probe.Completed)
		s.OnComplete()
	}
}

// stop ends the subscription early: upstream cancelled, buffered items
// dropped with ReasonCancelled, and err delivered, or OnComplete after
// CompleteNow (nothing after a cancel).
func (b *Buffer[T]) stop(err error) {
	if b.cfg.Up != nil {
		b.cfg.Up.Cancel()
	}
	b.dropBuffered()
	s := b.down
	b.release()
	switch {
	case err != nil:
		b.probe.Load().End(probe.Failed)
		s.OnError(err)
	case b.cutReason.Load() == cutComplete:
		b.probe.Load().End(probe.Completed)
		s.OnComplete()
	}
}

func (b *Buffer[T]) dropBuffered() {
	for {
		v, ok := b.ring.Pop()
		if !ok {
			return
		}
		b.drops.Drop(v, flow.ReasonCancelled)
	}
}

// release drops the reference to the subscriber (rule 3.13).
func (b *Buffer[T]) release() {
	b.down = nil
	b.finished = true
	b.stopped.Store(true)
	b.stats.Unregister(b.ring)
	if b.cfg.OnRoom != nil {
		b.cfg.OnRoom()
	}
}
