package sinks_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sinks"
)

// runner runs one sink over pub and returns the items it saw (Drain's
// count n as 0…n-1) and its error.
type runner func(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) ([]int, error)

type sinkCase struct {
	name string
	run  runner
}

func allSinks() []sinkCase {
	return []sinkCase{
		{"ForEach", runForEach},
		{"Collect", runCollect},
		{"Reduce", runReduce},
		{"Drain", runDrain},
		{"ToChannel", runToChannel},
		{"All", runAll},
	}
}

func runForEach(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) ([]int, error) {
	// fn may still be running after ForEach returns when ctx ends an
	// asynchronous stream (documented), hence the lock.
	var mu sync.Mutex
	var got []int
	err := sinks.ForEach(ctx, pub, func(v int) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, v)
		return nil
	}, opts...)
	mu.Lock()
	defer mu.Unlock()
	return append([]int(nil), got...), err
}

func runCollect(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) ([]int, error) {
	return sinks.Collect(ctx, pub, opts...)
}

func runReduce(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) ([]int, error) {
	return sinks.Reduce(ctx, pub, []int(nil), func(acc []int, v int) []int { return append(acc, v) }, opts...)
}

func runDrain(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) ([]int, error) {
	n, err := sinks.Drain(ctx, pub, opts...)
	return ints(int(n)), err
}

func runToChannel(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) ([]int, error) {
	ch := make(chan int, 16)
	errc := make(chan error, 1)
	go func() { errc <- sinks.ToChannel(ctx, pub, ch, opts...) }()
	var got []int
	for v := range ch {
		got = append(got, v)
	}
	return got, <-errc
}

func runAll(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) ([]int, error) {
	var got []int
	var errs []error
	for v, err := range sinks.All(ctx, pub, opts...) {
		if err != nil {
			errs = append(errs, err)
			continue // the iterator must stop by itself after an error
		}
		if len(errs) > 0 {
			return got, fmt.Errorf("item %d yielded after error %v", v, errs[0])
		}
		got = append(got, v)
	}
	switch len(errs) {
	case 0:
		return got, nil
	case 1:
		return got, errs[0]
	}
	return got, fmt.Errorf("%d errors yielded: %v", len(errs), errs)
}

// wantRequests is the 75 % rule: prefetch at subscription, then limit
// after every limit items consumed, for a stream of n items.
func wantRequests(prefetch, n int) []int64 {
	limit := prefetch - prefetch/4
	want := []int64{int64(prefetch)}
	for range n / limit {
		want = append(want, int64(limit))
	}
	return want
}

// allRequests adapts the Request calls that the other sinks make (want)
// to All, which requests from its loop, after consuming, and not once the
// stream has ended. A synchronous source of n items ends as soon as the
// demand reaches n, so All stops requesting there; an asynchronous one
// ends a little later, so All may make some of the remaining calls: the
// result is the prefix of want as long as got, within those bounds.
func allRequests(want []int64, n int, m mode, got []int64) []int64 {
	if len(want) < 2 {
		return want
	}
	prefetch, limit := want[0], want[1]
	k := 1 // the calls made while the demand was below n
	for granted := prefetch; k < len(want) && granted < int64(n); granted += limit {
		k++
	}
	if (m == asyncMode || m == asyncRunsMode) && len(got) > k && len(got) <= len(want) {
		k = len(got)
	}
	return want[:k]
}

