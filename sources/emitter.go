package sources

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
)

// ErrClosed is returned by [Emitter.Emit] once the emitter takes no more
// items: after Complete or Fail, after its subscriber cancelled, or after
// a Fail-policy overflow.
var ErrClosed = errors.New("sluice: emitter closed")

// ErrSubscribed is signalled, through OnError, to a second subscriber of
// an [Emitter]'s publisher: an emitter delivers each item once, to a
// single subscriber.
var ErrSubscribed = errors.New("sluice: emitter already has a subscriber")

// EmitResult is the answer of [Emitter.TryEmit].
type EmitResult uint8

const (
	// Accepted: the item is buffered for the subscriber (under
	// DropOldest, possibly after evicting the oldest buffered item).
	Accepted EmitResult = iota
	// Dropped: the buffer was full and the policy dropped the item
	// (DropNewest; Fail, which also ends the stream). The item was
	// counted and passed to the OnDrop hook.
	Dropped
	// Full: under Block, the buffer was full. The item was not taken, not
	// counted and not passed to the hook: it is still the caller's, who
	// may retry, wait with Emit, or drop it.
	Full
	// Closed: the emitter takes no more items (see ErrClosed). The item
	// was counted as dropped with flow.ReasonClosed and passed to the
	// OnDrop hook.
	Closed
)

// String returns the result's name, such as "Dropped".
func (r EmitResult) String() string {
	switch r {
	case Accepted:
		return "Accepted"
	case Dropped:
		return "Dropped"
	case Full:
		return "Full"
	case Closed:
		return "Closed"
	}
	return "EmitResult(" + strconv.Itoa(int(r)) + ")"
}

// EmitterStats is the accounting of an [Emitter]. Once producers and
// subscriber are quiescent,
//
//	Produced = Delivered + Σ Dropped + Buffered
//
// holds exactly, for every policy.
type EmitterStats struct {
	// Produced counts the items passed to TryEmit and Emit, except those
	// handed back (Full, or Emit returning ctx.Err()).
	Produced int64
	// Delivered counts the items passed to the subscriber's OnNext.
	Delivered int64
	// Buffered is the number of items held right now.
	Buffered int64
	// Dropped counts the items that were not delivered, by reason; nil
	// when nothing was dropped.
	Dropped map[flow.DropReason]int64
}

// TotalDropped returns the sum of s.Dropped.
func (s EmitterStats) TotalDropped() int64 {
	var n int64
	for _, d := range s.Dropped {
		n += d
	}
	return n
}

// Emitter is a hot source: producers that cannot be slowed down (events,
// HTTP requests, tickers) push items into it, and its [Emitter.Publisher]
// delivers them to one subscriber as that subscriber demands, through a
// buffer of fixed capacity governed by an overflow policy:
//
//   - [flow.Block]: a full buffer refuses items; TryEmit answers Full and
//     Emit waits for room.
//   - [flow.DropNewest]: a full buffer drops the incoming item.
//   - [flow.DropOldest]: a full buffer evicts its oldest item.
//   - [flow.Fail]: a full buffer drops the incoming item and ends the
//     stream with an error that matches flow.ErrOverflow, after the
//     buffered items.
//
// Items emitted before the subscriber arrives are buffered. Every item
// not delivered is counted by reason (see Stats) and passed to the OnDrop
// hook.
//
// An Emitter is safe for concurrent producers: TryEmit, Emit, Complete
// and Fail serialise on a mutex, held for a few atomic operations (and
// for the OnDrop hook when an item is dropped). Delivery to the subscriber
// runs in a drain loop without locks, on the goroutine of whoever got
// there first: a producer that just emitted, or the subscriber's Request;
// never two at once, and never with a producer's lock held, so OnNext may
// call TryEmit.
type Emitter[T any] struct {
	mu      sync.Mutex
	buf     *ring.Buffer[T]
	stats   ring.Stats
	policy  flow.Overflow
	name    string
	room    chan struct{} // closed and replaced when room may have appeared
	waiters atomic.Int32  // Emit calls waiting for room
	done    chan struct{} // closed once the subscription is over
	ended   bool          // done is closed; guarded by mu
	sub     atomic.Bool
}

// NewEmitter returns an emitter whose buffer holds up to capacity items
// and applies policy when full. capacity <= 0 or an unknown policy
// panics.
func NewEmitter[T any](capacity int, policy flow.Overflow, opts ...Option) *Emitter[T] {
	cfg, name := newConfig("emitter", opts)
	return newEmitter[T](capacity, policy, cfg, name, "NewEmitter")
}

