package operators

import (
	"context"
	"errors"
	"fmt"
	"github.com/sluicego/sluice/internal/backoff"
	"math/rand/v2"
	"time"

	"github.com/sluicego/sluice/flow"
)

// This file holds the configuration types of the resilience stages:
// [RetryPolicy] (Retry, RetryFunc), [BreakerConfig] (CircuitBreaker) and
// [AdaptiveConfig] (AdaptiveLimit). Each is a struct whose zero value
// means the safe defaults that each field documents.

// Jitter says how [RetryPolicy] randomises each backoff delay. The zero
// value is FullJitter.
type Jitter uint8

const (
	// FullJitter waits a uniformly random time in [0, d), where d is the
	// exponential delay: the remedy for retry storms recommended by the
	// AWS architecture blog ("Exponential Backoff And Jitter"). The
	// default.
	FullJitter Jitter = iota
	// EqualJitter waits d/2 plus a uniformly random time in [0, d/2):
	// never less than half the exponential delay.
	EqualJitter
	// NoJitter waits exactly d. Clients that retry in lock-step cause
	// retry storms; use it only for tests or a single client.
	NoJitter
)

// String returns "full", "equal" or "none".
func (j Jitter) String() string {
	switch j {
	case FullJitter:
		return "full"
	case EqualJitter:
		return "equal"
	case NoJitter:
		return "none"
	}
	return fmt.Sprintf("Jitter(%d)", uint8(j))
}

// RetryPolicy says when and how soon [Retry] resubscribes and
// [RetryFunc] calls again. The zero value is a safe policy: 3 attempts in
// all, full jitter over 100ms, 200ms, … capped at 10s, every error
// transient except the ones listed at Retryable.
//
// Retry number k (k = 1 for the first retry, after attempt 1 failed)
// waits a delay drawn from d(k) = min(MaxDelay, InitialDelay ×
// Multiplier^(k−1)) according to Jitter. A policy value is read-only
// once it is passed to a stage; it is safe to share between stages and
// goroutines if Rand and the hooks are.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts, the first one included: 0 means 3;
	// 1 means never retry. Negative panics.
	MaxAttempts int
	// InitialDelay is d(1); 0 means 100ms. Negative panics.
	InitialDelay time.Duration
	// MaxDelay caps d(k); 0 means 10s. Less than InitialDelay panics.
	MaxDelay time.Duration
	// Multiplier is the growth factor of d(k); 0 means 2. Less than 1
	// panics.
	Multiplier float64
	// MaxElapsed bounds the time from the first attempt to the start of
	// the last retry: a retry whose delay would end later is not made,
	// and the last error is returned. 0 means no bound (MaxAttempts still
	// holds). Negative panics.
	MaxElapsed time.Duration
	// Jitter randomises the delays; the zero value is FullJitter.
	Jitter Jitter
	// Retryable reports whether err is transient and worth a retry. Nil
	// means every error but context.Canceled (someone gave up) and a
	// *flow.PanicError (a bug is not transient); a timeout, such as a
	// [*TimeoutError] of WithTimeout, is retried. Whatever it says,
	// flow.ErrNonPositiveRequest is never retried (it is the caller's
	// bug), and RetryFunc never retries once its ctx is done. It is
	// called on the goroutine that saw the error.
	Retryable func(err error) bool
	// OnRetry, if set, is called before each retry with the number of
	// the attempt about to start (2 for the first retry), the delay it
	// will wait, and the error that caused it: log it, count it. It must
	// not block. A panic in it ends the stream (Retry) or the call
	// (RetryFunc) with a *flow.PanicError.
	OnRetry func(attempt int, delay time.Duration, err error)
	// Rand returns a uniformly random number in [0, 1) for the jitter;
	// nil means math/rand/v2.Float64. Set it in tests to assert exact
	// delays. It must be goroutine-safe if the policy is shared.
	Rand func() float64
}

// Default values of RetryPolicy.
const (
	DefaultRetryAttempts     = 3
	DefaultRetryInitialDelay = 100 * time.Millisecond
	DefaultRetryMaxDelay     = 10 * time.Second
	DefaultRetryMultiplier   = 2.0
)

