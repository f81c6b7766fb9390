package flowtest

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/flow"
)

// TB is the part of testing.TB that a [Subscriber] reports to. *testing.T,
// *testing.B and *testing.F satisfy it.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Cleanup(f func())
}

// Kind names one of the four signals a Subscriber receives.
type Kind uint8

const (
	// OnSubscribe is the call that hands over the Subscription.
	OnSubscribe Kind = iota + 1
	// OnNext delivers one item.
	OnNext
	// OnError ends the stream with a failure.
	OnError
	// OnComplete ends the stream successfully.
	OnComplete
)

// String returns the name of the signal, such as "OnNext".
func (k Kind) String() string {
	switch k {
	case OnSubscribe:
		return "OnSubscribe"
	case OnNext:
		return "OnNext"
	case OnError:
		return "OnError"
	case OnComplete:
		return "OnComplete"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Signal is one call received by a [Subscriber].
type Signal[T any] struct {
	Kind Kind
	// Item is the item of an OnNext, and the zero value otherwise.
	Item T
	// Err is the error of an OnError, and nil otherwise.
	Err error
}

// String formats the signal as a call, such as "OnNext(3)" or
// "OnError(boom)".
func (s Signal[T]) String() string {
	switch s.Kind {
	case OnNext:
		return fmt.Sprintf("OnNext(%v)", s.Item)
	case OnError:
		return fmt.Sprintf("OnError(%v)", s.Err)
	}
	return s.Kind.String()
}

// Option configures a [Subscriber].
type Option interface{ apply(*options) }

type options struct {
	timeout       time.Duration
	quiet         time.Duration
	requestOnNext int64
	cancelAfter   int64
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

func defaultOptions() options {
	return options{timeout: defaultTimeout, quiet: defaultNoSignalTimeout}
}

const (
	defaultTimeout         = time.Second
	defaultNoSignalTimeout = 20 * time.Millisecond
)

// Timeout sets how long the Await methods wait; the default is 1s.
// It panics if d <= 0.
func Timeout(d time.Duration) Option {
	if d <= 0 {
		panic("sluice: flowtest.Timeout: d <= 0")
	}
	return optionFunc(func(o *options) { o.timeout = d })
}

// NoSignalTimeout sets how long [Subscriber.ExpectNone] waits; the
// default is 20ms. It panics if d <= 0.
func NoSignalTimeout(d time.Duration) Option {
	if d <= 0 {
		panic("sluice: flowtest.NoSignalTimeout: d <= 0")
	}
	return optionFunc(func(o *options) { o.quiet = d })
}

// RequestOnNext makes the Subscriber call Request(n) from inside every
// OnNext, the usual way to consume a stream one item (or one batch) at a
// time. It panics if n <= 0.
func RequestOnNext(n int64) Option {
	if n <= 0 {
		panic("sluice: flowtest.RequestOnNext: n <= 0")
	}
	return optionFunc(func(o *options) { o.requestOnNext = n })
}

// CancelAfter makes the Subscriber call Cancel from inside its n-th OnNext
// (and not request more from that call). It panics if n <= 0.
func CancelAfter(n int64) Option {
	if n <= 0 {
		panic("sluice: flowtest.CancelAfter: n <= 0")
	}
	return optionFunc(func(o *options) { o.cancelAfter = n })
}

// Subscriber is a flow.Subscriber for tests: it records every signal in
// order, lets the test drive demand with [Subscriber.Request] and
// [Subscriber.Cancel], waits for signals with a timeout, and flags every
// protocol violation of the publisher that feeds it:
//
//   - a signal before OnSubscribe (rule 1.9), or a second OnSubscribe
//     (rule 2.12; the second Subscription is cancelled, rule 2.5);
//   - more OnNext calls than requested (rule 1.1);
//   - any signal after OnComplete or OnError (rule 1.7);
//   - a signal that overlaps another one, that is, delivered while the
//     handling of a previous signal has not returned, from another
//     goroutine (rule 1.3); synchronous re-entry on the same goroutine,
//     such as OnNext delivered from inside a Request made in OnSubscribe,
//     is allowed;
//   - OnSubscribe(nil) and OnError(nil), which also panic (rule 2.13).
//
// Each violation is reported at once with Errorf on the TB given to
// [NewSubscriber] (so the test fails) and kept for [Subscriber.Violations].
// Violations detected after the test has finished are kept but not
// reported.
//
// All methods are goroutine-safe: the publisher may signal from any
// goroutine while the test calls Request, Cancel or the Await methods from
// another. (Of the signals nested in one Request made from a handler, the
// first 8 are checked for their goroutine.) The Await methods block on a channel with a timer, so a
// Subscriber created inside a testing/synctest bubble works with the
// bubble's fake clock (create it inside the bubble).
//
// Cost: a Subscriber takes a mutex and appends to a slice per signal,
// about 0.3µs per item behind a synchronous publisher; it is a test tool,
// not a stage.
type Subscriber[T any] struct {
	rep  TB
	opts options

	// Hooks for the conformance checks, set before the Subscriber is used.
	// They run in the signal's outgoing section (see outgoing).
	hookSubscribe func()
	hookNext      func(item T)

	active  atomic.Int32 // signals being handled
	reentry atomic.Int32 // outgoing sections in progress
	nestedN atomic.Int64 // nested signals seen, ever

	mu         sync.Mutex
	up         flow.Subscription
	queued     []int64 // requests made before OnSubscribe
	cancelled  bool
	signals    []Signal[T]
	times      []time.Time // arrival time of each item, by index
	items      int64
	requested  int64
	terminal   bool
	completed  bool
	err        error
	violations []string
	nested     []nestedEntry
	sampled    map[int32]int // nested signals checked per outgoing level
	changed    chan struct{} // closed and replaced on a change, if waited on
	waiting    int           // goroutines waiting on changed
	closed     bool          // the test is over: keep, do not report
}

// maxSampled bounds how many nested signals of one outgoing call are
// checked for their goroutine: the check costs a stack trace (~2µs), and a
// synchronous publisher delivers every item of a Request nested in it.
const maxSampled = 8

// nestedEntry records a signal that arrived while another was being
// handled and an outgoing section was in progress: it is legal only if it
// arrived on the goroutine of that section.
type nestedEntry struct {
	gid   uint64
	level int32
	sig   string
}

// NewSubscriber returns a Subscriber that reports violations to t and
// requests initialRequest items as soon as it receives its Subscription
// (0 requests nothing). When t's test ends, the Subscriber cancels its
// Subscription unless the stream has ended, and stops reporting to t.
// It panics if t is nil or initialRequest < 0.
func NewSubscriber[T any](t TB, initialRequest int64, opts ...Option) *Subscriber[T] {
	if t == nil {
		panic("sluice: flowtest.NewSubscriber: nil TB")
	}
	if initialRequest < 0 {
		panic("sluice: flowtest.NewSubscriber: initialRequest < 0")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	s := newSubscriber[T](t, initialRequest, o)
	t.Cleanup(s.close)
	return s
}

func newSubscriber[T any](rep TB, initialRequest int64, o options) *Subscriber[T] {
	s := &Subscriber[T]{rep: rep, opts: o, changed: make(chan struct{})}
	if initialRequest > 0 {
		s.queued = []int64{initialRequest}
		s.requested = initialRequest
	}
	return s
}

// close ends reporting and cancels a live subscription.
func (s *Subscriber[T]) close() {
	s.mu.Lock()
	s.closed = true
	up, live := s.up, !s.terminal && !s.cancelled
	s.cancelled = true
	s.mu.Unlock()
	if up != nil && live {
		up.Cancel()
	}
}

// OnSubscribe records the Subscription and requests the initial demand,
// then any demand requested before it arrived. A second Subscription is a
// violation and is cancelled. OnSubscribe(nil) is a violation and panics.
func (s *Subscriber[T]) OnSubscribe(sub flow.Subscription) {
	if sub == nil {
		s.violate("OnSubscribe(nil) (rule 2.13)")
		panic("sluice: flowtest.Subscriber: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	s.enter(OnSubscribe)
	defer s.exit()
	s.mu.Lock()
	s.recordLocked(Signal[T]{Kind: OnSubscribe})
	if s.up != nil {
		s.violateLocked("OnSubscribe called a second time; the second Subscription is cancelled (rules 2.5, 2.12)")
		s.mu.Unlock()
		sub.Cancel()
		return
	}
	s.up = sub
	queued, cancelled := s.queued, s.cancelled
	s.queued = nil
	s.mu.Unlock()
	s.outgoing(func() {
		if cancelled {
			sub.Cancel()
			return
		}
		for _, n := range queued {
			sub.Request(n)
		}
		if s.hookSubscribe != nil {
			s.hookSubscribe()
		}
	})
}

// OnNext records item. It is a violation before OnSubscribe, after a
// terminal signal, or beyond the demand requested so far.
func (s *Subscriber[T]) OnNext(item T) {
	s.enter(OnNext)
	defer s.exit()
	s.mu.Lock()
	switch {
	case s.up == nil:
		s.violateLocked("OnNext(%v) before OnSubscribe (rule 1.9)", item)
	case s.terminal:
		s.violateLocked("OnNext(%v) after %s (rule 1.7)", item, s.terminalNameLocked())
	}
	s.items++
	if s.requested != flow.Unbounded && s.items > s.requested {
		s.violateLocked("OnNext(%v) is item %d, but only %d were requested (rule 1.1)", item, s.items, s.requested)
	}
	s.times = append(s.times, time.Now())
	s.recordLocked(Signal[T]{Kind: OnNext, Item: item})
	n, cancelled := s.items, s.cancelled
	s.mu.Unlock()
	s.outgoing(func() {
		switch {
		case cancelled:
		case s.opts.cancelAfter > 0 && n == s.opts.cancelAfter:
			s.Cancel()
		case s.opts.requestOnNext > 0:
			s.Request(s.opts.requestOnNext)
		}
		if s.hookNext != nil {
			s.hookNext(item)
		}
	})
}

// OnError records err as the end of the stream. It is a violation before
// OnSubscribe or after a terminal signal. OnError(nil) is a violation and
// panics.
func (s *Subscriber[T]) OnError(err error) {
	if err == nil {
		s.violate("OnError(nil) (rule 2.13)")
		panic("sluice: flowtest.Subscriber: OnError called with a nil error (rule 2.13)")
	}
	s.enter(OnError)
	defer s.exit()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.terminate(Signal[T]{Kind: OnError, Err: err})
}

// OnComplete records the end of the stream. It is a violation before
// OnSubscribe or after a terminal signal.
func (s *Subscriber[T]) OnComplete() {
	s.enter(OnComplete)
	defer s.exit()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.terminate(Signal[T]{Kind: OnComplete})
}

func (s *Subscriber[T]) terminate(sig Signal[T]) {
	switch {
	case s.up == nil:
		s.violateLocked("%v before OnSubscribe (rule 1.9)", sig)
	case s.terminal:
		s.violateLocked("%v after %s (rule 1.7)", sig, s.terminalNameLocked())
	default:
		s.terminal = true
		s.completed = sig.Kind == OnComplete
		s.err = sig.Err
	}
	s.recordLocked(sig)
}

func (s *Subscriber[T]) terminalNameLocked() string {
	if s.completed {
		return "OnComplete"
	}
	return fmt.Sprintf("OnError(%v)", s.err)
}

// Request asks the publisher for n more items; it counts towards the
// demand that OnNext is checked against when n > 0. Before OnSubscribe the
// request is kept and made when the Subscription arrives. Request passes
// any n, including n <= 0 and calls after Cancel, straight to the
// Subscription, so that tests can exercise rules 3.6 and 3.9.
func (s *Subscriber[T]) Request(n int64) {
	s.mu.Lock()
	if n > 0 {
		s.requested = flow.AddCap(s.requested, n)
	}
	up := s.up
	if up == nil {
		s.queued = append(s.queued, n)
	}
	s.mu.Unlock()
	if up != nil {
		up.Request(n)
	}
}

// Cancel cancels the Subscription, or, before OnSubscribe, makes the
// Subscriber cancel it as soon as it arrives. Items already in flight may
// still arrive and are recorded.
func (s *Subscriber[T]) Cancel() {
	s.mu.Lock()
	s.cancelled = true
	up := s.up
	s.mu.Unlock()
	if up != nil {
		up.Cancel()
	}
}

// Signals returns a copy of every signal received so far, in order,
// including OnSubscribe.
func (s *Subscriber[T]) Signals() []Signal[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Signal[T](nil), s.signals...)
}

// Items returns a copy of the items received so far, in order.
func (s *Subscriber[T]) Items() []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	items := make([]T, 0, s.items)
	for _, sig := range s.signals {
		if sig.Kind == OnNext {
			items = append(items, sig.Item)
		}
	}
	return items
}

// ItemTimes returns a copy of the arrival time of each item received so
// far, in order: times[i] is time.Now when the i-th OnNext was recorded.
// It is for timing tests under testing/synctest, where time.Now is the
// bubble's fake clock, so the times are exact. It is goroutine-safe and
// costs one allocation and a copy.
func (s *Subscriber[T]) ItemTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.times...)
}

// ItemOffsets returns ItemTimes as offsets from start, for comparing the
// arrival of items with cmp.Diff under testing/synctest. It is
// goroutine-safe.
func (s *Subscriber[T]) ItemOffsets(start time.Time) []time.Duration {
	var out []time.Duration
	for _, at := range s.ItemTimes() {
		out = append(out, at.Sub(start))
	}
	return out
}

// Outcome describes how the stream has ended so far, for exact
// assertions: "complete", "error: " and the error's message, or "open"
// when no terminal signal has come. It is goroutine-safe.
func (s *Subscriber[T]) Outcome() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.completed:
		return "complete"
	case s.err != nil:
		return "error: " + s.err.Error()
	}
	return "open"
}

