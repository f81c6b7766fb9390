package operators

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
)

// ErrTimeout is matched (errors.Is) by every [*TimeoutError]: the error
// with which TimeoutFirst, TimeoutIdle and TimeoutDemand end a stream,
// and that a call wrapped by WithTimeout returns when it overran.
var ErrTimeout = errors.New("sluice: timeout")

// ErrBackpressureTimeout is matched (errors.Is), besides [ErrTimeout], by
// the error of [TimeoutDemand]: downstream gave no demand for too long.
var ErrBackpressureTimeout = errors.New("sluice: backpressure timeout")

// TimeoutKind says which timeout expired.
type TimeoutKind uint8

const (
	// TimeoutKindFirst: no first item came (TimeoutFirst).
	TimeoutKindFirst TimeoutKind = iota + 1
	// TimeoutKindIdle: no item came while demand was outstanding
	// (TimeoutIdle).
	TimeoutKindIdle
	// TimeoutKindDemand: downstream requested nothing (TimeoutDemand).
	TimeoutKindDemand
	// TimeoutKindCall: one call overran its deadline (WithTimeout).
	TimeoutKindCall
)

// String returns "first", "idle", "demand" or "call".
func (k TimeoutKind) String() string {
	switch k {
	case TimeoutKindFirst:
		return "first"
	case TimeoutKindIdle:
		return "idle"
	case TimeoutKindDemand:
		return "demand"
	case TimeoutKindCall:
		return "call"
	}
	return fmt.Sprintf("TimeoutKind(%d)", uint8(k))
}

// TimeoutError is the error of a timeout stage or of a call wrapped by
// [WithTimeout]. errors.Is(err, ErrTimeout) holds for every one, and
// errors.Is(err, ErrBackpressureTimeout) for Kind TimeoutKindDemand.
type TimeoutError struct {
	// Stage is the name of the stage that timed out; empty for a call.
	Stage string
	// Kind says which timeout expired.
	Kind TimeoutKind
	// After is the duration that was exceeded.
	After time.Duration
	// Err is the call's own error, for TimeoutKindCall (typically
	// context.DeadlineExceeded); nil otherwise.
	Err error
}

var _ error = (*TimeoutError)(nil)

// Error describes the timeout, naming the stage:
// "timeoutIdle#1: no item for 1s while demand was outstanding (idle timeout)".
func (e *TimeoutError) Error() string {
	var what string
	switch e.Kind {
	case TimeoutKindFirst:
		what = fmt.Sprintf("no first item within %v of the first request (first-item timeout)", e.After)
	case TimeoutKindIdle:
		what = fmt.Sprintf("no item for %v while demand was outstanding (idle timeout)", e.After)
	case TimeoutKindDemand:
		what = fmt.Sprintf("no demand from downstream for %v (backpressure timeout)", e.After)
	default:
		what = fmt.Sprintf("call did not finish within %v (call timeout)", e.After)
		if e.Err != nil {
			what += ": " + e.Err.Error()
		}
	}
	if e.Stage == "" {
		return "sluice: " + what
	}
	return e.Stage + ": " + what
}

// Is reports whether target is ErrTimeout, or ErrBackpressureTimeout for
// a demand timeout.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || (target == ErrBackpressureTimeout && e.Kind == TimeoutKindDemand)
}

// Unwrap returns the call's own error, if any.
func (e *TimeoutError) Unwrap() error { return e.Err }

// TimeoutFirst returns a publisher that mirrors src but fails with a
// [*TimeoutError] of kind TimeoutKindFirst, and cancels src, when the
// first item does not arrive within d of downstream's first Request.
// The clock starts at the first Request, not at Subscribe: a subscriber
// that requests nothing is never timed out by it (see [TimeoutDemand]).
//
// Demand: pass-through; Request(n) is forwarded upstream as Request(n) at
// once, and Cancel as Cancel. The timer runs on a time.AfterFunc; it is
// stopped by the first item, or when the stream ends. The subscription is
// goroutine-safe. Cost: after the first item, nothing beside the
// forwarding (about 6–12 ns per item over the bare chain on the 2-core VM,
// BenchmarkResilience). Options: [Name]. It panics if src is nil or
// d <= 0.
func TimeoutFirst[T any](src flow.Publisher[T], d time.Duration, opts ...Option) flow.Publisher[T] {
	return newTimeout(src, d, TimeoutKindFirst, "TimeoutFirst", "timeoutFirst", opts)
}

