package sources_test

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"weak"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

// finite describes a source under test that emits 0, 1, …, n-1 and then
// completes.
type finite struct {
	name string
	new  func(n int) flow.Publisher[int]
	// eagerEnd: the source completes right after its last item, without
	// demand for one more.
	eagerEnd bool
}

// finiteSources lists every source that can emit 0..n-1.
var finiteSources = []finite{
	{name: "Range", new: func(n int) flow.Publisher[int] { return sources.Range(0, n) }, eagerEnd: true},
	{name: "Slice", new: func(n int) flow.Publisher[int] { return sources.Slice(ints(0, n)) }, eagerEnd: true},
	{name: "Just", new: func(n int) flow.Publisher[int] { return sources.Just(ints(0, n)...) }, eagerEnd: true},
	{name: "FromSeq", new: func(n int) flow.Publisher[int] { return sources.FromSeq(slices.Values(ints(0, n))) }},
	{name: "Generate", new: func(n int) flow.Publisher[int] { return countTo(n) }},
	{name: "FromChannel", new: func(n int) flow.Publisher[int] { return sources.FromChannel(filled(n)) }},
}

// countTo is a Generate publisher of 0..n-1.
func countTo(n int) flow.Publisher[int] {
	return sources.Generate(
		func() int { return 0 },
		func(i int) (int, int, error) {
			if i == n {
				return 0, i, sources.Stop
			}
			return i, i + 1, nil
		})
}

// filled returns a closed channel holding 0..n-1.
func filled(n int) <-chan int {
	ch := make(chan int, n)
	for i := range n {
		ch <- i
	}
	close(ch)
	return ch
}

func TestRequestPatterns(t *testing.T) {
	const n = 10
	patterns := []struct {
		name        string
		onSubscribe func(*recorder[int])
		onNext      func(*recorder[int], int, int)
		outside     []int64 // requests made after Subscribe returns, from the test goroutine
	}{
		{name: "one at a time from OnNext", onSubscribe: requestFirst[int](1), onNext: requestEach[int](1)},
		{name: "chunks of 3 from OnNext", onSubscribe: requestFirst[int](3),
			onNext: func(r *recorder[int], i, _ int) {
				if i%3 == 2 {
					r.sub.Request(3)
				}
			}},
		{name: "chunks of 4 from outside", outside: []int64{4, 4, 4}},
		{name: "one at a time from outside", outside: slices.Repeat([]int64{1}, n+1)},
		{name: "unbounded", onSubscribe: requestFirst[int](flow.Unbounded)},
		{name: "unbounded from outside", outside: []int64{flow.Unbounded}},
		{name: "unbounded requested twice", onSubscribe: func(r *recorder[int]) {
			r.sub.Request(flow.Unbounded)
			r.sub.Request(flow.Unbounded)
		}},
		{name: "requests summing past unbounded during emission", onSubscribe: requestFirst[int](2),
			onNext: func(r *recorder[int], i, _ int) {
				if i < 2 {
					r.sub.Request(flow.Unbounded - 1)
				}
			}},
		{name: "bounded then unbounded", onSubscribe: requestFirst[int](1),
			onNext: func(r *recorder[int], i, _ int) {
				if i == 0 {
					r.sub.Request(flow.Unbounded)
				}
			}},
		{name: "exact count then one more", outside: []int64{n, 1}},
		{name: "large demand in one request", onSubscribe: requestFirst[int](1 << 40)},
	}
	for _, src := range finiteSources {
		for _, p := range patterns {
			t.Run(src.name+"/"+p.name, func(t *testing.T) {
				r := newRecorder[int](t)
				r.onSubscribe, r.onNext = p.onSubscribe, p.onNext
				src.new(n).Subscribe(r)
				for _, k := range p.outside {
					r.sub.Request(k)
				}
				if diff := cmp.Diff(logOf(ints(0, n), "OnComplete"), r.Log()); diff != "" {
					t.Errorf("signals (-want +got)\n%s", diff)
				}
			})
		}
	}
}

func TestEndOfStream(t *testing.T) {
	const n = 5
	for _, src := range finiteSources {
		t.Run(src.name, func(t *testing.T) {
			r := newRecorder[int](t)
			src.new(n).Subscribe(r)
			r.sub.Request(n)
			want := logOf(ints(0, n))
			if src.eagerEnd {
				want = append(want, "OnComplete")
			}
			if diff := cmp.Diff(want, r.Log()); diff != "" {
				t.Errorf("after Request(%d) (-want +got)\n%s", n, diff)
			}
			r.sub.Request(1)
			if diff := cmp.Diff(logOf(ints(0, n), "OnComplete"), r.Log()); diff != "" {
				t.Errorf("after one more Request(1) (-want +got)\n%s", diff)
			}
		})
	}
}

