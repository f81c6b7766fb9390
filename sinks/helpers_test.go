package sinks_test

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// The flowtest kit and the sources package are written concurrently, so
// the unit tests bring their own small publishers.

var errBoom = errors.New("boom")

// mode says how a testPub emits.
type mode int

const (
	syncMode        mode = iota // on the goroutine whose Request moved the demand off zero
	asyncMode                   // from a goroutine of its own, started at Subscribe
	silentMode                  // never emits and never ends
	asyncSilentMode             // calls OnSubscribe from a goroutine, then never emits
	syncRunsMode                // as syncMode, in runs to a subscriber that takes them
	asyncRunsMode               // as asyncMode, in runs to a subscriber that takes them
)

// emittingModes are the modes in which a testPub emits.
var emittingModes = []mode{syncMode, asyncMode, syncRunsMode, asyncRunsMode}

func (m mode) String() string {
	return [...]string{"sync", "async", "silent", "async silent", "sync runs", "async runs"}[m]
}

// runs reports whether the mode hands over runs (stage.BatchSubscriber).
func (m mode) runs() bool { return m == syncRunsMode || m == asyncRunsMode }

// testRun is the longest run a testPub hands over: shorter than the
// sinks' default prefetch, so that runs end at different points of it.
const testRun = 50

// testPub emits 0, 1, …, n-1 and then completes, or fails with err if it
// is set. n < 0 never ends. It records what its subscribers do to it.
type testPub struct {
	n    int
	err  error
	mode mode
	// onEmit, if set, is called before each OnNext with the item.
	onEmit func(i int)

	mu          sync.Mutex
	requests    []int64
	subscribes  int
	cancels     int
	cancelled   chan struct{} // closed at the first Cancel
	cancelOnce  sync.Once
	subscribeWG sync.WaitGroup // async goroutines
}

func newPub(n int, err error, m mode) *testPub {
	return &testPub{n: n, err: err, mode: m, cancelled: make(chan struct{})}
}

// Requests returns the Request(n) calls seen so far, in order.
func (p *testPub) Requests() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64(nil), p.requests...)
}

// Cancels returns how many times Cancel was called.
func (p *testPub) Cancels() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cancels
}

// Subscribes returns how many subscribers subscribed.
func (p *testPub) Subscribes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.subscribes
}

// Wait waits for the publisher's goroutines to exit.
func (p *testPub) Wait() { p.subscribeWG.Wait() }

func (p *testPub) Subscribe(s flow.Subscriber[int]) {
	flow.RequireSubscriber(s)
	p.mu.Lock()
	p.subscribes++
	p.mu.Unlock()
	sub := &testSub{p: p, s: s, kick: make(chan struct{}, 1), quit: make(chan struct{})}
	switch p.mode {
	case syncMode, syncRunsMode, silentMode:
		s.OnSubscribe(sub)
	case asyncMode, asyncRunsMode:
		s.OnSubscribe(sub)
		p.subscribeWG.Add(1)
		go sub.run()
	case asyncSilentMode:
		p.subscribeWG.Add(1)
		go func() {
			defer p.subscribeWG.Done()
			s.OnSubscribe(sub)
		}()
	}
}

type testSub struct {
	p         *testPub
	demand    flow.Demand
	cancelled atomic.Bool
	kick      chan struct{} // async: demand arrived
	quit      chan struct{} // async: closed on Cancel
	quitOnce  sync.Once

	// Owned by the emission loop.
	s flow.Subscriber[int]
	i int
}

func (x *testSub) Request(n int64) {
	x.p.mu.Lock()
	x.p.requests = append(x.p.requests, n)
	x.p.mu.Unlock()
	if n <= 0 || x.cancelled.Load() {
		return // the sinks never request n <= 0; the recorded call fails the test
	}
	switch x.p.mode {
	case syncMode, syncRunsMode:
		if x.demand.Add(n) == 0 {
			x.drain()
		}
	case asyncMode, asyncRunsMode:
		x.demand.Add(n)
		select {
		case x.kick <- struct{}{}:
		default:
		}
	}
}

func (x *testSub) Cancel() {
	if x.cancelled.CompareAndSwap(false, true) {
		x.p.mu.Lock()
		x.p.cancels++
		x.p.mu.Unlock()
		x.p.cancelOnce.Do(func() { close(x.p.cancelled) })
		x.quitOnce.Do(func() { close(x.quit) })
	}
}

// emitSome emits up to n items and reports whether the stream is over
// (ended or cancelled), and how many it emitted.
func (x *testSub) emitSome(n int64) (e int64, over bool) {
	b := stage.Batcher(x.s)
	if !x.p.mode.runs() {
		b = nil
	}
	for e != n {
		if x.cancelled.Load() {
			return e, true
		}
		if x.i == x.p.n {
			x.end()
			return e, true
		}
		k := 1 // one item, or a run of up to testRun in a runs mode
		if b != nil {
			k = int(min(n-e, testRun))
			if x.p.n >= 0 {
				k = min(k, x.p.n-x.i)
			}
		}
		run := make([]int, k)
		for j := range run {
			run[j] = x.i + j
			if x.p.onEmit != nil {
				x.p.onEmit(run[j])
			}
		}
		if b != nil {
			b.OnNextBatch(run)
		} else {
			x.s.OnNext(run[0])
		}
		x.i += k
		e += int64(k)
		if x.i == x.p.n && !x.cancelled.Load() {
			x.end()
			return e, true
		}
	}
	return e, false
}

func (x *testSub) end() {
	s := x.s
	x.s = nil // rule 3.13
	if x.p.err != nil {
		s.OnError(x.p.err)
	} else {
		s.OnComplete()
	}
}

// drain is the synchronous emission loop; the caller owns it. A loop that
// ends the stream leaves the demand above zero, so nobody enters again.
func (x *testSub) drain() {
	for {
		e, over := x.emitSome(x.demand.Load())
		if over || x.demand.Produced(e) == 0 {
			return
		}
	}
}

// run is the asynchronous emission loop.
func (x *testSub) run() {
	defer x.p.subscribeWG.Done()
	for {
		select {
		case <-x.kick:
		case <-x.quit:
			return
		}
		for {
			n := x.demand.Load()
			if n == 0 {
				break
			}
			e, over := x.emitSome(n)
			if over {
				return
			}
			x.demand.Produced(e)
		}
	}
}

// funcPub is a publisher that runs a script against each subscriber, for
// protocol misbehaviour.
type funcPub = flow.PublisherFunc[int]

// recSub is a subscription that only records.
type recSub struct {
	mu       sync.Mutex
	requests []int64
	cancels  int
}

func (r *recSub) Request(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, n)
}

func (r *recSub) Cancel() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancels++
}

func (r *recSub) Cancels() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancels
}

func (r *recSub) Requests() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.requests...)
}

// ints returns 0, 1, …, n-1, and nil for n == 0.
func ints(n int) []int {
	if n == 0 {
		return nil
	}
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
