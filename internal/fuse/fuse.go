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

import (
	"context"
	"sync/atomic"

	"github.com/sluicego/sluice/internal/probe"
)

// Loop is implemented by publishers that can run their stream as a plain
// loop on the caller's goroutine.
type Loop[T any] interface {
	// FusedLoop calls yield with each item in order until the stream
	// ends or yield returns false, and returns the error the stream ends
	// with (nil when it completes or is stopped). The sink's yield
	// returns false once run.Stop is set; a stage that swallows an item
	// (Filter) checks it itself instead, so a stream stops within one
	// item of the flag being set even when nothing reaches the sink. A
	// panic in a user function propagates to the caller, as a [Panic]
	// when a stage has named it. Before calling the FusedLoop of the
	// stage above it, a stage calls run.Attach, once.
	FusedLoop(run *Run, yield func(T) bool) error
}

// Run is the state that the layers of one fused run share.
type Run struct {
	// Stop is set when the sink's context is done.
	Stop  *atomic.Bool
	ctx   context.Context
	sink  *probe.Stage // the first stage attached
	below *probe.Stage // the second: the stage the sink receives from
}

// NewRun returns a run that stops when stop is set and whose stages
// register with the monitor registry that ctx carries, if any.
func NewRun(ctx context.Context, stop *atomic.Bool) *Run { return &Run{ctx: ctx, Stop: stop} }

// Below returns the stage attached right after the first one (the stage
// the sink receives from), or nil.
func (r *Run) Below() *probe.Stage { return r.below }

// Attach registers the layer being set up as a stage of kind and name
// delivering to the layer set up before it, and returns its counters, or
// nil when the run is not monitored. A fused layer receives unbounded
// demand, which Attach records. Layers are set up from the sink upward,
// one at a time, on the sink's goroutine.
func (r *Run) Attach(kind, name string, role probe.Role) *probe.Stage {
	if r.ctx == nil || probe.FromContext(r.ctx) == nil {
		return nil
	}
	st, ctx := probe.AttachContext(r.ctx, kind, name, role)
	r.ctx = ctx
	switch {
	case r.sink == nil:
		r.sink = st
	case r.below == nil:
		r.below = st
	}
	st.Request(1<<63 - 1)
	return st
}

// End records how a monitored layer's run ended: failed when err is not
// nil or a panic is on its way (panicking), cancelled when the layer's
// downstream stopped it, completed otherwise.
func End(st *probe.Stage, err error, panicking, stopped bool) {
	switch {
	case st == nil:
	case err != nil || panicking:
		st.End(probe.Failed)
	case stopped:
		st.End(probe.Cancelled)
	default:
		st.End(probe.Completed)
	}
}

// Panic is the value a fused stage re-panics with when its user function
// panicked: Err is the error the stage would have signalled downstream
// (the *flow.PanicError wrapped with the stage name). The sink that runs
// the loop recovers it and returns Err.
type Panic struct{ Err error }