// TimeoutIdle returns a publisher that mirrors src but fails with a
// [*TimeoutError] of kind TimeoutKindIdle, and cancels src, when no item
// arrives for d while downstream demand is outstanding: d after the last
// item, or after demand went from zero to positive, whichever is later.
// While downstream requests nothing the clock is stopped, so a slow
// consumer is never blamed on the source (that is [TimeoutDemand]).
//
// Precision: to keep clock reads off the item path, the timer looks for
// activity every d/8 while demand is outstanding, so the timeout fires
// between d and d + d/8 after the last item, and exactly d after demand
// starts when no item comes at all.
//
// Demand: pass-through, as [TimeoutFirst]; the stage counts the demand
// it forwards to know when the clock runs. The subscription is
// goroutine-safe. Cost: two atomic compare-and-swaps per item (about
// 25–35 ns per item over the bare chain on the 2-core VM;
// BenchmarkResilience), and 8 timer wake-ups per d while demand is
// outstanding. Options: [Name]. It panics if src is nil or d <= 0.
func TimeoutIdle[T any](src flow.Publisher[T], d time.Duration, opts ...Option) flow.Publisher[T] {
	return newTimeout(src, d, TimeoutKindIdle, "TimeoutIdle", "timeoutIdle", opts)
}

// TimeoutDemand returns a publisher that mirrors src but fails with a
// [*TimeoutError] of kind TimeoutKindDemand (matching both [ErrTimeout]
// and [ErrBackpressureTimeout]), and cancels src, when the outstanding
// downstream demand stays zero for d while the stream is live: from
// Subscribe until the first Request, and from each delivery that uses up
// the demand (once OnNext has returned) until the next Request. It is a
// backpressure timeout by choice — a consumer that stops requesting is
// treated as dead — not a stall report; an upstream that has not
// completed is taken to have items ready, as for a cold source.
//
// Demand: pass-through, as [TimeoutFirst]. The timer is re-armed lazily,
// never per item. The subscription is goroutine-safe. Cost: two atomic
// compare-and-swaps per item (about 25 ns per item over the bare chain
// on the 2-core VM; BenchmarkResilience), and a short lock and a clock
// read when a delivery uses the demand up. Options: [Name]. It panics if
// src is nil or d <= 0.
func TimeoutDemand[T any](src flow.Publisher[T], d time.Duration, opts ...Option) flow.Publisher[T] {
	return newTimeout(src, d, TimeoutKindDemand, "TimeoutDemand", "timeoutDemand", opts)
}

func newTimeout[T any](src flow.Publisher[T], d time.Duration, kind TimeoutKind, fn, stageKind string, opts []Option) flow.Publisher[T] {
	mustSource(fn, src)
	if d <= 0 {
		panic("sluice: " + fn + ": d <= 0")
	}
	_, name := newConfig(stageKind, opts)
	return flow.PublisherFunc[T](func(s flow.Subscriber[T]) {
		t := &timeoutSub[T]{kind: kind, d: d}
		t.init(s, name, stageKind)
		src.Subscribe(t)
	})
}

// The state word of a timeout stage: the low two bits are the mode, the
// rest counts the items delivered (in steps of toItem). OnNext moves the
// mode idle → emitting → idle around each delivery and bumps the count;
// a timeout, an upstream terminal signal or Cancel moves it to done. A
// timeout fires only by a compare-and-swap from the idle word the timer
// observed, so it never overlaps a delivery (rule 1.3), and the count
// tells the idle timer whether items came since it last looked, without
// a clock read per item.
const (
	toIdle     int64 = 0
	toEmitting int64 = 1
	toDone     int64 = 2
	toMode     int64 = 3
	toItem     int64 = 4
)

// idleTicks is how many times per d the idle timer looks for activity
// while demand is outstanding: a timeout fires between d and
// d + d/idleTicks after the last item.
const idleTicks = 8

type timeoutSub[T any] struct {
	relay[T]
	kind TimeoutKind
	d    time.Duration

	state atomic.Int64
	// requested is the total demand downstream has signalled, saturated
	// at Unbounded; the outstanding demand is requested minus the items
	// counted in state, so OnNext needs no demand arithmetic of its own.
	requested atomic.Int64
	armedA    atomic.Bool // armed, readable without the lock
	gotFirst  atomic.Bool // first: an item arrived
	started   atomic.Bool // first: the first Request arrived
	// subscribing is set while downstream's OnSubscribe runs: a timeout
	// then waits, so that OnError never overlaps it (rule 1.3).
	subscribing atomic.Bool
	timerDead   bool // first: the timer is stopped for good; OnNext only

	mu        sync.Mutex // guards the fields below
	timer     *time.Timer
	armed     bool
	stopped   bool
	since     time.Time // idle: last known activity; demand: when demand reached zero
	seenItems int64     // idle: the item count at the last look
}

