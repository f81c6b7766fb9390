package sources_test

import (
	"errors"
	"iter"
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/sources"
)

// failed is the Failed publisher of every configuration below.
func failed() flow.Publisher[int] { return sources.Error[int](errors.New("failed publisher")) }

// upTo is an iterator over 0..n-1 that allocates nothing per item.
func upTo(n int64) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(int(i)) {
				return
			}
		}
	}
}

func TestConformance(t *testing.T) {
	const sliceMax = 1 << 16 // Slice, Just and FromChannel hold their items in memory
	configs := []struct {
		name string
		cfg  flowtest.PublisherConfig[int]
	}{
		{"Range", flowtest.PublisherConfig[int]{
			New:    func(n int64) flow.Publisher[int] { return sources.Range(0, int(n)) },
			Failed: failed,
		}},
		{"Slice", flowtest.PublisherConfig[int]{
			New:         func(n int64) flow.Publisher[int] { return sources.Slice(ints(0, int(n))) },
			Failed:      failed,
			MaxElements: sliceMax,
		}},
		{"Just", flowtest.PublisherConfig[int]{
			New:         func(n int64) flow.Publisher[int] { return sources.Just(ints(0, int(n))...) },
			Failed:      failed,
			MaxElements: sliceMax,
		}},
		{"FromSeq", flowtest.PublisherConfig[int]{
			New:    func(n int64) flow.Publisher[int] { return sources.FromSeq(upTo(n)) },
			Failed: failed,
		}},
		{"Generate", flowtest.PublisherConfig[int]{
			New: func(n int64) flow.Publisher[int] {
				return sources.Generate(
					func() int64 { return 0 },
					func(i int64) (int, int64, error) {
						if i == n {
							return 0, i, sources.Stop
						}
						return int(i), i + 1, nil
					})
			},
			Failed: failed,
		}},
		{"FromChannel", flowtest.PublisherConfig[int]{
			New:         func(n int64) flow.Publisher[int] { return sources.FromChannel(filled(int(n))) },
			Failed:      failed,
			MaxElements: sliceMax,
		}},
		// Empty emits no items: New(0) is Empty; MaxElements cannot say
		// "zero items" (0 means unbounded), so the tests that need items
		// run against Just, which shares Slice's machinery.
		{"Empty", flowtest.PublisherConfig[int]{
			New: func(n int64) flow.Publisher[int] {
				if n == 0 {
					return sources.Empty[int]()
				}
				return sources.Just(ints(0, int(n))...)
			},
			Failed:      failed,
			MaxElements: sliceMax,
		}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			flowtest.VerifyPublisher(t, c.cfg)
		})
	}
}