// Err returns the error of the OnError that ended the stream, or nil.
func (s *Subscriber[T]) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Completed reports whether the stream ended with OnComplete.
func (s *Subscriber[T]) Completed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.completed
}

// Terminated reports whether the stream ended, with OnComplete or OnError.
func (s *Subscriber[T]) Terminated() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.terminal
}

// Subscribed reports whether OnSubscribe has been received.
func (s *Subscriber[T]) Subscribed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up != nil
}

// Requested returns the total demand requested so far (the initial
// request included), saturated at flow.Unbounded.
func (s *Subscriber[T]) Requested() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requested
}

// Violations returns the protocol violations detected so far, in order.
// Each was also reported to the TB given to NewSubscriber.
func (s *Subscriber[T]) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// AwaitSubscribed waits up to the timeout for OnSubscribe. On timeout it
// reports an error to the TB and returns false.
func (s *Subscriber[T]) AwaitSubscribed() bool {
	s.rep.Helper()
	if !s.await(s.opts.timeout, func() bool { return s.up != nil }) {
		s.rep.Errorf("flowtest: no OnSubscribe within %v", s.opts.timeout)
		return false
	}
	return true
}

// AwaitItems waits up to the timeout until at least n items have arrived.
// If the stream ends with fewer, or the timeout passes, it reports an
// error to the TB and returns false.
func (s *Subscriber[T]) AwaitItems(n int) bool {
	s.rep.Helper()
	s.await(s.opts.timeout, func() bool { return s.items >= int64(n) || s.terminal })
	s.mu.Lock()
	got, terminal := s.items, s.terminal
	s.mu.Unlock()
	switch {
	case got >= int64(n):
		return true
	case terminal:
		s.rep.Errorf("flowtest: the stream ended after %d items, want %d", got, n)
	default:
		s.rep.Errorf("flowtest: %d items within %v, want %d", got, s.opts.timeout, n)
	}
	return false
}

