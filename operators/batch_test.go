package operators_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
)

type batchResult struct {
	Batches  [][]int
	Result   string
	Requests []int64
	Drops    []btDrop[int]
}

func TestBatchBySize(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		err      error
		size     int
		initial  int64
		each     int64
		cancelAt int
		later    []int64 // requests made one after the other after Subscribe
		cancel   bool
		want     batchResult
	}{
		{
			name: "unbounded demand: full batches, then the partial one",
			n:    10, size: 3, initial: unb,
			want: batchResult{
				Batches:  [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}},
				Result:   "complete",
				Requests: []int64{15}, // 5 batches ahead at most
			},
		},
		{
			name: "no demand: holds one full batch and stops requesting",
			n:    10, size: 3,
			want: batchResult{Result: "open", Requests: []int64{3}},
		},
		{
			name: "demand 0 then bursts",
			n:    10, size: 3, later: []int64{1, 2, 1},
			want: batchResult{
				Batches:  [][]int{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}},
				Result:   "complete",
				Requests: []int64{3, 3, 6},
			},
		},
		{
			name: "a consumer that requests one batch at a time",
			n:    7, size: 2, initial: 1, each: 1,
			want: batchResult{
				Batches:  [][]int{{0, 1}, {2, 3}, {4, 5}, {6}},
				Result:   "complete",
				Requests: []int64{4, 2, 2, 2},
			},
		},
		{
			name: "size 1",
			n:    3, size: 1, initial: unb,
			want: batchResult{Batches: [][]int{{0}, {1}, {2}}, Result: "complete", Requests: []int64{5}},
		},
		{
			name: "upstream error: batches and the partial one first, then the error",
			n:    5, err: errBoom, size: 2, initial: unb,
			want: batchResult{
				Batches:  [][]int{{0, 1}, {2, 3}, {4}},
				Result:   "error: boom",
				Requests: []int64{10},
			},
		},
		{
			name: "upstream error with a full batch held and no demand waits for demand",
			n:    2, err: errBoom, size: 2, later: []int64{1},
			want: batchResult{
				Batches:  [][]int{{0, 1}},
				Result:   "error: boom",
				Requests: []int64{2},
			},
		},
		{
			name: "empty source completes without demand",
			n:    0, size: 4,
			want: batchResult{Result: "complete", Requests: []int64{4}},
		},
		{
			name: "cancel during emission drops the batches held",
			n:    10, size: 3, initial: 1, cancelAt: 1,
			want: batchResult{
				Batches:  [][]int{{0, 1, 2}},
				Result:   "open",
				Requests: []int64{6},
				Drops:    btDropsOf(flow.ReasonCancelled, 3, 4, 5),
			},
		},
		{
			name: "cancel drops the final partial batch",
			n:    6, size: 4, initial: 1, cancel: true,
			want: batchResult{
				Batches:  [][]int{{0, 1, 2, 3}},
				Result:   "open",
				Requests: []int64{8},
				Drops:    btDropsOf(flow.ReasonCancelled, 4, 5),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &btSource{n: tt.n, err: tt.err}
			var drops btDrops[int]
			rec := flowtest.NewSubscriber[[]int](t, tt.initial, btOpts(tt.each, tt.cancelAt)...)
			operators.Batch[int](src, tt.size, 0, operators.OnDrop(drops.Hook)).Subscribe(rec)
			for _, n := range tt.later {
				rec.Request(n)
			}
			if tt.cancel {
				rec.Cancel()
			}
			got := batchResult{Batches: btItems(rec), Result: rec.Outcome(), Requests: src.Requests(), Drops: drops.All()}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestBatchLargerThanItsInitialAllocation(t *testing.T) {
	for _, maxWait := range []time.Duration{0, time.Hour} {
		rec := flowtest.NewSubscriber[[]int](t, unb)
		operators.Batch[int](&btSource{n: 12000}, 5000, maxWait).Subscribe(rec)
		want := [][]int{btInts(0, 5000), btInts(5000, 10000), btInts(10000, 12000)}
		if diff := cmp.Diff(want, btItems(rec)); diff != "" {
			t.Errorf("maxWait %v: (-want +got)\n%s", maxWait, diff)
		}
	}
}

func TestBatchNonPositiveRequest(t *testing.T) {
	src := &btSource{n: 10}
	var drops btDrops[int]
	rec := flowtest.NewSubscriber[[]int](t, 0)
	operators.Batch[int](src, 4, 0, operators.OnDrop(drops.Hook)).Subscribe(rec)
	rec.Request(-1)
	if err := rec.Err(); !errors.Is(err, flow.ErrNonPositiveRequest) {
		t.Fatalf("Err() = %v, want ErrNonPositiveRequest", err)
	}
	got := []any{drops.All(), src.Cancels()}
	want := []any{btDropsOf(flow.ReasonCancelled, 0, 1, 2, 3), 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// The upstream request for k batches of demand never exceeds k × size plus
// one batch, with an asynchronous upstream and a consumer that requests
// one batch at a time.
func TestBatchBoundsUpstreamRequests(t *testing.T) {
	const size, n = 16, 20000
	var requested, received, maxOver atomic.Int64
	check := func() {
		// Demand granted so far: the initial 1, plus 1 per batch received.
		if over := requested.Load() - (received.Load()+1+1)*size; over > maxOver.Load() {
			maxOver.Store(over)
		}
	}
	src := &btAsyncSource{n: n, onRequest: func(k int64) {
		requested.Add(k)
		check()
	}}
	rec := flowtest.NewSubscriber[[]int](t, 1, flowtest.RequestOnNext(1), btWait)
	operators.Batch[int](src, size, 0).Subscribe(btHook(rec, func([]int) { received.Add(1) }))
	btAwait(t, rec)
	src.Wait()
	var all []int
	for _, b := range btItems(rec) {
		if len(b) == 0 || len(b) > size {
			t.Fatalf("batch of %d items", len(b))
		}
		all = append(all, b...)
	}
	if diff := cmp.Diff(btInts(0, n), all); diff != "" {
		t.Fatalf("items (-want +got)\n%s", diff)
	}
	if got := maxOver.Load(); got > 0 {
		t.Errorf("requested upstream exceeded (demand+1) × size by %d items", got)
	}
}

func TestBatchWeighted(t *testing.T) {
	weight := func(v int) int64 { return int64(v) }
	tests := []struct {
		name  string
		items []int
		max   int64
		want  batchResult
	}{
		{
			name:  "cuts before the item that would exceed maxWeight",
			items: []int{3, 4, 5, 2, 8, 1},
			max:   10,
			want:  batchResult{Batches: [][]int{{3, 4}, {5, 2}, {8, 1}}, Result: "complete"},
		},
		{
			name:  "an item heavier than maxWeight goes alone",
			items: []int{1, 20, 2, 30},
			max:   10,
			want:  batchResult{Batches: [][]int{{1}, {20}, {2}, {30}}, Result: "complete"},
		},
		{
			name:  "reaching maxWeight emits at once",
			items: []int{5, 5, 10, 1},
			max:   10,
			want:  batchResult{Batches: [][]int{{5, 5}, {10}, {1}}, Result: "complete"},
		},
		{
			name:  "weight 0 counts as 1",
			items: []int{0, 0, 0, 0, 0},
			max:   2,
			want:  batchResult{Batches: [][]int{{0, 0}, {0, 0}, {0}}, Result: "complete"},
		},
		{
			name:  "a negative weight fails the stream after the batches formed",
			items: []int{4, 4, 4, -1, 4},
			max:   8,
			want: batchResult{
				Batches: [][]int{{4, 4}, {4}},
				Result:  "error: sluice: bw: negative weight -1",
				Drops:   []btDrop[int]{{-1, flow.ReasonError}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var drops btDrops[int]
			rec := flowtest.NewSubscriber[[]int](t, unb)
			operators.BatchWeighted[int](&btSource{items: tt.items}, tt.max, weight, 0,
				operators.Name("bw"), operators.OnDrop(drops.Hook)).Subscribe(rec)
			got := batchResult{Batches: btItems(rec), Result: rec.Outcome(), Drops: drops.All()}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestBatchWeightedPanicIsAPanicError(t *testing.T) {
	rec := flowtest.NewSubscriber[[]int](t, unb)
	src := &btSource{n: 10}
	operators.BatchWeighted[int](src, 100, func(v int) int64 {
		if v == 5 {
			panic(fmt.Sprint("bad item ", v))
		}
		return 10
	}, 0).Subscribe(rec)
	var pe *flow.PanicError
	if err := rec.Err(); !errors.As(err, &pe) || pe.Value != "bad item 5" {
		t.Fatalf("Err() = %v, want a *flow.PanicError", err)
	}
	got := []any{btItems(rec), src.Cancels()}
	want := []any{[][]int{{0, 1, 2, 3, 4}}, 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// With many light items, a weighted batch grows past the prefetch: the
// stage keeps requesting, in chunks of at most the prefetch, until the
// batch is full, and then holds it.
func TestBatchWeightedRequestsInChunks(t *testing.T) {
	src := &btSource{n: 1000}
	rec := flowtest.NewSubscriber[[]int](t, 1)
	operators.BatchWeighted[int](src, 100, func(int) int64 { return 1 }, 0, operators.Prefetch(8)).Subscribe(rec)
	var sizes []int
	for _, b := range btItems(rec) {
		sizes = append(sizes, len(b))
	}
	got := []any{sizes, rec.Outcome()}
	want := []any{[]int{100}, "open"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	var total int64
	for i, r := range src.Requests() {
		total += r
		if r > 8 {
			t.Errorf("request %d asked for %d items, want at most the prefetch 8", i, r)
		}
	}
	// One batch emitted, one held (demand 0 now), and at most the
	// prefetch outstanding.
	if total > 200+8 {
		t.Errorf("requested %d items in all, want at most 208", total)
	}
}

func TestBatchTimer(t *testing.T) {
	ms := time.Millisecond
	t.Run("emits a partial batch maxWait after its first item", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := &btTimedSource{
				gaps: []time.Duration{0, 10 * ms, 10 * ms, 180 * ms, 50 * ms},
				end:  time.Second,
			}
			start := time.Now()
			rec := flowtest.NewSubscriber[[]int](t, unb, btWait)
			operators.Batch[int](src, 3, 100*ms).Subscribe(rec)
			btAwait(t, rec)
			src.Wait()
			got := []any{btItems(rec), rec.ItemOffsets(start), rec.Outcome()}
			want := []any{
				[][]int{{0, 1, 2}, {3, 4}},
				[]time.Duration{20 * ms, 300 * ms},
				"complete",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("without demand a timed-out batch is held, fills up, and goes when demand comes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := &btTimedSource{
				gaps: []time.Duration{0, 10 * ms, 140 * ms, 10 * ms},
				end:  time.Second,
			}
			start := time.Now()
			rec := flowtest.NewSubscriber[[]int](t, 0, btWait)
			operators.Batch[int](src, 3, 100*ms).Subscribe(rec)
			time.Sleep(500 * ms)
			synctest.Wait()
			if got := rec.Outcome(); got != "open" {
				t.Fatalf("Result() = %q before demand, want open (never fail for lack of demand)", got)
			}
			rec.Request(1) // [0 1 2], full since 150ms
			time.Sleep(200 * ms)
			rec.Request(1) // [3], whose timer fired at 600ms without demand
			btAwait(t, rec)
			src.Wait()
			got := []any{btItems(rec), rec.ItemOffsets(start), rec.Outcome()}
			want := []any{
				[][]int{{0, 1, 2}, {3}},
				[]time.Duration{500 * ms, 700 * ms},
				"complete",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("a full batch stops its timer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := &btTimedSource{
				gaps: []time.Duration{0, 10 * ms, 80 * ms, 15 * ms},
				end:  time.Second,
			}
			start := time.Now()
			rec := flowtest.NewSubscriber[[]int](t, unb, btWait)
			operators.Batch[int](src, 2, 100*ms).Subscribe(rec)
			btAwait(t, rec)
			src.Wait()
			got := []any{btItems(rec), rec.ItemOffsets(start)}
			want := []any{[][]int{{0, 1}, {2, 3}}, []time.Duration{10 * ms, 105 * ms}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("cancel drops the partial batch at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := &btTimedSource{gaps: []time.Duration{0, 10 * ms, time.Second}}
			var drops btDrops[int]
			rec := flowtest.NewSubscriber[[]int](t, unb)
			operators.Batch[int](src, 5, time.Minute, operators.OnDrop(drops.Hook)).Subscribe(rec)
			time.Sleep(50 * ms)
			rec.Cancel()
			synctest.Wait()
			got := []any{drops.All(), btItems(rec), rec.Outcome()}
			want := []any{btDropsOf(flow.ReasonCancelled, 0, 1), [][]int(nil), "open"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			src.Wait()
		})
	})
	t.Run("upstream error delivers the timed partial batch first", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := &btTimedSource{gaps: []time.Duration{0, 10 * ms}, end: 20 * ms, err: errBoom}
			start := time.Now()
			rec := flowtest.NewSubscriber[[]int](t, unb, btWait)
			operators.Batch[int](src, 5, time.Minute).Subscribe(rec)
			btAwait(t, rec)
			src.Wait()
			got := []any{btItems(rec), rec.ItemOffsets(start), rec.Outcome()}
			want := []any{[][]int{{0, 1}}, []time.Duration{30 * ms}, "error: boom"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("weighted", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := &btTimedSource{gaps: []time.Duration{0, 10 * ms, 10 * ms, 200 * ms}, end: time.Second}
			start := time.Now()
			rec := flowtest.NewSubscriber[[]int](t, unb, btWait)
			operators.BatchWeighted[int](src, 100, func(int) int64 { return 10 }, 50*ms).Subscribe(rec)
			btAwait(t, rec)
			src.Wait()
			got := []any{btItems(rec), rec.ItemOffsets(start)}
			want := []any{[][]int{{0, 1, 2}, {3}}, []time.Duration{50 * ms, 270 * ms}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
}
