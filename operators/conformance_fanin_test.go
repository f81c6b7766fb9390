package operators_test

import (
	"testing"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sources"
)

// Every fan-in stage, over conforming sources (synchronous ones, and
// asynchronous ones behind PublishOn on a single worker), must itself be
// a conforming publisher. New(n) builds the stage so that it emits exactly
// n items.
func TestFanInConformance(t *testing.T) {
	single := scheduler.NewSingle()
	t.Cleanup(func() { single.Close() })
	sync := func(from, n int) flow.Publisher[int] { return sources.Range(from, n) }
	async := func(from, n int) flow.Publisher[int] { return operators.PublishOn(sources.Range(from, n), single) }
	add := func(a, b int) int { return a + b }
	sum := func(row []int) int { return row[0] + row[1] + row[2] }

	type source func(from, n int) flow.Publisher[int]
	stages := []struct {
		name   string
		new    func(src source, n int) flow.Publisher[int]
		failed func() flow.Publisher[int]
	}{
		{"Merge",
			func(src source, n int) flow.Publisher[int] { return operators.Merge(src(0, n/2), src(n/2, n-n/2)) },
			func() flow.Publisher[int] {
				return operators.Merge(sources.Error[int](errBoom), sources.Empty[int]())
			}},
		{"Merge/one source/prefetch=1",
			func(src source, n int) flow.Publisher[int] {
				return operators.MergeWith([]flow.Publisher[int]{src(0, n)}, operators.Prefetch(1))
			},
			func() flow.Publisher[int] {
				return operators.MergeWith([]flow.Publisher[int]{sources.Error[int](errBoom)}, operators.Prefetch(1))
			}},
		{"Merge/DelayError(false)",
			func(src source, n int) flow.Publisher[int] {
				return operators.MergeWith([]flow.Publisher[int]{src(0, n/3), src(0, n/3), src(0, n-2*(n/3))},
					operators.DelayError(false), operators.Prefetch(3))
			},
			func() flow.Publisher[int] {
				return operators.MergeWith([]flow.Publisher[int]{sources.Empty[int](), sources.Error[int](errBoom)},
					operators.DelayError(false))
			}},
		{"Concat",
			func(src source, n int) flow.Publisher[int] {
				return operators.Concat(src(0, n/2), sources.Empty[int](), src(n/2, n-n/2))
			},
			func() flow.Publisher[int] { return operators.Concat(sources.Empty[int](), sources.Error[int](errBoom)) }},
		{"Zip2",
			func(src source, n int) flow.Publisher[int] { return operators.Zip2(src(0, n), src(0, n+1), add) },
			func() flow.Publisher[int] {
				return operators.Zip2(sources.Error[int](errBoom), sources.Range(0, 3), add)
			}},
		{"ZipN/prefetch=2",
			func(src source, n int) flow.Publisher[int] {
				return operators.ZipN([]flow.Publisher[int]{src(0, n), src(0, n+5), src(0, n+1)}, sum, operators.Prefetch(2))
			},
			func() flow.Publisher[int] {
				return operators.ZipN([]flow.Publisher[int]{sources.Range(0, 3), sources.Range(0, 3), sources.Error[int](errBoom)}, sum)
			}},
		{"FlatMap",
			func(src source, n int) flow.Publisher[int] {
				// 2 items for an even item, none for an odd one: n in all.
				return operators.FlatMap(src(0, n), func(v int) flow.Publisher[int] {
					switch {
					case v%2 == 1:
						return sources.Empty[int]()
					case v+1 < n:
						return src(v, 2)
					}
					return src(v, 1)
				}, operators.Concurrency(2), operators.Prefetch(2))
			},
			func() flow.Publisher[int] {
				return operators.FlatMap(sources.Error[int](errBoom), func(v int) flow.Publisher[int] { return sources.Just(v) })
			}},
		{"FlatMap/Ordered",
			func(src source, n int) flow.Publisher[int] {
				return operators.FlatMap(src(0, n), func(v int) flow.Publisher[int] { return src(v, 1) }, operators.Ordered())
			},
			func() flow.Publisher[int] {
				return operators.FlatMap(sources.Range(0, 2), func(v int) flow.Publisher[int] {
					return sources.Error[int](errBoom)
				}, operators.Ordered())
			}},
		{"FlatMap/inline inners",
			// Inners of up to 2 items, fused loops, run inline when demand
			// covers them: n items in all.
			func(src source, n int) flow.Publisher[int] {
				return operators.FlatMap(src(0, (n+1)/2), func(v int) flow.Publisher[int] {
					m := operators.Map(sources.Range(0, min(2, n-2*v)), func(i int) int { return 2*v + i })
					return operators.Filter(m, func(int) bool { return true })
				}, operators.Concurrency(3))
			},
			func() flow.Publisher[int] {
				return operators.FlatMap(sources.Range(0, 2), func(v int) flow.Publisher[int] {
					return operators.MapErr(sources.Just(v), func(int) (int, error) { return 0, errBoom })
				})
			}},
		{"MergePriority",
			func(src source, n int) flow.Publisher[int] {
				return operators.MergePriority([]operators.PrioritySource[int]{
					{Source: src(0, n/2), Priority: 1}, {Source: src(n/2, n-n/2)},
				}, operators.Prefetch(4))
			},
			func() flow.Publisher[int] {
				return operators.MergePriority([]operators.PrioritySource[int]{{Source: sources.Error[int](errBoom)}})
			}},
	}
	for _, st := range stages {
		for kind, src := range map[string]source{"sync": sync, "async": async} {
			t.Run(st.name+"/"+kind, func(t *testing.T) {
				flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
					New:         func(n int64) flow.Publisher[int] { return st.new(src, int(n)) },
					Failed:      st.failed,
					MaxElements: conformanceMax,
					Timeout:     5 * time.Second,
				})
			})
		}
	}
}