// AwaitTerminated waits up to the timeout for OnComplete or OnError. On
// timeout it reports an error to the TB and returns false.
func (s *Subscriber[T]) AwaitTerminated() bool {
	s.rep.Helper()
	if !s.await(s.opts.timeout, func() bool { return s.terminal }) {
		s.rep.Errorf("flowtest: no OnComplete or OnError within %v", s.opts.timeout)
		return false
	}
	return true
}

// AwaitCompleted waits up to the timeout for OnComplete. If OnError
// arrives instead, or the timeout passes, it reports an error to the TB
// and returns false.
func (s *Subscriber[T]) AwaitCompleted() bool {
	s.rep.Helper()
	if !s.AwaitTerminated() {
		return false
	}
	if err := s.Err(); err != nil {
		s.rep.Errorf("flowtest: OnError(%v), want OnComplete", err)
		return false
	}
	return true
}

// AwaitError waits up to the timeout for OnError and returns its error. If
// OnComplete arrives instead, or the timeout passes, it reports an error
// to the TB and returns nil.
func (s *Subscriber[T]) AwaitError() error {
	s.rep.Helper()
	if !s.AwaitTerminated() {
		return nil
	}
	err := s.Err()
	if err == nil {
		s.rep.Errorf("flowtest: OnComplete, want OnError")
	}
	return err
}

