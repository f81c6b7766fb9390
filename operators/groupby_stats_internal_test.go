package operators

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

// The accounting of a GroupBy under each GroupOverflow policy, read from
// the stage's own counters: with group 0 subscribed but not requesting
// and group 1 requesting everything, then once group 0 requests too,
// produced = delivered + dropped + buffered, with the exact counts.
func TestGroupByGroupOverflowAccounting(t *testing.T) {
	type counts struct {
		Produced, Delivered, Buffered int64
		Dropped                       map[flow.DropReason]int64
	}
	for _, tc := range []struct {
		policy        flow.Overflow
		before, after counts
	}{
		// Under Block, only 0..7 have reached a group (8 waits at the
		// head of the routing queue, 9..11 behind it).
		{flow.Block, counts{8, 4, 4, nil}, counts{20, 20, 0, nil}},
		{flow.DropNewest, counts{20, 10, 4, map[flow.DropReason]int64{flow.ReasonNewest: 6}},
			counts{20, 14, 0, map[flow.DropReason]int64{flow.ReasonNewest: 6}}},
		{flow.DropOldest, counts{20, 10, 4, map[flow.DropReason]int64{flow.ReasonOldest: 6}},
			counts{20, 14, 0, map[flow.DropReason]int64{flow.ReasonOldest: 6}}},
		{flow.Fail, counts{20, 10, 4, map[flow.DropReason]int64{flow.ReasonOverflow: 1, flow.ReasonCancelled: 5}},
			counts{20, 14, 0, map[flow.DropReason]int64{flow.ReasonOverflow: 1, flow.ReasonCancelled: 5}}},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			pub := GroupBy(sources.Range(0, 20), func(i int) int { return i % 2 }, 2,
				Prefetch(4), GroupOverflow(tc.policy))
			var slow flow.Subscription
			pub.Subscribe(flow.SubscriberFuncs[*Group[int, int]]{
				Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) },
				Next: func(g *Group[int, int]) {
					g.Subscribe(flow.SubscriberFuncs[int]{Subscribe: func(s flow.Subscription) {
						if g.Key() == 0 {
							slow = s
							return
						}
						s.Request(flow.Unbounded)
					}})
				},
			})
			snap := func() counts {
				s := pub.(*groupBy[int, int]).stats.Snapshot()
				var dropped int64
				for _, d := range s.Dropped {
					dropped += d
				}
				if s.Produced != s.Delivered+dropped+s.Buffered {
					t.Errorf("produced %d != delivered %d + dropped %d + buffered %d",
						s.Produced, s.Delivered, dropped, s.Buffered)
				}
				return counts{s.Produced, s.Delivered, s.Buffered, s.DroppedMap()}
			}
			if diff := cmp.Diff(tc.before, snap()); diff != "" {
				t.Errorf("before group 0 requests (-want +got):\n%s", diff)
			}
			slow.Request(flow.Unbounded)
			if diff := cmp.Diff(tc.after, snap()); diff != "" {
				t.Errorf("after group 0 requested (-want +got):\n%s", diff)
			}
		})
	}
}
