package sources_test

import (
	"sync"

	"github.com/sluicego/sluice/flow"
)

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
