package operators

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// AdaptiveLimit bounds the number of calls in flight with a limit that
// follows the service's health, by AIMD (additive increase,
// multiplicative decrease) as in Netflix's concurrency-limits:
//
//   - a call that succeeds within Target, while at least half the limit
//     was in use, raises the limit by Increase (default 1);
//   - a call that fails (IsFailure) or takes longer than Target
//     multiplies it by Backoff (default 0.9);
//   - the limit stays within [Min, Max].
//
// So a pipeline pushes a healthy service up to Max calls at once, and
// backs off as soon as latency or errors show that it queues. See
// [AdaptiveConfig]. Use it with [MapAsyncAdaptive], or around a call with
// [WithAdaptiveLimit] for any async stage.
//
// The current limit is read with Limit and reported to OnLimit on every
// change, for a metrics gauge. An AdaptiveLimit is goroutine-safe and may
// be shared by several stages that call the same service. Cost: two short
// lock acquisitions and two clock reads per call (about 400 ns on the
// 2-core VM, where a clock read costs about 100 ns; BenchmarkAdaptiveLimit),
// no allocation; a call that must wait for a slot parks on a channel,
// and a release that wakes waiters allocates a new one.
type AdaptiveLimit struct {
	cfg AdaptiveConfig

	mu       sync.Mutex
	limit    float64
	inFlight int
	waiters  int
	wake     chan struct{} // closed and replaced to wake waiters
}

// NewAdaptiveLimit returns a limiter at cfg.Initial. It panics with a
// sluice: message if a field of cfg is invalid (see [AdaptiveConfig]).
func NewAdaptiveLimit(cfg AdaptiveConfig) *AdaptiveLimit {
	bad := func(msg string) { panic("sluice: NewAdaptiveLimit: AdaptiveConfig." + msg) }
	if cfg.Min < 0 {
		bad("Min < 0")
	}
	if cfg.Min == 0 {
		cfg.Min = 1
	}
	switch {
	case cfg.Max < cfg.Min:
		bad("Max < Min (Max is required)")
	case cfg.Target <= 0:
		bad("Target <= 0 (Target is required)")
	case cfg.Increase < 0 || math.IsNaN(cfg.Increase):
		bad("Increase < 0")
	case cfg.Backoff != 0 && !(cfg.Backoff > 0 && cfg.Backoff < 1):
		bad("Backoff outside (0, 1)")
	case cfg.Initial != 0 && (cfg.Initial < cfg.Min || cfg.Initial > cfg.Max):
		bad("Initial outside [Min, Max]")
	}
	if cfg.Initial == 0 {
		cfg.Initial = cfg.Min
	}
	if cfg.Increase == 0 {
		cfg.Increase = 1
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 0.9
	}
	if cfg.IsFailure == nil {
		cfg.IsFailure = defaultIsFailure
	}
	return &AdaptiveLimit{cfg: cfg, limit: float64(cfg.Initial), wake: make(chan struct{})}
}

// Limit returns the current limit: how many calls may be in flight.
func (l *AdaptiveLimit) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.limit)
}

// InFlight returns how many calls are in flight.
func (l *AdaptiveLimit) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight
}

// Max returns the ceiling of the limit.
func (l *AdaptiveLimit) Max() int { return l.cfg.Max }

// Acquire waits until a call may start, and returns the time it started;
// the caller must pass it to Release when the call ends. If ctx is done
// first it returns ctx.Err() and takes no slot.
func (l *AdaptiveLimit) Acquire(ctx context.Context) (time.Time, error) {
	l.mu.Lock()
	for l.inFlight >= int(l.limit) {
		if err := ctx.Err(); err != nil {
			l.mu.Unlock()
			return time.Time{}, err
		}
		l.waiters++
		ch := l.wake
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		l.mu.Lock()
		l.waiters--
	}
	l.inFlight++
	l.mu.Unlock()
	return time.Now(), nil
}

