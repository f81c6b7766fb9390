package operators

import (
	"fmt"
	"sync/atomic"

	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/internal/probe"
)

// Loop fusion. Map, MapErr, Filter and Tap applied to a publisher that can
// run as a plain loop (Range, Slice, or one of these stages over them; see
// internal/fuse) return a publisher that can run as a plain loop too. A
// sink that finds one runs the whole chain as nested function calls under
// one deferred recover, the sink's, instead of one OnNext and one deferred
// recover per stage per item. Subscribing to it works exactly as
// for the unfused stage, and the fused loop delivers the same items and
// ends with the same error: a failure or panic in a user function is
// wrapped with the stage's name, as the subscription path does.

// Each layer registers with the run's monitor, if any, and passes its
// per-item closure through fuse.Layer, so that a panic in its user
// function is attributed to it (see fuse.Run.Attribute): the closures
// carry no panic guard and no counter. A monitored run counts at its
// source only; a layer that does not pass on every item counts what it
// rejects, on the rejecting path, and fuse.Run.Publish derives every
// stage's delivered count from those (see internal/fuse).
//
// Map, MapErr, Filter and Tap loops report the bound of their source loop
// as theirs (fuse.Bounded): one item out per item in, or fewer. FlatMap
// runs an inner publisher inline only under that bound (flatmap.go).

type mapLoop[T, R any] struct {
	*mapPublisher[T, R]
	loop fuse.Loop[T]
}

// FusedBound returns the bound of the source loop (see fuse.Bounded).
func (m mapLoop[T, R]) FusedBound() (int64, bool) { return fuse.BoundOf(m.loop) }

func (m mapLoop[T, R]) FusedLoop(run *fuse.Run, yield func(R) bool) error {
	f := m.f
	run.Attach("map", m.name, probe.Operator)
	return m.loop.FusedLoop(run, fuse.Layer(run, m.name, func(v T) bool { return yield(f(v)) }))
}

// fusedLoopFiltered runs Filter(Map(…)) as one layer: f then keep in one
// closure, which records nothing per item: a panic is attributed to f or
// keep from the stack (fuse.LayerCalls). Over a Range, the closure is the
// loop itself (fuse.RangeLoop), which saves the closure call per item of
// the source's loop. Together the two took the chain Range → Map →
// Filter → Reduce from about 6.2 to 5.4 ns per item (pinned to one core,
// medians of 10; see docs/benchmarks.md).
func (m mapLoop[T, R]) fusedLoopFiltered(run *fuse.Run, keep func(R) bool, keepName string, yield func(R) bool) error {
	// The closure captures one pointer: Go spills every captured value
	// that is live across a call, so one pointer and a few loads beat six
	// captured values (about 1 ns per item).
	ps := &pairState[T, R]{f: m.f, keep: keep, yield: yield, stop: run.Stop}
	if fst := run.Attach("filter", keepName, probe.Operator); fst != nil { // downstream first
		run.CountRejects(fst, &ps.rejects)
	}
	run.Attach("map", m.name, probe.Operator)
	calls := fuse.Calls{Funcs: []any{m.f, keep}, Names: []string{m.name, keepName}}
	if calls.Distinct() {
		if rl, ok := m.loop.(fuse.RangeLoop); ok {
			if f, ok := any(m.f).(func(int) R); ok {
				return rl.FusedRange(run, fuse.LayerCalls(run, calls, ps.rangeBody(f)))
			}
		}
		if sl, ok := m.loop.(fuse.SliceLoop[T]); ok {
			return sl.FusedSlice(run, fuse.LayerCalls(run, calls, ps.sliceBody()))
		}
		return m.loop.FusedLoop(run, fuse.LayerCalls(run, calls, func(v T) bool {
			r := ps.f(v)
			if ps.keep(r) {
				return ps.yield(r)
			}
			ps.rejects++
			return !ps.stop.Load()
		}))
	}
	// f and keep share their code (reflect.MakeFunc): record which one
	// runs, in two stores per item.
	pick := func() string {
		if ps.phase == 1 {
			return m.name
		}
		return keepName
	}
	return m.loop.FusedLoop(run, fuse.LayerPair(run, pick, func(v T) bool {
		ps.phase = 1
		r := ps.f(v)
		ps.phase = 2
		if ps.keep(r) {
			return ps.yield(r)
		}
		ps.rejects++
		return !ps.stop.Load()
	}))
}

// rangeBody returns the loop of a fused Filter(Map(…)) over a Range: f
// is ps.f, known to take ints. It checks the stop flag once per run for
// the items keep rejects (the sink's yield checks it for the others).
func (ps *pairState[T, R]) rangeBody(f func(int) R) func(lo, hi int) (int, bool) {
	return func(lo, hi int) (int, bool) {
		for i := lo; i < hi; i++ {
			r := f(i)
			if ps.keep(r) {
				if !ps.yield(r) {
					return i + 1, false
				}
			} else {
				ps.rejects++
			}
		}
		return hi, !ps.stop.Load()
	}
}

// sliceBody is rangeBody over a run of a slice's items. It returns a
// closure, not a method value, so that the layer's frame is the one that
// calls f and keep (a method value adds a wrapper frame).
func (ps *pairState[T, R]) sliceBody() func(items []T) (int, bool) {
	return func(items []T) (int, bool) {
		for i, v := range items {
			r := ps.f(v)
			if ps.keep(r) {
				if !ps.yield(r) {
					return i + 1, false
				}
			} else {
				ps.rejects++
			}
		}
		return len(items), !ps.stop.Load()
	}
}

