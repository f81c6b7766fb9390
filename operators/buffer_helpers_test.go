package operators_test

// Test publishers and subscribers for the Batch, Buffer and LimitRate
// tests. They are local so that these tests depend only on package flow.

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicego/sluice/flow"
)

var errBoom = errors.New("boom")

// btSource is a cold, synchronous publisher of the ints 0..n-1, followed by
// OnComplete, or by OnError(err) when err is set. Its subscriptions are
// goroutine-safe, emit in a Demand-guarded loop on the goroutine whose
// Request moved demand off zero, and log every Request and Cancel.
type btSource struct {
	n     int
	err   error
	items []int // when set, emitted instead of 0..n-1 (n is ignored)

	mu        sync.Mutex
	requests  []int64
	cancelled int
}

func (p *btSource) Subscribe(s flow.Subscriber[int]) {
	flow.RequireSubscriber(s)
	if p.items != nil {
		p.n = len(p.items)
	}
	sub := &btSubscription{p: p, s: s}
	s.OnSubscribe(sub)
	if p.n == 0 {
		sub.run(1) // the terminal signal does not need demand
	}
}

// Requests returns the log of Request calls.
func (p *btSource) Requests() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64(nil), p.requests...)
}

// Cancels returns the number of Cancel calls.
func (p *btSource) Cancels() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cancelled
}

type btSubscription struct {
	p         *btSource
	s         flow.Subscriber[int]
	demand    flow.Demand
	cancelled atomic.Bool
	i         int // loop-owned
	done      bool
}

func (b *btSubscription) Request(n int64) {
	if n <= 0 {
		panic(fmt.Sprintf("btSource: Request(%d) from a stage", n))
	}
	b.p.mu.Lock()
	b.p.requests = append(b.p.requests, n)
	b.p.mu.Unlock()
	b.run(n)
}

func (b *btSubscription) run(n int64) {
	if b.demand.Add(n) != 0 {
		return
	}
	for {
		r := b.demand.Load()
		var e int64
		for e != r && b.i < b.p.n {
			if b.cancelled.Load() {
				return
			}
			if b.p.items != nil {
				b.s.OnNext(b.p.items[b.i])
			} else {
				b.s.OnNext(b.i)
			}
			b.i++
			e++
		}
		if b.i == b.p.n {
			if !b.done && !b.cancelled.Load() {
				b.done = true
				s := b.s
				b.s = nil
				if b.p.err != nil {
					s.OnError(b.p.err)
				} else {
					s.OnComplete()
				}
			}
			return // demand stays non-zero: later Requests return at once
		}
		if b.demand.Produced(e) == 0 {
			return
		}
	}
}

func (b *btSubscription) Cancel() {
	b.p.mu.Lock()
	b.p.cancelled++
	b.p.mu.Unlock()
	b.cancelled.Store(true)
}

// btAsyncSource emits the ints 0..n-1 from a goroutine of its own, as
// demand allows, then completes (or fails with err). Wait waits for that
// goroutine to end.
type btAsyncSource struct {
	n         int
	err       error
	onRequest func(n int64) // called on every Request, if set
	wg        sync.WaitGroup
}

func (p *btAsyncSource) Subscribe(s flow.Subscriber[int]) {
	flow.RequireSubscriber(s)
	sub := &btAsyncSubscription{wake: make(chan struct{}, 1), onRequest: p.onRequest}
	s.OnSubscribe(sub)
	p.wg.Go(func() {
		for i := 0; i < p.n; i++ {
			for sub.demand.Load() == 0 && !sub.cancelled.Load() {
				<-sub.wake
			}
			if sub.cancelled.Load() {
				return
			}
			s.OnNext(i)
			sub.demand.Produced(1)
		}
		if sub.cancelled.Load() {
			return
		}
		if p.err != nil {
			s.OnError(p.err)
		} else {
			s.OnComplete()
		}
	})
}

func (p *btAsyncSource) Wait() { p.wg.Wait() }

type btAsyncSubscription struct {
	demand    flow.Demand
	cancelled atomic.Bool
	wake      chan struct{}
	onRequest func(int64)
}

func (b *btAsyncSubscription) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *btAsyncSubscription) Request(n int64) {
	if b.onRequest != nil {
		b.onRequest(n)
	}
	b.demand.Add(n)
	b.poke()
}

func (b *btAsyncSubscription) Cancel() {
	b.cancelled.Store(true)
	b.poke()
}

// btRecorder is a subscriber that records what it receives. It requests
// Initial in OnSubscribe and Each after every item (0 for none), and
// cancels after CancelAfter items (0 for never). Safe for signals from
// any goroutine, as long as they are serial.
type btRecorder[T any] struct {
	Initial     int64
	Each        int64
	CancelAfter int
	// Start, when set, makes the recorder log the time of each item
	// since Start (used under testing/synctest).
	Start time.Time
	// OnItem, if set, is called at the start of each OnNext.
	OnItem func(T)

	mu    sync.Mutex
	sub   flow.Subscription
	items []T
	times []time.Duration
	err   error
	ended bool
	log   []string
	done  chan struct{}
	once  sync.Once
}

