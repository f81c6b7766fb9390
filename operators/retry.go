package operators

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
)

// Retry returns a publisher that mirrors src and, when src fails with an
// error that policy deems transient, subscribes to src again after a
// backoff delay (exponential, with jitter: see [RetryPolicy]), up to
// policy.MaxAttempts subscriptions in all and within policy.MaxElapsed.
// When it gives up, or the error is not transient, downstream receives
// the last error wrapped with the stage name and the attempt count
// ("retry#1: attempt 3 of 3: …"; errors.Is sees through).
//
// Replay: a cold source (Range, Slice, a file) starts again from its
// beginning on each subscription, so items delivered before a failure
// are delivered again after the retry: downstream sees duplicates, and
// must be idempotent or deduplicate. Retry suits sources that resume by
// themselves (a consumer with a durable cursor, a query with a
// watermark) or that fail before their first item (connect errors).
//
// Demand: Request(n) from downstream is forwarded to the current
// subscription as Request(n). Outstanding demand carries over: a new
// subscription is asked, once, for what downstream requested and has not
// yet received (and nothing while that is zero), so items already
// delivered are never re-requested; during a backoff nothing is
// requested. Cancel cancels the current subscription, or the pending
// retry.
//
// Timers: each delay runs on a time.AfterFunc timer, and the new
// subscription is made from the timer's goroutine; none is left behind
// after the stream ends. The subscription is goroutine-safe. Cost: on the
// item path, an increment and an atomic load beside the forwarding (about
// 6 ns per item over the bare chain on the 2-core VM,
// BenchmarkResilience); a mutex
// and a few atomics per Request; each retry costs a timer and a
// subscription.
// Options: [Name]. Retry panics if src is nil or the policy is invalid.
func Retry[T any](src flow.Publisher[T], policy RetryPolicy, opts ...Option) flow.Publisher[T] {
	mustSource("Retry", src)
	p := policy.resolved("Retry")
	_, name := newConfig("retry", opts)
	return flow.PublisherFunc[T](func(s flow.Subscriber[T]) {
		r := &retrySub[T]{src: src, policy: &p, name: name, start: time.Now()}
		r.down.Store(&s)
		r.probe, r.ctx = probe.Attach(s, "retry", name, probe.Operator)
		s.OnSubscribe(r)
		r.subscribe()
	})
}

// retrySub is both the downstream's subscription and the owner of the
// successive upstream subscriptions (retryInner). Demand is kept by an
// arbiter in the manner of Reactor's MultiSubscriptionSubscriber: the
// outstanding demand lives in requested, touched only by the drain loop
// that wip serialises; Request, the accounting of items received by a
// failed attempt and a new subscription arrive through missed* fields
// and are folded in by the loop, so that no Request is lost or sent
// twice when it races with a switch of subscription.
type retrySub[T any] struct {
	src    flow.Publisher[T]
	policy *RetryPolicy
	name   string
	start  time.Time
	probe  *probe.Stage
	ctx    context.Context

	down atomic.Pointer[flow.Subscriber[T]] // nil once ended or cancelled

	wip             flow.WIP
	missedSub       atomic.Pointer[retryInner[T]]
	missedRequested atomic.Int64
	missedProduced  atomic.Int64
	badN            atomic.Int64 // the first n <= 0
	hasBad          atomic.Bool  // set after badN
	badSent         bool         // drain loop only
	cancelled       atomic.Bool
	requested       int64          // drain loop only
	current         *retryInner[T] // drain loop only

	mu       sync.Mutex // guards timer and attempt
	timer    *time.Timer
	attempts int // subscriptions made so far
}

// Context returns the downstream's context, naming this stage.
func (r *retrySub[T]) Context() context.Context { return r.ctx }

// subscribe makes the next attempt: a new subscription to src.
func (r *retrySub[T]) subscribe() {
	r.mu.Lock()
	r.attempts++
	r.timer = nil
	r.mu.Unlock()
	if r.cancelled.Load() {
		return
	}
	r.src.Subscribe(&retryInner[T]{parent: r})
}

