// Package fuse lets a sink run a synchronous pipeline as one plain loop.
//
// A publisher whose whole stream can be produced on the caller's goroutine
// with no other side effects (Range, Slice, and transforms over them)
// implements [Loop]. A sink that finds a Loop runs it directly instead of
// subscribing: the items, their order, the errors and the panics are
// exactly those the subscription would deliver under unbounded demand, but
// each item costs a function call instead of an OnNext through the
// protocol. This is Reactor's macro-fusion idea, applied where it can be
// proved invisible: only stateless, synchronous, cold publishers implement
// Loop.
package fuse

// Loop is implemented by publishers that can run their stream as a plain
// loop on the caller's goroutine.
type Loop[T any] interface {
	// FusedLoop calls yield with each item in order until the stream
	// ends or yield returns false, and returns the error the stream
	// would end with (nil when it completes or yield stops it). A panic in
	// a user function propagates to the caller.
	FusedLoop(yield func(T) bool) error
}
