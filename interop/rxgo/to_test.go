package rxgo_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	rx "github.com/reactivex/rxgo/v2"

	"github.com/sluicego/sluice/flow"
	rxinterop "github.com/sluicego/sluice/interop/rxgo"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sources"
)

// observed is what an Observe call produced, read to the closing of its
// channel.
type observed struct {
	Items []any
	Errs  []string
}

func observeAll(ctx context.Context, obs rx.Observable) observed {
	var o observed
	for it := range obs.Observe(rx.WithContext(ctx)) {
		if it.E != nil {
			o.Errs = append(o.Errs, it.E.Error())
		} else {
			o.Items = append(o.Items, it.V)
		}
	}
	return o
}

func anys(lo, hi int) []any {
	var s []any
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

// spy records the Requests and Cancels its subscribers make.
type spy[T any] struct {
	src flow.Publisher[T]

	mu       sync.Mutex
	requests []int64
	cancels  int
}

func (p *spy[T]) Subscribe(s flow.Subscriber[T]) {
	p.src.Subscribe(flow.SubscriberFuncs[T]{
		Subscribe: func(sub flow.Subscription) { s.OnSubscribe(spySub[T]{p, sub}) },
		Next:      s.OnNext,
		Error:     s.OnError,
		Complete:  s.OnComplete,
	})
}

func (p *spy[T]) log() ([]int64, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int64(nil), p.requests...), p.cancels
}

type spySub[T any] struct {
	p   *spy[T]
	sub flow.Subscription
}

func (s spySub[T]) Request(n int64) {
	s.p.mu.Lock()
	s.p.requests = append(s.p.requests, n)
	s.p.mu.Unlock()
	s.sub.Request(n)
}

func (s spySub[T]) Cancel() {
	s.p.mu.Lock()
	s.p.cancels++
	s.p.mu.Unlock()
	s.sub.Cancel()
}

func TestToObservableItems(t *testing.T) {
	got := observeAll(context.Background(), rxinterop.ToObservable(sources.Range(0, 1000)))
	if d := cmp.Diff(observed{Items: anys(0, 1000)}, got); d != "" {
		t.Errorf("observed (-want +got):\n%s", d)
	}
	// Cold: a second Observe subscribes again.
	obs := rxinterop.ToObservable(sources.Just("a", "b"), rxinterop.ObservableOptions(rx.WithBufferedChannel(4)))
	for range 2 {
		if d := cmp.Diff(observed{Items: []any{"a", "b"}}, observeAll(context.Background(), obs)); d != "" {
			t.Errorf("observed (-want +got):\n%s", d)
		}
	}
}

// Requests come in batches: P, then P − P/4 after each P − P/4 items.
func TestToObservableRequests(t *testing.T) {
	p := &spy[int]{src: sources.Range(0, 10)}
	got := observeAll(context.Background(), rxinterop.ToObservable[int](p, rxinterop.Prefetch(4)))
	if d := cmp.Diff(observed{Items: anys(0, 10)}, got); d != "" {
		t.Errorf("observed (-want +got):\n%s", d)
	}
	requests, cancels := p.log()
	if d := cmp.Diff([]int64{4, 3, 3, 3}, requests); d != "" {
		t.Errorf("requests (-want +got):\n%s", d)
	}
	if cancels != 0 {
		t.Errorf("cancels = %d, want 0", cancels)
	}

	p = &spy[int]{src: sources.Range(0, 1000)}
	observeAll(context.Background(), rxinterop.ToObservable[int](p))
	requests, _ = p.log()
	want := []int64{256}
	for range 5 { // 256 + 5×192 = 1216 ≥ 1000
		want = append(want, 192)
	}
	if d := cmp.Diff(want, requests); d != "" {
		t.Errorf("default requests (-want +got):\n%s", d)
	}
}

func TestToObservableError(t *testing.T) {
	boom := errors.New("boom")
	got := observeAll(context.Background(), rxinterop.ToObservable(operators.Concat(sources.Range(0, 3), sources.Error[int](boom))))
	if d := cmp.Diff(observed{Items: anys(0, 3), Errs: []string{"boom"}}, got); d != "" {
		t.Errorf("observed (-want +got):\n%s", d)
	}
	// rxgo's operators see the error item and stop.
	_, err := rxinterop.ToObservable(sources.Error[int](boom)).ToSlice(0)
	if !errors.Is(err, boom) {
		t.Errorf("ToSlice error = %v, want boom", err)
	}
}

func TestToObservableAsyncPublisher(t *testing.T) {
	s := scheduler.NewSingle()
	defer s.Close()
	pub := operators.Map(operators.PublishOn(sources.Range(0, 5000), s), func(v int) int { return v * 3 })
	sum, err := rxinterop.ToObservable(pub).
		Reduce(func(_ context.Context, acc, v any) (any, error) {
			if acc == nil {
				return v, nil
			}
			return acc.(int) + v.(int), nil
		}).Get()
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * 5000 * 4999 / 2; sum.V != want {
		t.Errorf("sum = %v, want %d", sum.V, want)
	}
}

// Cancelling Observe's context cancels the publisher and closes the
// channel, from any point of the stream, with synchronous and
// asynchronous publishers (run with -race; goleak checks the goroutines).
func TestToObservableCancel(t *testing.T) {
	sched := scheduler.NewPool(2)
	defer sched.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		async := i%2 == 1
		var src flow.Publisher[int] = sources.Range(0, 1<<40)
		if async {
			src = operators.PublishOn(src, sched)
		}
		p := &spy[int]{src: src}
		ctx, cancel := context.WithCancel(context.Background())
		stopAt := rng.IntN(600)
		ch := rxinterop.ToObservable[int](p, rxinterop.Prefetch(1+rng.IntN(64))).Observe(rx.WithContext(ctx))
		n := 0
		for it := range ch {
			if it.E != nil {
				t.Fatalf("error item %v", it.E)
			}
			if it.V != n {
				t.Fatalf("item %d = %v", n, it.V)
			}
			if n++; n == stopAt {
				cancel()
			}
			if stopAt == 0 && n == 1 {
				cancel()
			}
		}
		cancel()
		if _, cancels := p.log(); cancels != 1 {
			t.Fatalf("run %d (async %v, stop at %d): cancels = %d, want 1", i, async, stopAt, cancels)
		}
	}
}
