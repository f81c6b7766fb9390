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

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// gateSource blocks in Subscribe and in every Request until gate is
// closed, logs them, and flags overlapping Requests. Its items are the
// ints 0..n-1, emitted inside Request.
type gateSource struct {
	n    int
	gate chan struct{}

	mu       sync.Mutex
	log      []string
	inReq    atomic.Int32
	overlaps atomic.Int32
}

func (g *gateSource) add(e string) {
	g.mu.Lock()
	g.log = append(g.log, e)
	g.mu.Unlock()
}

func (g *gateSource) Log() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.log...)
}

func (g *gateSource) Subscribe(s flow.Subscriber[int]) {
	<-g.gate
	g.add("subscribe")
	sub := &btSource{n: g.n}
	inner := &gateSub{g: g}
	sub.Subscribe(flow.SubscriberFuncs[int]{
		Subscribe: func(up flow.Subscription) { inner.up = up; s.OnSubscribe(inner) },
		Next:      s.OnNext,
		Error:     s.OnError,
		Complete:  s.OnComplete,
	})
}

type gateSub struct {
	g  *gateSource
	up flow.Subscription
}

func (x *gateSub) Request(n int64) {
	if x.g.inReq.Add(1) != 1 {
		x.g.overlaps.Add(1)
	}
	<-x.g.gate
	x.g.add(fmt.Sprint("request ", n))
	x.up.Request(n)
	x.g.inReq.Add(-1)
}

func (x *gateSub) Cancel() { x.g.add("cancel"); x.up.Cancel() }

func TestSubscribeOnMovesSubscribeAndRequestToTheWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewSingle()
		defer s.Close()
		src := &gateSource{n: 5, gate: make(chan struct{})}
		rec := flowtest.NewSubscriber[int](t, 0, btWait)
		// Subscribe and Request return while the source is blocked in
		// them on the worker.
		operators.SubscribeOn(src, s).Subscribe(rec)
		rec.Request(2)
		rec.Request(3)
		synctest.Wait()
		got := []string{line(src.Log(), btItems(rec), rec.Outcome())}
		close(src.gate)
		btAwait(t, rec)
		got = append(got, line(src.Log(), btItems(rec), rec.Outcome()))
		// The two Requests made before the subscription arrived are
		// forwarded as one.
		want := []string{"[] [] open", "[subscribe request 5] [0 1 2 3 4] complete"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestSubscribeOnForwardsConcurrentRequestsSeriallyAndExactly(t *testing.T) {
	s := scheduler.NewPool(2)
	t.Cleanup(func() { s.Close() })
	const goroutines, each = 8, 100
	src := &gateSource{n: goroutines * each, gate: make(chan struct{})}
	close(src.gate)
	rec := flowtest.NewSubscriber[int](t, 0, btWait)
	operators.SubscribeOn(src, s).Subscribe(rec)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				rec.Request(1)
			}
		})
	}
	wg.Wait()
	btAwait(t, rec)
	if diff := cmp.Diff(btInts(0, goroutines*each), btItems(rec)); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
	var total int64
	for _, e := range src.Log()[1:] {
		var n int64
		fmt.Sscanf(e, "request %d", &n)
		total += n
	}
	if total != goroutines*each || src.overlaps.Load() != 0 {
		t.Errorf("upstream saw %d items requested, %d overlapping Requests; want %d, 0", total, src.overlaps.Load(), goroutines*each)
	}
}

