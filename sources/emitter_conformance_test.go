package sources_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/sources"
)

func TestEmitterConformance(t *testing.T) {
	for _, policy := range []flow.Overflow{flow.Block, flow.DropNewest, flow.DropOldest, flow.Fail} {
		t.Run(policy.String(), func(t *testing.T) {
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				// An emitter that holds n items and is completed.
				New: func(n int64) flow.Publisher[int] {
					e := sources.NewEmitter[int](max(int(n), 1), policy)
					for i := range int(n) {
						e.TryEmit(i)
					}
					e.Complete()
					return e.Publisher()
				},
				Failed: func() flow.Publisher[int] {
					e := sources.NewEmitter[int](1, policy)
					e.Fail(errors.New("failed"))
					return e.Publisher()
				},
				MaxElements: 1024,
			})
		})
	}
}

func TestTickerConformance(t *testing.T) {
	flowtest.VerifyPublisher(t, flowtest.PublisherConfig[time.Time]{
		New:      func(int64) flow.Publisher[time.Time] { return sources.Ticker(100*time.Microsecond, flow.Block) },
		Infinite: true,
	})
}