// Request adds n to the outstanding demand and forwards it.
func (r *retrySub[T]) Request(n int64) {
	if n <= 0 {
		if !r.hasBad.Load() {
			r.badN.Store(n)
			r.hasBad.Store(true)
		}
	} else {
		r.probe.Request(n)
		for {
			cur := r.missedRequested.Load()
			if r.missedRequested.CompareAndSwap(cur, flow.AddCap(cur, n)) {
				break
			}
		}
	}
	r.drain()
}

// Cancel cancels the current subscription or the pending retry.
func (r *retrySub[T]) Cancel() {
	if r.down.Swap(nil) == nil {
		return
	}
	r.probe.End(probe.Cancelled)
	r.cancelled.Store(true)
	r.stopTimer()
	r.drain()
}

func (r *retrySub[T]) stopTimer() {
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.mu.Unlock()
}

// drain folds the missed signals into the arbiter's state and forwards
// demand; it is the single place where this stage requests upstream.
func (r *retrySub[T]) drain() {
	if !r.wip.Enter() {
		return
	}
	for missed := int32(1); missed != 0; missed = r.wip.Leave(missed) {
		if r.cancelled.Load() {
			if c := r.current; c != nil {
				r.current = nil
				c.cancel()
			}
			if ms := r.missedSub.Swap(nil); ms != nil {
				ms.cancel()
			}
			continue
		}
		// The subscription first: an attempt's produced count is
		// stored before the next attempt's subscription, so reading in
		// this order never applies a subscription without its count.
		ms := r.missedSub.Swap(nil)
		mr := r.missedRequested.Swap(0)
		mp := r.missedProduced.Swap(0)
		req := r.requested
		if req != flow.Unbounded {
			req = flow.AddCap(req, mr)
			if req != flow.Unbounded {
				req = max(req-mp, 0)
			}
			r.requested = req
		}
		if c := r.current; c != nil && c.ended.Load() {
			r.current = nil // its attempt failed: a retry is pending
		}
		if ms != nil {
			r.current = ms
		}
		if r.hasBad.Load() && !r.badSent {
			r.badSent = true
			if c := r.current; c != nil {
				c.sub.Request(r.badN.Load()) // upstream answers with OnError (rule 3.9)
			} else {
				// Between attempts nothing else signals downstream.
				r.terminate(fmt.Errorf("%s: %w", r.name, flow.NonPositiveRequestError(r.badN.Load())), false)
			}
			continue
		}
		if ms != nil {
			if req > 0 {
				ms.sub.Request(req)
			}
		} else if mr > 0 && r.current != nil {
			r.current.sub.Request(mr)
		}
	}
}

// failed handles the error of the attempt inner, which received produced
// items: it schedules a retry or ends the stream.
func (r *retrySub[T]) failed(inner *retryInner[T], err error) {
	if r.cancelled.Load() {
		return
	}
	r.mu.Lock()
	attempt := r.attempts
	r.mu.Unlock()
	p := r.policy
	if !p.retryable(err) || attempt >= p.MaxAttempts {
		r.terminate(fmt.Errorf("%s: attempt %d of %d: %w", r.name, attempt, p.MaxAttempts, err), false)
		return
	}
	delay := p.backoff(attempt)
	if p.MaxElapsed > 0 && time.Since(r.start)+delay > p.MaxElapsed {
		r.terminate(fmt.Errorf("%s: attempt %d, retry budget %v spent: %w", r.name, attempt, p.MaxElapsed, err), false)
		return
	}
	if p.OnRetry != nil {
		if perr := flow.Catch(func() { p.OnRetry(attempt+1, delay, err) }); perr != nil {
			r.terminate(fmt.Errorf("%s: %w", r.name, perr), false)
			return
		}
	}
	r.missedProduced.Add(inner.produced)
	r.drain()
	r.mu.Lock()
	if !r.cancelled.Load() {
		r.timer = time.AfterFunc(delay, r.subscribe)
	}
	r.mu.Unlock()
}

