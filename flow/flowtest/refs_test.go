package flowtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
)

// This file holds the kit's test subjects: a conforming range publisher,
// identity processor, subscriber and sink, each with knobs that break one
// rule, so that the tests can check that exactly the right checks fail.

// pubBug breaks one rule of rangePub.
type pubBug int

const (
	pubOK                pubBug = iota
	pubExtraItem                // emits one item more than requested per drain pass
	pubRecursive                // Request calls OnNext directly: unbounded recursion
	pubIgnoreNonPositive        // Request(n <= 0) is silently ignored
	pubIgnoreCancel             // Cancel does nothing: signals go on after it
	pubKeepSubscriber           // Cancel stops the stream but keeps the subscriber
	pubNeverComplete            // no OnComplete after the last item
	pubNextAfterComplete        // an extra OnNext after OnComplete
	pubOtherGoroutine           // a Request made in OnNext emits on another goroutine at once
	pubSubscribeNilOK           // Subscribe(nil) returns normally
)

// rangePub emits 0 ... n-1 and completes. Without a bug it follows every
// rule: the Demand counter is also the work-in-progress token of the
// emission loop (whoever moves it off zero runs the loop; Cancel and a
// bad request add a unit to enter it), so emission is serial and a
// Request made in OnNext only adds demand.
type rangePub struct {
	n   int64
	bug pubBug
}

func (p rangePub) Subscribe(s flow.Subscriber[int64]) {
	if p.bug == pubSubscribeNilOK && s == nil {
		return
	}
	flow.RequireSubscriber(s)
	r := &rangeSub{s: s, n: p.n, bug: p.bug}
	s.OnSubscribe(r)
	if p.n == 0 && r.demand.Add(1) == 0 {
		r.drain() // complete an empty range without demand
	}
}

type rangeSub struct {
	s      flow.Subscriber[int64] // owned by the emission loop
	n, i   int64
	bug    pubBug
	demand flow.Demand
	cancel atomic.Bool
	bad    atomic.Bool
	badN   atomic.Int64
	inNext atomic.Bool // pubOtherGoroutine: the loop is inside OnNext
}

func (r *rangeSub) Request(n int64) {
	switch {
	case r.bug == pubRecursive:
		r.recursive(n)
		return
	case n <= 0 && r.bug == pubIgnoreNonPositive:
		return
	case n <= 0:
		if r.bad.CompareAndSwap(false, true) {
			r.badN.Store(n)
		}
		n = 1 // a unit to enter the loop
	case r.bug == pubOtherGoroutine && r.inNext.Load() && r.i < r.n:
		// The buggy hand-off: emit the next item on a worker goroutine
		// right away, while the caller's OnNext is still running.
		done := make(chan struct{})
		v := r.i
		r.i++
		go func() {
			defer close(done)
			r.s.OnNext(v)
		}()
		<-done
		n--
		if n == 0 {
			return
		}
	}
	if r.demand.Add(n) == 0 {
		r.drain()
	}
}

func (r *rangeSub) Cancel() {
	if r.bug == pubIgnoreCancel {
		return
	}
	r.cancel.Store(true)
	if r.bug == pubRecursive {
		r.s = nil
		return
	}
	if r.demand.Add(1) == 0 {
		r.drain()
	}
}

// drain is the emission loop. It leaves the demand above zero once the
// subscription is over, so that nobody enters it again.
func (r *rangeSub) drain() {
	d := r.demand.Load()
	var emitted int64
	for {
		for emitted < d {
			if r.stopped() {
				return
			}
			if r.i == r.n {
				r.complete()
				return
			}
			r.next()
			emitted++
		}
		if r.bug == pubExtraItem && r.i < r.n {
			r.next()
		}
		if r.stopped() {
			return
		}
		if r.i == r.n {
			r.complete()
			return
		}
		if d = r.demand.Produced(emitted); d == 0 {
			return
		}
		emitted = 0
	}
}

