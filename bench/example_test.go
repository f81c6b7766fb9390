package bench_test

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/sluicego/sluice/bench"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// A user times their own stage (here a Map that formats numbers) against
// the loop they would write without sluice, with the harness the CLI
// uses, and prints the same table. The figures depend on the machine, so
// this example prints only the shape of the results; drop the last loop
// and keep the bench.Markdown call to see the table.
func Example_ownPipeline() {
	format := func(v int) string { return strconv.Itoa(v) }
	length := func(acc int, s string) int { return acc + len(s) }
	want := func(n int) int {
		acc := 0
		for i := range n {
			acc += len(strconv.Itoa(i))
		}
		return acc
	}
	check := func(got, want int) error {
		if got != want {
			return fmt.Errorf("got %d, want %d", got, want)
		}
		return nil
	}
	scenarios := []bench.Scenario{
		{
			Group: "format", Library: "go", Name: "loop", Baseline: true,
			Run: func(_ context.Context, n int) error {
				acc := 0
				for i := range n {
					acc = length(acc, format(i))
				}
				return check(acc, want(n))
			},
		},
		{
			Group: "format", Library: "mine", Name: "map",
			Run: func(ctx context.Context, n int) error {
				got, err := sinks.Reduce(ctx, operators.Map(sources.Range(0, n), format), 0, length)
				if err != nil {
					return err
				}
				return check(got, want(n))
			},
		},
	}
	results, err := bench.Measure(context.Background(), scenarios, bench.Options{Count: 3, Items: 10_000})
	if err != nil {
		fmt.Println(err)
		return
	}
	if false { // the table itself: machine-dependent
		_ = bench.Markdown(os.Stdout, results)
		_ = bench.SVG(os.Stdout, results, bench.ChartOptions{Title: "my stage"})
	}
	for _, r := range results {
		fmt.Printf("%s: %d runs of %d items, compared with %d baseline(s)\n",
			r.Scenario.ID(), len(r.NsPerItem), r.Items, len(r.Ratios))
	}
	// Output:
	// format/go/loop: 3 runs of 10000 items, compared with 1 baseline(s)
	// format/mine/map: 3 runs of 10000 items, compared with 1 baseline(s)
}
