package operators_test

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
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// ---- helpers ----

// fiManual is a publisher driven by the test: Push emits items to the
// current subscriber (the test keeps within its demand), End ends it. It
// logs requests and cancels.
type fiManual[T any] struct {
	mu        sync.Mutex
	s         flow.Subscriber[T]
	requests  []int64
	cancelled bool
}

func (m *fiManual[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	m.mu.Lock()
	m.s = s
	m.mu.Unlock()
	s.OnSubscribe(fiManualSub[T]{m})
}

func (m *fiManual[T]) Push(vs ...T) {
	for _, v := range vs {
		m.s.OnNext(v)
	}
}

func (m *fiManual[T]) End(err error) {
	if err != nil {
		m.s.OnError(err)
	} else {
		m.s.OnComplete()
	}
}

func (m *fiManual[T]) Requests() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.requests)
}

func (m *fiManual[T]) Cancelled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cancelled
}

type fiManualSub[T any] struct{ m *fiManual[T] }

func (s fiManualSub[T]) Request(n int64) {
	s.m.mu.Lock()
	s.m.requests = append(s.m.requests, n)
	s.m.mu.Unlock()
}

func (s fiManualSub[T]) Cancel() {
	s.m.mu.Lock()
	s.m.cancelled = true
	s.m.mu.Unlock()
}

// fiCollect collects pub with an unbounded demand.
func fiCollect[T any](t *testing.T, pub flow.Publisher[T]) ([]T, error) {
	t.Helper()
	rec := flowtest.NewSubscriber[T](t, flow.Unbounded, btWait)
	pub.Subscribe(rec)
	btAwait(t, rec)
	return btItems(rec), rec.Err()
}

// fiSorted returns a sorted copy of vs.
func fiSorted(vs []int) []int {
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return vs
}

// fiPerSource splits items by source, where source = item / 1000.
func fiPerSource(vs []int) map[int][]int {
	m := map[int][]int{}
	for _, v := range vs {
		m[v/1000] = append(m[v/1000], v)
	}
	return m
}

// ---- Merge ----

func TestMergeDeliversEveryItemOfEverySourceInSourceOrder(t *testing.T) {
	single := scheduler.NewSingle()
	pool := scheduler.NewPool(2)
	t.Cleanup(func() { single.Close(); pool.Close() })
	for _, prefetch := range []int{1, 3, 256} {
		for _, kind := range []string{"sync", "async single", "async pool", "mixed"} {
			t.Run(fmt.Sprintf("%s/prefetch=%d", kind, prefetch), func(t *testing.T) {
				var srcs []flow.Publisher[int]
				var want []int
				for i, n := range []int{0, 1, 500, 37} {
					var src flow.Publisher[int] = sources.Range(1000*i, n)
					switch {
					case kind == "async single" || (kind == "mixed" && i%2 == 0):
						src = operators.PublishOn(src, single)
					case kind == "async pool":
						src = operators.PublishOn(src, pool)
					}
					srcs = append(srcs, src)
					want = append(want, btInts(1000*i, 1000*i+n)...)
				}
				got, err := fiCollect(t, operators.MergeWith(srcs, operators.Prefetch(prefetch)))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, fiSorted(got)); diff != "" {
					t.Errorf("items (-want +got)\n%s", diff)
				}
				if diff := cmp.Diff(fiPerSource(want), fiPerSource(got)); diff != "" {
					t.Errorf("order within a source (-want +got)\n%s", diff)
				}
			})
		}
	}
}

func TestMergeWithoutSourcesCompletesAtOnce(t *testing.T) {
	rec := flowtest.NewSubscriber[int](t, 0)
	operators.Merge[int]().Subscribe(rec)
	if got := rec.Outcome(); got != "complete" {
		t.Errorf("result %q, want complete", got)
	}
}

func TestMergeRequestsPrefetchPerSourceThenThreeQuarters(t *testing.T) {
	a, b := &btSource{n: 20}, &btSource{n: 3}
	rec := flowtest.NewSubscriber[int](t, 1, flowtest.RequestOnNext(1))
	operators.MergeWith([]flow.Publisher[int]{a, b}, operators.Prefetch(8)).Subscribe(rec)
	btAwait(t, rec)
	got := []string{line(a.Requests()), line(b.Requests()), rec.Outcome()}
	want := []string{"[8 6 6 6]", "[8]", "complete"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests of a, of b, result (-want +got)\n%s", diff)
	}
}