func (r *rangeSub) next() {
	v := r.i
	r.i++
	r.inNext.Store(true)
	r.s.OnNext(v)
	r.inNext.Store(false)
}

func (r *rangeSub) stopped() bool {
	if r.cancel.Load() {
		if r.bug != pubKeepSubscriber {
			r.s = nil
		}
		return true
	}
	if r.bad.Load() {
		s := r.s
		r.s = nil
		r.cancel.Store(true)
		s.OnError(flow.NonPositiveRequestError(r.badN.Load()))
		return true
	}
	return false
}

func (r *rangeSub) complete() {
	if r.bug == pubNeverComplete {
		return
	}
	s := r.s
	r.s = nil
	s.OnComplete()
	if r.bug == pubNextAfterComplete {
		s.OnNext(r.n)
	}
}

// recursive is the naive emission of pubRecursive: OnNext straight from
// Request.
func (r *rangeSub) recursive(n int64) {
	s := r.s
	if s == nil {
		return
	}
	if n <= 0 {
		r.s = nil
		s.OnError(flow.NonPositiveRequestError(n))
		return
	}
	for k := int64(0); k < n && r.i < r.n && r.s != nil; k++ {
		v := r.i
		r.i++
		s.OnNext(v)
	}
	if r.i == r.n && r.s != nil {
		r.s = nil
		s.OnComplete()
	}
}

// failing rejects every subscriber.
var failing = flow.PublisherFunc[int64](func(s flow.Subscriber[int64]) {
	flow.Reject(s, errors.New("failing publisher"))
})

func rangeConfig(bug pubBug) PublisherConfig[int64] {
	return PublisherConfig[int64]{
		New:    func(n int64) flow.Publisher[int64] { return rangePub{n: n, bug: bug} },
		Failed: func() flow.Publisher[int64] { return failing },
	}
}

// procBug breaks one rule of identity.
type procBug int

const (
	procOK          procBug = iota
	procDropsErrors         // OnError from upstream is ignored
)

// identity is a unicast identity processor: it prefetches size items
// upstream, buffers them until its subscriber asks, and requests one more
// upstream per item delivered. Delivery runs in a WIP drain loop.
type identity struct {
	size int
	bug  procBug
	wip  flow.WIP

	mu        sync.Mutex
	up        flow.Subscription
	down      flow.Subscriber[int64]
	hasDown   bool
	queue     []int64
	demand    int64
	upDone    bool
	upErr     error
	cancelled bool
	bad       bool
	badN      int64
}

var errOneSubscriber = errors.New("identity: one subscriber only")

func (p *identity) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("identity: OnSubscribe(nil)")
	}
	p.mu.Lock()
	if p.up != nil {
		p.mu.Unlock()
		s.Cancel()
		return
	}
	p.up = s
	cancelled := p.cancelled
	p.mu.Unlock()
	if cancelled {
		s.Cancel()
		return
	}
	s.Request(int64(p.size))
}

func (p *identity) OnNext(v int64) {
	p.mu.Lock()
	if !p.upDone && !p.cancelled {
		p.queue = append(p.queue, v)
	}
	p.mu.Unlock()
	p.drain()
}

func (p *identity) OnError(err error) {
	if err == nil {
		panic("identity: OnError(nil)")
	}
	if p.bug == procDropsErrors {
		return
	}
	p.mu.Lock()
	if !p.upDone {
		p.upDone, p.upErr = true, err
	}
	p.mu.Unlock()
	p.drain()
}

func (p *identity) OnComplete() {
	p.mu.Lock()
	p.upDone = true
	p.mu.Unlock()
	p.drain()
}

func (p *identity) Subscribe(s flow.Subscriber[int64]) {
	flow.RequireSubscriber(s)
	p.mu.Lock()
	if p.hasDown {
		p.mu.Unlock()
		flow.Reject(s, errOneSubscriber)
		return
	}
	p.hasDown, p.down = true, s
	p.mu.Unlock()
	s.OnSubscribe(identitySub{p})
	p.drain()
}

