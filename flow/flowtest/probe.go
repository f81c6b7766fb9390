package flowtest

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/flow"
)

// probe is the TCK's ManualSubscriber: a Subscriber under the check's
// control that consumes its signals with a cursor. Every expectation that
// is not met ends the check.
type probe[T any] struct {
	*Subscriber[T]
	e   *env
	cur int // index of the first signal not yet consumed
}

func newProbe[T any](e *env) *probe[T] {
	o := defaultOptions()
	o.timeout, o.quiet = e.timeout, e.quiet
	return &probe[T]{Subscriber: newSubscriber[T](e, 0, o), e: e}
}

// subscribeProbe subscribes a new probe to pub and waits for OnSubscribe
// (env.newManualSubscriber in the TCK). When the check ends the probe
// cancels its subscription, unless the stream has ended, and an OnError
// that no expectation consumed is reported.
func subscribeProbe[T any](e *env, pub flow.Publisher[T]) *probe[T] {
	p := startProbe(e, pub)
	p.awaitSubscribed()
	return p
}

// startProbe subscribes a new probe to pub without waiting for OnSubscribe.
func startProbe[T any](e *env, pub flow.Publisher[T]) *probe[T] {
	p := newProbe[T](e)
	e.Cleanup(p.finish)
	e.call("Subscribe", func() { pub.Subscribe(p.Subscriber) })
	return p
}

func (p *probe[T]) awaitSubscribed() {
	if !p.await(p.e.timeout, func() bool { return p.up != nil }) {
		p.e.fatalf("no OnSubscribe within %v (rule 1.9)", p.e.timeout)
	}
}

func (p *probe[T]) finish() {
	p.mu.Lock()
	up, live := p.up, !p.terminal && !p.cancelled
	p.cancelled = true
	var unexpected error
	for _, sig := range p.signals[min(p.cur, len(p.signals)):] {
		if sig.Kind == OnError {
			unexpected = sig.Err
			break
		}
	}
	p.mu.Unlock()
	if unexpected != nil {
		p.e.Errorf("unexpected OnError(%v)", unexpected)
	}
	if up != nil && live {
		if err := flow.Catch(up.Cancel); err != nil {
			p.e.Errorf("Cancel panicked: %v", err)
		}
	}
}

func (p *probe[T]) request(n int64) {
	p.e.call("Request", func() { p.Request(n) })
}

func (p *probe[T]) cancel() {
	p.e.call("Cancel", p.Cancel)
}

// next consumes the next signal other than OnSubscribe, waiting up to the
// timeout for it.
func (p *probe[T]) next(want string) Signal[T] {
	sig, idx, ok := p.nextSignal(p.cur, p.e.timeout)
	if !ok {
		p.e.fatalf("no signal within %v, want %s", p.e.timeout, want)
	}
	p.cur = idx + 1
	return sig
}

func (p *probe[T]) nextElement() T {
	sig := p.next("an item")
	if sig.Kind != OnNext {
		p.e.fatalf("%v, want an item", sig)
	}
	return sig.Item
}

func (p *probe[T]) nextElements(n int) []T {
	items := make([]T, 0, n)
	for range n {
		items = append(items, p.nextElement())
	}
	return items
}

// nextElementOrEnd returns the next item, or false for OnComplete.
func (p *probe[T]) nextElementOrEnd() (T, bool) {
	sig := p.next("an item or OnComplete")
	switch sig.Kind {
	case OnNext:
		return sig.Item, true
	case OnComplete:
		var zero T
		return zero, false
	}
	p.e.fatalf("%v, want an item or OnComplete", sig)
	panic("unreachable")
}

func (p *probe[T]) requestNextElement() T {
	p.request(1)
	return p.nextElement()
}

func (p *probe[T]) requestNextElementOrEnd() (T, bool) {
	p.request(1)
	return p.nextElementOrEnd()
}

func (p *probe[T]) expectCompletion() {
	if sig := p.next("OnComplete"); sig.Kind != OnComplete {
		p.e.fatalf("%v, want OnComplete", sig)
	}
}

func (p *probe[T]) requestEndOfStream() {
	p.request(1)
	p.expectCompletion()
}

func (p *probe[T]) expectError() error {
	sig := p.next("OnError")
	if sig.Kind != OnError {
		p.e.fatalf("%v, want OnError", sig)
	}
	return sig.Err
}

