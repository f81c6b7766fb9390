// Command quickstart is the README's quick start, kept compiling.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

func main() {
	ctx := context.Background()

	// Range → Map → Filter → Batch → ForEach, all on this goroutine.
	squares := operators.Map(sources.Range(1, 20), func(n int) int { return n * n })
	odd := operators.Filter(squares, func(n int) bool { return n%2 == 1 })
	batches := operators.Batch(odd, 4, 100*time.Millisecond)

	err := sinks.ForEach(ctx, batches, func(b []int) error {
		fmt.Println(b)
		return nil
	})
	if err != nil {
		panic(err)
	}

	// A hot source that cannot be slowed down: an Emitter with room for 3
	// items that evicts the oldest when full, counting every drop.
	var dropped []int
	em := sources.NewEmitter[int](3, flow.DropOldest,
		sources.OnDrop(func(v int, _ flow.DropReason) { dropped = append(dropped, v) }))
	for i := range 10 {
		em.TryEmit(i) // answers at once: accepted, dropped or closed
	}
	em.Complete()
	kept, err := sinks.Collect(ctx, operators.Buffer(em.Publisher(), 16, flow.Block))
	fmt.Println(kept, err, dropped)
}
