package sinks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sinks"
)

// The examples use intRange(start, count), a stand-in for
// sources.Range(start, count) defined in bench_test.go.

func ExampleForEach() {
	err := sinks.ForEach(context.Background(), intRange(1, 3), func(v int) error {
		fmt.Println("got", v)
		return nil
	})
	fmt.Println("err:", err)
	// Output:
	// got 1
	// got 2
	// got 3
	// err: <nil>
}

// An error from the function stops the stream: upstream is cancelled and
// ForEach returns the error.
func ExampleForEach_error() {
	errTooBig := errors.New("too big")
	err := sinks.ForEach(context.Background(), intRange(1, 1000), func(v int) error {
		if v > 2 {
			return fmt.Errorf("item %d: %w", v, errTooBig)
		}
		fmt.Println("got", v)
		return nil
	})
	fmt.Println("err:", err, errors.Is(err, errTooBig))
	// Output:
	// got 1
	// got 2
	// err: item 3: too big true
}

func ExampleCollect() {
	items, err := sinks.Collect(context.Background(), intRange(1, 5))
	fmt.Println(items, err)
	// Output: [1 2 3 4 5] <nil>
}

func ExampleReduce() {
	sum, err := sinks.Reduce(context.Background(), intRange(1, 100), 0, func(acc, v int) int {
		return acc + v
	})
	fmt.Println(sum, err)
	// Output: 5050 <nil>
}

// The accumulator may have another type than the items.
func ExampleReduce_join() {
	var b strings.Builder
	_, err := sinks.Reduce(context.Background(), intRange(1, 4), &b, func(b *strings.Builder, v int) *strings.Builder {
		fmt.Fprintf(b, "<%d>", v)
		return b
	})
	fmt.Println(b.String(), err)
	// Output: <1><2><3><4> <nil>
}

func ExampleDrain() {
	n, err := sinks.Drain(context.Background(), intRange(0, 1_000_000))
	fmt.Println(n, err)
	// Output: 1000000 <nil>
}

// ToChannel runs on a goroutine of its own and closes the channel when
// the stream ends; the reader ranges over the channel, then collects the
// error.
func ExampleToChannel() {
	ch := make(chan int, 2)
	errc := make(chan error, 1)
	go func() { errc <- sinks.ToChannel(context.Background(), intRange(1, 4), ch) }()
	for v := range ch {
		fmt.Println("got", v)
	}
	fmt.Println("err:", <-errc)
	// Output:
	// got 1
	// got 2
	// got 3
	// got 4
	// err: <nil>
}

func ExampleAll() {
	for v, err := range sinks.All(context.Background(), intRange(1, 1_000_000)) {
		if err != nil {
			fmt.Println("err:", err)
			return
		}
		if v > 3 {
			break // cancels upstream
		}
		fmt.Println("got", v)
	}
	// Output:
	// got 1
	// got 2
	// got 3
}

// Prefetch(4) requests 4 items at subscription, then 3 more each time 3
// have been consumed (the 75 % rule).
func ExamplePrefetch() {
	n, err := sinks.Drain(context.Background(), logRequests(intRange(0, 10)), sinks.Prefetch(4))
	fmt.Println(n, err)
	// Output:
	// Request(4)
	// Request(3)
	// Request(3)
	// Request(3)
	// 10 <nil>
}

// logRequests prints every Request its subscriber makes to pub.
func logRequests(pub flow.Publisher[int]) flow.Publisher[int] {
	return flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		pub.Subscribe(&requestLogger{Subscriber: s})
	})
}

type requestLogger struct {
	flow.Subscriber[int]
	flow.Subscription
}

func (l *requestLogger) OnSubscribe(s flow.Subscription) {
	l.Subscription = s
	l.Subscriber.OnSubscribe(l)
}

func (l *requestLogger) Request(n int64) {
	fmt.Printf("Request(%d)\n", n)
	l.Subscription.Request(n)
}
