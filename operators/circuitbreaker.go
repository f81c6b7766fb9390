package operators

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluicego/sluice/internal/stage"
)

// ErrCircuitOpen is matched (errors.Is) by the error that a call through
// an open [CircuitBreaker] fails with at once, without calling the
// protected function. The error names the breaker.
var ErrCircuitOpen = errors.New("sluice: circuit open")

// BreakerState is the state of a [CircuitBreaker].
type BreakerState int32

const (
	// BreakerClosed lets every call through and measures failures.
	BreakerClosed BreakerState = iota
	// BreakerOpen rejects every call with ErrCircuitOpen until the
	// cool-down has passed.
	BreakerOpen
	// BreakerHalfOpen lets a few probe calls through: if they succeed
	// the breaker closes, if one fails it opens again.
	BreakerHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("BreakerState(%d)", int32(s))
}

// CircuitBreaker stops calling a failing service, so that it can
// recover and callers fail fast instead of queueing behind timeouts. It
// is closed at first; it opens when the failure rate over a sliding
// window reaches FailureRate (once MinCalls are in the window): the last
// Window calls, or with WindowDuration set the calls of the last
// WindowDuration (a time-based window, kept in WindowBuckets buckets);
// after CoolDown it turns half-open on the next call and lets up to
// HalfOpenProbes calls through, closing when they all succeed and
// opening again at the first failure. With SlowCallDuration set it also
// opens when the rate of slow calls reaches SlowCallRate, and a slow probe
// counts as a failed one. See [BreakerConfig].
//
// Use it around the call of an async stage with [Protect]:
//
//	cb := operators.NewCircuitBreaker(operators.BreakerConfig{CoolDown: 10 * time.Second})
//	out := operators.MapAsync(src, operators.Protect(cb, call, nil), 8)
//
// One breaker may protect several stages and callers: it guards the
// service, not the stream. A rejected call costs nothing downstream but
// its error; with a fallback it becomes a degraded result instead, and the
// stream goes on.
//
// Results of calls that started in an earlier state (a slow call that
// returns after the breaker opened) are not counted. The open → half-open
// transition happens lazily, at the first call after the cool-down.
//
// A CircuitBreaker is goroutine-safe. Cost: two short lock acquisitions
// and a deferred call per call (about 110 ns in all on the 2-core VM,
// BenchmarkCircuitBreaker), no allocation; a rejected call allocates
// nothing either. A time-based window adds a clock read per completed
// call, and a call that completes after a quiet spell clears the buckets
// that expired meanwhile: at most WindowBuckets of them, each cleared
// once per bucket width whatever the call rate. SlowCallDuration adds a
// clock read at admission and one at completion (shared with the
// time-based window's).
type CircuitBreaker struct {
	cfg     BreakerConfig
	name    string
	openErr error
	origin  time.Time     // time-based window: bucket 0 starts here
	width   time.Duration // time-based window: the width of a bucket

	mu        sync.Mutex
	state     BreakerState
	gen       uint64 // bumped on every transition
	window    []bool // count-based: true is a failure; a ring of the last calls
	slowWin   []bool // count-based with SlowCallDuration: true is a slow call, beside window
	pos       int
	buckets   []breakerBucket // time-based: a ring of the last buckets, nil if count-based
	head      int64           // time-based: the number of the current bucket, at buckets[head%len]
	count     int             // calls in the window
	failures  int             // failures in the window
	slow      int             // slow calls in the window
	openedAt  time.Time
	probes    int // half-open: calls in flight
	successes int // half-open: probes that succeeded
}

// breakerBucket counts the calls that completed during one bucket of a
// time-based window.
type breakerBucket struct {
	calls, failures, slow int
}

