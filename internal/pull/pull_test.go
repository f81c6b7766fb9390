package pull_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/pull"
)

// fake is a Source of 0..n-1 that records the engine's calls.
type fake struct {
	n          int
	closePanic any
	calls      []string
}

func (f *fake) Next() (int, bool, error) {
	i := len(f.calls)
	f.calls = append(f.calls, "Next")
	if i >= f.n {
		return 0, false, nil
	}
	return i, true, nil
}

func (f *fake) Close() {
	f.calls = append(f.calls, "Close")
	if f.closePanic != nil {
		panic(f.closePanic)
	}
}

// interrupting is a fake that also counts Interrupt calls.
type interrupting struct {
	fake
	mu         sync.Mutex
	interrupts int
}

func (f *interrupting) Interrupt() {
	f.mu.Lock()
	f.interrupts++
	f.mu.Unlock()
}

// log subscribes to src and returns the subscription and the signal log.
func subscribe(src pull.Source[int]) (flow.Subscription, *[]string) {
	var sub flow.Subscription
	log := new([]string)
	pull.Subscribe[int](flow.SubscriberFuncs[int]{
		Subscribe: func(s flow.Subscription) { sub = s },
		Next:      func(i int) { *log = append(*log, fmt.Sprint(i)) },
		Error:     func(err error) { *log = append(*log, "error: "+err.Error()) },
		Complete:  func() { *log = append(*log, "complete") },
	}, src, "test", "")
	return sub, log
}

func TestCloseOnceForEveryEnd(t *testing.T) {
	tests := []struct {
		name       string
		closePanic any
		drive      func(flow.Subscription)
		calls      []string
		log        []string
	}{
		{
			name:  "completion",
			drive: func(s flow.Subscription) { s.Request(5); s.Cancel() },
			calls: []string{"Next", "Next", "Next", "Close"},
			log:   []string{"0", "1", "complete"},
		},
		{
			name:  "cancel while idle",
			drive: func(s flow.Subscription) { s.Request(1); s.Cancel(); s.Cancel(); s.Request(1) },
			calls: []string{"Next", "Close"},
			log:   []string{"0"},
		},
		{
			name:  "non-positive request",
			drive: func(s flow.Subscription) { s.Request(1); s.Request(0); s.Request(0); s.Cancel() },
			calls: []string{"Next", "Close"},
			log:   []string{"0", "error: " + flow.NonPositiveRequestError(0).Error()},
		},
		{
			name:       "a panic in Close turns completion into an error",
			closePanic: "close boom",
			drive:      func(s flow.Subscription) { s.Request(5) },
			calls:      []string{"Next", "Next", "Next", "Close"},
			log:        []string{"0", "1", "error: sluice: panic: close boom"},
		},
		{
			name:       "a panic in Close after cancel is dropped",
			closePanic: "close boom",
			drive:      func(s flow.Subscription) { s.Request(1); s.Cancel() },
			calls:      []string{"Next", "Close"},
			log:        []string{"0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &interrupting{fake: fake{n: 2, closePanic: tt.closePanic}}
			sub, log := subscribe(src)
			tt.drive(sub)
			if diff := cmp.Diff(tt.calls, src.calls); diff != "" {
				t.Errorf("calls into the source (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.log, *log); diff != "" {
				t.Errorf("signals (-want +got)\n%s", diff)
			}
		})
	}
}

func TestInterruptOnceOnCancelOrBadRequest(t *testing.T) {
	src := &interrupting{fake: fake{n: 100}}
	sub, _ := subscribe(src)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if i%2 == 0 {
				sub.Cancel()
			} else {
				sub.Request(-1)
			}
		})
	}
	wg.Wait()
	if src.interrupts != 1 {
		t.Errorf("Interrupt called %d times, want 1", src.interrupts)
	}
}

// ranger is a fake whose Range the engine must prefer under Unbounded
// demand from the start.
type ranger struct {
	fake
	panicAt int
}

func (r *ranger) Range(yield func(int) bool) {
	r.calls = append(r.calls, "Range")
	for i := range r.n {
		if i == r.panicAt {
			panic(errors.New("range boom"))
		}
		if !yield(i) {
			return
		}
	}
}

func TestRangerUnderUnboundedDemand(t *testing.T) {
	tests := []struct {
		name    string
		panicAt int
		drive   func(flow.Subscription)
		calls   []string
		log     []string
	}{
		{
			name:  "unbounded from the start ranges",
			drive: func(s flow.Subscription) { s.Request(flow.Unbounded) },
			calls: []string{"Range", "Close"},
			log:   []string{"0", "1", "2", "complete"},
		},
		{
			name:  "bounded first pulls, even once unbounded",
			drive: func(s flow.Subscription) { s.Request(1); s.Request(flow.Unbounded) },
			calls: []string{"Next", "Next", "Next", "Next", "Close"},
			log:   []string{"0", "1", "2", "complete"},
		},
		{
			name:    "a panic in Range fails the stream",
			panicAt: 1,
			drive:   func(s flow.Subscription) { s.Request(flow.Unbounded) },
			calls:   []string{"Range", "Close"},
			log:     []string{"0", "error: sluice: panic: range boom"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &ranger{fake: fake{n: 3}, panicAt: -1}
			if tt.panicAt != 0 {
				src.panicAt = tt.panicAt
			}
			sub, log := subscribe(src)
			tt.drive(sub)
			if diff := cmp.Diff(tt.calls, src.calls); diff != "" {
				t.Errorf("calls into the source (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.log, *log); diff != "" {
				t.Errorf("signals (-want +got)\n%s", diff)
			}
		})
	}
}
