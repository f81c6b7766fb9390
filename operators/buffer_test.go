package operators_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

type bufferCase struct {
	name     string
	n        int   // source items
	err      error // source's terminal error
	capacity int
	initial  int64 // subscriber's request in OnSubscribe
	each     int64 // subscriber's request after each item
	cancelAt int   // subscriber cancels in OnNext of this item (1-based)
	later    int64 // request after Subscribe returned (a burst), 0 for none
	cancel   bool  // cancel after Subscribe returned (and after later)

	want map[flow.Overflow]bufferWant
}

type bufferWant struct {
	Items    []int
	Result   string
	Drops    []btDrop[int]
	Stats    operators.BufferStats
	Requests []int64
	Cancels  int
}

const unb = flow.Unbounded

func (c bufferCase) run(t *testing.T, policy flow.Overflow) bufferWant {
	t.Helper()
	src := &btSource{n: c.n, err: c.err}
	var drops btDrops[int]
	pub := operators.Buffer[int](src, c.capacity, policy, operators.Name("buf"), operators.OnDrop(drops.Hook))
	rec := flowtest.NewSubscriber[int](t, c.initial, btOpts(c.each, c.cancelAt)...)
	pub.Subscribe(rec)
	if c.later > 0 {
		rec.Request(c.later)
	}
	if c.cancel {
		rec.Cancel()
	}
	return bufferWant{
		Items:    btItems(rec),
		Result:   rec.Outcome(),
		Drops:    drops.All(),
		Stats:    pub.(operators.StatsReporter).Stats(),
		Requests: src.Requests(),
		Cancels:  src.Cancels(),
	}
}

