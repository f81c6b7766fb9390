package operators_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// A source whose first connection fails is subscribed to again after a
// backoff with jitter; downstream sees only the successful attempt.
func ExampleRetry() {
	var dials atomic.Int32
	conn := flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		if dials.Add(1) == 1 {
			flow.Reject(s, errors.New("connection refused"))
			return
		}
		sources.Range(1, 3).Subscribe(s)
	})
	policy := operators.RetryPolicy{
		MaxAttempts:  5,
		InitialDelay: time.Millisecond,
		OnRetry: func(attempt int, _ time.Duration, err error) {
			fmt.Printf("attempt %d after: %v\n", attempt, err)
		},
	}
	got, err := sinks.Collect(context.Background(), operators.Retry[int](conn, policy))
	fmt.Println(got, err)
	// Output:
	// attempt 2 after: connection refused
	// [1 2 3] <nil>
}

// Per-item retries and timeouts around the call of an async stage: each
// attempt gets 50ms, and a failed attempt is retried with backoff.
func ExampleRetryFunc() {
	var calls atomic.Int32
	fetch := func(ctx context.Context, id int) (string, error) {
		if id == 2 && calls.Add(1) < 3 {
			<-ctx.Done() // the first two attempts for item 2 hang
			return "", ctx.Err()
		}
		return fmt.Sprintf("item %d", id), nil
	}
	call := operators.RetryFunc(
		operators.WithTimeout(fetch, 50*time.Millisecond),
		operators.RetryPolicy{InitialDelay: time.Millisecond}, // 3 attempts, full jitter
	)
	got, err := sinks.Collect(context.Background(),
		operators.MapAsync(sources.Range(1, 3), call, 2, operators.Ordered()))
	fmt.Println(got, err, calls.Load())
	// Output:
	// [item 1 item 2 item 3] <nil> 3
}

// A source that goes quiet while demand is outstanding is cut off.
func ExampleTimeoutIdle() {
	quiet := flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		s.OnSubscribe(silent{}) // never emits
	})
	_, err := sinks.Collect(context.Background(),
		operators.TimeoutIdle[int](quiet, 10*time.Millisecond, operators.Name("feed")))
	fmt.Println(err)
	fmt.Println(errors.Is(err, operators.ErrTimeout))
	// Output:
	// feed: no item for 10ms while demand was outstanding (idle timeout)
	// true
}

// silent is the subscription of a source that never emits.
type silent struct{}

func (silent) Request(int64) {}
func (silent) Cancel()       {}

// RateLimit paces the requests it makes upstream: 5 items at 100 per
// second with no burst take 40ms at least, and none is dropped.
func ExampleRateLimit() {
	start := time.Now()
	got, err := sinks.Collect(context.Background(), operators.RateLimit(sources.Range(0, 5), 100, 1))
	fmt.Println(got, err, time.Since(start) >= 40*time.Millisecond)
	// Output:
	// [0 1 2 3 4] <nil> true
}

// A circuit breaker around the call of an async stage: once the service
// fails, calls go to the fallback at once instead of waiting for it.
func ExampleProtect() {
	cb := operators.NewCircuitBreaker(operators.BreakerConfig{
		Name: "prices", Window: 4, MinCalls: 2, CoolDown: time.Minute,
		OnStateChange: func(from, to operators.BreakerState) { fmt.Println("breaker:", from, "->", to) },
	})
	price := func(ctx context.Context, id int) (string, error) {
		if id >= 2 {
			return "", errors.New("503 Service Unavailable")
		}
		return fmt.Sprintf("%d: 9.99", id), nil
	}
	cached := func(ctx context.Context, id int, err error) (string, error) {
		return fmt.Sprintf("%d: cached", id), nil
	}
	call := operators.Protect(cb, price, cached)
	for id := range 5 {
		r, err := call(context.Background(), id)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(r)
	}
	// Output:
	// 0: 9.99
	// 1: 9.99
	// error: 503 Service Unavailable
	// breaker: closed -> open
	// error: 503 Service Unavailable
	// 4: cached
}

// A breaker that judges the calls of the last minute, whatever their
// number, kept in six buckets of 10s: it opens when half of them have
// failed, once 4 are in the window.
func ExampleBreakerConfig_windowDuration() {
	cb := operators.NewCircuitBreaker(operators.BreakerConfig{
		Name: "search", WindowDuration: time.Minute, WindowBuckets: 6, MinCalls: 4,
		OnStateChange: func(from, to operators.BreakerState) { fmt.Println("breaker:", from, "->", to) },
	})
	unavailable := errors.New("503 Service Unavailable")
	for _, result := range []error{nil, unavailable, nil, unavailable, nil} {
		err := cb.Do(context.Background(), func(context.Context) error { return result })
		fmt.Println("call:", err)
	}
	// Output:
	// call: <nil>
	// call: 503 Service Unavailable
	// call: <nil>
	// breaker: closed -> open
	// call: 503 Service Unavailable
	// call: search: sluice: circuit open
}

// A breaker that treats a service that answers too late like one that
// fails: a call that takes more than 1ms is slow, and the breaker opens
// when every call in the window is slow (SlowCallRate 0 means 1), once
// 2 are in it. The calls succeed, but the third is not made.
func ExampleBreakerConfig_slowCalls() {
	cb := operators.NewCircuitBreaker(operators.BreakerConfig{
		Name: "search", Window: 10, MinCalls: 2, SlowCallDuration: time.Millisecond,
		OnStateChange: func(from, to operators.BreakerState) { fmt.Println("breaker:", from, "->", to) },
	})
	for range 3 {
		err := cb.Do(context.Background(), func(context.Context) error {
			time.Sleep(2 * time.Millisecond)
			return nil
		})
		fmt.Println("call:", err)
	}
	// Output:
	// call: <nil>
	// breaker: closed -> open
	// call: <nil>
	// call: search: sluice: circuit open
}

// The number of calls in flight adapts to the service's latency, between
// a floor and a ceiling.
func ExampleMapAsyncAdaptive() {
	lim := operators.NewAdaptiveLimit(operators.AdaptiveConfig{
		Min: 1, Max: 8, Target: time.Second,
	})
	square := func(ctx context.Context, v int) (int, error) { return v * v, nil }
	got, err := sinks.Collect(context.Background(),
		operators.MapAsyncAdaptive(sources.Range(1, 5), square, lim, operators.Ordered()))
	fmt.Println(got, err, lim.Limit() >= 1 && lim.Limit() <= 8)
	// Output:
	// [1 4 9 16 25] <nil> true
}
