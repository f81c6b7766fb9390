package stage_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNames(t *testing.T) {
	given := stage.Config{Name: "parse"}
	var derived stage.Config
	// Derived numbers are per process, so the test works from the first
	// one it sees (it may run more than once with -count).
	first := derived.NameOr("stagetest")
	var n int
	if _, err := fmt.Sscanf(first, "stagetest#%d", &n); err != nil || n < 1 {
		t.Fatalf("derived name %q is not kind#N", first)
	}
	got := []string{given.NameOr("map"), derived.NameOr("stagetest"), stage.DeriveName("stagetest")}
	want := []string{"parse", fmt.Sprintf("stagetest#%d", n+1), fmt.Sprintf("stagetest#%d", n+2)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names (-want +got)\n%s", diff)
	}
}

func TestDropHook(t *testing.T) {
	var none stage.Config
	if h := stage.DropHook[int](&none, "buffer#1"); h != nil {
		t.Error("DropHook without a hook is not nil")
	}
	var seen []int
	c := stage.Config{OnDrop: func(v int, _ flow.DropReason) { seen = append(seen, v) }}
	stage.DropHook[int](&c, "buffer#1")(7, flow.ReasonOldest)
	if diff := cmp.Diff([]int{7}, seen); diff != "" {
		t.Errorf("hook calls (-want +got)\n%s", diff)
	}
	err := flow.Catch(func() { stage.DropHook[string](&c, "buffer#1") })
	want := "sluice: panic: sluice: buffer#1: OnDrop hook is func(int, flow.DropReason), want func(string, flow.DropReason)"
	if err == nil || err.Error() != want {
		t.Errorf("mismatched hook: %v, want %q", err, want)
	}
}