func TestBufferPolicies(t *testing.T) {
	overflow := func(capacity string) string {
		return "error: sluice: buffer overflow: buf (capacity " + capacity + ")"
	}
	stats := func(produced, delivered, buffered int64, dropped map[flow.DropReason]int64) operators.BufferStats {
		return operators.BufferStats{Produced: produced, Delivered: delivered, Buffered: buffered, Dropped: dropped}
	}
	type dm = map[flow.DropReason]int64
	cases := []bufferCase{
		{
			name: "capacity 1, demand 0 then a burst",
			n:    10, capacity: 1, later: 10,
			want: map[flow.Overflow]bufferWant{
				flow.Block: {
					Items: btInts(0, 10), Result: "complete",
					Stats:    stats(10, 10, 0, nil),
					Requests: []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
				},
				flow.DropNewest: {
					Items: []int{0}, Result: "complete",
					Drops:    btDropsOf(flow.ReasonNewest, btInts(1, 10)...),
					Stats:    stats(10, 1, 0, dm{flow.ReasonNewest: 9}),
					Requests: []int64{unb},
				},
				flow.DropOldest: {
					Items: []int{9}, Result: "complete",
					Drops:    btDropsOf(flow.ReasonOldest, btInts(0, 9)...),
					Stats:    stats(10, 1, 0, dm{flow.ReasonOldest: 9}),
					Requests: []int64{unb},
				},
				flow.Fail: {
					Items: []int{0}, Result: overflow("1"),
					Drops:    btDropsOf(flow.ReasonOverflow, 1),
					Stats:    stats(2, 1, 0, dm{flow.ReasonOverflow: 1}),
					Requests: []int64{unb}, Cancels: 1,
				},
			},
		},
		{
			name: "consumer requests one at a time",
			n:    10, capacity: 3, initial: 1, each: 1,
			want: map[flow.Overflow]bufferWant{
				flow.Block: {
					Items: btInts(0, 10), Result: "complete",
					Stats:    stats(10, 10, 0, nil),
					Requests: []int64{3, 3, 3, 3},
				},
				flow.DropNewest: {
					Items: btInts(0, 10), Result: "complete",
					Stats:    stats(10, 10, 0, nil),
					Requests: []int64{unb},
				},
				flow.DropOldest: {
					Items: btInts(0, 10), Result: "complete",
					Stats:    stats(10, 10, 0, nil),
					Requests: []int64{unb},
				},
				flow.Fail: {
					Items: btInts(0, 10), Result: "complete",
					Stats:    stats(10, 10, 0, nil),
					Requests: []int64{unb},
				},
			},
		},
		{
			name: "cancel drops the buffered items",
			n:    10, capacity: 4, initial: 2, cancel: true,
			want: map[flow.Overflow]bufferWant{
				flow.Block: {
					Items: []int{0, 1}, Result: "open",
					Drops:    btDropsOf(flow.ReasonCancelled, 2, 3),
					Stats:    stats(4, 2, 0, dm{flow.ReasonCancelled: 2}),
					Requests: []int64{4}, Cancels: 1,
				},
				flow.DropNewest: {
					Items: []int{0, 1}, Result: "open",
					Drops: append(btDropsOf(flow.ReasonNewest, 6, 7, 8, 9),
						btDropsOf(flow.ReasonCancelled, 2, 3, 4, 5)...),
					Stats:    stats(10, 2, 0, dm{flow.ReasonNewest: 4, flow.ReasonCancelled: 4}),
					Requests: []int64{unb}, Cancels: 1,
				},
				flow.DropOldest: {
					Items: []int{0, 1}, Result: "open",
					Drops: append(btDropsOf(flow.ReasonOldest, 2, 3, 4, 5),
						btDropsOf(flow.ReasonCancelled, 6, 7, 8, 9)...),
					Stats:    stats(10, 2, 0, dm{flow.ReasonOldest: 4, flow.ReasonCancelled: 4}),
					Requests: []int64{unb}, Cancels: 1,
				},
				flow.Fail: {
					Items: []int{0, 1}, Result: "open",
					Drops: append(btDropsOf(flow.ReasonOverflow, 6),
						btDropsOf(flow.ReasonCancelled, 2, 3, 4, 5)...),
					Stats:    stats(7, 2, 0, dm{flow.ReasonOverflow: 1, flow.ReasonCancelled: 4}),
					Requests: []int64{unb}, Cancels: 1,
				},
			},
		},
		{
			name: "cancel during emission",
			n:    10, capacity: 4, initial: unb, cancelAt: 3,
			want: map[flow.Overflow]bufferWant{
				flow.Block: {
					Items: []int{0, 1, 2}, Result: "open",
					Drops:    btDropsOf(flow.ReasonCancelled, 3),
					Stats:    stats(4, 3, 0, dm{flow.ReasonCancelled: 1}),
					Requests: []int64{4}, Cancels: 1,
				},
				flow.DropNewest: {
					Items: []int{0, 1, 2}, Result: "open",
					Stats:    stats(3, 3, 0, nil),
					Requests: []int64{unb}, Cancels: 1,
				},
				flow.DropOldest: {
					Items: []int{0, 1, 2}, Result: "open",
					Stats:    stats(3, 3, 0, nil),
					Requests: []int64{unb}, Cancels: 1,
				},
				flow.Fail: {
					Items: []int{0, 1, 2}, Result: "open",
					Stats:    stats(3, 3, 0, nil),
					Requests: []int64{unb}, Cancels: 1,
				},
			},
		},
		{
			name: "upstream error with a full buffer is delivered after the items",
			n:    5, err: errBoom, capacity: 5, later: 10,
			want: map[flow.Overflow]bufferWant{
				flow.Block: {
					Items: btInts(0, 5), Result: "error: boom",
					Stats:    stats(5, 5, 0, nil),
					Requests: []int64{5},
				},
				flow.DropNewest: {
					Items: btInts(0, 5), Result: "error: boom",
					Stats:    stats(5, 5, 0, nil),
					Requests: []int64{unb},
				},
				flow.DropOldest: {
					Items: btInts(0, 5), Result: "error: boom",
					Stats:    stats(5, 5, 0, nil),
					Requests: []int64{unb},
				},
				flow.Fail: {
					Items: btInts(0, 5), Result: "error: boom",
					Stats:    stats(5, 5, 0, nil),
					Requests: []int64{unb},
				},
			},
		},
		{
			name: "upstream error after an overflow",
			n:    7, err: errBoom, capacity: 5, later: 10,
			want: map[flow.Overflow]bufferWant{
				flow.Block: {
					Items: btInts(0, 7), Result: "error: boom",
					Stats:    stats(7, 7, 0, nil),
					Requests: []int64{5, 4},
				},
				flow.DropNewest: {
					Items: btInts(0, 5), Result: "error: boom",
					Drops:    btDropsOf(flow.ReasonNewest, 5, 6),
					Stats:    stats(7, 5, 0, dm{flow.ReasonNewest: 2}),
					Requests: []int64{unb},
				},
				flow.DropOldest: {
					Items: btInts(2, 7), Result: "error: boom",
					Drops:    btDropsOf(flow.ReasonOldest, 0, 1),
					Stats:    stats(7, 5, 0, dm{flow.ReasonOldest: 2}),
					Requests: []int64{unb},
				},
				flow.Fail: {
					Items: btInts(0, 5), Result: overflow("5"),
					Drops:    btDropsOf(flow.ReasonOverflow, 5),
					Stats:    stats(6, 5, 0, dm{flow.ReasonOverflow: 1}),
					Requests: []int64{unb}, Cancels: 1,
				},
			},
		},
		{
			name: "empty source completes without demand",
			n:    0, capacity: 2,
			want: map[flow.Overflow]bufferWant{
				flow.Block:      {Result: "complete", Requests: []int64{2}},
				flow.DropNewest: {Result: "complete", Requests: []int64{unb}},
				flow.DropOldest: {Result: "complete", Requests: []int64{unb}},
				flow.Fail:       {Result: "complete", Requests: []int64{unb}},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, policy := range []flow.Overflow{flow.Block, flow.DropNewest, flow.DropOldest, flow.Fail} {
				t.Run(policy.String(), func(t *testing.T) {
					got := c.run(t, policy)
					if diff := cmp.Diff(c.want[policy], got); diff != "" {
						t.Errorf("(-want +got)\n%s", diff)
					}
				})
			}
		})
	}
}

