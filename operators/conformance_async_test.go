package operators_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sources"
)

// asyncSchedulers are the schedulers every async stage is verified on;
// each is closed when the test ends.
func asyncSchedulers(t *testing.T) map[string]scheduler.Scheduler {
	single, pool := scheduler.NewSingle(), scheduler.NewPool(2)
	t.Cleanup(func() { single.Close(); pool.Close() })
	return map[string]scheduler.Scheduler{"single": single, "pool": pool, "immediate": scheduler.Immediate}
}

func TestPublishOnConformance(t *testing.T) {
	for sname, s := range asyncSchedulers(t) {
		for _, opts := range [][]operators.Option{
			nil,
			{operators.Prefetch(1)},
			{operators.Prefetch(3), operators.DelayError(false)},
		} {
			t.Run(fmt.Sprintf("%s/opts=%d", sname, len(opts)), func(t *testing.T) {
				flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
					New: func(n int64) flow.Publisher[int] {
						return operators.PublishOn(sources.Range(0, int(n)), s, opts...)
					},
					Failed: func() flow.Publisher[int] {
						return operators.PublishOn(sources.Error[int](errBoom), s, opts...)
					},
					MaxElements: conformanceMax,
					Timeout:     5 * time.Second,
				})
			})
		}
	}
}

func TestSubscribeOnConformance(t *testing.T) {
	for sname, s := range asyncSchedulers(t) {
		t.Run(sname, func(t *testing.T) {
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				New: func(n int64) flow.Publisher[int] {
					return operators.SubscribeOn(sources.Range(0, int(n)), s)
				},
				Failed: func() flow.Publisher[int] {
					return operators.SubscribeOn(sources.Error[int](errBoom), s)
				},
				MaxElements: conformanceMax,
				Timeout:     5 * time.Second,
			})
		})
	}
}