// NewCircuitBreaker returns a closed breaker. It panics with a sluice:
// message if a field of cfg is invalid (see [BreakerConfig]).
func NewCircuitBreaker(cfg BreakerConfig) *CircuitBreaker {
	bad := func(msg string) { panic("sluice: NewCircuitBreaker: BreakerConfig." + msg) }
	switch {
	case cfg.Window < 0:
		bad("Window < 0")
	case cfg.WindowDuration < 0:
		bad("WindowDuration < 0")
	case cfg.WindowBuckets < 0:
		bad("WindowBuckets < 0")
	case cfg.WindowDuration != 0 && cfg.Window != 0:
		bad("Window and WindowDuration both set")
	case cfg.WindowBuckets != 0 && cfg.WindowDuration == 0:
		bad("WindowBuckets without WindowDuration")
	case cfg.MinCalls < 0:
		bad("MinCalls < 0")
	case cfg.CoolDown < 0:
		bad("CoolDown < 0")
	case cfg.HalfOpenProbes < 0:
		bad("HalfOpenProbes < 0")
	case cfg.FailureRate != 0 && !(cfg.FailureRate > 0 && cfg.FailureRate <= 1):
		bad("FailureRate outside (0, 1]")
	case cfg.SlowCallDuration < 0:
		bad("SlowCallDuration < 0")
	case cfg.SlowCallRate != 0 && cfg.SlowCallDuration == 0:
		bad("SlowCallRate without SlowCallDuration")
	case cfg.SlowCallRate != 0 && !(cfg.SlowCallRate > 0 && cfg.SlowCallRate <= 1):
		bad("SlowCallRate outside (0, 1]")
	}
	timed := cfg.WindowDuration != 0
	if timed {
		if cfg.WindowBuckets == 0 {
			cfg.WindowBuckets = 10
		}
		if cfg.WindowDuration%time.Duration(cfg.WindowBuckets) != 0 {
			bad("WindowDuration not a multiple of WindowBuckets nanoseconds")
		}
		if cfg.MinCalls == 0 {
			cfg.MinCalls = 10
		}
	} else {
		if cfg.Window == 0 {
			cfg.Window = 20
		}
		if cfg.MinCalls == 0 {
			cfg.MinCalls = min(10, cfg.Window)
		}
		if cfg.MinCalls > cfg.Window {
			bad("MinCalls > Window")
		}
	}
	if cfg.FailureRate == 0 {
		cfg.FailureRate = 0.5
	}
	if cfg.SlowCallDuration != 0 && cfg.SlowCallRate == 0 {
		cfg.SlowCallRate = 1
	}
	if cfg.CoolDown == 0 {
		cfg.CoolDown = 5 * time.Second
	}
	if cfg.HalfOpenProbes == 0 {
		cfg.HalfOpenProbes = 1
	}
	if cfg.IsFailure == nil {
		cfg.IsFailure = defaultIsFailure
	}
	name := cfg.Name
	if name == "" {
		name = stage.DeriveName("breaker")
	}
	cb := &CircuitBreaker{
		cfg:     cfg,
		name:    name,
		openErr: fmt.Errorf("%s: %w", name, ErrCircuitOpen),
	}
	if timed {
		cb.origin = time.Now()
		cb.width = cfg.WindowDuration / time.Duration(cfg.WindowBuckets)
		cb.buckets = make([]breakerBucket, cfg.WindowBuckets)
	} else {
		cb.window = make([]bool, cfg.Window)
		if cfg.SlowCallDuration != 0 {
			cb.slowWin = make([]bool, cfg.Window)
		}
	}
	return cb
}

// Name returns the breaker's name.
func (cb *CircuitBreaker) Name() string { return cb.name }

// State returns the current state. An open breaker whose cool-down has
// passed reports BreakerOpen until the next call turns it half-open.
func (cb *CircuitBreaker) State() BreakerState {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.state
}

// Do calls fn through the breaker: at once with an error matching
// ErrCircuitOpen if the breaker rejects the call, and otherwise fn(ctx),
// whose result it records. A panic in fn counts as a failure and is
// re-raised.
func (cb *CircuitBreaker) Do(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	gen, err := cb.acquire()
	if err != nil {
		return err
	}
	start := cb.start()
	done := false
	defer func() {
		if !done {
			cb.release(gen, start, true) // fn panicked
		}
	}()
	err = fn(ctx)
	done = true
	cb.release(gen, start, err != nil && cb.cfg.IsFailure(err))
	return err
}

// acquire admits a call and returns the generation it belongs to, or
// the breaker's open error.
func (cb *CircuitBreaker) acquire() (uint64, error) {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.state == BreakerOpen && time.Since(cb.openedAt) >= cb.cfg.CoolDown {
		cb.toLocked(BreakerHalfOpen)
	}
	switch cb.state {
	case BreakerClosed:
		return cb.gen, nil
	case BreakerHalfOpen:
		if cb.probes < cb.cfg.HalfOpenProbes {
			cb.probes++
			return cb.gen, nil
		}
	}
	return 0, cb.openErr
}

// start returns the time at which an admitted call starts, if the
// breaker times calls, and the zero Time otherwise.
func (cb *CircuitBreaker) start() time.Time {
	if cb.cfg.SlowCallDuration == 0 {
		return time.Time{}
	}
	return time.Now()
}

