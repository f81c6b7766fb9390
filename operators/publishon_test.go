package operators_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/internal/stage"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// line formats its arguments separated by spaces.
func line(args ...any) string { return strings.TrimSuffix(fmt.Sprintln(args...), "\n") }

func TestPublishOnDeliversEveryItemInOrder(t *testing.T) {
	for sname, s := range asyncSchedulers(t) {
		for _, prefetch := range []int{1, 3, 256} {
			for _, n := range []int{0, 1, 1000} {
				t.Run(fmt.Sprintf("%s/prefetch=%d/n=%d", sname, prefetch, n), func(t *testing.T) {
					pubs := map[string]flow.Publisher[int]{
						"sync source":  &btSource{n: n},
						"async source": &btAsyncSource{n: n},
						"two hops": operators.PublishOn(
							operators.PublishOn(sources.Range(0, n), s, operators.Prefetch(prefetch)), s),
					}
					for pname, src := range pubs {
						got, err := sinks.Collect(context.Background(), operators.PublishOn(src, s, operators.Prefetch(prefetch)))
						if err != nil {
							t.Fatalf("%s: %v", pname, err)
						}
						if diff := cmp.Diff(btInts(0, n), got); diff != "" {
							t.Errorf("%s: (-want +got)\n%s", pname, diff)
						}
						if a, ok := src.(*btAsyncSource); ok {
							a.Wait()
						}
					}
				})
			}
		}
	}
}

func TestPublishOnRequestsPrefetchThenThreeQuarters(t *testing.T) {
	// The upstream pattern does not depend on the downstream's: P at
	// first, then P - P/4 each time P - P/4 items have been consumed.
	tests := []struct {
		name              string
		prefetch, n       int
		initial, each     int64
		wantRequestsOfSrc []int64
	}{
		{"prefetch 8, sink batches", 8, 20, 256, 0, []int64{8, 6, 6, 6}},
		{"prefetch 8, one at a time", 8, 20, 1, 1, []int64{8, 6, 6, 6}},
		{"prefetch 1", 1, 3, 1, 1, []int64{1, 1, 1, 1}},
		{"prefetch 4, unbounded sink", 4, 10, flow.Unbounded, 0, []int64{4, 3, 3, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := scheduler.NewSingle()
				defer s.Close()
				src := &btSource{n: tt.n}
				rec := flowtest.NewSubscriber[int](t, tt.initial, append(btOpts(tt.each, 0), btWait)...)
				operators.PublishOn(src, s, operators.Prefetch(tt.prefetch)).Subscribe(rec)
				btAwait(t, rec)
				if diff := cmp.Diff(tt.wantRequestsOfSrc, src.Requests()); diff != "" {
					t.Errorf("requests upstream (-want +got)\n%s", diff)
				}
				if diff := cmp.Diff(btInts(0, tt.n), btItems(rec)); diff != "" {
					t.Errorf("items (-want +got)\n%s", diff)
				}
				if got := rec.Outcome(); got != "complete" {
					t.Errorf("result %q, want complete", got)
				}
			})
		})
	}
}

func TestPublishOnWaitsForDemandAndDeliversTerminalWithoutIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewPool(2)
		defer s.Close()
		src := &btSource{n: 5}
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.PublishOn(src, s).Subscribe(rec)
		synctest.Wait()
		// Prefetched, nothing delivered without demand.
		got := []string{line(src.Requests(), btItems(rec), rec.Outcome())}
		rec.Request(3)
		synctest.Wait()
		got = append(got, line(btItems(rec), rec.Outcome()))
		rec.Request(2)
		synctest.Wait()
		// The fifth item and OnComplete, which needs no demand of its own.
		got = append(got, line(btItems(rec), rec.Outcome()))
		want := []string{"[256] [] open", "[0 1 2] open", "[0 1 2 3 4] complete"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestPublishOnErrors(t *testing.T) {
	tests := []struct {
		name      string
		opts      []operators.Option
		before    string // after subscribing with no demand
		after     string // after requesting 3
		wantItems []int
		wantDrops []btDrop[int]
	}{
		{"delayed after the queued items by default", nil,
			"[] error: <nil>; open", "[0 1 2] error: boom", []int{0, 1, 2}, nil},
		{"at once with DelayError(false)", []operators.Option{operators.DelayError(false)},
			"[] error: boom; error: boom", "[] error: boom", nil, btDropsOf(flow.ReasonCancelled, 0, 1, 2)},
		{"last DelayError wins", []operators.Option{operators.DelayError(false), operators.DelayError(true)},
			"[] error: <nil>; open", "[0 1 2] error: boom", []int{0, 1, 2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := scheduler.NewSingle()
				defer s.Close()
				drops := &btDrops[int]{}
				rec := flowtest.NewSubscriber[int](t, 0)
				opts := append([]operators.Option{operators.OnDrop(drops.Hook)}, tt.opts...)
				operators.PublishOn(&btSource{n: 3, err: errBoom}, s, opts...).Subscribe(rec)
				synctest.Wait()
				got := []string{fmt.Sprintf("%v error: %v; %s", btItems(rec), rec.Err(), rec.Outcome())}
				rec.Request(3)
				synctest.Wait()
				got = append(got, fmt.Sprintf("%v %s", btItems(rec), rec.Outcome()))
				if diff := cmp.Diff([]string{tt.before, tt.after}, got); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
				if !errors.Is(rec.Err(), errBoom) {
					t.Errorf("error %v does not match errBoom", rec.Err())
				}
				if diff := cmp.Diff(tt.wantItems, btItems(rec)); diff != "" {
					t.Errorf("items (-want +got)\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantDrops, drops.All()); diff != "" {
					t.Errorf("drops (-want +got)\n%s", diff)
				}
			})
		})
	}
}