func TestSinksDeliverExactResults(t *testing.T) {
	tests := []struct {
		name string
		n    int
		err  error
		opts []sinks.Option
	}{
		{name: "empty stream completes", n: 0},
		{name: "one item", n: 1},
		{name: "1000 items with the default prefetch", n: 1000},
		{name: "1000 items one at a time", n: 1000, opts: []sinks.Option{sinks.Prefetch(1)}},
		{name: "1000 items with prefetch 7", n: 1000, opts: []sinks.Option{sinks.Prefetch(7)}},
		{name: "1000 items unbounded", n: 1000, opts: []sinks.Option{sinks.Unbounded()}},
		{name: "error after 5 items keeps them", n: 5, err: errBoom},
		{name: "error before any item", n: 0, err: errBoom},
	}
	for _, sk := range allSinks() {
		for _, m := range emittingModes {
			for _, tt := range tests {
				if sk.name == "All" && len(tt.opts) > 0 && tt.name == "1000 items unbounded" {
					continue // All rejects Unbounded; see TestArgumentsPanic
				}
				t.Run(sk.name+"/"+m.String()+"/"+tt.name, func(t *testing.T) {
					pub := newPub(tt.n, tt.err, m)
					got, err := sk.run(t.Context(), pub, tt.opts...)
					pub.Wait()
					if err != tt.err {
						t.Errorf("error = %v, want %v", err, tt.err)
					}
					if diff := cmp.Diff(ints(tt.n), got); diff != "" {
						t.Errorf("items (-want +got):\n%s", diff)
					}
					if n := pub.Cancels(); n != 0 {
						t.Errorf("upstream cancelled %d times, want 0", n)
					}
				})
			}
		}
	}
}

func TestSinksRequestBy75PercentRule(t *testing.T) {
	tests := []struct {
		name string
		n    int
		opts []sinks.Option
		want []int64
	}{
		{name: "default prefetch 256", n: 1000, want: []int64{256, 192, 192, 192, 192, 192}},
		{name: "prefetch 4", n: 10, opts: []sinks.Option{sinks.Prefetch(4)}, want: []int64{4, 3, 3, 3}},
		{name: "prefetch 1 requests one per item", n: 5, opts: []sinks.Option{sinks.Prefetch(1)}, want: []int64{1, 1, 1, 1, 1, 1}},
		{name: "prefetch 7", n: 100, opts: []sinks.Option{sinks.Prefetch(7)}, want: wantRequests(7, 100)},
		{name: "unbounded requests once", n: 1000, opts: []sinks.Option{sinks.Unbounded()}, want: []int64{flow.Unbounded}},
		{name: "last option wins: unbounded", n: 10, opts: []sinks.Option{sinks.Prefetch(4), sinks.Unbounded()}, want: []int64{flow.Unbounded}},
		{name: "last option wins: prefetch", n: 10, opts: []sinks.Option{sinks.Unbounded(), sinks.Prefetch(4)}, want: []int64{4, 3, 3, 3}},
	}
	for _, sk := range allSinks() {
		for _, m := range emittingModes {
			for _, tt := range tests {
				if sk.name == "All" && len(tt.want) == 1 {
					continue // All rejects Unbounded
				}
				want := tt.want
				if sk.name == "ToChannel" && tt.opts == nil {
					want = wantRequests(16, tt.n) // the runner's channel capacity
				}

				t.Run(sk.name+"/"+m.String()+"/"+tt.name, func(t *testing.T) {
					pub := newPub(tt.n, nil, m)
					got, err := sk.run(t.Context(), pub, tt.opts...)
					pub.Wait()
					if err != nil || len(got) != tt.n {
						t.Fatalf("got %d items and error %v, want %d and nil", len(got), err, tt.n)
					}
					reqs := pub.Requests()
					if sk.name == "All" {
						want = allRequests(want, tt.n, m, reqs)
					}
					if diff := cmp.Diff(want, reqs); diff != "" {
						t.Errorf("Request calls (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
	if diff := cmp.Diff([]int64{4, 3, 3, 3}, wantRequests(4, 10)); diff != "" {
		t.Errorf("wantRequests(4, 10) (-want +got):\n%s", diff)
	}
}

func TestToChannelPrefetchFollowsCapacity(t *testing.T) {
	for _, tt := range []struct {
		name     string
		capacity int
		n        int
		want     []int64
	}{
		{name: "buffered 4", capacity: 4, n: 10, want: []int64{4, 3, 3, 3}},
		{name: "unbuffered requests one at a time", capacity: 0, n: 3, want: []int64{1, 1, 1, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pub := newPub(tt.n, nil, syncMode)
			ch := make(chan int, tt.capacity)
			errc := make(chan error, 1)
			go func() { errc <- sinks.ToChannel(t.Context(), pub, ch) }()
			var got []int
			for v := range ch {
				got = append(got, v)
			}
			if err := <-errc; err != nil {
				t.Fatalf("ToChannel = %v", err)
			}
			if diff := cmp.Diff(ints(tt.n), got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, pub.Requests()); diff != "" {
				t.Errorf("Request calls (-want +got):\n%s", diff)
			}
		})
	}
}

// A synchronous source runs inside the sink's call: cancelling ctx must
// stop it from the AfterFunc goroutine, and the sink must ignore what is
// already on its way. synctest.Wait lets the AfterFunc finish before the
// next item, so the cut is exact.
func TestSinksStopWhenContextIsCancelledMidStream(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []sinks.Option
		// want: the items each sink reports. Collect, Reduce and Drain drop
		// their partial result; All drops what is still queued.
		want map[string][]int
	}{
		{
			name: "default prefetch",
			want: map[string][]int{"ForEach": ints(100), "ToChannel": ints(100)},
		},
		{
			name: "prefetch 8",
			opts: []sinks.Option{sinks.Prefetch(8)},
			// All consumed 96 items when its Request for items 98..103 ran
			// into the cancellation at item 100.
			want: map[string][]int{"ForEach": ints(100), "ToChannel": ints(100), "All": ints(96)},
		},
	} {
		for _, sk := range allSinks() {
			t.Run(tt.name+"/"+sk.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					pub := newPub(-1, nil, syncMode) // never ends by itself
					pub.onEmit = func(i int) {
						if i == 100 {
							cancel()
							synctest.Wait()
						}
					}
					got, err := sk.run(ctx, pub, tt.opts...)
					if !errors.Is(err, context.Canceled) {
						t.Errorf("error = %v, want context.Canceled", err)
					}
					if diff := cmp.Diff(tt.want[sk.name], got); diff != "" {
						t.Errorf("items (-want +got):\n%s", diff)
					}
					if n := pub.Cancels(); n != 1 {
						t.Errorf("upstream cancelled %d times, want 1", n)
					}
				})
			})
		}
	}
}

func TestSinksReturnWhenContextEndsOnSilentSource(t *testing.T) {
	for _, m := range []mode{silentMode, asyncSilentMode} {
		for _, sk := range allSinks() {
			t.Run(m.String()+"/"+sk.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(t.Context(), time.Second)
					defer cancel()
					pub := newPub(10, nil, m)
					start := time.Now()
					got, err := sk.run(ctx, pub)
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("error = %v, want context.DeadlineExceeded", err)
					}
					if elapsed := time.Since(start); elapsed != time.Second {
						t.Errorf("returned after %v, want 1s", elapsed)
					}
					if got != nil {
						t.Errorf("items = %v, want none", got)
					}
					pub.Wait()
					if n := pub.Cancels(); n != 1 {
						t.Errorf("upstream cancelled %d times, want 1", n)
					}
					if diff := cmp.Diff([]int64{sinkPrefetch(sk.name)}, pub.Requests()); diff != "" {
						t.Errorf("Request calls (-want +got):\n%s", diff)
					}
				})
			})
		}
	}
}

