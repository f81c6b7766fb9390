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
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

// kyDrops records the items an OnDrop hook receives, by reason.
type kyDrops struct {
	mu sync.Mutex
	by map[flow.DropReason][]int
}

func (d *kyDrops) hook(v int, r flow.DropReason) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.by == nil {
		d.by = map[flow.DropReason][]int{}
	}
	d.by[r] = append(d.by[r], v)
}

func (d *kyDrops) option() operators.Option { return operators.OnDrop(d.hook) }

// get returns the drops by reason, each sorted, nil when there are none.
func (d *kyDrops) get() map[flow.DropReason][]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.by) == 0 {
		return nil
	}
	out := map[flow.DropReason][]int{}
	for r, vs := range d.by {
		out[r] = slices.Sorted(slices.Values(vs))
	}
	return out
}

func kyRange(from, to, step int) []int {
	var out []int
	for i := from; i < to; i += step {
		out = append(out, i)
	}
	return out
}

func mod3(i int) int { return i % 3 }

func TestPartitionRoutesEachItemToOneOutput(t *testing.T) {
	src := &btSource{n: 10}
	outs := operators.Partition[int](src, 3, mod3)
	subs := make([]*flowtest.Subscriber[int], 3)
	for i := range outs {
		subs[i] = flowtest.NewSubscriber[int](t, flow.Unbounded)
		outs[i].Subscribe(subs[i])
	}
	for i, s := range subs {
		btAwait(t, s)
		if diff := cmp.Diff(kyRange(i, 10, 3), btItems(s)); diff != "" {
			t.Errorf("output %d items (-want +got):\n%s", i, diff)
		}
		if !s.Completed() {
			t.Errorf("output %d: %v, want OnComplete", i, s.Err())
		}
	}
	if diff := cmp.Diff([]int64{256}, src.Requests()); diff != "" {
		t.Errorf("upstream requests (-want +got):\n%s", diff)
	}
}

func TestPartitionStartsWhenEveryOutputIsSubscribed(t *testing.T) {
	src := &btSource{n: 4}
	outs := operators.Partition[int](src, 2, func(i int) int { return i % 2 })
	a := flowtest.NewSubscriber[int](t, flow.Unbounded)
	outs[0].Subscribe(a)
	if !a.Subscribed() || len(a.Items()) != 0 || src.Requests() != nil {
		t.Fatalf("before output 1 subscribed: subscribed %v, items %v, upstream requests %v; want OnSubscribe only",
			a.Subscribed(), a.Items(), src.Requests())
	}
	b := flowtest.NewSubscriber[int](t, flow.Unbounded)
	outs[1].Subscribe(b)
	btAwait(t, a)
	btAwait(t, b)
	if diff := cmp.Diff([][]int{{0, 2}, {1, 3}}, [][]int{a.Items(), b.Items()}); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

func TestPartitionSecondSubscriberJoinsTheNextRun(t *testing.T) {
	var subscribes int
	src := flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		subscribes++
		(&btSource{n: 4}).Subscribe(s)
	})
	outs := operators.Partition[int](src, 2, func(i int) int { return i % 2 })
	var subs []*flowtest.Subscriber[int]
	for _, i := range []int{0, 0, 1, 1} {
		s := flowtest.NewSubscriber[int](t, flow.Unbounded)
		outs[i].Subscribe(s)
		subs = append(subs, s)
	}
	var got [][]int
	for _, s := range subs {
		btAwait(t, s)
		got = append(got, s.Items())
	}
	if diff := cmp.Diff([][]int{{0, 2}, {0, 2}, {1, 3}, {1, 3}}, got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if subscribes != 2 {
		t.Errorf("upstream subscribed %d times, want 2 (one per run)", subscribes)
	}
}

