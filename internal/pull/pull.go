// Package pull is the emission engine of the sources that produce one item
// at a time on demand: an iterator, a generator, a channel. A [Source]
// says how to get the next item; the engine supplies a goroutine-safe
// [flow.Subscription] that calls it once per unit of demand, serially and
// without recursion, and ends the stream on completion, error, panic,
// cancellation or a non-positive request.
//
// # Ownership
//
// The subscription's [flow.Demand] is the work-in-progress token: the
// caller of Request or Cancel that moves it off zero owns the emission
// loop and runs every call into the Source until the demand is used up.
// Nobody else touches the Source, so Next and Close are never concurrent.
// Once the stream has ended, the demand is never brought back to zero, so
// no later call can become the owner again.
//
// # Cost
//
// Per item: one atomic load of the cancelled flag, one interface call to
// Next and the OnNext call; a single deferred recover covers each run of
// the loop, not each item. Nothing is allocated after Subscribe, except by
// the Range path, which allocates its yield function once.
package pull

import (
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
)

// Source produces the items of one subscription. The engine calls Next
// and Close only from the goroutine that owns the emission loop, never
// concurrently with each other.
type Source[T any] interface {
	// Next returns the next item with ok set. It returns ok == false and
	// a nil error when the stream is complete, and a non-nil error to fail
	// it. A panic is recovered as a *flow.PanicError. Next may block; a
	// Source whose Next blocks implements [Interrupter] so that Cancel can
	// wake it, and then returns ok == false.
	Next() (item T, ok bool, err error)
	// Close releases the source. The engine calls it exactly once when
	// the subscription ends for any reason (completion, error, Cancel,
	// non-positive request), before the terminal signal, if any. A panic
	// in Close turns a completion into an error; after an error or a
	// cancellation there is nobody left to tell, and it is dropped.
	Close()
}

// Ranger is implemented by a Source that can push all its items faster
// than Next can pull them. The engine calls Range instead of Next when the
// demand is already Unbounded as emission starts, before any call to
// Next. Range calls yield for each item, in order, and returns early when
// yield returns false. Close is still called afterwards.
type Ranger[T any] interface {
	Range(yield func(item T) bool)
}

// Interrupter is implemented by a Source whose Next may block. Interrupt
// is called at most once, from the goroutine that calls Cancel (or makes
// a non-positive request), possibly while Next is blocked on another
// goroutine; it must make a blocked Next return promptly. It must be
// goroutine-safe with respect to Next.
type Interrupter interface {
	Interrupt()
}

// Subscribe calls s.OnSubscribe with a subscription that emits the items
// of src according to demand. src must be fresh: one Source per
// subscription. If s requests from inside OnSubscribe, emission runs
// before OnSubscribe returns.
//
// The subscription registers as a source stage of kind and name (derived
// when empty) with the monitor registry of s's context, if any.
func Subscribe[T any](s flow.Subscriber[T], src Source[T], kind, name string) {
	p := &subscription[T]{s: s, src: src}
	p.probe, _ = probe.Attach(s, kind, name, probe.Source)
	p.interrupter, _ = src.(Interrupter)
	s.OnSubscribe(p)
}

// subscription is the goroutine-safe flow.Subscription of one Source.
// Fields after the blank line are touched only by the owner of the emission
// loop; ownership passes through demand, whose atomics order the accesses.
type subscription[T any] struct {
	demand      flow.Demand
	cancelled   atomic.Bool
	failure     atomic.Pointer[error] // a non-positive request, signalled on stop
	interrupter Interrupter           // set before OnSubscribe, read-only
	probe       *probe.Stage          // counters, nil when not monitored

	s       flow.Subscriber[T]
	src     Source[T]
	started bool
}

// Request adds n to the demand and, if no loop is running, runs it on the
// calling goroutine. A non-positive n ends the subscription with
// flow.NonPositiveRequestError(n), delivered by the loop owner.
func (p *subscription[T]) Request(n int64) {
	p.probe.Request(n)
	if n <= 0 {
		p.badRequest(n)
		return
	}
	if p.demand.Add(n) == 0 {
		p.drain()
	}
}

// Cancel stops the emission: an item already being produced may still be
// delivered, nothing after it. If no loop is running, the caller closes
// the Source and drops the subscriber at once.
func (p *subscription[T]) Cancel() {
	if p.cancelled.CompareAndSwap(false, true) {
		p.probe.End(probe.Cancelled)
		p.signalStop()
	}
}

func (p *subscription[T]) badRequest(n int64) {
	if p.cancelled.Load() {
		return // rule 3.6: a request after cancellation is a no-op
	}
	err := flow.NonPositiveRequestError(n)
	p.failure.CompareAndSwap(nil, &err)
	if p.cancelled.CompareAndSwap(false, true) {
		p.signalStop()
	}
}