type identitySub struct{ p *identity }

func (s identitySub) Request(n int64) {
	p := s.p
	p.mu.Lock()
	if n <= 0 {
		if !p.bad {
			p.bad, p.badN = true, n
		}
	} else {
		p.demand = flow.AddCap(p.demand, n)
	}
	p.mu.Unlock()
	p.drain()
}

func (s identitySub) Cancel() {
	p := s.p
	p.mu.Lock()
	if p.cancelled {
		p.mu.Unlock()
		return
	}
	p.cancelled = true
	p.queue = nil
	up, upDone := p.up, p.upDone
	p.mu.Unlock()
	if up != nil && !upDone {
		up.Cancel()
	}
	p.drain()
}

func (p *identity) drain() {
	if !p.wip.Enter() {
		return
	}
	for missed := int32(1); missed != 0; missed = p.wip.Leave(missed) {
		for p.step() {
		}
	}
}

// step delivers one signal downstream and reports whether to go on.
func (p *identity) step() bool {
	p.mu.Lock()
	down := p.down
	switch {
	case down == nil:
		p.mu.Unlock()
		return false
	case p.cancelled:
		p.down = nil
		p.mu.Unlock()
		return false
	case p.bad:
		p.down, p.cancelled = nil, true
		up, upDone, n := p.up, p.upDone, p.badN
		p.mu.Unlock()
		if up != nil && !upDone {
			up.Cancel()
		}
		down.OnError(flow.NonPositiveRequestError(n))
		return false
	case p.upErr != nil:
		p.down = nil
		err := p.upErr
		p.mu.Unlock()
		down.OnError(err)
		return false
	case len(p.queue) > 0 && p.demand > 0:
		v := p.queue[0]
		p.queue = p.queue[1:]
		if p.demand != flow.Unbounded {
			p.demand--
		}
		up, upDone := p.up, p.upDone
		p.mu.Unlock()
		down.OnNext(v)
		if up != nil && !upDone {
			up.Request(1)
		}
		return true
	case len(p.queue) == 0 && p.upDone:
		p.down = nil
		p.mu.Unlock()
		down.OnComplete()
		return false
	}
	p.mu.Unlock()
	return false
}

func identityConfig(bug procBug) ProcessorConfig[int64] {
	return ProcessorConfig[int64]{
		New: func(size int) flow.Processor[int64, int64] {
			return &identity{size: size, bug: bug}
		},
		Element:        func(i int64) int64 { return i },
		MaxSubscribers: 1,
	}
}

// subBug breaks one rule of collector.
type subBug int

const (
	subOK                 subBug = iota
	subNeverRequests             // never signals demand
	subKeepsSecond               // ignores a second Subscription instead of cancelling it
	subAcceptsNil                // OnSubscribe(nil) and OnError(nil) return normally
	subRequestsOnComplete        // calls Request from inside OnComplete
)

// collector requests one item at a time and keeps them.
type collector struct {
	bug  subBug
	mu   sync.Mutex
	sub  flow.Subscription
	done bool
	got  []int64
}

func (c *collector) OnSubscribe(s flow.Subscription) {
	if s == nil {
		if c.bug == subAcceptsNil {
			return
		}
		panic("collector: OnSubscribe(nil)")
	}
	c.mu.Lock()
	if c.sub != nil {
		c.mu.Unlock()
		if c.bug != subKeepsSecond {
			s.Cancel()
		}
		return
	}
	c.sub = s
	c.mu.Unlock()
	if c.bug != subNeverRequests {
		s.Request(1)
	}
}

func (c *collector) OnNext(v int64) {
	c.mu.Lock()
	c.got = append(c.got, v)
	s, done := c.sub, c.done
	c.mu.Unlock()
	if !done {
		s.Request(1)
	}
}

