package sinks

import (
	"context"
	"math"
	"sync"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
)

// The life of a sink's subscription. It leaves running exactly once: to
// finished through finishing (upstream terminal signal, fn error, panic,
// protocol violation) or to cancelled (ctx done, or the range loop of All
// broke). Every signal that finds it anywhere but running is ignored.
const (
	running int32 = iota
	finishing
	finished
	cancelled
)

// base is the part of a sink's subscriber that does not depend on the item
// type: the subscription handshake, the terminal signals, the 75 %
// replenishment and the link to the sink's context. The subscriber types
// embed it and add OnNext.
//
// OnSubscribe and OnNext are serial (rule 1.3) but may run on any
// goroutine, so the fields below the first group belong to whoever is
// signalling; the sink's goroutine reads results only after it has seen
// state == finished (or done closed), which the finishing signal publishes.
type base struct {
	ctx   context.Context // the sink's context, read-only
	state atomic.Int32
	done  chan struct{} // closed on the move to finished
	err   error         // the outcome, written before state becomes finished

	mu        sync.Mutex        // guards cancelSub
	cancelSub flow.Subscription // the subscription, for cancel from any goroutine

	stopWatch func() bool    // stops the AfterFunc on ctx, if any
	watching  sync.WaitGroup // an AfterFunc that started must finish before the sink returns

	// Owned by the signalling side.
	sub       flow.Subscription
	initial   int64 // requested in OnSubscribe
	limit     int64 // replenishment batch
	low       int64 // replenish when remaining falls to low
	remaining int64 // demand still outstanding
	inUser    bool  // a user function is running; see recoverUser

	probe *probe.Stage // the sink's counters, nil when not monitored
}

// init sets the demand. limit == 0 means the initial request is
// Unbounded and is never replenished.
func (b *base) init(ctx context.Context, initial, limit int64) {
	b.ctx = ctx
	b.initial, b.limit, b.remaining = initial, limit, initial
	if limit == 0 {
		b.low = math.MinInt64 // unreachable: never replenish
	} else {
		b.low = initial - limit
	}
}

// Context returns the context of the sink that subscribed, so that
// upstream stages can tie their own work to it.
func (b *base) Context() context.Context { return b.ctx }

// OnSubscribe keeps s and requests the initial demand. A second call
// cancels the new subscription (rule 2.5); a call after the sink was
// cancelled cancels s. OnSubscribe(nil) panics (rule 2.13).
func (b *base) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	b.mu.Lock()
	first := b.cancelSub == nil
	if first {
		b.cancelSub = s
	}
	b.mu.Unlock()
	if !first {
		s.Cancel() // rule 2.5
		return
	}
	b.sub = s
	if b.state.Load() != running {
		s.Cancel() // cancelled before the subscription arrived
		return
	}
	b.probe.Request(b.initial)
	s.Request(b.initial)
}

// OnError ends the stream with err. OnError(nil) panics (rule 2.13).
func (b *base) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	b.finish(err)
}

// OnComplete ends the stream successfully.
func (b *base) OnComplete() { b.finish(nil) }

// finish records the outcome, unless the stream has already ended, and
// wakes the sink. It reports whether it did.
func (b *base) finish(err error) bool {
	if !b.state.CompareAndSwap(running, finishing) {
		return false
	}
	b.err = err
	if err != nil {
		b.probe.End(probe.Failed)
	} else {
		b.probe.End(probe.Completed)
	}
	b.state.Store(finished)
	close(b.done)
	return true
}

// fail ends the stream from inside OnNext and cancels upstream.
func (b *base) fail(err error) {
	if b.finish(err) {
		b.sub.Cancel()
	}
}

// recoverUser ends the stream with the panic v of a user function, if
// v is not nil, and cancels upstream. The OnNext methods that call user
// code set inUser while it runs and defer a closure that calls
// recoverUser(recover()) only if inUser is still set: the normal path then
// costs a flag test instead of a call to recover.
func (b *base) recoverUser(v any) {
	b.inUser = false
	if v != nil {
		b.fail(flow.NewPanicError(v))
	}
}

