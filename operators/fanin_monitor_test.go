package operators_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/monitor"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// monRow is the projection of a monitor.StageInfo that the fan-in
// monitor tests compare.
type monRow struct {
	ID         int
	Name       string
	Kind       string
	State      monitor.State
	Delivered  int64
	Downstream int // ID of the stage it delivers to
}

// monRows projects snap's stages, in ID order. A derived name (kind#N)
// becomes kind#N: its number depends on the tests that ran before.
func monRows(snap monitor.Snapshot) []monRow {
	rows := make([]monRow, len(snap.Stages))
	for i, s := range snap.Stages {
		name := s.Name
		if k, _, ok := strings.Cut(name, "#"); ok && s.Kind == k {
			name = k + "#N"
		}
		rows[i] = monRow{s.ID, name, s.Kind, s.State, s.Delivered, s.Downstream}
	}
	return rows
}

// monStage returns the stage of snap called name.
func monStage(t *testing.T, snap monitor.Snapshot, name string) monitor.StageInfo {
	t.Helper()
	for _, s := range snap.Stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stage %q in the snapshot:\n%s", name, snap.Table())
	return monitor.StageInfo{}
}

// runMonitored collects pub with a monitored sink ("out", prefetch 16)
// and returns the items, the error and the registry's snapshot taken
// once Collect has returned. Every pipeline here is synchronous, so the
// counts are final.
func runMonitored[T any](t *testing.T, pub flow.Publisher[T]) ([]T, error, monitor.Snapshot) {
	t.Helper()
	reg := monitor.New("t", monitor.Logger(nil))
	defer reg.Close()
	got, err := sinks.Collect(reg.Context(context.Background()), pub, sinks.Name("out"), sinks.Prefetch(16))
	return got, err, reg.Snapshot()
}

