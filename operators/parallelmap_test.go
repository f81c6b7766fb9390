package operators_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

// Helpers shared by the ParallelMap and MapAsync tests (prefix pm).

// pmStage builds the stage under test: ParallelMap when async is false,
// MapAsync otherwise, both computing f.
func pmStage(async bool, src flow.Publisher[int], f func(int) int, n int, opts ...operators.Option) flow.Publisher[int] {
	if async {
		return operators.MapAsync(src, func(_ context.Context, v int) (int, error) { return f(v), nil }, n, opts...)
	}
	return operators.ParallelMap(src, f, n, opts...)
}

// pmKinds names the two stages for table tests.
var pmKinds = []struct {
	name  string
	async bool
}{{"ParallelMap", false}, {"MapAsync", true}}

// pmSorted returns a sorted copy of s.
func pmSorted(s []int) []int {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// pmWant returns f(i) for i in 0..n-1, nil when n == 0.
func pmWant(n int, f func(int) int) []int {
	var out []int
	for i := range n {
		out = append(out, f(i))
	}
	return out
}

// pmCheckItems compares got with want: exactly when ordered, as sorted
// multisets otherwise.
func pmCheckItems(t *testing.T, ordered bool, want, got []int) {
	t.Helper()
	if !ordered {
		want, got = pmSorted(want), pmSorted(got)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

// pmRequests is the upstream request log the stages must produce for n
// items delivered with prefetch p and w workers: p+w, then p-p/4 for every
// p-p/4 items delivered.
func pmRequests(n, p, w int) []int64 {
	l := max(1, p-p/4)
	out := []int64{int64(p + w)}
	for range n / l {
		out = append(out, int64(l))
	}
	return out
}

// pmFlight tracks items in flight through a stage: taken (counted by a
// Tap before the stage) minus delivered (counted at the start of the
// subscriber's OnNext), and the calls of the user function in progress.
type pmFlight struct {
	taken, delivered atomic.Int64
	maxOut           atomic.Int64
	calls, maxCalls  atomic.Int64
}

func pmMax(m *atomic.Int64, v int64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

func (f *pmFlight) take(int) {
	n := f.taken.Add(1)
	pmMax(&f.maxOut, n-f.delivered.Load())
}

func (f *pmFlight) deliver(int) { f.delivered.Add(1) }

// enter and leave bracket a call of the user function.
func (f *pmFlight) enter() { pmMax(&f.maxCalls, f.calls.Add(1)) }
func (f *pmFlight) leave() { f.calls.Add(-1) }

func TestParallelMapResults(t *testing.T) {
	double := func(v int) int { return 2 * v }
	for _, kind := range pmKinds {
		for _, workers := range []int{1, 2, 5} {
			for _, ordered := range []bool{false, true} {
				for _, tc := range []struct {
					n, prefetch    int
					initial, each  int64
					asyncUpstream  bool
					wantRequestLog bool
				}{
					{n: 0, prefetch: 256, initial: 1, each: 1, wantRequestLog: true},
					{n: 1, prefetch: 256, initial: flow.Unbounded, wantRequestLog: true},
					{n: 1000, prefetch: 256, initial: flow.Unbounded, wantRequestLog: true},
					{n: 1000, prefetch: 1, initial: 1, each: 1, wantRequestLog: true},
					{n: 777, prefetch: 7, initial: 3, each: 2, wantRequestLog: true},
					{n: 500, prefetch: 16, initial: 5, each: 1, asyncUpstream: true},
				} {
					name := fmt.Sprintf("%s/workers=%d/ordered=%t/n=%d/prefetch=%d/demand=%d+%d/async=%t",
						kind.name, workers, ordered, tc.n, tc.prefetch, tc.initial, tc.each, tc.asyncUpstream)
					t.Run(name, func(t *testing.T) {
						opts := []operators.Option{operators.Prefetch(tc.prefetch), operators.Name("pm")}
						if ordered {
							opts = append(opts, operators.Ordered())
						}
						ssrc, asrc := &btSource{n: tc.n}, &btAsyncSource{n: tc.n}
						var src flow.Publisher[int] = ssrc
						if tc.asyncUpstream {
							src = asrc
						}
						rec := flowtest.NewSubscriber[int](t, tc.initial, append(btOpts(tc.each, 0), btWait)...)
						pmStage(kind.async, src, double, workers, opts...).Subscribe(rec)
						btAwait(t, rec)
						asrc.Wait()
						if r := rec.Outcome(); r != "complete" {
							t.Fatalf("result %q", r)
						}
						pmCheckItems(t, ordered, pmWant(tc.n, double), btItems(rec))
						if tc.wantRequestLog {
							if diff := cmp.Diff(pmRequests(tc.n, tc.prefetch, workers), ssrc.Requests()); diff != "" {
								t.Errorf("upstream requests (-want +got):\n%s", diff)
							}
						}
					})
				}
			}
		}
	}
}

// With a subscriber that asks for one item at a time and only after a
// while, the stage fills its window and stops: exactly P + W items are
// taken before the first delivery, never more are in flight, and no more
// than W calls of f run at once; W of them do run at once.
func TestParallelMapBoundsInFlight(t *testing.T) {
	for _, kind := range pmKinds {
		for _, ordered := range []bool{false, true} {
			for _, tc := range []struct{ workers, prefetch, n int }{{1, 4, 200}, {3, 1, 200}, {4, 16, 500}} {
				t.Run(fmt.Sprintf("%s/ordered=%t/workers=%d/prefetch=%d", kind.name, ordered, tc.workers, tc.prefetch), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						var fl pmFlight
						barrier := make(chan struct{})
						var once sync.Once
						f := func(v int) int {
							fl.enter()
							defer fl.leave()
							if fl.calls.Load() == int64(tc.workers) {
								once.Do(func() { close(barrier) })
							}
							<-barrier // the first calls wait until all workers are busy
							return v + 1
						}
						opts := []operators.Option{operators.Prefetch(tc.prefetch)}
						if ordered {
							opts = append(opts, operators.Ordered())
						}
						src := operators.Tap[int](&btSource{n: tc.n}, fl.take)
						rec := flowtest.NewSubscriber[int](t, 0, btWait)
						pmStage(kind.async, src, f, tc.workers, opts...).Subscribe(btHook(rec, fl.deliver))
						synctest.Wait()
						if got, want := fl.taken.Load(), int64(tc.prefetch+tc.workers); got != want {
							t.Fatalf("taken before any demand: %d, want %d", got, want)
						}
						for range tc.n {
							rec.Request(1)
							synctest.Wait()
						}
						btAwait(t, rec)
						pmCheckItems(t, ordered, pmWant(tc.n, func(v int) int { return v + 1 }), btItems(rec))
						if got, want := fl.maxOut.Load(), int64(tc.prefetch+tc.workers); got != want {
							t.Errorf("max items in flight %d, want %d (P+W)", got, want)
						}
						if got := fl.maxCalls.Load(); got != int64(tc.workers) {
							t.Errorf("max concurrent calls %d, want %d", got, tc.workers)
						}
					})
				})
			}
		}
	}
}

func TestParallelMapPanicInFunction(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered=%t", ordered), func(t *testing.T) {
			var fl pmFlight
			var drops btDrops[int]
			src := &btSource{n: 1000}
			opts := []operators.Option{operators.Name("pm"), operators.Prefetch(8), operators.OnDrop(drops.Hook)}
			if ordered {
				opts = append(opts, operators.Ordered())
			}
			f := func(v int) int {
				if v == 20 {
					panic("bad item")
				}
				return v
			}
			rec := flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
			operators.ParallelMap(operators.Tap[int](src, fl.take), f, 3, opts...).Subscribe(rec)
			err := rec.AwaitError()
			var pe *flow.PanicError
			if !errors.As(err, &pe) || pe.Value != "bad item" || !strings.HasPrefix(err.Error(), "pm: sluice: panic: bad item") {
				t.Fatalf("error %v, want a wrapped *flow.PanicError", err)
			}
			if src.Cancels() != 1 {
				t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
			}
			pmCheckDropsAfterError(t, &fl, rec, &drops, 20)
			if ordered && !slices.Equal(btItems(rec), btInts(0, len(btItems(rec)))) {
				t.Errorf("ordered items are not a prefix: %v", btItems(rec))
			}
		})
	}
}

