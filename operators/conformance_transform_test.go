package operators_test

import (
	"errors"
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sources"
)

// Every transform stage, applied to a conforming source, must itself be a
// conforming publisher: it passes the Reactive Streams TCK's
// PublisherVerification. New(n) builds the stage over a source sized so
// that the stage emits exactly n items.
func TestTransformConformance(t *testing.T) {
	boom := errors.New("boom")
	failed := func(stage func(flow.Publisher[int]) flow.Publisher[int]) func() flow.Publisher[int] {
		return func() flow.Publisher[int] { return stage(sources.Error[int](boom)) }
	}
	rng := func(n int64) flow.Publisher[int] { return sources.Range(0, int(n)) }
	even := func(v int) bool { return v%2 == 0 }
	half := func(v int) int { return v / 2 }
	var ops operators.Stages[int]
	const big = 1 << 40 // the largest stream for stages whose source is longer than their output

	tests := []struct {
		name  string
		max   int64
		new   func(n int64) flow.Publisher[int]
		stage func(flow.Publisher[int]) flow.Publisher[int] // for Failed
	}{
		{"Map", 0,
			func(n int64) flow.Publisher[int] { return operators.Map(rng(n), func(v int) int { return v + 1 }) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.Map(p, func(v int) int { return v }) }},
		{"MapErr", 0,
			func(n int64) flow.Publisher[int] {
				return operators.MapErr(rng(n), func(v int) (int, error) { return v, nil })
			},
			func(p flow.Publisher[int]) flow.Publisher[int] {
				return operators.MapErr(p, func(v int) (int, error) { return v, nil })
			}},
		{"Tap", 0,
			func(n int64) flow.Publisher[int] { return operators.Tap(rng(n), func(int) {}) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.Tap(p, func(int) {}) }},
		{"Scan", 0,
			func(n int64) flow.Publisher[int] {
				return operators.Scan(rng(n), 0, func(a, v int) int { return a + v })
			},
			func(p flow.Publisher[int]) flow.Publisher[int] {
				return operators.Scan(p, 0, func(a, v int) int { return a + v })
			}},
		{"Filter", big,
			func(n int64) flow.Publisher[int] { return operators.Filter(rng(2*n), even) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.Filter(p, even) }},
		{"FilterErr", big,
			func(n int64) flow.Publisher[int] {
				return operators.FilterErr(rng(2*n), func(v int) (bool, error) { return even(v), nil })
			},
			func(p flow.Publisher[int]) flow.Publisher[int] {
				return operators.FilterErr(p, func(v int) (bool, error) { return true, nil })
			}},
		{"Filter(Map) fused", big,
			func(n int64) flow.Publisher[int] {
				return operators.Filter(operators.Map(rng(2*n), func(v int) int { return v + 1 }), even)
			},
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.Filter(operators.Map(p, half), even) }},
		{"Map(Filter) fused", big,
			func(n int64) flow.Publisher[int] { return operators.Map(operators.Filter(rng(2*n), even), half) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.Map(operators.Filter(p, even), half) }},
		{"Take", big,
			func(n int64) flow.Publisher[int] { return operators.Take(rng(n+5), n) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.Take(p, 5) }},
		{"Take of a shorter stream", 0,
			func(n int64) flow.Publisher[int] { return operators.Take(rng(n), flow.Unbounded) },
			nil},
		{"TakeWhile", big,
			func(n int64) flow.Publisher[int] {
				return operators.TakeWhile(rng(n+5), func(v int) bool { return int64(v) < n })
			},
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.TakeWhile(p, even) }},
		{"Skip", big,
			func(n int64) flow.Publisher[int] { return operators.Skip(rng(n+3), 3) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.Skip(p, 3) }},
		{"Distinct", big,
			func(n int64) flow.Publisher[int] { return operators.Distinct(operators.Map(rng(2*n), half)) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.Distinct(p) }},
		{"DistinctBy", big,
			func(n int64) flow.Publisher[int] { return operators.DistinctBy(rng(2*n), half) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.DistinctBy(p, half) }},
		{"DistinctUntilChanged", big,
			func(n int64) flow.Publisher[int] {
				return operators.DistinctUntilChanged(operators.Map(rng(2*n), half))
			},
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.DistinctUntilChanged(p) }},
		{"Pipe", big,
			func(n int64) flow.Publisher[int] {
				return operators.Pipe(rng(2*n+1), ops.Skip(1), ops.Map(func(v int) int { return v - 1 }), ops.Filter(even),
					ops.Tap(func(int) {}), ops.Take(n))
			},
			func(p flow.Publisher[int]) flow.Publisher[int] {
				return operators.Pipe(p, ops.Map(half), ops.Filter(even))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := flowtest.PublisherConfig[int]{New: tt.new, MaxElements: tt.max}
			if tt.stage != nil {
				cfg.Failed = failed(tt.stage)
			}
			flowtest.VerifyPublisher(t, cfg)
		})
	}
}
