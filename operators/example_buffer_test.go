package operators_test

import (
	"context"
	"fmt"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

func ExampleBatch() {
	batches := operators.Batch(sources.Range(0, 10), 4, 0)
	_ = sinks.ForEach(context.Background(), batches, func(b []int) error {
		fmt.Println(b)
		return nil
	})
	// Output:
	// [0 1 2 3]
	// [4 5 6 7]
	// [8 9]
}

// Batches bounded by bytes, for writes with a size limit: a batch closes
// before the row that would take it over 15 bytes.
func ExampleBatchWeighted() {
	rows := sources.Slice([]string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta"})
	size := func(s string) int64 { return int64(len(s)) }
	_ = sinks.ForEach(context.Background(), operators.BatchWeighted(rows, 15, size, 0), func(b []string) error {
		fmt.Println(b)
		return nil
	})
	// Output:
	// [alpha beta gamma]
	// [delta epsilon]
	// [zeta]
}

// A subscriber that is not ready loses the oldest items, and the
// dead-letter hook sees each of them.
func ExampleBuffer() {
	buffered := operators.Buffer(sources.Range(0, 10), 3, flow.DropOldest,
		operators.OnDrop(func(v int, r flow.DropReason) { fmt.Println("dropped", v, r) }))
	var sub flow.Subscription
	buffered.Subscribe(flow.SubscriberFuncs[int]{
		Subscribe: func(s flow.Subscription) { sub = s }, // no demand yet
		Next:      func(v int) { fmt.Println("got", v) },
		Complete:  func() { fmt.Println("complete") },
	})
	sub.Request(10)
	st := buffered.(operators.StatsReporter).Stats()
	fmt.Printf("produced %d, delivered %d, dropped %d\n", st.Produced, st.Delivered, st.TotalDropped())
	// Output:
	// dropped 0 oldest
	// dropped 1 oldest
	// dropped 2 oldest
	// dropped 3 oldest
	// dropped 4 oldest
	// dropped 5 oldest
	// dropped 6 oldest
	// got 7
	// got 8
	// got 9
	// complete
	// produced 10, delivered 3, dropped 7
}

// LimitRate turns one unbounded request into requests of 4, then 2.
func ExampleLimitRate() {
	src := requestLogger[int]{sources.Range(0, 10)}
	_ = sinks.ForEach(context.Background(), operators.LimitRate(src, 4, 2), func(int) error { return nil })
	// Output:
	// request 4
	// request 2
	// request 2
	// request 2
}

// requestLogger prints the requests its subscriber makes.
type requestLogger[T any] struct{ src flow.Publisher[T] }

func (p requestLogger[T]) Subscribe(s flow.Subscriber[T]) {
	p.src.Subscribe(flow.SubscriberFuncs[T]{
		Subscribe: func(sub flow.Subscription) { s.OnSubscribe(loggedSubscription{sub}) },
		Next:      s.OnNext,
		Error:     s.OnError,
		Complete:  s.OnComplete,
	})
}

type loggedSubscription struct{ flow.Subscription }

func (l loggedSubscription) Request(n int64) {
	fmt.Println("request", n)
	l.Subscription.Request(n)
}