// pmCheckDropsAfterError checks the accounting of a stream that failed on
// item bad: every item taken was delivered or dropped, bad with
// ReasonError, the others with ReasonCancelled, and bad was not delivered.
func pmCheckDropsAfterError(t *testing.T, fl *pmFlight, rec *flowtest.Subscriber[int], drops *btDrops[int], bad int) {
	t.Helper()
	got := btItems(rec)
	all := drops.All()
	if int64(len(got)+len(all)) != fl.taken.Load() {
		t.Errorf("taken %d, delivered %d + dropped %d", fl.taken.Load(), len(got), len(all))
	}
	var errs []int
	seen := map[int]bool{}
	for _, v := range got {
		seen[v] = true
	}
	for _, d := range all {
		if d.Reason == flow.ReasonError {
			errs = append(errs, d.Item)
		} else if d.Reason != flow.ReasonCancelled {
			t.Errorf("drop %v: unexpected reason", d)
		}
		if seen[d.Item] {
			t.Errorf("item %d both delivered and dropped", d.Item)
		}
		seen[d.Item] = true
	}
	if diff := cmp.Diff([]int{bad}, errs); diff != "" {
		t.Errorf("items dropped with ReasonError (-want +got):\n%s", diff)
	}
}

func TestParallelMapPanicInDownstream(t *testing.T) {
	var drops btDrops[int]
	src := &btSource{n: 100}
	rec := flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
	hooked := btHook(rec, func(v int) {
		if v == 5 {
			panic("downstream")
		}
	})
	operators.ParallelMap(src, func(v int) int { return v }, 2, operators.Name("pm"), operators.Ordered(),
		operators.Prefetch(4), operators.OnDrop(drops.Hook)).Subscribe(hooked)
	err := rec.AwaitError()
	var pe *flow.PanicError
	if !errors.As(err, &pe) || pe.Value != "downstream" || !strings.HasPrefix(err.Error(), "pm: ") {
		t.Fatalf("error %v, want a wrapped *flow.PanicError", err)
	}
	if diff := cmp.Diff(btInts(0, 5), btItems(rec)); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	// 6 = P + W items were taken: 0..4 delivered, 5 delivered to a
	// panicking OnNext (counted as delivered), none dropped with a reason
	// other than ReasonCancelled.
	for _, d := range drops.All() {
		if d.Reason != flow.ReasonCancelled || d.Item <= 5 {
			t.Errorf("unexpected drop %v", d)
		}
	}
	if src.Cancels() != 1 {
		t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
	}
}

