package sources_test

import (
	"sync"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
)

// emResult is "complete", "error: <message>", or "open": how the stream
// that s subscribed to has ended so far.
func emResult[T any](s *flowtest.Subscriber[T]) string {
	switch {
	case s.Completed():
		return "complete"
	case s.Err() != nil:
		return "error: " + s.Err().Error()
	}
	return "open"
}

// emTimes returns when each item that s received arrived, as offsets
// from start (exact under testing/synctest).
func emTimes[T any](s *flowtest.Subscriber[T], start time.Time) []time.Duration {
	var out []time.Duration
	for _, at := range s.ItemTimes() {
		out = append(out, at.Sub(start))
	}
	return out
}

type emDrop[T any] struct {
	Item   T
	Reason flow.DropReason
}

// emDrops is an OnDrop hook that records every drop.
type emDrops[T any] struct {
	mu    sync.Mutex
	drops []emDrop[T]
}

func (d *emDrops[T]) Hook(v T, r flow.DropReason) {
	d.mu.Lock()
	d.drops = append(d.drops, emDrop[T]{v, r})
	d.mu.Unlock()
}

func (d *emDrops[T]) All() []emDrop[T] {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]emDrop[T](nil), d.drops...)
}

func (d *emDrops[T]) Counts() map[flow.DropReason]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var m map[flow.DropReason]int64
	for _, x := range d.drops {
		if m == nil {
			m = map[flow.DropReason]int64{}
		}
		m[x.Reason]++
	}
	return m
}

func emDropsOf(r flow.DropReason, items ...int) []emDrop[int] {
	var out []emDrop[int]
	for _, v := range items {
		out = append(out, emDrop[int]{v, r})
	}
	return out
}
