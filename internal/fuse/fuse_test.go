package fuse_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sources"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestWhichPublishersFuse pins the set of publishers that run as a fused
// loop: only stateless, synchronous, cold ones.
func TestWhichPublishersFuse(t *testing.T) {
	id := func(v int) int { return v }
	all := func(int) bool { return true }
	pubs := map[string]flow.Publisher[int]{
		"Range":              sources.Range(0, 3),
		"Slice":              sources.Slice([]int{1}),
		"Map(Range)":         operators.Map(sources.Range(0, 3), id),
		"Filter(Map(Range))": operators.Filter(operators.Map(sources.Range(0, 3), id), all),
		"Take(Range)":        operators.Take(sources.Range(0, 3), 2),
		"Scan(Range)":        operators.Scan(sources.Range(0, 3), 0, func(a, v int) int { return a + v }),
		"Just":               sources.Just(1, 2),
		"Generate":           sources.Generate(func() int { return 0 }, func(s int) (int, int, error) { return s, s + 1, sources.Stop }),
		"Map(Generate)":      operators.Map(sources.Generate(func() int { return 0 }, func(s int) (int, int, error) { return s, s + 1, sources.Stop }), id),
	}
	got := map[string]bool{}
	for name, p := range pubs {
		_, got[name] = p.(fuse.Loop[int])
	}
	want := map[string]bool{
		"Range": true, "Slice": true, "Map(Range)": true, "Filter(Map(Range))": true, "Just": true,
		"Take(Range)": false, "Scan(Range)": false, "Generate": false, "Map(Generate)": false,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fusable publishers (-want +got)\n%s", diff)
	}
}

func TestRangeLoopStopsWhenYieldSaysSo(t *testing.T) {
	l := sources.Range(10, 100).(fuse.Loop[int])
	var stop atomic.Bool
	var got []int
	// A sink's yield: it returns false once stop is set.
	err := l.FusedLoop(fuse.NewRun(context.Background(), &stop), func(v int) bool {
		got = append(got, v)
		if v == 12 {
			stop.Store(true)
		}
		return !stop.Load()
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{10, 11, 12}, got); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
}
