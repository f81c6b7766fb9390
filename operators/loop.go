package operators

import (
	"fmt"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/internal/probe"
)

// Loop fusion. Map, MapErr, Filter and Tap applied to a publisher that can
// run as a plain loop (Range, Slice, or one of these stages over them; see
// internal/fuse) return a publisher that can run as a plain loop too. A
// sink that finds one runs the whole chain as nested function calls under
// one deferred recover per stage per run, instead of one OnNext and one
// deferred recover per stage per item. Subscribing to it works exactly as
// for the unfused stage, and the fused loop delivers the same items and
// ends with the same error: a failure or panic in a user function is
// wrapped with the stage's name, as the subscription path does.

// guard turns a panic in the user function of stage name into a
// fuse.Panic carrying the error the subscription path would signal. It is
// deferred once per loop run; inUser tells whether the panic came from
// this stage's function or passed through it from downstream.
func guard(name string, inUser *bool) {
	if !*inUser {
		return // not ours: let it propagate unchanged
	}
	if v := recover(); v != nil {
		panic(fuse.Panic{Err: fmt.Errorf("%s: %w", name, flow.NewPanicError(v))})
	}
}

// Each layer registers with the run's monitor, if any, and counts the
// items it passes down in the same closure: unmonitored, that costs one
// nil test per item; monitored, an increment and a load (probe.Stage.Next).
// stopped records that the layer's downstream ended the run (its yield
// returned false), which the layer reports as a cancellation.

type mapLoop[T, R any] struct {
	*mapPublisher[T, R]
	loop fuse.Loop[T]
}

func (m mapLoop[T, R]) FusedLoop(run *fuse.Run, yield func(R) bool) (err error) {
	inUser := false
	defer guard(m.name, &inUser)
	st := run.Attach("map", m.name, probe.Operator)
	var fin, stopped bool
	defer func() { endLoop(st, err, fin, stopped) }()
	f := m.f
	err = m.loop.FusedLoop(run, func(v T) bool {
		inUser = true
		r := f(v)
		inUser = false
		if st != nil {
			st.Next()
			stopped = !yield(r)
			return !stopped
		}
		return yield(r)
	})
	fin = true
	return err
}

type mapErrLoop[T, R any] struct {
	*mapErrPublisher[T, R]
	loop fuse.Loop[T]
}

func (m mapErrLoop[T, R]) FusedLoop(run *fuse.Run, yield func(R) bool) (err error) {
	inUser := false
	defer guard(m.name, &inUser)
	st := run.Attach("maperr", m.name, probe.Operator)
	var fin, stopped bool
	defer func() { endLoop(st, err, fin, stopped) }()
	f := m.f
	var failed error
	err = m.loop.FusedLoop(run, func(v T) bool {
		inUser = true
		r, err := f(v)
		inUser = false
		if err != nil {
			failed = fmt.Errorf("%s: %w", m.name, err)
			return false
		}
		if st != nil {
			st.Next()
			stopped = !yield(r)
			return !stopped
		}
		return yield(r)
	})
	fin = true
	if failed != nil {
		return failed
	}
	return err
}

type filterLoop[T any] struct {
	*filterPublisher[T]
	loop fuse.Loop[T]
}

func (m filterLoop[T]) FusedLoop(run *fuse.Run, yield func(T) bool) (err error) {
	inUser := false
	defer guard(m.name, &inUser)
	st := run.Attach("filter", m.name, probe.Operator)
	var fin, stopped bool
	defer func() { endLoop(st, err, fin, stopped) }()
	keep := m.keep
	err = m.loop.FusedLoop(run, func(v T) bool {
		inUser = true
		k := keep(v)
		inUser = false
		if !k {
			return !run.Stop.Load() // a rejected item: check the stop flag here, as no one downstream will
		}
		if st != nil {
			st.Next()
			stopped = !yield(v)
			return !stopped
		}
		return yield(v)
	})
	fin = true
	return err
}

type tapLoop[T any] struct {
	*tapPublisher[T]
	loop fuse.Loop[T]
}

func (m tapLoop[T]) FusedLoop(run *fuse.Run, yield func(T) bool) (err error) {
	inUser := false
	defer guard(m.name, &inUser)
	st := run.Attach("tap", m.name, probe.Operator)
	var fin, stopped bool
	defer func() { endLoop(st, err, fin, stopped) }()
	fn := m.fn
	err = m.loop.FusedLoop(run, func(v T) bool {
		inUser = true
		fn(v)
		inUser = false
		if st != nil {
			st.Next()
			stopped = !yield(v)
			return !stopped
		}
		return yield(v)
	})
	fin = true
	return err
}

// endLoop records a monitored layer's outcome. fin is false when the
// layer's loop did not return (a panic is on its way: a failure).
func endLoop(st *probe.Stage, err error, fin, stopped bool) {
	if st != nil {
		st.Flush()
		fuse.End(st, err, !fin, stopped)
	}
}
