package monitor_test

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

// row is the part of a StageInfo that tests compare.
type row struct {
	ID, Position, Downstream int
	Name, Kind               string
	State                    monitor.State
	Requested, Delivered     int64
	Outstanding, Buffered    int64
	Dropped                  map[flow.DropReason]int64
}

func rows(s monitor.Snapshot) []row {
	out := make([]row, len(s.Stages))
	for i, st := range s.Stages {
		out[i] = row{st.ID, st.Position, st.Downstream, st.Name, st.Kind, st.State,
			st.Requested, st.Delivered, st.Outstanding, st.Buffered, st.Dropped}
	}
	return out
}

func chain() flow.Publisher[int] {
	double := operators.Map(sources.Range(0, 10, sources.Name("numbers")), func(v int) int { return v * 2 }, operators.Name("double"))
	return operators.Filter(double, func(v int) bool { return v%4 == 0 }, operators.Name("fours"))
}

func TestSnapshotOfAFusedRun(t *testing.T) {
	reg := monitor.New("fused", monitor.Logger(nil))
	defer reg.Close()
	got, err := sinks.Collect(reg.Context(context.Background()), chain(), sinks.Name("out"))
	if diff := cmp.Diff([]int{0, 4, 8, 12, 16}, got); diff != "" || err != nil {
		t.Fatalf("Collect = %v, (-want +got)\n%s", err, diff)
	}
	snap := reg.Snapshot()
	const u = flow.Unbounded
	want := []row{
		{1, 4, 0, "out", "collect", monitor.StateCompleted, u, 5, u, 0, nil},
		{2, 3, 1, "fours", "filter", monitor.StateCompleted, u, 5, u, 0, nil},
		{3, 2, 2, "double", "map", monitor.StateCompleted, u, 10, u, 0, nil},
		{4, 1, 3, "numbers", "range", monitor.StateCompleted, u, 10, u, 0, nil},
	}
	if diff := cmp.Diff(want, rows(snap)); diff != "" {
		t.Errorf("stages (-want +got)\n%s", diff)
	}
	wantTable := `POS  STAGE    KIND     STATE      REQUESTED  DELIVERED  DEMAND     BUFFERED  DROPPED  ERRORS  STALLS
1    numbers  range    completed  unbounded  10         unbounded  0         0        0       0
2    double   map      completed  unbounded  10         unbounded  0         0        0       0
3    fours    filter   completed  unbounded  5          unbounded  0         0        0       0
4    out      collect  completed  unbounded  5          unbounded  0         0        0       0
`
	if diff := cmp.Diff(wantTable, snap.Table()); diff != "" {
		t.Errorf("table (-want +got)\n%s", diff)
	}
}

// The same pair over a Slice runs the slice's items in its own loop
// (fuse.SliceLoop); the counts are the same.
func TestSnapshotOfAFusedRunOverASlice(t *testing.T) {
	reg := monitor.New("fused", monitor.Logger(nil))
	defer reg.Close()
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	double := operators.Map(sources.Slice(items, sources.Name("numbers")), func(v int) int { return v * 2 }, operators.Name("double"))
	pub := operators.Filter(double, func(v int) bool { return v%4 == 0 }, operators.Name("fours"))
	n, err := sinks.Drain(reg.Context(context.Background()), pub, sinks.Name("out"))
	if n != 50 || err != nil {
		t.Fatalf("Drain = %d, %v; want 50, nil", n, err)
	}
	const u = flow.Unbounded
	want := []row{
		{1, 4, 0, "out", "drain", monitor.StateCompleted, u, 50, u, 0, nil},
		{2, 3, 1, "fours", "filter", monitor.StateCompleted, u, 50, u, 0, nil},
		{3, 2, 2, "double", "map", monitor.StateCompleted, u, 100, u, 0, nil},
		{4, 1, 3, "numbers", "slice", monitor.StateCompleted, u, 100, u, 0, nil},
	}
	if diff := cmp.Diff(want, rows(reg.Snapshot())); diff != "" {
		t.Errorf("stages (-want +got)\n%s", diff)
	}
}

