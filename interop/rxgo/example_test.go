package rxgo_test

import (
	"context"
	"fmt"

	rx "github.com/reactivex/rxgo/v2"

	"github.com/sluicego/sluice/flow"
	rxinterop "github.com/sluicego/sluice/interop/rxgo"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// An rxgo Observable enters a sluice pipeline through a buffer of 16
// under the Block policy: the pipeline's demand paces the Observable.
func ExampleFromObservable() {
	obs := rx.Just(1, 2, 3, 4)().
		Map(func(_ context.Context, v any) (any, error) { return v.(int) * 10, nil })
	pub := rxinterop.FromObservable[int](obs, 16, flow.Block)
	got, err := sinks.Collect(context.Background(), operators.Filter(pub, func(v int) bool { return v > 10 }))
	fmt.Println(got, err)
	// Output: [20 30 40] <nil>
}

// A hot Observable that cannot wait, read under DropNewest: what does not
// fit in the buffer is counted and handed to the OnDrop hook.
func ExampleFromObservable_dropNewest() {
	dropped := 0
	pub := rxinterop.FromObservable[int](rx.Range(0, 10), 4, flow.DropNewest,
		rxinterop.OnDrop(func(int, flow.DropReason) { dropped++ }))
	got, err := sinks.Collect(context.Background(), pub, sinks.Prefetch(100))
	// How many items arrive before the subscriber's first request
	// depends on timing; none is lost unaccounted for.
	fmt.Println(len(got)+dropped, err)
	// Output: 10 <nil>
}

// A sluice Publisher as an rxgo Observable: it requests 256 items, then
// 192 at a time, as rxgo's consumer takes them.
func ExampleToObservable() {
	obs := rxinterop.ToObservable(sources.Range(1, 5)).
		Map(func(_ context.Context, v any) (any, error) { return v.(int) * v.(int), nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for item := range obs.Observe(rx.WithContext(ctx)) {
		fmt.Print(item.V, " ")
	}
	fmt.Println()
	// Output: 1 4 9 16 25
}
