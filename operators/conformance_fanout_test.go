package operators_test

import (
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

// The conformance kit runs against a Broadcast and every output of a
// Balance, each applied to a conforming source.

func TestBroadcastConformance(t *testing.T) {
	// Without a per-subscriber buffer, under Block, an item waits until
	// every subscriber has demand; the kit's multicast tests request from
	// one subscriber at a time and wait for an item, so they cannot pass.
	lockstep := map[string]string{
		"optional_spec111_registeredSubscribersMustReceiveOnNextOrOnCompleteSignals":                                        "Block without buffer: every subscriber must request before an item goes out",
		"optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequenceToAllOfItsSubscribersWhenRequestingOneByOne": "Block without buffer: every subscriber must request before an item goes out",
	}
	for _, c := range []struct {
		name string
		opts []operators.Option
		skip map[string]string
	}{
		{"default", nil, lockstep},
		{"prefetch 1", []operators.Option{operators.Prefetch(1)}, lockstep},
		{"no auto cancel", []operators.Option{operators.AutoCancel(false)}, lockstep},
		{"block buffer", []operators.Option{operators.SlowSubscriber(flow.Block, 4)}, nil},
		{"drop oldest", []operators.Option{operators.SlowSubscriber(flow.DropOldest, 4)}, nil},
		{"cancel slow", []operators.Option{operators.CancelSlow(4), operators.Prefetch(3)}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				New: func(n int64) flow.Publisher[int] {
					return operators.Broadcast[int](&btSource{n: int(n)}, c.opts...)
				},
				Failed:      func() flow.Publisher[int] { return operators.Broadcast(failedInts(), c.opts...) },
				MaxElements: conformanceMax,
				Skip:        c.skip,
			})
		})
	}
}

func TestBalanceConformance(t *testing.T) {
	// Only the output under test subscribes: it receives every item.
	for name, newOut := range map[string]func(src flow.Publisher[int]) flow.Publisher[int]{
		"one output": func(src flow.Publisher[int]) flow.Publisher[int] { return operators.Balance(src, 1)[0] },
		"third of three": func(src flow.Publisher[int]) flow.Publisher[int] {
			return operators.Balance(src, 3, operators.MinSubscribers(1))[2]
		},
		"prefetch 2": func(src flow.Publisher[int]) flow.Publisher[int] {
			return operators.Balance(src, 2, operators.MinSubscribers(1), operators.Prefetch(2))[0]
		},
	} {
		t.Run(name, func(t *testing.T) {
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				New:         func(n int64) flow.Publisher[int] { return newOut(&btSource{n: int(n)}) },
				Failed:      func() flow.Publisher[int] { return newOut(failedInts()) },
				MaxElements: conformanceMax,
			})
		})
	}
}