func TestEmptySourcesCompleteWithoutDemand(t *testing.T) {
	tests := []struct {
		name string
		pub  flow.Publisher[int]
	}{
		{"Empty", sources.Empty[int]()},
		{"Range count 0", sources.Range(7, 0)},
		{"Slice nil", sources.Slice[int](nil)},
		{"Just no items", sources.Just[int]()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder[int](t)
			tt.pub.Subscribe(r)
			r.sub.Request(1)
			r.sub.Request(-1)
			r.sub.Cancel()
			if diff := cmp.Diff([]string{"OnSubscribe", "OnComplete"}, r.Log()); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestErrorFailsWithoutDemand(t *testing.T) {
	boom := errors.New("boom")
	pub := sources.Error[int](boom)
	for range 2 { // every subscriber gets the error
		r := newRecorder[int](t)
		pub.Subscribe(r)
		r.sub.Request(1)
		r.sub.Request(-1)
		r.sub.Cancel()
		if diff := cmp.Diff([]string{"OnSubscribe", "OnError(boom)"}, r.Log()); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		if r.Err() != boom {
			t.Errorf("OnError(%v), want the error given to Error", r.Err())
		}
	}
}

func TestCancel(t *testing.T) {
	const n = 10
	tests := []struct {
		name        string
		onSubscribe func(*recorder[int])
		onNext      func(*recorder[int], int, int)
		outside     func(*recorder[int])
		want        []string
	}{
		{
			name:        "inside OnNext under bounded demand",
			onSubscribe: requestFirst[int](6),
			onNext:      cancelAt(3),
			want:        logOf(ints(0, 4)),
		},
		{
			name:        "inside OnNext under unbounded demand",
			onSubscribe: requestFirst[int](flow.Unbounded),
			onNext:      cancelAt(3),
			want:        logOf(ints(0, 4)),
		},
		{
			name:        "inside OnNext at the last item",
			onSubscribe: requestFirst[int](flow.Unbounded),
			onNext:      cancelAt(n - 1),
			want:        logOf(ints(0, n)),
		},
		{
			name:        "inside OnNext then request more",
			onSubscribe: requestFirst[int](2),
			onNext: func(r *recorder[int], i, _ int) {
				if i == 1 {
					r.sub.Cancel()
					r.sub.Request(5)
				}
			},
			want: logOf(ints(0, 2)),
		},
		{
			name: "before any request",
			outside: func(r *recorder[int]) {
				r.sub.Cancel()
				r.sub.Request(5)
			},
			want: logOf[int](nil),
		},
		{
			name: "between requests",
			outside: func(r *recorder[int]) {
				r.sub.Request(3)
				r.sub.Cancel()
				r.sub.Request(5)
			},
			want: logOf(ints(0, 3)),
		},
		{
			name:        "inside OnSubscribe",
			onSubscribe: func(r *recorder[int]) { r.sub.Cancel(); r.sub.Request(3) },
			want:        logOf[int](nil),
		},
		{
			name: "twice",
			outside: func(r *recorder[int]) {
				r.sub.Request(2)
				r.sub.Cancel()
				r.sub.Cancel()
				r.sub.Request(2)
			},
			want: logOf(ints(0, 2)),
		},
	}
	for _, src := range finiteSources {
		for _, tt := range tests {
			t.Run(src.name+"/"+tt.name, func(t *testing.T) {
				r := newRecorder[int](t)
				r.onSubscribe, r.onNext = tt.onSubscribe, tt.onNext
				src.new(n).Subscribe(r)
				if tt.outside != nil {
					tt.outside(r)
				}
				if diff := cmp.Diff(tt.want, r.Log()); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			})
		}
	}
}

func cancelAt(k int) func(*recorder[int], int, int) {
	return func(r *recorder[int], i, _ int) {
		if i == k {
			r.sub.Cancel()
		}
	}
}

func TestNonPositiveRequest(t *testing.T) {
	const n = 10
	tests := []struct {
		name        string
		onSubscribe func(*recorder[int])
		onNext      func(*recorder[int], int, int)
		outside     func(*recorder[int])
		want        []string
	}{
		{
			name:        "zero inside OnSubscribe",
			onSubscribe: func(r *recorder[int]) { r.sub.Request(0); r.sub.Request(5) },
			want:        logOf[int](nil, badRequest(0)),
		},
		{
			name:    "negative before any demand",
			outside: func(r *recorder[int]) { r.sub.Request(-1); r.sub.Request(5) },
			want:    logOf[int](nil, badRequest(-1)),
		},
		{
			name:        "negative inside OnNext under bounded demand",
			onSubscribe: requestFirst[int](6),
			onNext:      badRequestAt(2, -1),
			want:        logOf(ints(0, 3), badRequest(-1)),
		},
		{
			name:        "min int64 inside OnNext under unbounded demand",
			onSubscribe: requestFirst[int](flow.Unbounded),
			onNext:      badRequestAt(2, -1<<63),
			want:        logOf(ints(0, 3), badRequest(-1<<63)),
		},
		{
			name: "zero between requests, only the first is signalled",
			outside: func(r *recorder[int]) {
				r.sub.Request(2)
				r.sub.Request(0)
				r.sub.Request(-5)
				r.sub.Request(2)
			},
			want: logOf(ints(0, 2), badRequest(0)),
		},
		{
			name: "after cancel is ignored",
			outside: func(r *recorder[int]) {
				r.sub.Request(2)
				r.sub.Cancel()
				r.sub.Request(0)
			},
			want: logOf(ints(0, 2)),
		},
		{
			name: "after completion is ignored",
			outside: func(r *recorder[int]) {
				r.sub.Request(flow.Unbounded)
				r.sub.Request(0)
				r.sub.Cancel()
			},
			want: logOf(ints(0, n), "OnComplete"),
		},
	}
	for _, src := range finiteSources {
		for _, tt := range tests {
			t.Run(src.name+"/"+tt.name, func(t *testing.T) {
				r := newRecorder[int](t)
				r.onSubscribe, r.onNext = tt.onSubscribe, tt.onNext
				src.new(n).Subscribe(r)
				if tt.outside != nil {
					tt.outside(r)
				}
				if diff := cmp.Diff(tt.want, r.Log()); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
				if err := r.Err(); err != nil && !errors.Is(err, flow.ErrNonPositiveRequest) {
					t.Errorf("OnError(%v) does not match flow.ErrNonPositiveRequest", err)
				}
			})
		}
	}
}

func badRequestAt(k int, n int64) func(*recorder[int], int, int) {
	return func(r *recorder[int], i, _ int) {
		if i == k {
			r.sub.Request(n)
		}
	}
}

// TestDropsSubscriber checks rule 3.13: once a subscription has ended,
// the subscription (which the subscriber still holds) no longer keeps
// the subscriber alive.
func TestDropsSubscriber(t *testing.T) {
	ends := []struct {
		name string
		end  func(s flow.Subscription)
	}{
		{"after cancel before demand", func(s flow.Subscription) { s.Cancel() }},
		{"after cancel mid-stream", func(s flow.Subscription) { s.Request(2); s.Cancel() }},
		{"after completion", func(s flow.Subscription) { s.Request(flow.Unbounded) }},
		{"after completion under bounded demand", func(s flow.Subscription) { s.Request(1 << 20) }},
		{"after a non-positive request", func(s flow.Subscription) { s.Request(2); s.Request(0) }},
	}
	for _, src := range finiteSources {
		for _, e := range ends {
			t.Run(src.name+"/"+e.name, func(t *testing.T) {
				sub, alive := subscribeWeakly(src.new(5))
				e.end(sub)
				runtime.GC()
				if alive() {
					t.Error("the subscription still references its subscriber")
				}
				runtime.KeepAlive(sub)
			})
		}
	}
}

// subscribeWeakly subscribes a subscriber that keeps only its
// subscription, and returns that subscription and a function that reports
// whether the subscriber is still reachable.
func subscribeWeakly(pub flow.Publisher[int]) (flow.Subscription, func() bool) {
	type holder struct {
		sub flow.Subscription
		_   [64]byte // not a tiny object: weak pointers to tiny objects are unreliable
	}
	h := &holder{}
	s := flow.SubscriberFuncs[int]{Subscribe: func(s flow.Subscription) { h.sub = s }}
	pub.Subscribe(s)
	wp := weak.Make(h)
	sub := h.sub
	return sub, func() bool { return wp.Value() != nil }
}

func TestConcurrentRequestsEmitSeriallyInOrder(t *testing.T) {
	const (
		n          = 1000
		goroutines = 4
	)
	for _, src := range finiteSources {
		t.Run(src.name, func(t *testing.T) {
			r := newRecorder[int](t) // reports overlapping signals
			src.new(n).Subscribe(r)
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range n/goroutines + 1 {
						r.sub.Request(1)
					}
				})
			}
			wg.Wait()
			if diff := cmp.Diff(logOf(ints(0, n), "OnComplete"), r.Log()); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// TestCancelFromAnotherGoroutine cancels while the emission loop is inside
// OnNext on another goroutine, and checks that nothing follows that item.
func TestCancelFromAnotherGoroutine(t *testing.T) {
	const (
		n = 100
		k = 40
	)
	for _, src := range finiteSources {
		for _, demand := range []int64{n / 2, flow.Unbounded} {
			name := "bounded"
			if demand == flow.Unbounded {
				name = "unbounded"
			}
			t.Run(src.name+"/"+name, func(t *testing.T) {
				reached, cancelled := make(chan struct{}), make(chan struct{})
				r := newRecorder[int](t)
				r.onNext = func(r *recorder[int], i, _ int) {
					if i == k {
						close(reached)
						<-cancelled
					}
				}
				src.new(n).Subscribe(r)
				var wg sync.WaitGroup
				wg.Go(func() { r.sub.Request(demand) })
				<-reached
				r.sub.Cancel()
				close(cancelled)
				wg.Wait()
				if diff := cmp.Diff(logOf(ints(0, k+1)), r.Log()); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			})
		}
	}
}

// TestConcurrentRequestAndCancel races requests, cancels and a bad
// request; whatever the interleaving, the items are a prefix of the
// stream in order, and at most one terminal signal arrives (the recorder
// reports overlaps and signals after a terminal one).
func TestConcurrentRequestAndCancel(t *testing.T) {
	const n = 2000
	for _, src := range finiteSources {
		t.Run(src.name, func(t *testing.T) {
			for round := range 20 {
				r := newRecorder[int](t)
				src.new(n).Subscribe(r)
				var wg sync.WaitGroup
				var start sync.WaitGroup
				start.Add(1)
				for g := range 3 {
					wg.Go(func() {
						start.Wait()
						for range 50 {
							r.sub.Request(int64(g + 1))
						}
					})
				}
				wg.Go(func() {
					start.Wait()
					runtime.Gosched()
					if round%2 == 0 {
						r.sub.Cancel()
					} else {
						r.sub.Request(-1)
					}
				})
				start.Done()
				wg.Wait()
				items := r.Items()
				if diff := cmp.Diff(ints(0, len(items)), items, cmpEmpty); diff != "" {
					t.Fatalf("round %d: items are not a prefix of the stream (-want +got)\n%s", round, diff)
				}
				if len(items) > 300 {
					t.Fatalf("round %d: %d items delivered for a demand of 300", round, len(items))
				}
				if err := r.Err(); err != nil && !errors.Is(err, flow.ErrNonPositiveRequest) {
					t.Fatalf("round %d: OnError(%v)", round, err)
				}
			}
		})
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []int) bool { return slices.Equal(a, b) })

func TestSubscribeNilPanics(t *testing.T) {
	pubs := map[string]flow.Publisher[int]{
		"Range":       sources.Range(0, 3),
		"Slice":       sources.Slice([]int{1}),
		"Empty":       sources.Empty[int](),
		"Error":       sources.Error[int](errors.New("x")),
		"FromSeq":     sources.FromSeq(slices.Values([]int{1})),
		"Generate":    countTo(3),
		"FromChannel": sources.FromChannel(filled(1)),
	}
	for name, pub := range pubs {
		t.Run(name, func(t *testing.T) {
			got := mustPanic(t, func() { pub.Subscribe(nil) })
			if want := "sluice: Subscribe called with a nil Subscriber (rule 1.9)"; got != want {
				t.Errorf("panic(%v), want %q", got, want)
			}
		})
	}
}

func TestConstructorPanics(t *testing.T) {
	const maxInt = int(^uint(0) >> 1)
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"Range negative count", func() { sources.Range(0, -1) }, "sluice: Range: count < 0"},
		{"Range end past MaxInt", func() { sources.Range(maxInt, 1) }, "sluice: Range: start+count overflows int"},
		{"Range huge count", func() { sources.Range(1, maxInt) }, "sluice: Range: start+count overflows int"},
		{"Error nil", func() { sources.Error[int](nil) }, "sluice: Error: nil error"},
		{"FromSeq nil", func() { sources.FromSeq[int](nil) }, "sluice: FromSeq: nil seq"},
		{"FromChannel nil", func() { sources.FromChannel[int](nil) }, "sluice: FromChannel: nil channel"},
		{"Generate nil init", func() {
			sources.Generate[int](nil, func(int) (int, int, error) { return 0, 0, nil })
		}, "sluice: Generate: nil init"},
		{"Generate nil next", func() {
			sources.Generate[int, int](func() int { return 0 }, nil)
		}, "sluice: Generate: nil next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustPanic(t, tt.f); got != tt.want {
				t.Errorf("panic(%v), want %q", got, tt.want)
			}
		})
	}
}
