package operators_test

import (
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

// The conformance kit runs against every output of Partition, the outer
// publisher and a group of GroupBy, and FairByKey, each fed by a
// conforming synchronous source.

// kyDrain subscribes to pub and requests everything, to stand for the
// consumer of an output that is not under test.
func kyDrain[T any](pub flow.Publisher[T]) {
	pub.Subscribe(flow.SubscriberFuncs[T]{Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) }})
}

func TestPartitionConformance(t *testing.T) {
	t.Run("one output", func(t *testing.T) {
		flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
			New: func(n int64) flow.Publisher[int] {
				return operators.Partition[int](&btSource{n: int(n)}, 1, func(int) int { return 0 })[0]
			},
			Failed: func() flow.Publisher[int] {
				return operators.Partition(failedInts(), 1, func(int) int { return 0 })[0]
			},
			MaxElements: conformanceMax,
		})
	})
	for _, mode := range []string{"Block", "DropNewest", "EagerCancel"} {
		t.Run("output 1 of 3, others drained, "+mode, func(t *testing.T) {
			// Output 1 gets every third item of 3n: exactly n. The other
			// outputs are subscribed first, so the run starts when the kit
			// subscribes to output 1.
			opts := []operators.Option{operators.Prefetch(4)}
			switch mode {
			case "DropNewest":
				opts = append(opts, operators.OutputOverflow(flow.DropNewest, 0, 2))
			case "EagerCancel":
				opts = append(opts, operators.EagerCancel())
			}
			newOut := func(src flow.Publisher[int]) flow.Publisher[int] {
				outs := operators.Partition(src, 3, func(i int) int { return i % 3 }, opts...)
				kyDrain(outs[0])
				kyDrain(outs[2])
				return outs[1]
			}
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				New:         func(n int64) flow.Publisher[int] { return newOut(&btSource{n: int(3 * n)}) },
				Failed:      func() flow.Publisher[int] { return newOut(failedInts()) },
				MaxElements: conformanceMax,
				Skip: map[string]string{
					"optional_spec111_maySupportMultiSubscribe":                                                                                                 "a second subscriber joins the next run, which waits for the other outputs",
					"optional_spec111_registeredSubscribersMustReceiveOnNextOrOnCompleteSignals":                                                                "as above",
					"optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequenceToAllOfItsSubscribersWhenRequestingOneByOne":                         "as above",
					"optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequenceToAllOfItsSubscribersWhenRequestingManyUpfront":                      "as above",
					"optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequenceToAllOfItsSubscribersWhenRequestingManyUpfrontAndCompleteAsExpected": "as above",
				},
			})
		})
	}
}

func TestGroupByConformance(t *testing.T) {
	t.Run("outer", func(t *testing.T) {
		// n items with distinct keys make n groups of one item each.
		flowtest.VerifyPublisher(t, flowtest.PublisherConfig[*operators.Group[int, int]]{
			New: func(n int64) flow.Publisher[*operators.Group[int, int]] {
				return operators.GroupBy[int](&btSource{n: int(n)}, func(i int) int { return i }, max(int(n), 1), operators.Prefetch(8))
			},
			Failed: func() flow.Publisher[*operators.Group[int, int]] {
				return operators.GroupBy(failedInts(), func(i int) int { return i }, 4)
			},
			MaxElements: conformanceMax,
		})
	})
	for _, mode := range []string{"block", "fail"} {
		t.Run("group, "+mode, func(t *testing.T) {
			// Every item has key 0: the first group holds them all.
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				New: func(n int64) flow.Publisher[int] {
					opts := []operators.Option{operators.Prefetch(16)}
					if mode == "fail" {
						opts = append(opts, operators.FailAtMaxGroups())
					}
					return kyFirstGroup(operators.GroupBy[int](&btSource{n: int(n)}, func(int) int { return 0 }, 1, opts...))
				},
				MaxElements: conformanceMax,
			})
		})
	}
	for _, policy := range []flow.Overflow{flow.DropNewest, flow.DropOldest, flow.Fail} {
		t.Run("group, GroupOverflow "+policy.String(), func(t *testing.T) {
			// The source emits everything at once: the group's queue
			// holds all n items, so nothing overflows.
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				New: func(n int64) flow.Publisher[int] {
					return kyFirstGroup(operators.GroupBy[int](&btSource{n: int(n)}, func(int) int { return 0 }, 1,
						operators.Prefetch(max(int(n), 1)), operators.GroupOverflow(policy)))
				},
				MaxElements: conformanceMax,
			})
		})
	}
}

// kyFirstGroup subscribes to a GroupBy fed by a synchronous source and
// returns its first group, or an empty publisher when there is none.
func kyFirstGroup[K comparable](gb flow.Publisher[*operators.Group[K, int]]) flow.Publisher[int] {
	var first flow.Publisher[int]
	gb.Subscribe(flow.SubscriberFuncs[*operators.Group[K, int]]{
		Subscribe: func(s flow.Subscription) { s.Request(1) },
		Next:      func(g *operators.Group[K, int]) { first = g },
	})
	if first == nil {
		return &btSource{n: 0}
	}
	return first
}

func TestFairByKeyConformance(t *testing.T) {
	for _, policy := range []flow.Overflow{flow.Block, flow.DropNewest, flow.DropOldest, flow.Fail} {
		t.Run(policy.String(), func(t *testing.T) {
			perKey := func(n int64) int {
				if policy == flow.Block {
					return 4
				}
				return max(int(n), 1) // the source emits everything at once
			}
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				New: func(n int64) flow.Publisher[int] {
					return operators.FairByKey[int](&btSource{n: int(n)}, func(i int) int { return i % 3 }, perKey(n),
						operators.KeyOverflow(policy))
				},
				Failed: func() flow.Publisher[int] {
					return operators.FairByKey(failedInts(), func(i int) int { return i % 3 }, 4, operators.KeyOverflow(policy))
				},
				MaxElements: conformanceMax,
			})
		})
	}
}