func TestSubscribeOnBlockingChannelSource(t *testing.T) {
	s := scheduler.NewSingle()
	t.Cleanup(func() { s.Close() })
	t.Run("every value in order", func(t *testing.T) {
		ch := make(chan int)
		go func() {
			for i := range 300 {
				ch <- i
			}
			close(ch)
		}()
		got, err := sinks.Collect(context.Background(), operators.SubscribeOn(sources.FromChannel(ch), s))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(btInts(0, 300), got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
	t.Run("cancel wakes the worker blocked in the source", func(t *testing.T) {
		ch := make(chan int)
		ctx, cancel := context.WithCancel(context.Background())
		var got []int
		errc := make(chan error)
		go func() {
			errc <- sinks.ForEach(ctx, operators.SubscribeOn(sources.FromChannel(ch), s), func(v int) error {
				got = append(got, v)
				return nil
			})
		}()
		ch <- 1
		ch <- 2
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("ForEach = %v, want context.Canceled", err)
		}
		// The worker is free again: another stream runs on it.
		n, err := sinks.Drain(context.Background(), operators.SubscribeOn(sources.Range(0, 10), s))
		if n != 10 || err != nil {
			t.Errorf("Drain after cancel = %d, %v", n, err)
		}
	})
}

func TestSubscribeOnNonPositiveRequestReachesUpstream(t *testing.T) {
	s := scheduler.NewSingle()
	t.Cleanup(func() { s.Close() })
	rec := flowtest.NewSubscriber[int](t, 0, btWait)
	operators.SubscribeOn(sources.Range(0, 10), s).Subscribe(rec)
	rec.Request(2)
	rec.Request(-4)
	btAwait(t, rec)
	if !errors.Is(rec.Err(), flow.ErrNonPositiveRequest) {
		t.Errorf("error %v does not match ErrNonPositiveRequest", rec.Err())
	}
	if items := btItems(rec); len(items) > 2 || !slices.Equal(items, btInts(0, len(items))) {
		t.Errorf("items %v, want a prefix of [0 1]", items)
	}
}

func TestSubscribeOnClosedScheduler(t *testing.T) {
	s := scheduler.NewSingle()
	s.Close()
	src := &btSource{n: 3}
	got, err := sinks.Collect(context.Background(), operators.SubscribeOn(src, s, operators.Name("io")))
	if !errors.Is(err, scheduler.ErrClosed) || err.Error() != "io: sluice: scheduler closed" {
		t.Errorf("error %v, want io: wrapping scheduler.ErrClosed", err)
	}
	if got != nil || src.Requests() != nil {
		t.Errorf("items %v, requests %v; want none", got, src.Requests())
	}
}

func TestSubscribeOnCancelBeforeTheSubscriptionArrives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scheduler.NewSingle()
		defer s.Close()
		src := &gateSource{n: 5, gate: make(chan struct{})}
		rec := flowtest.NewSubscriber[int](t, 5)
		operators.SubscribeOn(src, s).Subscribe(rec)
		rec.Cancel()
		close(src.gate)
		synctest.Wait()
		if got := line(src.Log(), btItems(rec), rec.Outcome()); got != "[subscribe cancel] [] open" {
			t.Errorf("got %q", got)
		}
	})
}

// SubscribeOn over a blocking channel source and PublishOn behind it,
// cancelled at random points: nothing outlives the stream.
func TestSubscribeOnStressCancelAtRandomPoints(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 2))
	for it := range 100 {
		io, cpu := scheduler.NewSingle(), scheduler.NewPool(2)
		ch := make(chan int)
		n := rng.IntN(500)
		stop := make(chan struct{})
		var feeder sync.WaitGroup
		feeder.Go(func() {
			defer close(ch)
			for i := range n {
				select {
				case ch <- i:
				case <-stop:
					return
				}
			}
		})
		ctx, cancel := context.WithCancel(context.Background())
		cancelAt := rng.IntN(n + 1)
		var got []int
		err := sinks.ForEach(ctx, operators.PublishOn(operators.SubscribeOn(sources.FromChannel(ch), io), cpu,
			operators.Prefetch(1+rng.IntN(64))), func(v int) error {
			got = append(got, v)
			if len(got) == cancelAt {
				cancel()
			}
			for range rng.IntN(3) {
				runtime.Gosched()
			}
			return nil
		})
		cancel()
		close(stop)
		feeder.Wait()
		io.Close()
		cpu.Close()
		name := fmt.Sprintf("seed=%d/it=%d/n=%d/cancelAt=%d", seed, it, n, cancelAt)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: %v", name, err)
		}
		if err == nil && !slices.Equal(btInts(0, n), got) {
			t.Fatalf("%s: completed with %v", name, got)
		}
		if !slices.Equal(btInts(0, len(got)), got) {
			t.Fatalf("%s: items are not a prefix: %v", name, got)
		}
	}
}

func TestAsyncConstructorsPanicOnBadArguments(t *testing.T) {
	src := sources.Range(0, 1)
	tests := map[string]struct {
		f    func()
		want string
	}{
		"PublishOn nil source":      {func() { operators.PublishOn[int](nil, scheduler.Immediate) }, "sluice: PublishOn: nil source"},
		"PublishOn nil scheduler":   {func() { operators.PublishOn(src, nil) }, "sluice: PublishOn: nil scheduler"},
		"SubscribeOn nil source":    {func() { operators.SubscribeOn[int](nil, scheduler.Immediate) }, "sluice: SubscribeOn: nil source"},
		"SubscribeOn nil scheduler": {func() { operators.SubscribeOn(src, nil) }, "sluice: SubscribeOn: nil scheduler"},
		"PublishOn nil option":      {func() { operators.PublishOn(src, scheduler.Immediate, nil) }, "sluice: publishon: nil Option"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if got := recover(); got != tt.want {
					t.Errorf("panic = %v, want %q", got, tt.want)
				}
			}()
			tt.f()
		})
	}
}