func (t *timeoutSub[T]) OnSubscribe(up flow.Subscription) {
	t.subscribing.Store(true)
	t.subscribe(up, t)
	t.subscribing.Store(false)
	if t.kind == TimeoutKindDemand {
		t.mu.Lock()
		if t.outstanding(t.state.Load()) == 0 {
			t.since = time.Now()
			t.armLocked(t.d)
		}
		t.mu.Unlock()
	}
}

// Request forwards n upstream and starts the clocks that demand starts.
func (t *timeoutSub[T]) Request(n int64) {
	if n <= 0 {
		t.up.Request(n) // upstream signals the rule 3.9 error through us
		return
	}
	t.probe.Request(n)
	switch t.kind {
	case TimeoutKindFirst:
		t.up.Request(n)
		if !t.started.Load() && t.started.CompareAndSwap(false, true) {
			t.mu.Lock()
			t.armLocked(t.d)
			t.mu.Unlock()
		}
	case TimeoutKindIdle:
		old := t.addRequested(n)
		// Demand went from zero to positive: the idle clock restarts.
		// (With a delivery in flight the timer sees that activity
		// itself, so a Request made from OnNext takes no lock.)
		cur := t.state.Load()
		fresh := cur&toMode == toIdle && old != flow.Unbounded && old == cur>>2
		// The timer is disarmed only when it finds no demand; it clears
		// armedA before it looks, and we look after adding, so one of
		// us sees the other.
		if fresh || !t.armedA.Load() {
			t.mu.Lock()
			if fresh || !t.armed {
				t.since = time.Now()
				t.seenItems = cur &^ toMode
			}
			t.armLocked(t.idleTick())
			t.mu.Unlock()
		}
		t.up.Request(n)
	default:
		t.addRequested(n) // the timer sees it when it fires
		t.up.Request(n)
	}
}

// addRequested adds n (> 0) to the total requested, saturating, and
// returns the previous total.
func (t *timeoutSub[T]) addRequested(n int64) int64 {
	for {
		cur := t.requested.Load()
		if cur == flow.Unbounded || t.requested.CompareAndSwap(cur, flow.AddCap(cur, n)) {
			return cur
		}
	}
}

// outstanding returns the demand not yet met, given the state word cur.
func (t *timeoutSub[T]) outstanding(cur int64) int64 {
	req := t.requested.Load()
	if req == flow.Unbounded {
		return req
	}
	return req - cur>>2
}

func (t *timeoutSub[T]) idleTick() time.Duration { return max(t.d/idleTicks, 1) }

// armLocked arms the timer to fire after d unless it is armed already or
// the stream has ended. t.mu must be held.
func (t *timeoutSub[T]) armLocked(d time.Duration) {
	if t.armed || t.stopped {
		return
	}
	t.armed = true
	t.armedA.Store(true)
	if t.timer == nil {
		t.timer = time.AfterFunc(d, t.fire)
	} else {
		t.timer.Reset(d)
	}
}

// fire is the timer's function: it checks whether the timeout has really
// expired, re-arms the timer if not, and ends the stream if so. It is
// the single place where the stage decides a timeout.
func (t *timeoutSub[T]) fire() {
	t.mu.Lock()
	t.armed = false
	t.armedA.Store(false)
	if t.stopped {
		t.mu.Unlock()
		return
	}
	cur := t.state.Load()
	var rest time.Duration // > 0: look again after rest
	switch t.kind {
	case TimeoutKindFirst:
		if t.gotFirst.Load() {
			t.mu.Unlock()
			return
		}
	case TimeoutKindIdle:
		if cur&toMode == toIdle && t.outstanding(cur) == 0 {
			t.mu.Unlock()
			return // re-armed by the next Request
		}
		now := time.Now()
		if items := cur &^ toMode; items != t.seenItems || cur&toMode == toEmitting {
			t.seenItems, t.since = items, now // active since the last look
		}
		rest = min(t.idleTick(), t.d-now.Sub(t.since))
	default:
		if cur&toMode == toIdle && t.outstanding(cur) != 0 {
			t.mu.Unlock()
			return // re-armed when demand reaches zero again
		}
		rest = t.d - time.Since(t.since)
	}
	if rest <= 0 && (t.subscribing.Load() || cur&toMode != toIdle || !t.state.CompareAndSwap(cur, toDone)) {
		if t.state.Load()&toMode == toDone {
			t.mu.Unlock()
			return
		}
		// OnSubscribe or a delivery is in progress, or an item just
		// came: look again later.
		rest = t.d
		if t.kind == TimeoutKindIdle {
			rest = t.idleTick()
		}
	}
	if rest > 0 {
		t.armLocked(rest)
		t.mu.Unlock()
		return
	}
	t.stopped = true
	t.mu.Unlock()
	t.timedOut()
}

