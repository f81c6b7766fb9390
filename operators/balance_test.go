package operators_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

// foSubscribeAll subscribes one recorder per output, each requesting
// initial at once.
func foSubscribeAll(t *testing.T, outs []flow.Publisher[int], initial int64, opts ...flowtest.Option) []*foRec[int] {
	var recs []*foRec[int]
	for _, o := range outs {
		r := newFoRec[int](t, initial, opts...)
		o.Subscribe(r)
		recs = append(recs, r)
	}
	return recs
}

func foStats(p flow.Publisher[int]) operators.BufferStats {
	return p.(operators.StatsReporter).Stats()
}

func TestBalanceRoundRobinAmongOutputsWithDemand(t *testing.T) {
	src := &btSource{n: 10}
	outs := operators.Balance[int](src, 3)
	recs := foSubscribeAll(t, outs, flow.Unbounded)
	want := [][]int{{0, 3, 6, 9}, {1, 4, 7}, {2, 5, 8}}
	for i, r := range recs {
		if diff := cmp.Diff(want[i], btItems(r.Subscriber)); diff != "" {
			t.Errorf("output %d (-want +got)\n%s", i, diff)
		}
		if !r.Completed() {
			t.Errorf("output %d: %q", i, r.Subscriber.Outcome())
		}
	}
	if diff := cmp.Diff(operators.BufferStats{Produced: 10, Delivered: 10}, foStats(outs[0])); diff != "" {
		t.Errorf("stats (-want +got)\n%s", diff)
	}
}

func TestBalanceOnlyOutputsWithDemandReceive(t *testing.T) {
	src := &btSource{n: 100}
	outs := operators.Balance[int](src, 2, operators.Prefetch(4))
	a, b := newFoRec[int](t, 3), newFoRec[int](t, 0)
	outs[0].Subscribe(a)
	if got := src.Requests(); got != nil {
		t.Fatalf("requested %v before every output subscribed", got)
	}
	outs[1].Subscribe(b)
	check := func(step string, wantA, wantB []int, wantRequests []int64) {
		t.Helper()
		if diff := cmp.Diff(wantA, btItems(a.Subscriber)); diff != "" {
			t.Errorf("%s: a (-want +got)\n%s", step, diff)
		}
		if diff := cmp.Diff(wantB, btItems(b.Subscriber)); diff != "" {
			t.Errorf("%s: b (-want +got)\n%s", step, diff)
		}
		if diff := cmp.Diff(wantRequests, src.Requests()); diff != "" {
			t.Errorf("%s: upstream requests (-want +got)\n%s", step, diff)
		}
	}
	// Prefetch 4: 4 at once, 3 more after every 3 handed out.
	check("a requested 3", []int{0, 1, 2}, nil, []int64{4, 3})
	b.Request(2)
	check("b requested 2", []int{0, 1, 2}, []int{3, 4}, []int64{4, 3})
	a.Request(2)
	b.Request(2)
	check("both requested 2 more", []int{0, 1, 2, 5, 6}, []int{3, 4, 7, 8}, []int64{4, 3, 3, 3})
	if st := foStats(outs[0]); st.Produced != 13 || st.Delivered != 9 || st.Buffered != 4 {
		t.Errorf("stats %+v", st)
	}
}

// An output that cancels leaves nothing behind: the other outputs get the
// rest of the stream, nothing is dropped.
func TestBalanceCancelledOutputIsReRouted(t *testing.T) {
	src := &btSource{n: 20}
	var drops btDrops[int]
	outs := operators.Balance[int](src, 2, operators.OnDrop(drops.Hook))
	a := newFoRec[int](t, flow.Unbounded, flowtest.CancelAfter(3))
	b := newFoRec[int](t, flow.Unbounded)
	outs[0].Subscribe(a)
	outs[1].Subscribe(b)
	if diff := cmp.Diff([]int{0, 2, 4}, btItems(a.Subscriber)); diff != "" {
		t.Errorf("a (-want +got)\n%s", diff)
	}
	wantB := append([]int{1, 3}, btInts(5, 20)...)
	if diff := cmp.Diff(wantB, btItems(b.Subscriber)); diff != "" || !b.Completed() {
		t.Errorf("b (-want +got)\n%s; %q", diff, b.Subscriber.Outcome())
	}
	if got := drops.All(); got != nil {
		t.Errorf("drops %v", got)
	}
	if src.Cancels() != 0 {
		t.Errorf("upstream cancelled with a live output")
	}
}

