package operators

import (
	"fmt"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
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

type mapLoop[T, R any] struct {
	*mapPublisher[T, R]
	loop fuse.Loop[T]
}

func (m mapLoop[T, R]) FusedLoop(stop *atomic.Bool, yield func(R) bool) error {
	inUser := false
	defer guard(m.name, &inUser)
	f := m.f
	return m.loop.FusedLoop(stop, func(v T) bool {
		inUser = true
		r := f(v)
		inUser = false
		return yield(r)
	})
}

type mapErrLoop[T, R any] struct {
	*mapErrPublisher[T, R]
	loop fuse.Loop[T]
}

func (m mapErrLoop[T, R]) FusedLoop(stop *atomic.Bool, yield func(R) bool) error {
	inUser := false
	defer guard(m.name, &inUser)
	f := m.f
	var failed error
	err := m.loop.FusedLoop(stop, func(v T) bool {
		inUser = true
		r, err := f(v)
		inUser = false
		if err != nil {
			failed = fmt.Errorf("%s: %w", m.name, err)
			return false
		}
		return yield(r)
	})
	if failed != nil {
		return failed
	}
	return err
}

type filterLoop[T any] struct {
	*filterPublisher[T]
	loop fuse.Loop[T]
}

func (m filterLoop[T]) FusedLoop(stop *atomic.Bool, yield func(T) bool) error {
	inUser := false
	defer guard(m.name, &inUser)
	keep := m.keep
	return m.loop.FusedLoop(stop, func(v T) bool {
		inUser = true
		k := keep(v)
		inUser = false
		if !k {
			return !stop.Load() // a rejected item: check the stop flag here, as no one downstream will
		}
		return yield(v)
	})
}

type tapLoop[T any] struct {
	*tapPublisher[T]
	loop fuse.Loop[T]
}

func (m tapLoop[T]) FusedLoop(stop *atomic.Bool, yield func(T) bool) error {
	inUser := false
	defer guard(m.name, &inUser)
	fn := m.fn
	return m.loop.FusedLoop(stop, func(v T) bool {
		inUser = true
		fn(v)
		inUser = false
		return yield(v)
	})
}
