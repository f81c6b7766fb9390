package sinks

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
)

// ErrProtocol is the error, or the cause of the error, that [All] yields
// when its upstream breaks the Reactive Streams protocol in a way that
// would corrupt the stream: an OnNext beyond the demand All signalled
// (rule 1.1). Upstream is cancelled. The other sinks replenish their
// demand from inside OnNext, so an upstream cannot exceed it; every sink
// ignores signals that arrive after the stream has ended.
var ErrProtocol = errors.New("sluice: upstream broke the protocol")

// errBeyondDemand is built once: the check is on the per-item path.
var errBeyondDemand = fmt.Errorf("%w: OnNext beyond requested demand (rule 1.1)", ErrProtocol)

// All returns an iterator over the items of pub, for a range loop:
//
//	for v, err := range sinks.All(ctx, pub) {
//		if err != nil {
//			return err
//		}
//		use(v)
//	}
//
// Each item is yielded with a nil error, in order. If pub fails, its
// error is yielded once, as (zero, err), and the loop ends; if pub
// completes, the loop ends with no error. When ctx is done, upstream is
// cancelled and (zero, ctx.Err()) is yielded once, without the items that
// were still queued; if ctx is already done when the loop starts, that is
// all it yields. Breaking out of the loop (or a panic in its body)
// cancels upstream. An upstream that emits beyond the demand yields an
// error that matches [ErrProtocol].
//
// Each range over the iterator subscribes to pub afresh, with its own
// queue and demand, as a second call to [Collect] would; the iterator
// holds no state between loops and may be ranged over concurrently.
//
// Demand and queue: items are handed from OnNext, which may run on any
// goroutine, to the loop through a bounded single-producer
// single-consumer queue of prefetch slots (default 256, see [Prefetch]).
// The loop requests prefetch when it subscribes and, after consuming
// limit = prefetch − prefetch/4 items, requests limit more from its own
// goroutine; with a synchronous upstream that Request refills the queue
// on the loop's goroutine, so nothing crosses goroutines. A loop that
// finds the queue empty parks on a channel, and the producer wakes it
// only then, not per item. [Unbounded] panics: the queue is bounded. The
// subscriber passed upstream has a Context method that returns ctx.
//
// Cost: per item, an atomic store and two atomic loads on the producer's
// side and an atomic load on the loop's; a wake-up only when the loop had
// to wait. A loop allocates the queue, a channel and the subscriber once.
// Over a synchronous range source a loop measured about 14 ns per item.
func All[T any](ctx context.Context, pub flow.Publisher[T], opts ...Option) iter.Seq2[T, error] {
	c := newConfig("All", ctx, pub, opts)
	if c.unbounded {
		panic("sluice: All: Unbounded is not supported (the queue is bounded); use Prefetch")
	}
	prefetch, limit := c.demand(DefaultPrefetch)
	return func(yield func(T, error) bool) {
		if ctx.Err() != nil {
			var zero T
			yield(zero, context.Cause(ctx))
			return
		}
		s := newPuller[T](ctx, prefetch, limit)
		s.watch(ctx)
		defer s.stop()
		pub.Subscribe(s)
		s.loop(yield)
	}
}

// puller is the subscriber of one range loop over All. The producer side
// (OnNext, OnError, OnComplete) writes the ring and the tail; the
// consumer side (loop) reads them. The demand the loop has granted is
// what makes a slot free again: the producer writes slot t only while
// t < granted, and granted is raised only after the items that used the
// slot before have been consumed and cleared.
type puller[T any] struct {
	base // state, subscription handshake, cancellation, Context

	// Shared.
	tail    atomic.Uint64 // items published by the producer
	parked  atomic.Bool   // the loop is parked, or about to park, on wake
	granted atomic.Int64  // total demand the loop has signalled
	wake    chan struct{} // 1-buffered: a token per wake-up
	ctxDone <-chan struct{}
	buf     []T
	mask    uint64

	// The producer's.
	ptail        uint64 // its own copy of tail
	grantedCache int64  // granted, as last loaded

	_ [64]byte // keep the producer's fields and the loop's apart

	// The loop's. The demand arithmetic uses base.limit.
	head          uint64 // next slot to read
	ctail         uint64 // tail, as last loaded
	consumedBatch int64  // items consumed since the last Request
	grantedByLoop int64  // its own copy of granted
}

