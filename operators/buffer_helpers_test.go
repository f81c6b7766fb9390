package operators_test

// Test publishers for the Batch, Buffer, LimitRate, PublishOn and
// SubscribeOn tests, and small helpers around flowtest.Subscriber, the
// subscriber these tests record with.

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
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

// btWait is the Await timeout of the subscribers whose tests wait for
// the end of the stream.
var btWait = flowtest.Timeout(10 * time.Second)

// btOpts returns the flowtest options for a subscriber that requests each
// after every item (0 for never) and cancels in its cancelAt-th OnNext
// (0 for never), for table tests whose zero values mean "not set".
func btOpts(each int64, cancelAt int) []flowtest.Option {
	var opts []flowtest.Option
	if each > 0 {
		opts = append(opts, flowtest.RequestOnNext(each))
	}
	if cancelAt > 0 {
		opts = append(opts, flowtest.CancelAfter(int64(cancelAt)))
	}
	return opts
}

// btItems returns the items that s received, nil when there are none
// (the tests compare it with nil slices).
func btItems[T any](s *flowtest.Subscriber[T]) []T {
	if items := s.Items(); len(items) > 0 {
		return items
	}
	return nil
}

// btAwait waits for the terminal signal of s and stops the test if none
// comes within s's timeout.
func btAwait[T any](t testing.TB, s *flowtest.Subscriber[T]) {
	t.Helper()
	if !s.AwaitTerminated() {
		t.FailNow()
	}
}

// btHooked is a flowtest.Subscriber that calls onItem (if set) at the
// start of each OnNext, before the item is recorded, and closes ended at
// the first terminal signal.
type btHooked[T any] struct {
	*flowtest.Subscriber[T]
	onItem func(T)
	ended  chan struct{}
	once   sync.Once
}

func btHook[T any](s *flowtest.Subscriber[T], onItem func(T)) *btHooked[T] {
	return &btHooked[T]{Subscriber: s, onItem: onItem, ended: make(chan struct{})}
}

func (h *btHooked[T]) OnNext(v T) {
	if h.onItem != nil {
		h.onItem(v)
	}
	h.Subscriber.OnNext(v)
}

func (h *btHooked[T]) OnError(err error) {
	h.Subscriber.OnError(err)
	h.once.Do(func() { close(h.ended) })
}

func (h *btHooked[T]) OnComplete() {
	h.Subscriber.OnComplete()
	h.once.Do(func() { close(h.ended) })
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

// wantPanicPrefix runs f and fails t unless f panics with a string that
// starts with prefix: the construction-panic tables of the stages.
func wantPanicPrefix(t *testing.T, prefix string, f func()) {
	t.Helper()
	defer func() {
		p := recover()
		if s, _ := p.(string); !strings.HasPrefix(s, prefix) {
			t.Errorf("panic %v, want prefix %q", p, prefix)
		}
	}()
	f()
}