func TestSnapshotOfASubscription(t *testing.T) {
	reg := monitor.New("subscribed", monitor.Logger(nil))
	defer reg.Close()
	// Prefetch(4) turns fusion off: every stage runs the protocol.
	got, err := sinks.Collect(reg.Context(context.Background()), chain(), sinks.Name("out"), sinks.Prefetch(4))
	if diff := cmp.Diff([]int{0, 4, 8, 12, 16}, got); diff != "" || err != nil {
		t.Fatalf("Collect = %v, (-want +got)\n%s", err, diff)
	}
	snap := reg.Snapshot()
	// The sink asks for 4, then 3 more after 3 items: 7. Filter forwards
	// those and replaces what it rejects in batches (5 rejected of 10).
	// Range hands Map and Filter runs of items, and Filter passes its kept
	// items on once per run, so the sink's second request reaches Filter
	// after it has accounted for the whole run: it then holds one more
	// replacement than item by item (12 requested, not 11), within its
	// bound of 7 requested downstream plus 5 rejected.
	want := []row{
		{1, 4, 0, "out", "collect", monitor.StateCompleted, 7, 5, 2, 0, nil},
		{2, 3, 1, "fours", "filter", monitor.StateCompleted, 7, 5, 2, 0, nil},
		{3, 2, 2, "double", "map", monitor.StateCompleted, 12, 10, 2, 0, nil},
		{4, 1, 3, "numbers", "range", monitor.StateCompleted, 12, 10, 2, 0, nil},
	}
	if diff := cmp.Diff(want, rows(snap)); diff != "" {
		t.Errorf("stages (-want +got)\n%s", diff)
	}
}

func TestSnapshotCountsDropsByReason(t *testing.T) {
	reg := monitor.New("drops", monitor.Logger(nil))
	defer reg.Close()
	var hooked []int
	buf := operators.Buffer(sources.Range(0, 10), 3, flow.DropOldest, operators.Name("keep-last-3"),
		operators.OnDrop(func(v int, _ flow.DropReason) { hooked = append(hooked, v) }))
	sub := &forgetful{ctx: reg.Context(context.Background())}
	buf.Subscribe(sub) // the range runs at once into the buffer: 7 evicted
	sub.sub.Request(flow.Unbounded)
	if diff := cmp.Diff([]int{7, 8, 9}, sub.got); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
	var info monitor.StageInfo
	for _, st := range reg.Snapshot().Stages {
		if st.Name == "keep-last-3" {
			info = st
		}
	}
	want := map[flow.DropReason]int64{flow.ReasonOldest: 7}
	if diff := cmp.Diff(want, info.Dropped); diff != "" {
		t.Errorf("dropped (-want +got)\n%s", diff)
	}
	if len(hooked) != 7 || info.DroppedTotal() != 7 || info.Delivered != 3 {
		t.Errorf("hooked %v, dropped %d, delivered %d", hooked, info.DroppedTotal(), info.Delivered)
	}
}

