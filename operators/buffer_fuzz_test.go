package operators_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

// FuzzBuffer drives a Buffer fed by an asynchronous producer goroutine
// with a random policy, capacity, item count, demand script and cancel
// timing (from the test goroutine, or from inside OnNext), under
// testing/synctest so that synctest.Wait marks the moments when every
// goroutine is idle.
//
// Property: at every such moment, and at the end, no item is lost or
// invented:
//
//	Stats.Produced  == items the producer emitted
//	Stats.Delivered == items the subscriber received
//	Stats.Dropped   == the drops the OnDrop hook saw, by reason
//	Stats.Produced  == Delivered + Σ Dropped + Buffered (Buffered read from the ring)
//
// and at the end the delivered and dropped items partition exactly the
// items produced, the delivered ones in order, and nothing is buffered.
func FuzzBuffer(f *testing.F) {
	f.Add(byte(0), byte(1), byte(10), byte(0), []byte{0, 1, 4, 1, 8, 1})
	f.Add(byte(1), byte(1), byte(10), byte(0), []byte{1, 0, 1, 2, 1})
	f.Add(byte(2), byte(3), byte(50), byte(0), []byte{1, 4, 1, 4, 1, 3, 1})
	f.Add(byte(3), byte(2), byte(20), byte(0), []byte{1, 4, 1, 8, 1})
	f.Add(byte(1), byte(4), byte(100), byte(3), []byte{28, 1, 2, 1, 28, 1})
	f.Add(byte(2), byte(1), byte(30), byte(5), []byte{60, 2, 1})
	f.Add(byte(0), byte(8), byte(200), byte(0), []byte{252, 2, 3, 1})
	f.Add(byte(3), byte(5), byte(0), byte(0), []byte{1})
	f.Fuzz(func(t *testing.T, policyB, capB, nB, cancelAt byte, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		synctest.Test(t, func(t *testing.T) {
			runBufferScript(t, flow.Overflow(policyB%4), int(capB%8)+1, int(nB), int(cancelAt%16), ops)
		})
	})
}

func runBufferScript(t *testing.T, policy flow.Overflow, capacity, n, cancelAt int, ops []byte) {
	var emitted atomic.Int64
	src := &btAsyncSource{n: n}
	var drops btDrops[int]
	pub := operators.Buffer[int](&btCountingSource{src: src, emitted: &emitted}, capacity, policy, operators.OnDrop(drops.Hook))
	rec := flowtest.NewSubscriber[int](t, 0, btOpts(0, cancelAt)...)
	pub.Subscribe(rec)
	cancelled := false

	check := func(when string) {
		t.Helper()
		synctest.Wait()
		st := pub.(operators.StatsReporter).Stats()
		got := []any{st.Produced, st.Delivered, st.Dropped}
		want := []any{emitted.Load(), int64(len(btItems(rec))), drops.Counts()}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s (policy %v, capacity %d, n %d): counters differ from what was seen (-seen +stats)\n%s",
				when, policy, capacity, n, diff)
		}
		if st.Produced != st.Delivered+st.TotalDropped()+st.Buffered {
			t.Fatalf("%s (policy %v, capacity %d, n %d): produced %d != delivered %d + dropped %d + buffered %d",
				when, policy, capacity, n, st.Produced, st.Delivered, st.TotalDropped(), st.Buffered)
		}
		if st.Buffered < 0 || st.Buffered > int64(capacity) {
			t.Fatalf("%s: buffered %d outside [0, %d]", when, st.Buffered, capacity)
		}
	}

	for i, op := range ops {
		switch op % 4 {
		case 0:
			rec.Request(int64(op/4%8) + 1)
		case 1:
			check(fmt.Sprintf("step %d", i))
		case 2:
			time.Sleep(time.Millisecond)
		case 3:
			if op/4%4 == 0 {
				rec.Cancel()
				cancelled = true
			}
		}
	}
	if !cancelled {
		rec.Request(flow.Unbounded)
	}
	synctest.Wait()
	cancelledInOnNext := cancelAt > 0 && len(btItems(rec)) >= cancelAt
	if !cancelled && !cancelledInOnNext {
		// Nobody cancelled and demand is unbounded: the stream has ended.
		res := rec.Outcome()
		if res != "complete" && !(policy == flow.Fail && errors.Is(rec.Err(), flow.ErrOverflow)) {
			t.Fatalf("stream did not end: %s", res)
		}
	}
	rec.Cancel() // ends the source if the stream is still open
	src.Wait()
	check("end")

	delivered := btItems(rec)
	if !slices.IsSorted(delivered) {
		t.Fatalf("delivered items out of order: %v", delivered)
	}
	all := slices.Clone(delivered)
	for _, d := range drops.All() {
		all = append(all, d.Item)
	}
	slices.Sort(all)
	if diff := cmp.Diff(btInts(0, int(emitted.Load())), all); diff != "" {
		t.Fatalf("delivered ∪ dropped is not exactly the items produced (-want +got)\n%s", diff)
	}
	if st := pub.(operators.StatsReporter).Stats(); st.Buffered != 0 {
		t.Fatalf("%d items still buffered at the end", st.Buffered)
	}
	if policy == flow.Block {
		for _, d := range drops.All() {
			if d.Reason != flow.ReasonCancelled {
				t.Fatalf("Block dropped item %d with %v", d.Item, d.Reason)
			}
		}
	}
}

