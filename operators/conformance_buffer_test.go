package operators_test

import (
	"testing"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

// The conformance kit (the Reactive Streams TCK's PublisherVerification)
// runs against each stage of this file applied to a conforming source.

const conformanceMax = 1024

func failedInts() flow.Publisher[int] { return &btSource{err: errBoom} }

func TestBatchConformance(t *testing.T) {
	one := func(int) int64 { return 1 }
	for name, newBatch := range map[string]func(src flow.Publisher[int]) flow.Publisher[[]int]{
		"size":     func(src flow.Publisher[int]) flow.Publisher[[]int] { return operators.Batch(src, 2, 0) },
		"timed":    func(src flow.Publisher[int]) flow.Publisher[[]int] { return operators.Batch(src, 2, time.Hour) },
		"weighted": func(src flow.Publisher[int]) flow.Publisher[[]int] { return operators.BatchWeighted(src, 2, one, 0) },
		"weighted timed": func(src flow.Publisher[int]) flow.Publisher[[]int] {
			return operators.BatchWeighted(src, 2, one, time.Hour)
		},
	} {
		t.Run(name, func(t *testing.T) {
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[[]int]{
				// n batches of 2 items each.
				New:         func(n int64) flow.Publisher[[]int] { return newBatch(&btSource{n: int(2 * n)}) },
				Failed:      func() flow.Publisher[[]int] { return newBatch(failedInts()) },
				MaxElements: conformanceMax,
			})
		})
	}
}

func TestBufferConformance(t *testing.T) {
	for _, policy := range []flow.Overflow{flow.Block, flow.DropNewest, flow.DropOldest, flow.Fail} {
		t.Run(policy.String(), func(t *testing.T) {
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				// The source is synchronous: under the drop policies it
				// emits everything at subscription, so the buffer must
				// hold n items for the stream to have exactly n.
				New: func(n int64) flow.Publisher[int] {
					return operators.Buffer[int](&btSource{n: int(n)}, max(int(n), 1), policy)
				},
				Failed:      func() flow.Publisher[int] { return operators.Buffer(failedInts(), 4, policy) },
				MaxElements: conformanceMax,
			})
		})
	}
}

func TestLimitRateConformance(t *testing.T) {
	flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
		New:         func(n int64) flow.Publisher[int] { return operators.LimitRate[int](&btSource{n: int(n)}, 4, 2) },
		Failed:      func() flow.Publisher[int] { return operators.LimitRate(failedInts(), 4, 2) },
		MaxElements: conformanceMax,
	})
}
