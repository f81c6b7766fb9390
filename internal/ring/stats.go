package ring

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
)

// NumReasons bounds the flow.DropReason values: counters are indexed by
// reason, and index 0 is unused.
const NumReasons = int(flow.ReasonError) + 1

// Counters are the per-stage counts of the accounting identity
// produced = delivered + dropped + buffered. They are updated with atomic
// adds, without locks; a Stats snapshot is exact when the stage is
// quiescent.
type Counters struct {
	Produced  atomic.Int64
	Delivered atomic.Int64
	Dropped   [NumReasons]atomic.Int64
}

// Lener is what a Stats registry needs from a live buffer.
type Lener interface{ Len() int }

// Stats is the accounting of one stage across all its subscriptions:
// counters plus a registry of the buffers that are live, whose lengths
// make up Buffered. Registering and unregistering take a mutex, once per
// subscription; nothing per item does.
type Stats struct {
	Counters
	mu   sync.Mutex
	live map[Lener]struct{}
}

// Register adds a live buffer.
func (s *Stats) Register(b Lener) {
	s.mu.Lock()
	if s.live == nil {
		s.live = make(map[Lener]struct{})
	}
	s.live[b] = struct{}{}
	s.mu.Unlock()
}

// Unregister removes a buffer that will hold nothing any more.
func (s *Stats) Unregister(b Lener) {
	s.mu.Lock()
	delete(s.live, b)
	s.mu.Unlock()
}

// Snapshot is a copy of a stage's counters.
type Snapshot struct {
	Produced, Delivered, Buffered int64
	Dropped                       [NumReasons]int64
}

// Snapshot reads the counters and the length of every live buffer.
func (s *Stats) Snapshot() Snapshot {
	var out Snapshot
	for i := range out.Dropped {
		out.Dropped[i] = s.Dropped[i].Load()
	}
	out.Delivered = s.Delivered.Load()
	s.mu.Lock()
	for b := range s.live {
		out.Buffered += int64(b.Len())
	}
	s.mu.Unlock()
	out.Produced = s.Produced.Load()
	return out
}

// DroppedMap returns the non-zero drop counts by reason, or nil when
// nothing was dropped.
func (s Snapshot) DroppedMap() map[flow.DropReason]int64 {
	var m map[flow.DropReason]int64
	for i, n := range s.Dropped {
		if n != 0 {
			if m == nil {
				m = make(map[flow.DropReason]int64)
			}
			m[flow.DropReason(i)] = n
		}
	}
	return m
}

// Drops counts dropped items by reason and hands each to the stage's
// OnDrop hook, serially: the hook may be called from the producer's and
// from the consumer's goroutine, so calls are serialised by a mutex,
// which is taken only when a hook is set. A hook that panics is recovered:
// the panic is kept (see Err) for the stage to end the stream with, and
// the hook is not called again; later drops are still counted.
type Drops[T any] struct {
	hook   func(T, flow.DropReason)
	name   string
	counts *[NumReasons]atomic.Int64
	mu     sync.Mutex
	broken atomic.Bool
	err    atomic.Pointer[error]
	probe  atomic.Pointer[probe.Stage] // monitor counters, nil when not monitored
}

// SetProbe makes d count its drops into st too. Call it before the first
// Drop.
func (d *Drops[T]) SetProbe(st *probe.Stage) { d.probe.Store(st) }

// Init sets the hook (nil for none), the stage name used in errors, and
// the counters to add to.
func (d *Drops[T]) Init(hook func(T, flow.DropReason), name string, counts *[NumReasons]atomic.Int64) {
	d.hook, d.name, d.counts = hook, name, counts
}

// Drop counts v as dropped for reason r and calls the hook.
func (d *Drops[T]) Drop(v T, r flow.DropReason) {
	d.counts[r].Add(1)
	d.probe.Load().Drop(r)
	if d.hook == nil || d.broken.Load() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken.Load() {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("sluice: %s: OnDrop hook: %w", d.name, flow.NewPanicError(p))
			d.err.CompareAndSwap(nil, &err)
			d.broken.Store(true)
		}
	}()
	d.hook(v, r)
}

// DropAll drops every item of vs for reason r.
func (d *Drops[T]) DropAll(vs []T, r flow.DropReason) {
	for _, v := range vs {
		d.Drop(v, r)
	}
}

// Err returns the error that wraps the hook's panic (a *flow.PanicError),
// or nil if the hook has not panicked.
func (d *Drops[T]) Err() error {
	if p := d.err.Load(); p != nil {
		return *p
	}
	return nil
}
