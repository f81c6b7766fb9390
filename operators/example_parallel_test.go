package operators_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// A CPU-bound function on 4 goroutines of the stage, with the results in
// the order of the input.
func ExampleParallelMap() {
	squares := operators.ParallelMap(sources.Range(1, 8), func(v int) int { return v * v }, 4, operators.Ordered())
	got, err := sinks.Collect(context.Background(), squares)
	fmt.Println(got, err)
	// Output: [1 4 9 16 25 36 49 64] <nil>
}

// An I/O-bound call, up to 8 at a time. ctx is the sink's context, and it
// is cancelled when the stream ends. Without Ordered the results come as
// the calls end, so they are sorted here before printing.
func ExampleMapAsync() {
	lookup := func(ctx context.Context, id int) (string, error) {
		if err := ctx.Err(); err != nil { // a real call would pass ctx on
			return "", err
		}
		return fmt.Sprintf("user-%d", id), nil
	}
	names, err := sinks.Collect(context.Background(), operators.MapAsync(sources.Just(3, 1, 2), lookup, 8))
	slices.Sort(names)
	fmt.Println(names, err)
	// Output: [user-1 user-2 user-3] <nil>
}

// An error from one call ends the stream, wrapped with the stage's name;
// the calls still in flight see their context cancelled.
func ExampleMapAsync_error() {
	lookup := func(ctx context.Context, id int) (string, error) {
		if id == 13 {
			return "", fmt.Errorf("no user %d", id)
		}
		return fmt.Sprintf("user-%d", id), nil
	}
	_, err := sinks.Collect(context.Background(),
		operators.MapAsync(sources.Range(10, 5), lookup, 2, operators.Name("lookup")))
	fmt.Println(err)
	// Output: lookup: no user 13
}