// expectErrorIs expects OnError with an error that matches target.
func (p *probe[T]) expectErrorIs(target error) {
	if err := p.expectError(); !errors.Is(err, target) {
		p.e.fatalf("OnError(%v), want an error that matches %v", err, target)
	}
}

// expectNone waits for the no-signal timeout and fails on any signal that
// has not been consumed.
func (p *probe[T]) expectNone(when string) {
	if sig, ok := p.signalAfter(p.cur, p.e.quiet); ok {
		p.e.fatalf("%v %s, want no signal", sig, when)
	}
}

// settle waits until no signal has arrived for the no-signal timeout, or
// until the timeout, and reports whether the stream went quiet.
func (p *probe[T]) settle() bool {
	deadline := newDeadline(p.e.timeout)
	defer deadline.stop()
	for {
		p.mu.Lock()
		n := len(p.signals)
		p.mu.Unlock()
		if _, ok := p.signalAfter(n, p.e.quiet); !ok {
			return true
		}
		if deadline.passed() {
			return false
		}
	}
}

// upstream is the Subscription the kit hands to a subscriber under test
// (the TCK's ManualPublisher subscription). It records every Request and
// Cancel, tracks the outstanding demand, and reports to the check the
// subscriber's own violations: a non-positive request, overlapping calls
// (rule 2.7) and calls from inside OnComplete or OnError (rule 2.3).
type upstream struct {
	e    *env
	name string
	// forbidRequest fails any Request (a second Subscription in the
	// blackbox rule 2.5 test must be cancelled, not used).
	forbidRequest bool

	active atomic.Int32 // Request and Cancel calls in progress
	inEmit atomic.Int32 // the kit is emitting from inside a Request

	mu       sync.Mutex
	requests []int64
	seen     int // requests consumed by expectRequest
	demand   int64
	cancels  int
	changed  chan struct{}
	emit     func() // set for synchronous emission: runs after each Request
}

func newUpstream(e *env, name string) *upstream {
	return &upstream{e: e, name: name, changed: make(chan struct{})}
}

func (u *upstream) Request(n int64) {
	if u.active.Add(1) > 1 && u.inEmit.Load() == 0 {
		u.e.Errorf("%s: Request(%d) called while another Request or Cancel was in progress (rule 2.7)", u.name, n)
	}
	defer u.active.Add(-1)
	if calledFromTerminal() {
		u.e.Errorf("%s: Request(%d) called from inside OnComplete or OnError (rule 2.3)", u.name, n)
	}
	if n <= 0 {
		u.e.Errorf("%s: the subscriber called Request(%d); demand must be positive (rule 3.9)", u.name, n)
	}
	if u.forbidRequest {
		u.e.Errorf("%s: Request(%d) on a Subscription that the subscriber must cancel (rule 2.5)", u.name, n)
	}
	u.mu.Lock()
	u.requests = append(u.requests, n)
	if n > 0 {
		u.demand = flow.AddCap(u.demand, n)
	}
	u.notifyLocked()
	emit := u.emit
	u.mu.Unlock()
	if emit != nil {
		emit()
	}
}

func (u *upstream) Cancel() {
	if u.active.Add(1) > 1 && u.inEmit.Load() == 0 {
		u.e.Errorf("%s: Cancel called while another Request or Cancel was in progress (rule 2.7)", u.name)
	}
	defer u.active.Add(-1)
	if calledFromTerminal() {
		u.e.Errorf("%s: Cancel called from inside OnComplete or OnError (rule 2.3)", u.name)
	}
	u.mu.Lock()
	u.cancels++
	u.notifyLocked()
	emit := u.emit
	u.mu.Unlock()
	if emit != nil {
		emit()
	}
}

func (u *upstream) notifyLocked() {
	close(u.changed)
	u.changed = make(chan struct{})
}

// wait waits up to the check's timeout for cond, called with u.mu held.
func (u *upstream) wait(cond func() bool) bool {
	deadline := newDeadline(u.e.timeout)
	defer deadline.stop()
	for {
		u.mu.Lock()
		if cond() {
			u.mu.Unlock()
			return true
		}
		ch := u.changed
		u.mu.Unlock()
		if !deadline.wait(ch) {
			u.mu.Lock()
			defer u.mu.Unlock()
			return cond()
		}
	}
}