func newPuller[T any](ctx context.Context, prefetch, limit int64) *puller[T] {
	size := uint64(1) << bits.Len64(uint64(prefetch-1)) // a power of two >= prefetch
	s := &puller[T]{
		wake:          make(chan struct{}, 1),
		ctxDone:       ctx.Done(),
		buf:           make([]T, size),
		mask:          size - 1,
		grantedCache:  prefetch,
		grantedByLoop: prefetch,
	}
	s.granted.Store(prefetch)
	s.base.init(ctx, prefetch, limit)
	return s
}

// OnNext queues item for the loop.
func (s *puller[T]) OnNext(item T) {
	if s.state.Load() != running {
		return
	}
	t := s.ptail
	if int64(t) == s.grantedCache {
		if s.grantedCache = s.granted.Load(); int64(t) == s.grantedCache {
			if s.finish(errBeyondDemand) {
				s.sub.Cancel()
			}
			return
		}
	}
	s.buf[t&s.mask] = item
	s.ptail = t + 1
	s.tail.Store(t + 1)
	if s.parked.Load() {
		s.unpark()
	}
}

// OnError ends the stream with err once the loop has drained the queue.
// OnError(nil) panics (rule 2.13).
func (s *puller[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	s.finish(err)
}

// OnComplete ends the stream once the loop has drained the queue.
func (s *puller[T]) OnComplete() { s.finish(nil) }

func (s *puller[T]) finish(err error) bool {
	if !s.state.CompareAndSwap(running, finishing) {
		return false
	}
	s.err = err
	s.state.Store(finished)
	if s.parked.Load() {
		s.unpark()
	}
	return true
}

// unpark wakes the loop if it is still parked. The loop takes the token
// whenever it loses the race for parked, so the send never blocks; the
// select only guards against a bug turning into a deadlock.
func (s *puller[T]) unpark() {
	if s.parked.CompareAndSwap(true, false) {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// loop runs on the range loop's goroutine.
func (s *puller[T]) loop(yield func(T, error) bool) {
	var zero T
	for {
		st := s.state.Load()
		if st == cancelled {
			yield(zero, context.Cause(s.ctx))
			return
		}
		v, ok := s.poll()
		if !ok {
			if st == finished { // loaded before poll: the queue is drained
				if s.err != nil {
					yield(zero, s.err)
				}
				return
			}
			s.park()
			continue
		}
		if !yield(v, nil) {
			return
		}
		if s.consumedBatch++; s.consumedBatch == s.limit {
			s.consumedBatch = 0
			if s.state.Load() == running { // no Request after the end (rule 2.4)
				s.grantedByLoop = flow.AddCap(s.grantedByLoop, s.limit)
				s.granted.Store(s.grantedByLoop)
				s.sub.Request(s.limit)
			}
		}
	}
}

// poll takes the next item off the queue and clears its slot.
func (s *puller[T]) poll() (T, bool) {
	var zero T
	h := s.head
	if h == s.ctail {
		if s.ctail = s.tail.Load(); h == s.ctail {
			return zero, false
		}
	}
	i := h & s.mask
	v := s.buf[i]
	s.buf[i] = zero
	s.head = h + 1
	return v, true
}

// park waits until the producer has published an item or ended the
// stream, or ctx is done. The producer publishes, then looks at parked;
// the loop sets parked, then looks again: one of them sees the other.
func (s *puller[T]) park() {
	s.parked.Store(true)
	if st := s.state.Load(); s.tail.Load() != s.head || st == finished || st == cancelled {
		if s.parked.CompareAndSwap(true, false) {
			return
		}
		// The producer claimed the wake-up: its token is in the channel
		// or on its way.
	}
	select {
	case <-s.wake:
	case <-s.ctxDone:
		s.cancel()
	}
}

// stop ends the loop's subscription: it cancels upstream if the stream is
// still running (break, or a panic in the loop body) and stops watching
// ctx.
func (s *puller[T]) stop() {
	s.cancel()
	s.unwatch()
}