func TestParallelMapNonPositiveRequest(t *testing.T) {
	for _, kind := range pmKinds {
		t.Run(kind.name, func(t *testing.T) {
			src := &btSource{n: 100}
			rec := flowtest.NewSubscriber[int](t, 0, btWait)
			pmStage(kind.async, src, func(v int) int { return v }, 2).Subscribe(rec)
			rec.Request(-3)
			if err := rec.AwaitError(); !errors.Is(err, flow.ErrNonPositiveRequest) || !strings.Contains(err.Error(), "Request(-3)") {
				t.Fatalf("error %v, want ErrNonPositiveRequest for Request(-3)", err)
			}
			if src.Cancels() != 1 {
				t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
			}
		})
	}
}

func TestParallelMapUpstreamError(t *testing.T) {
	for _, kind := range pmKinds {
		t.Run(kind.name+"/delayed", func(t *testing.T) {
			src := &btSource{n: 50, err: errBoom}
			rec := flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
			pmStage(kind.async, src, func(v int) int { return v }, 3, operators.Ordered()).Subscribe(rec)
			if err := rec.AwaitError(); err != errBoom {
				t.Fatalf("error %v, want errBoom unwrapped", err)
			}
			if diff := cmp.Diff(btInts(0, 50), btItems(rec)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
		t.Run(kind.name+"/at-once", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var drops btDrops[int]
				src := &btSource{n: 10, err: errBoom}
				rec := flowtest.NewSubscriber[int](t, 0, btWait) // no demand: everything is held
				pmStage(kind.async, src, func(v int) int { return v }, 3,
					operators.DelayError(false), operators.OnDrop(drops.Hook)).Subscribe(rec)
				if err := rec.AwaitError(); err != errBoom {
					t.Fatalf("error %v, want errBoom", err)
				}
				synctest.Wait()
				got := drops.All()
				slices.SortFunc(got, func(a, b btDrop[int]) int { return a.Item - b.Item })
				if diff := cmp.Diff(btDropsOf(flow.ReasonCancelled, btInts(0, 10)...), got); diff != "" {
					t.Errorf("drops (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// Cancel from downstream ends every worker and drops exactly the items
// taken and not delivered, whether the cancel comes from inside OnNext or
// from another goroutine.
func TestParallelMapCancelDropsTheRest(t *testing.T) {
	for _, kind := range pmKinds {
		for _, ordered := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ordered=%t", kind.name, ordered), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var fl pmFlight
					var drops btDrops[int]
					src := &btSource{n: 10_000}
					opts := []operators.Option{operators.Prefetch(32), operators.OnDrop(drops.Hook)}
					if ordered {
						opts = append(opts, operators.Ordered())
					}
					rec := flowtest.NewSubscriber[int](t, 1, flowtest.RequestOnNext(1), flowtest.CancelAfter(100), btWait)
					pmStage(kind.async, operators.Tap[int](src, fl.take), func(v int) int { return v }, 3, opts...).Subscribe(rec)
					synctest.Wait() // every worker has ended
					got := btItems(rec)
					if len(got) != 100 || rec.Outcome() != "open" {
						t.Fatalf("%d items, result %q; want 100, open", len(got), rec.Outcome())
					}
					if ordered {
						pmCheckItems(t, true, btInts(0, 100), got)
					}
					if d := drops.Counts(); fl.taken.Load() != 100+d[flow.ReasonCancelled] || len(d) != 1 {
						t.Errorf("taken %d, delivered 100, dropped %v", fl.taken.Load(), d)
					}
					if src.Cancels() != 1 {
						t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
					}
				})
			})
		}
	}
}

func TestParallelMapConstructionPanics(t *testing.T) {
	src := &btSource{n: 1}
	id := func(v int) int { return v }
	call := func(_ context.Context, v int) (int, error) { return v, nil }
	for _, tc := range []struct {
		name, want string
		f          func()
	}{
		{"nil source", "sluice: ParallelMap: nil source", func() { operators.ParallelMap(nil, id, 1) }},
		{"nil function", "sluice: ParallelMap: nil function", func() { operators.ParallelMap[int, int](src, nil, 1) }},
		{"zero workers", "sluice: ParallelMap: workers <= 0", func() { operators.ParallelMap(src, id, 0) }},
		{"nil source async", "sluice: MapAsync: nil source", func() { operators.MapAsync(nil, call, 1) }},
		{"nil function async", "sluice: MapAsync: nil function", func() { operators.MapAsync[int, int](src, nil, 1) }},
		{"negative concurrency", "sluice: MapAsync: concurrency <= 0", func() { operators.MapAsync(src, call, -1) }},
		{"bad hook type", "sluice: pm: OnDrop hook is func(string, flow.DropReason), want func(int, flow.DropReason)",
			func() {
				operators.ParallelMap(src, id, 1, operators.Name("pm"), operators.OnDrop(func(string, flow.DropReason) {}))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if got := fmt.Sprint(recover()); got != tc.want {
					t.Errorf("panic %q, want %q", got, tc.want)
				}
			}()
			tc.f()
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("Subscribe(nil) did not panic")
		}
	}()
	operators.ParallelMap(src, id, 1).Subscribe(nil)
}

// Random workers, prefetch, order, upstream (synchronous or on its own
// goroutine), downstream demand, and an end at a random point: a cancel
// from inside OnNext, a cancel from another goroutine, or a failing call.
// Each run is in a synctest bubble, so that once synctest.Wait returns,
// every goroutine of the stage has ended (the bubble would not end
// otherwise). Then: the items are exactly the expected ones (a prefix if
// ordered, a subset otherwise, all of them when the stream completed),
// every item taken from upstream was delivered or dropped exactly once,
// with the right reasons, and the subscriber saw no protocol violation.
func TestParallelMapStressRandomEnd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	iterations := 250
	if testing.Short() {
		iterations = 60
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 2))
	for it := range iterations {
		p := pmStressParams{
			async:    rng.IntN(2) == 0,
			ordered:  rng.IntN(2) == 0,
			asyncSrc: rng.IntN(2) == 0,
			workers:  1 + rng.IntN(4),
			prefetch: 1 + rng.IntN(64),
			n:        rng.IntN(1500),
			mode:     rng.IntN(4),
			initial:  1 + rng.Int64N(300),
			each:     rng.Int64N(3),
			gosched:  rng.IntN(200),
		}
		if p.each == 0 {
			p.initial = flow.Unbounded
		}
		p.endAt = rng.IntN(p.n + 1)
		name := fmt.Sprintf("seed=%d/it=%d/%+v", seed, it, p)
		synctest.Test(t, func(t *testing.T) { pmStressOnce(t, name, p) })
		if t.Failed() {
			return
		}
	}
}

type pmStressParams struct {
	async, ordered, asyncSrc bool
	workers, prefetch, n     int
	mode                     int // 0 none, 1 cancel in OnNext, 2 cancel from another goroutine, 3 f fails
	endAt                    int
	initial, each            int64
	gosched                  int
}

func pmStressOnce(t *testing.T, name string, p pmStressParams) {
	var fl pmFlight
	var drops btDrops[int]
	var src flow.Publisher[int] = &btSource{n: p.n}
	var asrc *btAsyncSource
	if p.asyncSrc {
		asrc = &btAsyncSource{n: p.n}
		src = asrc
	}
	opts := []operators.Option{operators.Prefetch(p.prefetch), operators.OnDrop(drops.Hook), operators.Name("pm")}
	if p.ordered {
		opts = append(opts, operators.Ordered())
	}
	triple := func(v int) int { return 3 * v }
	tapped := operators.Tap(src, fl.take)
	var stage flow.Publisher[int]
	switch {
	case p.mode == 3 && p.async:
		stage = operators.MapAsync(tapped, func(_ context.Context, v int) (int, error) {
			if v == p.endAt {
				return 0, errBoom
			}
			return triple(v), nil
		}, p.workers, opts...)
	case p.mode == 3:
		stage = operators.ParallelMap(tapped, func(v int) int {
			if v == p.endAt {
				panic(errBoom)
			}
			return triple(v)
		}, p.workers, opts...)
	default:
		stage = pmStage(p.async, tapped, triple, p.workers, opts...)
	}
	rec := flowtest.NewSubscriber[int](t, p.initial, append(btOpts(p.each, 0), btWait)...)
	hooked := btHook(rec, fl.deliver)
	cancelled := make(chan struct{})
	if p.mode == 1 {
		seen := 0
		hooked.onItem = func(v int) {
			fl.deliver(v)
			if seen++; seen == p.endAt+1 {
				rec.Cancel()
				close(cancelled)
			}
		}
	}
	stage.Subscribe(hooked)
	switch p.mode {
	case 1:
		select {
		case <-cancelled:
		case <-hooked.ended:
		}
	case 2:
		for range p.gosched {
			runtime.Gosched()
		}
		rec.Cancel()
	default:
		btAwait(t, rec)
	}
	synctest.Wait()
	if asrc != nil {
		asrc.Wait()
	}

	want := pmWant(p.n, triple)
	got := btItems(rec)
	result := rec.Outcome()
	all := drops.All()
	if taken := fl.taken.Load(); taken != int64(len(got)+len(all)) {
		t.Fatalf("%s: taken %d, delivered %d + dropped %d", name, taken, len(got), len(all))
	}
	reasons := drops.Counts()
	switch {
	case result == "complete":
		if p.mode == 3 && p.endAt < p.n {
			t.Fatalf("%s: completed although item %d failed", name, p.endAt)
		}
		if !p.ordered {
			want, got = pmSorted(want), pmSorted(got)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s: items (-want +got):\n%s", name, diff)
		}
		if len(all) != 0 {
			t.Fatalf("%s: completed stream dropped %v", name, reasons)
		}
	case p.mode == 3:
		if !errors.Is(rec.Err(), errBoom) || !strings.HasPrefix(rec.Err().Error(), "pm: ") {
			t.Fatalf("%s: error %v", name, rec.Err())
		}
		if reasons[flow.ReasonError] != 1 || len(reasons) > 2 {
			t.Fatalf("%s: drops %v, want one ReasonError", name, reasons)
		}
	case p.mode == 0:
		t.Fatalf("%s: result %q", name, result)
	default:
		if result != "open" {
			t.Fatalf("%s: cancelled stream ended with %q", name, result)
		}
		if len(reasons) > 1 || (len(reasons) == 1 && reasons[flow.ReasonCancelled] == 0) {
			t.Fatalf("%s: drops %v, want only ReasonCancelled", name, reasons)
		}
		if p.mode == 1 && len(got) != p.endAt+1 {
			t.Fatalf("%s: %d items after cancelling at %d", name, len(got), p.endAt+1)
		}
	}
	if p.ordered {
		if len(got) > len(want) || !slices.Equal(want[:len(got)], got) {
			t.Fatalf("%s: ordered items are not a prefix: %v", name, got)
		}
	} else {
		seen := map[int]bool{}
		for _, v := range got {
			if v%3 != 0 || v/3 >= p.n || seen[v] {
				t.Fatalf("%s: unexpected or repeated item %d", name, v)
			}
			seen[v] = true
		}
	}
}