// expectRequest consumes the next Request call and returns its n.
func (u *upstream) expectRequest() int64 {
	if !u.wait(func() bool { return u.seen < len(u.requests) }) {
		u.e.fatalf("%s: no Request within %v (rule 2.1)", u.name, u.e.timeout)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	n := u.requests[u.seen]
	u.seen++
	return n
}

func (u *upstream) expectCancelled(why string) {
	if !u.wait(func() bool { return u.cancels > 0 }) {
		u.e.fatalf("%s: no Cancel within %v (%s)", u.name, u.e.timeout, why)
	}
}

func (u *upstream) cancelled() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.cancels > 0
}

// take waits up to the timeout for outstanding demand and consumes one
// unit of it.
func (u *upstream) take() bool {
	if !u.wait(func() bool { return u.demand > 0 }) {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.demand != flow.Unbounded {
		u.demand--
	}
	return true
}

// tryTake consumes one unit of demand if there is any.
func (u *upstream) tryTake() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.demand == 0 {
		return false
	}
	if u.demand != flow.Unbounded {
		u.demand--
	}
	return true
}

func (u *upstream) requestCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.requests)
}

// source is the kit's own conforming publisher: it emits elem(0) ...
// elem(n-1) and completes, or, with err set, rejects every subscriber
// with err. Emission is serial and non-recursive (a WIP drain loop), and
// every rule the kit checks holds, so VerifyProcessor can feed a processor
// with it.
type source[T any] struct {
	n    int64
	elem func(int64) T
	err  error
}

func (p *source[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	if p.err != nil {
		flow.Reject(s, p.err)
		return
	}
	r := &sourceSub[T]{s: s, n: p.n, elem: p.elem}
	s.OnSubscribe(r)
	r.drain() // an empty source completes without demand
}

type sourceSub[T any] struct {
	s      flow.Subscriber[T] // owned by the drain loop; nil once over
	n, i   int64
	elem   func(int64) T
	demand flow.Demand
	wip    flow.WIP
	cancel atomic.Bool
	badSet atomic.Bool
	bad    atomic.Int64
}

func (r *sourceSub[T]) Request(n int64) {
	if n <= 0 {
		if r.badSet.CompareAndSwap(false, true) {
			r.bad.Store(n)
		}
	} else {
		r.demand.Add(n)
	}
	r.drain()
}

func (r *sourceSub[T]) Cancel() {
	r.cancel.Store(true)
	r.drain()
}

func (r *sourceSub[T]) drain() {
	if !r.wip.Enter() {
		return
	}
	for missed := int32(1); missed != 0; missed = r.wip.Leave(missed) {
		r.step()
	}
}

// step runs one pass of the drain loop.
func (r *sourceSub[T]) step() {
	s := r.s
	if s == nil || r.stopped(s) {
		return
	}
	d := r.demand.Load()
	var sent int64
	for r.i < r.n && sent < d && !r.cancel.Load() && !r.badSet.Load() {
		s.OnNext(r.elem(r.i))
		r.i++
		sent++
	}
	if sent > 0 {
		r.demand.Produced(sent)
	}
	if r.stopped(s) {
		return
	}
	if r.i == r.n {
		r.s = nil
		s.OnComplete()
	}
}

// stopped ends the subscription after Cancel or a non-positive request.
func (r *sourceSub[T]) stopped(s flow.Subscriber[T]) bool {
	switch {
	case r.cancel.Load():
		r.s = nil
		return true
	case r.badSet.Load():
		r.s = nil
		r.cancel.Store(true)
		s.OnError(flow.NonPositiveRequestError(r.bad.Load()))
		return true
	}
	return false
}

// deadline is a timer for a sequence of waits that share one timeout.
type deadline struct {
	timer *time.Timer
	fired bool
}

func newDeadline(d time.Duration) *deadline { return &deadline{timer: time.NewTimer(d)} }

// wait waits for ch to be closed and returns false if the deadline passes
// first.
func (dl *deadline) wait(ch <-chan struct{}) bool {
	if dl.fired {
		return false
	}
	select {
	case <-ch:
		return true
	case <-dl.timer.C:
		dl.fired = true
		return false
	}
}

func (dl *deadline) passed() bool {
	if !dl.fired {
		select {
		case <-dl.timer.C:
			dl.fired = true
		default:
		}
	}
	return dl.fired
}

func (dl *deadline) stop() { dl.timer.Stop() }