func newEmitter[T any](capacity int, policy flow.Overflow, cfg stage.Config, name, fn string) *Emitter[T] {
	if capacity <= 0 {
		panic("sluice: " + fn + ": capacity <= 0")
	}
	if !policy.Valid() {
		panic(fmt.Sprintf("sluice: %s: invalid policy %v", fn, policy))
	}
	e := &Emitter[T]{
		policy: policy,
		name:   name,
		room:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	e.buf = ring.NewBuffer(ring.Config[T]{
		Capacity:   capacity,
		Policy:     policy,
		Name:       name,
		Hook:       stage.DropHook[T](&cfg, name),
		Stats:      &e.stats,
		LateReason: flow.ReasonClosed,
		OnRoom:     e.onRoom,
	})
	return e
}

// TryEmit offers v without waiting and says what became of it (see
// [EmitResult]). It costs a mutex acquisition and a few atomic
// operations, and may deliver buffered items to the subscriber before
// returning. Goroutine-safe.
func (e *Emitter[T]) TryEmit(v T) EmitResult {
	e.mu.Lock()
	r := e.buf.Offer(v)
	e.mu.Unlock()
	e.buf.Signal()
	return EmitResult(r)
}

// Emit offers v, waiting for room under [flow.Block] until the buffer has
// room, the emitter closes or ctx is done; under the other policies it
// does not wait. It returns:
//
//   - nil when v was accepted, or dropped by the DropNewest policy (the
//     counters and the OnDrop hook saw it; TryEmit tells the two apart);
//   - an error that matches flow.ErrOverflow when v overflowed a Fail
//     emitter, which ends the stream;
//   - ErrClosed when the emitter takes no more items (v is counted as
//     dropped with flow.ReasonClosed and passed to the hook, as with
//     TryEmit);
//   - ctx.Err() when ctx is done first. Then v was not taken, not counted
//     and not hooked: nothing is left half-done.
//
// When there is room, Emit succeeds even if ctx is already done, like
// semaphore.Acquire. Goroutine-safe.
func (e *Emitter[T]) Emit(ctx context.Context, v T) error {
	for {
		e.mu.Lock()
		r := e.buf.Offer(v)
		if r == ring.Full {
			// Announce the wait, then look again: either this second
			// offer sees the room, or the drain loop that makes the room
			// sees the waiter and wakes it.
			e.waiters.Add(1)
			if r = e.buf.Offer(v); r != ring.Full {
				e.waiters.Add(-1)
			}
		}
		if r != ring.Full {
			e.mu.Unlock()
			e.buf.Signal()
			switch EmitResult(r) {
			case Closed:
				return ErrClosed
			case Dropped:
				if e.policy == flow.Fail {
					return fmt.Errorf("%w: %s", flow.ErrOverflow, e.name)
				}
			}
			return nil
		}
		room := e.room
		e.mu.Unlock()
		select {
		case <-room:
			e.waiters.Add(-1)
		case <-ctx.Done():
			e.waiters.Add(-1)
			return ctx.Err()
		}
	}
}

// Complete ends the stream: the subscriber receives the buffered items,
// then OnComplete (without waiting for demand once the buffer is empty).
// Later emits answer Closed. Idempotent; after Fail it does nothing.
// Goroutine-safe.
func (e *Emitter[T]) Complete() {
	e.mu.Lock()
	e.buf.Finish(nil)
	e.wakeLocked()
	e.mu.Unlock()
	e.buf.Signal()
}

// Fail ends the stream with err, which the subscriber receives after the
// buffered items. Later emits answer Closed. After Complete or Fail it
// does nothing. err must not be nil. Goroutine-safe.
func (e *Emitter[T]) Fail(err error) {
	if err == nil {
		panic("sluice: Emitter.Fail: nil error")
	}
	e.mu.Lock()
	e.buf.Finish(err)
	e.wakeLocked()
	e.mu.Unlock()
	e.buf.Signal()
}

// Done returns a channel that is closed when the subscription is over:
// the subscriber cancelled, or received its terminal signal. A producer
// can select on it to stop producing.
func (e *Emitter[T]) Done() <-chan struct{} { return e.done }

// Stats returns the emitter's accounting. It is goroutine-safe, takes no
// lock of the emitter's and costs O(log capacity) atomic loads.
func (e *Emitter[T]) Stats() EmitterStats {
	s := e.stats.Snapshot()
	return EmitterStats{
		Produced:  s.Produced,
		Delivered: s.Delivered,
		Buffered:  s.Buffered,
		Dropped:   s.DroppedMap(),
	}
}

// Publisher returns the emitter's publisher. It accepts a single
// subscriber, since the emitter delivers each item once: a second
// Subscribe is refused with OnSubscribe then OnError(ErrSubscribed)
// (fan-out belongs to a broadcasting stage). The subscriber receives the
// items buffered so far, then the rest as it requests them. Its
// Subscription is goroutine-safe; Cancel drops the buffered items with
// flow.ReasonCancelled and closes the emitter.
func (e *Emitter[T]) Publisher() flow.Publisher[T] { return emitterPublisher[T]{e} }

type emitterPublisher[T any] struct{ e *Emitter[T] }

func (p emitterPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	if !p.e.sub.CompareAndSwap(false, true) {
		flow.Reject(s, fmt.Errorf("%w: %s", ErrSubscribed, p.e.name))
		return
	}
	st, _ := probe.Attach(s, "emitter", p.e.name, probe.HotSource)
	p.e.buf.SetProbe(st)
	p.e.buf.Attach(s)
}

// onRoom runs in the drain loop after it took items out of the buffer,
// and when the subscription ends: it wakes the Emit calls waiting for
// room, and closes Done at the end.
func (e *Emitter[T]) onRoom() {
	ended := e.buf.Stopped()
	if e.waiters.Load() == 0 && !ended {
		return
	}
	e.mu.Lock()
	e.wakeLocked()
	if ended && !e.ended {
		e.ended = true
		close(e.done)
	}
	e.mu.Unlock()
}

// wakeLocked wakes the Emit calls waiting for room, so that they look
// again. e.mu must be held.
func (e *Emitter[T]) wakeLocked() {
	close(e.room)
	e.room = make(chan struct{})
}
