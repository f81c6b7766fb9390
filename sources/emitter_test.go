package sources_test

import (
	"context"
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
	"github.com/sluicego/sluice/sources"
)

func TestEmitterTryEmitPolicies(t *testing.T) {
	type dm = map[flow.DropReason]int64
	A, D, F, C := sources.Accepted, sources.Dropped, sources.Full, sources.Closed
	tests := []struct {
		policy      flow.Overflow
		results     []sources.EmitResult
		before      sources.EmitterStats // after the five emits
		items       []int
		result      string // after Subscribe with unbounded demand, then Complete
		drops       []emDrop[int]
		after       sources.EmitterStats
		laterResult sources.EmitResult // TryEmit after all that
	}{
		{
			policy:      flow.Block,
			results:     []sources.EmitResult{A, A, F, F, F},
			before:      sources.EmitterStats{Produced: 2, Buffered: 2},
			items:       []int{0, 1},
			result:      "complete",
			after:       sources.EmitterStats{Produced: 3, Delivered: 2, Dropped: dm{flow.ReasonClosed: 1}},
			drops:       emDropsOf(flow.ReasonClosed, 9),
			laterResult: C,
		},
		{
			policy:      flow.DropNewest,
			results:     []sources.EmitResult{A, A, D, D, D},
			before:      sources.EmitterStats{Produced: 5, Buffered: 2, Dropped: dm{flow.ReasonNewest: 3}},
			items:       []int{0, 1},
			result:      "complete",
			drops:       append(emDropsOf(flow.ReasonNewest, 2, 3, 4), emDropsOf(flow.ReasonClosed, 9)...),
			after:       sources.EmitterStats{Produced: 6, Delivered: 2, Dropped: dm{flow.ReasonNewest: 3, flow.ReasonClosed: 1}},
			laterResult: C,
		},
		{
			policy:      flow.DropOldest,
			results:     []sources.EmitResult{A, A, A, A, A},
			before:      sources.EmitterStats{Produced: 5, Buffered: 2, Dropped: dm{flow.ReasonOldest: 3}},
			items:       []int{3, 4},
			result:      "complete",
			drops:       append(emDropsOf(flow.ReasonOldest, 0, 1, 2), emDropsOf(flow.ReasonClosed, 9)...),
			after:       sources.EmitterStats{Produced: 6, Delivered: 2, Dropped: dm{flow.ReasonOldest: 3, flow.ReasonClosed: 1}},
			laterResult: C,
		},
		{
			policy:  flow.Fail,
			results: []sources.EmitResult{A, A, D, C, C},
			before: sources.EmitterStats{Produced: 5, Buffered: 2,
				Dropped: dm{flow.ReasonOverflow: 1, flow.ReasonClosed: 2}},
			items: []int{0, 1},
			// The overflow ends the stream; Complete comes too late.
			result: "error: sluice: buffer overflow: em (capacity 2)",
			drops:  append(emDropsOf(flow.ReasonOverflow, 2), emDropsOf(flow.ReasonClosed, 3, 4, 9)...),
			after: sources.EmitterStats{Produced: 6, Delivered: 2,
				Dropped: dm{flow.ReasonOverflow: 1, flow.ReasonClosed: 3}},
			laterResult: C,
		},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			var drops emDrops[int]
			e := sources.NewEmitter[int](2, tt.policy, sources.Name("em"), sources.OnDrop(drops.Hook))
			var results []sources.EmitResult
			for i := range 5 {
				results = append(results, e.TryEmit(i))
			}
			if diff := cmp.Diff(tt.results, results); diff != "" {
				t.Errorf("TryEmit results (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.before, e.Stats()); diff != "" {
				t.Errorf("stats before subscribing (-want +got)\n%s", diff)
			}
			rec := flowtest.NewSubscriber[int](t, flow.Unbounded)
			e.Publisher().Subscribe(rec)
			e.Complete()
			later := e.TryEmit(9)
			got := []any{rec.Items(), rec.Outcome(), drops.All(), e.Stats(), later}
			want := []any{tt.items, tt.result, tt.drops, tt.after, tt.laterResult}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestEmitterEmit(t *testing.T) {
	t.Run("waits for room under Block", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := sources.NewEmitter[int](1, flow.Block)
			rec := flowtest.NewSubscriber[int](t, 0)
			e.Publisher().Subscribe(rec)
			if err := e.Emit(t.Context(), 0); err != nil {
				t.Fatalf("Emit(0) = %v", err)
			}
			var returned atomic.Bool
			var err error
			go func() {
				err = e.Emit(t.Context(), 1)
				returned.Store(true)
			}()
			synctest.Wait()
			if returned.Load() {
				t.Fatal("Emit returned while the buffer was full")
			}
			rec.Request(1)
			synctest.Wait()
			if !returned.Load() || err != nil {
				t.Fatalf("Emit after room appeared: returned %v, err %v", returned.Load(), err)
			}
			want := []any{[]int{0}, sources.EmitterStats{Produced: 2, Delivered: 1, Buffered: 1}}
			if diff := cmp.Diff(want, []any{rec.Items(), e.Stats()}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("returns ctx.Err and leaves nothing half-done", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var drops emDrops[int]
			e := sources.NewEmitter[int](1, flow.Block, sources.OnDrop(drops.Hook))
			e.TryEmit(0)
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			start := time.Now()
			err := e.Emit(ctx, 1)
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
				t.Fatalf("Emit = %v after %v, want DeadlineExceeded after 1s", err, time.Since(start))
			}
			rec := flowtest.NewSubscriber[int](t, flow.Unbounded)
			e.Publisher().Subscribe(rec)
			want := []any{[]int{0}, []emDrop[int](nil), sources.EmitterStats{Produced: 1, Delivered: 1}}
			if diff := cmp.Diff(want, []any{rec.Items(), drops.All(), e.Stats()}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("succeeds with a done ctx when there is room", func(t *testing.T) {
		e := sources.NewEmitter[int](1, flow.Block)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := e.Emit(ctx, 0); err != nil {
			t.Errorf("Emit = %v, want nil", err)
		}
	})
	t.Run("Complete wakes a waiting Emit with ErrClosed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var drops emDrops[int]
			e := sources.NewEmitter[int](1, flow.Block, sources.OnDrop(drops.Hook))
			e.TryEmit(0)
			errc := make(chan error, 1)
			go func() { errc <- e.Emit(t.Context(), 1) }()
			synctest.Wait()
			e.Complete()
			if err := <-errc; !errors.Is(err, sources.ErrClosed) {
				t.Fatalf("Emit = %v, want ErrClosed", err)
			}
			if diff := cmp.Diff(emDropsOf(flow.ReasonClosed, 1), drops.All()); diff != "" {
				t.Errorf("drops (-want +got)\n%s", diff)
			}
		})
	})
	t.Run("cancel wakes a waiting Emit with ErrClosed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := sources.NewEmitter[int](1, flow.Block)
			rec := flowtest.NewSubscriber[int](t, 0)
			e.Publisher().Subscribe(rec)
			e.TryEmit(0)
			errc := make(chan error, 1)
			go func() { errc <- e.Emit(t.Context(), 1) }()
			synctest.Wait()
			rec.Cancel()
			if err := <-errc; !errors.Is(err, sources.ErrClosed) {
				t.Fatalf("Emit = %v, want ErrClosed", err)
			}
			select {
			case <-e.Done():
			default:
				t.Error("Done() not closed after cancel")
			}
		})
	})
	t.Run("other policies do not wait", func(t *testing.T) {
		tests := []struct {
			policy flow.Overflow
			want   error
		}{
			{flow.DropNewest, nil},
			{flow.DropOldest, nil},
			{flow.Fail, flow.ErrOverflow},
		}
		for _, tt := range tests {
			e := sources.NewEmitter[int](1, tt.policy)
			e.TryEmit(0)
			if err := e.Emit(t.Context(), 1); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("%v: Emit on a full emitter = %v, want %v", tt.policy, err, tt.want)
			}
			if err := e.Emit(t.Context(), 2); tt.policy == flow.Fail && !errors.Is(err, sources.ErrClosed) {
				t.Errorf("%v: Emit after overflow = %v, want ErrClosed", tt.policy, err)
			}
		}
	})
}

