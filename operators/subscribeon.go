package operators

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/scheduler"
)

// SubscribeOn returns a publisher that emits the items of src unchanged,
// but subscribes to src and makes every Request of src on a
// [scheduler.Worker] of s, chosen at Subscribe. It moves the work a
// source does inside Subscribe and Request off the caller's goroutine:
// a synchronous source (Range, Slice, Generate) then emits on the worker,
// and a blocking one (sources.FromChannel, a file or socket reader) blocks
// the worker instead of the sink's caller. Give blocking sources a
// scheduler of their own ([scheduler.NewSingle]): a worker blocked in a
// source delays every other task pinned to it.
//
// Demand: pass-through. A Request(n) from downstream adds n to a pending
// count and schedules a task that forwards everything pending as one
// Request upstream, so upstream sees the same total demand, possibly in
// fewer calls, always serially, from the worker. Requests made before src
// has handed over its subscription are held and forwarded once it has. A
// Request(n <= 0) is forwarded as it is, and upstream signals the rule 3.9
// error.
//
// Goroutines: downstream's OnSubscribe is delivered on the goroutine that
// subscribes, before anything else; OnNext, OnError and OnComplete are
// passed through from whatever goroutine src signals on (the worker, for
// a synchronous source). Cancel is not deferred to the worker: it cancels
// upstream at once, from the caller's goroutine, because the worker may be
// blocked inside the source, which a goroutine-safe Cancel (every sluice
// source's) wakes up. If s is closed when SubscribeOn needs it, the stream
// ends with an error that matches scheduler.ErrClosed and upstream is
// cancelled.
//
// Options: [Name]. The subscription is goroutine-safe. Cost: one task on
// s per subscription and per burst of Requests (Requests made while a
// task is pending are folded into it); per item, one atomic load on the
// delivering goroutine, as [Map]. SubscribeOn panics if src or s is nil.
func SubscribeOn[T any](src flow.Publisher[T], s scheduler.Scheduler, opts ...Option) flow.Publisher[T] {
	mustSource("SubscribeOn", src)
	if s == nil {
		panic("sluice: SubscribeOn: nil scheduler")
	}
	_, name := newConfig("subscribeon", opts)
	return &subscribeOnPublisher[T]{src: src, sched: s, name: name}
}

type subscribeOnPublisher[T any] struct {
	src   flow.Publisher[T]
	sched scheduler.Scheduler
	name  string
}

func (p *subscribeOnPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	x := &subscribeOn[T]{worker: p.sched.Worker(), name: p.name}
	x.probe, x.ctx = probe.Attach(s, "subscribeOn", p.name, probe.Operator)
	x.down.Store(&s)
	x.task = x.drain
	s.OnSubscribe(x)
	if x.cancelled.Load() {
		return // cancelled in OnSubscribe: do not subscribe at all
	}
	if err := x.worker.Schedule(func() { p.src.Subscribe(x) }); err != nil {
		x.fail(err)
	}
}

// subscribeOn is one subscription. Requests are folded into pending and
// forwarded by drain, a task on worker serialised by wip; upstream signals
// pass straight through to down.
type subscribeOn[T any] struct {
	down      atomic.Pointer[flow.Subscriber[T]] // nil once cancelled or ended
	up        atomic.Pointer[flow.Subscription]
	pending   atomic.Int64 // demand not yet forwarded, saturating
	badOnce   atomic.Bool  // a Request(n <= 0) was made
	badSet    atomic.Bool  // and badN is written
	badN      int64
	cancelled atomic.Bool
	wip       atomic.Int32
	task      func()
	worker    scheduler.Worker
	name      string
	probe     *probe.Stage    // monitor counters, nil when not monitored
	ctx       context.Context // exposed upstream by Context

	badSent bool // drain-owned
}

// ---- upstream side ----

// Context returns the downstream's context, naming this stage (see
// package monitor).
func (x *subscribeOn[T]) Context() context.Context { return x.ctx }

func (x *subscribeOn[T]) OnSubscribe(up flow.Subscription) {
	if up == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if !x.up.CompareAndSwap(nil, &up) {
		up.Cancel() // rule 2.5
		return
	}
	if x.cancelled.Load() {
		up.Cancel() // Cancel came first and found no subscription
		return
	}
	x.signal() // forward what was requested meanwhile
}

func (x *subscribeOn[T]) OnNext(item T) {
	if p := x.down.Load(); p != nil {
		if pr := x.probe; pr != nil {
			pr.Next()
			(*p).OnNext(item)
			pr.Returned()
			return
		}
		(*p).OnNext(item)
	}
}

func (x *subscribeOn[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	if p := x.down.Swap(nil); p != nil {
		x.probe.End(probe.Failed)
		(*p).OnError(err)
	}
}

func (x *subscribeOn[T]) OnComplete() {
	if p := x.down.Swap(nil); p != nil {
		x.probe.End(probe.Completed)
		(*p).OnComplete()
	}
}

// ---- downstream side ----

// Request records n and schedules its forwarding on the worker.
func (x *subscribeOn[T]) Request(n int64) {
	x.probe.Request(n)
	if n <= 0 {
		if x.badOnce.CompareAndSwap(false, true) {
			x.badN = n
			x.badSet.Store(true) // publishes badN to drain
		}
	} else {
		for {
			cur := x.pending.Load()
			if x.pending.CompareAndSwap(cur, flow.AddCap(cur, n)) {
				break
			}
		}
	}
	x.signal()
}

// Cancel drops the subscriber and cancels upstream at once.
func (x *subscribeOn[T]) Cancel() {
	if !x.cancelled.CompareAndSwap(false, true) {
		return
	}
	x.probe.End(probe.Cancelled)
	x.down.Store(nil)
	if up := x.up.Load(); up != nil {
		(*up).Cancel()
	}
}

func (x *subscribeOn[T]) signal() {
	if x.wip.Add(1) != 1 {
		return
	}
	if err := x.worker.Schedule(x.task); err != nil {
		// The scheduler was closed under a live stream. wip stays
		// non-zero: nothing is scheduled any more.
		x.fail(err)
	}
}

// fail ends the stream with the scheduler's error, unless it has ended.
func (x *subscribeOn[T]) fail(err error) {
	x.cancelled.Store(true)
	if up := x.up.Load(); up != nil {
		(*up).Cancel()
	}
	if p := x.down.Swap(nil); p != nil {
		(*p).OnError(fmt.Errorf("%s: %w", x.name, err))
	}
}

// drain forwards the pending demand upstream, on the worker. A
// synchronous upstream emits inside the Request; Requests that downstream
// makes meanwhile are folded into the next round.
func (x *subscribeOn[T]) drain() {
	missed := int32(1)
	for {
		if up := x.up.Load(); up != nil && !x.cancelled.Load() {
			if x.badSet.Load() {
				if !x.badSent {
					x.badSent = true
					(*up).Request(x.badN) // upstream signals the rule 3.9 error
				}
			} else if n := x.pending.Swap(0); n > 0 {
				(*up).Request(n)
			}
		}
		if missed = x.wip.Add(-missed); missed == 0 {
			return
		}
	}
}
