package operators_test

import (
	"context"
	"fmt"

	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// A pipeline with an async boundary between each stage: the source and
// the map run on one worker, the filter on another, the sink's function
// on a third. Every goroutine belongs to the pool, and Close ends them.
func ExamplePublishOn() {
	pool := scheduler.NewPool(2)
	defer pool.Close()

	squares := operators.Map(operators.PublishOn(sources.Range(1, 10), pool), func(v int) int { return v * v })
	odd := operators.Filter(operators.PublishOn(squares, pool), func(v int) bool { return v%2 == 1 })
	sum, err := sinks.Reduce(context.Background(), operators.PublishOn(odd, pool), 0,
		func(acc, v int) int { return acc + v })
	fmt.Println(sum, err)
	// Output: 165 <nil>
}

// A blocking source, such as a channel fed by another part of the
// program, waits on a goroutine of its own scheduler instead of the
// sink's caller.
func ExampleSubscribeOn() {
	io := scheduler.NewSingle()
	defer io.Close()

	lines := make(chan string)
	go func() {
		defer close(lines)
		for _, l := range []string{"alpha", "beta", "gamma"} {
			lines <- l
		}
	}()
	got, err := sinks.Collect(context.Background(), operators.SubscribeOn(sources.FromChannel(lines), io))
	fmt.Println(got, err)
	// Output: [alpha beta gamma] <nil>
}