func TestPartitionSlowBlockOutputBackpressuresEveryOutput(t *testing.T) {
	src := &btSource{n: 30}
	outs := operators.Partition[int](src, 3, mod3, operators.Prefetch(4))
	fast0 := flowtest.NewSubscriber[int](t, flow.Unbounded)
	slow := flowtest.NewSubscriber[int](t, 0)
	fast2 := flowtest.NewSubscriber[int](t, flow.Unbounded)
	outs[0].Subscribe(fast0)
	outs[1].Subscribe(slow)
	outs[2].Subscribe(fast2)
	// Output 1 holds at most 4 items (1, 4, 7, 10): nothing after item 11
	// can have been requested, since it might have been for output 1.
	requested := int64(0)
	for _, r := range src.Requests() {
		requested += r
	}
	if requested > 12 {
		t.Errorf("requested %d items upstream with output 1 stuck at 4 queued, want <= 12", requested)
	}
	if fast0.Terminated() || fast2.Terminated() {
		t.Fatalf("fast outputs ended while output 1 was stuck")
	}
	slow.Request(flow.Unbounded)
	for i, s := range []*flowtest.Subscriber[int]{fast0, slow, fast2} {
		btAwait(t, s)
		if diff := cmp.Diff(kyRange(i, 30, 3), btItems(s)); diff != "" {
			t.Errorf("output %d items (-want +got):\n%s", i, diff)
		}
	}
	for _, r := range src.Requests() {
		if r > 4 {
			t.Errorf("upstream request %d exceeds the prefetch 4: %v", r, src.Requests())
		}
	}
}

