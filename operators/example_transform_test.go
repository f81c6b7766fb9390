package operators_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

func ExampleMap() {
	squares := operators.Map(sources.Range(1, 5), func(v int) int { return v * v })
	out, err := sinks.Collect(context.Background(), squares)
	fmt.Println(out, err)
	// Output: [1 4 9 16 25] <nil>
}

func ExampleFilter() {
	// Filter forwards downstream's demand and re-requests rejected items
	// in batches, so rejecting most items is cheap.
	multiples := operators.Filter(sources.Range(1, 1000), func(v int) bool { return v%250 == 0 })
	out, err := sinks.Collect(context.Background(), multiples)
	fmt.Println(out, err)
	// Output: [250 500 750 1000] <nil>
}

func ExampleTake() {
	// Take(3) asks its upstream for exactly 3 items, then cancels it.
	first := operators.Take(sources.Range(1, 1_000_000), 3)
	out, err := sinks.Collect(context.Background(), first)
	fmt.Println(out, err)
	// Output: [1 2 3] <nil>
}

func ExamplePipe() {
	// Stages[int] binds same-typed operators to their functions, and Pipe
	// applies them in the order the items flow.
	var ops operators.Stages[int]
	odd := func(v int) bool { return v%2 == 1 }
	pub := operators.Pipe(sources.Range(1, 100),
		ops.Skip(10),
		ops.Filter(odd),
		ops.Map(func(v int) int { return v * 10 }),
		ops.Take(4),
	)
	out, err := sinks.Collect(context.Background(), pub)
	fmt.Println(out, err)
	// Output: [110 130 150 170] <nil>
}

func ExampleStage_Then() {
	// A reusable sub-pipeline is one Stage; a plain func works as a stage too.
	var ops operators.Stages[string]
	clean := ops.Map(strings.TrimSpace).Then(ops.Filter(func(s string) bool { return s != "" }))
	shout := func(p flow.Publisher[string]) flow.Publisher[string] { return operators.Map(p, strings.ToUpper) }

	pub := operators.Pipe(sources.Just(" a ", "", "b", "  "), clean, shout)
	out, err := sinks.Collect(context.Background(), pub)
	fmt.Printf("%q %v\n", out, err)
	// Output: ["A" "B"] <nil>
}

func ExampleMapErr() {
	// The first error ends the stream, wrapped with the stage's name.
	parsed := operators.MapErr(sources.Just("1", "2", "x", "4"), strconv.Atoi, operators.Name("parse"))
	out, err := sinks.Collect(context.Background(), parsed)
	fmt.Println(out)
	fmt.Println(err)
	fmt.Println(errors.Is(err, strconv.ErrSyntax))
	// Output:
	// [1 2]
	// parse: strconv.Atoi: parsing "x": invalid syntax
	// true
}

func ExampleMap_panic() {
	// A panic in a user function ends the stream with a *flow.PanicError.
	div := operators.Map(sources.Just(2, 1, 0), func(v int) int { return 10 / v }, operators.Name("divide"))
	out, err := sinks.Collect(context.Background(), div)
	var pe *flow.PanicError
	fmt.Println(out, errors.As(err, &pe))
	fmt.Println(err)
	// Output:
	// [5 10] true
	// divide: sluice: panic: runtime error: integer divide by zero
}

func ExampleScan() {
	running := operators.Scan(sources.Range(1, 5), 0, func(sum, v int) int { return sum + v })
	out, err := sinks.Collect(context.Background(), running)
	fmt.Println(out, err)
	// Output: [1 3 6 10 15] <nil>
}

func ExampleDistinct() {
	out, err := sinks.Collect(context.Background(), operators.Distinct(sources.Just("a", "b", "a", "c", "b")))
	fmt.Println(out, err)
	// Output: [a b c] <nil>
}

func ExampleTakeWhile() {
	small := operators.TakeWhile(sources.Just(1, 2, 3, 10, 4), func(v int) bool { return v < 5 })
	out, err := sinks.Collect(context.Background(), small)
	fmt.Println(out, err)
	// Output: [1 2 3] <nil>
}