func TestEmitterPublisher(t *testing.T) {
	t.Run("a second subscriber is rejected", func(t *testing.T) {
		e := sources.NewEmitter[int](1, flow.Block, sources.Name("em"))
		e.Publisher().Subscribe(flowtest.NewSubscriber[int](t, 0))
		second := flowtest.NewSubscriber[int](t, 0)
		e.Publisher().Subscribe(second)
		if got, want := second.Outcome(), "error: sluice: emitter already has a subscriber: em"; got != want {
			t.Errorf("second subscriber: %q, want %q", got, want)
		}
	})
	t.Run("items emitted before the subscriber are buffered, and completion waits for them", func(t *testing.T) {
		e := sources.NewEmitter[int](4, flow.Block)
		e.TryEmit(0)
		e.TryEmit(1)
		e.Complete()
		rec := flowtest.NewSubscriber[int](t, 0)
		e.Publisher().Subscribe(rec)
		before := rec.Outcome()
		rec.Request(1)
		middle := rec.Outcome()
		rec.Request(1)
		got := []any{before, middle, rec.Items(), rec.Outcome()}
		want := []any{"open", "open", []int{0, 1}, "complete"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
	t.Run("an empty completed emitter completes without demand", func(t *testing.T) {
		e := sources.NewEmitter[int](4, flow.Block)
		e.Fail(errors.New("gone"))
		rec := flowtest.NewSubscriber[int](t, 0)
		e.Publisher().Subscribe(rec)
		if got := rec.Outcome(); got != "error: gone" {
			t.Errorf("Result() = %q, want error: gone", got)
		}
	})
	t.Run("cancel drops the buffered items and closes the emitter", func(t *testing.T) {
		var drops emDrops[int]
		e := sources.NewEmitter[int](4, flow.DropOldest, sources.OnDrop(drops.Hook))
		for i := range 4 {
			e.TryEmit(i)
		}
		rec := flowtest.NewSubscriber[int](t, 1)
		e.Publisher().Subscribe(rec)
		rec.Cancel()
		late := e.TryEmit(9)
		got := []any{rec.Items(), rec.Outcome(), drops.All(), late, e.Stats()}
		want := []any{[]int{0}, "open",
			append(emDropsOf(flow.ReasonCancelled, 1, 2, 3), emDropsOf(flow.ReasonClosed, 9)...),
			sources.Closed,
			sources.EmitterStats{Produced: 5, Delivered: 1, Dropped: map[flow.DropReason]int64{
				flow.ReasonCancelled: 3, flow.ReasonClosed: 1,
			}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
	t.Run("cancel during emission drops the rest", func(t *testing.T) {
		var drops emDrops[int]
		e := sources.NewEmitter[int](1, flow.DropNewest, sources.OnDrop(drops.Hook))
		rec := flowtest.NewSubscriber[int](t, 1, flowtest.RequestOnNext(1), flowtest.CancelAfter(2))
		e.Publisher().Subscribe(rec)
		var results []sources.EmitResult
		for i := range 4 {
			results = append(results, e.TryEmit(i))
		}
		got := []any{rec.Items(), results, drops.All()}
		want := []any{[]int{0, 1}, []sources.EmitResult{sources.Accepted, sources.Accepted, sources.Closed, sources.Closed},
			emDropsOf(flow.ReasonClosed, 2, 3)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
	t.Run("OnNext may emit: delivery is serial and never re-entered", func(t *testing.T) {
		e := sources.NewEmitter[int](2, flow.Block)
		var got []int
		depth, maxDepth := 0, 0
		var sub flow.Subscription
		e.Publisher().Subscribe(flow.SubscriberFuncs[int]{
			Subscribe: func(s flow.Subscription) { sub = s; s.Request(flow.Unbounded) },
			Next: func(v int) {
				depth++
				maxDepth = max(maxDepth, depth)
				got = append(got, v)
				if v < 5 {
					e.TryEmit(v + 1)
				}
				depth--
			},
		})
		e.TryEmit(0)
		sub.Cancel()
		if diff := cmp.Diff([]any{[]int{0, 1, 2, 3, 4, 5}, 1}, []any{got, maxDepth}); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
	t.Run("Request(0) fails the stream", func(t *testing.T) {
		e := sources.NewEmitter[int](2, flow.Block)
		e.TryEmit(0)
		rec := flowtest.NewSubscriber[int](t, 0)
		e.Publisher().Subscribe(rec)
		rec.Request(0)
		want := "error: sluice: non-positive subscription request (rule 3.9): Request(0)"
		if got := rec.Outcome(); got != want {
			t.Errorf("Result() = %q, want %q", got, want)
		}
		if got := e.TryEmit(1); got != sources.Closed {
			t.Errorf("TryEmit after the failure = %v, want Closed", got)
		}
	})
}

func TestEmitterConstructorPanics(t *testing.T) {
	for want, f := range map[string]func(){
		"sluice: NewEmitter: capacity <= 0":  func() { sources.NewEmitter[int](0, flow.Block) },
		"sluice: NewEmitter: invalid policy": func() { sources.NewEmitter[int](1, flow.Overflow(7)) },
		"sluice: emitter#":                   func() { sources.NewEmitter[int](1, flow.Block, sources.OnDrop(func(string, flow.DropReason) {})) },
		"sluice: Name: empty name":           func() { sources.Name("") },
		"sluice: OnDrop: nil hook":           func() { sources.OnDrop[int](nil) },
		"sluice: Emitter.Fail: nil error":    func() { sources.NewEmitter[int](1, flow.Block).Fail(nil) },
		"sluice: Ticker: period <= 0":        func() { sources.Ticker(0, flow.Block) },
	} {
		var pe *flow.PanicError
		if err := flow.Catch(f); !errors.As(err, &pe) {
			t.Errorf("%s: no panic", want)
		} else if msg := fmt.Sprint(pe.Value); len(msg) < len(want) || msg[:len(want)] != want {
			t.Errorf("panic %q, want a message starting with %q", msg, want)
		}
	}
}

// Many producers block in Emit on a small buffer while the subscriber
// takes one item at a time from another goroutine: every Emit must be
// woken (no lost wake-up), every item delivered once, in each producer's
// order.
func TestEmitterNoLostWakeups(t *testing.T) {
	const producers, perProducer = 4, 2000
	for _, capacity := range []int{1, 2, 3} {
		e := sources.NewEmitter[[2]int](capacity, flow.Block)
		rec := flowtest.NewSubscriber[[2]int](t, 1, flowtest.RequestOnNext(1), flowtest.Timeout(20*time.Second))
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		var wg sync.WaitGroup
		errs := make(chan error, producers)
		for p := range producers {
			wg.Go(func() {
				for i := range perProducer {
					if err := e.Emit(ctx, [2]int{p, i}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		go e.Publisher().Subscribe(rec) // subscribe while producers wait
		wg.Wait()
		e.Complete()
		rec.AwaitTerminated()
		cancel()
		close(errs)
		for err := range errs {
			t.Fatalf("capacity %d: Emit: %v (a lost wake-up)", capacity, err)
		}
		next := make([]int, producers)
		for _, it := range rec.Items() {
			if it[1] != next[it[0]] {
				t.Fatalf("capacity %d: producer %d: got item %d, want %d", capacity, it[0], it[1], next[it[0]])
			}
			next[it[0]]++
		}
		for p, n := range next {
			if n != perProducer {
				t.Errorf("capacity %d: producer %d: %d items delivered, want %d", capacity, p, n, perProducer)
			}
		}
		if got := rec.Outcome(); got != "complete" {
			t.Errorf("capacity %d: Result() = %q", capacity, got)
		}
	}
}

// Concurrent producers, a subscriber requesting at random and a cancel at
// a random moment: the counters agree with what producers, subscriber and
// hook saw, and delivered ∪ dropped is exactly what was produced.
func TestEmitterAccountingUnderRace(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for scenario := range 100 {
		policy := flow.Overflow(rng.IntN(4))
		capacity := rng.IntN(6) + 1
		cancelIt := rng.IntN(3) == 0
		var drops emDrops[int]
		e := sources.NewEmitter[int](capacity, policy, sources.OnDrop(drops.Hook))
		rec := flowtest.NewSubscriber[int](t, 0)
		e.Publisher().Subscribe(rec)
		var produced sync.Map // items not handed back
		var wg sync.WaitGroup
		for p := range 3 {
			wg.Go(func() {
				for i := range 200 {
					v := p*1000 + i
					if e.TryEmit(v) != sources.Full {
						produced.Store(v, true)
					}
				}
			})
		}
		seed := rng.Uint64()
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, 1))
			for range 100 {
				rec.Request(int64(r.IntN(4) + 1))
				runtime.Gosched()
			}
		})
		if cancelIt {
			n := rng.IntN(200)
			wg.Go(func() {
				for range n {
					runtime.Gosched()
				}
				rec.Cancel()
			})
		}
		wg.Wait()
		e.Complete()
		rec.Request(flow.Unbounded)
		if !cancelIt {
			rec.AwaitTerminated()
		}
		var want []int
		produced.Range(func(k, _ any) bool { want = append(want, k.(int)); return true })
		slices.Sort(want)
		got := rec.Items()
		for _, d := range drops.All() {
			got = append(got, d.Item)
		}
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("scenario %d (%v, capacity %d, cancel %v): delivered ∪ dropped != produced (-want +got)\n%s",
				scenario, policy, capacity, cancelIt, diff)
		}
		st := e.Stats()
		wantStats := sources.EmitterStats{Produced: int64(len(want)), Delivered: int64(len(rec.Items())), Dropped: drops.Counts()}
		if diff := cmp.Diff(wantStats, st); diff != "" {
			t.Fatalf("scenario %d (%v, capacity %d, cancel %v): stats (-want +got)\n%s", scenario, policy, capacity, cancelIt, diff)
		}
	}
}
