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

// Run is the state that the layers of one fused run share.
type Run struct {
	// Stop is set when the sink's context is done.
	Stop *atomic.Bool
	ctx  context.Context

	// The monitored stages, in the order they attached: the sink first,
	// the source last. See Publish.
	chain []link

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

// link is one monitored stage of a run and how its delivered count
// follows from the count of the stage above it.
type link struct {
	st      *probe.Stage
	rejects *int64 // items it received and did not pass on (Filter), or nil
	own     *int64 // items it emitted, when they are not the items it received (Batch), or nil
}

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
	r.chain = append(r.chain, link{st: st})
	st.Request(1<<63 - 1)
	return st
}

// CountRejects tells the run that the stage st, just attached, passes on
// what it receives less *rejects, a count its closure keeps.
func (r *Run) CountRejects(st *probe.Stage, rejects *int64) {
	r.chain[len(r.chain)-1] = link{st: st, rejects: rejects}
}

// CountOwn tells the run that the stage st, just attached, emits *own
// items, a count its closure keeps (Batch emits batches).
func (r *Run) CountOwn(st *probe.Stage, own *int64) {
	r.chain[len(r.chain)-1] = link{st: st, own: own}
}

// Due reports whether a monitored source that has emitted k items should
// call Publish now: every 1024 items, or when a monitor read asked for
// fresh figures. Sources ask once per run of 64 items.
func (r *Run) Due(k int64) bool {
	return k&1023 == 0 || r.chain[len(r.chain)-1].st.Refreshed()
}

// Publish sets the delivered count of every monitored stage of the run
// from n, the number of items the source has emitted: a stage delivers
// what the stage above it delivered, less what it rejected, or what it
// counted itself. The source calls it between items, when none is in
// flight, so the counts are exact; that is what lets the layers of a
// fused run count nothing per item but their rejections.
func (r *Run) Publish(n int64) {
	d := n
	for i := len(r.chain) - 1; i >= 0; i-- {
		l := r.chain[i]
		switch {
		case l.own != nil:
			d = *l.own
		case l.rejects != nil:
			d -= *l.rejects
		}
		l.st.Set(d)
	}
}

// End records the outcome of the run on every monitored stage: failed
// when err is not nil or a panic ended it, cancelled when the sink
// stopped it, completed otherwise.
func (r *Run) End(err error, panicked, stopped bool) {
	st := probe.Completed
	switch {
	case err != nil || panicked:
		st = probe.Failed
	case stopped:
		st = probe.Cancelled
	}
	for _, l := range r.chain {
		l.st.End(st)
	}
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