// btCountingSource counts the items its source emits.
type btCountingSource struct {
	src     flow.Publisher[int]
	emitted *atomic.Int64
}

func (c *btCountingSource) Subscribe(s flow.Subscriber[int]) {
	c.src.Subscribe(flow.SubscriberFuncs[int]{
		Subscribe: s.OnSubscribe,
		Next: func(v int) {
			c.emitted.Add(1)
			s.OnNext(v)
		},
		Error:    s.OnError,
		Complete: s.OnComplete,
	})
}

// TestBufferAccountingUnderRace runs random scenarios in real time: an
// asynchronous producer, a consumer goroutine that requests random
// amounts, and a cancel at a random moment from a third goroutine. At the
// end, the delivered and dropped items partition exactly the items
// produced, and the counters agree (the property of FuzzBuffer).
func TestBufferAccountingUnderRace(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		policy := flow.Overflow(rng.IntN(4))
		capacity := rng.IntN(8) + 1
		n := rng.IntN(300)
		cancel := rng.IntN(3) == 0
		var emitted atomic.Int64
		src := &btAsyncSource{n: n}
		var drops btDrops[int]
		pub := operators.Buffer[int](&btCountingSource{src: src, emitted: &emitted}, capacity, policy, operators.OnDrop(drops.Hook))
		rec := flowtest.NewSubscriber[int](t, 0, btWait)
		pub.Subscribe(rec)
		var wg sync.WaitGroup
		seed := rng.Uint64()
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, 0))
			for range 50 {
				rec.Request(int64(r.IntN(5) + 1))
				if r.IntN(4) == 0 {
					runtime.Gosched()
				}
			}
			rec.Request(flow.Unbounded)
		})
		if cancel {
			wg.Go(func() {
				for range rng.IntN(100) {
					runtime.Gosched()
				}
				rec.Cancel()
			})
		}
		wg.Wait()
		if !cancel {
			btAwait(t, rec)
		}
		rec.Cancel()
		src.Wait()
		st := pub.(operators.StatsReporter).Stats()
		delivered := btItems(rec)
		got := []any{st.Produced, st.Delivered, st.Dropped, st.Buffered}
		want := []any{emitted.Load(), int64(len(delivered)), drops.Counts(), int64(0)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("scenario %d (policy %v, capacity %d, n %d, cancel %v): (-seen +stats)\n%s", i, policy, capacity, n, cancel, diff)
		}
		all := slices.Clone(delivered)
		for _, d := range drops.All() {
			all = append(all, d.Item)
		}
		slices.Sort(all)
		if !slices.IsSorted(delivered) || !slices.Equal(all, btInts(0, int(emitted.Load()))) {
			t.Fatalf("scenario %d (policy %v, capacity %d, n %d, cancel %v): items lost, duplicated or reordered",
				i, policy, capacity, n, cancel)
		}
	}
}
