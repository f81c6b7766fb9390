package operators_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

// kyGroups subscribes to a GroupBy and to every group it emits, each group
// with a Subscriber made by newSub (called with the group's key). It
// records the keys in emission order.
type kyGroups struct {
	t      *testing.T
	outer  *flowtest.Subscriber[*operators.Group[int, int]]
	newSub func(key int) *flowtest.Subscriber[int]

	mu      sync.Mutex
	keys    []int
	handles []*operators.Group[int, int]
	groups  []*flowtest.Subscriber[int] // nil for a group left unsubscribed
}

func kySubscribeGroups(t *testing.T, gb flow.Publisher[*operators.Group[int, int]], outerRequest int64,
	newSub func(key int) *flowtest.Subscriber[int]) *kyGroups {
	g := &kyGroups{t: t, newSub: newSub}
	if g.newSub == nil {
		g.newSub = func(int) *flowtest.Subscriber[int] { return flowtest.NewSubscriber[int](t, flow.Unbounded, btWait) }
	}
	g.outer = flowtest.NewSubscriber[*operators.Group[int, int]](t, outerRequest, btWait)
	gb.Subscribe(flow.SubscriberFuncs[*operators.Group[int, int]]{
		Subscribe: g.outer.OnSubscribe,
		Next: func(grp *operators.Group[int, int]) {
			s := g.newSub(grp.Key())
			g.mu.Lock()
			g.keys = append(g.keys, grp.Key())
			g.handles = append(g.handles, grp)
			g.groups = append(g.groups, s)
			g.mu.Unlock()
			g.outer.OnNext(grp)
			if s != nil {
				grp.Subscribe(s)
			}
		},
		Error:    g.outer.OnError,
		Complete: g.outer.OnComplete,
	})
	return g
}

// items returns each group's items, by emission order.
func (g *kyGroups) items() [][]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out [][]int
	for _, s := range g.groups {
		if s == nil {
			out = append(out, nil)
			continue
		}
		out = append(out, btItems(s))
	}
	return out
}

func (g *kyGroups) Keys() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]int(nil), g.keys...)
}

func (g *kyGroups) handle(i int) *operators.Group[int, int] {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.handles[i]
}

func (g *kyGroups) group(i int) *flowtest.Subscriber[int] {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.groups[i]
}

func TestGroupByExactGroups(t *testing.T) {
	src := &btSource{items: []int{10, 21, 12, 30, 41, 22, 13}}
	gb := operators.GroupBy[int](src, func(i int) int { return i / 10 }, 8)
	g := kySubscribeGroups(t, gb, flow.Unbounded, nil)
	btAwait(t, g.outer)
	if !g.outer.Completed() {
		t.Fatalf("outer: %v, want OnComplete", g.outer.Err())
	}
	if diff := cmp.Diff([]int{1, 2, 3, 4}, g.Keys()); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	for i := range g.Keys() {
		btAwait(t, g.group(i))
		if !g.group(i).Completed() {
			t.Errorf("group %d: %v, want OnComplete", i, g.group(i).Err())
		}
	}
	if diff := cmp.Diff([][]int{{10, 12, 13}, {21, 22}, {30}, {41}}, g.items()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{256}, src.Requests()); diff != "" {
		t.Errorf("upstream requests (-want +got):\n%s", diff)
	}
}