// Release ends a call that started at start (as returned by Acquire) and
// adapts the limit to its latency and its error.
func (l *AdaptiveLimit) Release(start time.Time, err error) {
	rtt := time.Since(start)
	l.mu.Lock()
	defer l.mu.Unlock()
	inUse := l.inFlight // this call included
	l.inFlight--
	old := int(l.limit)
	switch {
	case (err != nil && l.cfg.IsFailure(err)) || rtt > l.cfg.Target:
		l.limit = max(float64(l.cfg.Min), math.Floor(l.limit*l.cfg.Backoff))
	case 2*inUse >= old:
		l.limit = min(float64(l.cfg.Max), l.limit+l.cfg.Increase)
	}
	if now := int(l.limit); now != old && l.cfg.OnLimit != nil {
		l.cfg.OnLimit(now)
	}
	if l.waiters > 0 {
		close(l.wake)
		l.wake = make(chan struct{})
	}
}

// WithAdaptiveLimit returns a function that calls f within the limit l:
// it waits for a slot (returning ctx.Err() if ctx ends first), calls f,
// and feeds its latency and error back to l. Use it with any async stage
// whose concurrency is at least l.Max():
//
//	lim := operators.NewAdaptiveLimit(operators.AdaptiveConfig{Max: 32, Target: 50 * time.Millisecond})
//	out := operators.MapAsync(src, operators.WithAdaptiveLimit(lim, call), lim.Max())
//
// Wrap the single attempt (inside RetryFunc, outside WithTimeout) so that
// the limiter sees every timeout. A panic in f releases the slot as a
// failure and is re-raised. The function is goroutine-safe if f is. It
// panics if l or f is nil.
func WithAdaptiveLimit[T, R any](l *AdaptiveLimit, f func(ctx context.Context, v T) (R, error)) func(ctx context.Context, v T) (R, error) {
	if l == nil {
		panic("sluice: WithAdaptiveLimit: nil AdaptiveLimit")
	}
	mustFunc("WithAdaptiveLimit", f == nil)
	return func(ctx context.Context, v T) (r R, err error) {
		start, err := l.Acquire(ctx)
		if err != nil {
			return r, err
		}
		done := false
		defer func() {
			if !done {
				l.Release(start, errAdaptivePanic)
			}
		}()
		r, err = f(ctx, v)
		done = true
		l.Release(start, err)
		return r, err
	}
}

var errAdaptivePanic = &flow.PanicError{Value: "panic in a call under an AdaptiveLimit"}

// MapAsyncAdaptive is [MapAsync] whose number of calls in flight follows
// l: it runs l.Max() workers, each of which waits for a slot of l before
// it calls f, so that at most l.Limit() calls run at once.
//
// Demand, order, errors, drops, options and goroutines are those of
// MapAsync with concurrency = l.Max(): P + Max items are requested
// upstream at first (P the [Prefetch]), and L = P − P/4 more each time L
// items have been delivered; items wait for a slot after they have been
// taken by a worker. An error of f still ends the stream: combine with
// [RetryFunc] or a fallback to survive the errors that shrink the limit.
// Cost: MapAsync's, plus WithAdaptiveLimit's per call. It panics if src,
// f or l is nil.
func MapAsyncAdaptive[T, R any](src flow.Publisher[T], f func(ctx context.Context, v T) (R, error), l *AdaptiveLimit, opts ...Option) flow.Publisher[R] {
	mustSource("MapAsyncAdaptive", src)
	mustFunc("MapAsyncAdaptive", f == nil)
	if l == nil {
		panic("sluice: MapAsyncAdaptive: nil AdaptiveLimit")
	}
	opts = append([]Option{Name(stage.DeriveName("mapAsyncAdaptive"))}, opts...) // a Name in opts wins
	return MapAsync(src, WithAdaptiveLimit(l, f), l.Max(), opts...)
}