// sinkPrefetch is the default prefetch of each runner.
func sinkPrefetch(name string) int64 {
	if name == "ToChannel" {
		return 16 // the runner's channel capacity
	}
	return sinks.DefaultPrefetch
}

// A subscription that arrives after the sink gave up is cancelled at once
// and never asked for anything.
func TestSinksCancelASubscriptionThatArrivesLate(t *testing.T) {
	for _, sk := range allSinks() {
		t.Run(sk.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				release := make(chan struct{})
				var late lateSub
				pub := funcPub(func(s flow.Subscriber[int]) {
					go func() {
						<-release
						s.OnSubscribe(&late)
					}()
				})
				_, err := sk.run(ctx, pub)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("error = %v, want context.DeadlineExceeded", err)
				}
				close(release)
				synctest.Wait()
				if diff := cmp.Diff(lateSub{cancels: 1}, late, cmp.AllowUnexported(lateSub{})); diff != "" {
					t.Errorf("late subscription (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// lateSub records calls from a single goroutine.
type lateSub struct {
	requests []int64
	cancels  int
}

func (l *lateSub) Request(n int64) { l.requests = append(l.requests, n) }
func (l *lateSub) Cancel()         { l.cancels++ }

// An asynchronous source whose emitting goroutine cancels ctx: the sink
// returns ctx.Err(), the source is cancelled and its goroutine exits
// (goleak checks the whole package).
func TestSinksStopAsyncStreamOnContextCancel(t *testing.T) {
	for _, sk := range allSinks() {
		t.Run(sk.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			pub := newPub(-1, nil, asyncMode)
			pub.onEmit = func(i int) {
				if i == 10 {
					cancel()
				}
			}
			got, err := sk.run(ctx, pub, sinks.Prefetch(4))
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want context.Canceled", err)
			}
			pub.Wait()
			if n := pub.Cancels(); n != 1 {
				t.Errorf("upstream cancelled %d times, want 1", n)
			}
			// Whatever the sink reports is an in-order prefix.
			if diff := cmp.Diff(ints(len(got)), got); diff != "" {
				t.Errorf("items are not a prefix (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForEachReturnsFnErrorAndCancels(t *testing.T) {
	for _, m := range emittingModes {
		t.Run(m.String(), func(t *testing.T) {
			pub := newPub(100, nil, m)
			var calls []int
			err := sinks.ForEach(t.Context(), pub, func(v int) error {
				calls = append(calls, v)
				if v == 3 {
					return errBoom
				}
				return nil
			})
			pub.Wait()
			if err != errBoom {
				t.Errorf("error = %v, want %v", err, errBoom)
			}
			if diff := cmp.Diff(ints(4), calls); diff != "" {
				t.Errorf("fn calls (-want +got):\n%s", diff)
			}
			if n := pub.Cancels(); n != 1 {
				t.Errorf("upstream cancelled %d times, want 1", n)
			}
		})
	}
}

func TestPanicsBecomePanicErrors(t *testing.T) {
	type result struct {
		Items []int
		Value any
	}
	for _, m := range emittingModes {
		for _, tt := range []struct {
			name string
			run  func(pub flow.Publisher[int]) ([]int, error)
			want result
		}{
			{
				name: "ForEach",
				run: func(pub flow.Publisher[int]) ([]int, error) {
					var calls []int
					err := sinks.ForEach(t.Context(), pub, func(v int) error {
						calls = append(calls, v)
						if v == 3 {
							panic("kaboom")
						}
						return nil
					})
					return calls, err
				},
				want: result{Items: ints(4), Value: "kaboom"},
			},
			{
				name: "Reduce keeps the accumulator before the panic",
				run: func(pub flow.Publisher[int]) ([]int, error) {
					return sinks.Reduce(t.Context(), pub, []int(nil), func(acc []int, v int) []int {
						if v == 3 {
							panic(errBoom)
						}
						return append(acc, v)
					})
				},
				want: result{Items: ints(3), Value: errBoom},
			},
		} {
			t.Run(m.String()+"/"+tt.name, func(t *testing.T) {
				pub := newPub(100, nil, m)
				items, err := tt.run(pub)
				pub.Wait()
				var pe *flow.PanicError
				if !errors.As(err, &pe) {
					t.Fatalf("error = %v (%T), want *flow.PanicError", err, err)
				}
				got := result{Items: items, Value: pe.Value}
				if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				if n := pub.Cancels(); n != 1 {
					t.Errorf("upstream cancelled %d times, want 1", n)
				}
			})
		}
	}
}

func TestSinksDoNotSubscribeWhenContextIsAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, sk := range allSinks() {
		t.Run(sk.name, func(t *testing.T) {
			pub := newPub(10, nil, syncMode)
			got, err := sk.run(ctx, pub)
			if !errors.Is(err, context.Canceled) || got != nil {
				t.Errorf("got %v, %v; want no items and context.Canceled", got, err)
			}
			if n := pub.Subscribes(); n != 0 {
				t.Errorf("subscribed %d times, want 0", n)
			}
		})
	}
}

func TestSinksIgnoreSignalsAfterTheEnd(t *testing.T) {
	for _, sk := range allSinks() {
		t.Run(sk.name, func(t *testing.T) {
			var sub recSub
			pub := funcPub(func(s flow.Subscriber[int]) {
				s.OnSubscribe(&sub)
				s.OnNext(0)
				s.OnNext(1)
				s.OnComplete()
				s.OnNext(2)
				s.OnError(errBoom)
				s.OnComplete()
			})
			got, err := sk.run(t.Context(), pub)
			if err != nil {
				t.Errorf("error = %v, want nil", err)
			}
			if diff := cmp.Diff(ints(2), got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}
}

// Rule 2.5: a second OnSubscribe is cancelled; the first goes on.
func TestSinksCancelASecondSubscription(t *testing.T) {
	for _, sk := range allSinks() {
		t.Run(sk.name, func(t *testing.T) {
			var first, second recSub
			pub := funcPub(func(s flow.Subscriber[int]) {
				s.OnSubscribe(&first)
				s.OnSubscribe(&second)
				s.OnNext(0)
				s.OnComplete()
			})
			got, err := sk.run(t.Context(), pub, sinks.Prefetch(4))
			if err != nil {
				t.Errorf("error = %v, want nil", err)
			}
			if diff := cmp.Diff(ints(1), got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			type calls struct {
				Requests []int64
				Cancels  int
			}
			want := []calls{{Requests: []int64{4}}, {Cancels: 1}}
			gotCalls := []calls{{first.Requests(), first.Cancels()}, {second.Requests(), second.Cancels()}}
			if diff := cmp.Diff(want, gotCalls); diff != "" {
				t.Errorf("calls on the first and second subscription (-want +got):\n%s", diff)
			}
		})
	}
}

// Rule 2.13: OnSubscribe(nil) and OnError(nil) panic.
func TestSinksPanicOnNilSignals(t *testing.T) {
	for _, tt := range []struct {
		name   string
		script func(s flow.Subscriber[int])
		want   string
	}{
		{
			name:   "OnSubscribe(nil)",
			script: func(s flow.Subscriber[int]) { s.OnSubscribe(nil) },
			want:   "sluice: panic: sluice: OnSubscribe called with a nil Subscription (rule 2.13)",
		},
		{
			name: "OnError(nil)",
			script: func(s flow.Subscriber[int]) {
				s.OnSubscribe(&recSub{})
				s.OnError(nil)
			},
			want: "sluice: panic: sluice: OnError called with a nil error (rule 2.13)",
		},
	} {
		for _, sk := range allSinks() {
			if sk.name == "ToChannel" {
				continue // runs the sink on another goroutine; covered below
			}
			t.Run(tt.name+"/"+sk.name, func(t *testing.T) {
				err := flow.Catch(func() { _, _ = sk.run(t.Context(), funcPub(tt.script)) })
				if err == nil || err.Error() != tt.want {
					t.Errorf("panic = %v, want %q", err, tt.want)
				}
			})
		}
		t.Run(tt.name+"/ToChannel", func(t *testing.T) {
			ch := make(chan int)
			err := flow.Catch(func() { _ = sinks.ToChannel(t.Context(), funcPub(tt.script), ch) })
			if err == nil || err.Error() != tt.want {
				t.Errorf("panic = %v, want %q", err, tt.want)
			}
			if _, ok := <-ch; ok {
				t.Error("channel still open after ToChannel panicked")
			}
		})
	}
}

type ctxKey struct{}

// Every sink exposes its context to upstream.
func TestSinksExposeTheirContextUpstream(t *testing.T) {
	for _, sk := range allSinks() {
		t.Run(sk.name, func(t *testing.T) {
			ctx := context.WithValue(t.Context(), ctxKey{}, sk.name)
			var got any
			pub := funcPub(func(s flow.Subscriber[int]) {
				c, ok := s.(interface{ Context() context.Context })
				if ok {
					got = c.Context().Value(ctxKey{})
				}
				flow.Complete(s)
			})
			if _, err := sk.run(ctx, pub); err != nil {
				t.Fatal(err)
			}
			if got != sk.name {
				t.Errorf("Context().Value = %v, want %q", got, sk.name)
			}
		})
	}
}

func TestArgumentsPanic(t *testing.T) {
	ctx := t.Context()
	pub := newPub(1, nil, syncMode)
	var nilCtx context.Context
	var nilPub flow.Publisher[int]
	for _, tt := range []struct {
		name string
		f    func()
		want string
	}{
		{"Prefetch(0)", func() { sinks.Prefetch(0) }, "sluice: Prefetch: n <= 0"},
		{"Prefetch(-1)", func() { sinks.Prefetch(-1) }, "sluice: Prefetch: n <= 0"},
		{"ForEach nil fn", func() { _ = sinks.ForEach(ctx, pub, nil) }, "sluice: ForEach: nil function"},
		{"ForEach nil ctx", func() { _ = sinks.ForEach(nilCtx, pub, func(int) error { return nil }) }, "sluice: ForEach: nil Context"},
		{"Collect nil publisher", func() { _, _ = sinks.Collect(ctx, nilPub) }, "sluice: Collect: nil Publisher"},
		{"Reduce nil f", func() { _, _ = sinks.Reduce[int, int](ctx, pub, 0, nil) }, "sluice: Reduce: nil function"},
		{"Drain nil option", func() { _, _ = sinks.Drain(ctx, pub, nil) }, "sluice: Drain: nil Option"},
		{"ToChannel nil channel", func() { _ = sinks.ToChannel(ctx, pub, nil) }, "sluice: ToChannel: nil channel"},
		{"All Unbounded", func() { sinks.All(ctx, pub, sinks.Unbounded()) }, "sluice: All: Unbounded is not supported (the queue is bounded); use Prefetch"},
		{"All nil publisher", func() { sinks.All(ctx, nilPub) }, "sluice: All: nil Publisher"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := flow.Catch(tt.f)
			var pe *flow.PanicError
			if !errors.As(err, &pe) || pe.Value != tt.want {
				t.Errorf("panic = %v, want %q", err, tt.want)
			}
		})
	}
	if n := pub.Subscribes(); n != 0 {
		t.Errorf("publisher subscribed %d times by calls that panicked", n)
	}
}

func TestAllBreakCancelsUpstream(t *testing.T) {
	for _, m := range emittingModes {
		t.Run(m.String(), func(t *testing.T) {
			pub := newPub(-1, nil, m)
			var got []int
			for v, err := range sinks.All(t.Context(), pub, sinks.Prefetch(16)) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
				if v == 99 {
					break
				}
			}
			pub.Wait()
			if diff := cmp.Diff(ints(100), got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if n := pub.Cancels(); n != 1 {
				t.Errorf("upstream cancelled %d times, want 1", n)
			}
		})
	}
}

func TestAllPanicInLoopBodyCancelsUpstream(t *testing.T) {
	pub := newPub(-1, nil, asyncMode)
	err := flow.Catch(func() {
		for v := range sinks.All(t.Context(), pub) {
			if v == 5 {
				panic("body")
			}
		}
	})
	pub.Wait()
	var pe *flow.PanicError
	if !errors.As(err, &pe) || pe.Value != "body" {
		t.Errorf("panic = %v, want body", err)
	}
	if n := pub.Cancels(); n != 1 {
		t.Errorf("upstream cancelled %d times, want 1", n)
	}
}

func TestAllSubscribesAgainForEachLoop(t *testing.T) {
	pub := newPub(5, nil, syncMode)
	seq := sinks.All(t.Context(), pub)
	var got [][]int
	for range 2 {
		var items []int
		for v, err := range seq {
			if err != nil {
				t.Fatal(err)
			}
			items = append(items, v)
		}
		got = append(got, items)
	}
	if diff := cmp.Diff([][]int{ints(5), ints(5)}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := pub.Subscribes(); n != 2 {
		t.Errorf("subscribed %d times, want 2", n)
	}
}

func TestAllFailsAnUpstreamThatExceedsDemand(t *testing.T) {
	var sub recSub
	pub := funcPub(func(s flow.Subscriber[int]) {
		s.OnSubscribe(&sub)
		for i := range 10 {
			s.OnNext(i) // only 4 were requested
		}
		s.OnComplete()
	})
	got, err := runAll(t.Context(), pub, sinks.Prefetch(4))
	if !errors.Is(err, sinks.ErrProtocol) {
		t.Errorf("error = %v, want ErrProtocol", err)
	}
	if diff := cmp.Diff(ints(4), got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	if n := sub.Cancels(); n != 1 {
		t.Errorf("upstream cancelled %d times, want 1", n)
	}
}

// The queue hands items across goroutines; -race checks the handover.
func TestAllWithAsyncProducer(t *testing.T) {
	const n = 100_000
	for _, p := range []int{1, 3, 8, 256} {
		t.Run(fmt.Sprintf("prefetch=%d", p), func(t *testing.T) {
			pub := newPub(n, errBoom, asyncMode)
			got, err := runAll(t.Context(), pub, sinks.Prefetch(p))
			pub.Wait()
			if err != errBoom {
				t.Errorf("error = %v, want %v", err, errBoom)
			}
			if len(got) != n {
				t.Fatalf("got %d items, want %d", len(got), n)
			}
			if diff := cmp.Diff(ints(n), got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			// With prefetch 1, the last Request (after the last item) is
			// made only if the loop gets there before the error.
			reqs := pub.Requests()
			want := allRequests(wantRequests(p, n), n, asyncMode, reqs)
			if diff := cmp.Diff(want, reqs); diff != "" {
				t.Errorf("Request calls (-want +got):\n%s", diff)
			}
		})
	}
}

// A slow reader throttles the source: at most cap(ch) items wait in the
// channel and one more in a blocked send. After each receive,
// synctest.Wait lets the source run as far ahead as it can.
func TestToChannelSlowReaderBackpressures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, capacity = 20, 2
		var emitted atomic.Int64
		pub := newPub(n, nil, syncMode)
		pub.onEmit = func(int) { emitted.Add(1) }
		ch := make(chan int, capacity)
		errc := make(chan error, 1)
		go func() { errc <- sinks.ToChannel(t.Context(), pub, ch) }()
		start := time.Now()
		var got []int
		var ahead []int // items emitted and not yet received, after each receive
		for v := range ch {
			got = append(got, v)
			synctest.Wait()
			ahead = append(ahead, int(emitted.Load())-len(got))
			time.Sleep(time.Second)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ints(n), got); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
		// Two in the channel and one blocked in send until the source runs
		// out; then the channel drains.
		wantAhead := []int{
			3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, // 17 receives with the source blocked
			2, 1, 0,
		}
		if diff := cmp.Diff(wantAhead, ahead); diff != "" {
			t.Errorf("items ahead of the reader (-want +got):\n%s", diff)
		}
		if elapsed := time.Since(start); elapsed != n*time.Second {
			t.Errorf("took %v, want %v", elapsed, n*time.Second)
		}
		if diff := cmp.Diff(wantRequests(capacity, n), pub.Requests()); diff != "" {
			t.Errorf("Request calls (-want +got):\n%s", diff)
		}
	})
}

// Nobody reads: the send blocks until ctx ends, then ToChannel closes the
// channel without a send racing the close.
func TestToChannelAbandonsABlockedSend(t *testing.T) {
	for _, m := range emittingModes {
		t.Run(m.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				defer cancel()
				pub := newPub(-1, nil, m)
				ch := make(chan int, 1)
				err := sinks.ToChannel(ctx, pub, ch)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("error = %v, want context.DeadlineExceeded", err)
				}
				pub.Wait()
				var got []int
				for v := range ch {
					got = append(got, v)
				}
				if diff := cmp.Diff([]int{0}, got); diff != "" {
					t.Errorf("items in the channel (-want +got):\n%s", diff)
				}
				if n := pub.Cancels(); n != 1 {
					t.Errorf("upstream cancelled %d times, want 1", n)
				}
			})
		})
	}
}

// All requests from its loop after consuming, and stops once the stream
// has ended: a synchronous source of 10 items ends when the demand reaches
// 10, one of 11 only with the fourth Request.
func TestAllRequestsFromItsLoopUntilTheEnd(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want []int64
	}{
		{n: 10, want: []int64{4, 3, 3}},
		{n: 11, want: []int64{4, 3, 3, 3}},
	} {
		t.Run(fmt.Sprint("n=", tt.n), func(t *testing.T) {
			pub := newPub(tt.n, nil, syncMode)
			got, err := runAll(t.Context(), pub, sinks.Prefetch(4))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ints(tt.n), got); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, pub.Requests()); diff != "" {
				t.Errorf("Request calls (-want +got):\n%s", diff)
			}
		})
	}
}
