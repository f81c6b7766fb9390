package flow

import "sync/atomic"

// AddCap returns a + b, saturated at [Unbounded]. Both must be >= 0.
// It is the demand arithmetic of rule 3.17.
func AddCap(a, b int64) int64 {
	if s := a + b; s >= a && s >= 0 {
		return s
	}
	return Unbounded
}

// Demand is an atomic counter of outstanding demand. The zero value is no
// demand. It is goroutine-safe, and its methods do not allocate.
//
// Besides counting, Demand can serve as the work-in-progress token of a
// source's emission loop, as in Reactor: the caller whose [Demand.Add]
// moves the counter from zero owns the loop, and keeps emitting until
// [Demand.Produced] brings it back to zero. Any Request that arrives
// meanwhile, including one made from inside OnNext, only adds to the
// counter and returns, so recursion depth stays at one (rule 3.3).
type Demand struct {
	n atomic.Int64
}

// Add adds n (> 0) to the demand, saturating at Unbounded, and returns the
// previous value. A return of zero means the caller moved the demand off
// zero. Adding to Unbounded leaves it Unbounded.
func (d *Demand) Add(n int64) (prev int64) {
	for {
		cur := d.n.Load()
		if cur == Unbounded {
			return cur
		}
		if d.n.CompareAndSwap(cur, AddCap(cur, n)) {
			return cur
		}
	}
}

// Produced subtracts n emitted items and returns the demand left. Once the
// demand is Unbounded it stays Unbounded and Produced returns Unbounded.
// The caller must not subtract more than it was given.
func (d *Demand) Produced(n int64) int64 {
	for {
		cur := d.n.Load()
		if cur == Unbounded {
			return cur
		}
		if d.n.CompareAndSwap(cur, cur-n) {
			return cur - n
		}
	}
}

// Load returns the outstanding demand.
func (d *Demand) Load() int64 { return d.n.Load() }

// WIP is a work-in-progress counter that serialises a drain loop: many
// goroutines may signal that there is work, exactly one of them runs the
// loop, and no signal is lost. The zero value is ready to use; it does not
// allocate. Typical use:
//
//	if !w.Enter() {
//		return // the goroutine in the loop will see our work
//	}
//	for missed := int32(1); missed != 0; missed = w.Leave(missed) {
//		// drain everything that is ready
//	}
//
// A call that re-enters from inside the loop (a Request made in OnNext)
// fails to Enter and returns, so the loop is never recursive.
type WIP struct {
	n atomic.Int32
}

// Enter records one unit of work and reports whether the caller must run
// the drain loop.
func (w *WIP) Enter() bool { return w.n.Add(1) == 1 }

// Leave subtracts the work the loop has seen and returns the work that
// arrived meanwhile; the loop must run again while that is non-zero.
func (w *WIP) Leave(missed int32) int32 { return w.n.Add(-missed) }

// Active reports whether a drain loop is running or about to run.
func (w *WIP) Active() bool { return w.n.Load() != 0 }
