package operators_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

// Items for the FairByKey tests are tenant*100 + sequence: key is v/100.
func tenant(v int) int { return v / 100 }

func TestFairByKeyRoundRobin(t *testing.T) {
	src := &btSource{items: []int{100, 101, 102, 103, 104, 200, 201, 300}}
	fair := operators.FairByKey[int](src, tenant, 8, operators.MaxKeys(16))
	s := flowtest.NewSubscriber[int](t, 0)
	fair.Subscribe(s)
	// Everything was prefetched before any demand: the order is the
	// stage's choice, not the arrival's.
	s.Request(flow.Unbounded)
	btAwait(t, s)
	if diff := cmp.Diff([]int{100, 200, 300, 101, 201, 102, 103, 104}, btItems(s)); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if !s.Completed() {
		t.Errorf("%v, want OnComplete", s.Err())
	}
	if diff := cmp.Diff([]int64{8}, src.Requests()); diff != "" {
		t.Errorf("upstream requests (-want +got):\n%s", diff)
	}
}

func TestFairByKeyBlockRequestsOnlyWhatFits(t *testing.T) {
	// A noisy tenant 1 ahead of tenant 2: with 2 items per key, at most 2
	// are ever requested and not yet delivered, so tenant 2 waits behind
	// tenant 1 (head-of-line) but nothing is dropped.
	var drops kyDrops
	src := &btSource{items: []int{100, 101, 102, 103, 104, 200, 105, 201}}
	fair := operators.FairByKey[int](src, tenant, 2, drops.option())
	s := flowtest.NewSubscriber[int](t, 0)
	fair.Subscribe(s)
	if diff := cmp.Diff([]int64{2}, src.Requests()); diff != "" {
		t.Errorf("upstream requests before demand (-want +got):\n%s", diff)
	}
	for range 8 {
		s.Request(1)
	}
	btAwait(t, s)
	if diff := cmp.Diff([]int{100, 101, 102, 103, 104, 200, 105, 201}, btItems(s)); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if got := drops.get(); got != nil {
		t.Errorf("drops %v, want none", got)
	}
	var total int64
	for _, r := range src.Requests() {
		total += r
		if r > 2 {
			t.Errorf("request %d exceeds perKey 2: %v", r, src.Requests())
		}
	}
	if total > 8+2 {
		t.Errorf("requested %d in all, want <= 10 (8 items, and at most perKey ahead)", total)
	}
}

