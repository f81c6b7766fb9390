package operators_test

import (
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

func TestLimitRateRequests(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		high, low int
		initial   int64
		each      int64
		want      []int64
	}{
		{
			name: "high first, then low each time low items were delivered",
			n:    30, high: 10, low: 3, initial: unb,
			want: []int64{10, 3, 3, 3, 3, 3, 3, 3},
		},
		{
			name: "low 0 replenishes only when everything was delivered",
			n:    10, high: 4, low: 0, initial: unb,
			want: []int64{4, 4, 4},
		},
		{
			name: "low >= high reverts to 75 percent of high",
			n:    20, high: 8, low: 8, initial: unb,
			want: []int64{8, 6, 6},
		},
		{
			name: "a consumer that requests one at a time sees the same batches upstream",
			n:    12, high: 6, low: 2, initial: 1, each: 1,
			want: []int64{6, 2, 2, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &btSource{n: tt.n}
			rec := flowtest.NewSubscriber[int](t, tt.initial, btOpts(tt.each, 0)...)
			operators.LimitRate[int](src, tt.high, tt.low).Subscribe(rec)
			got := []any{btItems(rec), rec.Outcome(), src.Requests()}
			want := []any{btInts(0, tt.n), "complete", tt.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestLimitRatePrefetchesHighBeforeDemand(t *testing.T) {
	src := &btSource{n: 100}
	pub := operators.LimitRate[int](src, 16, 4)
	rec := flowtest.NewSubscriber[int](t, 0)
	pub.Subscribe(rec)
	got := []any{src.Requests(), pub.(operators.StatsReporter).Stats()}
	want := []any{[]int64{16}, operators.BufferStats{Produced: 16, Buffered: 16}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	rec.Request(5)
	got = []any{btItems(rec), src.Requests(), pub.(operators.StatsReporter).Stats()}
	want = []any{btInts(0, 5), []int64{16, 4}, operators.BufferStats{Produced: 20, Delivered: 5, Buffered: 15}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after Request(5) (-want +got)\n%s", diff)
	}
}

// With an asynchronous upstream, the items requested upstream and not yet
// delivered downstream never exceed high.
func TestLimitRateBoundsOutstandingRequests(t *testing.T) {
	const high, low, n = 8, 3, 5000
	var requested, delivered, maxOutstanding atomic.Int64
	src := &btAsyncSource{n: n, onRequest: func(k int64) {
		out := requested.Add(k) - delivered.Load()
		for {
			m := maxOutstanding.Load()
			if out <= m || maxOutstanding.CompareAndSwap(m, out) {
				return
			}
		}
	}}
	rec := flowtest.NewSubscriber[int](t, unb, btWait)
	operators.LimitRate[int](src, high, low).Subscribe(btHook(rec, func(int) { delivered.Add(1) }))
	btAwait(t, rec)
	src.Wait()
	got := []any{btItems(rec), rec.Outcome()}
	want := []any{btInts(0, n), "complete"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if got := maxOutstanding.Load(); got != high {
		t.Errorf("requested upstream and not delivered reached %d, want at most (and here exactly) %d", got, high)
	}
}
