package operators_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
)

// foRec is a flowtest.Subscriber that keeps its Subscription, to read the
// per-subscriber Stats of a fan-out stage. It is for the fan-out tests.
type foRec[T any] struct {
	*flowtest.Subscriber[T]
	sub flow.Subscription
}

func newFoRec[T any](t *testing.T, initial int64, opts ...flowtest.Option) *foRec[T] {
	return &foRec[T]{Subscriber: flowtest.NewSubscriber[T](t, initial, opts...)}
}

func (r *foRec[T]) OnSubscribe(s flow.Subscription) {
	r.sub = s
	r.Subscriber.OnSubscribe(s)
}

func (r *foRec[T]) stats() operators.BufferStats {
	return r.sub.(operators.StatsReporter).Stats()
}

// foPanicky panics in its OnNext when it receives at.
type foPanicky struct {
	*foRec[int]
	at int
}

func (p *foPanicky) OnNext(v int) {
	if v == p.at {
		panic("bad item")
	}
	p.foRec.OnNext(v)
}

func TestBroadcastEverySubscriberGetsEveryItem(t *testing.T) {
	src := &btSource{n: 5}
	b := operators.Broadcast[int](src, operators.MinSubscribers(3))
	var recs []*foRec[int]
	for range 3 {
		r := newFoRec[int](t, flow.Unbounded)
		b.Subscribe(r)
		recs = append(recs, r)
	}
	for i, r := range recs {
		if diff := cmp.Diff(btInts(0, 5), btItems(r.Subscriber)); diff != "" {
			t.Errorf("subscriber %d items (-want +got)\n%s", i, diff)
		}
		if got := r.Subscriber.Outcome(); got != "complete" {
			t.Errorf("subscriber %d ended with %q", i, got)
		}
		if diff := cmp.Diff(operators.BufferStats{Produced: 5, Delivered: 5}, r.stats()); diff != "" {
			t.Errorf("subscriber %d stats (-want +got)\n%s", i, diff)
		}
	}
	if diff := cmp.Diff([]int64{256}, src.Requests()); diff != "" {
		t.Errorf("upstream requests (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(operators.BufferStats{Produced: 5, Delivered: 15}, b.Stats()); diff != "" {
		t.Errorf("stage stats (-want +got)\n%s", diff)
	}
}

func TestBroadcastSlowestSubscriberSetsThePace(t *testing.T) {
	src := &btSource{n: 100}
	b := operators.Broadcast[int](src, operators.Prefetch(4), operators.MinSubscribers(2))
	fast, slow := newFoRec[int](t, 10), newFoRec[int](t, 3)
	b.Subscribe(fast)
	b.Subscribe(slow)
	// Prefetch 4: 4 requested at once, then 3 more each time 3 are
	// handed out, however much the fast subscriber wants.
	check := func(step string, wantFast, wantSlow []int, wantRequests []int64) {
		t.Helper()
		if diff := cmp.Diff(wantFast, btItems(fast.Subscriber)); diff != "" {
			t.Errorf("%s: fast items (-want +got)\n%s", step, diff)
		}
		if diff := cmp.Diff(wantSlow, btItems(slow.Subscriber)); diff != "" {
			t.Errorf("%s: slow items (-want +got)\n%s", step, diff)
		}
		if diff := cmp.Diff(wantRequests, src.Requests()); diff != "" {
			t.Errorf("%s: upstream requests (-want +got)\n%s", step, diff)
		}
	}
	check("slow requested 3", btInts(0, 3), btInts(0, 3), []int64{4, 3})
	slow.Request(4)
	check("slow requested 7", btInts(0, 7), btInts(0, 7), []int64{4, 3, 3})
	slow.Request(10)
	check("fast has no demand left", btInts(0, 10), btInts(0, 10), []int64{4, 3, 3, 3})
	fast.Request(5)
	check("both requested 15", btInts(0, 15), btInts(0, 15), []int64{4, 3, 3, 3, 3, 3})
}

func TestBroadcastLateSubscriberSeesItemsFromWhenItJoins(t *testing.T) {
	src := &btSource{n: 10}
	b := operators.Broadcast[int](src)
	first := newFoRec[int](t, 3)
	b.Subscribe(first)
	late := newFoRec[int](t, 5)
	b.Subscribe(late)
	first.Request(2) // both have demand for 2: items 3 and 4
	first.Request(3) // late has 3 left: items 5, 6, 7
	if diff := cmp.Diff(btInts(0, 8), btItems(first.Subscriber)); diff != "" {
		t.Errorf("first (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(btInts(3, 8), btItems(late.Subscriber)); diff != "" {
		t.Errorf("late (-want +got)\n%s", diff)
	}
	first.Request(flow.Unbounded)
	late.Request(flow.Unbounded)
	btAwait(t, first.Subscriber)
	btAwait(t, late.Subscriber)
	if diff := cmp.Diff(btInts(3, 10), btItems(late.Subscriber)); diff != "" {
		t.Errorf("late at the end (-want +got)\n%s", diff)
	}
	// A subscriber that joins after the end gets the end at once.
	after := newFoRec[int](t, 0)
	b.Subscribe(after)
	if got := after.Subscriber.Outcome(); got != "complete" || len(after.Items()) != 0 {
		t.Errorf("subscriber after the end: %q with %v", got, after.Items())
	}
}

func TestBroadcastStartsAfterMinSubscribers(t *testing.T) {
	src := &btSource{n: 3}
	b := operators.Broadcast[int](src, operators.MinSubscribers(2))
	a := newFoRec[int](t, flow.Unbounded)
	b.Subscribe(a)
	if got := src.Requests(); got != nil || len(a.Items()) != 0 {
		t.Fatalf("before the second subscriber: requests %v, items %v", got, a.Items())
	}
	c := newFoRec[int](t, flow.Unbounded)
	b.Subscribe(c)
	for _, r := range []*foRec[int]{a, c} {
		if diff := cmp.Diff(btInts(0, 3), btItems(r.Subscriber)); diff != "" || !r.Completed() {
			t.Errorf("items (-want +got)\n%s; completed %v", diff, r.Completed())
		}
	}
}

func TestBroadcastConnectHoldsItemsForTheFirstSubscriber(t *testing.T) {
	src := &btSource{n: 300}
	b := operators.Broadcast[int](src, operators.Prefetch(8))
	b.Connect()
	b.Connect() // idempotent
	if diff := cmp.Diff([]int64{8}, src.Requests()); diff != "" {
		t.Fatalf("requests (-want +got)\n%s", diff)
	}
	if got := b.Stats(); got.Buffered != 8 || got.Produced != 8 {
		t.Errorf("stats before any subscriber: %+v", got)
	}
	r := newFoRec[int](t, 10)
	b.Subscribe(r)
	if diff := cmp.Diff(btInts(0, 10), btItems(r.Subscriber)); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
}

// Policies for slow subscribers: a fast subscriber takes everything, a
// slow one requests nothing until the source (10 items) has ended.
func TestBroadcastSlowSubscriberPolicies(t *testing.T) {
	overflow := fmt.Sprintf("error: bc: %v (subscriber buffer of 3 full)", flow.ErrOverflow)
	slowCut := fmt.Sprintf("error: bc: %v (buffer of 3 full)", operators.ErrSlowSubscriber)
	tests := []struct {
		name       string
		opt        operators.Option
		fast, slow []int  // items received once slow requested 10
		fastEnd    string // fast's end
		slowEnd    string
		drops      []btDrop[int]
		slowStats  operators.BufferStats
	}{
		{
			name: "drop newest", opt: operators.SlowSubscriber(flow.DropNewest, 3),
			fast: btInts(0, 10), slow: btInts(0, 3), fastEnd: "complete", slowEnd: "complete",
			drops: btDropsOf(flow.ReasonNewest, 3, 4, 5, 6, 7, 8, 9),
			slowStats: operators.BufferStats{Produced: 10, Delivered: 3,
				Dropped: map[flow.DropReason]int64{flow.ReasonNewest: 7}},
		},
		{
			name: "drop oldest", opt: operators.SlowSubscriber(flow.DropOldest, 3),
			fast: btInts(0, 10), slow: btInts(7, 10), fastEnd: "complete", slowEnd: "complete",
			drops: btDropsOf(flow.ReasonOldest, 0, 1, 2, 3, 4, 5, 6),
			slowStats: operators.BufferStats{Produced: 10, Delivered: 3,
				Dropped: map[flow.DropReason]int64{flow.ReasonOldest: 7}},
		},
		{
			// The whole stage fails at the fourth item: its later items
			// are dropped from the stage's queue.
			name: "fail", opt: operators.SlowSubscriber(flow.Fail, 3),
			fast: btInts(0, 4), slow: btInts(0, 3), fastEnd: overflow, slowEnd: overflow,
			drops: append(btDropsOf(flow.ReasonOverflow, 3), btDropsOf(flow.ReasonCancelled, 4, 5, 6, 7, 8, 9)...),
			slowStats: operators.BufferStats{Produced: 4, Delivered: 3,
				Dropped: map[flow.DropReason]int64{flow.ReasonOverflow: 1}},
		},
		{
			// Only the slow subscriber ends, at once; the other goes on.
			name: "cancel slow", opt: operators.CancelSlow(3),
			fast: btInts(0, 10), slow: nil, fastEnd: "complete", slowEnd: slowCut,
			drops: append(btDropsOf(flow.ReasonOverflow, 3), btDropsOf(flow.ReasonCancelled, 0, 1, 2)...),
			slowStats: operators.BufferStats{Produced: 4,
				Dropped: map[flow.DropReason]int64{flow.ReasonOverflow: 1, flow.ReasonCancelled: 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &btSource{n: 10}
			var drops btDrops[int]
			b := operators.Broadcast[int](src, tt.opt, operators.MinSubscribers(2), operators.OnDrop(drops.Hook),
				operators.Name("bc"))
			fast, slow := newFoRec[int](t, flow.Unbounded), newFoRec[int](t, 0)
			b.Subscribe(fast)
			b.Subscribe(slow)
			slow.Request(10)
			if diff := cmp.Diff(tt.fast, btItems(fast.Subscriber)); diff != "" {
				t.Errorf("fast items (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.slow, btItems(slow.Subscriber)); diff != "" {
				t.Errorf("slow items (-want +got)\n%s", diff)
			}
			if got := fast.Subscriber.Outcome(); got != tt.fastEnd {
				t.Errorf("fast ended with %q, want %q", got, tt.fastEnd)
			}
			if got := slow.Subscriber.Outcome(); got != tt.slowEnd {
				t.Errorf("slow ended with %q, want %q", got, tt.slowEnd)
			}
			if diff := cmp.Diff(tt.drops, drops.All()); diff != "" {
				t.Errorf("drops (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.slowStats, slow.stats()); diff != "" {
				t.Errorf("slow stats (-want +got)\n%s", diff)
			}
			if st := fast.stats(); st.TotalDropped() != 0 || st.Delivered != int64(len(tt.fast)) {
				t.Errorf("fast stats %+v", st)
			}
		})
	}
}

func TestBroadcastFailPolicyIsAnOverflowError(t *testing.T) {
	b := operators.Broadcast[int](&btSource{n: 10}, operators.SlowSubscriber(flow.Fail, 1), operators.MinSubscribers(2))
	fast, slow := newFoRec[int](t, flow.Unbounded), newFoRec[int](t, 0)
	b.Subscribe(fast)
	b.Subscribe(slow)
	if err := fast.Err(); !errors.Is(err, flow.ErrOverflow) {
		t.Errorf("fast: %v, want ErrOverflow", err)
	}
	if err := slow.Err(); err != nil {
		t.Errorf("slow ended before receiving its buffered item: %v", err)
	}
	slow.Request(1)
	if err := slow.Err(); !errors.Is(err, flow.ErrOverflow) || !cmp.Equal([]int{0}, slow.Items()) {
		t.Errorf("slow: %v after %v", err, slow.Items())
	}
}

// Under Block with a buffer, a subscriber without demand absorbs up to
// the buffer's capacity before it holds the others back.
func TestBroadcastBlockBufferAbsorbsBursts(t *testing.T) {
	b := operators.Broadcast[int](&btSource{n: 20}, operators.SlowSubscriber(flow.Block, 3), operators.MinSubscribers(2))
	fast, slow := newFoRec[int](t, flow.Unbounded), newFoRec[int](t, 0)
	b.Subscribe(fast)
	b.Subscribe(slow)
	if diff := cmp.Diff(btInts(0, 3), btItems(fast.Subscriber)); diff != "" {
		t.Errorf("fast, slow idle (-want +got)\n%s", diff)
	}
	if st := slow.stats(); st.Buffered != 3 || st.Produced != 3 {
		t.Errorf("slow stats %+v", st)
	}
	slow.Request(5) // 3 from its buffer, 2 direct, 3 more buffered
	if diff := cmp.Diff(btInts(0, 8), btItems(fast.Subscriber)); diff != "" {
		t.Errorf("fast (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(btInts(0, 5), btItems(slow.Subscriber)); diff != "" {
		t.Errorf("slow (-want +got)\n%s", diff)
	}
	slow.Request(flow.Unbounded)
	if !fast.Completed() || !slow.Completed() || !cmp.Equal(btInts(0, 20), slow.Items()) {
		t.Errorf("end: fast %q, slow %q with %v", fast.Subscriber.Outcome(), slow.Subscriber.Outcome(), slow.Items())
	}
}

func TestBroadcastUpstreamErrorReachesEverySubscriberAfterItsItems(t *testing.T) {
	b := operators.Broadcast[int](&btSource{n: 6, err: errBoom}, operators.SlowSubscriber(flow.DropNewest, 2),
		operators.MinSubscribers(3))
	fast, slow, idle := newFoRec[int](t, flow.Unbounded), newFoRec[int](t, 0), newFoRec[int](t, 0)
	b.Subscribe(fast)
	b.Subscribe(slow)
	b.Subscribe(idle)
	if !errors.Is(fast.Err(), errBoom) || !cmp.Equal(btInts(0, 6), fast.Items()) {
		t.Errorf("fast: %q with %v", fast.Subscriber.Outcome(), fast.Items())
	}
	if slow.Terminated() {
		t.Errorf("slow ended before its buffered items: %q", slow.Subscriber.Outcome())
	}
	slow.Request(1)
	if slow.Terminated() || !cmp.Equal([]int{0}, slow.Items()) {
		t.Errorf("slow after one: %q with %v", slow.Subscriber.Outcome(), slow.Items())
	}
	slow.Request(1)
	if !errors.Is(slow.Err(), errBoom) || !cmp.Equal([]int{0, 1}, slow.Items()) {
		t.Errorf("slow: %q with %v", slow.Subscriber.Outcome(), slow.Items())
	}
	idle.Request(5)
	if !errors.Is(idle.Err(), errBoom) {
		t.Errorf("idle: %q", idle.Subscriber.Outcome())
	}
}

func TestBroadcastCancellingOneSubscriberLeavesTheOthers(t *testing.T) {
	cancelled := func(items ...[]int) []btDrop[int] {
		var all []int
		for _, s := range items {
			all = append(all, s...)
		}
		return btDropsOf(flow.ReasonCancelled, all...)
	}
	tests := []struct {
		name       string
		autoCancel bool
		upCancels  int
		late       []int
		lateResult string
		drops      []btDrop[int]
		stats      operators.BufferStats
	}{
		{
			// The items left in the stage's queue (11..15) are dropped.
			name: "auto cancel", autoCancel: true, upCancels: 1,
			lateResult: "error: bc: " + operators.ErrHubClosed.Error(),
			drops:      cancelled(btInts(2, 6), btInts(7, 11), btInts(11, 16)),
			stats: operators.BufferStats{Produced: 16, Delivered: 9,
				Dropped: map[flow.DropReason]int64{flow.ReasonCancelled: 13}},
		},
		{
			// They are kept for the next subscriber; taking the 12th item
			// from the queue replenishes it by 12 (Prefetch 16).
			name: "keep upstream", autoCancel: false, upCancels: 0,
			late: []int{11}, lateResult: "open",
			drops: cancelled(btInts(2, 6), btInts(7, 11)),
			stats: operators.BufferStats{Produced: 28, Delivered: 10, Buffered: 16,
				Dropped: map[flow.DropReason]int64{flow.ReasonCancelled: 8}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &btSource{n: 1000}
			var drops btDrops[int]
			b := operators.Broadcast[int](src, operators.Prefetch(16), operators.AutoCancel(tt.autoCancel),
				operators.MinSubscribers(2), operators.OnDrop(drops.Hook), operators.SlowSubscriber(flow.Block, 4),
				operators.Name("bc"))
			a, c := newFoRec[int](t, 2), newFoRec[int](t, 4)
			b.Subscribe(a)
			b.Subscribe(c)
			// a can take 6 (2 delivered, 4 buffered), c 8: 6 items go out.
			a.Cancel() // drops a's 2..5
			c.Request(3)
			if diff := cmp.Diff(btInts(0, 7), btItems(c.Subscriber)); diff != "" {
				t.Errorf("c after a cancelled (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(cancelled(btInts(2, 6)), drops.All()); diff != "" {
				t.Errorf("drops after a cancelled (-want +got)\n%s", diff)
			}
			if got := a.Subscriber.Outcome(); got != "open" || len(a.Items()) != 2 {
				t.Errorf("a: %q with %v", got, a.Items())
			}
			if n := src.Cancels(); n != 0 {
				t.Errorf("upstream cancelled with a live subscriber")
			}
			c.Cancel() // drops c's 7..10
			if n := src.Cancels(); n != tt.upCancels {
				t.Errorf("upstream cancels after the last cancel: %d, want %d", n, tt.upCancels)
			}
			late := newFoRec[int](t, 1)
			b.Subscribe(late)
			if got := late.Subscriber.Outcome(); got != tt.lateResult {
				t.Errorf("late subscriber: %q, want %q", got, tt.lateResult)
			}
			if tt.autoCancel && !errors.Is(late.Err(), operators.ErrHubClosed) {
				t.Errorf("late: %v does not match ErrHubClosed", late.Err())
			}
			if diff := cmp.Diff(tt.late, btItems(late.Subscriber)); diff != "" {
				t.Errorf("late subscriber items (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.drops, drops.All()); diff != "" {
				t.Errorf("drops (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.stats, b.Stats()); diff != "" {
				t.Errorf("stage stats (-want +got)\n%s", diff)
			}
		})
	}
}

func TestBroadcastBadRequestEndsOnlyThatSubscriber(t *testing.T) {
	b := operators.Broadcast[int](&btSource{n: 4}, operators.MinSubscribers(2))
	a, c := newFoRec[int](t, 1), newFoRec[int](t, flow.Unbounded)
	b.Subscribe(a)
	b.Subscribe(c)
	a.Request(0)
	if err := a.Err(); !errors.Is(err, flow.ErrNonPositiveRequest) {
		t.Errorf("a: %v", err)
	}
	if !c.Completed() || !cmp.Equal(btInts(0, 4), c.Items()) {
		t.Errorf("c: %q with %v", c.Subscriber.Outcome(), c.Items())
	}
}

func TestBroadcastPanicInOnNextEndsOnlyThatSubscriber(t *testing.T) {
	b := operators.Broadcast[int](&btSource{n: 5}, operators.MinSubscribers(2))
	bad := &foPanicky{foRec: newFoRec[int](t, flow.Unbounded), at: 2}
	good := newFoRec[int](t, flow.Unbounded)
	b.Subscribe(bad)
	b.Subscribe(good)
	var pe *flow.PanicError
	if err := bad.Err(); !errors.As(err, &pe) || pe.Value != "bad item" || !cmp.Equal([]int{0, 1}, bad.Items()) {
		t.Errorf("bad: %v with %v", err, bad.Items())
	}
	if !good.Completed() || !cmp.Equal(btInts(0, 5), good.Items()) {
		t.Errorf("good: %q with %v", good.Subscriber.Outcome(), good.Items())
	}
}

// A panic while a subscriber's buffered items are delivered ends that
// subscriber; its other buffered items are dropped.
func TestBroadcastPanicWhileFlushingABuffer(t *testing.T) {
	var drops btDrops[int]
	b := operators.Broadcast[int](&btSource{n: 10}, operators.SlowSubscriber(flow.Block, 4),
		operators.MinSubscribers(2), operators.OnDrop(drops.Hook))
	bad := &foPanicky{foRec: newFoRec[int](t, 0), at: 1}
	good := newFoRec[int](t, flow.Unbounded)
	b.Subscribe(bad)
	b.Subscribe(good)
	if diff := cmp.Diff(btInts(0, 4), btItems(good.Subscriber)); diff != "" {
		t.Fatalf("good before bad requests (-want +got)\n%s", diff)
	}
	bad.Request(5)
	var pe *flow.PanicError
	if err := bad.Err(); !errors.As(err, &pe) || !cmp.Equal([]int{0}, bad.Items()) {
		t.Errorf("bad: %v with %v", err, bad.Items())
	}
	if diff := cmp.Diff(btDropsOf(flow.ReasonCancelled, 2, 3), drops.All()); diff != "" {
		t.Errorf("drops (-want +got)\n%s", diff)
	}
	if !good.Completed() || !cmp.Equal(btInts(0, 10), good.Items()) {
		t.Errorf("good: %q with %v", good.Subscriber.Outcome(), good.Items())
	}
}

func TestBroadcastDropHookPanicFailsTheStage(t *testing.T) {
	src := &btSource{n: 10}
	b := operators.Broadcast[int](src, operators.SlowSubscriber(flow.DropNewest, 1), operators.MinSubscribers(2),
		operators.OnDrop(func(int, flow.DropReason) { panic("hook") }))
	fast, slow := newFoRec[int](t, flow.Unbounded), newFoRec[int](t, 0)
	b.Subscribe(fast)
	b.Subscribe(slow)
	// The hook panics at the first drop (item 1, for slow): fast has
	// received item 1 already, and nothing after it.
	var pe *flow.PanicError
	if err := fast.Err(); !errors.As(err, &pe) || !cmp.Equal([]int{0, 1}, fast.Items()) {
		t.Errorf("fast: %v with %v, want a PanicError after [0 1]", err, fast.Items())
	}
	if src.Cancels() != 1 {
		t.Errorf("upstream not cancelled")
	}
	slow.Request(1)
	if err := slow.Err(); !errors.As(err, &pe) || !cmp.Equal([]int{0}, slow.Items()) {
		t.Errorf("slow: %v with %v", err, slow.Items())
	}
}

func TestBroadcastConstructionPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil source":           func() { operators.Broadcast[int](nil) },
		"negative capacity":    func() { operators.SlowSubscriber(flow.Block, -1) },
		"zero capacity drop":   func() { operators.SlowSubscriber(flow.DropNewest, 0) },
		"invalid policy":       func() { operators.SlowSubscriber(flow.Overflow(9), 1) },
		"zero cancel slow":     func() { operators.CancelSlow(0) },
		"zero min subscribers": func() { operators.MinSubscribers(0) },
		"nil subscriber":       func() { operators.Broadcast(&btSource{}).Subscribe(nil) },
	} {
		t.Run(name, func(t *testing.T) { wantPanicPrefix(t, "sluice: ", f) })
	}
}

// Random demand and random cancellation of individual subscribers, with
// an asynchronous source. For every subscriber, at the end: what it was
// offered = delivered + dropped + buffered (its Stats), the items it
// received are in order and, under Block, a contiguous run of the
// stream (all of it when it did not cancel).
func TestBroadcastStressRandomDemandAndCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	iterations := 80
	if testing.Short() {
		iterations = 20
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 2))
	policies := []operators.Option{
		nil, operators.SlowSubscriber(flow.Block, 8), operators.SlowSubscriber(flow.DropNewest, 4),
		operators.SlowSubscriber(flow.DropOldest, 4), operators.CancelSlow(16),
	}
	for it := range iterations {
		n := rng.IntN(2000)
		pi := rng.IntN(len(policies))
		subs := 1 + rng.IntN(4)
		name := fmt.Sprintf("seed=%d/it=%d/n=%d/policy=%d/subs=%d", seed, it, n, pi, subs)
		single := scheduler.NewSingle()
		src := &btAsyncSource{n: n}
		opts := []operators.Option{operators.Prefetch(1 + rng.IntN(64)), operators.MinSubscribers(subs)}
		if policies[pi] != nil {
			opts = append(opts, policies[pi])
		}
		b := operators.Broadcast[int](src, opts...)
		type member struct {
			rec      *foRec[int]
			cancelAt int // 0: never
			spins    int
			prefetch operators.Option
		}
		var ms []member
		for range subs {
			each := 1 + rng.Int64N(8)
			m := member{rec: newFoRec[int](t, 1+rng.Int64N(32), flowtest.RequestOnNext(each), btWait),
				spins: rng.IntN(3), prefetch: operators.Prefetch(1 + rng.IntN(16))}
			if rng.IntN(3) == 0 {
				m.cancelAt = 1 + rng.IntN(n+1)
			}
			ms = append(ms, m)
		}
		var wg sync.WaitGroup
		for _, m := range ms {
			var sub flow.Subscriber[int] = m.rec
			if m.cancelAt != 0 {
				sub = &foCanceller{foRec: m.rec, at: m.cancelAt}
			}
			wg.Go(func() {
				for range m.spins {
					runtime.Gosched()
				}
				// Subscribing through PublishOn puts each subscriber's
				// requests on a goroutine of their own.
				operators.PublishOn(b, single, m.prefetch).Subscribe(sub)
			})
		}
		wg.Wait()
		for _, m := range ms {
			if m.cancelAt == 0 {
				btAwait(t, m.rec.Subscriber)
			}
		}
		// The source ends once every subscriber has completed or
		// cancelled (the last cancel cancels it); only then is nothing
		// left for the scheduler to run.
		src.Wait()
		single.Close()
		// The PublishOn in front of each subscriber is what subscribed to
		// the Broadcaster, so per-subscriber Stats are not reachable here;
		// check the stage-wide accounting and the items.
		for i, m := range ms {
			got := btItems(m.rec.Subscriber)
			for j := 1; j < len(got); j++ {
				if got[j] <= got[j-1] {
					t.Fatalf("%s: subscriber %d: out of order at %d: %v", name, i, j, got[j-1:j+1])
				}
			}
			if m.cancelAt == 0 {
				if got := m.rec.Subscriber.Outcome(); got != "complete" && pi != 4 {
					t.Fatalf("%s: subscriber %d ended with %q", name, i, got)
				}
				if pi <= 1 {
					if diff := cmp.Diff(btInts(0, n), got); diff != "" {
						t.Fatalf("%s: subscriber %d items (-want +got)\n%s", name, i, diff)
					}
				}
			}
		}
		// Every subscriber has ended or cancelled, so nothing is left in
		// the subscribers' buffers, and the stage's queue is empty unless
		// every subscriber cancelled before the end (auto cancel drops it).
		if st := b.Stats(); st.Buffered != 0 {
			t.Fatalf("%s: stage still buffers %d items: %+v", name, st.Buffered, st)
		}
	}
}

// foCanceller cancels its subscription in its at-th OnNext.
type foCanceller struct {
	*foRec[int]
	at, seen int
}

func (c *foCanceller) OnNext(v int) {
	c.foRec.OnNext(v)
	if c.seen++; c.seen == c.at {
		c.Cancel()
	}
}

// Per-subscriber accounting under random demand: each subscriber is a
// direct subscriber of the Broadcaster, requesting from a goroutine of
// its own; offered = delivered + dropped + buffered for each, exactly.
func TestBroadcastStressPerSubscriberAccounting(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	iterations := 60
	if testing.Short() {
		iterations = 20
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 3))
	for it := range iterations {
		n := rng.IntN(3000)
		subs := 1 + rng.IntN(3)
		name := fmt.Sprintf("seed=%d/it=%d/n=%d/subs=%d", seed, it, n, subs)
		src := &btAsyncSource{n: n}
		var mu sync.Mutex
		hooked := map[flow.DropReason]int64{}
		b := operators.Broadcast[int](src, operators.SlowSubscriber(flow.DropOldest, 1+rng.IntN(8)),
			operators.MinSubscribers(subs), operators.Prefetch(1+rng.IntN(32)),
			operators.OnDrop(func(_ int, r flow.DropReason) { mu.Lock(); hooked[r]++; mu.Unlock() }))
		var recs []*foRec[int]
		for range subs {
			r := newFoRec[int](t, 0, btWait)
			b.Subscribe(r)
			recs = append(recs, r)
		}
		var wg sync.WaitGroup
		cancelled := make([]bool, subs)
		for i, r := range recs {
			cancel := rng.IntN(4) == 0
			cancelled[i] = cancel
			steps := 1 + rng.IntN(50)
			wg.Go(func() {
				for s := range steps {
					r.Request(1 + int64(s%7))
					runtime.Gosched()
				}
				if cancel {
					r.Cancel()
					return
				}
				r.Request(flow.Unbounded)
			})
		}
		wg.Wait()
		for i, r := range recs {
			if !cancelled[i] {
				btAwait(t, r.Subscriber)
			}
		}
		src.Wait()
		var dropped int64
		for i, r := range recs {
			st := r.stats()
			if got := st.Delivered + st.TotalDropped() + st.Buffered; got != st.Produced {
				t.Fatalf("%s: subscriber %d: offered %d != delivered+dropped+buffered %d: %+v", name, i, st.Produced, got, st)
			}
			if st.Delivered != int64(len(r.Items())) {
				t.Fatalf("%s: subscriber %d: Delivered %d, received %d", name, i, st.Delivered, len(r.Items()))
			}
			if !cancelled[i] && (st.Produced != int64(n) || st.Buffered != 0) {
				t.Fatalf("%s: subscriber %d was offered %d of %d items: %+v", name, i, st.Produced, n, st)
			}
			dropped += st.TotalDropped()
		}
		st := b.Stats()
		mu.Lock()
		var hook int64
		for _, c := range hooked {
			hook += c
		}
		mu.Unlock()
		if hook != st.TotalDropped() || st.TotalDropped() < dropped {
			t.Fatalf("%s: hook saw %d drops, stage counted %d, subscribers %d", name, hook, st.TotalDropped(), dropped)
		}
	}
}
