package operators_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// Two sources running on their own workers, merged into one stream. The
// items of each source keep their order; between sources, the order is
// the order of arrival, so the example sorts them.
func ExampleMerge() {
	pool := scheduler.NewPool(2)
	defer pool.Close()

	evens := operators.PublishOn(sources.Just(0, 2, 4, 6), pool)
	odds := operators.PublishOn(sources.Just(1, 3, 5), pool)
	got, err := sinks.Collect(context.Background(), operators.Merge(evens, odds))
	slices.Sort(got)
	fmt.Println(got, err)
	// Output: [0 1 2 3 4 5 6] <nil>
}

// Concat reads one source to its end before it subscribes to the next.
func ExampleConcat() {
	header := sources.Just("id,name")
	rows := sources.Just("1,ada", "2,grace")
	got, err := sinks.Collect(context.Background(), operators.Concat(header, rows, sources.Just("# end")))
	fmt.Println(strings.Join(got, " | "), err)
	// Output: id,name | 1,ada | 2,grace | # end <nil>
}

// Zip2 pairs items by position and ends with the shorter source.
func ExampleZip2() {
	names := sources.Just("ada", "grace", "edsger")
	years := sources.Just(1815, 1906)
	got, err := sinks.Collect(context.Background(), operators.Zip2(names, years,
		func(n string, y int) string { return fmt.Sprintf("%s:%d", n, y) }))
	fmt.Println(got, err)
	// Output: [ada:1815 grace:1906] <nil>
}

// ZipN combines rows of any number of sources of one type. The row slice
// is reused: copy it to keep it.
func ExampleZipN() {
	srcs := []flow.Publisher[int]{sources.Range(0, 3), sources.Range(10, 3), sources.Range(100, 3)}
	sums, err := sinks.Collect(context.Background(), operators.ZipN(srcs, func(row []int) int {
		return row[0] + row[1] + row[2]
	}))
	fmt.Println(sums, err)
	// Output: [110 113 116] <nil>
}

// FlatMap with Ordered expands every item into a stream of its own and
// keeps the order of the input, while up to Concurrency inner streams run
// at once.
func ExampleFlatMap() {
	words := sources.Just("go", "rx")
	letters := operators.FlatMap(words, func(w string) flow.Publisher[string] {
		return sources.Slice(strings.Split(w, ""))
	}, operators.Ordered(), operators.Concurrency(4))
	got, err := sinks.Collect(context.Background(), letters)
	fmt.Println(got, err)
	// Output: [g o r x] <nil>
}

// MergePriority serves the higher priority first while both sources have
// items waiting; aging lets the lower one through if it waits too long.
func ExampleMergePriority() {
	urgent := sources.Just("alert-1", "alert-2")
	bulk := sources.Just("log-1", "log-2")
	got, err := sinks.Collect(context.Background(), operators.MergePriority([]operators.PrioritySource[string]{
		{Source: bulk, Priority: 0},
		{Source: urgent, Priority: 10},
	}))
	fmt.Println(got, err)
	// Output: [alert-1 alert-2 log-1 log-2] <nil>
}