func TestBalanceLastCancelCancelsUpstream(t *testing.T) {
	src := &btSource{n: 100}
	var drops btDrops[int]
	outs := operators.Balance[int](src, 2, operators.Prefetch(8), operators.OnDrop(drops.Hook), operators.Name("bal"))
	recs := foSubscribeAll(t, outs, 2)
	recs[0].Cancel()
	if src.Cancels() != 0 {
		t.Fatalf("upstream cancelled with a live output")
	}
	recs[1].Cancel()
	if src.Cancels() != 1 {
		t.Fatalf("upstream cancels: %d, want 1", src.Cancels())
	}
	// 8 prefetched, 4 delivered: 4 dropped from the queue.
	if diff := cmp.Diff(btDropsOf(flow.ReasonCancelled, 4, 5, 6, 7), drops.All()); diff != "" {
		t.Errorf("drops (-want +got)\n%s", diff)
	}
	want := operators.BufferStats{Produced: 8, Delivered: 4, Dropped: map[flow.DropReason]int64{flow.ReasonCancelled: 4}}
	if diff := cmp.Diff(want, foStats(outs[1])); diff != "" {
		t.Errorf("stats (-want +got)\n%s", diff)
	}
}

func TestBalanceUpstreamErrorReachesEveryOutput(t *testing.T) {
	outs := operators.Balance[int](&btSource{n: 4, err: errBoom}, 3)
	a, b, c := newFoRec[int](t, 3), newFoRec[int](t, 0), newFoRec[int](t, 0)
	outs[0].Subscribe(a)
	outs[1].Subscribe(b)
	outs[2].Subscribe(c)
	if a.Terminated() || b.Terminated() || c.Terminated() {
		t.Fatalf("ended with an item queued")
	}
	c.Request(5)
	for i, r := range []*foRec[int]{a, b, c} {
		if !errors.Is(r.Err(), errBoom) {
			t.Errorf("output %d: %q", i, r.Subscriber.Outcome())
		}
	}
	if !cmp.Equal([]int{0, 1, 2}, a.Items()) || !cmp.Equal([]int{3}, c.Items()) {
		t.Errorf("items: a %v, c %v", a.Items(), c.Items())
	}
}

func TestBalanceOutputAcceptsOneSubscriber(t *testing.T) {
	outs := operators.Balance[int](&btSource{n: 3}, 1, operators.Name("bal"))
	first, second := newFoRec[int](t, flow.Unbounded), newFoRec[int](t, 1)
	outs[0].Subscribe(first)
	outs[0].Subscribe(second)
	if got := second.Subscriber.Outcome(); got != "error: sluice: bal: output 0 already has a subscriber" {
		t.Errorf("second subscriber: %q", got)
	}
	if !first.Completed() || !cmp.Equal(btInts(0, 3), first.Items()) {
		t.Errorf("first: %q with %v", first.Subscriber.Outcome(), first.Items())
	}
}

func TestBalanceLateOutputAfterTheEnd(t *testing.T) {
	outs := operators.Balance[int](&btSource{n: 3}, 2, operators.MinSubscribers(1))
	a := newFoRec[int](t, flow.Unbounded)
	outs[0].Subscribe(a)
	b := newFoRec[int](t, 1)
	outs[1].Subscribe(b)
	if !a.Completed() || !cmp.Equal(btInts(0, 3), a.Items()) || !b.Completed() || len(b.Items()) != 0 {
		t.Errorf("a %q %v, b %q %v", a.Subscriber.Outcome(), a.Items(), b.Subscriber.Outcome(), b.Items())
	}
}

func TestBalanceBadRequestAndPanicEndOnlyThatOutput(t *testing.T) {
	outs := operators.Balance[int](&btSource{n: 10}, 3)
	bad := newFoRec[int](t, 0)
	panicky := &foPanicky{foRec: newFoRec[int](t, flow.Unbounded), at: 2}
	good := newFoRec[int](t, flow.Unbounded)
	outs[0].Subscribe(bad)
	bad.Request(-1)
	if !errors.Is(bad.Err(), flow.ErrNonPositiveRequest) {
		t.Errorf("bad: %q", bad.Subscriber.Outcome())
	}
	outs[1].Subscribe(panicky)
	outs[2].Subscribe(good)
	// Round robin: panicky 0, good 1, panicky 2 (panics), then good.
	var pe *flow.PanicError
	if err := panicky.Err(); !errors.As(err, &pe) || pe.Value != "bad item" || !cmp.Equal([]int{0}, panicky.Items()) {
		t.Errorf("panicky: %v with %v", err, panicky.Items())
	}
	if diff := cmp.Diff([]int{1, 3, 4, 5, 6, 7, 8, 9}, btItems(good.Subscriber)); diff != "" || !good.Completed() {
		t.Errorf("good (-want +got)\n%s; %q", diff, good.Subscriber.Outcome())
	}
}

func TestBalanceConstructionPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil source":     func() { operators.Balance[int](nil, 2) },
		"zero outputs":   func() { operators.Balance(flow.Publisher[int](&btSource{}), 0) },
		"nil subscriber": func() { operators.Balance(flow.Publisher[int](&btSource{}), 1)[0].Subscribe(nil) },
	} {
		t.Run(name, func(t *testing.T) { wantPanicPrefix(t, "sluice: ", f) })
	}
}

// Random demand from each output's own goroutine and random cancellation
// of individual outputs, with an asynchronous source. At the end:
// produced = delivered + dropped + buffered (the stage's Stats, the
// recorders and the hook agree), no item is delivered twice, every
// delivered or dropped item is one of the source's, and when an output
// survives, every item is delivered exactly once and nothing is dropped.
func TestBalanceStressConservationUnderRandomCancel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	iterations := 120
	if testing.Short() {
		iterations = 40
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 4))
	for it := range iterations {
		n := rng.IntN(3000)
		outputs := 1 + rng.IntN(4)
		allCancel := rng.IntN(3) == 0
		name := fmt.Sprintf("seed=%d/it=%d/n=%d/outputs=%d/allCancel=%v", seed, it, n, outputs, allCancel)
		var src flow.Publisher[int]
		var async *btAsyncSource
		if rng.IntN(2) == 0 {
			async = &btAsyncSource{n: n}
			src = async
		} else {
			src = &btSource{n: n}
		}
		var mu sync.Mutex
		var dropped []int
		outs := operators.Balance(src, outputs, operators.Prefetch(1+rng.IntN(64)),
			operators.OnDrop(func(v int, _ flow.DropReason) { mu.Lock(); dropped = append(dropped, v); mu.Unlock() }))
		recs := foSubscribeAll(t, outs, 0, btWait)
		survivor := rng.IntN(outputs)
		type plan struct {
			steps  int
			cancel bool
		}
		plans := make([]plan, outputs)
		for i := range plans {
			plans[i] = plan{steps: 1 + rng.IntN(40), cancel: allCancel || (i != survivor && rng.IntN(2) == 0)}
		}
		var wg sync.WaitGroup
		for i, r := range recs {
			p := plans[i]
			wg.Go(func() {
				for s := range p.steps {
					r.Request(1 + int64(s%5))
					runtime.Gosched()
				}
				if p.cancel {
					r.Cancel()
					return
				}
				r.Request(flow.Unbounded)
			})
		}
		wg.Wait()
		for i, r := range recs {
			if !plans[i].cancel {
				btAwait(t, r.Subscriber)
			}
		}
		if async != nil {
			async.Wait()
		}
		var delivered []int
		for _, r := range recs {
			delivered = append(delivered, r.Items()...)
		}
		st := foStats(outs[0])
		mu.Lock()
		all := append(slices.Clone(delivered), dropped...)
		nDropped := int64(len(dropped))
		mu.Unlock()
		if st.Delivered != int64(len(delivered)) || st.TotalDropped() != nDropped {
			t.Fatalf("%s: stats %+v, recorders got %d, hook %d", name, st, len(delivered), nDropped)
		}
		if st.Produced != st.Delivered+st.TotalDropped()+st.Buffered {
			t.Fatalf("%s: produced %d != delivered %d + dropped %d + buffered %d",
				name, st.Produced, st.Delivered, st.TotalDropped(), st.Buffered)
		}
		slices.Sort(all)
		if len(all) > n || int64(len(all)) != st.Produced-st.Buffered {
			t.Fatalf("%s: %d items delivered or dropped, produced %d, buffered %d", name, len(all), st.Produced, st.Buffered)
		}
		for i := 1; i < len(all); i++ {
			if all[i] == all[i-1] {
				t.Fatalf("%s: item %d handed out twice", name, all[i])
			}
		}
		if !allCancel {
			if diff := cmp.Diff(btInts(0, n), all); diff != "" || nDropped != 0 || st.Buffered != 0 {
				t.Fatalf("%s: with a survivor, dropped %d, buffered %d, items (-want +got)\n%s", name, nDropped, st.Buffered, diff)
			}
		} else if st.Buffered != 0 {
			t.Fatalf("%s: every output cancelled, yet %d items are buffered", name, st.Buffered)
		}
		for _, r := range recs {
			got := r.Items()
			if !slices.IsSorted(got) {
				t.Fatalf("%s: an output received items out of order: %v", name, got)
			}
		}
	}
}