// ExpectNone waits for the no-signal timeout (20ms by default) and reports
// an error to the TB, and returns false, if any signal arrives meanwhile.
// It is the only real-time wait a test needs to conclude that nothing
// more is coming; it slows a test but never fails a correct publisher.
func (s *Subscriber[T]) ExpectNone() bool {
	s.rep.Helper()
	s.mu.Lock()
	since := len(s.signals)
	s.mu.Unlock()
	if sig, ok := s.signalAfter(since, s.opts.quiet); ok {
		s.rep.Errorf("flowtest: unexpected %v, want no signal", sig)
		return false
	}
	return true
}

// await waits up to d for done, which is called with s.mu held, to hold.
func (s *Subscriber[T]) await(d time.Duration, done func() bool) bool {
	var timer *time.Timer
	for {
		s.mu.Lock()
		if done() {
			s.mu.Unlock()
			return true
		}
		ch := s.changed
		s.waiting++
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(d)
			defer timer.Stop()
		}
		select {
		case <-ch:
			s.mu.Lock()
			s.waiting--
			s.mu.Unlock()
		case <-timer.C:
			s.mu.Lock()
			defer s.mu.Unlock()
			s.waiting--
			return done()
		}
	}
}

// signalAfter waits up to d for a signal other than OnSubscribe at index
// since or later, and returns the first one.
func (s *Subscriber[T]) signalAfter(since int, d time.Duration) (Signal[T], bool) {
	sig, _, ok := s.nextSignal(since, d)
	return sig, ok
}

