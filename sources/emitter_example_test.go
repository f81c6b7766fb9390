package sources_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// Events that cannot wait enter through an Emitter. With DropOldest and a
// capacity of 3, the subscriber that comes late sees the 3 latest, and
// the dead-letter hook sees the rest.
func ExampleEmitter() {
	events := sources.NewEmitter[string](3, flow.DropOldest,
		sources.OnDrop(func(e string, r flow.DropReason) { fmt.Println("dead letter:", e, r) }))
	for _, e := range []string{"login", "click", "scroll", "click", "logout"} {
		events.TryEmit(e)
	}
	events.Complete()
	_ = sinks.ForEach(context.Background(), events.Publisher(), func(e string) error {
		fmt.Println("event:", e)
		return nil
	})
	fmt.Printf("%+v\n", events.Stats())
	// Output:
	// dead letter: login oldest
	// dead letter: click oldest
	// event: scroll
	// event: click
	// event: logout
	// {Produced:5 Delivered:3 Buffered:0 Dropped:map[oldest:2]}
}

// Under Block, Emit waits for room: the producer goes at the subscriber's
// pace, and TryEmit answers Full instead of waiting.
func ExampleEmitter_Emit() {
	e := sources.NewEmitter[int](2, flow.Block)
	done := make(chan error)
	go func() {
		done <- sinks.ForEach(context.Background(), e.Publisher(), func(v int) error {
			fmt.Println("got", v)
			return nil
		})
	}()
	for i := range 5 {
		if err := e.Emit(context.Background(), i); err != nil {
			fmt.Println(err)
		}
	}
	e.Complete()
	fmt.Println("sink:", <-done)
	// Output:
	// got 0
	// got 1
	// got 2
	// got 3
	// got 4
	// sink: <nil>
}

func ExampleTicker() {
	ticks := operators.Take(sources.Ticker(time.Millisecond, flow.DropOldest), 3)
	n := 0
	_ = sinks.ForEach(context.Background(), ticks, func(time.Time) error { n++; return nil })
	fmt.Println(n, "ticks")
	// Output:
	// 3 ticks
}