func (c *collector) OnError(err error) {
	if err == nil && c.bug != subAcceptsNil {
		panic("collector: OnError(nil)")
	}
	c.mu.Lock()
	c.done = true
	c.mu.Unlock()
}

func (c *collector) OnComplete() {
	c.mu.Lock()
	c.done = true
	s := c.sub
	c.mu.Unlock()
	if c.bug == subRequestsOnComplete {
		s.Request(1)
	}
}

func collectorConfig(bug subBug) SubscriberConfig[int64] {
	return SubscriberConfig[int64]{
		New:     func() flow.Subscriber[int64] { return &collector{bug: bug} },
		Element: func(i int64) int64 { return i },
	}
}

// drainSink is a blocking sink: it requests everything and returns when
// the stream ends, or cancels and returns ctx.Err() when ctx is done.
// With ignoreCtx it returns nil on ctx without cancelling (a bug).
func drainSink(ignoreCtx bool) func(ctx context.Context, pub flow.Publisher[int64]) error {
	return func(ctx context.Context, pub flow.Publisher[int64]) error {
		s := &sinkSub{done: make(chan struct{})}
		pub.Subscribe(s)
		select {
		case <-s.done:
			return s.err
		case <-ctx.Done():
			if ignoreCtx {
				return nil
			}
			s.cancel()
			return ctx.Err()
		}
	}
}

type sinkSub struct {
	mu        sync.Mutex
	sub       flow.Subscription
	cancelled bool
	err       error
	done      chan struct{}
	once      sync.Once
}

func (s *sinkSub) OnSubscribe(sub flow.Subscription) {
	if sub == nil {
		panic("sinkSub: OnSubscribe(nil)")
	}
	s.mu.Lock()
	if s.sub != nil || s.cancelled {
		s.mu.Unlock()
		sub.Cancel()
		return
	}
	s.sub = sub
	s.mu.Unlock()
	sub.Request(flow.Unbounded)
}

func (s *sinkSub) OnNext(int64) {}

func (s *sinkSub) OnError(err error) {
	if err == nil {
		panic("sinkSub: OnError(nil)")
	}
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

func (s *sinkSub) OnComplete() { s.once.Do(func() { close(s.done) }) }

func (s *sinkSub) cancel() {
	s.mu.Lock()
	s.cancelled = true
	sub := s.sub
	s.mu.Unlock()
	if sub != nil {
		sub.Cancel()
	}
}

// asyncRange emits 0 ... n-1 from a goroutine of its own per subscriber,
// which ends with the subscription. Request and Cancel only record and
// wake it, so it never re-enters OnNext.
type asyncRange struct{ n int64 }

func (p asyncRange) Subscribe(s flow.Subscriber[int64]) {
	flow.RequireSubscriber(s)
	a := &asyncSub{wake: make(chan struct{}, 1)}
	s.OnSubscribe(a)
	go a.run(s, p.n)
}

type asyncSub struct {
	demand flow.Demand
	cancel atomic.Bool
	bad    atomic.Bool
	badN   atomic.Int64
	wake   chan struct{}
}

func (a *asyncSub) Request(n int64) {
	if n <= 0 {
		if a.bad.CompareAndSwap(false, true) {
			a.badN.Store(n)
		}
	} else {
		a.demand.Add(n)
	}
	a.signal()
}

func (a *asyncSub) Cancel() {
	a.cancel.Store(true)
	a.signal()
}

func (a *asyncSub) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// run owns s; returning drops it.
func (a *asyncSub) run(s flow.Subscriber[int64], n int64) {
	for i := int64(0); ; <-a.wake {
		for a.demand.Load() > 0 && i < n && !a.cancel.Load() && !a.bad.Load() {
			s.OnNext(i)
			i++
			a.demand.Produced(1)
		}
		switch {
		case a.cancel.Load():
			return
		case a.bad.Load():
			s.OnError(flow.NonPositiveRequestError(a.badN.Load()))
			return
		case i == n:
			s.OnComplete()
			return
		}
	}
}