func TestPublishOnCancelDropsQueuedItemsAndCancelsUpstream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewSingle()
		defer s.Close()
		drops := &btDrops[int]{}
		src := &btSource{n: 10}
		rec := flowtest.NewSubscriber[int](t, 5, flowtest.CancelAfter(2))
		operators.PublishOn(src, s, operators.Prefetch(10), operators.OnDrop(drops.Hook)).Subscribe(rec)
		synctest.Wait()
		got := line(btItems(rec), rec.Outcome(), src.Requests(), src.Cancels())
		if want := "[0 1] open [10] 1"; got != want {
			t.Errorf("items, result, requests, cancels = %q, want %q", got, want)
		}
		if diff := cmp.Diff(btDropsOf(flow.ReasonCancelled, btInts(2, 10)...), drops.All()); diff != "" {
			t.Errorf("drops (-want +got)\n%s", diff)
		}
		rec.Cancel() // idempotent
		rec.Request(1)
		synctest.Wait()
		if got := line(btItems(rec), rec.Outcome(), src.Cancels(), len(drops.All())); got != "[0 1] open 1 8" {
			t.Errorf("after a second Cancel and a Request: %q", got)
		}
	})
}

func TestPublishOnPanicInDownstreamOnNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewSingle()
		defer s.Close()
		drops := &btDrops[int]{}
		src := &btSource{n: 10}
		rec := flowtest.NewSubscriber[int](t, 10)
		operators.PublishOn(src, s, operators.Name("hop"), operators.Prefetch(10), operators.OnDrop(drops.Hook)).Subscribe(btHook(rec, func(v int) {
			if v == 3 {
				panic("bad item")
			}
		}))
		synctest.Wait()
		got := line(btItems(rec), rec.Outcome(), src.Cancels())
		if want := "[0 1 2] error: hop: sluice: panic: bad item 1"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		var pe *flow.PanicError
		if !errors.As(rec.Err(), &pe) || pe.Value != "bad item" {
			t.Errorf("error %v is not the *flow.PanicError of the panic", rec.Err())
		}
		if diff := cmp.Diff(btDropsOf(flow.ReasonCancelled, btInts(4, 10)...), drops.All()); diff != "" {
			t.Errorf("drops (-want +got)\n%s", diff)
		}
	})
}

func TestPublishOnNonPositiveRequest(t *testing.T) {
	for _, n := range []int64{0, -1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := scheduler.NewSingle()
				defer s.Close()
				drops := &btDrops[int]{}
				src := &btSource{n: 4}
				rec := flowtest.NewSubscriber[int](t, 1)
				operators.PublishOn(src, s, operators.OnDrop(drops.Hook)).Subscribe(rec)
				synctest.Wait()
				rec.Request(n)
				synctest.Wait()
				if !errors.Is(rec.Err(), flow.ErrNonPositiveRequest) {
					t.Errorf("error %v does not match ErrNonPositiveRequest", rec.Err())
				}
				got := line(btItems(rec), src.Cancels(), drops.Counts())
				if want := "[0] 1 map[cancelled:3]"; got != want {
					t.Errorf("items, cancels, drops = %q, want %q", got, want)
				}
			})
		})
	}
}

func TestPublishOnClosedScheduler(t *testing.T) {
	s := scheduler.NewSingle()
	s.Close()
	src := &btSource{n: 10}
	got, err := sinks.Collect(context.Background(), operators.PublishOn(src, s))
	if !errors.Is(err, scheduler.ErrClosed) {
		t.Errorf("error %v does not match scheduler.ErrClosed", err)
	}
	if line(got, src.Requests(), src.Cancels()) != "[] [] 1" {
		t.Errorf("items, requests, cancels = %v %v %v, want none, none, 1", got, src.Requests(), src.Cancels())
	}
}