// resolved returns p with its defaults filled in, and panics with a
// sluice: message for kind when a field is invalid.
func (p RetryPolicy) resolved(kind string) RetryPolicy {
	bad := func(msg string) { panic("sluice: " + kind + ": RetryPolicy." + msg) }
	switch {
	case p.MaxAttempts < 0:
		bad("MaxAttempts < 0")
	case p.InitialDelay < 0:
		bad("InitialDelay < 0")
	case p.MaxDelay < 0:
		bad("MaxDelay < 0")
	case p.MaxElapsed < 0:
		bad("MaxElapsed < 0")
	case p.Multiplier != 0 && !(p.Multiplier >= 1): // also rejects NaN
		bad("Multiplier < 1")
	case p.Jitter > NoJitter:
		bad("unknown Jitter")
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultRetryAttempts
	}
	if p.InitialDelay == 0 {
		p.InitialDelay = DefaultRetryInitialDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = max(DefaultRetryMaxDelay, p.InitialDelay)
	}
	if p.MaxDelay < p.InitialDelay {
		bad("MaxDelay < InitialDelay")
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultRetryMultiplier
	}
	if p.Rand == nil {
		p.Rand = rand.Float64
	}
	if p.Retryable == nil {
		p.Retryable = defaultRetryable
	}
	return p
}

// Backoff returns the delay before retry number k (k >= 1, the retry
// after attempt k failed), with the policy's defaults, jitter and Rand.
// It is what Retry and RetryFunc wait; it is exported for tests and for
// callers that schedule retries of their own. k < 1 panics.
func (p RetryPolicy) Backoff(k int) time.Duration {
	if k < 1 {
		panic("sluice: RetryPolicy.Backoff: k < 1")
	}
	q := p.resolved("RetryPolicy.Backoff")
	return q.backoff(k)
}

// backoff is Backoff on a resolved policy.
func (p *RetryPolicy) backoff(k int) time.Duration {
	u := 0.0
	if p.Jitter != NoJitter {
		u = p.Rand()
	}
	return backoff.Delay(k, p.InitialDelay, p.MaxDelay, p.Multiplier, backoff.Jitter(p.Jitter), u)
}

// retryable applies Retryable, but never retries a protocol error.
func (p *RetryPolicy) retryable(err error) bool {
	if errors.Is(err, flow.ErrNonPositiveRequest) {
		return false
	}
	return p.Retryable(err)
}

func defaultRetryable(err error) bool {
	var pe *flow.PanicError
	return !errors.As(err, &pe) && !errors.Is(err, context.Canceled)
}