func TestGroupByAtTheBoundWaitsForACancelledGroup(t *testing.T) {
	// Keys 0, 1, 2, 0, 1, 2 ... with maxGroups 2: item 2 waits until a
	// group is cancelled, and so do the items behind it.
	src := &btSource{n: 9}
	gb := operators.GroupBy[int](src, func(i int) int { return i % 3 }, 2, operators.Prefetch(4))
	g := kySubscribeGroups(t, gb, flow.Unbounded, nil)
	if diff := cmp.Diff([]int{0, 1}, g.Keys()); diff != "" {
		t.Fatalf("keys before a cancel (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]int{{0}, {1}}, g.items()); diff != "" {
		t.Fatalf("items before a cancel (-want +got):\n%s", diff)
	}
	if g.outer.Terminated() {
		t.Fatalf("outer ended at the bound: %v", g.outer.Err())
	}
	g.group(0).Cancel() // frees a slot: item 2 opens group 2, item 3 (key 0) waits
	if diff := cmp.Diff([]int{0, 1, 2}, g.Keys()); diff != "" {
		t.Fatalf("keys after one cancel (-want +got):\n%s", diff)
	}
	g.group(1).Cancel() // item 3 opens a new group 0, item 4 (key 1) waits
	if diff := cmp.Diff([]int{0, 1, 2, 0}, g.Keys()); diff != "" {
		t.Fatalf("keys after two cancels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]int{{0}, {1}, {2}, {3}}, g.items()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if g.outer.Terminated() {
		t.Fatalf("outer ended at the bound: %v", g.outer.Err())
	}
}

func TestGroupByGroupsThatCancelFreeTheirSlots(t *testing.T) {
	src := &btSource{n: 9}
	gb := operators.GroupBy[int](src, func(i int) int { return i % 3 }, 2, operators.Prefetch(4))
	g := kySubscribeGroups(t, gb, flow.Unbounded, func(int) *flowtest.Subscriber[int] {
		return flowtest.NewSubscriber[int](t, flow.Unbounded, flowtest.CancelAfter(1))
	})
	btAwait(t, g.outer)
	if !g.outer.Completed() {
		t.Fatalf("outer: %v, want OnComplete", g.outer.Err())
	}
	if diff := cmp.Diff([]int{0, 1, 2, 0, 1, 2, 0, 1, 2}, g.Keys()); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]int{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}}, g.items()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

func TestGroupByFailAtMaxGroups(t *testing.T) {
	var drops kyDrops
	src := &btSource{n: 9}
	gb := operators.GroupBy[int](src, func(i int) int { return i % 3 }, 2,
		operators.FailAtMaxGroups(), operators.Name("gb"), drops.option())
	g := kySubscribeGroups(t, gb, flow.Unbounded, nil)
	btAwait(t, g.outer)
	const want = "sluice: too many open groups: gb: key 2 would open group 3 of at most 2"
	for i, s := range []*flowtest.Subscriber[int]{g.group(0), g.group(1)} {
		btAwait(t, s)
		if err := s.Err(); !errors.Is(err, operators.ErrTooManyGroups) || err.Error() != want {
			t.Errorf("group %d: error %v, want %q", i, err, want)
		}
	}
	if err := g.outer.Err(); !errors.Is(err, operators.ErrTooManyGroups) || err.Error() != want {
		t.Errorf("outer: error %v, want %q", err, want)
	}
	if diff := cmp.Diff([][]int{{0}, {1}}, g.items()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	wantDrops := map[flow.DropReason][]int{flow.ReasonOverflow: {2}, flow.ReasonCancelled: kyRange(3, 9, 1)}
	if diff := cmp.Diff(wantDrops, drops.get()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if src.Cancels() != 1 {
		t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
	}
}

func TestGroupByUpstreamErrorReachesOuterAndEveryGroup(t *testing.T) {
	src := &btSource{n: 5, err: errBoom}
	gb := operators.GroupBy[int](src, func(i int) int { return i % 2 }, 4)
	g := kySubscribeGroups(t, gb, flow.Unbounded, nil)
	btAwait(t, g.outer)
	if !errors.Is(g.outer.Err(), errBoom) {
		t.Errorf("outer: error %v, want %v", g.outer.Err(), errBoom)
	}
	for i := range 2 {
		btAwait(t, g.group(i))
		if !errors.Is(g.group(i).Err(), errBoom) {
			t.Errorf("group %d: error %v, want %v", i, g.group(i).Err(), errBoom)
		}
	}
	if diff := cmp.Diff([][]int{{0, 2, 4}, {1, 3}}, g.items()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

func TestGroupByKeyPanicEndsEverything(t *testing.T) {
	var drops kyDrops
	src := &btSource{n: 6}
	gb := operators.GroupBy[int](src, func(i int) int {
		if i == 3 {
			panic("bad key")
		}
		return i % 2
	}, 4, operators.Name("gb"), drops.option())
	g := kySubscribeGroups(t, gb, flow.Unbounded, nil)
	btAwait(t, g.outer)
	errs := []error{g.outer.Err()}
	for i := range 2 {
		btAwait(t, g.group(i))
		errs = append(errs, g.group(i).Err())
	}
	for i, err := range errs {
		var pe *flow.PanicError
		if !errors.As(err, &pe) || err.Error() != "gb: sluice: panic: bad key" {
			t.Errorf("subscriber %d (0 is outer): error %v, want gb: *flow.PanicError", i, err)
		}
	}
	if diff := cmp.Diff([][]int{{0, 2}, {1}}, g.items()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	wantDrops := map[flow.DropReason][]int{flow.ReasonError: {3}, flow.ReasonCancelled: {4, 5}}
	if diff := cmp.Diff(wantDrops, drops.get()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if src.Cancels() != 1 {
		t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
	}
}

// The known stall: a group nobody consumes stops every group once its
// queue is full. Consuming it releases the others.
func TestGroupByUnconsumedGroupStopsTheWholeStage(t *testing.T) {
	src := &btSource{n: 20}
	gb := operators.GroupBy[int](src, func(i int) int { return i % 2 }, 4, operators.Prefetch(2))
	g := kySubscribeGroups(t, gb, flow.Unbounded, func(key int) *flowtest.Subscriber[int] {
		if key == 0 {
			return nil // left unsubscribed for now
		}
		return flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
	})
	// Group 0 holds 0 and 2; item 4 waits for room, and item 5 behind it.
	if diff := cmp.Diff([]int{1, 3}, btItems(g.group(1))); diff != "" {
		t.Errorf("group 1 while group 0 is full (-want +got):\n%s", diff)
	}
	if g.group(1).Terminated() || g.outer.Terminated() {
		t.Fatalf("stream ended while group 0 held items")
	}
	late := flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
	g.handle(0).Subscribe(late)
	btAwait(t, g.outer)
	btAwait(t, late)
	btAwait(t, g.group(1))
	if diff := cmp.Diff([][]int{kyRange(0, 20, 2), kyRange(1, 20, 2)}, [][]int{btItems(late), btItems(g.group(1))}); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

// GroupOverflow: group 0 is subscribed but requests nothing until the
// source has ended, group 1 requests everything. Under Block group 0
// holds back group 1 (the known stall); under the other policies group 1
// and upstream keep flowing and group 0's excess is shed.
func TestGroupByGroupOverflowWithASlowGroup(t *testing.T) {
	for _, tc := range []struct {
		policy   flow.Overflow
		fast     []int // group 1 before group 0 requests
		requests []int64
		slow     []int // group 0 once it requests
		drops    map[flow.DropReason][]int
		err      string // group 0's
	}{
		// Group 0 holds 0, 2, 4, 6; item 8 waits for room, 9 and 11
		// behind it: 12 items requested, none after.
		{policy: flow.Block, fast: []int{1, 3, 5, 7}, requests: []int64{4, 4, 4}, slow: kyRange(0, 20, 2)},
		{policy: flow.DropNewest, fast: kyRange(1, 20, 2), requests: []int64{4, 4, 4, 4, 4},
			slow: []int{0, 2, 4, 6}, drops: map[flow.DropReason][]int{flow.ReasonNewest: kyRange(8, 20, 2)}},
		{policy: flow.DropOldest, fast: kyRange(1, 20, 2), requests: []int64{4, 4, 4, 4, 4},
			slow: []int{12, 14, 16, 18}, drops: map[flow.DropReason][]int{flow.ReasonOldest: kyRange(0, 12, 2)}},
		{policy: flow.Fail, fast: kyRange(1, 20, 2), requests: []int64{4, 4, 4, 4, 4},
			slow: []int{0, 2, 4, 6}, drops: map[flow.DropReason][]int{
				flow.ReasonOverflow:  {8},
				flow.ReasonCancelled: kyRange(10, 20, 2), // for the failed group
			}, err: "sluice: buffer overflow: gb[0] (capacity 4)"},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			var drops kyDrops
			src := &btSource{n: 20}
			gb := operators.GroupBy[int](src, func(i int) int { return i % 2 }, 2, operators.Prefetch(4),
				operators.Name("gb"), drops.option(), operators.GroupOverflow(tc.policy))
			g := kySubscribeGroups(t, gb, flow.Unbounded, func(key int) *flowtest.Subscriber[int] {
				if key == 0 {
					return flowtest.NewSubscriber[int](t, 0, btWait)
				}
				return flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
			})
			if diff := cmp.Diff([]int{0, 1}, g.Keys()); diff != "" {
				t.Fatalf("keys (-want +got):\n%s", diff)
			}
			slow, fast := g.group(0), g.group(1)
			if diff := cmp.Diff(tc.fast, btItems(fast)); diff != "" {
				t.Errorf("group 1 before group 0 requests (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.requests, src.Requests()); diff != "" {
				t.Errorf("upstream requests before group 0 requests (-want +got):\n%s", diff)
			}
			if slow.Terminated() {
				t.Errorf("group 0 ended before it requested: %v", slow.Err())
			}
			// Under the drop policies the source is done: the outer
			// subscriber and group 1 have completed already.
			if done := tc.policy != flow.Block; g.outer.Completed() != done || fast.Completed() != done {
				t.Errorf("before group 0 requests: outer completed %v, group 1 completed %v, want %v",
					g.outer.Completed(), fast.Completed(), done)
			}
			if diff := cmp.Diff(tc.drops, drops.get()); diff != "" {
				t.Errorf("drops before group 0 requests (-want +got):\n%s", diff)
			}
			slow.Request(flow.Unbounded)
			btAwait(t, g.outer)
			btAwait(t, slow)
			btAwait(t, fast)
			if diff := cmp.Diff([][]int{tc.slow, kyRange(1, 20, 2)}, g.items()); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			got := []string{g.outer.Outcome(), slow.Outcome(), fast.Outcome()}
			want := []string{"complete", "complete", "complete"}
			if tc.err != "" {
				want[1] = "error: " + tc.err
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("outcomes of outer, group 0, group 1 (-want +got):\n%s", diff)
			}
			if tc.err != "" && !errors.Is(slow.Err(), flow.ErrOverflow) {
				t.Errorf("group 0: error %v, want one that matches flow.ErrOverflow", slow.Err())
			}
			if diff := cmp.Diff(tc.drops, drops.get()); diff != "" {
				t.Errorf("drops (-want +got):\n%s", diff)
			}
			// Every item is delivered once or dropped once.
			delivered := len(tc.slow) + 10
			dropped := 0
			for _, vs := range tc.drops {
				dropped += len(vs)
			}
			if delivered+dropped != 20 {
				t.Errorf("delivered %d + dropped %d != produced 20", delivered, dropped)
			}
			if src.Cancels() != 0 {
				t.Errorf("upstream cancelled %d times, want 0", src.Cancels())
			}
		})
	}
}

// A group that failed under GroupOverflow(flow.Fail) keeps its slot until
// it has delivered its error, dropping later items with its key; then a
// later item with its key opens a new group. The other groups, the outer
// subscriber and upstream never notice.
func TestGroupByFailedGroupFreesItsSlotOnceItHasEnded(t *testing.T) {
	var drops kyDrops
	src := &fiManual[int]{}
	gb := operators.GroupBy[int](src, func(i int) int { return i / 100 }, 2, operators.Prefetch(2),
		operators.Name("gb"), drops.option(), operators.GroupOverflow(flow.Fail))
	var first *flowtest.Subscriber[int]
	g := kySubscribeGroups(t, gb, flow.Unbounded, func(int) *flowtest.Subscriber[int] {
		if first == nil {
			first = flowtest.NewSubscriber[int](t, 0, btWait)
			return first
		}
		return flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
	})
	// Group 0 holds 0 and 1; 2 overflows it; 3 is late for it.
	src.Push(0, 1, 2, 3)
	if first.Terminated() {
		t.Fatalf("failed group ended before its queued items were requested: %v", first.Err())
	}
	first.Request(flow.Unbounded) // 0, 1, then the error: the slot is free
	src.Push(100, 4, 5)           // group 1; a new group 0
	src.End(nil)
	btAwait(t, g.outer)
	for i := range 3 {
		btAwait(t, g.group(i))
	}
	if diff := cmp.Diff([]int{0, 1, 0}, g.Keys()); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]int{{0, 1}, {100}, {4, 5}}, g.items()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	got := []string{g.outer.Outcome(), g.group(0).Outcome(), g.group(1).Outcome(), g.group(2).Outcome()}
	want := []string{"complete", "error: sluice: buffer overflow: gb[0] (capacity 2)", "complete", "complete"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes of outer and groups (-want +got):\n%s", diff)
	}
	if !errors.Is(g.group(0).Err(), flow.ErrOverflow) {
		t.Errorf("failed group: error %v, want one that matches flow.ErrOverflow", g.group(0).Err())
	}
	wantDrops := map[flow.DropReason][]int{flow.ReasonOverflow: {2}, flow.ReasonCancelled: {3}}
	if diff := cmp.Diff(wantDrops, drops.get()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{2, 2, 2, 2}, src.Requests()); diff != "" {
		t.Errorf("upstream requests (-want +got):\n%s", diff)
	}
	if src.Cancelled() {
		t.Errorf("upstream cancelled")
	}
}

func TestGroupByOuterCancelKeepsEmittedGroups(t *testing.T) {
	var drops kyDrops
	src := &btSource{n: 9}
	gb := operators.GroupBy[int](src, func(i int) int { return i % 3 }, 4, drops.option())
	g := kySubscribeGroups(t, gb, 1, nil)
	g.outer.Cancel()
	btAwait(t, g.group(0))
	if !g.group(0).Completed() {
		t.Errorf("group 0: %v, want OnComplete", g.group(0).Err())
	}
	if diff := cmp.Diff([][]int{{0, 3, 6}}, g.items()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	wantDrops := map[flow.DropReason][]int{flow.ReasonCancelled: {1, 2, 4, 5, 7, 8}}
	if diff := cmp.Diff(wantDrops, drops.get()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if src.Cancels() != 0 {
		t.Errorf("upstream cancelled %d times with group 0 live, want 0", src.Cancels())
	}
}

func TestGroupByCancelsUpstreamWhenOuterAndGroupsAreDone(t *testing.T) {
	src := &btSource{n: 1000}
	gb := operators.GroupBy[int](src, func(i int) int { return i % 2 }, 4, operators.Prefetch(4))
	g := kySubscribeGroups(t, gb, 1, func(int) *flowtest.Subscriber[int] {
		return flowtest.NewSubscriber[int](t, flow.Unbounded, flowtest.CancelAfter(3))
	})
	if src.Cancels() != 0 {
		t.Fatalf("upstream cancelled before the outer subscriber was")
	}
	g.outer.Cancel()
	if src.Cancels() != 1 {
		t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
	}
	if diff := cmp.Diff([][]int{{0, 2, 4}}, g.items()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

func TestGroupBySecondSubscriberToAGroupGetsAnError(t *testing.T) {
	src := &btSource{n: 2}
	gb := operators.GroupBy[int](src, func(int) int { return 7 }, 1, operators.Name("gb"))
	g := kySubscribeGroups(t, gb, flow.Unbounded, nil)
	second := flowtest.NewSubscriber[int](t, flow.Unbounded)
	g.handle(0).Subscribe(second)
	const want = "sluice: gb: group 7 already has a subscriber, or was discarded"
	if err := second.Err(); err == nil || err.Error() != want {
		t.Errorf("second subscriber: error %v, want %q", err, want)
	}
	btAwait(t, g.group(0))
	if diff := cmp.Diff([][]int{{0, 1}}, g.items()); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

func TestGroupByConstructionPanics(t *testing.T) {
	src := &btSource{n: 1}
	key := func(i int) int { return i }
	for _, tc := range []struct {
		name string
		f    func()
		want string
	}{
		{"maxGroups <= 0", func() { operators.GroupBy[int](src, key, 0) }, "sluice: GroupBy: maxGroups <= 0"},
		{"nil source", func() { operators.GroupBy[int](nil, key, 1) }, "sluice: GroupBy: nil source"},
		{"nil key", func() { operators.GroupBy[int, int](src, nil, 1) }, "sluice: GroupBy"},
		{"invalid group policy", func() { operators.GroupOverflow(flow.Overflow(9)) }, "sluice: GroupOverflow: invalid policy Overflow(9)"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantPanicPrefix(t, tc.want, tc.f) })
	}
}

// Random demand on every group, random cancellation of groups, random
// bounds in both modes, a random GroupOverflow policy, with a synchronous
// or an asynchronous source.
// Every item is delivered exactly once or dropped exactly once; each
// group receives items of its key only, in order; the stream always ends.
func TestGroupByStressRandomDemandAndCancel(t *testing.T) {
	iterations := 40
	if testing.Short() {
		iterations = 20
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 4))
	for it := range iterations {
		n := rng.IntN(1500)
		keys := 1 + rng.IntN(6)
		fail := rng.IntN(2) == 0
		maxGroups := keys + rng.IntN(2) // Block must not wait forever: room for every key
		if fail {
			maxGroups = 1 + rng.IntN(keys+1)
		}
		prefetch := 1 + rng.IntN(16)
		policy := flow.Overflow(rng.IntN(4))
		name := fmt.Sprintf("seed=%d/it=%d/n=%d/keys=%d/maxGroups=%d/fail=%v/prefetch=%d/policy=%v",
			seed, it, n, keys, maxGroups, fail, prefetch, policy)
		var src flow.Publisher[int]
		var async *btAsyncSource
		if rng.IntN(2) == 0 {
			src = &btSource{n: n}
		} else {
			async = &btAsyncSource{n: n}
			src = async
		}
		var drops kyDrops
		opts := []operators.Option{operators.Prefetch(prefetch), drops.option(), operators.GroupOverflow(policy)}
		if fail {
			opts = append(opts, operators.FailAtMaxGroups())
		}
		gb := operators.GroupBy(src, func(i int) int { return i % keys }, maxGroups, opts...)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var groups []*flowtest.Subscriber[int]
		var groupKeys []int
		outer := flowtest.NewSubscriber[*operators.Group[int, int]](t, flow.Unbounded, btWait)
		gb.Subscribe(flow.SubscriberFuncs[*operators.Group[int, int]]{
			Subscribe: outer.OnSubscribe,
			Next: func(grp *operators.Group[int, int]) {
				outer.OnNext(grp)
				mu.Lock()
				cancelAt := 0
				if rng.IntN(3) == 0 {
					cancelAt = 1 + rng.IntN(20)
				}
				gseed := rng.Uint64()
				mu.Unlock()
				var sopts []flowtest.Option
				if cancelAt > 0 {
					sopts = append(sopts, flowtest.CancelAfter(int64(cancelAt)))
				}
				s := flowtest.NewSubscriber[int](t, 0, append(sopts, btWait)...)
				mu.Lock()
				groups = append(groups, s)
				groupKeys = append(groupKeys, grp.Key())
				mu.Unlock()
				grp.Subscribe(s)
				wg.Go(func() { kyConsume(s, rand.New(rand.NewPCG(gseed, 5)), cancelAt) })
			},
			Error:    outer.OnError,
			Complete: outer.OnComplete,
		})
		if !outer.AwaitTerminated() {
			t.Fatalf("%s: outer did not end", name)
		}
		wg.Wait()
		if async != nil {
			async.Wait()
		}
		if err := outer.Err(); err != nil && !(fail && errors.Is(err, operators.ErrTooManyGroups)) {
			t.Fatalf("%s: outer error %v", name, err)
		}
		mu.Lock()
		seen := map[int]int{}
		for i, s := range groups {
			items := s.Items()
			for j, v := range items {
				seen[v]++
				if v%keys != groupKeys[i] {
					t.Fatalf("%s: item %d in group %d", name, v, groupKeys[i])
				}
				if j > 0 && v <= items[j-1] {
					t.Fatalf("%s: group %d out of order: %v", name, groupKeys[i], items)
				}
			}
			if v := s.Violations(); v != nil {
				t.Fatalf("%s: group %d: %v", name, groupKeys[i], v)
			}
		}
		mu.Unlock()
		for _, vs := range drops.get() {
			for _, v := range vs {
				seen[v]++
			}
		}
		for v, c := range seen {
			if c != 1 {
				t.Fatalf("%s: item %d delivered or dropped %d times", name, v, c)
			}
		}
		if outer.Completed() && len(seen) != n {
			t.Fatalf("%s: %d items accounted for, want %d", name, len(seen), n)
		}
	}
}

// BenchmarkGroupBy groups 100k ints by i%4, each group drained by a sink
// that requests Unbounded, on one goroutine; the baseline "map" appends
// to a map of slices in a plain loop.
func BenchmarkGroupBy(b *testing.B) {
	const keys = 4
	b.Run("groupBy", func(b *testing.B) {
		for b.Loop() {
			var sinks []*btSink[int]
			gb := operators.GroupBy[int](btFastSource{n: kyBenchItems}, func(i int) int { return i % keys }, keys)
			gb.Subscribe(flow.SubscriberFuncs[*operators.Group[int, int]]{
				Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) },
				Next: func(g *operators.Group[int, int]) {
					s := &btSink[int]{}
					sinks = append(sinks, s)
					g.Subscribe(s)
				},
			})
			for _, s := range sinks {
				if !s.done || s.n != kyBenchItems/keys {
					b.Fatalf("sink got %d, done %v", s.n, s.done)
				}
			}
		}
		reportPerItem(b, kyBenchItems)
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			m := map[int][]int{}
			for v := range kyBenchItems {
				m[v%keys] = append(m[v%keys], v)
			}
		}
		reportPerItem(b, kyBenchItems)
	})
}
