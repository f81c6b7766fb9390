package probe_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counts is the part of Counters these tests compare.
type counts struct {
	State                             probe.State
	Requested, Delivered, Outstanding int64
	Busy                              bool
}

func read(s *probe.Stage) counts {
	c := s.Read()
	return counts{c.State, c.Requested, c.Delivered, c.Outstanding, c.Busy}
}

func attach(t *testing.T) *probe.Stage {
	t.Helper()
	r := probe.NewRegistry(nil, nil)
	st, ctx := probe.AttachContext(probe.WithRegistry(context.Background(), r), "map", "m", probe.Operator)
	if st == nil || probe.FromContext(ctx) != r {
		t.Fatal("Attach did not register")
	}
	return st
}

func TestNilStageIsFree(t *testing.T) {
	var st *probe.Stage
	st.Request(5)
	st.Drop(flow.ReasonNewest)
	st.End(probe.Completed)
	st.SetLen(func() int { return 3 })
	if got := st.Read(); got != (probe.Counters{}) {
		t.Errorf("nil stage reads %+v", got)
	}
	if s, ctx := probe.AttachContext(context.Background(), "map", "m", probe.Operator); s != nil || ctx == nil {
		t.Error("Attach without a registry registered a stage")
	}
}

// The delivered count is published exactly when demand runs out, and the
// stage is busy until the OnNext that used the last demand returns.
func TestDeliveredIsExactWhenDemandRunsOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := attach(t)
		st.Request(3)
		var got []counts
		for range 3 {
			st.Next()
			got = append(got, read(st))
			st.Returned()
		}
		got = append(got, read(st))
		want := []counts{
			{probe.Active, 3, 1, 2, false}, // the first item always publishes
			{probe.Active, 3, 1, 2, false}, // then not until demand runs out
			{probe.Active, 3, 3, 0, true},  // the last demanded item: busy in OnNext
			{probe.Active, 3, 3, 0, false},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("counts (-want +got)\n%s", diff)
		}
		if c := st.Read(); !c.IdleSince.Equal(time.Now()) {
			t.Errorf("IdleSince = %v, want now", c.IdleSince)
		}
	})
}

func TestRefreshPublishesOnTheNextItem(t *testing.T) {
	st := attach(t)
	st.Request(flow.Unbounded)
	for range 10 {
		st.Next()
		st.Returned()
	}
	if got := st.Read().Delivered; got != 1 {
		t.Fatalf("delivered = %d before a refresh, want 1 (published every 1024)", got)
	}
	st.Refresh()
	st.Next()
	st.Returned()
	if got := st.Read(); got.Delivered != 11 || got.Outstanding != flow.Unbounded {
		t.Errorf("after refresh: delivered %d outstanding %d", got.Delivered, got.Outstanding)
	}
}

func TestRequestSaturatesAndEndIsFinal(t *testing.T) {
	st := attach(t)
	st.Request(flow.Unbounded - 1)
	st.Request(10)
	st.Request(-1) // not counted
	st.End(probe.Failed)
	st.End(probe.Completed) // the first terminal state wins
	st.Drop(flow.ReasonOldest)
	st.Drop(flow.ReasonOldest)
	c := st.Read()
	if c.Requested != flow.Unbounded || c.State != probe.Failed || c.Errors != 1 || c.Dropped[flow.ReasonOldest] != 2 {
		t.Errorf("counters %+v", c)
	}
}

// A long-lived registry forgets ended stages once it holds MaxStages, and
// never a live one.
func TestRegistryForgetsEndedStagesAtItsBound(t *testing.T) {
	r := probe.NewRegistry(nil, nil)
	ctx := probe.WithRegistry(context.Background(), r)
	live, _ := probe.AttachContext(ctx, "map", "live", probe.Operator)
	for range probe.MaxStages + 10 {
		st, _ := probe.AttachContext(ctx, "map", "ended", probe.Operator)
		st.End(probe.Completed)
	}
	stages := r.Stages()
	if len(stages) > probe.MaxStages || stages[0] != live {
		t.Fatalf("%d stages, first %q: the bound or the live stage was lost", len(stages), stages[0].Name)
	}
	if last := stages[len(stages)-1]; last.ID != probe.MaxStages+11 {
		t.Errorf("last ID %d, want %d (IDs are never reused)", last.ID, probe.MaxStages+11)
	}
}