// nextSignal waits up to d for a signal other than OnSubscribe at index
// from or later, and returns it with its index.
func (s *Subscriber[T]) nextSignal(from int, d time.Duration) (Signal[T], int, bool) {
	var sig Signal[T]
	idx := -1
	find := func() bool {
		for i := from; i < len(s.signals); i++ {
			if s.signals[i].Kind != OnSubscribe {
				sig, idx = s.signals[i], i
				return true
			}
		}
		return false
	}
	ok := s.await(d, find)
	return sig, idx, ok
}

// poke wakes the waiters so that they re-evaluate their condition.
func (s *Subscriber[T]) poke() {
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Subscriber[T]) notifyLocked() {
	if s.waiting > 0 {
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// subscription returns the Subscription received, or nil.
func (s *Subscriber[T]) subscription() flow.Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

func (s *Subscriber[T]) recordLocked(sig Signal[T]) {
	s.signals = append(s.signals, sig)
	s.notifyLocked()
}

func (s *Subscriber[T]) violate(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violateLocked(format, args...)
}

func (s *Subscriber[T]) violateLocked(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.violations = append(s.violations, msg)
	if !s.closed {
		s.rep.Errorf("flowtest: protocol violation: %s", msg)
	}
}

// enter marks the start of a signal. A signal that starts while another
// is being handled is legal only when it re-enters synchronously from an
// outgoing section (a Request or Cancel made by the handler) on the same
// goroutine; that is checked when the section ends.
func (s *Subscriber[T]) enter(k Kind) {
	if s.active.Add(1) == 1 {
		return
	}
	level := s.reentry.Load()
	if level == 0 {
		s.violate("%v delivered while another signal was still being handled (rule 1.3)", k)
		return
	}
	s.nestedN.Add(1)
	s.mu.Lock()
	if s.sampled == nil {
		s.sampled = make(map[int32]int)
	}
	n := s.sampled[level]
	s.sampled[level] = n + 1
	s.mu.Unlock()
	if n >= maxSampled {
		return
	}
	e := nestedEntry{gid: goid(), level: level, sig: k.String()}
	s.mu.Lock()
	s.nested = append(s.nested, e)
	s.mu.Unlock()
}

func (s *Subscriber[T]) exit() { s.active.Add(-1) }

// outgoing runs f, the part of a signal handler that calls the
// Subscription (and the kit's hooks). Signals re-entering during f are
// checked, when f returns, to have been delivered on this goroutine.
func (s *Subscriber[T]) outgoing(f func()) {
	level := s.reentry.Add(1)
	seen := s.nestedN.Load()
	defer func() {
		s.reentry.Add(-1)
		if s.nestedN.Load() == seen {
			return // nothing nested in this section
		}
		s.mu.Lock()
		delete(s.sampled, level)
		var mine []nestedEntry
		keep := s.nested[:0]
		for _, e := range s.nested {
			if e.level == level {
				mine = append(mine, e)
			} else {
				keep = append(keep, e)
			}
		}
		s.nested = keep
		s.mu.Unlock()
		if len(mine) == 0 {
			return
		}
		me := goid()
		for _, e := range mine {
			if e.gid != me {
				s.violate("%s delivered on another goroutine while a signal handler was still running (rule 1.3)", e.sig)
			}
		}
	}()
	f()
}

// goid returns the id of the calling goroutine. It is slow (a stack
// trace), so it is only called when signals nest.
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	const prefix = "goroutine "
	var id uint64
	for _, c := range buf[len(prefix):n] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
