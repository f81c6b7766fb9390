// Package ring holds the bounded buffer shared by the stages that queue
// items between a producer and a consumer: a lock-free ring ([Ring]), the
// overflow-policy buffer with its drain loop ([Buffer]), drop accounting
// ([Drops], [Stats]) and a serialiser for calls to an upstream
// subscription ([Upstream]).
package ring

import (
	"runtime"
	"sync/atomic"
)

// Ring is a bounded FIFO queue for one producer and one consumer, in which
// the producer may also take the oldest item (to evict it under
// DropOldest). Items are stored in place, so the ring does not allocate
// after New.
//
// Push must be called by one goroutine at a time (the producer); Pop may
// be called by the consumer and by the producer concurrently. Each slot
// carries a sequence number (Vyukov's bounded queue): a slot is published
// to the consumer by its sequence, and released back to the producer only
// after the item was read, so an item is never overwritten while it is
// being taken. Push costs one atomic store, Pop one compare-and-swap and
// one atomic store.
type Ring[T any] struct {
	head  atomic.Uint64 // next position to take
	_     [56]byte
	tail  uint64 // next position to fill; the producer's own
	_     [56]byte
	capa  uint64
	mask  uint64
	slots []slot[T]
}

type slot[T any] struct {
	// seq is p when the slot is free for position p, p+1 when it holds
	// the item of position p.
	seq atomic.Uint64
	val T
}

// New returns an empty ring that holds up to capacity items. capacity must
// be positive.
func New[T any](capacity int) *Ring[T] {
	if capacity <= 0 {
		panic("sluice: ring.New: capacity <= 0")
	}
	// At least capacity+1 slots: with a full ring, the slot the producer
	// fills next is never the one the consumer is reading.
	n := uint64(1)
	for n < uint64(capacity)+1 {
		n <<= 1
	}
	r := &Ring[T]{capa: uint64(capacity), mask: n - 1, slots: make([]slot[T], n)}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

// Cap returns the capacity given to New.
func (r *Ring[T]) Cap() int { return int(r.capa) }

// Push appends v and reports true, or reports false when the ring holds
// Cap items. Producer only.
func (r *Ring[T]) Push(v T) bool {
	t := r.tail
	if t-r.head.Load() >= r.capa {
		return false
	}
	s := &r.slots[t&r.mask]
	// The previous occupant of this slot has been claimed (head is past
	// it); wait for its reader to release it. The reader holds it for a
	// few instructions and runs no user code meanwhile.
	for s.seq.Load() != t {
		runtime.Gosched()
	}
	s.val = v
	s.seq.Store(t + 1)
	r.tail = t + 1
	return true
}

// Pop removes and returns the oldest item; ok is false when the ring is
// empty. It may be called by the consumer and by the producer.
func (r *Ring[T]) Pop() (v T, ok bool) {
	for {
		h := r.head.Load()
		s := &r.slots[h&r.mask]
		if s.seq.Load() != h+1 {
			if r.head.Load() != h {
				continue // someone else took position h; look again
			}
			return v, false
		}
		if r.head.CompareAndSwap(h, h+1) {
			v = s.val
			var zero T
			s.val = zero
			s.seq.Store(h + r.mask + 1)
			return v, true
		}
	}
}

// Empty reports whether the ring holds no published item.
func (r *Ring[T]) Empty() bool {
	for {
		h := r.head.Load()
		if r.slots[h&r.mask].seq.Load() == h+1 {
			return false
		}
		if r.head.Load() == h {
			return true
		}
	}
}

// Len returns the number of items in the ring. It may be called from any
// goroutine; it is exact when the producer and the consumer are idle, and
// costs O(log Cap) atomic loads. While they are not, it never counts fewer
// items than the ring held when Len was called, less those taken since.
func (r *Ring[T]) Len() int {
	for {
		h := r.head.Load()
		n := r.lenFrom(h)
		// An item taken meanwhile frees its slot, which would read as a
		// gap in the published prefix: look again from the new head.
		if r.head.Load() == h {
			return n
		}
	}
}

// lenFrom counts the published positions from h, given that no item is
// taken meanwhile.
func (r *Ring[T]) lenFrom(h uint64) int {
	// Published positions form a prefix [h, tail) of [h, h+Cap]: find
	// its end by binary search on the slots' sequence numbers.
	if !r.published(h) {
		return 0
	}
	lo, hi := h+1, h+r.capa // answer in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		if r.published(mid) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return int(lo - h)
}

func (r *Ring[T]) published(p uint64) bool {
	return r.slots[p&r.mask].seq.Load() == p+1
}
