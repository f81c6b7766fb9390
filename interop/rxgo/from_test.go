package rxgo_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	rx "github.com/reactivex/rxgo/v2"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	rxinterop "github.com/sluicego/sluice/interop/rxgo"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

func ints(lo, hi int) []int {
	var s []int
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

// fromItems returns an Observable of items, on a closed buffered
// channel (rx.Just cannot carry nil).
func fromItems(items ...rx.Item) rx.Observable {
	ch := make(chan rx.Item, len(items))
	for _, it := range items {
		ch <- it
	}
	close(ch)
	return rx.FromChannel(ch)
}

func TestFromObservableItems(t *testing.T) {
	ctx := context.Background()
	for _, policy := range []flow.Overflow{flow.Block, flow.DropNewest, flow.DropOldest, flow.Fail} {
		t.Run(policy.String(), func(t *testing.T) {
			got, err := sinks.Collect(ctx, rxinterop.FromObservable[int](rx.Just(1, 2, 3)(), 8, policy))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff([]int{1, 2, 3}, got); d != "" {
				t.Errorf("items (-want +got):\n%s", d)
			}
		})
	}
}

// Under Block a small buffer slows the Observable down: nothing is lost.
func TestFromObservableBlockBackpressure(t *testing.T) {
	var drops int
	pub := rxinterop.FromObservable[int](rx.Range(0, 10_000), 4, flow.Block,
		rxinterop.OnDrop(func(int, flow.DropReason) { drops++ }))
	got, err := sinks.Collect(context.Background(), pub, sinks.Prefetch(1))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ints(0, 10_000), got); d != "" {
		t.Errorf("items (-want +got):\n%s", d)
	}
	if drops != 0 {
		t.Errorf("drops = %d, want 0", drops)
	}
}

// Through rxgo operators and back.
func TestFromObservableRxOperators(t *testing.T) {
	obs := rx.Range(0, 100).
		Map(func(_ context.Context, v any) (any, error) { return v.(int) * 2, nil }).
		Filter(func(v any) bool { return v.(int)%3 == 0 })
	got, err := sinks.Collect(context.Background(), operators.Map(rxinterop.FromObservable[int](obs, 16, flow.Block), func(v int) int { return v + 1 }))
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for i := range 100 {
		if v := i * 2; v%3 == 0 {
			want = append(want, v+1)
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("items (-want +got):\n%s", d)
	}
}

// The overflow policies with a subscriber that requests nothing until the
// Observable has been read to the end: the buffer of 3 keeps what the
// policy says, and every other item is counted and hooked.
func TestFromObservableOverflow(t *testing.T) {
	tests := []struct {
		policy    flow.Overflow
		wantDrops int
		items     []int
		dropped   map[flow.DropReason][]int
		overflow  bool
	}{
		{flow.DropNewest, 7, []int{0, 1, 2}, map[flow.DropReason][]int{flow.ReasonNewest: ints(3, 10)}, false},
		{flow.DropOldest, 7, []int{7, 8, 9}, map[flow.DropReason][]int{flow.ReasonOldest: ints(0, 7)}, false},
		{flow.Fail, 1, []int{0, 1, 2}, map[flow.DropReason][]int{flow.ReasonOverflow: {3}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			var mu sync.Mutex
			dropped := map[flow.DropReason][]int{}
			enough := make(chan struct{})
			hook := func(v int, r flow.DropReason) {
				mu.Lock()
				defer mu.Unlock()
				dropped[r] = append(dropped[r], v)
				if n := len(dropped[r]); n == tt.wantDrops {
					close(enough)
				}
			}
			pub := rxinterop.FromObservable[int](rx.Just(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)(), 3, tt.policy, rxinterop.OnDrop(hook))
			s := flowtest.NewSubscriber[int](t, 0)
			pub.Subscribe(s)
			<-enough
			s.Request(100)
			if tt.overflow {
				if err := s.AwaitError(); !errors.Is(err, flow.ErrOverflow) {
					t.Fatalf("error = %v, want ErrOverflow", err)
				}
			} else if !s.AwaitCompleted() {
				t.Fatal("not completed")
			}
			if d := cmp.Diff(tt.items, s.Items()); d != "" {
				t.Errorf("items (-want +got):\n%s", d)
			}
			mu.Lock()
			defer mu.Unlock()
			if d := cmp.Diff(tt.dropped, dropped); d != "" {
				t.Errorf("dropped (-want +got):\n%s", d)
			}
		})
	}
}

func TestFromObservableErrors(t *testing.T) {
	boom := errors.New("boom")
	t.Run("error item", func(t *testing.T) {
		s := flowtest.NewSubscriber[int](t, flow.Unbounded)
		rxinterop.FromObservable[int](rx.Just(1, 2, boom, 3)(), 8, flow.Block).Subscribe(s)
		if err := s.AwaitError(); !errors.Is(err, boom) {
			t.Fatalf("error = %v, want boom", err)
		}
		if d := cmp.Diff([]int{1, 2}, s.Items()); d != "" {
			t.Errorf("items (-want +got):\n%s", d)
		}
	})
	t.Run("wrong type", func(t *testing.T) {
		s := flowtest.NewSubscriber[int](t, flow.Unbounded)
		rxinterop.FromObservable[int](rx.Just(1, "two", 3)(), 8, flow.Block, rxinterop.Name("rx")).Subscribe(s)
		err := s.AwaitError()
		if !errors.Is(err, rxinterop.ErrItemType) || !strings.HasPrefix(err.Error(), "rx: ") || !strings.Contains(err.Error(), "got string, want int") {
			t.Fatalf("error = %v, want ErrItemType wrapped with the stage name and the types", err)
		}
		if d := cmp.Diff([]int{1}, s.Items()); d != "" {
			t.Errorf("items (-want +got):\n%s", d)
		}
	})
	t.Run("nil for an interface type", func(t *testing.T) {
		got, err := sinks.Collect(context.Background(), rxinterop.FromObservable[any](fromItems(rx.Of(1), rx.Of(nil), rx.Of("x")), 8, flow.Block))
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]any{1, nil, "x"}, got); d != "" {
			t.Errorf("items (-want +got):\n%s", d)
		}
	})
}

