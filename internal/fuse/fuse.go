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
	// item of the flag being set even when nothing reaches the sink
	// (within one run of at most 64 items for a layer that runs a
	// [RangeLoop]'s items in its own loop). A
	// panic in a user function propagates to the caller, which recovers
	// it and asks [Run.Attribute] for the stage to name. Before calling
	// the FusedLoop of the stage above it, a stage calls run.Attach once
	// and passes its per-item closure through [Layer].
	FusedLoop(run *Run, yield func(T) bool) error
}

// Bounded is implemented by a [Loop] that can tell, before it runs, at
// most how many items its FusedLoop yields: Range its count, Slice (and
// Just) its length, Map and Tap the bound of their source, Filter and
// MapErr that bound too, as an upper bound. FlatMap runs an inner
// publisher as a loop only when downstream's demand covers its bound.
type Bounded interface {
	// FusedBound returns an upper bound on the number of items FusedLoop
	// yields, or false when the loop cannot bound it.
	FusedBound() (n int64, ok bool)
}

// BoundOf returns the bound of l when l implements [Bounded], and false
// otherwise.
func BoundOf(l any) (n int64, ok bool) {
	if b, ok := l.(Bounded); ok {
		return b.FusedBound()
	}
	return 0, false
}

// Run is the state that the layers of one fused run share.
type Run struct {
	// Stop is set when the sink's context is done.
	Stop *atomic.Bool
	ctx  context.Context
	root context.Context // ctx as given to NewRun, for Reset

	// The monitored stages, in the order they attached: the sink first,
	// the source last. See Publish.
	chain []link

	// The per-item closures of the layers, from the sink upward, for
	// attributing a panic to its stage (see Attribute).
	layers []layer
}

type layer struct {
	entry uintptr            // code address of the closure
	name  string             // stage name; "" for the sink
	pick  func() string      // for a closure that runs two stages' functions: which one ran last
	calls map[uintptr]string // LayerCalls: the stage of each function the closure calls
}

// NewRun returns a run that stops when stop is set and whose stages
// register with the monitor registry that ctx carries, if any.
func NewRun(ctx context.Context, stop *atomic.Bool) *Run {
	return &Run{ctx: ctx, root: ctx, Stop: stop}
}

// Reset readies r for another run with the same context and stop flag:
// the layers and monitored stages of the last run are forgotten, and the
// memory that held them is kept. A caller that runs many short loops one
// after another (FlatMap, one per inner publisher) reuses one Run so that
// a run allocates nothing of its own.
func (r *Run) Reset() {
	r.ctx = r.root
	clear(r.chain)
	r.chain = r.chain[:0]
	clear(r.layers)
	r.layers = r.layers[:0]
}

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
// the stage whose function the closure entered last. It is the fallback
// of [LayerCalls], for two functions that share their code.
func LayerPair[T any](r *Run, pick func() string, fn func(T) bool) func(T) bool {
	r.layers = append(r.layers, layer{entry: reflect.ValueOf(fn).Pointer(), pick: pick})
	return fn
}

// Calls names the user functions that a layer's closure calls directly,
// so that a panic is attributed to the stage whose function the closure
// was calling, from the stack, without the closure recording anything per
// item. Funcs are func values; Names the stages they belong to.
type Calls struct {
	Funcs []any
	Names []string
}

// Distinct reports whether the functions have distinct code addresses,
// which LayerCalls needs: func values made by reflect.MakeFunc, for
// example, all share theirs.
func (c Calls) Distinct() bool {
	seen := make(map[uintptr]bool, len(c.Funcs))
	for _, f := range c.Funcs {
		e := reflect.ValueOf(f).Pointer()
		if seen[e] {
			return false
		}
		seen[e] = true
	}
	return true
}

// LayerCalls is Layer for fn, a closure of any type (a per-item function,
// or the loop body that a source such as [RangeLoop] hands a run of items
// to) that calls the user functions of one or more stages directly, as
// c lists them (c.Distinct must hold). After a panic, the function that
// fn was calling names the stage; the callee is read from the stack. fn
// must be a func literal: a method value adds a wrapper frame between the
// layer and the functions it calls.
func LayerCalls[F any](r *Run, c Calls, fn F) F {
	l := layer{entry: reflect.ValueOf(fn).Pointer(), calls: make(map[uintptr]string, len(c.Funcs))}
	for i, f := range c.Funcs {
		l.calls[reflect.ValueOf(f).Pointer()] = c.Names[i]
	}
	l.name = c.Names[0] // a panic in fn's own code
	r.layers = append(r.layers, l)
	return fn
}

// RangeLoop is implemented by a source of consecutive ints (Range) that
// can hand its items to the first layer a run at a time: body handles the
// ints lo, …, hi-1 in a loop of its own, and returns where it stopped
// (the index after the last item it took) and whether to go on; it must
// return false once the run's Stop flag is set, checking it at least once
// per call. A layer whose own loop runs the items saves the closure call
// per item that FusedLoop costs. Runs have at most 64 items, so a
// monitored source publishes its counts between runs as FusedLoop does.
type RangeLoop interface {
	FusedRange(run *Run, body func(lo, hi int) (next int, ok bool)) error
}

// SliceLoop is [RangeLoop] for a source of the items of a slice (Slice,
// Just): body handles items, a run of at most 64 of them, and returns how
// many it took and whether to go on.
type SliceLoop[T any] interface {
	FusedSlice(run *Run, body func(items []T) (n int, ok bool)) error
}

// RunLoop is implemented by a source [Loop] that can also hand a sink its
// items in runs of at most 64, which saves the sink's closure call per
// item (Range writes its ints into one buffer; Slice passes pieces of its
// slice). Only a sink whose function cannot end the stream early takes
// runs (Reduce, Collect, Drain); the stream still stops within one run of
// the Stop flag. Stages do not implement it: a stage's loop would have to
// record how far it got in every run, so that a panic in its function
// still hands the sink the items before it, and measured that costs what
// the saved call does.
type RunLoop[T any] interface {
	Loop[T]
	// FusedRunsOK reports whether FusedRuns can run this loop: it may
	// depend on the source and on the functions the stages were given.
	// It has no side effects; a sink asks before attaching anything.
	FusedRunsOK() bool
	// FusedRuns runs the loop as FusedLoop does, but calls yield with
	// runs of items, each valid only during the call, until the stream
	// ends or yield returns false. The sink passes yield through [Layer],
	// as it does its per-item closure.
	FusedRuns(run *Run, yield func([]T) bool) error
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
	var callee, prev uintptr // the function the panicking layer was calling
	for {
		f, more := frames.Next()
		switch {
		case !seenPanic:
			seenPanic = f.Function == "runtime.gopanic"
		case entries[f.Entry]:
			if depth == 0 {
				callee = prev
			}
			depth++
		case depth > 0:
			more = false // the chain of closures has ended
		}
		prev = f.Entry
		if !more {
			break
		}
	}
	if depth == 0 || depth > len(r.layers) {
		return ""
	}
	l := r.layers[len(r.layers)-depth]
	switch {
	case l.pick != nil:
		return l.pick()
	case l.calls != nil:
		if name, ok := l.calls[callee]; ok {
			return name
		}
	}
	return l.name
}