// terminate ends the stream downstream with err, or completes it.
func (r *retrySub[T]) terminate(err error, complete bool) {
	p := r.down.Swap(nil)
	if p == nil {
		return
	}
	r.cancelled.Store(true)
	r.stopTimer()
	r.drain() // drops the current subscription (already ended)
	if complete {
		r.probe.End(probe.Completed)
		(*p).OnComplete()
		return
	}
	r.probe.End(probe.Failed)
	(*p).OnError(err)
}

// retryInner subscribes to one attempt of src.
type retryInner[T any] struct {
	parent   *retrySub[T]
	sub      flow.Subscription
	produced int64 // written by OnNext only (serial, rule 1.3)
	done     bool
	ended    atomic.Bool // failed; read by the drain loop
}

// Context exposes the stage's context upstream.
func (in *retryInner[T]) Context() context.Context { return in.parent.ctx }

func (in *retryInner[T]) cancel() {
	if in.sub != nil {
		in.sub.Cancel()
	}
}

func (in *retryInner[T]) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if in.sub != nil {
		s.Cancel() // rule 2.5
		return
	}
	in.sub = s
	in.parent.missedSub.Store(in)
	in.parent.drain()
}

func (in *retryInner[T]) OnNext(v T) {
	in.produced++
	if p := in.parent.down.Load(); p != nil {
		if st := in.parent.probe; st != nil {
			st.Next()
			(*p).OnNext(v)
			st.Returned()
			return
		}
		(*p).OnNext(v)
	}
}

func (in *retryInner[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	if in.done {
		return
	}
	in.done = true
	in.ended.Store(true)
	in.parent.failed(in, err)
}

func (in *retryInner[T]) OnComplete() {
	if in.done {
		return
	}
	in.done = true
	in.parent.terminate(nil, true)
}

// RetryFunc returns a function that calls f and, when f fails with an
// error that policy deems transient, calls it again after a backoff delay
// (see [RetryPolicy]), up to policy.MaxAttempts calls in all and within
// policy.MaxElapsed. It is the per-item retry of an async stage:
//
//	operators.MapAsync(src, operators.RetryFunc(fetch, policy), 8)
//
// It returns f's first success, or the last error, wrapped with the
// attempt count ("retry: attempt 3 of 3: …"; errors.Is sees through).
// When ctx is done during a backoff it returns at once an error that
// matches both ctx.Err() and the last error. The returned function is
// goroutine-safe if f, policy.Rand and the hooks are; it costs nothing
// beside f when f succeeds, and a timer per retry. A panic in f is not
// recovered here (the stage that calls it does that). It panics if f is
// nil or the policy is invalid.
func RetryFunc[T, R any](f func(ctx context.Context, v T) (R, error), policy RetryPolicy) func(ctx context.Context, v T) (R, error) {
	mustFunc("RetryFunc", f == nil)
	p := policy.resolved("RetryFunc")
	return func(ctx context.Context, v T) (R, error) {
		var start time.Time
		if p.MaxElapsed > 0 {
			start = time.Now()
		}
		for attempt := 1; ; attempt++ {
			res, err := f(ctx, v)
			if err == nil {
				return res, nil
			}
			if ctx.Err() != nil || !p.retryable(err) || attempt >= p.MaxAttempts {
				return res, fmt.Errorf("retry: attempt %d of %d: %w", attempt, p.MaxAttempts, err)
			}
			delay := p.backoff(attempt)
			if p.MaxElapsed > 0 && time.Since(start)+delay > p.MaxElapsed {
				return res, fmt.Errorf("retry: attempt %d, retry budget %v spent: %w", attempt, p.MaxElapsed, err)
			}
			if p.OnRetry != nil {
				if perr := flow.Catch(func() { p.OnRetry(attempt+1, delay, err) }); perr != nil {
					var zero R
					return zero, perr
				}
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				var zero R
				return zero, fmt.Errorf("retry: %w during backoff after attempt %d: %w", ctx.Err(), attempt, err)
			}
		}
	}
}