// signalStop is called once, by whoever set the cancelled flag: it wakes a
// blocked Next and takes ownership if no loop is running. The loop that is
// running, if any, sees the flag before its next call into the Source.
func (p *subscription[T]) signalStop() {
	if p.interrupter != nil {
		p.interrupter.Interrupt()
	}
	if p.demand.Add(1) == 0 {
		p.stop()
	}
}

// drain is the emission loop. The caller owns it.
func (p *subscription[T]) drain() {
	if p.cancelled.Load() {
		p.stop()
		return
	}
	n := p.demand.Load()
	if !p.started {
		p.started = true
		if r, ok := p.src.(Ranger[T]); ok && n == flow.Unbounded {
			p.rangeAll(p.s, r)
			return
		}
	}
	if err := p.pull(n); err != nil {
		if p.cancelled.Load() {
			p.stop() // cancelled while Next ran: report nothing of it
		} else {
			p.fail(err)
		}
	}
}

// pull calls Next once per unit of demand, starting with n, until the
// demand is used up or the stream ends. It returns a non-nil error only
// when Next panicked, and ends the subscription itself in every other
// case. One deferred recover covers the whole loop, so a call to Next
// costs no defer; only a panic raised inside Next is recovered: one
// raised by the subscriber unwinds to the caller of Request.
func (p *subscription[T]) pull(n int64) (panicked error) {
	inNext := false
	defer func() {
		if !inNext {
			return
		}
		if v := recover(); v != nil {
			panicked = flow.NewPanicError(v)
		}
	}()
	s, src, st := p.s, p.src, p.probe
	var e int64
	for {
		for e != n {
			if p.cancelled.Load() {
				p.stop()
				return nil
			}
			inNext = true
			item, ok, err := src.Next()
			inNext = false
			if err != nil || !ok {
				switch {
				case p.cancelled.Load():
					p.stop() // cancelled while Next ran: report nothing of it
				case err != nil:
					p.fail(err)
				default:
					p.complete()
				}
				return nil
			}
			if st != nil {
				st.Next()
				s.OnNext(item)
				st.Returned()
			} else {
				s.OnNext(item)
			}
			e++
		}
		n = p.demand.Load()
		if n == e {
			st.Flush()
			if n = p.demand.Produced(e); n == 0 {
				return nil
			}
			e = 0
		}
	}
}

// rangeAll pushes every item through r under Unbounded demand, checking
// the cancelled flag after each OnNext. A panic raised by the subscriber's
// OnNext is not recovered: it is the subscriber's bug (rule 2.13) and
// propagates to the caller of Request, as on the Next path.
func (p *subscription[T]) rangeAll(s flow.Subscriber[T], r Ranger[T]) {
	inOnNext := false
	err := func() (err error) {
		defer func() {
			if inOnNext {
				return // let the subscriber's panic unwind untouched
			}
			if v := recover(); v != nil {
				err = flow.NewPanicError(v)
			}
		}()
		r.Range(func(item T) bool {
			if p.cancelled.Load() {
				return false
			}
			inOnNext = true
			if st := p.probe; st != nil {
				st.Next()
				s.OnNext(item)
				st.Returned()
			} else {
				s.OnNext(item)
			}
			inOnNext = false
			return !p.cancelled.Load()
		})
		return nil
	}()
	switch {
	case p.cancelled.Load():
		// Cancelled: a panic raised while the source was being stopped
		// (such as an iterator that ignores yield's false) has nowhere to go.
		p.stop()
	case err != nil:
		p.fail(err)
	default:
		p.complete()
	}
}

// closeSource calls Close once and drops the Source, returning Close's
// panic, if any, as an error.
func (p *subscription[T]) closeSource() error {
	src := p.src
	p.src = nil
	return flow.Catch(src.Close)
}

// stop ends a cancelled subscription: it closes the Source, drops the
// subscriber (rule 3.13) and signals the recorded non-positive request, if
// any. The caller owns the loop and never gives it back.
func (p *subscription[T]) stop() {
	s := p.s
	p.s = nil
	_ = p.closeSource() // cancelled: nobody to report a panic in Close to
	if err := p.failure.Load(); err != nil {
		p.probe.End(probe.Failed)
		s.OnError(*err)
	}
}

func (p *subscription[T]) fail(err error) {
	p.probe.End(probe.Failed)
	s := p.s
	p.s = nil
	_ = p.closeSource() // the first error wins
	s.OnError(err)
}

func (p *subscription[T]) complete() {
	s := p.s
	p.s = nil
	if err := p.closeSource(); err != nil {
		p.probe.End(probe.Failed)
		s.OnError(err)
		return
	}
	p.probe.End(probe.Completed)
	s.OnComplete()
}
