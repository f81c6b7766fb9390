package operators_test

// Test doubles for the transform stages. Their names start with tr so
// they cannot collide with the helpers of the other operator files.

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicego/sluice/flow"
)

// trLog is an ordered, goroutine-safe log of events, shared by the
// doubles of one test so that upstream calls and downstream signals
// interleave in the order they happened.
type trLog struct {
	mu     sync.Mutex
	events []string
}

func (l *trLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *trLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// trProbe is a Subscriber that logs every signal ("OnSubscribe",
// "OnNext(3)", "OnError(msg)", "OnComplete") and lets a test script its
// requests through hooks. It reports as test errors: overlapping signals
// (rule 1.3), signals after a terminal one (rule 1.7), and more items than
// it requested (rule 1.1). Hooks run after the signal is recorded.
type trProbe[T any] struct {
	t           testing.TB
	log         *trLog
	quiet       bool // do not log OnNext (large streams)
	onSubscribe func(p *trProbe[T])
	onNext      func(p *trProbe[T], item T)

	sub       flow.Subscription
	inSignal  atomic.Int32
	requested atomic.Int64 // saturating
	received  atomic.Int64
	done      chan struct{}

	mu       sync.Mutex
	items    []T
	err      error
	terminal bool
}

func newTrProbe[T any](t testing.TB, log *trLog) *trProbe[T] {
	if log == nil {
		log = &trLog{}
	}
	return &trProbe[T]{t: t, log: log, done: make(chan struct{})}
}

// request records n (if positive) and calls Request(n).
func (p *trProbe[T]) request(n int64) {
	if n > 0 {
		for {
			r := p.requested.Load()
			if p.requested.CompareAndSwap(r, flow.AddCap(r, n)) {
				break
			}
		}
	}
	p.sub.Request(n)
}

func (p *trProbe[T]) enter(name string) {
	if p.inSignal.Add(1) != 1 {
		p.t.Errorf("%s overlaps another signal (rule 1.3)", name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal {
		p.t.Errorf("%s after a terminal signal (rule 1.7)", name)
	}
}

func (p *trProbe[T]) leave() { p.inSignal.Add(-1) }

func (p *trProbe[T]) OnSubscribe(s flow.Subscription) {
	p.enter("OnSubscribe")
	p.sub = s
	p.log.add("OnSubscribe")
	p.leave()
	if p.onSubscribe != nil {
		p.onSubscribe(p)
	}
}

func (p *trProbe[T]) OnNext(item T) {
	p.enter("OnNext")
	if got, req := p.received.Add(1), p.requested.Load(); got > req {
		p.t.Errorf("OnNext #%d with only %d requested (rule 1.1)", got, req)
	}
	p.mu.Lock()
	p.items = append(p.items, item)
	p.mu.Unlock()
	if !p.quiet {
		p.log.add(fmt.Sprintf("OnNext(%v)", item))
	}
	p.leave()
	if p.onNext != nil {
		p.onNext(p, item)
	}
}

func (p *trProbe[T]) OnError(err error) {
	p.enter("OnError")
	p.mu.Lock()
	p.err, p.terminal = err, true
	p.mu.Unlock()
	p.log.add("OnError(" + err.Error() + ")")
	close(p.done)
	p.leave()
}

func (p *trProbe[T]) OnComplete() {
	p.enter("OnComplete")
	p.mu.Lock()
	p.terminal = true
	p.mu.Unlock()
	p.log.add("OnComplete")
	close(p.done)
	p.leave()
}

func (p *trProbe[T]) Items() []T {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]T(nil), p.items...)
}

func (p *trProbe[T]) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// trRequestFirst returns an onSubscribe hook that requests n.
func trRequestFirst[T any](n int64) func(*trProbe[T]) {
	return func(p *trProbe[T]) { p.request(n) }
}

// trRequestEach returns an onNext hook that requests n after every item.
func trRequestEach[T any](n int64) func(*trProbe[T], T) {
	return func(p *trProbe[T], _ T) { p.request(n) }
}

// trRequestBatches returns hooks that request prefetch at first and then
// refill more after every refill items consumed (the 75 % rule for
// prefetch 256 and refill 192).
func trRequestBatches[T any](prefetch, refill int64) (func(*trProbe[T]), func(*trProbe[T], T)) {
	var consumed int64 // OnNext is serial
	return trRequestFirst[T](prefetch), func(p *trProbe[T], _ T) {
		if consumed++; consumed == refill {
			consumed = 0
			p.request(refill)
		}
	}
}

// trSpy wraps a publisher and logs the calls its subscriber makes on the
// upstream subscription: "up.Request(n)" and "up.Cancel".
type trSpy[T any] struct {
	src flow.Publisher[T]
	log *trLog

	mu       sync.Mutex
	requests []int64
	cancels  int
}

func newTrSpy[T any](log *trLog, src flow.Publisher[T]) *trSpy[T] {
	return &trSpy[T]{src: src, log: log}
}

func (s *trSpy[T]) Subscribe(sub flow.Subscriber[T]) {
	flow.RequireSubscriber(sub)
	s.src.Subscribe(&trSpySubscriber[T]{Subscriber: sub, spy: s})
}

func (s *trSpy[T]) Requests() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.requests...)
}