func TestPartitionShedsASlowOutput(t *testing.T) {
	for _, tc := range []struct {
		policy flow.Overflow
		want   []int // output 1 once it requests
		drops  map[flow.DropReason][]int
		err    error
	}{
		{flow.DropNewest, []int{1, 4, 7, 10}, map[flow.DropReason][]int{flow.ReasonNewest: kyRange(13, 30, 3)}, nil},
		{flow.DropOldest, []int{19, 22, 25, 28}, map[flow.DropReason][]int{flow.ReasonOldest: kyRange(1, 19, 3)}, nil},
		{flow.Fail, []int{1, 4, 7, 10}, map[flow.DropReason][]int{
			flow.ReasonOverflow:  {13},
			flow.ReasonCancelled: kyRange(16, 30, 3), // routed to the failed output
		}, flow.ErrOverflow},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			var drops kyDrops
			src := &btSource{n: 30}
			outs := operators.Partition[int](src, 3, mod3, operators.Prefetch(4), drops.option(),
				operators.OutputOverflow(tc.policy, 1))
			subs := []*flowtest.Subscriber[int]{
				flowtest.NewSubscriber[int](t, flow.Unbounded),
				flowtest.NewSubscriber[int](t, 0),
				flowtest.NewSubscriber[int](t, flow.Unbounded),
			}
			for i := range outs {
				outs[i].Subscribe(subs[i])
			}
			// The fast outputs are not held back by output 1.
			for _, i := range []int{0, 2} {
				btAwait(t, subs[i])
				if diff := cmp.Diff(kyRange(i, 30, 3), btItems(subs[i])); diff != "" {
					t.Errorf("output %d items (-want +got):\n%s", i, diff)
				}
			}
			subs[1].Request(flow.Unbounded)
			btAwait(t, subs[1])
			if diff := cmp.Diff(tc.want, btItems(subs[1])); diff != "" {
				t.Errorf("output 1 items (-want +got):\n%s", diff)
			}
			if err := subs[1].Err(); !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Errorf("output 1 error %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.drops, drops.get()); diff != "" {
				t.Errorf("drops (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPartitionRouteFailureEndsEveryOutput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route func(int) int
		want  string
		panic bool
	}{
		{"out of range", func(i int) int {
			if i == 4 {
				return 7
			}
			return i % 2
		}, "sluice: parts: route returned output 7, want 0 <= output < 2", false},
		{"negative", func(i int) int {
			if i == 4 {
				return -1
			}
			return i % 2
		}, "sluice: parts: route returned output -1, want 0 <= output < 2", false},
		{"panic", func(i int) int {
			if i == 4 {
				panic("bad item")
			}
			return i % 2
		}, "parts: sluice: panic: bad item", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var drops kyDrops
			src := &btSource{n: 10}
			outs := operators.Partition[int](src, 2, tc.route, operators.Name("parts"), drops.option())
			a, b := flowtest.NewSubscriber[int](t, flow.Unbounded), flowtest.NewSubscriber[int](t, flow.Unbounded)
			outs[0].Subscribe(a)
			outs[1].Subscribe(b)
			for i, s := range []*flowtest.Subscriber[int]{a, b} {
				btAwait(t, s)
				if diff := cmp.Diff(kyRange(i, 4, 2), btItems(s)); diff != "" {
					t.Errorf("output %d items (-want +got):\n%s", i, diff)
				}
				if err := s.Err(); err == nil || err.Error() != tc.want {
					t.Errorf("output %d error %v, want %q", i, err, tc.want)
				}
				var pe *flow.PanicError
				if errors.As(s.Err(), &pe) != tc.panic {
					t.Errorf("output %d error %v: *flow.PanicError %v, want %v", i, s.Err(), !tc.panic, tc.panic)
				}
			}
			if src.Cancels() != 1 {
				t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
			}
			if diff := cmp.Diff(map[flow.DropReason][]int{flow.ReasonError: {4}}, drops.get()); diff != "" {
				t.Errorf("drops (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPartitionUpstreamErrorReachesEveryOutput(t *testing.T) {
	src := &btSource{n: 7, err: errBoom}
	outs := operators.Partition[int](src, 3, mod3)
	for i := range outs {
		s := flowtest.NewSubscriber[int](t, flow.Unbounded)
		outs[i].Subscribe(s)
		defer func() {
			btAwait(t, s)
			if diff := cmp.Diff(kyRange(i, 7, 3), btItems(s)); diff != "" {
				t.Errorf("output %d items (-want +got):\n%s", i, diff)
			}
			if !errors.Is(s.Err(), errBoom) {
				t.Errorf("output %d: error %v, want %v", i, s.Err(), errBoom)
			}
		}()
	}
}

func TestPartitionCancelledOutputDoesNotStopTheOthers(t *testing.T) {
	var drops kyDrops
	src := &btSource{n: 30}
	outs := operators.Partition[int](src, 3, mod3, operators.Prefetch(4), drops.option())
	a := flowtest.NewSubscriber[int](t, flow.Unbounded)
	b := flowtest.NewSubscriber[int](t, flow.Unbounded, flowtest.CancelAfter(2))
	c := flowtest.NewSubscriber[int](t, flow.Unbounded)
	outs[0].Subscribe(a)
	outs[1].Subscribe(b)
	outs[2].Subscribe(c)
	btAwait(t, a)
	btAwait(t, c)
	if diff := cmp.Diff([][]int{kyRange(0, 30, 3), {1, 4}, kyRange(2, 30, 3)}, [][]int{a.Items(), b.Items(), c.Items()}); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[flow.DropReason][]int{flow.ReasonCancelled: kyRange(7, 30, 3)}, drops.get()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if src.Cancels() != 0 {
		t.Errorf("upstream cancelled %d times, want 0", src.Cancels())
	}
}

// kySignals returns the signals s received, as strings.
func kySignals[T any](s *flowtest.Subscriber[T]) []string {
	var out []string
	for _, sig := range s.Signals() {
		out = append(out, sig.String())
	}
	return out
}

// Output 0 cancels (or requests 0) mid-stream, while output 1, which has
// requested nothing, holds an item and output 2 has unbounded demand. The
// source pushes what was requested of it, then completes. By default the
// other outputs go on; with EagerCancel upstream is cancelled and the
// other outputs complete at once, their queued and in-flight items
// dropped.
func TestPartitionOutputCancelsMidStream(t *testing.T) {
	nonPositive := fmt.Sprintf("OnError(%v)", flow.NonPositiveRequestError(0))
	for _, tc := range []struct {
		name     string
		eager    bool
		stop     func(*flowtest.Subscriber[int])
		out0     []string
		out1     []string // before output 1 requests
		out1Then []string // once output 1 has requested
		out2     []string
		drops    map[flow.DropReason][]int
		requests []int64
	}{
		{
			name: "default", stop: (*flowtest.Subscriber[int]).Cancel,
			out0:     []string{"OnSubscribe", "OnNext(0)"},
			out1:     []string{"OnSubscribe"},
			out1Then: []string{"OnSubscribe", "OnNext(1)", "OnNext(4)", "OnNext(7)", "OnComplete"},
			out2:     []string{"OnSubscribe", "OnNext(2)", "OnNext(5)", "OnNext(8)", "OnComplete"},
			drops:    map[flow.DropReason][]int{flow.ReasonCancelled: {3, 6}},
			requests: []int64{4, 3, 2, 1},
		},
		{
			name: "EagerCancel", eager: true, stop: (*flowtest.Subscriber[int]).Cancel,
			out0:     []string{"OnSubscribe", "OnNext(0)"},
			out1:     []string{"OnSubscribe", "OnComplete"},
			out1Then: []string{"OnSubscribe", "OnComplete"},
			out2:     []string{"OnSubscribe", "OnComplete"}, // item 2 arrived after the cancel
			drops:    map[flow.DropReason][]int{flow.ReasonCancelled: {1, 2, 3}},
			requests: []int64{4},
		},
		{
			name: "EagerCancel, Request(0)", eager: true, stop: func(s *flowtest.Subscriber[int]) { s.Request(0) },
			out0:     []string{"OnSubscribe", "OnNext(0)", nonPositive},
			out1:     []string{"OnSubscribe", "OnComplete"},
			out1Then: []string{"OnSubscribe", "OnComplete"},
			out2:     []string{"OnSubscribe", "OnComplete"},
			drops:    map[flow.DropReason][]int{flow.ReasonCancelled: {1, 2, 3}},
			requests: []int64{4},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var drops kyDrops
			src := &fiManual[int]{}
			opts := []operators.Option{operators.Prefetch(4), drops.option()}
			if tc.eager {
				opts = append(opts, operators.EagerCancel())
			}
			outs := operators.Partition[int](src, 3, mod3, opts...)
			subs := []*flowtest.Subscriber[int]{
				flowtest.NewSubscriber[int](t, flow.Unbounded),
				flowtest.NewSubscriber[int](t, 0),
				flowtest.NewSubscriber[int](t, flow.Unbounded),
			}
			for i := range outs {
				outs[i].Subscribe(subs[i])
			}
			// Push what was requested, in this order; output 0 stops
			// after its first item.
			pushed := 0
			for _, v := range []int{1, 0, 2, 3, 4, 5, 6, 7, 8} {
				var requested int64
				for _, r := range src.Requests() {
					requested += r
				}
				if int64(pushed) == requested {
					break
				}
				src.Push(v)
				pushed++
				if v == 0 {
					tc.stop(subs[0])
				}
			}
			src.End(nil)
			got := [][]string{kySignals(subs[0]), kySignals(subs[1]), kySignals(subs[2])}
			if diff := cmp.Diff([][]string{tc.out0, tc.out1, tc.out2}, got); diff != "" {
				t.Errorf("signals of outputs 0, 1, 2 (-want +got):\n%s", diff)
			}
			subs[1].Request(flow.Unbounded)
			if diff := cmp.Diff(tc.out1Then, kySignals(subs[1])); diff != "" {
				t.Errorf("signals of output 1 once it requested (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.drops, drops.get()); diff != "" {
				t.Errorf("drops (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.requests, src.Requests()); diff != "" {
				t.Errorf("upstream requests (-want +got):\n%s", diff)
			}
			if src.Cancelled() != tc.eager {
				t.Errorf("upstream cancelled %v, want %v", src.Cancelled(), tc.eager)
			}
			for i, s := range subs {
				if v := s.Violations(); v != nil {
					t.Errorf("output %d: %v", i, v)
				}
			}
		})
	}
}

// With EagerCancel and a synchronous source, which emits from inside
// Partition's Request, the cancel takes effect at once: the source sees
// it before its next item.
func TestPartitionEagerCancelStopsASynchronousSourceAtOnce(t *testing.T) {
	var drops kyDrops
	src := &btSource{n: 100}
	outs := operators.Partition[int](src, 2, func(i int) int { return i % 2 }, operators.EagerCancel(), drops.option())
	a := flowtest.NewSubscriber[int](t, flow.Unbounded, flowtest.CancelAfter(2))
	b := flowtest.NewSubscriber[int](t, 0)
	outs[0].Subscribe(a)
	outs[1].Subscribe(b)
	got := [][]string{kySignals(a), kySignals(b)}
	want := [][]string{{"OnSubscribe", "OnNext(0)", "OnNext(2)"}, {"OnSubscribe", "OnComplete"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("signals of outputs 0, 1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[flow.DropReason][]int{flow.ReasonCancelled: {1}}, drops.get()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{256}, src.Requests()); diff != "" || src.Cancels() != 1 {
		t.Errorf("upstream: cancels %d, want 1; requests (-want +got):\n%s", src.Cancels(), diff)
	}
}

// With EagerCancel, an output that cancels before the run starts makes
// the run cancel upstream as soon as it subscribes, before any request,
// and complete the other outputs.
func TestPartitionEagerCancelBeforeTheRunStarts(t *testing.T) {
	src := &btSource{n: 10}
	outs := operators.Partition[int](src, 3, mod3, operators.EagerCancel())
	subs := []*flowtest.Subscriber[int]{
		flowtest.NewSubscriber[int](t, flow.Unbounded),
		flowtest.NewSubscriber[int](t, flow.Unbounded),
		flowtest.NewSubscriber[int](t, flow.Unbounded),
	}
	outs[0].Subscribe(subs[0])
	subs[0].Cancel()
	outs[1].Subscribe(subs[1])
	outs[2].Subscribe(subs[2])
	got := [][]string{kySignals(subs[0]), kySignals(subs[1]), kySignals(subs[2])}
	want := [][]string{{"OnSubscribe"}, {"OnSubscribe", "OnComplete"}, {"OnSubscribe", "OnComplete"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("signals of outputs 0, 1, 2 (-want +got):\n%s", diff)
	}
	if src.Requests() != nil || src.Cancels() != 1 {
		t.Errorf("upstream requests %v, cancels %d; want none, 1", src.Requests(), src.Cancels())
	}
}

// With EagerCancel, a cancel after upstream has ended changes nothing for
// the other outputs, and neither does a Cancel after an output has ended.
func TestPartitionEagerCancelAfterUpstreamEnded(t *testing.T) {
	var drops kyDrops
	src := &btSource{n: 6}
	outs := operators.Partition[int](src, 3, mod3, operators.EagerCancel(), drops.option())
	subs := []*flowtest.Subscriber[int]{
		flowtest.NewSubscriber[int](t, flow.Unbounded),
		flowtest.NewSubscriber[int](t, 0),
		flowtest.NewSubscriber[int](t, 1),
	}
	for i := range outs {
		outs[i].Subscribe(subs[i])
	}
	subs[0].Cancel() // already complete: nothing happens
	subs[2].Cancel() // live, but upstream has ended: output 1 keeps its items
	subs[1].Request(flow.Unbounded)
	got := [][]string{kySignals(subs[0]), kySignals(subs[1]), kySignals(subs[2])}
	want := [][]string{
		{"OnSubscribe", "OnNext(0)", "OnNext(3)", "OnComplete"},
		{"OnSubscribe", "OnNext(1)", "OnNext(4)", "OnComplete"},
		{"OnSubscribe", "OnNext(2)"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("signals of outputs 0, 1, 2 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[flow.DropReason][]int{flow.ReasonCancelled: {5}}, drops.get()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if src.Cancels() != 0 {
		t.Errorf("upstream cancelled %d times after it completed, want 0", src.Cancels())
	}
}

func TestPartitionCancelsUpstreamWhenEveryOutputCancelled(t *testing.T) {
	src := &btSource{n: 100}
	outs := operators.Partition[int](src, 2, func(i int) int { return i % 2 }, operators.Prefetch(4))
	a := flowtest.NewSubscriber[int](t, 1)
	b := flowtest.NewSubscriber[int](t, 1)
	outs[0].Subscribe(a)
	outs[1].Subscribe(b)
	a.Cancel()
	if src.Cancels() != 0 {
		t.Fatalf("upstream cancelled with output 1 live")
	}
	b.Cancel()
	if src.Cancels() != 1 {
		t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
	}
}

func TestPartitionConstructionPanics(t *testing.T) {
	src := &btSource{n: 1}
	route := func(int) int { return 0 }
	for _, tc := range []struct {
		name string
		f    func()
		want string
	}{
		{"n <= 0", func() { operators.Partition[int](src, 0, route) }, "sluice: Partition: n <= 0"},
		{"nil source", func() { operators.Partition[int](nil, 1, route) }, "sluice: Partition: nil source"},
		{"nil route", func() { operators.Partition[int](src, 1, nil) }, "sluice: Partition"},
		{"output out of range", func() { operators.Partition[int](src, 2, route, operators.OutputOverflow(flow.DropNewest, 2)) },
			"sluice: Partition: OutputOverflow names output 2 of 2"},
		{"negative output", func() { operators.OutputOverflow(flow.DropNewest, -1) }, "sluice: OutputOverflow: negative output -1"},
		{"invalid policy", func() { operators.OutputOverflow(flow.Overflow(9)) }, "sluice: OutputOverflow: invalid policy Overflow(9)"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantPanicPrefix(t, tc.want, tc.f) })
	}
}

// kyConsume requests random amounts from s, each once the previous one
// was served, until the stream ends or s has cancelled after cancelAt
// items (0: never).
func kyConsume(s *flowtest.Subscriber[int], r *rand.Rand, cancelAt int) {
	for {
		got := len(s.Items())
		if s.Terminated() || (cancelAt > 0 && got >= cancelAt) {
			return
		}
		k := 1 + r.IntN(8)
		s.Request(int64(k))
		for len(s.Items()) < got+k && !s.Terminated() && !(cancelAt > 0 && len(s.Items()) >= cancelAt) {
			runtime.Gosched()
		}
	}
}

// Random demand on every output and random cancellation of some outputs,
// with or without EagerCancel, with a synchronous or an asynchronous
// source. Every item the source produced is delivered exactly once or
// dropped exactly once; an output that was not cancelled receives all its
// items, in order, or, under EagerCancel once another output cancelled, a
// prefix of them and OnComplete; the source is cancelled exactly when
// every output was, or under EagerCancel when one was.
func TestPartitionStressRandomDemandAndCancel(t *testing.T) {
	iterations := 50
	if testing.Short() {
		iterations = 30
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 2))
	for it := range iterations {
		n := rng.IntN(2000)
		outputs := 1 + rng.IntN(4)
		prefetch := 1 + rng.IntN(16)
		policies := make([]flow.Overflow, outputs)
		cancelAt := make([]int, outputs) // 0: never
		var opts []operators.Option
		for i := range policies {
			policies[i] = flow.Overflow(rng.IntN(3)) // Block, DropNewest, DropOldest
			opts = append(opts, operators.OutputOverflow(policies[i], i))
			if rng.IntN(3) == 0 {
				cancelAt[i] = 1 + rng.IntN(50)
			}
		}
		eager := rng.IntN(3) == 0
		if eager {
			opts = append(opts, operators.EagerCancel())
		}
		name := fmt.Sprintf("seed=%d/it=%d/n=%d/outputs=%d/prefetch=%d/policies=%v/cancelAt=%v/eager=%v",
			seed, it, n, outputs, prefetch, policies, cancelAt, eager)
		var src flow.Publisher[int]
		var async *btAsyncSource
		if rng.IntN(2) == 0 {
			src = &btSource{n: n}
		} else {
			async = &btAsyncSource{n: n}
			src = async
		}
		var drops kyDrops
		opts = append(opts, operators.Prefetch(prefetch), drops.option())
		outs := operators.Partition(src, outputs, func(i int) int { return i % outputs }, opts...)
		subs := make([]*flowtest.Subscriber[int], outputs)
		for i := range outs {
			var sopts []flowtest.Option
			if cancelAt[i] > 0 {
				sopts = append(sopts, flowtest.CancelAfter(int64(cancelAt[i])))
			}
			subs[i] = flowtest.NewSubscriber[int](t, 0, append(sopts, btWait)...)
		}
		var wg sync.WaitGroup
		for i, out := range outs {
			out.Subscribe(subs[i])
			seed := rng.Uint64()
			wg.Go(func() {
				r := rand.New(rand.NewPCG(seed, 3))
				kyConsume(subs[i], r, cancelAt[i])
			})
		}
		wg.Wait()
		if async != nil {
			async.Wait()
		}
		allCancelled, anyCancelled := true, false
		for i := range cancelAt {
			allCancelled = allCancelled && cancelAt[i] > 0
			anyCancelled = anyCancelled || cancelAt[i] > 0
		}
		cut := eager && anyCancelled // upstream may have been cancelled early
		seen := map[int]int{}
		for i, s := range subs {
			for _, v := range s.Items() {
				seen[v]++
				if v%outputs != i {
					t.Fatalf("%s: item %d on output %d", name, v, i)
				}
			}
			if cancelAt[i] == 0 && policies[i] == flow.Block {
				want := kyRange(i, n, outputs)
				if cut {
					want = slices.Clip(want[:min(len(want), len(s.Items()))])
					if len(want) == 0 {
						want = nil
					}
				}
				if diff := cmp.Diff(want, btItems(s)); diff != "" {
					t.Fatalf("%s: output %d (%s) items (-want +got):\n%s", name, i, s.Outcome(), diff)
				}
			}
			if cancelAt[i] == 0 && !s.Completed() {
				t.Fatalf("%s: output %d: %s, want complete", name, i, s.Outcome())
			}
			if v := s.Violations(); v != nil {
				t.Fatalf("%s: output %d: %v", name, i, v)
			}
		}
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
		if !allCancelled && !cut && len(seen) != n {
			t.Fatalf("%s: %d items accounted for, want %d", name, len(seen), n)
		}
	}
}

const kyBenchItems = 100_000

// BenchmarkPartition routes 100k ints to 4 outputs, each drained by a sink
// that requests Unbounded, all on one goroutine; the baseline "channels"
// does the same with one routing goroutine and 4 consumer goroutines
// joined by channels buffered 256.
func BenchmarkPartition(b *testing.B) {
	const outputs = 4
	b.Run("partition", func(b *testing.B) {
		for b.Loop() {
			outs := operators.Partition[int](btFastSource{n: kyBenchItems}, outputs, func(i int) int { return i % outputs })
			sinks := make([]*btSink[int], outputs)
			for i := range outs {
				sinks[i] = &btSink[int]{}
				outs[i].Subscribe(sinks[i])
			}
			for _, s := range sinks {
				if !s.done || s.n != kyBenchItems/outputs {
					b.Fatalf("sink got %d, done %v", s.n, s.done)
				}
			}
		}
		reportPerItem(b, kyBenchItems)
	})
	b.Run("channels", func(b *testing.B) {
		for b.Loop() {
			var wg sync.WaitGroup
			chans := make([]chan int, outputs)
			counts := make([]int, outputs)
			for i := range chans {
				chans[i] = make(chan int, 256)
				wg.Go(func() {
					for range chans[i] {
						counts[i]++
					}
				})
			}
			for v := range kyBenchItems {
				chans[v%outputs] <- v
			}
			for _, c := range chans {
				close(c)
			}
			wg.Wait()
		}
		reportPerItem(b, kyBenchItems)
	})
}