// release records the result of a call admitted in generation gen and
// started at start (see cb.start).
func (cb *CircuitBreaker) release(gen uint64, start time.Time, failed bool) {
	var now time.Duration // since cb.origin, for a time-based window
	slow := false
	if cb.buckets != nil || cb.cfg.SlowCallDuration != 0 {
		t := time.Now() // off the lock; recordTimedLocked copes with races
		now = t.Sub(cb.origin)
		slow = cb.cfg.SlowCallDuration != 0 && t.Sub(start) > cb.cfg.SlowCallDuration
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if gen != cb.gen {
		return // admitted before a transition: not counted
	}
	switch cb.state {
	case BreakerClosed:
		if cb.buckets != nil {
			cb.recordTimedLocked(now, failed, slow)
			return
		}
		if cb.count == len(cb.window) {
			if cb.window[cb.pos] {
				cb.failures--
			}
			if cb.slowWin != nil && cb.slowWin[cb.pos] {
				cb.slow--
			}
		} else {
			cb.count++
		}
		cb.window[cb.pos] = failed
		if cb.slowWin != nil {
			cb.slowWin[cb.pos] = slow
		}
		cb.pos = (cb.pos + 1) % len(cb.window)
		if slow {
			cb.slow++
		}
		if failed {
			cb.failures++
		}
		if failed || slow {
			cb.tripLocked()
		}
	case BreakerHalfOpen:
		cb.probes--
		if failed || slow {
			cb.toLocked(BreakerOpen)
			return
		}
		cb.successes++
		if cb.successes >= cb.cfg.HalfOpenProbes {
			cb.toLocked(BreakerClosed)
		}
	}
}

// recordTimedLocked records in a time-based window the outcome of a call
// that completed at now (since cb.origin), and opens the breaker if the
// rate is reached. cb.mu must be held.
func (cb *CircuitBreaker) recordTimedLocked(now time.Duration, failed, slow bool) {
	// A call whose clock read raced with a later one's is counted in the
	// later one's bucket: the ring only moves forward.
	if e := int64(now / cb.width); e > cb.head {
		cb.advanceLocked(e)
	}
	b := &cb.buckets[cb.head%int64(len(cb.buckets))]
	b.calls++
	cb.count++
	if failed {
		b.failures++
		cb.failures++
	}
	if slow {
		b.slow++
		cb.slow++
	}
	cb.tripLocked()
}

// tripLocked opens the breaker if the window holds MinCalls and its
// failure or slow-call rate is reached. cb.mu must be held.
func (cb *CircuitBreaker) tripLocked() {
	if cb.count < cb.cfg.MinCalls {
		return
	}
	n := float64(cb.count)
	if float64(cb.failures) >= cb.cfg.FailureRate*n ||
		cb.cfg.SlowCallDuration != 0 && float64(cb.slow) >= cb.cfg.SlowCallRate*n {
		cb.toLocked(BreakerOpen)
	}
}

// advanceLocked makes bucket e (> cb.head) the current one, forgetting
// the buckets that fall out of the window: at most len(cb.buckets)
// steps. cb.mu must be held.
func (cb *CircuitBreaker) advanceLocked(e int64) {
	n := int64(len(cb.buckets))
	if e-cb.head >= n {
		clear(cb.buckets) // the whole window has expired
		cb.count, cb.failures, cb.slow = 0, 0, 0
	} else {
		for i := cb.head + 1; i <= e; i++ {
			b := &cb.buckets[i%n]
			cb.count -= b.calls
			cb.failures -= b.failures
			cb.slow -= b.slow
			*b = breakerBucket{}
		}
	}
	cb.head = e
}

// toLocked moves to state to, resetting what the new state measures, and
// reports the change. cb.mu must be held.
func (cb *CircuitBreaker) toLocked(to BreakerState) {
	from := cb.state
	cb.state = to
	cb.gen++
	cb.probes, cb.successes = 0, 0
	switch to {
	case BreakerOpen:
		cb.openedAt = time.Now()
	case BreakerClosed:
		clear(cb.window)
		clear(cb.slowWin)
		clear(cb.buckets)
		cb.pos, cb.count, cb.failures, cb.slow = 0, 0, 0, 0
	}
	if h := cb.cfg.OnStateChange; h != nil {
		h(from, to)
	}
}

// Protect returns a function that calls f through cb, for an async
// stage (MapAsync, MapAsyncAdaptive) or any caller:
//
//	operators.MapAsync(src, operators.Protect(cb, call, nil), 8)
//
// While cb rejects calls, the function returns at once: fallback(ctx, v,
// err) if fallback is not nil (a cached or degraded result; the stream
// goes on), and otherwise the zero R and err, which matches
// ErrCircuitOpen (an async stage ends the stream with it, unless an outer
// RetryFunc retries it: a policy that retries ErrCircuitOpen after the
// cool-down is a sound way to wait for the service). Errors of f that
// cb.IsFailure accepts count as failures; a panic in f counts as one and
// is re-raised for the stage to recover. The function is goroutine-safe
// if f and fallback are. It panics if cb or f is nil.
func Protect[T, R any](cb *CircuitBreaker, f func(ctx context.Context, v T) (R, error), fallback func(ctx context.Context, v T, err error) (R, error)) func(ctx context.Context, v T) (R, error) {
	if cb == nil {
		panic("sluice: Protect: nil CircuitBreaker")
	}
	mustFunc("Protect", f == nil)
	return func(ctx context.Context, v T) (r R, err error) {
		gen, err := cb.acquire()
		if err != nil {
			if fallback != nil {
				return fallback(ctx, v, err)
			}
			return r, err
		}
		start := cb.start()
		done := false
		defer func() {
			if !done {
				cb.release(gen, start, true) // f panicked
			}
		}()
		r, err = f(ctx, v)
		done = true
		cb.release(gen, start, err != nil && cb.cfg.IsFailure(err))
		return r, err
	}
}
