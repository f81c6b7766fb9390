// Package fuse lets a sink run a synchronous pipeline as one plain loop.
//
// A publisher whose whole stream can be produced on the caller's goroutine
// with no side effects of its own (Range, Slice, and Map, MapErr, Filter
// and Tap over them) implements [Loop]. A sink that finds a Loop runs it
// directly instead of subscribing: the items, their order, the errors and
// the panics are exactly those the subscription would deliver under
// unbounded demand, but each item costs a few function calls instead of an
// OnNext per stage, each under its own deferred recover. This is Reactor's
// macro-fusion idea, applied only where it cannot be observed: stateless,
// synchronous, cold publishers.
package fuse

import "sync/atomic"

// Loop is implemented by publishers that can run their stream as a plain
// loop on the caller's goroutine.
type Loop[T any] interface {
	// FusedLoop calls yield with each item in order until the stream
	// ends or yield returns false, and returns the error the stream ends
	// with (nil when it completes or is stopped). The sink's yield
	// returns false once stop is set; a stage that swallows an item
	// (Filter) checks stop itself instead, so a stream stops within one
	// item of stop being set even when nothing reaches the sink. A panic
	// in a user function propagates to the caller, as a [Panic] when a
	// stage has named it.
	FusedLoop(stop *atomic.Bool, yield func(T) bool) error
}

// Panic is the value a fused stage re-panics with when its user function
// panicked: Err is the error the stage would have signalled downstream
// (the *flow.PanicError wrapped with the stage name). The sink that runs
// the loop recovers it and returns Err.
type Panic struct{ Err error }