func TestFanInMonitorCompleted(t *testing.T) {
	const (
		done = monitor.StateCompleted
	)
	out := monRow{ID: 1, Name: "out", Kind: "collect", State: done}
	tests := []struct {
		name  string
		pub   flow.Publisher[int]
		items int
		want  []monRow // out, with Delivered = items, is prepended
	}{
		{
			name: "Merge",
			pub: operators.Merge(
				sources.Range(0, 5, sources.Name("a")),
				sources.Range(10, 3, sources.Name("b")),
			),
			items: 8,
			want: []monRow{
				{2, "merge#N", "merge", done, 8, 1},
				{3, "a", "range", done, 5, 2},
				{4, "b", "range", done, 3, 2},
			},
		},
		{
			name: "MergeWith",
			pub: operators.MergeWith([]flow.Publisher[int]{
				sources.Range(0, 5, sources.Name("a")),
				sources.Slice([]int{7, 8, 9}, sources.Name("b")),
			}, operators.Name("x")),
			items: 8,
			want: []monRow{
				{2, "x", "merge", done, 8, 1},
				{3, "a", "range", done, 5, 2},
				{4, "b", "slice", done, 3, 2},
			},
		},
		{
			name: "Concat",
			pub: operators.Concat(
				sources.Range(0, 4, sources.Name("a")),
				sources.Range(4, 0, sources.Name("empty")), // completes at once, registers nothing
				sources.Slice([]int{7, 8, 9}, sources.Name("b")),
			),
			items: 7,
			want: []monRow{
				{2, "concat#N", "concat", done, 7, 1},
				{3, "a", "range", done, 4, 2},
				{4, "b", "slice", done, 3, 2},
			},
		},
		{
			name: "Zip2",
			pub: operators.Zip2(
				sources.Range(0, 5, sources.Name("a")),
				sources.Slice([]string{"x", "yy", "zzz"}, sources.Name("b")),
				func(i int, s string) int { return i*10 + len(s) },
				operators.Name("x"),
			),
			items: 3,
			want: []monRow{
				{2, "x", "zip", done, 3, 1},
				{3, "a", "range", done, 5, 2},
				{4, "b", "slice", done, 3, 2},
			},
		},
		{
			name: "ZipN",
			pub: operators.ZipN([]flow.Publisher[int]{
				sources.Range(0, 4, sources.Name("a")),
				sources.Range(10, 4, sources.Name("b")),
				sources.Range(20, 4, sources.Name("c")),
			}, func(row []int) int { return row[0] + row[1] + row[2] }, operators.Name("x")),
			items: 4,
			want: []monRow{
				{2, "x", "zip", done, 4, 1},
				{3, "a", "range", done, 4, 2},
				{4, "b", "range", done, 4, 2},
				{5, "c", "range", done, 4, 2},
			},
		},
		{
			name: "FlatMap",
			pub: operators.FlatMap(sources.Range(1, 3, sources.Name("outer")), func(i int) flow.Publisher[int] {
				return sources.Range(i*10, i, sources.Name("inner"))
			}, operators.Name("x")),
			items: 6,
			want: []monRow{
				{2, "x", "flatMap", done, 6, 1},
				{3, "outer", "range", done, 3, 2},
				{4, "inner", "range", done, 1, 2},
				{5, "inner", "range", done, 2, 2},
				{6, "inner", "range", done, 3, 2},
			},
		},
		{
			name: "FlatMapOrdered",
			pub: operators.FlatMap(sources.Range(1, 3, sources.Name("outer")), func(i int) flow.Publisher[int] {
				return sources.Range(i*10, i, sources.Name("inner"))
			}, operators.Name("x"), operators.Ordered()),
			items: 6,
			want: []monRow{
				{2, "x", "flatMap", done, 6, 1},
				{3, "outer", "range", done, 3, 2},
				{4, "inner", "range", done, 1, 2},
				{5, "inner", "range", done, 2, 2},
				{6, "inner", "range", done, 3, 2},
			},
		},
		{
			name: "MergePriority",
			pub: operators.MergePriority([]operators.PrioritySource[int]{
				{Source: sources.Range(0, 5, sources.Name("lo")), Priority: 0},
				{Source: sources.Range(10, 3, sources.Name("hi")), Priority: 1},
			}, operators.Name("x")),
			items: 8,
			want: []monRow{
				{2, "x", "mergePriority", done, 8, 1},
				{3, "lo", "range", done, 5, 2},
				{4, "hi", "range", done, 3, 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err, snap := runMonitored(t, tt.pub)
			if err != nil || len(got) != tt.items {
				t.Fatalf("Collect = %v, %v; want %d items, nil", got, err, tt.items)
			}
			o := out
			o.Delivered = int64(tt.items)
			want := append([]monRow{o}, tt.want...)
			if diff := cmp.Diff(want, monRows(snap)); diff != "" {
				t.Errorf("stages (-want +got):\n%s\n%s", diff, snap.Table())
			}
		})
	}
}

// TestFanInMonitorMergeCancelled: the subscriber cancels the merge in
// its third OnNext; the 17 items still queued are counted as dropped by
// the merge.
func TestFanInMonitorMergeCancelled(t *testing.T) {
	reg := monitor.New("t", monitor.Logger(nil))
	defer reg.Close()
	pub := operators.MergeWith([]flow.Publisher[int]{
		sources.Range(0, 10, sources.Name("a")),
		sources.Range(10, 10, sources.Name("b")),
	}, operators.Name("x"))
	s := &monSub[int]{ctx: reg.Context(context.Background()), n: 16, cancelAt: 3}
	pub.Subscribe(s)
	if diff := cmp.Diff([]int{0, 1, 2}, s.got); diff != "" || s.ends != 0 {
		t.Fatalf("subscriber: %d terminal signals, items (-want +got):\n%s", s.ends, diff)
	}
	snap := reg.Snapshot()
	want := []monRow{
		{1, "x", "merge", monitor.StateCancelled, 3, 0},
		{2, "a", "range", monitor.StateCompleted, 10, 1},
		{3, "b", "range", monitor.StateCompleted, 10, 1},
	}
	if diff := cmp.Diff(want, monRows(snap)); diff != "" {
		t.Errorf("stages (-want +got):\n%s\n%s", diff, snap.Table())
	}
	x := monStage(t, snap, "x")
	if diff := cmp.Diff(map[flow.DropReason]int64{flow.ReasonCancelled: 17}, x.Dropped); diff != "" {
		t.Errorf("merge drops (-want +got):\n%s", diff)
	}
	if x.Buffered != 0 {
		t.Errorf("merge Buffered = %d after cancel, want 0", x.Buffered)
	}
}

// TestFanInMonitorFailed: a source fails after another one has emitted
// 0, 1, 2. Merge and MergePriority deliver the queued items first
// (DelayError by default), Concat has delivered them before it
// subscribes to the failing source, Zip and FlatMap fail at once.
func TestFanInMonitorFailed(t *testing.T) {
	boom := errors.New("boom")
	a := func() flow.Publisher[int] { return sources.Range(0, 3, sources.Name("a")) }
	fail := sources.Error[int](boom) // registers nothing
	const failed, done = monitor.StateFailed, monitor.StateCompleted
	tests := []struct {
		name  string
		pub   flow.Publisher[int]
		items []int
		want  []monRow // out is prepended
	}{
		{
			name:  "Merge",
			pub:   operators.MergeWith([]flow.Publisher[int]{a(), fail}, operators.Name("x")),
			items: []int{0, 1, 2},
			want:  []monRow{{2, "x", "merge", failed, 3, 1}, {3, "a", "range", done, 3, 2}},
		},
		{
			name:  "Concat",
			pub:   operators.Concat(a(), fail, a()),
			items: []int{0, 1, 2},
			want:  []monRow{{2, "concat#N", "concat", failed, 3, 1}, {3, "a", "range", done, 3, 2}},
		},
		{
			name: "Zip",
			pub: operators.Zip2(a(), fail, func(x, y int) int { return x + y },
				operators.Name("x")),
			want: []monRow{{2, "x", "zip", failed, 0, 1}, {3, "a", "range", done, 3, 2}},
		},
		{
			name: "FlatMap",
			pub: operators.FlatMap(sources.Slice([]int{1, 2}, sources.Name("o")),
				func(int) flow.Publisher[int] { return fail }, operators.Name("x")),
			// the inner failure cancels the outer source in its first OnNext
			want: []monRow{{2, "x", "flatMap", failed, 0, 1}, {3, "o", "slice", monitor.StateCancelled, 1, 2}},
		},
		{
			name: "MergePriority",
			pub: operators.MergePriority([]operators.PrioritySource[int]{{Source: a()}, {Source: fail}},
				operators.Name("x")),
			items: []int{0, 1, 2},
			want:  []monRow{{2, "x", "mergePriority", failed, 3, 1}, {3, "a", "range", done, 3, 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err, snap := runMonitored(t, tt.pub)
			if diff := cmp.Diff(tt.items, got); diff != "" || !errors.Is(err, boom) {
				t.Fatalf("Collect: err = %v, want boom; items (-want +got):\n%s", err, diff)
			}
			want := append([]monRow{{1, "out", "collect", failed, int64(len(tt.items)), 0}}, tt.want...)
			if diff := cmp.Diff(want, monRows(snap)); diff != "" {
				t.Errorf("stages (-want +got):\n%s\n%s", diff, snap.Table())
			}
			if x := snap.Stages[1]; x.Errors != 1 {
				t.Errorf("%s Errors = %d, want 1", x.Name, x.Errors)
			}
		})
	}
}

// monSub is a subscriber that carries a context, requests n at
// subscription and nothing more, and cancels in its cancelAt-th OnNext
// (0: never).
type monSub[T any] struct {
	ctx      context.Context
	n        int64
	cancelAt int
	sub      flow.Subscription
	got      []T
	ends     int
}

func (s *monSub[T]) Context() context.Context { return s.ctx }
func (s *monSub[T]) OnSubscribe(sub flow.Subscription) {
	s.sub = sub
	sub.Request(s.n)
}
func (s *monSub[T]) OnNext(v T) {
	if s.got = append(s.got, v); len(s.got) == s.cancelAt {
		s.sub.Cancel()
	}
}
func (s *monSub[T]) OnError(error) { s.ends++ }
func (s *monSub[T]) OnComplete()   { s.ends++ }

// TestFanInMonitorMergeBuffered: with demand for 3 of 8 items, the merge
// has delivered 3 (published at rest, by the drain pass), holds 5 in its
// rings, and drops them when cancelled.
func TestFanInMonitorMergeBuffered(t *testing.T) {
	reg := monitor.New("t", monitor.Logger(nil))
	defer reg.Close()
	pub := operators.MergeWith([]flow.Publisher[int]{
		sources.Range(0, 5, sources.Name("a")),
		sources.Range(10, 3, sources.Name("b")),
	}, operators.Name("x"))
	s := &monSub[int]{ctx: reg.Context(context.Background()), n: 3}
	pub.Subscribe(s)
	type counts struct {
		State                          monitor.State
		Requested, Delivered, Buffered int64
		Dropped                        map[flow.DropReason]int64
	}
	read := func() counts {
		x := monStage(t, reg.Snapshot(), "x")
		return counts{x.State, x.Requested, x.Delivered, x.Buffered, x.Dropped}
	}
	if diff := cmp.Diff(counts{monitor.StateActive, 3, 3, 5, nil}, read()); diff != "" {
		t.Errorf("before cancel (-want +got):\n%s", diff)
	}
	s.sub.Cancel()
	want := counts{monitor.StateCancelled, 3, 3, 0, map[flow.DropReason]int64{flow.ReasonCancelled: 5}}
	if diff := cmp.Diff(want, read()); diff != "" {
		t.Errorf("after cancel (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{0, 1, 2}, s.got); diff != "" || s.ends != 0 {
		t.Errorf("subscriber: %d terminal signals, items (-want +got):\n%s", s.ends, diff)
	}
}

// TestFanInMonitorUnmonitored: without a registry in the subscriber's
// context the stages run as before (the probes are nil).
func TestFanInMonitorUnmonitored(t *testing.T) {
	s := &monSub[int]{ctx: context.Background(), n: 100}
	operators.Concat(sources.Range(0, 2), operators.Merge(sources.Range(2, 2))).Subscribe(s)
	if diff := cmp.Diff([]int{0, 1, 2, 3}, s.got); diff != "" || s.ends != 1 {
		t.Errorf("%d terminal signals, items (-want +got):\n%s", s.ends, diff)
	}
}

// TestFanInMonitorAsync runs every fan-in stage over sources that emit on
// a pool's goroutines, under -race: the counts are exact once the stream
// has ended, and the PublishOn stages register under the fan-in stage.
func TestFanInMonitorAsync(t *testing.T) {
	pool := scheduler.NewPool(2)
	t.Cleanup(func() { pool.Close() })
	const n = 2000
	async := func(start, count int) flow.Publisher[int] {
		return operators.PublishOn(sources.Range(start, count), pool, operators.Prefetch(7))
	}
	tests := []struct {
		name  string
		kind  string
		pub   flow.Publisher[int]
		items int64
		under int // publishOn stages that deliver to the fan-in stage
	}{
		{"Merge", "merge", operators.MergeWith([]flow.Publisher[int]{async(0, n), async(n, n)},
			operators.Name("x"), operators.Prefetch(5)), 2 * n, 2},
		{"Concat", "concat", operators.Concat(async(0, n), async(n, n)), 2 * n, 2},
		{"Zip", "zip", operators.ZipN([]flow.Publisher[int]{async(0, n), async(n, n)},
			func(row []int) int { return row[0] + row[1] }, operators.Name("x"), operators.Prefetch(5)), n, 2},
		{"FlatMap", "flatMap", operators.FlatMap(async(0, 20), func(i int) flow.Publisher[int] {
			return async(i*100, 100)
		}, operators.Name("x"), operators.Concurrency(3), operators.Prefetch(5)), 2000, 21},
		{"MergePriority", "mergePriority", operators.MergePriority([]operators.PrioritySource[int]{
			{Source: async(0, n), Priority: 1}, {Source: async(n, n)},
		}, operators.Name("x"), operators.Prefetch(5)), 2 * n, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err, snap := runMonitored(t, tt.pub)
			if err != nil || int64(len(got)) != tt.items {
				t.Fatalf("Collect: %d items, %v; want %d, nil", len(got), err, tt.items)
			}
			rows := monRows(snap)
			x := rows[1]
			want := monRow{2, x.Name, tt.kind, monitor.StateCompleted, tt.items, 1}
			if diff := cmp.Diff(want, x); diff != "" {
				t.Errorf("fan-in stage (-want +got):\n%s\n%s", diff, snap.Table())
			}
			under := 0
			for _, r := range rows[2:] {
				if r.Kind == "publishOn" && r.Downstream == x.ID {
					under++
				}
			}
			if under != tt.under {
				t.Errorf("%d publishOn stages under the fan-in stage, want %d\n%s", under, tt.under, snap.Table())
			}
		})
	}
}