// greedySub is the subscription of a publisher that breaks rule 1.1: on
// its first Request it emits 5 items, whatever was asked; with runs, as
// one run when its subscriber takes runs (stage.BatchSubscriber).
type greedySub struct {
	s         flow.Subscriber[int]
	runs      bool
	sent      bool
	cancelled atomic.Bool
}

func (g *greedySub) Request(int64) {
	if g.sent {
		return
	}
	g.sent = true
	if b := stage.Batcher(g.s); g.runs && b != nil {
		b.OnNextBatch([]int{0, 1, 2, 3, 4})
		return
	}
	for i := range 5 {
		g.s.OnNext(i)
	}
}

func (g *greedySub) Cancel() { g.cancelled.Store(true) }

func TestPublishOnUpstreamEmittingBeyondDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewSingle()
		defer s.Close()
		g := &greedySub{}
		greedy := flow.PublisherFunc[int](func(sub flow.Subscriber[int]) {
			g.s = sub
			sub.OnSubscribe(g)
		})
		drops := &btDrops[int]{}
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.PublishOn(greedy, s, operators.Prefetch(2), operators.OnDrop(drops.Hook)).Subscribe(rec)
		synctest.Wait()
		if !errors.Is(rec.Err(), flow.ErrOverflow) {
			t.Errorf("error %v does not match flow.ErrOverflow", rec.Err())
		}
		if !g.cancelled.Load() {
			t.Error("upstream not cancelled")
		}
		want := append(btDropsOf(flow.ReasonOverflow, 2, 3, 4), btDropsOf(flow.ReasonCancelled, 0, 1)...)
		if diff := cmp.Diff(want, drops.All()); diff != "" {
			t.Errorf("drops (-want +got)\n%s", diff)
		}
	})
}

// countingScheduler counts the tasks scheduled on it.
type countingScheduler struct {
	scheduler.Scheduler
	tasks atomic.Int64
}

func (c *countingScheduler) Worker() scheduler.Worker { return countingWorker{c.Scheduler.Worker(), c} }

type countingWorker struct {
	scheduler.Worker
	c *countingScheduler
}

func (w countingWorker) Schedule(task func()) error {
	w.c.tasks.Add(1)
	return w.Worker.Schedule(task)
}

func TestPublishOnWakesTheWorkerOncePerBatchNotPerItem(t *testing.T) {
	single := scheduler.NewSingle()
	t.Cleanup(func() { single.Close() })
	for _, prefetch := range []int{1, 16, 256} {
		s := &countingScheduler{Scheduler: single}
		const n = 100000
		got, err := sinks.Reduce(context.Background(), operators.PublishOn(sources.Range(0, n), s, operators.Prefetch(prefetch)),
			0, func(acc, v int) int { return acc + v })
		if err != nil || got != n*(n-1)/2 {
			t.Fatalf("Reduce = %d, %v", got, err)
		}
		// The sink's first Request and the end of OnSubscribe may each
		// schedule the drain; after that the source runs inside it, on the
		// worker, and every later signal finds the loop active.
		if tasks := s.tasks.Load(); tasks > 2 {
			t.Errorf("prefetch %d: %d tasks scheduled for %d items, want at most 2", prefetch, tasks, n)
		}
	}
}

// Two PublishOn joined by a Map: the second publishes what it received at
// the end of each pass of the first, so an item that arrives alone is
// delivered at once, not when a batch has filled up.
func TestPublishOnLinkedHopsDeliverItemsThatArriveOneByOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		io, s1, s2 := scheduler.NewSingle(), scheduler.NewSingle(), scheduler.NewSingle()
		defer io.Close()
		defer s1.Close()
		defer s2.Close()
		ch := make(chan int)
		chain := operators.PublishOn(
			operators.Map(operators.PublishOn(operators.SubscribeOn(sources.FromChannel(ch), io), s1),
				func(v int) int { return v * 10 }),
			s2)
		rec := flowtest.NewSubscriber[int](t, 100, btWait)
		chain.Subscribe(rec)
		var got []string
		for i := range 4 {
			ch <- i
			synctest.Wait()
			got = append(got, line(btItems(rec)))
		}
		close(ch)
		btAwait(t, rec)
		got = append(got, rec.Outcome())
		want := []string{"[0]", "[0 10]", "[0 10 20]", "[0 10 20 30]", "complete"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}