func TestMergeServesSourcesRoundRobin(t *testing.T) {
	// One item at a time: each source in turn, none starved by the other.
	a, b, c := &btSource{items: []int{0, 1, 2, 3}}, &btSource{items: []int{1000, 1001}}, &btSource{items: []int{2000, 2001, 2002}}
	rec := flowtest.NewSubscriber[int](t, 1, flowtest.RequestOnNext(1))
	operators.Merge[int](a, b, c).Subscribe(rec)
	btAwait(t, rec)
	want := []int{0, 1000, 2000, 1, 1001, 2001, 2, 2002, 3}
	if diff := cmp.Diff(want, btItems(rec)); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestMergeWaitsForDemandAndCompletesWithoutIt(t *testing.T) {
	a, b := &btSource{n: 2}, &btSource{items: []int{1000}}
	rec := flowtest.NewSubscriber[int](t, 0)
	operators.Merge[int](a, b).Subscribe(rec)
	got := []string{line(btItems(rec), rec.Outcome())}
	rec.Request(2)
	got = append(got, line(btItems(rec), rec.Outcome()))
	rec.Request(1)
	got = append(got, line(btItems(rec), rec.Outcome()))
	// A visit takes up to 75 % of the prefetch from one source; the next
	// sweep starts at the next source.
	want := []string{"[] open", "[0 1] open", "[0 1 1000] complete"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestMergeErrors(t *testing.T) {
	tests := []struct {
		name      string
		opts      []operators.Option
		before    string // after subscribing, with no demand
		after     string // after requesting 100
		wantDrops []btDrop[int]
	}{
		{"after the queued items by default", nil,
			"[] open", "[0 1 2 1000 1001 1002 3] error: boom", nil},
		{"at once with DelayError(false)", []operators.Option{operators.DelayError(false)},
			"[] error: boom", "[] error: boom",
			append(btDropsOf(flow.ReasonCancelled, 0, 1, 2, 3), btDropsOf(flow.ReasonCancelled, 1000, 1001, 1002)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			long := &btSource{n: 100}
			failing := &btSource{items: []int{1000, 1001, 1002}, err: errBoom}
			drops := &btDrops[int]{}
			opts := append([]operators.Option{operators.Prefetch(4), operators.OnDrop(drops.Hook)}, tt.opts...)
			rec := flowtest.NewSubscriber[int](t, 0)
			operators.MergeWith([]flow.Publisher[int]{long, failing}, opts...).Subscribe(rec)
			got := []string{line(btItems(rec), rec.Outcome())}
			rec.Request(100)
			got = append(got, line(btItems(rec), rec.Outcome()))
			if diff := cmp.Diff([]string{tt.before, tt.after}, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if !errors.Is(rec.Err(), errBoom) {
				t.Errorf("error %v does not match errBoom", rec.Err())
			}
			if got := line(long.Requests(), long.Cancels()); got != "[4] 1" {
				t.Errorf("requests and cancels of the other source: %s, want [4] 1", got)
			}
			if diff := cmp.Diff(tt.wantDrops, drops.All()); diff != "" {
				t.Errorf("drops (-want +got)\n%s", diff)
			}
		})
	}
}

func TestMergeCancelDropsTheQueueAndCancelsEverySource(t *testing.T) {
	a, b := &btSource{n: 10}, &btSource{items: []int{1000, 1001}}
	drops := &btDrops[int]{}
	rec := flowtest.NewSubscriber[int](t, 3)
	operators.MergeWith([]flow.Publisher[int]{a, b}, operators.Prefetch(4), operators.OnDrop(drops.Hook)).Subscribe(rec)
	rec.Cancel()
	rec.Request(5) // after Cancel: nothing
	got := line(btItems(rec), rec.Outcome(), a.Cancels(), b.Cancels())
	// Three items from a (a visit takes up to 3 with prefetch 4), which
	// replenished a by 3. b has completed, but its queue was not drained:
	// it is cancelled too.
	if want := "[0 1 2] open 1 1"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	want := btDropsOf(flow.ReasonCancelled, 3, 4, 5, 6, 1000, 1001)
	if diff := cmp.Diff(want, drops.All()); diff != "" {
		t.Errorf("drops (-want +got)\n%s", diff)
	}
}

func TestMergeNonPositiveRequest(t *testing.T) {
	a := &btSource{n: 10}
	rec := flowtest.NewSubscriber[int](t, 0)
	operators.Merge[int](a, sources.Range(0, 5)).Subscribe(rec)
	rec.Request(0)
	if !errors.Is(rec.Err(), flow.ErrNonPositiveRequest) {
		t.Errorf("error %v, want ErrNonPositiveRequest", rec.Err())
	}
	if a.Cancels() != 1 {
		t.Errorf("source cancelled %d times, want 1", a.Cancels())
	}
}

// fiGreedy ignores demand: it emits n items as soon as it is subscribed.
type fiGreedy struct{ n int }

func (g fiGreedy) Subscribe(s flow.Subscriber[int]) {
	s.OnSubscribe(&btSubscriptionSpy{})
	for i := range g.n {
		s.OnNext(i)
	}
}

func TestMergeSourceBeyondDemandIsAnOverflow(t *testing.T) {
	drops := &btDrops[int]{}
	rec := flowtest.NewSubscriber[int](t, 0)
	operators.MergeWith([]flow.Publisher[int]{fiGreedy{4}}, operators.Prefetch(2), operators.Name("m"),
		operators.OnDrop(drops.Hook)).Subscribe(rec)
	got := []string{line(btItems(rec), rec.Outcome())}
	rec.Request(10) // the error comes after the items that fitted
	got = append(got, line(btItems(rec), rec.Outcome()))
	want := []string{"[] open", "[0 1] error: m: sluice: buffer overflow: a source emitted more than requested"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if !errors.Is(rec.Err(), flow.ErrOverflow) {
		t.Errorf("error %v, want ErrOverflow", rec.Err())
	}
	if diff := cmp.Diff(btDropsOf(flow.ReasonOverflow, 2, 3), drops.All()); diff != "" {
		t.Errorf("drops (-want +got)\n%s", diff)
	}
}

func TestFanInPanicsOnInvalidArguments(t *testing.T) {
	var nilPub flow.Publisher[int]
	f := func(int) flow.Publisher[int] { return nil }
	tests := map[string]func(){
		"sluice: Merge: nil source":         func() { operators.Merge(sources.Range(0, 1), nilPub) },
		"sluice: Concat: nil source":        func() { operators.Concat(nilPub) },
		"sluice: Zip: nil source":           func() { operators.Zip2(nilPub, sources.Range(0, 1), func(a, b int) int { return a }) },
		"sluice: Zip: nil function":         func() { operators.ZipN[int, int]([]flow.Publisher[int]{sources.Range(0, 1)}, nil) },
		"sluice: Zip: no sources":           func() { operators.ZipN(nil, func([]int) int { return 0 }) },
		"sluice: FlatMap: nil source":       func() { operators.FlatMap(nilPub, f) },
		"sluice: FlatMap: nil function":     func() { operators.FlatMap[int, int](sources.Range(0, 1), nil) },
		"sluice: MergePriority: nil source": func() { operators.MergePriority([]operators.PrioritySource[int]{{}}) },
		"sluice: Aging: d <= 0":             func() { operators.Aging(0) },
	}
	for want, build := range tests {
		t.Run(want, func(t *testing.T) {
			defer func() {
				if got := recover(); got != want {
					t.Errorf("panic %v, want %q", got, want)
				}
			}()
			build()
		})
	}
}

// ---- Concat ----

func TestConcatEmitsSourcesOneAfterTheOther(t *testing.T) {
	single := scheduler.NewSingle()
	t.Cleanup(func() { single.Close() })
	got, err := fiCollect(t, operators.Concat(
		sources.Range(0, 3), sources.Empty[int](), operators.PublishOn(sources.Range(10, 2), single), sources.Just(20)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{0, 1, 2, 10, 11, 20}, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	rec := flowtest.NewSubscriber[int](t, 0)
	operators.Concat[int]().Subscribe(rec)
	if rec.Outcome() != "complete" {
		t.Errorf("Concat() did not complete at once")
	}
}

func TestConcatCarriesDemandAcrossSources(t *testing.T) {
	a, b, c := &btSource{n: 3}, &btSource{items: []int{10, 11, 12, 13, 14}}, &btSource{n: 0}
	rec := flowtest.NewSubscriber[int](t, 4)
	operators.Concat[int](a, b, c).Subscribe(rec)
	got := []string{line(btItems(rec), a.Requests(), b.Requests(), c.Requests(), rec.Outcome())}
	rec.Request(10)
	got = append(got, line(btItems(rec), a.Requests(), b.Requests(), c.Requests(), rec.Outcome()))
	want := []string{
		"[0 1 2 10] [4] [1] [] open",
		// c gets the 6 items of demand that a and b did not use.
		"[0 1 2 10 11 12 13 14] [4] [1 10] [6] complete",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestConcatOfManySynchronousSourcesDoesNotRecurse(t *testing.T) {
	const n = 20000
	srcs := make([]flow.Publisher[int], n)
	for i := range srcs {
		if i%2 == 0 {
			srcs[i] = sources.Just(i)
		} else {
			srcs[i] = sources.Empty[int]()
		}
	}
	var deepest int
	pcs := make([]uintptr, 512)
	var count int
	err := sinks.ForEach(context.Background(), operators.Concat(srcs...), func(int) error {
		count++
		deepest = max(deepest, runtime.Callers(0, pcs))
		return nil
	})
	if count != n/2 || err != nil {
		t.Fatal(count, err)
	}
	if deepest > 100 {
		t.Errorf("stack depth %d in OnNext: Concat recurses", deepest)
	}
}

func TestConcatErrorStopsAndCancelStops(t *testing.T) {
	t.Run("error", func(t *testing.T) {
		third := &btSource{n: 3}
		got, err := fiCollect(t, operators.Concat(sources.Range(0, 2), sources.Error[int](errBoom), third))
		if diff := cmp.Diff([]int{0, 1}, got); diff != "" || !errors.Is(err, errBoom) {
			t.Errorf("err %v, items (-want +got)\n%s", err, diff)
		}
		if third.Requests() != nil {
			t.Errorf("the source after the error was requested: %v", third.Requests())
		}
	})
	t.Run("cancel", func(t *testing.T) {
		first, second := &btSource{n: 5}, &btSource{n: 5}
		rec := flowtest.NewSubscriber[int](t, 2)
		operators.Concat[int](first, second).Subscribe(rec)
		rec.Cancel()
		rec.Request(10)
		got := line(btItems(rec), rec.Outcome(), first.Cancels(), second.Requests())
		if want := "[0 1] open 1 []"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("non-positive request", func(t *testing.T) {
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.Concat(sources.Range(0, 3)).Subscribe(rec)
		rec.Request(-1)
		if !errors.Is(rec.Err(), flow.ErrNonPositiveRequest) {
			t.Errorf("error %v, want ErrNonPositiveRequest", rec.Err())
		}
	})
}

// ---- Zip ----

func TestZip2PairsByPositionAndEndsWithTheShortest(t *testing.T) {
	long := &btSource{n: 10}
	short := sources.Just("a", "b", "c")
	got, err := fiCollect(t, operators.Zip2(long, short, func(i int, s string) string { return fmt.Sprint(i, s) }))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"0a", "1b", "2c"}, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if long.Cancels() != 1 {
		t.Errorf("longer source cancelled %d times, want 1", long.Cancels())
	}
}

func TestZipNCombinesRowsWithAsyncSources(t *testing.T) {
	pool := scheduler.NewPool(2)
	t.Cleanup(func() { pool.Close() })
	srcs := []flow.Publisher[int]{
		operators.PublishOn(sources.Range(0, 1000), pool),
		sources.Range(1000, 900),
		operators.PublishOn(sources.Range(2000, 2000), pool, operators.Prefetch(7)),
	}
	got, err := fiCollect(t, operators.ZipN(srcs, func(row []int) [3]int { return [3]int(row) }, operators.Prefetch(5)))
	if err != nil {
		t.Fatal(err)
	}
	var want [][3]int
	for i := range 900 {
		want = append(want, [3]int{i, 1000 + i, 2000 + i})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestZipRequestsAndTermination(t *testing.T) {
	t.Run("prefetch then three quarters", func(t *testing.T) {
		a, b := &btSource{n: 10}, &btSource{n: 10}
		rec := flowtest.NewSubscriber[int](t, 1, flowtest.RequestOnNext(1))
		operators.Zip2(a, b, func(x, y int) int { return x + y }, operators.Prefetch(4)).Subscribe(rec)
		btAwait(t, rec)
		got := line(a.Requests(), b.Requests(), btItems(rec), rec.Outcome())
		if want := "[4 3 3 3] [4 3 3 3] [0 2 4 6 8 10 12 14 16 18] complete"; got != want {
			t.Errorf("got %s\nwant %s", got, want)
		}
	})
	t.Run("completes without demand when a source is empty", func(t *testing.T) {
		other := &btSource{n: 3}
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.Zip2(other, sources.Empty[int](), func(x, y int) int { return x }).Subscribe(rec)
		if got := line(rec.Outcome(), other.Cancels()); got != "complete 1" {
			t.Errorf("got %s, want complete 1", got)
		}
	})
	t.Run("source error at once", func(t *testing.T) {
		other := &btSource{n: 3}
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.Zip2(other, &btSource{n: 2, err: errBoom}, func(x, y int) int { return x }).Subscribe(rec)
		if got := line(btItems(rec), rec.Outcome(), other.Cancels()); got != "[] error: boom 1" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("combiner panic", func(t *testing.T) {
		a, b := &btSource{n: 5}, &btSource{n: 5}
		rec := flowtest.NewSubscriber[int](t, flow.Unbounded)
		operators.Zip2(a, b, func(x, y int) int {
			if x == 2 {
				panic("bad row")
			}
			return x
		}, operators.Name("z")).Subscribe(rec)
		var pe *flow.PanicError
		if !errors.As(rec.Err(), &pe) || pe.Value != "bad row" {
			t.Fatalf("error %v, want a PanicError", rec.Err())
		}
		if got := line(btItems(rec), rec.Err(), a.Cancels(), b.Cancels()); got != "[0 1] z: sluice: panic: bad row 1 1" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("cancel and non-positive request", func(t *testing.T) {
		a, b := &btSource{n: 5}, &btSource{n: 5}
		rec := flowtest.NewSubscriber[int](t, 1)
		operators.Zip2(a, b, func(x, y int) int { return x }).Subscribe(rec)
		rec.Request(0)
		got := line(btItems(rec), errors.Is(rec.Err(), flow.ErrNonPositiveRequest), a.Cancels(), b.Cancels())
		if got != "[0] true 1 1" {
			t.Errorf("got %s", got)
		}
	})
}

// ---- FlatMap ----

func TestFlatMapMergesInnerSources(t *testing.T) {
	pool := scheduler.NewPool(2)
	t.Cleanup(func() { pool.Close() })
	for _, conc := range []int{1, 3, 16} {
		for _, async := range []bool{false, true} {
			t.Run(fmt.Sprintf("concurrency=%d/async=%v", conc, async), func(t *testing.T) {
				inner := func(v int) flow.Publisher[int] {
					var p flow.Publisher[int] = sources.Range(1000*v, v%4*10)
					if async {
						p = operators.PublishOn(p, pool, operators.Prefetch(3))
					}
					return p
				}
				var want []int
				for v := range 50 {
					want = append(want, btInts(1000*v, 1000*v+v%4*10)...)
				}
				got, err := fiCollect(t, operators.FlatMap(sources.Range(0, 50), inner,
					operators.Concurrency(conc), operators.Prefetch(4)))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, fiSorted(got)); diff != "" {
					t.Errorf("items (-want +got)\n%s", diff)
				}
				if diff := cmp.Diff(fiPerSource(want), fiPerSource(got)); diff != "" {
					t.Errorf("order within an inner source (-want +got)\n%s", diff)
				}
			})
		}
	}
}

func TestFlatMapOrderedKeepsTheOuterOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Later inner sources finish first: inner v waits (20-v) ms, on
		// a goroutine of its own.
		tagged := func(v int) flow.Publisher[int] {
			src := &btTimedSource{gaps: []time.Duration{time.Duration(20-v) * time.Millisecond, 0, 0}, end: time.Millisecond}
			return operators.Map(src, func(i int) int { return 1000*v + i })
		}
		got, err := sinks.Collect(context.Background(),
			operators.FlatMap(sources.Range(0, 20), tagged, operators.Ordered(), operators.Concurrency(4)))
		if err != nil {
			t.Fatal(err)
		}
		var want []int
		for v := range 20 {
			want = append(want, 1000*v, 1000*v+1, 1000*v+2)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestFlatMapRequestsConcurrencyThenOnePerFinishedInner(t *testing.T) {
	t.Run("synchronous inners", func(t *testing.T) {
		outer := &btSource{n: 5}
		got, err := fiCollect(t, operators.FlatMap(outer, func(v int) flow.Publisher[int] { return sources.Just(v) },
			operators.Concurrency(2)))
		if diff := cmp.Diff([]int{0, 1, 2, 3, 4}, got); diff != "" || err != nil {
			t.Errorf("err %v, items (-want +got)\n%s", err, diff)
		}
		if diff := cmp.Diff([]int64{2, 1, 1, 1, 1, 1}, outer.Requests()); diff != "" {
			t.Errorf("outer requests (-want +got)\n%s", diff)
		}
	})
	t.Run("never more than n live inners", func(t *testing.T) {
		outer := &btSource{n: 10}
		inners := make([]*fiManual[int], 10)
		for i := range inners {
			inners[i] = &fiManual[int]{}
		}
		rec := flowtest.NewSubscriber[int](t, flow.Unbounded)
		for _, ordered := range []bool{false, true} {
			opts := []operators.Option{operators.Concurrency(3), operators.Prefetch(5)}
			if ordered {
				opts = append(opts, operators.Ordered())
				outer = &btSource{n: 10}
				for i := range inners {
					inners[i] = &fiManual[int]{}
				}
				rec = flowtest.NewSubscriber[int](t, flow.Unbounded)
			}
			operators.FlatMap(outer, func(v int) flow.Publisher[int] { return inners[v] }, opts...).Subscribe(rec)
			got := []string{line(outer.Requests(), inners[0].Requests(), inners[2].Requests(), inners[3].Requests())}
			inners[1].Push(10, 11)
			inners[1].End(nil) // frees a slot: the outer sends 3
			inners[2].Push(20)
			inners[0].Push(0)
			got = append(got, line(outer.Requests(), inners[3].Requests(), btItems(rec)))
			inners[0].End(nil)
			got = append(got, line(outer.Requests(), inners[4].Requests(), btItems(rec)))
			want := []string{"[3] [5] [5] []", "[3 1] [5] [10 11 20 0]", "[3 1 1] [5] [10 11 20 0]"}
			if ordered {
				// Inner 1 is done but waits behind inner 0: its slot is
				// given back only when inner 0 is done.
				want = []string{"[3] [5] [5] []", "[3] [] [0]", "[3 2] [5] [0 10 11 20]"}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ordered=%v (-want +got)\n%s", ordered, diff)
			}
			rec.Cancel()
		}
	})
}

func TestFlatMapErrors(t *testing.T) {
	t.Run("panic in f", func(t *testing.T) {
		outer := &btSource{n: 10}
		other := &fiManual[int]{}
		got, err := fiCollect(t, operators.FlatMap(outer, func(v int) flow.Publisher[int] {
			if v == 1 {
				panic("bad item")
			}
			return other
		}, operators.Name("fm")))
		var pe *flow.PanicError
		if !errors.As(err, &pe) || err.Error() != "fm: sluice: panic: bad item" || got != nil {
			t.Errorf("items %v, error %v, want fm: sluice: panic: bad item", got, err)
		}
		if outer.Cancels() != 1 || !other.Cancelled() {
			t.Errorf("outer cancelled %d times, inner cancelled %v", outer.Cancels(), other.Cancelled())
		}
	})
	t.Run("nil inner", func(t *testing.T) {
		_, err := fiCollect(t, operators.FlatMap(sources.Range(0, 3), func(int) flow.Publisher[int] { return nil },
			operators.Name("fm")))
		if err == nil || err.Error() != "fm: f returned a nil Publisher" {
			t.Errorf("error %v", err)
		}
	})
	t.Run("inner error at once, queued items dropped", func(t *testing.T) {
		outer := &btSource{n: 10}
		a, b := &fiManual[int]{}, &fiManual[int]{}
		drops := &btDrops[int]{}
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.FlatMap(outer, func(v int) flow.Publisher[int] { return []*fiManual[int]{a, b}[v%2] },
			operators.Concurrency(2), operators.OnDrop(drops.Hook)).Subscribe(rec)
		a.Push(1, 2)
		b.End(errBoom)
		got := line(btItems(rec), rec.Outcome(), outer.Cancels(), a.Cancelled())
		if want := "[] error: boom 1 true"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
		if diff := cmp.Diff(btDropsOf(flow.ReasonCancelled, 1, 2), drops.All()); diff != "" {
			t.Errorf("drops (-want +got)\n%s", diff)
		}
	})
	t.Run("outer error after the queued items with DelayError(true)", func(t *testing.T) {
		a := &fiManual[int]{}
		outer := &fiManual[int]{}
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.FlatMap(outer, func(v int) flow.Publisher[int] { return a }, operators.DelayError(true)).Subscribe(rec)
		outer.Push(0)
		a.Push(1, 2)
		outer.End(errBoom)
		got := []string{line(btItems(rec), rec.Outcome(), a.Cancelled())}
		rec.Request(5)
		got = append(got, line(btItems(rec), rec.Outcome()))
		if diff := cmp.Diff([]string{"[] open true", "[1 2] error: boom"}, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

// ---- MergePriority ----

func TestMergePriorityServesHigherPriorityFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lo, hi := &btSource{n: 3}, &btSource{items: []int{100, 101, 102}}
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.MergePriority([]operators.PrioritySource[int]{{Source: lo}, {Source: hi, Priority: 5}}).Subscribe(rec)
		rec.Request(4)
		got := []string{line(btItems(rec), rec.Outcome())}
		rec.Request(2)
		got = append(got, line(btItems(rec), rec.Outcome()))
		if diff := cmp.Diff([]string{"[100 101 102 0] open", "[100 101 102 0 1 2] complete"}, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestMergePriorityAgingPreventsStarvation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lo := &btSource{n: 2}  // queued at t=0
		hi := &fiManual[int]{} // pushed later, always fresh
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.MergePriority([]operators.PrioritySource[int]{{Source: lo}, {Source: hi, Priority: 2}},
			operators.Aging(100*time.Millisecond)).Subscribe(rec)
		var got []string
		start := time.Now()
		sleepUntil := func(d time.Duration) { time.Sleep(d - time.Since(start)) }
		// t=150ms: lo has waited 1 step (effective 1) < hi's 2.
		sleepUntil(150 * time.Millisecond)
		hi.Push(100)
		rec.Request(1)
		got = append(got, line(btItems(rec)))
		// t=350ms: lo has waited 3 steps (effective 3) > hi's 2.
		sleepUntil(350 * time.Millisecond)
		hi.Push(101)
		rec.Request(1)
		got = append(got, line(btItems(rec)))
		// t=350ms: lo's second item (3) still beats hi's fresh one (2).
		rec.Request(1)
		got = append(got, line(btItems(rec)))
		// lo is drained: hi again.
		rec.Request(1)
		got = append(got, line(btItems(rec), rec.Outcome()))
		want := []string{"[100]", "[100 0]", "[100 0 1]", "[100 0 1 101] open"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		hi.End(nil)
		if rec.Outcome() != "complete" {
			t.Errorf("result %s, want complete", rec.Outcome())
		}
	})
}

func TestMergePriorityErrorAndCancel(t *testing.T) {
	t.Run("error after queued items", func(t *testing.T) {
		ok := &btSource{n: 100}
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.MergePriority([]operators.PrioritySource[int]{{Source: ok, Priority: 1},
			{Source: &btSource{items: []int{1000}, err: errBoom}}}, operators.Prefetch(2)).Subscribe(rec)
		rec.Request(10)
		if got := line(btItems(rec), rec.Outcome(), ok.Cancels()); got != "[0 1 1000] error: boom 1" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("cancel drops", func(t *testing.T) {
		drops := &btDrops[int]{}
		ok := &btSource{n: 100}
		rec := flowtest.NewSubscriber[int](t, 1)
		operators.MergePriority([]operators.PrioritySource[int]{{Source: ok}}, operators.Prefetch(3),
			operators.OnDrop(drops.Hook)).Subscribe(rec)
		rec.Cancel()
		if diff := cmp.Diff(btDropsOf(flow.ReasonCancelled, 1, 2), drops.All()); diff != "" || ok.Cancels() != 1 {
			t.Errorf("cancels %d, drops (-want +got)\n%s", ok.Cancels(), diff)
		}
	})
}

// ---- stress ----

// Random sources (sync and async), random prefetch, random downstream
// demand, sometimes a failing source, and a cancel at a random point, in
// OnNext or from another goroutine, for every fan-in stage. Each run is in
// a synctest bubble only so that synctest.Wait can tell when every
// goroutine has gone quiet before the pool is closed (closing a
// scheduler under a live PublishOn is another test's matter); time plays
// no part. Once the pool is closed: no
// protocol violation; the stream completed with the exact expected items,
// or was cancelled with items that are an in-order prefix of each source;
// and every item that reached the stage was delivered or dropped.
func TestFanInStressRandomDemandAndCancel(t *testing.T) {
	iterations := 200
	if testing.Short() {
		iterations = 40
	}
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 2))
	stages := []string{"merge", "mergeNoDelay", "concat", "flatMap", "flatMapOrdered", "priority", "zip"}
	for it := range iterations {
		synctest.Test(t, func(t *testing.T) {
			stageName := stages[it%len(stages)]
			cancelMode := rng.IntN(3) // 0 never, 1 in OnNext, 2 from another goroutine
			nsrc := 1 + rng.IntN(4)
			name := fmt.Sprintf("seed=%d/it=%d/%s/sources=%d/cancel=%d", seed, it, stageName, nsrc, cancelMode)
			pool := scheduler.NewPool(2)
			defer pool.Close() // on failure; Close is idempotent

			var reached, dropped atomic.Int64
			tap := func(p flow.Publisher[int]) flow.Publisher[int] {
				return operators.Tap(p, func(int) { reached.Add(1) })
			}
			mk := func(from, n int) flow.Publisher[int] {
				var p flow.Publisher[int] = sources.Range(from, n)
				if rng.IntN(2) == 0 {
					p = operators.PublishOn(p, pool, operators.Prefetch(1+rng.IntN(50)))
				}
				return p
			}
			opts := []operators.Option{operators.Prefetch(1 + rng.IntN(40)),
				operators.OnDrop(func(int, flow.DropReason) { dropped.Add(1) })}
			var srcs []flow.Publisher[int]
			var want []int
			lens := make([]int, nsrc)
			// Sometimes the last source fails after its items.
			failing := stageName != "concat" && stageName != "zip" && rng.IntN(4) == 0
			for i := range nsrc {
				lens[i] = rng.IntN(400)
				src := mk(1000*i, lens[i])
				if failing && i == nsrc-1 {
					src = operators.Concat(src, sources.Error[int](errBoom))
					name += "/failing"
				}
				srcs = append(srcs, tap(src))
				want = append(want, btInts(1000*i, 1000*i+lens[i])...)
			}
			var pub flow.Publisher[int]
			zipped := false
			switch stageName {
			case "merge":
				pub = operators.MergeWith(srcs, opts...)
			case "mergeNoDelay":
				pub = operators.MergeWith(srcs, append(opts, operators.DelayError(false))...)
			case "concat":
				pub = operators.Concat(srcs...)
			case "flatMap", "flatMapOrdered":
				if stageName == "flatMapOrdered" {
					opts = append(opts, operators.Ordered())
				}
				opts = append(opts, operators.Concurrency(1+rng.IntN(4)))
				pub = operators.FlatMap(sources.Range(0, nsrc), func(i int) flow.Publisher[int] { return srcs[i] }, opts...)
			case "priority":
				var ps []operators.PrioritySource[int]
				for i, s := range srcs {
					ps = append(ps, operators.PrioritySource[int]{Source: s, Priority: i % 2})
				}
				pub = operators.MergePriority(ps, opts...)
			case "zip":
				zipped = true
				pub = operators.ZipN(srcs, func(row []int) int { return row[0] }, opts[0])
				want = btInts(0, slices.Min(lens))
			}

			initial, each := 1+rng.Int64N(300), rng.Int64N(3)
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
			pub.Subscribe(hooked)
			switch cancelMode {
			case 0:
				btAwait(t, rec)
			case 1:
				select {
				case <-cancelled:
				case <-hooked.ended:
				}
			case 2:
				for range rng.IntN(200) {
					runtime.Gosched()
				}
				rec.Cancel()
			}
			synctest.Wait() // quiescent: no stage acts on a closing pool
			pool.Close()

			got := btItems(rec)
			result := rec.Outcome()
			if v := rec.Violations(); len(v) > 0 {
				t.Fatalf("%s: violations %v", name, v)
			}
			ordered := stageName == "concat" || stageName == "flatMapOrdered" || zipped
			switch {
			case failing && result != "open":
				if !errors.Is(rec.Err(), errBoom) {
					t.Fatalf("%s: result %q, want boom", name, result)
				}
				last := fiPerSource(got)[nsrc-1]
				if delayed := stageName == "merge" || stageName == "priority"; delayed && len(last) != lens[nsrc-1] {
					t.Fatalf("%s: %d items of the failing source before its error, want all %d", name, len(last), lens[nsrc-1])
				}
				for src, vs := range fiPerSource(got) {
					if !slices.Equal(btInts(1000*src, 1000*src+len(vs)), vs) {
						t.Fatalf("%s: items of source %d are not a prefix: %v", name, src, vs)
					}
				}
			case cancelMode == 0 || result == "complete":
				if result != "complete" {
					t.Fatalf("%s: result %q", name, result)
				}
				g := got
				if !ordered {
					g = fiSorted(got)
				}
				if diff := cmp.Diff(want, g); diff != "" {
					t.Fatalf("%s: items (-want +got)\n%s", name, diff)
				}
			default:
				if result != "open" {
					t.Fatalf("%s: cancelled stream ended with %q", name, result)
				}
				if ordered {
					if len(got) > len(want) || !slices.Equal(want[:len(got)], got) {
						t.Fatalf("%s: items are not a prefix of the stream: %v", name, got)
					}
				} else {
					for src, vs := range fiPerSource(got) {
						if !slices.Equal(btInts(1000*src, 1000*src+len(vs)), vs) {
							t.Fatalf("%s: items of source %d are not a prefix: %v", name, src, vs)
						}
					}
				}
				if cancelMode == 1 && len(got) != cancelAt {
					t.Fatalf("%s: %d items after cancelling at %d", name, len(got), cancelAt)
				}
			}
			if !zipped && stageName != "concat" {
				if r, d := reached.Load(), dropped.Load(); r != int64(len(got))+d {
					t.Fatalf("%s: %d items reached the stage, %d delivered + %d dropped", name, r, len(got), d)
				}
			}
		})
	}
}