func TestFairByKeyOverflowPolicies(t *testing.T) {
	// Tenant 1 sends 10 items, then tenant 2 sends 2, before any demand;
	// 3 items per key.
	items := []int{100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 200, 201}
	for _, tc := range []struct {
		policy flow.Overflow
		want   []int
		drops  map[flow.DropReason][]int
		err    error
	}{
		{flow.DropNewest, []int{100, 200, 101, 201, 102},
			map[flow.DropReason][]int{flow.ReasonNewest: kyRange(103, 110, 1)}, nil},
		{flow.DropOldest, []int{107, 200, 108, 201, 109},
			map[flow.DropReason][]int{flow.ReasonOldest: kyRange(100, 107, 1)}, nil},
		// Fail cancels upstream at item 103: nothing more arrives.
		{flow.Fail, []int{100, 101, 102}, map[flow.DropReason][]int{flow.ReasonOverflow: {103}}, flow.ErrOverflow},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			var drops kyDrops
			src := &btSource{items: items}
			fair := operators.FairByKey[int](src, tenant, 3, operators.KeyOverflow(tc.policy), drops.option())
			s := flowtest.NewSubscriber[int](t, 0)
			fair.Subscribe(s)
			s.Request(flow.Unbounded)
			btAwait(t, s)
			if diff := cmp.Diff(tc.want, btItems(s)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if err := s.Err(); !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Errorf("error %v, want %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.drops, drops.get()); diff != "" {
				t.Errorf("drops (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int64{flow.Unbounded}, src.Requests()); diff != "" {
				t.Errorf("upstream requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFairByKeyMaxKeys(t *testing.T) {
	t.Run("Block requests at most one item per free key", func(t *testing.T) {
		src := &btSource{items: []int{100, 200, 300, 101}}
		fair := operators.FairByKey[int](src, tenant, 8, operators.MaxKeys(2))
		s := flowtest.NewSubscriber[int](t, 0)
		fair.Subscribe(s)
		if diff := cmp.Diff([]int64{2}, src.Requests()); diff != "" {
			t.Errorf("upstream requests before demand (-want +got):\n%s", diff)
		}
		s.Request(flow.Unbounded)
		btAwait(t, s)
		if diff := cmp.Diff([]int{100, 200, 300, 101}, btItems(s)); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
	})
	t.Run("DropNewest drops a new key", func(t *testing.T) {
		var drops kyDrops
		src := &btSource{items: []int{100, 200, 300, 101, 301}}
		fair := operators.FairByKey[int](src, tenant, 8, operators.MaxKeys(2),
			operators.KeyOverflow(flow.DropNewest), drops.option())
		s := flowtest.NewSubscriber[int](t, 0)
		fair.Subscribe(s)
		s.Request(flow.Unbounded)
		btAwait(t, s)
		if diff := cmp.Diff([]int{100, 200, 101}, btItems(s)); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[flow.DropReason][]int{flow.ReasonNewest: {300, 301}}, drops.get()); diff != "" {
			t.Errorf("drops (-want +got):\n%s", diff)
		}
	})
}

func TestFairByKeyEnds(t *testing.T) {
	t.Run("upstream error after the queued items", func(t *testing.T) {
		src := &btSource{items: []int{100, 101, 200}, err: errBoom}
		fair := operators.FairByKey[int](src, tenant, 4)
		s := flowtest.NewSubscriber[int](t, 0)
		fair.Subscribe(s)
		if s.Terminated() {
			t.Fatalf("ended before delivering the queued items")
		}
		s.Request(flow.Unbounded)
		btAwait(t, s)
		if diff := cmp.Diff([]int{100, 200, 101}, btItems(s)); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
		if !errors.Is(s.Err(), errBoom) {
			t.Errorf("error %v, want %v", s.Err(), errBoom)
		}
	})
	t.Run("key panic", func(t *testing.T) {
		var drops kyDrops
		src := &btSource{items: []int{100, 200, 666, 300}}
		fair := operators.FairByKey[int](src, func(v int) int {
			if v == 666 {
				panic("bad tenant")
			}
			return tenant(v)
		}, 4, operators.Name("fair"), drops.option())
		s := flowtest.NewSubscriber[int](t, flow.Unbounded)
		fair.Subscribe(s)
		btAwait(t, s)
		if diff := cmp.Diff([]int{100, 200}, btItems(s)); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
		var pe *flow.PanicError
		if err := s.Err(); !errors.As(err, &pe) || err.Error() != "fair: sluice: panic: bad tenant" {
			t.Errorf("error %v, want fair: *flow.PanicError", err)
		}
		if diff := cmp.Diff(map[flow.DropReason][]int{flow.ReasonError: {666}}, drops.get()); diff != "" {
			t.Errorf("drops (-want +got):\n%s", diff)
		}
		if src.Cancels() != 1 {
			t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
		}
	})
	t.Run("cancel drops the queued items", func(t *testing.T) {
		var drops kyDrops
		src := &btSource{items: []int{100, 101, 200, 201}}
		fair := operators.FairByKey[int](src, tenant, 4, drops.option())
		s := flowtest.NewSubscriber[int](t, 1)
		fair.Subscribe(s)
		s.Cancel()
		if diff := cmp.Diff([]int{100}, btItems(s)); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[flow.DropReason][]int{flow.ReasonCancelled: {101, 200, 201}}, drops.get()); diff != "" {
			t.Errorf("drops (-want +got):\n%s", diff)
		}
		if src.Cancels() != 1 {
			t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
		}
	})
}

func TestFairByKeyConstructionPanics(t *testing.T) {
	src := &btSource{n: 1}
	for _, tc := range []struct {
		name string
		f    func()
		want string
	}{
		{"perKey <= 0", func() { operators.FairByKey[int](src, tenant, 0) }, "sluice: FairByKey: perKey <= 0"},
		{"nil source", func() { operators.FairByKey[int](nil, tenant, 1) }, "sluice: FairByKey: nil source"},
		{"nil key", func() { operators.FairByKey[int, int](src, nil, 1) }, "sluice: FairByKey"},
		{"MaxKeys <= 0", func() { operators.MaxKeys(0) }, "sluice: MaxKeys: n <= 0"},
		{"invalid policy", func() { operators.KeyOverflow(flow.Overflow(7)) }, "sluice: KeyOverflow: invalid policy Overflow(7)"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantPanicPrefix(t, tc.want, tc.f) })
	}
}

// Random demand, random cancellation, random bounds and policies, with a
// synchronous or an asynchronous source. Every item is delivered exactly
// once or dropped exactly once; each key's items stay in order; under
// Block nothing is dropped and, without a cancel, everything arrives.
func TestFairByKeyStressRandomDemandAndCancel(t *testing.T) {
	iterations := 80
	if testing.Short() {
		iterations = 30
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 6))
	for it := range iterations {
		n := rng.IntN(2000)
		keys := 1 + rng.IntN(8)
		perKey := 1 + rng.IntN(8)
		maxKeys := 1 + rng.IntN(keys+1)
		policy := flow.Overflow(rng.IntN(3)) // Block, DropNewest, DropOldest
		cancelAt := 0
		if rng.IntN(3) == 0 {
			cancelAt = 1 + rng.IntN(n+1)
		}
		name := fmt.Sprintf("seed=%d/it=%d/n=%d/keys=%d/perKey=%d/maxKeys=%d/policy=%v/cancelAt=%d",
			seed, it, n, keys, perKey, maxKeys, policy, cancelAt)
		var src flow.Publisher[int]
		var async *btAsyncSource
		if rng.IntN(2) == 0 {
			src = &btSource{n: n}
		} else {
			async = &btAsyncSource{n: n}
			src = async
		}
		var drops kyDrops
		fair := operators.FairByKey(src, func(i int) int { return i % keys }, perKey,
			operators.MaxKeys(maxKeys), operators.KeyOverflow(policy), drops.option())
		var sopts []flowtest.Option
		if cancelAt > 0 {
			sopts = append(sopts, flowtest.CancelAfter(int64(cancelAt)))
		}
		s := flowtest.NewSubscriber[int](t, 0, append(sopts, btWait)...)
		fair.Subscribe(s)
		kyConsume(s, rand.New(rand.NewPCG(rng.Uint64(), 7)), cancelAt)
		if async != nil {
			async.Wait()
		}
		items := s.Items()
		seen := map[int]int{}
		last := map[int]int{}
		for _, v := range items {
			seen[v]++
			if p, ok := last[v%keys]; ok && v <= p {
				t.Fatalf("%s: key %d out of order: %d after %d", name, v%keys, v, p)
			}
			last[v%keys] = v
		}
		if v := s.Violations(); v != nil {
			t.Fatalf("%s: %v", name, v)
		}
		d := drops.get()
		for _, vs := range d {
			for _, v := range vs {
				seen[v]++
			}
		}
		for v, c := range seen {
			if c != 1 {
				t.Fatalf("%s: item %d delivered or dropped %d times", name, v, c)
			}
		}
		if policy == flow.Block && len(d[flow.ReasonNewest])+len(d[flow.ReasonOldest])+len(d[flow.ReasonOverflow]) != 0 {
			t.Fatalf("%s: Block dropped %v", name, d)
		}
		if cancelAt == 0 {
			if !s.Completed() {
				t.Fatalf("%s: %v, want OnComplete", name, s.Err())
			}
			if len(seen) != n {
				t.Fatalf("%s: %d items accounted for, want %d", name, len(seen), n)
			}
		}
	}
}

// BenchmarkFairByKey passes 100k ints of 4 keys through FairByKey (256 per
// key) to a sink that requests Unbounded, on one goroutine, beside Buffer
// of the same total size under Block.
func BenchmarkFairByKey(b *testing.B) {
	const keys = 4
	b.Run("fairByKey", func(b *testing.B) {
		for b.Loop() {
			s := &btSink[int]{}
			operators.FairByKey[int](btFastSource{n: kyBenchItems}, func(i int) int { return i % keys }, 256).Subscribe(s)
			if !s.done || s.n != kyBenchItems {
				b.Fatalf("sink got %d, done %v", s.n, s.done)
			}
		}
		reportPerItem(b, kyBenchItems)
	})
	b.Run("buffer", func(b *testing.B) {
		for b.Loop() {
			s := &btSink[int]{}
			operators.Buffer[int](btFastSource{n: kyBenchItems}, 256*keys, flow.Block).Subscribe(s)
			if !s.done || s.n != kyBenchItems {
				b.Fatalf("sink got %d, done %v", s.n, s.done)
			}
		}
		reportPerItem(b, kyBenchItems)
	})
}
