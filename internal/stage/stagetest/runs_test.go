package stagetest_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/internal/stage/stagetest"
	"github.com/sluicego/sluice/sources"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Range hands a subscriber that takes runs its items in runs of up to
// stage.MaxBatch, bounded by the demand: TakeRuns must see them, count
// them, and pass every item on in order.
func TestTakeRunsPassesRunsOn(t *testing.T) {
	p := stagetest.TakeRuns(sources.Range(0, 600))
	rec := flowtest.NewSubscriber[int](t, 500)
	p.Subscribe(rec)
	rec.Request(100)
	if !rec.AwaitCompleted() {
		t.Fatal("not completed")
	}
	want := make([]int, 600)
	for i := range want {
		want[i] = i
	}
	if diff := cmp.Diff(want, rec.Items()); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
	// 500 requested first: runs of 256 and 244; then 100.
	if runs, items := p.Runs.Load(), p.Items.Load(); runs != 3 || items != 600 {
		t.Errorf("%d runs of %d items in all, want 3 of 600", runs, items)
	}
	p.Check(t, true)
}
