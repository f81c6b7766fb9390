package flowtest_test

import (
	"fmt"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
)

// printTB reports to standard output, so that the examples can show what
// the Subscriber flags. In a test, pass t.
type printTB struct{}

func (printTB) Helper()        {}
func (printTB) Cleanup(func()) {}
func (printTB) Errorf(format string, args ...any) {
	fmt.Printf("error: "+format+"\n", args...)
}

// slice emits its items as they are requested. It is synchronous and
// serves one goroutine, which is enough for these examples.
type slice []int

func (items slice) Subscribe(s flow.Subscriber[int]) {
	flow.RequireSubscriber(s)
	s.OnSubscribe(&sliceSub{items: items, s: s})
}

type sliceSub struct {
	items    []int
	s        flow.Subscriber[int]
	demand   int64
	emitting bool
	done     bool
}

func (p *sliceSub) Request(n int64) {
	if n <= 0 {
		p.done = true
		p.s.OnError(flow.NonPositiveRequestError(n))
		return
	}
	p.demand = flow.AddCap(p.demand, n)
	if p.emitting {
		return // the loop below picks the demand up (rule 3.3)
	}
	p.emitting = true
	for p.demand > 0 && len(p.items) > 0 && !p.done {
		v := p.items[0]
		p.items = p.items[1:]
		p.demand--
		p.s.OnNext(v)
	}
	if len(p.items) == 0 && !p.done {
		p.done = true
		p.s.OnComplete()
	}
	p.emitting = false
}

func (p *sliceSub) Cancel() { p.done = true }

func ExampleSubscriber() {
	sub := flowtest.NewSubscriber[int](printTB{}, 2)
	slice{1, 2, 3}.Subscribe(sub)
	fmt.Println(sub.Items(), sub.Completed())

	sub.Request(10)
	fmt.Println(sub.Items(), sub.Completed())
	fmt.Println(sub.Signals())
	// Output:
	// [1 2] false
	// [1 2 3] true
	// [OnSubscribe OnNext(1) OnNext(2) OnNext(3) OnComplete]
}

// ignore is a Subscription that does nothing.
type ignore struct{}

func (ignore) Request(int64) {}
func (ignore) Cancel()       {}

func ExampleSubscriber_violations() {
	// A publisher that ignores demand and completes twice.
	broken := flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		s.OnSubscribe(ignore{})
		s.OnNext(1)
		s.OnNext(2)
		s.OnComplete()
		s.OnComplete()
	})
	sub := flowtest.NewSubscriber[int](printTB{}, 1)
	broken.Subscribe(sub)
	fmt.Println(len(sub.Violations()), "violations")
	// Output:
	// error: flowtest: protocol violation: OnNext(2) is item 2, but only 1 were requested (rule 1.1)
	// error: flowtest: protocol violation: OnComplete after OnComplete (rule 1.7)
	// 2 violations
}

func ExampleSubscriber_oneByOne() {
	sub := flowtest.NewSubscriber[int](printTB{}, 1, flowtest.RequestOnNext(1))
	slice{1, 2, 3}.Subscribe(sub)
	fmt.Println(sub.AwaitCompleted(), sub.Items())
	// Output:
	// true [1 2 3]
}