func TestGraphs(t *testing.T) {
	reg := monitor.New("graph", monitor.Logger(nil))
	defer reg.Close()
	if _, err := sinks.Drain(reg.Context(context.Background()), chain(), sinks.Name("out")); err != nil {
		t.Fatal(err)
	}
	snap := reg.Snapshot()
	wantDOT := `digraph "graph" {
	rankdir=LR;
	node [shape=box];
	s4 [label="numbers\ncompleted, delivered 10"];
	s3 [label="double\ncompleted, delivered 10"];
	s2 [label="fours\ncompleted, delivered 5"];
	s1 [label="out\ncompleted, delivered 5"];
	s2 -> s1 [label="demand unbounded, buffered 0"];
	s3 -> s2 [label="demand unbounded, buffered 0"];
	s4 -> s3 [label="demand unbounded, buffered 0"];
}
`
	if diff := cmp.Diff(wantDOT, snap.DOT()); diff != "" {
		t.Errorf("DOT (-want +got)\n%s", diff)
	}
	wantMermaid := `flowchart LR
    s4["numbers<br/>completed, delivered 10"]
    s3["double<br/>completed, delivered 10"]
    s2["fours<br/>completed, delivered 5"]
    s1["out<br/>completed, delivered 5"]
    s2 -->|"demand unbounded, buffered 0"| s1
    s3 -->|"demand unbounded, buffered 0"| s2
    s4 -->|"demand unbounded, buffered 0"| s3
`
	if diff := cmp.Diff(wantMermaid, snap.Mermaid()); diff != "" {
		t.Errorf("Mermaid (-want +got)\n%s", diff)
	}
}

func TestSnapshotOfAFusedRunWithBatchAndAFailure(t *testing.T) {
	reg := monitor.New("fused-fail", monitor.Logger(nil))
	defer reg.Close()
	parse := operators.MapErr(sources.Slice([]string{"1", "2", "x", "4"}, sources.Name("lines")), func(s string) (int, error) {
		if s == "x" {
			return 0, errors.New("not a number")
		}
		return len(s), nil
	}, operators.Name("parse"))
	batches := operators.Batch(parse, 1, 0, operators.Name("rows"))
	n, err := sinks.Drain(reg.Context(context.Background()), batches, sinks.Name("out"))
	if n != 2 || err == nil || err.Error() != "parse: not a number" {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	const u = flow.Unbounded
	f := monitor.StateFailed
	want := []row{
		{1, 4, 0, "out", "drain", f, u, 2, u, 0, nil},
		{2, 3, 1, "rows", "batch", f, u, 2, u, 0, nil},
		{3, 2, 2, "parse", "maperr", f, u, 2, u, 0, nil},
		{4, 1, 3, "lines", "slice", f, u, 3, u, 0, nil},
	}
	if diff := cmp.Diff(want, rows(reg.Snapshot())); diff != "" {
		t.Errorf("stages (-want +got)\n%s", diff)
	}
}

func TestSnapshotOfAParallelMap(t *testing.T) {
	reg := monitor.New("parallel", monitor.Logger(nil))
	defer reg.Close()
	sq := operators.ParallelMap(sources.Range(0, 100, sources.Name("n")), func(v int) int { return v * v }, 2,
		operators.Ordered(), operators.Prefetch(8), operators.Name("square"))
	got, err := sinks.Collect(reg.Context(context.Background()), sq, sinks.Name("out"), sinks.Prefetch(16))
	if err != nil || len(got) != 100 || got[99] != 99*99 {
		t.Fatalf("Collect = %d items, %v", len(got), err)
	}
	var info []row
	for _, r := range rows(reg.Snapshot()) {
		r.Requested, r.Outstanding = 0, 0 // request patterns are the stages' own business
		info = append(info, r)
	}
	c := monitor.StateCompleted
	want := []row{
		{1, 3, 0, "out", "collect", c, 0, 100, 0, 0, nil},
		{2, 2, 1, "square", "parallelMap", c, 0, 100, 0, 0, nil},
		{3, 1, 2, "n", "range", c, 0, 100, 0, 0, nil},
	}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("stages (-want +got)\n%s", diff)
	}
}

