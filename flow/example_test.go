package flow_test

import (
	"errors"
	"fmt"

	"github.com/sluicego/sluice/flow"
)

// countdown is a subscription that emits n, n-1, …, 1. Its Demand is both
// the outstanding demand and the token of the emission loop: the Request
// that moves it off zero runs the loop, and a Request made from inside
// OnNext only adds to it, so OnNext is never re-entered (rule 3.3).
type countdown struct {
	demand flow.Demand
	next   int
	s      flow.Subscriber[int]
}

func (c *countdown) Request(n int64) {
	if n <= 0 {
		// A real publisher routes this through its loop too (rule 3.9).
		c.s.OnError(flow.NonPositiveRequestError(n))
		return
	}
	if c.demand.Add(n) != 0 {
		return // the running loop will see the new demand
	}
	for {
		var emitted int64
		for r := c.demand.Load(); emitted < r && c.next > 0; emitted++ {
			c.s.OnNext(c.next)
			c.next--
		}
		if c.next == 0 {
			c.s.OnComplete()
			return // the demand stays above zero: nobody enters again
		}
		if c.demand.Produced(emitted) == 0 {
			return
		}
	}
}

func (c *countdown) Cancel() {}

// ExamplePublisherFunc builds a publisher from a function and consumes it
// with SubscriberFuncs, requesting one item at a time from inside OnNext.
func ExamplePublisherFunc() {
	pub := flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		s.OnSubscribe(&countdown{next: 3, s: s})
	})
	var sub flow.Subscription
	pub.Subscribe(flow.SubscriberFuncs[int]{
		Subscribe: func(s flow.Subscription) { sub = s; s.Request(1) },
		Next:      func(v int) { fmt.Println(v); sub.Request(1) },
		Complete:  func() { fmt.Println("done") },
	})
	// Output:
	// 3
	// 2
	// 1
	// done
}

// ExampleCatch turns a panic in user code into an error.
func ExampleCatch() {
	err := flow.Catch(func() { panic(errors.New("bad row")) })
	var pe *flow.PanicError
	fmt.Println(err, errors.As(err, &pe))
	// Output:
	// sluice: panic: bad row true
}
