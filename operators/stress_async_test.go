package operators_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
)

// Three async hops with random prefetches, random downstream demand and a
// cancel at a random point, from inside OnNext or from another goroutine.
// After the schedulers are closed: the items received are exactly a
// prefix of the expected stream (all of it if not cancelled), no protocol
// violation was seen, every item that reached the last hop was delivered
// or dropped, and no goroutine is left.
func TestPublishOnStressCancelAtRandomPoints(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	iterations := 300
	if testing.Short() {
		iterations = 50
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 1))
	for it := range iterations {
		n := rng.IntN(3000)
		cancelMode := rng.IntN(3) // 0 never, 1 in OnNext, 2 from another goroutine
		name := fmt.Sprintf("seed=%d/it=%d/n=%d/cancel=%d", seed, it, n, cancelMode)

		pool, single := scheduler.NewPool(2), scheduler.NewSingle()
		var src flow.Publisher[int]
		var async *btAsyncSource
		if rng.IntN(2) == 0 {
			src = &btSource{n: n}
		} else {
			async = &btAsyncSource{n: n}
			src = async
		}
		prefetch := func() operators.Option { return operators.Prefetch(1 + rng.IntN(300)) }
		var reached, dropped atomic.Int64
		chain := operators.PublishOn(
			operators.Tap(
				operators.Filter(
					operators.PublishOn(
						operators.Map(operators.PublishOn(src, pool, prefetch()), func(v int) int { return 2 * v }),
						single, prefetch()),
					func(v int) bool { return v%3 != 0 }),
				func(int) { reached.Add(1) }),
			pool, prefetch(),
			operators.OnDrop(func(int, flow.DropReason) { dropped.Add(1) }))
		var want []int
		for i := range n {
			if v := 2 * i; v%3 != 0 {
				want = append(want, v)
			}
		}
		initial, each := 1+rng.Int64N(500), rng.Int64N(3)
		if each == 0 {
			initial = flow.Unbounded
		}
		rec := flowtest.NewSubscriber[int](t, initial, append(btOpts(each, 0), btWait)...)
		hooked := btHook(rec, nil)
		cancelAt := 1 + rng.IntN(len(want)+1)
		cancelled := make(chan struct{})
		if cancelMode == 1 {
			seen := 0
			hooked.onItem = func(int) {
				if seen++; seen == cancelAt {
					rec.Cancel()
					close(cancelled)
				}
			}
		}
		chain.Subscribe(hooked)
		switch cancelMode {
		case 0:
			btAwait(t, rec)
		case 1:
			select { // the schedulers must not close under a live stream
			case <-cancelled:
			case <-hooked.ended:
			}
		case 2:
			for range rng.IntN(200) {
				runtime.Gosched()
			}
			rec.Cancel()
		}
		pool.Close()
		single.Close()
		if async != nil {
			async.Wait()
		}

		got := btItems(rec)
		result := rec.Outcome()
		switch {
		case cancelMode == 0 || result == "complete":
			if diff := cmp.Diff(want, got); diff != "" || result != "complete" {
				t.Fatalf("%s: result %q, items (-want +got)\n%s", name, result, diff)
			}
		default:
			if result != "open" {
				t.Fatalf("%s: cancelled stream ended with %q", name, result)
			}
			if len(got) > len(want) || !slices.Equal(want[:len(got)], got) {
				t.Fatalf("%s: items are not a prefix of the stream: %v", name, got)
			}
			if cancelMode == 1 && len(got) != cancelAt {
				t.Fatalf("%s: %d items after cancelling at %d", name, len(got), cancelAt)
			}
		}
		if r, d := reached.Load(), dropped.Load(); r != int64(len(got))+d {
			t.Fatalf("%s: %d items reached the last hop, %d delivered + %d dropped", name, r, len(got), d)
		}
	}
}