func TestSnapshotOfABroadcast(t *testing.T) {
	reg := monitor.New("fanout", monitor.Logger(nil))
	defer reg.Close()
	b := operators.Broadcast(sources.Range(0, 10, sources.Name("n")), operators.Name("copy"), operators.MinSubscribers(2))
	ctx := reg.Context(context.Background())
	a := &forgetful{ctx: ctx, first: 10}
	c := &forgetful{ctx: ctx, first: 4}
	b.Subscribe(a)
	b.Subscribe(c) // the second subscriber connects: c's demand bounds the stream under Block
	var got []row
	for _, r := range rows(reg.Snapshot()) {
		r.Outstanding = 0
		got = append(got, r)
	}
	act, done := monitor.StateActive, monitor.StateCompleted
	// The hub (a Junction: the shared queue, fed by the range) and one
	// stage per subscriber under it. Under Block the second subscriber's
	// demand of 4 bounds what leaves the queue.
	want := []row{
		{1, 2, 0, "copy", "broadcast", done, 256, 4, 0, 6, nil},
		{2, 3, 0, "copy", "broadcast", act, 10, 4, 0, 0, nil},
		{3, 3, 0, "copy", "broadcast", act, 4, 4, 0, 0, nil},
		{4, 1, 1, "n", "range", done, 256, 10, 0, 0, nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stages (-want +got)\n%s", diff)
	}
	a.cancel()
	c.cancel()
}

func TestReaderSourcesTakeAName(t *testing.T) {
	reg := monitor.New("readers", monitor.Logger(nil))
	defer reg.Close()
	lines := sources.Lines(strings.NewReader("a\nb\nc\n"), sources.Name("input"))
	if n, err := sinks.Drain(reg.Context(context.Background()), lines, sinks.Name("out")); n != 3 || err != nil {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	var got []row
	for _, r := range rows(reg.Snapshot()) {
		r.Requested, r.Outstanding = 0, 0
		got = append(got, r)
	}
	c := monitor.StateCompleted
	want := []row{
		{1, 2, 0, "out", "drain", c, 0, 3, 0, 0, nil},
		{2, 1, 1, "input", "lines", c, 0, 3, 0, 0, nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stages (-want +got)\n%s", diff)
	}
}

// Stages hand each other runs of items when monitored too; the monitor
// counts every item of a run. The async chain of the performance budget,
// every stage named, must report exact delivered counts.
func TestSnapshotOfAnAsyncChainInRuns(t *testing.T) {
	reg := monitor.New("async", monitor.Logger(nil))
	defer reg.Close()
	s1, s2, s3 := scheduler.NewSingle(), scheduler.NewSingle(), scheduler.NewSingle()
	defer s1.Close()
	defer s2.Close()
	defer s3.Close()
	const n = 3000
	pub := operators.PublishOn(
		operators.Filter(
			operators.PublishOn(
				operators.Map(operators.PublishOn(sources.Range(0, n, sources.Name("numbers")), s1, operators.Name("hop1")),
					func(v int) int { return v * 2 }, operators.Name("double")),
				s2, operators.Name("hop2")),
			func(v int) bool { return v%3 != 0 }, operators.Name("keep")),
		s3, operators.Name("hop3"))
	kept := 0
	for i := range n {
		if (2*i)%3 != 0 {
			kept++
		}
	}
	got, err := sinks.Reduce(reg.Context(context.Background()), pub, 0, func(a, v int) int { return a + 1 }, sinks.Name("count"))
	if got != kept || err != nil {
		t.Fatalf("Reduce = %d, %v; want %d", got, err, kept)
	}
	type counted struct {
		Name      string
		State     monitor.State
		Delivered int64
	}
	var gotRows []counted
	for _, st := range reg.Snapshot().Stages {
		gotRows = append(gotRows, counted{st.Name, st.State, st.Delivered})
	}
	want := []counted{
		{"count", monitor.StateCompleted, int64(kept)},
		{"hop3", monitor.StateCompleted, int64(kept)},
		{"keep", monitor.StateCompleted, int64(kept)},
		{"hop2", monitor.StateCompleted, n},
		{"double", monitor.StateCompleted, n},
		{"hop1", monitor.StateCompleted, n},
		{"numbers", monitor.StateCompleted, n},
	}
	if diff := cmp.Diff(want, gotRows); diff != "" {
		t.Errorf("stages (-want +got)\n%s", diff)
	}
}
