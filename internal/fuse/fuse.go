// Package fuse lets a sink run a synchronous pipeline as one plain loop.
//
// A publisher whose whole stream can be produced on the caller's goroutine
// with no side effects of its own (Range, Slice, and Map, MapErr, Filter
// and Tap over them) implements [Loop]. A sink that finds a Loop runs it
// directly instead of subscribing: the items, their order, the errors and
// the panics are exactly those the subscription would deliver under
// unbounded demand, but each item costs a few function calls instead of an
// OnNext per stage, each under its own deferred recover; a panic is
// attributed to its stage from the stack, after the fact. This is Reactor's
// macro-fusion idea, applied only where it cannot be observed: stateless,
// synchronous, cold publishers.
package fuse

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
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
	// panic in a user function propagates to the caller, which recovers
	// it and asks [Run.Attribute] for the stage to name. Before calling
	// the FusedLoop of the stage above it, a stage calls run.Attach once
	// and passes its per-item closure through [Layer].
	FusedLoop(run *Run, yield func(T) bool) error
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

// Run is the state that the layers of one fused run share.
type Run struct {
	// Stop is set when the sink's context is done.
	Stop  *atomic.Bool
	ctx   context.Context
	sink  *probe.Stage // the first stage attached
	below *probe.Stage // the second: the stage the sink receives from

	// The per-item closures of the layers, from the sink upward, for
	// attributing a panic to its stage (see Attribute).
	layers []layer
}

type layer struct {
	entry uintptr       // code address of the closure
	name  string        // stage name; "" for the sink
	pick  func() string // for a closure that runs two stages' functions: which one ran last
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

// Layer records fn, the closure through which the stage called name
// receives each item and calls its user function, and returns it. The
// sink records its own closure with name "". Layers are recorded from the
// sink upward, as they are set up.
//
// A fused run has no per-item panic guard: a panic unwinds to the sink,
// which calls Attribute to find the stage whose user function raised it.
// That is what lets a layer cost only its calls.
func Layer[T any](r *Run, name string, fn func(T) bool) func(T) bool {
	r.layers = append(r.layers, layer{entry: reflect.ValueOf(fn).Pointer(), name: name})
	return fn
}

// LayerPair is Layer for a closure that runs the user functions of two
// stages (Map then Filter, fused): pick, called only after a panic, names
// the stage whose function the closure entered last.
func LayerPair[T any](r *Run, pick func() string, fn func(T) bool) func(T) bool {
	r.layers = append(r.layers, layer{entry: reflect.ValueOf(fn).Pointer(), pick: pick})
	return fn
}

// Attribute returns the error for v, a value just recovered from a panic
// of the run, by the deferred function that recovered it (the panicking
// frames are still on the stack then): a *flow.PanicError, wrapped with
// the name of the stage whose user function panicked, or bare when the
// sink's own function (or no layer) did.
//
// The layers' closures call one another, from the source's loop to the
// sink, so the frames just below the panic are the panicking layer's
// closure and, under it, consecutively, the closures of every layer
// nearer the source. Counting them gives the layer's place in the chain,
// even when two layers share code (Map over Map).
func (r *Run) Attribute(v any) error {
	err := flow.NewPanicError(v)
	if name := r.panicked(); name != "" {
		return fmt.Errorf("%s: %w", name, err)
	}
	return err
}

func (r *Run) panicked() string {
	entries := make(map[uintptr]bool, len(r.layers))
	for _, l := range r.layers {
		entries[l.entry] = true
	}
	pcs := make([]uintptr, 256)
	pcs = pcs[:runtime.Callers(2, pcs)]
	frames := runtime.CallersFrames(pcs)
	depth, seenPanic := 0, false
	for {
		f, more := frames.Next()
		switch {
		case !seenPanic:
			seenPanic = f.Function == "runtime.gopanic"
		case entries[f.Entry]:
			depth++
		case depth > 0:
			more = false // the chain of closures has ended
		}
		if !more {
			break
		}
	}
	if depth == 0 || depth > len(r.layers) {
		return ""
	}
	l := r.layers[len(r.layers)-depth]
	if l.pick != nil {
		return l.pick()
	}
	return l.name
}
