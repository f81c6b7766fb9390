package operators

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
)

// Concat returns a publisher that emits every item of the first source,
// then every item of the second, and so on: it subscribes to a source
// only after the previous one has completed. Concat() with no source
// completes at once.
//
// Demand: Concat prefetches nothing. Downstream's outstanding demand is
// requested from the current source: a Request(n) is passed to it as it
// is, and when a source completes, the demand it did not fulfil is
// requested from the next one as soon as that one calls OnSubscribe. No
// Request reaches a source that has completed, so nothing is
// over-requested.
//
// When it emits, what it buffers: items go straight through, on the
// current source's goroutine; nothing is buffered or dropped.
//
// How it ends: OnComplete after the last source completes; the first
// error is passed on unchanged and the remaining sources are never
// subscribed. Cancel cancels the current source and no other is
// subscribed. Request(n <= 0) is passed to the current source (or to the
// next one, if none is current), which signals the error of rule 3.9
// through Concat.
//
// Many synchronous sources that complete inside Subscribe or inside
// Request do not grow the stack: the next subscription is made by a
// trampoline loop (a work-in-progress counter), not by recursion.
//
// Concat has no options: it neither buffers nor drops, so there is
// nothing to configure. The subscription is goroutine-safe. Cost: per item, one atomic load and
// a counter; per source, one mutex acquisition at the switch. A nil
// source panics.
//
// Monitoring: when downstream's context carries a monitor registry, each
// subscription registers as a "concat" stage, named concat#N, and every
// source registers under it when it is subscribed.
func Concat[T any](srcs ...flow.Publisher[T]) flow.Publisher[T] {
	for _, s := range srcs {
		mustSource("Concat", s)
	}
	return &concatPublisher[T]{srcs: slices.Clone(srcs)}
}

type concatPublisher[T any] struct {
	srcs []flow.Publisher[T]
}

func (p *concatPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	if len(p.srcs) == 0 {
		flow.Complete(s)
		return
	}
	c := &concat[T]{srcs: p.srcs}
	c.probe, c.ctx = probe.Attach(s, "concat", "", probe.Operator) // nothing buffered: no SetLen
	c.down.Store(&s)
	s.OnSubscribe(c)
	c.subscribeNext()
}

// concat is one subscription: the Subscriber of each source in turn and
// downstream's Subscription. Signals from the current source are serial;
// Request and Cancel come from anywhere.
type concat[T any] struct {
	srcs []flow.Publisher[T]
	down atomic.Pointer[flow.Subscriber[T]] // nil once cancelled or ended
	wip  atomic.Int32                       // trampoline of subscribeNext

	mu        sync.Mutex
	cur       flow.Subscription // the current source; nil between sources
	requested int64             // outstanding demand, as of the last switch
	badN      int64             // a non-positive request made between sources
	cancelled atomic.Bool

	idx      int   // trampoline-owned: the next source
	produced int64 // owned by the current source's signals

	// Set at Subscribe: the monitor counters (nil when not monitored;
	// Next, Returned and Flush only from the current source's signals,
	// which are serial) and the context exposed to every source.
	probe *probe.Stage
	ctx   context.Context
}

// Context returns the context of the stage's downstream, naming the
// stage, so that every source registers under it with the monitor.
func (c *concat[T]) Context() context.Context { return c.ctx }

// subscribeNext subscribes to the next source, or completes downstream
// after the last. A source that completes synchronously inside Subscribe
// calls it again from there: that call only counts, and the loop below
// subscribes to the following source (no recursion).
func (c *concat[T]) subscribeNext() {
	if c.wip.Add(1) != 1 {
		return
	}
	for missed := int32(1); missed != 0; missed = c.wip.Add(-missed) {
		if c.cancelled.Load() {
			continue
		}
		if c.idx == len(c.srcs) {
			if p := c.down.Swap(nil); p != nil {
				c.srcs = nil
				c.probe.End(probe.Completed)
				(*p).OnComplete()
			}
			continue
		}
		src := c.srcs[c.idx]
		c.idx++
		src.Subscribe(c)
	}
}

func (c *concat[T]) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	c.mu.Lock()
	if c.cur != nil {
		c.mu.Unlock()
		s.Cancel() // rule 2.5
		return
	}
	c.cur = s
	r, bad := c.requested, c.badN
	c.mu.Unlock()
	if c.cancelled.Load() {
		s.Cancel()
		return
	}
	switch {
	case bad != 0:
		s.Request(bad) // the source signals the rule 3.9 error
	case r > 0:
		s.Request(r)
	}
}

func (c *concat[T]) OnNext(v T) {
	if p := c.down.Load(); p != nil {
		c.produced++
		if pr := c.probe; pr != nil {
			pr.Next()
			(*p).OnNext(v)
			pr.Returned()
		} else {
			(*p).OnNext(v)
		}
	}
}

func (c *concat[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	c.mu.Lock()
	c.cur = nil
	c.mu.Unlock()
	if p := c.down.Swap(nil); p != nil {
		c.probe.End(probe.Failed)
		(*p).OnError(err)
	}
}

func (c *concat[T]) OnComplete() {
	c.probe.Flush() // the source's last signal: its items are counted exactly
	c.mu.Lock()
	c.cur = nil
	if c.requested != flow.Unbounded {
		c.requested -= c.produced
	}
	c.produced = 0
	c.mu.Unlock()
	c.subscribeNext()
}

// Request passes n to the current source, or keeps it for the next one.
func (c *concat[T]) Request(n int64) {
	c.probe.Request(n)
	c.mu.Lock()
	s := c.cur
	if n <= 0 {
		if s == nil && c.badN == 0 {
			c.badN = n
		}
	} else {
		c.requested = flow.AddCap(c.requested, n)
	}
	c.mu.Unlock()
	if s != nil {
		s.Request(n)
	}
}

// Cancel cancels the current source; no other is subscribed.
func (c *concat[T]) Cancel() {
	if !c.cancelled.CompareAndSwap(false, true) {
		return
	}
	c.probe.End(probe.Cancelled)
	c.down.Store(nil)
	c.mu.Lock()
	s := c.cur
	c.mu.Unlock()
	if s != nil {
		s.Cancel()
	}
}
