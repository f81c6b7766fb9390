package ring

import (
	"reflect"
	"sync/atomic"
)

// SPSC is a bounded FIFO queue for exactly one producer goroutine and one
// consumer goroutine at a time (each side may move between goroutines if
// the hand-over is synchronised, as a drain loop serialised by a WIP
// counter is). It is the queue of the async boundaries, leaner than
// [Ring]: the producer publishes an item, or a batch of items ([SPSC.Put]
// then [SPSC.Publish]), with one atomic store of its tail, and the consumer publishes the room it made with one atomic store
// of its head, only when it calls [SPSC.Release] (once per batch).
// Each side caches the other's index and reads it again only when the
// cached value says full (producer) or empty (consumer), so the two
// cores share a cache line about once per batch, not once per item.
//
// Items are stored in place; nothing is allocated after NewSPSC.
type SPSC[T any] struct {
	_ [64]byte // keep the first line off whatever precedes the allocation
	// consumer side
	head       atomic.Uint64 // published position of the next item to take
	headLocal  uint64        // the consumer's own head, ahead of head until Release
	cachedTail uint64        // the last tail the consumer read
	_          [40]byte
	// producer side
	tail       atomic.Uint64 // published position of the next item to fill
	tailLocal  uint64        // the producer's own tail, ahead of tail until Publish
	cachedHead uint64        // the last head the producer read
	_          [40]byte
	// read-only after NewSPSC
	capa uint64
	mask uint64
	buf  []T
	ptrs bool // T holds pointers: Release clears the slots it frees
	_    [16]byte
}

// NewSPSC returns an empty queue that holds up to capacity items.
// capacity must be positive.
func NewSPSC[T any](capacity int) *SPSC[T] {
	if capacity <= 0 {
		panic("sluice: ring.NewSPSC: capacity <= 0")
	}
	n := uint64(1)
	for n < uint64(capacity) {
		n <<= 1
	}
	return &SPSC[T]{capa: uint64(capacity), mask: n - 1, buf: make([]T, n), ptrs: holdsPointers(reflect.TypeFor[T]())}
}

// Cap returns the capacity given to NewSPSC.
func (q *SPSC[T]) Cap() int { return int(q.capa) }

// Offer appends v and publishes it to the consumer, as Put then Publish.
// Producer only.
func (q *SPSC[T]) Offer(v T) bool {
	if !q.Put(v) {
		return false
	}
	q.tail.Store(q.tailLocal)
	return true
}

// Put appends v without publishing it, and reports true, or reports false
// when the queue holds Cap items (counting those the consumer took but
// has not released, and those not yet published). The consumer sees v
// only after Publish. Producer only.
func (q *SPSC[T]) Put(v T) bool {
	t := q.tailLocal
	if t-q.cachedHead >= q.capa {
		q.cachedHead = q.head.Load()
		if t-q.cachedHead >= q.capa {
			return false
		}
	}
	q.buf[t&q.mask] = v
	q.tailLocal = t + 1
	return true
}

// Publish makes every item Put so far visible to the consumer, with one
// atomic store. Producer only.
func (q *SPSC[T]) Publish() { q.tail.Store(q.tailLocal) }

// Poll removes and returns the oldest item; ok is false when the queue is
// empty. The room is made available to the producer only by Release,
// which also clears the slots when T holds pointers, so the queue keeps
// nothing reachable that was taken and released. Consumer only.
func (q *SPSC[T]) Poll() (v T, ok bool) {
	h := q.headLocal
	if h == q.cachedTail {
		q.cachedTail = q.tail.Load()
		if h == q.cachedTail {
			return v, false
		}
	}
	i := h & q.mask
	v = q.buf[i]
	q.headLocal = h + 1
	return v, true
}

// Release makes the room of every item taken by Poll available to the
// producer. Consumer only.
func (q *SPSC[T]) Release() {
	h := q.head.Load()
	if h == q.headLocal {
		return
	}
	if q.ptrs { // one clear per batch instead of a store per item
		from, to := h&q.mask, q.headLocal&q.mask
		if from < to {
			clear(q.buf[from:to])
		} else {
			clear(q.buf[from:])
			clear(q.buf[:to])
		}
	}
	q.head.Store(q.headLocal)
}

// HoldsPointers reports whether values of T contain pointers that a
// buffer slot must drop to let the garbage collector reclaim them.
func HoldsPointers[T any]() bool { return holdsPointers(reflect.TypeFor[T]()) }

// holdsPointers reports whether values of t contain pointers that a
// queue slot must drop to let the garbage collector reclaim them.
func holdsPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && holdsPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	default: // pointers, strings, slices, maps, channels, funcs, interfaces
		return true
	}
}

// Empty reports whether the consumer would find the queue empty. Consumer
// only.
func (q *SPSC[T]) Empty() bool {
	if q.headLocal != q.cachedTail {
		return false
	}
	q.cachedTail = q.tail.Load()
	return q.headLocal == q.cachedTail
}

// Len returns the number of published items in the queue, taken but
// unreleased ones included. It may be called from any goroutine and is exact when both
// sides are idle.
func (q *SPSC[T]) Len() int {
	h := q.head.Load()
	return int(q.tail.Load() - h)
}

// PutRun appends as many of items as fit, without publishing them, and
// returns how many it appended (all of them unless the queue filled up).
// It copies in at most two runs. Producer only.
func (q *SPSC[T]) PutRun(items []T) int {
	t := q.tailLocal
	free := q.capa - (t - q.cachedHead)
	if free < uint64(len(items)) {
		q.cachedHead = q.head.Load()
		free = q.capa - (t - q.cachedHead)
	}
	n := min(uint64(len(items)), free)
	i := t & q.mask
	k := uint64(copy(q.buf[i:min(i+n, uint64(len(q.buf)))], items[:n]))
	copy(q.buf, items[k:n])
	q.tailLocal = t + n
	return int(n)
}

// PollRun takes up to max published items that sit next to each other in
// the queue (it stops at the wrap-around) and returns them as a slice of
// the queue's own storage, empty when the queue is empty. The slice stays
// valid until Release, which makes its room available to the producer.
// Consumer only.
func (q *SPSC[T]) PollRun(max int) []T {
	h := q.headLocal
	if h == q.cachedTail {
		q.cachedTail = q.tail.Load()
		if h == q.cachedTail {
			return nil
		}
	}
	i := h & q.mask
	n := min(q.cachedTail-h, uint64(max), uint64(len(q.buf))-i)
	q.headLocal = h + n
	return q.buf[i : i+n : i+n]
}