func TestBufferHoldsItemsWithoutDemand(t *testing.T) {
	src := &btSource{n: 10}
	pub := operators.Buffer[int](src, 4, flow.DropNewest)
	rec := flowtest.NewSubscriber[int](t, 0)
	pub.Subscribe(rec)
	want := operators.BufferStats{Produced: 10, Buffered: 4, Dropped: map[flow.DropReason]int64{flow.ReasonNewest: 6}}
	if diff := cmp.Diff(want, pub.(operators.StatsReporter).Stats()); diff != "" {
		t.Errorf("stats before demand (-want +got)\n%s", diff)
	}
	if got := rec.Outcome(); got != "open" {
		t.Errorf("Result() = %q before demand, want open", got)
	}
}

func TestBufferNonPositiveRequestEndsTheStream(t *testing.T) {
	src := &btSource{n: 10}
	var drops btDrops[int]
	pub := operators.Buffer[int](src, 3, flow.Block, operators.OnDrop(drops.Hook))
	rec := flowtest.NewSubscriber[int](t, 0)
	pub.Subscribe(rec)
	rec.Request(0)
	rec.Request(5) // ignored: the subscription is over
	if err := rec.Err(); !errors.Is(err, flow.ErrNonPositiveRequest) {
		t.Fatalf("Err() = %v, want ErrNonPositiveRequest", err)
	}
	got := []any{btItems(rec), drops.All(), src.Cancels()}
	want := []any{[]int(nil), btDropsOf(flow.ReasonCancelled, 0, 1, 2), 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestBufferHookPanicFailsTheStream(t *testing.T) {
	src := &btSource{n: 10}
	hook := func(v int, r flow.DropReason) {
		if v == 3 {
			panic("hook broke")
		}
	}
	pub := operators.Buffer[int](src, 2, flow.DropNewest, operators.Name("buf"), operators.OnDrop(hook))
	rec := flowtest.NewSubscriber[int](t, 0)
	pub.Subscribe(rec)
	rec.Request(10)
	if got := src.Cancels(); got != 1 {
		t.Errorf("upstream cancelled %d times, want 1", got)
	}
	var pe *flow.PanicError
	if err := rec.Err(); !errors.As(err, &pe) || pe.Value != "hook broke" {
		t.Fatalf("Err() = %v, want a *flow.PanicError of the hook's panic", err)
	}
	// 0 and 1 were buffered, 2 and 3 dropped (the hook panicked on 3),
	// then the stage cancelled upstream and dropped what it buffered.
	want := operators.BufferStats{Produced: 4, Dropped: map[flow.DropReason]int64{
		flow.ReasonNewest: 2, flow.ReasonCancelled: 2,
	}}
	if diff := cmp.Diff(want, pub.(operators.StatsReporter).Stats()); diff != "" {
		t.Errorf("stats (-want +got)\n%s", diff)
	}
}

func TestBufferRejectsASecondOnSubscribe(t *testing.T) {
	var first, second btSubscriptionSpy
	pub := operators.Buffer[int](flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		s.OnSubscribe(&first)
		s.OnSubscribe(&second)
	}), 2, flow.Block)
	pub.Subscribe(flowtest.NewSubscriber[int](t, 0))
	if !second.cancelled || first.cancelled {
		t.Errorf("second subscription cancelled = %v, first = %v; want true, false (rule 2.5)", second.cancelled, first.cancelled)
	}
}

type btSubscriptionSpy struct{ cancelled bool }

func (s *btSubscriptionSpy) Request(int64) {}
func (s *btSubscriptionSpy) Cancel()       { s.cancelled = true }

func TestBufferConstructorPanics(t *testing.T) {
	src := &btSource{}
	for name, f := range map[string]func(){
		"sluice: Buffer: capacity <= 0":    func() { operators.Buffer[int](src, 0, flow.Block) },
		"sluice: Buffer: nil source":       func() { operators.Buffer[int](nil, 1, flow.Block) },
		"sluice: Buffer: invalid policy":   func() { operators.Buffer[int](src, 1, flow.Overflow(9)) },
		"sluice: LimitRate: high <= 0":     func() { operators.LimitRate[int](src, 0, 0) },
		"sluice: LimitRate: low < 0":       func() { operators.LimitRate[int](src, 1, -1) },
		"sluice: buffer#":                  func() { operators.Buffer[int](src, 1, flow.Block, operators.OnDrop(func(string, flow.DropReason) {})) },
		"sluice: Batch: size <= 0":         func() { operators.Batch[int](src, 0, 0) },
		"sluice: Batch: maxWait < 0":       func() { operators.Batch[int](src, 1, -1) },
		"sluice: BatchWeighted: maxWeight": func() { operators.BatchWeighted[int](src, 0, func(int) int64 { return 1 }, 0) },
		"sluice: BatchWeighted: nil weight": func() {
			operators.BatchWeighted[int](src, 1, nil, 0)
		},
	} {
		err := flow.Catch(f)
		var pe *flow.PanicError
		if !errors.As(err, &pe) {
			t.Errorf("%s: did not panic", name)
			continue
		}
		if msg, _ := pe.Value.(string); len(msg) < len(name) || msg[:len(name)] != name {
			t.Errorf("panic %q, want a message starting with %q", pe.Value, name)
		}
	}
}