// consumed counts one item and replenishes the demand after each limit
// items. It is small enough to inline into OnNext.
func (b *base) consumed() {
	if b.remaining--; b.remaining == b.low || b.probe != nil {
		b.consumedSlow()
	}
}

// consumedN counts n items delivered in one batch, for the monitor too,
// and replenishes the demand if it has fallen to low or below.
// One replenishment restores it: upstream never delivers beyond the
// remaining demand, and limit exceeds low.
func (b *base) consumedN(n int64) {
	b.counted(int(n))
	if b.remaining -= n; b.remaining <= b.low {
		b.replenish()
	}
}

// counted counts n items handled, for the monitor only: the items of a
// run handled before the stream ended early (an error, a panic), which
// need no more demand.
func (b *base) counted(n int) {
	if b.probe != nil && n > 0 {
		b.probe.NextN(int64(n))
		b.probe.Returned()
	}
}

// consumedSlow replenishes the demand when it is due and counts the item
// for the monitor. Kept out of line so that consumed inlines.
//
//go:noinline
func (b *base) consumedSlow() {
	if b.probe != nil {
		b.probe.Next()
		b.probe.Returned()
	}
	if b.remaining == b.low {
		b.replenish()
	}
}

// replenish requests limit more items. Kept out of line so that consumed
// inlines.
//
//go:noinline
func (b *base) replenish() {
	b.remaining += b.limit
	b.probe.Request(b.limit)
	b.sub.Request(b.limit)
}

// cancel ends a running stream from the sink's side and cancels upstream.
// It may be called from any goroutine.
func (b *base) cancel() {
	if b.state.CompareAndSwap(running, cancelled) {
		b.probe.End(probe.Cancelled)
		b.mu.Lock()
		s := b.cancelSub
		b.mu.Unlock()
		if s != nil {
			s.Cancel()
		}
	}
}

// watch makes the end of ctx cancel the stream, from whatever goroutine
// the stream runs on. unwatch must be called before the sink returns.
func (b *base) watch(ctx context.Context) {
	if ctx.Done() == nil {
		return // never done
	}
	b.watching.Add(1)
	b.stopWatch = context.AfterFunc(ctx, func() {
		defer b.watching.Done()
		b.cancel()
	})
}

// unwatch undoes watch. If the AfterFunc has started it waits for it, so
// that no goroutine of the sink outlives it.
func (b *base) unwatch() {
	if b.stopWatch == nil {
		return
	}
	if b.stopWatch() {
		b.watching.Done() // the AfterFunc will never run
	}
	b.watching.Wait()
}

// await blocks until the stream has ended or ctx is done. It returns true
// and the outcome, or false and ctx.Err() when ctx ended the stream: the
// result the subscriber accumulated must then not be read, because an
// asynchronous upstream may still be delivering to it.
func (b *base) await(ctx context.Context) (bool, error) {
	if b.state.Load() != finished {
		select {
		case <-b.done:
		case <-ctx.Done():
			b.cancel()
			if b.state.Load() == cancelled {
				return false, context.Cause(ctx)
			}
			<-b.done // the stream ended first; finishing is a few instructions
		}
	}
	return true, b.err
}

// run subscribes s, whose base is b, to pub with the demand of c and
// blocks until the stream ends or ctx is done; see await. If ctx is
// already done it does not subscribe.
func run[T any](ctx context.Context, pub flow.Publisher[T], b *base, s flow.Subscriber[T], c config, defaultPrefetch int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, context.Cause(ctx)
	}
	initial, limit := c.demand(defaultPrefetch)
	b.init(ctx, initial, limit)
	b.probe, b.ctx = probe.AttachContext(ctx, c.kind, c.name, probe.Sink)
	b.done = make(chan struct{})
	b.watch(ctx)
	defer b.unwatch()
	pub.Subscribe(s)
	return b.await(ctx)
}
