package sinks

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/internal/probe"
)

// fusedLoop returns pub as a fuse.Loop when the sink may run it as a
// plain loop: pub is a synchronous, stateless sluice publisher (Range,
// Slice, and transforms over them), and no Prefetch option asks for a
// particular request pattern. Unbounded() fuses: the loop is exactly
// unbounded demand.
func fusedLoop[T any](pub flow.Publisher[T], c config) (fuse.Loop[T], bool) {
	if c.prefetch != 0 {
		return nil, false // an explicit request pattern is observable upstream
	}
	l, ok := pub.(fuse.Loop[T])
	return l, ok
}

// stopFlag is set when the sink's context is done, so that a fused loop
// can stop between two items: the source loads it before each item.
type stopFlag struct {
	atomic.Bool
	stopWatch func() bool
	watching  sync.WaitGroup
}

// watch sets the flag when ctx is done; unwatch must follow.
func (s *stopFlag) watch(ctx context.Context) {
	if ctx.Done() == nil {
		return
	}
	s.watching.Add(1)
	s.stopWatch = context.AfterFunc(ctx, func() {
		defer s.watching.Done()
		s.Store(true)
	})
}

// unwatch undoes watch and waits for an AfterFunc that started, so that
// no goroutine of the sink outlives it.
func (s *stopFlag) unwatch() {
	if s.stopWatch == nil {
		return
	}
	if s.stopWatch() {
		s.watching.Done()
	}
	s.watching.Wait()
}

// runFused runs l on the caller's goroutine until it ends or stop is set. It returns ok == false and ctx.Err() when ctx ended the
// stream (the caller must then discard its result, as the protocol path
// does), and otherwise the stream's error, or a *flow.PanicError for a
// panic in a user function.
//
// yieldRun, when not nil, is the sink's function for runs of items, used
// when l can hand over runs (fuse.RunLoop); it must do what yield does
// for each item of the run, and is given only by sinks whose function
// cannot end the stream early. yield may be nil when l is known to hand
// over runs.
func runFused[T any](ctx context.Context, c config, l fuse.Loop[T], stop *stopFlag, yield func(T) bool, yieldRun func([]T) bool) (ok bool, err error) {
	stop.watch(ctx)
	defer stop.unwatch()
	run := fuse.NewRun(ctx, &stop.Bool)
	run.Attach(c.kind, c.name, probe.Sink) // its count comes from the source's Publish
	defer func() {
		v := recover()
		if v != nil {
			ok, err = true, run.Attribute(v) // the stack still holds the panic's frames
		}
		run.End(err, v != nil, !ok)
	}()
	if rl, isRL := l.(fuse.RunLoop[T]); isRL && yieldRun != nil && rl.FusedRunsOK() {
		err = rl.FusedRuns(run, fuse.Layer(run, "", yieldRun))
	} else {
		err = l.FusedLoop(run, fuse.Layer(run, "", yield))
	}
	if stop.Load() {
		return false, context.Cause(ctx)
	}
	return true, err
}
