package operators_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
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
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// Nine calls of one second each, three at a time, take three seconds,
// and never more than three run at once.
func TestMapAsyncRunsConcurrencyCallsAtOnce(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered=%t", ordered), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var fl pmFlight
				f := func(_ context.Context, v int) (int, error) {
					fl.enter()
					defer fl.leave()
					time.Sleep(time.Second)
					return v * 10, nil
				}
				opts := []operators.Option{}
				if ordered {
					opts = append(opts, operators.Ordered())
				}
				start := time.Now()
				rec := flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
				operators.MapAsync(&btSource{n: 9}, f, 3, opts...).Subscribe(rec)
				btAwait(t, rec)
				if d := time.Since(start); d != 3*time.Second {
					t.Errorf("took %v, want 3s", d)
				}
				pmCheckItems(t, ordered, pmWant(9, func(v int) int { return v * 10 }), btItems(rec))
				if got := fl.maxCalls.Load(); got != 3 {
					t.Errorf("max concurrent calls %d, want 3", got)
				}
			})
		})
	}
}

// Calls that end in the reverse order of their items: unordered, each
// result is emitted when its call ends; ordered, all wait for item 0.
func TestMapAsyncOrderOfResults(t *testing.T) {
	for _, tc := range []struct {
		ordered   bool
		wantItems []int
		wantTimes []time.Duration
	}{
		{false, []int{4, 3, 2, 1, 0}, []time.Duration{1 * time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second}},
		{true, []int{0, 1, 2, 3, 4}, []time.Duration{5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}},
	} {
		t.Run(fmt.Sprintf("ordered=%t", tc.ordered), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := func(_ context.Context, v int) (int, error) {
					time.Sleep(time.Duration(5-v) * time.Second)
					return v, nil
				}
				opts := []operators.Option{}
				if tc.ordered {
					opts = append(opts, operators.Ordered())
				}
				start := time.Now()
				rec := flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
				operators.MapAsync(&btSource{n: 5}, f, 5, opts...).Subscribe(rec)
				btAwait(t, rec)
				if diff := cmp.Diff(tc.wantItems, btItems(rec)); diff != "" {
					t.Errorf("items (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantTimes, rec.ItemOffsets(start)); diff != "" {
					t.Errorf("item times (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// An error from one call ends the stream: the other calls in flight see
// their context cancelled, OnError comes only once all of them have
// returned, and every item taken is dropped with its reason.
func TestMapAsyncErrorCancelsCallsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var started, returned atomic.Int64
		var mu sync.Mutex
		var ctxErrs []error
		f := func(ctx context.Context, v int) (int, error) {
			started.Add(1)
			defer returned.Add(1)
			if v == 0 {
				time.Sleep(time.Second)
				return 0, errBoom
			}
			<-ctx.Done()
			mu.Lock()
			ctxErrs = append(ctxErrs, ctx.Err())
			mu.Unlock()
			return 0, ctx.Err()
		}
		var drops btDrops[int]
		src := &btSource{n: 10}
		rec := flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
		var returnedAtError int64
		hooked := btHook(rec, nil)
		operators.MapAsync(src, f, 4, operators.Name("fetch"), operators.Prefetch(2),
			operators.OnDrop(drops.Hook)).Subscribe(&pmOnError[int]{btHooked: hooked, before: func() { returnedAtError = returned.Load() }})
		start := time.Now()
		err := rec.AwaitError()
		if !errors.Is(err, errBoom) || err.Error() != "fetch: boom" {
			t.Fatalf("error %v, want fetch: boom", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("error after %v, want 1s", d)
		}
		if returnedAtError != 4 || started.Load() != 4 {
			t.Errorf("%d calls started, %d returned before OnError; want 4, 4", started.Load(), returnedAtError)
		}
		if diff := cmp.Diff([]error{context.Canceled, context.Canceled, context.Canceled}, ctxErrs, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
			t.Errorf("ctx errors seen by the calls in flight (-want +got):\n%s", diff)
		}
		got := drops.All()
		slices.SortFunc(got, func(a, b btDrop[int]) int { return a.Item - b.Item })
		want := append(btDropsOf(flow.ReasonError, 0), btDropsOf(flow.ReasonCancelled, 1, 2, 3, 4, 5)...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("drops (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int64{6}, src.Requests()); diff != "" {
			t.Errorf("upstream requests (-want +got):\n%s", diff)
		}
		if src.Cancels() != 1 {
			t.Errorf("upstream cancelled %d times, want 1", src.Cancels())
		}
	})
}

// pmOnError calls before at the start of OnError.
type pmOnError[T any] struct {
	*btHooked[T]
	before func()
}

func (s *pmOnError[T]) OnError(err error) {
	s.before()
	s.btHooked.OnError(err)
}

func TestMapAsyncPanicIsAPanicError(t *testing.T) {
	for _, tc := range []struct {
		opts []operators.Option
		want *regexp.Regexp
	}{
		{[]operators.Option{operators.Name("fetch")}, regexp.MustCompile(`^fetch: sluice: panic: bad$`)},
		{nil, regexp.MustCompile(`^mapAsync#\d+: sluice: panic: bad$`)}, // the derived name
	} {
		rec := flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
		operators.MapAsync(&btSource{n: 10}, func(_ context.Context, v int) (int, error) {
			if v == 3 {
				panic("bad")
			}
			return v, nil
		}, 2, tc.opts...).Subscribe(rec)
		err := rec.AwaitError()
		var pe *flow.PanicError
		if !errors.As(err, &pe) || pe.Value != "bad" || !tc.want.MatchString(err.Error()) {
			t.Errorf("error %v, want a *flow.PanicError matching %v", err, tc.want)
		}
	}
}

type pmCtxKey struct{}

// The calls' context derives from the sink's: its values reach f, and
// its end ends the calls.
func TestMapAsyncContextFromSink(t *testing.T) {
	t.Run("values", func(t *testing.T) {
		ctx := context.WithValue(context.Background(), pmCtxKey{}, "from the sink")
		got, err := sinks.Collect(ctx, operators.MapAsync(sources.Range(0, 3), func(ctx context.Context, v int) (string, error) {
			return fmt.Sprint(v, ctx.Value(pmCtxKey{})), nil
		}, 2, operators.Ordered()))
		if diff := cmp.Diff([]string{"0from the sink", "1from the sink", "2from the sink"}, got); diff != "" || err != nil {
			t.Errorf("err %v, items (-want +got):\n%s", err, diff)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var started, returned atomic.Int64
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			_, err := sinks.Drain(ctx, operators.MapAsync(sources.Range(0, 100), func(ctx context.Context, v int) (int, error) {
				started.Add(1)
				defer returned.Add(1)
				<-ctx.Done()
				return 0, ctx.Err()
			}, 3))
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
				t.Errorf("Drain returned %v after %v, want DeadlineExceeded after 1s", err, time.Since(start))
			}
			synctest.Wait()
			if started.Load() != 3 || returned.Load() != 3 {
				t.Errorf("%d calls started, %d returned; want 3, 3", started.Load(), returned.Load())
			}
		})
	})
}

// Without a Context method on the subscriber, the calls' context derives
// from context.Background(); a Cancel from downstream ends it, and so does
// completion.
func TestMapAsyncContextEndsWithTheStream(t *testing.T) {
	t.Run("cancel", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var mu sync.Mutex
			var ctxErrs []error
			rec := flowtest.NewSubscriber[int](t, 1, btWait)
			operators.MapAsync(&btSource{n: 100}, func(ctx context.Context, v int) (int, error) {
				<-ctx.Done()
				mu.Lock()
				ctxErrs = append(ctxErrs, ctx.Err())
				mu.Unlock()
				return v, nil
			}, 2).Subscribe(rec)
			synctest.Wait()
			rec.Cancel()
			synctest.Wait()
			if diff := cmp.Diff([]error{context.Canceled, context.Canceled}, ctxErrs, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("ctx errors (-want +got):\n%s", diff)
			}
			if n := len(btItems(rec)); n != 0 {
				t.Errorf("%d items delivered after cancel", n)
			}
		})
	})
	t.Run("complete", func(t *testing.T) {
		var seen atomic.Pointer[context.Context]
		rec := flowtest.NewSubscriber[int](t, flow.Unbounded, btWait)
		operators.MapAsync(&btSource{n: 3}, func(ctx context.Context, v int) (int, error) {
			seen.Store(&ctx)
			return v, nil
		}, 2).Subscribe(rec)
		btAwait(t, rec)
		if err := (*seen.Load()).Err(); err != context.Canceled {
			t.Errorf("ctx.Err() after completion: %v, want context.Canceled", err)
		}
	})
}
