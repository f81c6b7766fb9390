package operators_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sources"
	"golang.org/x/time/rate"
)

// PublishOn over a source that emits only inside Request (Range, Slice:
// stage.SyncEmitter) delivers straight from the drain loop, without its
// queue. These tests pin what that mode requests upstream, where it
// delivers, and how it ends.

// btSyncSource is btSource whose subscription declares that it emits
// only inside Request, as Range and Slice do.
type btSyncSource struct{ btSource }

type btSyncSubscription struct{ *btSubscription }

func (btSyncSubscription) EmitsInRequest() bool { return true }

func (p *btSyncSource) Subscribe(s flow.Subscriber[int]) {
	flow.RequireSubscriber(s)
	sub := &btSubscription{p: &p.btSource, s: s}
	s.OnSubscribe(btSyncSubscription{sub})
}

// workerScheduler runs tasks on a Single and records, in onWorker, that
// the current goroutine is running one of them.
type workerScheduler struct {
	scheduler.Scheduler
	onWorker *atomic.Bool
}

func (w workerScheduler) Worker() scheduler.Worker {
	return markingWorker{w.Scheduler.Worker(), w.onWorker}
}

type markingWorker struct {
	scheduler.Worker
	onWorker *atomic.Bool
}

func (m markingWorker) Schedule(task func()) error {
	return m.Worker.Schedule(func() {
		m.onWorker.Store(true)
		defer m.onWorker.Store(false)
		task()
	})
}

func TestPublishOnDirectRequestsDownstreamDemandCappedAtPrefetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		single := scheduler.NewSingle()
		defer single.Close()
		var onWorker atomic.Bool
		s := workerScheduler{single, &onWorker}
		src := &btSyncSource{btSource{n: 20}}
		var offWorker atomic.Int64
		rec := flowtest.NewSubscriber[int](t, 0)
		operators.PublishOn(src, s, operators.Prefetch(8)).Subscribe(btHook(rec, func(int) {
			if !onWorker.Load() {
				offWorker.Add(1)
			}
		}))
		synctest.Wait()
		// No prefetch: nothing is requested before downstream asks.
		got := []string{line(src.Requests(), btItems(rec), rec.Outcome())}
		rec.Request(3)
		synctest.Wait()
		got = append(got, line(src.Requests(), btItems(rec), rec.Outcome()))
		rec.Request(20)
		synctest.Wait()
		got = append(got, line(src.Requests(), len(btItems(rec)), rec.Outcome()))
		want := []string{
			"[] [] open",
			"[3] [0 1 2] open",
			"[3 8 8 4] 20 complete", // 17 left: 8, 8, then 1 of 4 and the end
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		if diff := cmp.Diff(btInts(0, 20), btItems(rec)); diff != "" {
			t.Errorf("items (-want +got)\n%s", diff)
		}
		if n := offWorker.Load(); n != 0 {
			t.Errorf("%d items delivered off the worker", n)
		}
	})
}

func TestPublishOnDirectCancelFromOnNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewSingle()
		defer s.Close()
		src := &btSyncSource{btSource{n: 100}}
		rec := flowtest.NewSubscriber[int](t, 50, flowtest.CancelAfter(3))
		operators.PublishOn(src, s).Subscribe(rec)
		synctest.Wait()
		if got, want := line(btItems(rec), rec.Outcome(), src.Requests(), src.Cancels()), "[0 1 2] open [50] 1"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestPublishOnDirectPanicInDownstreamOnNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewSingle()
		defer s.Close()
		drops := &btDrops[int]{}
		src := &btSyncSource{btSource{n: 10}}
		rec := flowtest.NewSubscriber[int](t, 10)
		operators.PublishOn(src, s, operators.Name("hop"), operators.OnDrop(drops.Hook)).Subscribe(btHook(rec, func(v int) {
			if v == 3 {
				panic("bad item")
			}
		}))
		synctest.Wait()
		got := line(btItems(rec), rec.Outcome(), src.Cancels(), len(drops.All()))
		// Nothing was queued, so nothing is dropped: the source stops at
		// the panicking item.
		if want := "[0 1 2] error: hop: sluice: panic: bad item 1 0"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		var pe *flow.PanicError
		if !errors.As(rec.Err(), &pe) || pe.Value != "bad item" {
			t.Errorf("error %v is not the *flow.PanicError of the panic", rec.Err())
		}
	})
}