// timedOut ends the stream with the stage's TimeoutError. The caller has
// moved the state to done.
func (t *timeoutSub[T]) timedOut() {
	if p := t.down.Swap(nil); p != nil {
		t.probe.End(probe.Failed)
		t.up.Cancel()
		(*p).OnError(&TimeoutError{Stage: t.name, Kind: t.kind, After: t.d})
	}
}

func (t *timeoutSub[T]) stopTimer() {
	t.mu.Lock()
	t.stopped = true
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
}

func (t *timeoutSub[T]) OnNext(v T) {
	if t.timerDead {
		// TimeoutFirst after its first item: no timer can signal any
		// more, so the deliveries need no guard.
		if p := t.down.Load(); p != nil {
			t.emit(p, v)
		}
		return
	}
	cur := t.state.Load()
	if cur&toMode != toIdle || !t.state.CompareAndSwap(cur, cur|toEmitting) {
		return // timed out or cancelled: an item in flight
	}
	if t.kind == TimeoutKindFirst && !t.gotFirst.Load() {
		t.gotFirst.Store(true)
	}
	if p := t.down.Load(); p != nil {
		t.emit(p, v)
	}
	switch t.kind {
	case TimeoutKindFirst:
		// Stop the timer. If this call stops it, the timer can never
		// fire again and the later items take the fast path; if the
		// timer had already decided to fire, the state is done.
		t.mu.Lock()
		if !t.stopped {
			t.stopped = true
			t.timerDead = true
			if t.timer != nil { // nil when the item came inside the first Request
				t.timer.Stop()
			}
		}
		t.mu.Unlock()
	case TimeoutKindDemand:
		if t.outstanding(cur+toItem) == 0 { // this item used the demand up
			t.mu.Lock()
			if t.outstanding(cur+toItem) == 0 {
				t.since = time.Now()
				t.armLocked(t.d)
			}
			t.mu.Unlock()
		}
	}
	t.state.CompareAndSwap(cur|toEmitting, cur+toItem) // fails only if done
}

// end moves the state to done unless it is done already, and reports
// whether this call did it. Upstream terminal signals come between
// deliveries (rule 1.3), so the mode they see is idle or done.
func (t *timeoutSub[T]) end() bool {
	for {
		cur := t.state.Load()
		if cur&toMode == toDone {
			return false
		}
		if t.state.CompareAndSwap(cur, toDone) {
			return true
		}
	}
}

func (t *timeoutSub[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	if t.end() {
		t.stopTimer()
		t.relay.OnError(err)
	}
}

func (t *timeoutSub[T]) OnComplete() {
	if t.end() {
		t.stopTimer()
		t.relay.OnComplete()
	}
}

// Cancel stops the timer and cancels upstream.
func (t *timeoutSub[T]) Cancel() {
	t.end()
	t.stopTimer()
	t.relay.Cancel()
}

// WithTimeout returns a function that calls f with a context that ends d
// after the call starts (context.WithTimeout of the caller's ctx): the
// per-item timeout of an async stage,
//
//	operators.MapAsync(src, operators.WithTimeout(fetch, 2*time.Second), 8)
//
// When f returns an error after its own deadline passed (and the caller's
// ctx is not done), the error is a [*TimeoutError] of kind
// TimeoutKindCall wrapping f's error: errors.Is matches ErrTimeout and,
// usually, context.DeadlineExceeded. f must honour its ctx for the
// timeout to bound the call. The function is goroutine-safe if f is; it
// costs a context and a timer per call (about 1 µs). It panics if f is nil
// or d <= 0.
func WithTimeout[T, R any](f func(ctx context.Context, v T) (R, error), d time.Duration) func(ctx context.Context, v T) (R, error) {
	mustFunc("WithTimeout", f == nil)
	if d <= 0 {
		panic("sluice: WithTimeout: d <= 0")
	}
	return func(ctx context.Context, v T) (R, error) {
		cctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		r, err := f(cctx, v)
		if err != nil && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
			return r, &TimeoutError{Kind: TimeoutKindCall, After: d, Err: err}
		}
		return r, err
	}
}
