package operators_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
)

// rsManual is a source that the test drives: it records its subscriber,
// every Request and Cancel, and emits what the test tells it to. The test
// must emit only within the demand it has seen.
type rsManual struct {
	mu        sync.Mutex
	s         flow.Subscriber[int]
	requests  []int64
	cancelled bool
}

func (m *rsManual) Subscribe(s flow.Subscriber[int]) {
	flow.RequireSubscriber(s)
	m.mu.Lock()
	m.s = s
	m.mu.Unlock()
	s.OnSubscribe(m)
}

func (m *rsManual) Request(n int64) {
	m.mu.Lock()
	m.requests = append(m.requests, n)
	m.mu.Unlock()
}

func (m *rsManual) Cancel() {
	m.mu.Lock()
	m.cancelled = true
	m.mu.Unlock()
}

func (m *rsManual) Emit(vs ...int) {
	for _, v := range vs {
		m.s.OnNext(v)
	}
}

func (m *rsManual) State() (requests []int64, cancelled bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int64{}, m.requests...), m.cancelled
}

// rsStep is one step of a timeout scenario, at a time since the start.
type rsStep struct {
	at      time.Duration
	emit    []int
	request int64
	done    bool // complete the source
}

type rsOutcome struct {
	Items     []int
	EndAt     time.Duration
	Result    string
	Cancelled bool
}

func rsPlay(t *testing.T, build func(flow.Publisher[int]) flow.Publisher[int], initial int64, steps []rsStep) rsOutcome {
	src := &rsManual{}
	rec := newRec[int](t, initial)
	build(src).Subscribe(rec)
	for _, st := range steps {
		time.Sleep(st.at - time.Since(rec.start))
		switch {
		case st.done:
			src.s.OnComplete()
		case st.request > 0:
			rec.Request(st.request)
		default:
			src.Emit(st.emit...)
		}
	}
	time.Sleep(time.Hour)
	synctest.Wait()
	_, cancelled := src.State()
	rec.Cancel()
	return rsOutcome{Items: rec.Items(), EndAt: rec.EndAt(), Result: rec.Result(), Cancelled: cancelled}
}

func TestTimeouts(t *testing.T) {
	first := func(p flow.Publisher[int]) flow.Publisher[int] {
		return operators.TimeoutFirst(p, 100*ms, operators.Name("t"))
	}
	idle := func(p flow.Publisher[int]) flow.Publisher[int] {
		return operators.TimeoutIdle(p, 100*ms, operators.Name("t"))
	}
	demand := func(p flow.Publisher[int]) flow.Publisher[int] {
		return operators.TimeoutDemand(p, 100*ms, operators.Name("t"))
	}
	const (
		firstMsg  = "t: no first item within 100ms of the first request (first-item timeout)"
		idleMsg   = "t: no item for 100ms while demand was outstanding (idle timeout)"
		demandMsg = "t: no demand from downstream for 100ms (backpressure timeout)"
	)
	tests := []struct {
		name    string
		build   func(flow.Publisher[int]) flow.Publisher[int]
		initial int64
		steps   []rsStep
		want    rsOutcome
	}{
		{"first: no item in time", first, unb,
			[]rsStep{{at: 150 * ms, emit: []int{1}}},
			rsOutcome{Items: []int{}, EndAt: 100 * ms, Result: firstMsg, Cancelled: true}},
		{"first: the clock starts at the first request", first, 0,
			[]rsStep{{at: time.Second, request: 1}, {at: 1090 * ms, emit: []int{1}}, {at: 5 * time.Second, done: true}},
			rsOutcome{Items: []int{1}, EndAt: 5 * time.Second, Result: "complete"}},
		{"first: later gaps do not count", first, unb,
			[]rsStep{{at: 99 * ms, emit: []int{1}}, {at: time.Second, emit: []int{2}}, {at: 2 * time.Second, done: true}},
			rsOutcome{Items: []int{1, 2}, EndAt: 2 * time.Second, Result: "complete"}},
		// The idle timer looks every d/8 = 12.5ms: it sees the item of
		// 160ms at 162.5ms and fires d after that.
		{"idle: d after the look that saw the last item", idle, unb,
			[]rsStep{{at: 0, emit: []int{1}}, {at: 80 * ms, emit: []int{2}}, {at: 160 * ms, emit: []int{3}}},
			rsOutcome{Items: []int{1, 2, 3}, EndAt: 262500 * time.Microsecond, Result: idleMsg, Cancelled: true}},
		{"idle: exactly d after demand starts, when no item comes", idle, 0,
			[]rsStep{{at: 30 * ms, request: 2}},
			rsOutcome{Items: []int{}, EndAt: 130 * ms, Result: idleMsg, Cancelled: true}},
		{"idle: an item just before the deadline restarts the clock", idle, 0,
			[]rsStep{{at: 30 * ms, request: 2}, {at: 129 * ms, emit: []int{1}}},
			rsOutcome{Items: []int{1}, EndAt: 230 * ms, Result: idleMsg, Cancelled: true}},
		{"idle: no demand stops the clock", idle, 1,
			[]rsStep{{at: 10 * ms, emit: []int{1}}, {at: time.Second, request: 1}},
			rsOutcome{Items: []int{1}, EndAt: 1100 * ms, Result: idleMsg, Cancelled: true}},
		{"idle: a short gap in demand restarts the clock exactly", idle, 1,
			[]rsStep{{at: 10 * ms, emit: []int{1}}, {at: 15 * ms, request: 1}},
			rsOutcome{Items: []int{1}, EndAt: 115 * ms, Result: idleMsg, Cancelled: true}},
		{"idle: before any demand nothing times out", idle, 0,
			[]rsStep{{at: 10 * time.Second, done: true}},
			rsOutcome{Items: []int{}, EndAt: 10 * time.Second, Result: "complete"}},
		{"demand: nothing requested", demand, 0,
			nil,
			rsOutcome{Items: []int{}, EndAt: 100 * ms, Result: demandMsg, Cancelled: true}},
		{"demand: d after the demand is used up", demand, 2,
			[]rsStep{{at: 10 * ms, emit: []int{1}}, {at: 150 * ms, emit: []int{2}}},
			rsOutcome{Items: []int{1, 2}, EndAt: 250 * ms, Result: demandMsg, Cancelled: true}},
		{"demand: a request in time resets it", demand, 1,
			[]rsStep{{at: 0, emit: []int{1}}, {at: 90 * ms, request: 1}, {at: 120 * ms, emit: []int{2}},
				{at: 200 * ms, request: 1}, {at: 250 * ms, done: true}},
			rsOutcome{Items: []int{1, 2}, EndAt: 250 * ms, Result: "complete"}},
		{"demand: a slow source is not blamed", demand, 1,
			[]rsStep{{at: 10 * time.Second, emit: []int{1}}, {at: 10050 * ms, done: true}},
			rsOutcome{Items: []int{1}, EndAt: 10050 * ms, Result: "complete"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				got := rsPlay(t, tt.build, tt.initial, tt.steps)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			})
		})
	}
}

func TestTimeoutErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &rsManual{}
		rec := newRec[int](t, 0)
		operators.TimeoutDemand[int](src, time.Second).Subscribe(rec)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		err := rec.Err()
		var te *operators.TimeoutError
		if !errors.As(err, &te) {
			t.Fatalf("error %v is not a *TimeoutError", err)
		}
		got := []any{te.Kind, te.After, errors.Is(err, operators.ErrTimeout), errors.Is(err, operators.ErrBackpressureTimeout)}
		want := []any{operators.TimeoutKindDemand, time.Second, true, true}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
		idle := &operators.TimeoutError{Kind: operators.TimeoutKindIdle}
		if errors.Is(idle, operators.ErrBackpressureTimeout) {
			t.Errorf("an idle timeout matches ErrBackpressureTimeout")
		}
	})
}

func TestTimeoutPassesThrough(t *testing.T) {
	for _, kind := range []string{"first", "idle", "demand"} {
		t.Run(kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := &rsSource{start: time.Now(), scripts: []rsScript{{items: []int{1, 2, 3}}}}
				var p flow.Publisher[int]
				switch kind {
				case "first":
					p = operators.TimeoutFirst[int](src, ms)
				case "idle":
					p = operators.TimeoutIdle[int](src, ms)
				default:
					p = operators.TimeoutDemand[int](src, time.Hour)
				}
				rec := newRec[int](t, 1)
				p.Subscribe(rec)
				rec.Request(2)
				synctest.Wait()
				got := []any{rec.Items(), rec.Result(), src.Requests()}
				want := []any{[]int{1, 2, 3}, "complete", [][]int64{{1, 2}}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got)\n%s", diff)
				}
			})
		})
	}
}

func TestTimeoutCancelStopsTheTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &rsManual{}
		rec := newRec[int](t, 1)
		operators.TimeoutIdle[int](src, 100*ms).Subscribe(rec)
		time.Sleep(50 * ms)
		rec.Cancel()
		time.Sleep(time.Second)
		synctest.Wait()
		requests, cancelled := src.State()
		got := []any{rec.Result(), requests, cancelled}
		if diff := cmp.Diff([]any{"open", []int64{1}, true}, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestWithTimeout(t *testing.T) {
	wait := func(ctx context.Context, d time.Duration) (int, error) {
		select {
		case <-time.After(d):
			return int(d / ms), nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	f := operators.WithTimeout(wait, 100*ms)
	t.Run("a call in time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r, err := f(context.Background(), 99*ms)
			if r != 99 || err != nil {
				t.Errorf("f = %v, %v; want 99, nil", r, err)
			}
		})
	})
	t.Run("a call that overruns", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			_, err := f(context.Background(), time.Second)
			var te *operators.TimeoutError
			got := []any{
				time.Since(start), errors.As(err, &te), errors.Is(err, operators.ErrTimeout),
				errors.Is(err, context.DeadlineExceeded), fmt.Sprint(err),
			}
			want := []any{100 * ms, true, true, true,
				"sluice: call did not finish within 100ms (call timeout): context deadline exceeded"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("the caller's cancellation is not a timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(10*ms, cancel)
			_, err := f(ctx, time.Second)
			if !errors.Is(err, context.Canceled) || errors.Is(err, operators.ErrTimeout) {
				t.Errorf("err = %v, want context.Canceled and no ErrTimeout", err)
			}
		})
	})
}

func TestTimeoutPanics(t *testing.T) {
	tests := map[string]func(){
		"sluice: TimeoutFirst: nil source":  func() { operators.TimeoutFirst[int](nil, ms) },
		"sluice: TimeoutIdle: d <= 0":       func() { operators.TimeoutIdle[int](&rsManual{}, 0) },
		"sluice: TimeoutDemand: d <= 0":     func() { operators.TimeoutDemand[int](&rsManual{}, -1) },
		"sluice: WithTimeout: nil function": func() { operators.WithTimeout[int, int](nil, ms) },
	}
	for want, f := range tests {
		t.Run(want, func(t *testing.T) {
			defer func() {
				if got := fmt.Sprint(recover()); got != want {
					t.Errorf("panic = %q, want %q", got, want)
				}
			}()
			f()
		})
	}
}