// greedySyncSub breaks rule 1.1 while declaring that it emits inside
// Request: its first Request emits 5 items, whatever was asked.
type greedySyncSub struct{ greedySub }

func (*greedySyncSub) EmitsInRequest() bool { return true }

func TestPublishOnDirectUpstreamEmittingBeyondDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewSingle()
		defer s.Close()
		g := &greedySyncSub{}
		greedy := flow.PublisherFunc[int](func(sub flow.Subscriber[int]) {
			g.s = sub
			sub.OnSubscribe(g)
		})
		drops := &btDrops[int]{}
		rec := flowtest.NewSubscriber[int](t, 2)
		operators.PublishOn(greedy, s, operators.OnDrop(drops.Hook)).Subscribe(rec)
		synctest.Wait()
		if !errors.Is(rec.Err(), flow.ErrOverflow) {
			t.Errorf("error %v does not match flow.ErrOverflow", rec.Err())
		}
		if got := line(btItems(rec), g.cancelled.Load()); got != "[0 1] true" {
			t.Errorf("items and upstream cancelled: %q, want %q", got, "[0 1] true")
		}
		if diff := cmp.Diff(btDropsOf(flow.ReasonOverflow, 2, 3, 4), drops.All()); diff != "" {
			t.Errorf("drops (-want +got)\n%s", diff)
		}
	})
}

// RateLimit requests upstream from its timer's goroutine, so a Range
// behind it emits there, not inside the boundary's own Request: the
// boundary must queue those items, not deliver them from the timer's
// goroutine (the race detector would see the drain's state shared).
func TestPublishOnOverRateLimitedRangeQueues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewSingle()
		defer s.Close()
		var onWorker atomic.Bool
		var offWorker atomic.Int64
		rec := flowtest.NewSubscriber[int](t, 100)
		pub := operators.PublishOn(operators.RateLimit(sources.Range(0, 20), rate.Every(time.Millisecond), 1),
			workerScheduler{s, &onWorker})
		pub.Subscribe(btHook(rec, func(int) {
			if !onWorker.Load() {
				offWorker.Add(1)
			}
		}))
		time.Sleep(time.Second)
		synctest.Wait()
		if diff := cmp.Diff(btInts(0, 20), btItems(rec)); diff != "" {
			t.Errorf("items (-want +got)\n%s", diff)
		}
		if got := line(rec.Outcome(), offWorker.Load()); got != "complete 0" {
			t.Errorf("outcome and items off the worker: %q, want %q", got, "complete 0")
		}
	})
}

// lyingSub declares that it emits inside Request, and emits nothing.
type lyingSub struct{ cancelled atomic.Bool }

func (*lyingSub) EmitsInRequest() bool { return true }
func (*lyingSub) Request(int64)        {}
func (l *lyingSub) Cancel()            { l.cancelled.Store(true) }

// A source that breaks the promise ends the stream with an error instead
// of leaving the boundary waiting or asking again and again.
func TestPublishOnDirectSourceThatBreaksItsPromise(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewSingle()
		defer s.Close()
		l := &lyingSub{}
		src := flow.PublisherFunc[int](func(sub flow.Subscriber[int]) { sub.OnSubscribe(l) })
		rec := flowtest.NewSubscriber[int](t, 5)
		operators.PublishOn(src, s, operators.Name("hop")).Subscribe(rec)
		synctest.Wait()
		got := line(rec.Outcome(), l.cancelled.Load())
		if want := "error: hop: internal error: upstream delivered 0 of 5 items outside Request true"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}
