package operators_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sources"
)

// pmConformanceOpts are the option sets both concurrent map stages are
// verified with: unordered and ordered, default and tiny prefetches.
var pmConformanceOpts = []struct {
	name string
	opts []operators.Option
}{
	{"unordered", nil},
	{"ordered", []operators.Option{operators.Ordered()}},
	{"unordered/prefetch=1", []operators.Option{operators.Prefetch(1)}},
	{"ordered/prefetch=3", []operators.Option{operators.Ordered(), operators.Prefetch(3)}},
	{"ordered/no-delay-error", []operators.Option{operators.Ordered(), operators.DelayError(false)}},
}

func TestParallelMapConformance(t *testing.T) {
	for _, workers := range []int{1, 3} {
		for _, c := range pmConformanceOpts {
			t.Run(fmt.Sprintf("workers=%d/%s", workers, c.name), func(t *testing.T) {
				t.Parallel() // the kit mostly waits for signals that must not come
				flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
					New: func(n int64) flow.Publisher[int] {
						return operators.ParallelMap(sources.Range(0, int(n)), func(v int) int { return v + 1 }, workers, c.opts...)
					},
					Failed: func() flow.Publisher[int] {
						return operators.ParallelMap(sources.Error[int](errBoom), func(v int) int { return v }, workers, c.opts...)
					},
					MaxElements: conformanceMax,
					Timeout:     5 * time.Second,
				})
			})
		}
	}
}

func TestMapAsyncConformance(t *testing.T) {
	for _, conc := range []int{4} {
		for _, c := range pmConformanceOpts {
			t.Run(fmt.Sprintf("concurrency=%d/%s", conc, c.name), func(t *testing.T) {
				t.Parallel()
				f := func(_ context.Context, v int) (string, error) { return fmt.Sprint(v), nil }
				flowtest.VerifyPublisher(t, flowtest.PublisherConfig[string]{
					New: func(n int64) flow.Publisher[string] {
						return operators.MapAsync(sources.Range(0, int(n)), f, conc, c.opts...)
					},
					Failed: func() flow.Publisher[string] {
						return operators.MapAsync(sources.Error[int](errBoom), f, conc, c.opts...)
					},
					MaxElements: conformanceMax,
					Timeout:     5 * time.Second,
				})
			})
		}
	}
}