// Cancelling the subscription stops rxgo's goroutines (goleak checks it
// at the end of the package's tests).
func TestFromObservableCancel(t *testing.T) {
	for _, policy := range []flow.Overflow{flow.Block, flow.DropNewest, flow.DropOldest, flow.Fail} {
		t.Run(policy.String(), func(t *testing.T) {
			obs := rx.Range(0, 1<<30).Map(func(_ context.Context, v any) (any, error) { return v, nil })
			got, err := sinks.Collect(context.Background(), operators.Take(rxinterop.FromObservable[int](obs, 64, policy), 5))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(ints(0, 5), got); d != "" {
				t.Errorf("items (-want +got):\n%s", d)
			}
		})
	}
	t.Run("sink context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := sinks.ForEach(ctx, rxinterop.FromObservable[int](rx.Range(0, 1<<30), 16, flow.Block), func(int) error {
			if n++; n == 100 {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ForEach = %v, want context.Canceled", err)
		}
	})
}

func TestFromObservablePanics(t *testing.T) {
	tests := map[string]func(){
		"sluice: FromObservable: nil Observable": func() { rxinterop.FromObservable[int](nil, 1, flow.Block) },
		"sluice: FromObservable: capacity <= 0":  func() { rxinterop.FromObservable[int](rx.Empty(), 0, flow.Block) },
		"sluice: FromObservable: invalid policy": func() { rxinterop.FromObservable[int](rx.Empty(), 1, flow.Overflow(9)) },
		"sluice: fromObservable#": func() {
			rxinterop.FromObservable[int](rx.Empty(), 1, flow.Block, rxinterop.OnDrop(func(string, flow.DropReason) {}))
		},
		"sluice: ToObservable: nil Publisher":            func() { rxinterop.ToObservable[int](nil) },
		"sluice: rxgo.Prefetch: n <= 0":                  func() { rxinterop.Prefetch(0) },
		"sluice: Subscribe called with a nil Subscriber": func() { rxinterop.FromObservable[int](rx.Empty(), 1, flow.Block).Subscribe(nil) },
	}
	for want, f := range tests {
		t.Run(want, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.HasPrefix(s, want) {
					t.Errorf("panic = %v, want a message starting %q", r, want)
				}
			}()
			f()
		})
	}
}

func TestFromObservableConformance(t *testing.T) {
	for _, policy := range []flow.Overflow{flow.Block, flow.DropNewest} {
		t.Run(policy.String(), func(t *testing.T) {
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				New: func(n int64) flow.Publisher[int] {
					// A buffer that holds every item, so that no policy drops.
					return rxinterop.FromObservable[int](rx.Range(0, int(n)), max(int(n), 1), policy)
				},
				Failed: func() flow.Publisher[int] {
					return rxinterop.FromObservable[int](rx.Thrown(errors.New("failed")), 1, policy)
				},
				MaxElements: 1024,
			})
		})
	}
}

// A round trip, sluice → rxgo → sluice, is a conforming Publisher.
func TestRoundTripConformance(t *testing.T) {
	flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
		New: func(n int64) flow.Publisher[int] {
			return rxinterop.FromObservable[int](rxinterop.ToObservable(sources.Range(0, int(n))), 16, flow.Block)
		},
		Failed: func() flow.Publisher[int] {
			return rxinterop.FromObservable[int](rxinterop.ToObservable(sources.Error[int](errors.New("failed"))), 16, flow.Block)
		},
		MaxElements: 1024,
	})
}