// BreakerConfig configures a [CircuitBreaker]. The zero value means the
// defaults that each field documents: a window of the last 20 calls,
// opening at 50 % failures once 10 calls are in the window, a 5s
// cool-down and one probe.
//
// The failure rate is measured over a sliding window of one of two kinds:
//
//   - count-based (WindowDuration is 0, the default): the last Window
//     calls;
//   - time-based (WindowDuration is set, Window must be 0): the calls
//     that completed in the last WindowDuration, as Resilience4j's
//     TIME_BASED window. The calls are counted in a ring of
//     WindowBuckets buckets of WindowDuration / WindowBuckets each, the
//     current one included, and a bucket is forgotten as a whole when
//     it falls out of the window: a call counts for more than
//     WindowDuration − WindowDuration/WindowBuckets and at most
//     WindowDuration after it completed. Bucket boundaries are fixed
//     multiples of the bucket width from the breaker's construction.
//     Memory is 24 bytes per bucket, whatever the call rate.
//
// Invalid combinations panic in NewCircuitBreaker: Window and
// WindowDuration both set; WindowBuckets without WindowDuration;
// WindowDuration not a whole multiple of WindowBuckets nanoseconds;
// SlowCallRate without SlowCallDuration.
type BreakerConfig struct {
	// Name names the breaker in its errors; empty means "breaker#N".
	Name string
	// Window is the number of most recent calls (a count-based sliding
	// window) over which the failure rate is measured; 0 means 20, unless
	// WindowDuration is set. Negative panics; set together with
	// WindowDuration panics.
	Window int
	// WindowDuration, if set, makes the window time-based: the failure
	// rate is measured over the calls that completed in the last
	// WindowDuration (see above). 0 means a count-based window. Negative
	// panics.
	WindowDuration time.Duration
	// WindowBuckets is the number of buckets of a time-based window: the
	// window forgets calls a bucket (WindowDuration / WindowBuckets) at a
	// time, so more buckets make its edge sharper and cost 24 bytes each.
	// 0 means 10: the edge is within a tenth of WindowDuration; set it to
	// the number of seconds in WindowDuration for Resilience4j's one
	// bucket per second, or to 1 for a fixed window that restarts every
	// WindowDuration. Negative panics; set without WindowDuration panics;
	// WindowDuration must be a whole multiple of WindowBuckets
	// nanoseconds (any whole number of microseconds is, with the default)
	// or it panics.
	WindowBuckets int
	// MinCalls is how many calls the window must hold before the rate is
	// judged; 0 means min(10, Window), or 10 with a time-based window.
	// Negative panics, and so does more than Window with a count-based
	// window.
	MinCalls int
	// FailureRate opens the breaker when failures / calls in the window
	// reach it; 0 means 0.5. Outside (0, 1] panics. A count-based window
	// judges its rates when a failure or a slow call is recorded; a
	// time-based one, whose rates also change as old calls expire, when
	// any call is recorded (as Resilience4j does): a success may open it,
	// when it brings the window to MinCalls or when older successes have
	// expired.
	FailureRate float64
	// SlowCallDuration, if set, makes the breaker time its calls as
	// well: a call that takes longer than SlowCallDuration, from its
	// admission to its return, is slow, whether it succeeds or fails, and
	// the breaker opens when slow calls / calls in the window reach
	// SlowCallRate (Resilience4j's slowCallDurationThreshold), so that a
	// service that answers too late is treated like one that fails. A
	// slow failure counts in both rates. While half-open, a slow probe
	// counts as a failed one. 0 means calls are not timed. Negative
	// panics.
	SlowCallDuration time.Duration
	// SlowCallRate opens the breaker when slow calls / calls in the
	// window reach it; 0 means 1 (every call slow, Resilience4j's
	// default). Outside (0, 1] panics; set without SlowCallDuration
	// panics.
	SlowCallRate float64
	// CoolDown is how long the breaker stays open before it lets probes
	// through (half-open); 0 means 5s. Negative panics.
	CoolDown time.Duration
	// HalfOpenProbes is how many calls are let through at once while
	// half-open; when that many have succeeded the breaker closes, and
	// the first failure opens it again. 0 means 1. Negative panics.
	HalfOpenProbes int
	// IsFailure reports whether an error counts as a failure of the
	// protected service; nil means every error except context.Canceled
	// (the caller gave up, the service did not fail). Errors that are not
	// failures count as successes.
	IsFailure func(err error) bool
	// OnStateChange, if set, is called on every transition, with the
	// breaker's lock held so that transitions are reported in order. It
	// must be quick and must not call the breaker.
	OnStateChange func(from, to BreakerState)
}

// AdaptiveConfig configures an [AdaptiveLimit]: an AIMD limit on the
// number of calls in flight. The zero value is not valid: Max and Target
// are required.
type AdaptiveConfig struct {
	// Min is the floor of the limit; 0 means 1. Negative panics.
	Min int
	// Max is the ceiling of the limit, and the number of workers of
	// MapAsyncAdaptive. Required: less than Min, or 0, panics.
	Max int
	// Initial is the starting limit; 0 means Min. Outside [Min, Max]
	// panics.
	Initial int
	// Target is the latency above which a call counts as a sign of
	// overload. Required: <= 0 panics.
	Target time.Duration
	// Increase is added to the limit after each call that succeeds
	// within Target while at least half the limit was in use; 0 means 1.
	// Negative panics.
	Increase float64
	// Backoff multiplies the limit after a call that fails or exceeds
	// Target; 0 means 0.9 (Netflix concurrency-limits' AIMD default).
	// Outside (0, 1) panics.
	Backoff float64
	// IsFailure reports whether an error is a sign of overload (a
	// timeout, a 429, a 503) that must shrink the limit; nil means every
	// error except context.Canceled. Errors that are not failures are
	// judged by their latency like successes.
	IsFailure func(err error) bool
	// OnLimit, if set, is called with the new limit each time its integer
	// value changes, with the limiter's lock held, so that changes are
	// reported in order: wire it to a gauge. It must be quick and must
	// not call the limiter.
	OnLimit func(limit int)
}

func defaultIsFailure(err error) bool { return !errors.Is(err, context.Canceled) }