func (s *trSpy[T]) Cancels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancels
}

type trSpySubscriber[T any] struct {
	flow.Subscriber[T]
	spy *trSpy[T]
}

func (s *trSpySubscriber[T]) OnSubscribe(sub flow.Subscription) {
	s.Subscriber.OnSubscribe(&trSpySubscription[T]{Subscription: sub, spy: s.spy})
}

type trSpySubscription[T any] struct {
	flow.Subscription
	spy *trSpy[T]
}

func (s *trSpySubscription[T]) Request(n int64) {
	s.spy.mu.Lock()
	s.spy.requests = append(s.spy.requests, n)
	s.spy.mu.Unlock()
	if s.spy.log != nil {
		s.spy.log.add("up.Request(" + strconv.FormatInt(n, 10) + ")")
	}
	s.Subscription.Request(n)
}

func (s *trSpySubscription[T]) Cancel() {
	s.spy.mu.Lock()
	s.spy.cancels++
	s.spy.mu.Unlock()
	if s.spy.log != nil {
		s.spy.log.add("up.Cancel")
	}
	s.Subscription.Cancel()
}

// trManual is a publisher driven by hand: the test calls Next, Error and
// Complete, which signal its (single) subscriber directly, whatever the
// demand and even after Cancel, as a misbehaving upstream would. Its
// subscription logs "up.Request(n)" and "up.Cancel".
type trManual[T any] struct {
	log *trLog
	sub flow.Subscriber[T]
}

func (m *trManual[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	m.sub = s
	s.OnSubscribe(trManualSubscription{log: m.log})
}

func (m *trManual[T]) Next(items ...T) {
	for _, x := range items {
		m.sub.OnNext(x)
	}
}

func (m *trManual[T]) Error(err error) { m.sub.OnError(err) }
func (m *trManual[T]) Complete()       { m.sub.OnComplete() }

type trManualSubscription struct{ log *trLog }

func (s trManualSubscription) Request(n int64) {
	s.log.add("up.Request(" + strconv.FormatInt(n, 10) + ")")
}

func (s trManualSubscription) Cancel() { s.log.add("up.Cancel") }

// trInts returns the integers [from, to].
func trInts(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// trLogOf builds a downstream log: OnSubscribe, OnNext for each item, then
// the given tail.
func trLogOf[T any](items []T, tail ...string) []string {
	out := []string{"OnSubscribe"}
	for _, x := range items {
		out = append(out, fmt.Sprintf("OnNext(%v)", x))
	}
	return append(out, tail...)
}
