package operators_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// Two subscribers receive every item. MinSubscribers(2) holds the source
// back until both have subscribed.
func ExampleBroadcast() {
	b := operators.Broadcast(sources.Range(0, 3), operators.MinSubscribers(2))
	for _, name := range []string{"a", "b"} {
		b.Subscribe(flow.SubscriberFuncs[int]{
			Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) },
			Next:      func(v int) { fmt.Println(name, v) },
			Complete:  func() { fmt.Println(name, "done") },
		})
	}
	// Output:
	// a 0
	// b 0
	// a 1
	// b 1
	// a 2
	// b 2
	// a done
	// b done
}

// A subscriber that does not keep up is cut loose once its buffer of 2
// is full; the other one goes on. Every item it loses reaches the
// dead-letter hook.
func ExampleCancelSlow() {
	b := operators.Broadcast(sources.Range(0, 5),
		operators.CancelSlow(2), operators.MinSubscribers(2), operators.Name("ticks"),
		operators.OnDrop(func(v int, r flow.DropReason) { fmt.Println("dropped", v, r) }))
	b.Subscribe(flow.SubscriberFuncs[int]{
		Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) },
		Next:      func(v int) { fmt.Println("fast", v) },
		Complete:  func() { fmt.Println("fast done") },
	})
	b.Subscribe(flow.SubscriberFuncs[int]{ // never requests
		Error: func(err error) { fmt.Println("slow:", err) },
	})
	// Output:
	// fast 0
	// fast 1
	// fast 2
	// dropped 2 overflow
	// dropped 0 cancelled
	// dropped 1 cancelled
	// fast 3
	// fast 4
	// slow: ticks: sluice: slow subscriber cut loose (buffer of 2 full)
	// fast done
}

// Each item goes to one output, round robin among those with demand.
func ExampleBalance() {
	outs := operators.Balance(sources.Range(0, 6), 2)
	for i, out := range outs {
		out.Subscribe(flow.SubscriberFuncs[int]{
			Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) },
			Next:      func(v int) { fmt.Println("worker", i, "got", v) },
			Complete:  func() { fmt.Println("worker", i, "done") },
		})
	}
	// Output:
	// worker 0 got 0
	// worker 1 got 1
	// worker 0 got 2
	// worker 1 got 3
	// worker 0 got 4
	// worker 1 got 5
	// worker 0 done
	// worker 1 done
}

// A whole pipeline: two workers, each on a goroutine of its own, share
// the squaring of 1..100; each item is squared exactly once.
func ExampleBalance_workers() {
	ctx := context.Background()
	outs := operators.Balance(sources.Range(1, 100), 2)
	sums := make([]int, len(outs))
	var wg sync.WaitGroup
	for i, out := range outs {
		worker := scheduler.NewSingle()
		defer worker.Close()
		squares := operators.Map(operators.PublishOn(out, worker), func(v int) int { return v * v })
		wg.Go(func() {
			sums[i], _ = sinks.Reduce(ctx, squares, 0, func(acc, v int) int { return acc + v })
		})
	}
	wg.Wait()
	fmt.Println(sums[0] + sums[1])
	// Output:
	// 338350
}