func (r *btRecorder[T]) init() {
	r.once.Do(func() { r.done = make(chan struct{}) })
}

func (r *btRecorder[T]) OnSubscribe(s flow.Subscription) {
	r.init()
	r.mu.Lock()
	r.sub = s
	r.mu.Unlock()
	if r.Initial > 0 {
		s.Request(r.Initial)
	}
}

func (r *btRecorder[T]) OnNext(v T) {
	if r.OnItem != nil {
		r.OnItem(v)
	}
	r.mu.Lock()
	if r.ended {
		r.log = append(r.log, "OnNext after terminal")
	}
	r.items = append(r.items, v)
	if !r.Start.IsZero() {
		r.times = append(r.times, time.Since(r.Start))
	}
	n := len(r.items)
	s := r.sub
	r.mu.Unlock()
	if r.CancelAfter > 0 && n == r.CancelAfter {
		s.Cancel()
		return
	}
	if r.Each > 0 {
		s.Request(r.Each)
	}
}

func (r *btRecorder[T]) OnError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		r.log = append(r.log, "second terminal: "+err.Error())
		return
	}
	r.ended, r.err = true, err
	close(r.done)
}

func (r *btRecorder[T]) OnComplete() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		r.log = append(r.log, "second terminal: complete")
		return
	}
	r.ended = true
	close(r.done)
}

func (r *btRecorder[T]) Request(n int64) { r.subscription().Request(n) }
func (r *btRecorder[T]) Cancel()         { r.subscription().Cancel() }

func (r *btRecorder[T]) subscription() flow.Subscription {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sub
}

// Items returns the items received so far.
func (r *btRecorder[T]) Items() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

// Times returns when each item arrived, since Start.
func (r *btRecorder[T]) Times() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.times...)
}

// Result describes the end of the stream: "complete", "error: <msg>", or
// "open" when no terminal signal came, plus any protocol violation seen.
func (r *btRecorder[T]) Result() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := "open"
	switch {
	case r.ended && r.err != nil:
		out = "error: " + r.err.Error()
	case r.ended:
		out = "complete"
	}
	for _, l := range r.log {
		out += "; " + l
	}
	return out
}

// Err returns the error received, if any.
func (r *btRecorder[T]) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Await waits for the terminal signal.
func (r *btRecorder[T]) Await(t testing.TB) {
	t.Helper()
	r.init()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("no terminal signal; got %d items", len(r.Items()))
	}
}

// btDrops is an OnDrop hook that records every drop.
type btDrops[T any] struct {
	mu    sync.Mutex
	drops []btDrop[T]
}

type btDrop[T any] struct {
	Item   T
	Reason flow.DropReason
}

func (d *btDrops[T]) Hook(v T, r flow.DropReason) {
	d.mu.Lock()
	d.drops = append(d.drops, btDrop[T]{v, r})
	d.mu.Unlock()
}

func (d *btDrops[T]) All() []btDrop[T] {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]btDrop[T](nil), d.drops...)
}

// Counts returns the number of drops by reason, nil when none.
func (d *btDrops[T]) Counts() map[flow.DropReason]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var m map[flow.DropReason]int64
	for _, x := range d.drops {
		if m == nil {
			m = map[flow.DropReason]int64{}
		}
		m[x.Reason]++
	}
	return m
}

func btInts(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func btDropsOf(reason flow.DropReason, items ...int) []btDrop[int] {
	var out []btDrop[int]
	for _, v := range items {
		out = append(out, btDrop[int]{v, reason})
	}
	return out
}

// btTimedSource emits the ints 0..len(gaps)-1 from a goroutine of its own:
// before item i it sleeps gaps[i], then waits for demand. After the last
// item it sleeps End and completes. For tests under testing/synctest.
type btTimedSource struct {
	gaps []time.Duration
	end  time.Duration
	err  error
	wg   sync.WaitGroup
}

func (p *btTimedSource) Subscribe(s flow.Subscriber[int]) {
	flow.RequireSubscriber(s)
	sub := &btAsyncSubscription{wake: make(chan struct{}, 1)}
	s.OnSubscribe(sub)
	p.wg.Go(func() {
		for i, g := range p.gaps {
			time.Sleep(g)
			for sub.demand.Load() == 0 && !sub.cancelled.Load() {
				<-sub.wake
			}
			if sub.cancelled.Load() {
				return
			}
			s.OnNext(i)
			sub.demand.Produced(1)
		}
		time.Sleep(p.end)
		if sub.cancelled.Load() {
			return
		}
		if p.err != nil {
			s.OnError(p.err)
		} else {
			s.OnComplete()
		}
	})
}

func (p *btTimedSource) Wait() { p.wg.Wait() }