// pairState is what the closure of a fused Filter(Map(…)) works with.
type pairState[T, R any] struct {
	f       func(T) R
	keep    func(R) bool
	yield   func(R) bool
	stop    *atomic.Bool
	phase   int   // 1 while f runs, 2 from keep on: which stage a panic came from
	rejects int64 // items keep rejected, for the monitor
}

type mapErrLoop[T, R any] struct {
	*mapErrPublisher[T, R]
	loop fuse.Loop[T]
}

// FusedBound returns the bound of the source loop (see fuse.Bounded).
func (m mapErrLoop[T, R]) FusedBound() (int64, bool) { return fuse.BoundOf(m.loop) }

func (m mapErrLoop[T, R]) FusedLoop(run *fuse.Run, yield func(R) bool) error {
	f := m.f
	if st := run.Attach("maperr", m.name, probe.Operator); st != nil {
		var failedItems int64 // the item it failed on is not passed on
		run.CountRejects(st, &failedItems)
		var failed error
		err := m.loop.FusedLoop(run, fuse.Layer(run, m.name, func(v T) bool {
			r, err := f(v)
			if err != nil {
				failed = fmt.Errorf("%s: %w", m.name, err)
				failedItems++
				return false
			}
			return yield(r)
		}))
		if failed != nil {
			return failed
		}
		return err
	}
	var failed error
	err := m.loop.FusedLoop(run, fuse.Layer(run, m.name, func(v T) bool {
		r, err := f(v)
		if err != nil {
			failed = fmt.Errorf("%s: %w", m.name, err)
			return false
		}
		return yield(r)
	}))
	if failed != nil {
		return failed
	}
	return err
}

type filterLoop[T any] struct {
	*filterPublisher[T]
	loop fuse.Loop[T]
}

// mapFilterer is a fused Map that can take a Filter into its own
// closure: Filter(Map(…)) then costs one closure per item, not two.
type mapFilterer[T any] interface {
	fusedLoopFiltered(run *fuse.Run, keep func(T) bool, keepName string, yield func(T) bool) error
}

// FusedBound returns the bound of the source loop (see fuse.Bounded).
func (m filterLoop[T]) FusedBound() (int64, bool) { return fuse.BoundOf(m.loop) }

func (m filterLoop[T]) FusedLoop(run *fuse.Run, yield func(T) bool) error {
	if mf, ok := m.loop.(mapFilterer[T]); ok {
		return mf.fusedLoopFiltered(run, m.keep, m.name, yield)
	}
	keep, stop := m.keep, run.Stop
	var rejects int64
	if st := run.Attach("filter", m.name, probe.Operator); st != nil {
		run.CountRejects(st, &rejects)
	}
	return m.loop.FusedLoop(run, fuse.Layer(run, m.name, func(v T) bool {
		if keep(v) {
			return yield(v)
		}
		rejects++
		return !stop.Load() // a rejected item: check the stop flag here, as no one downstream will
	}))
}

type tapLoop[T any] struct {
	*tapPublisher[T]
	loop fuse.Loop[T]
}

// FusedBound returns the bound of the source loop (see fuse.Bounded).
func (m tapLoop[T]) FusedBound() (int64, bool) { return fuse.BoundOf(m.loop) }

func (m tapLoop[T]) FusedLoop(run *fuse.Run, yield func(T) bool) error {
	fn := m.fn
	run.Attach("tap", m.name, probe.Operator)
	return m.loop.FusedLoop(run, fuse.Layer(run, m.name, func(v T) bool { fn(v); return yield(v) }))
}

// batchLoop is Batch by size only (maxWait == 0) over a fused loop: a
// sink runs it as a loop that appends each item to the current batch and
// hands the batch on when full, and the partial batch at the end. Under
// a fused run demand is unbounded, so no batch waits, and there is no
// timer to observe: that is why only the untimed Batch fuses.
type batchLoop[T any] struct {
	*batchPublisher[T]
	loop fuse.Loop[T]
}

func (m batchLoop[T]) FusedLoop(run *fuse.Run, yield func([]T) bool) error {
	size, reuse, stop := m.size, m.reuse, run.Stop
	var emitted int64
	if st := run.Attach("batch", m.name, probe.Operator); st != nil {
		run.CountOwn(st, &emitted)
	}
	// The batch being filled: a slice of size items (or of the initial
	// capacity, growing, for sizes past maxInitialBatch) and a count, so
	// that an item costs a store and an increment.
	f := &batchFill[T]{buf: make([]T, min(size, maxInitialBatch))}
	stopped := false
	emit := func() bool {
		full := f.buf[:f.n:f.n]
		emitted++
		if stopped = !yield(full); stopped {
			return false
		}
		if reuse {
			clear(full)
		} else {
			f.buf = make([]T, min(size, maxInitialBatch))
		}
		f.n = 0
		return true
	}
	err := m.loop.FusedLoop(run, fuse.Layer(run, m.name, func(v T) bool {
		if f.n == len(f.buf) { // past maxInitialBatch: grow
			nb := make([]T, min(2*len(f.buf), size))
			copy(nb, f.buf)
			f.buf = nb
		}
		f.buf[f.n] = v
		if f.n++; f.n < size {
			return !stop.Load()
		}
		return emit()
	}))
	if !stopped && f.n > 0 && !stop.Load() {
		emit() // the partial batch, before an upstream error too, as subscribed
	}
	return err
}

type batchFill[T any] struct {
	buf []T
	n   int
}
