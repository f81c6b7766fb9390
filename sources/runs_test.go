package sources_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/internal/stage/stagetest"
	"github.com/sluicego/sluice/sources"
)

// Range and Slice hand a subscriber that takes runs (sluice's own
// stages) its items in runs. They must still pass the conformance kit.
func TestRunsConformance(t *testing.T) {
	for name, build := range map[string]func(n int64) flow.Publisher[int]{
		"Range": func(n int64) flow.Publisher[int] { return sources.Range(0, int(n)) },
		"Slice": func(n int64) flow.Publisher[int] { return sources.Slice(ints(0, int(n))) },
	} {
		t.Run(name, func(t *testing.T) {
			var used []*stagetest.Runs[int]
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				New: func(n int64) flow.Publisher[int] {
					p := stagetest.TakeRuns(build(n))
					used = append(used, p)
					return p
				},
				MaxElements: 1 << 16,
			})
			var runs int64
			for _, p := range used {
				p.Check(t, false)
				runs += p.Runs.Load()
			}
			if runs == 0 {
				t.Error("no run was handed over")
			}
		})
	}
}

// TestRunsFollowDemand checks the exact runs Range and Slice hand over for
// a sequence of requests: never beyond the demand, at most
// stage.MaxBatch (256) each, and the items in order.
func TestRunsFollowDemand(t *testing.T) {
	for name, build := range map[string]func(n int) flow.Publisher[int]{
		"Range": func(n int) flow.Publisher[int] { return sources.Range(0, n) },
		"Slice": func(n int) flow.Publisher[int] { return sources.Slice(ints(0, n)) },
	} {
		t.Run(name, func(t *testing.T) {
			sizes := &runSizes{}
			rec := flowtest.NewSubscriber[int](t, 0)
			build(1000).Subscribe(sizes.wrap(rec))
			for _, n := range []int64{3, 600, 1, 1000} {
				rec.Request(n)
			}
			if !rec.AwaitCompleted() {
				t.Fatal("not completed")
			}
			if diff := cmp.Diff(ints(0, 1000), rec.Items()); diff != "" {
				t.Errorf("items (-want +got)\n%s", diff)
			}
			want := []int{3, 256, 256, 88, 1, 256, 140}
			if diff := cmp.Diff(want, sizes.sizes); diff != "" {
				t.Errorf("run sizes (-want +got)\n%s", diff)
			}
			if v := rec.Violations(); len(v) != 0 {
				t.Errorf("violations %v", v)
			}
		})
	}
}

// TestRunsStopAtCancel checks that a cancel inside a run stops the source
// before its next run.
func TestRunsStopAtCancel(t *testing.T) {
	for name, build := range map[string]func(n int) flow.Publisher[int]{
		"Range": func(n int) flow.Publisher[int] { return sources.Range(0, n) },
		"Slice": func(n int) flow.Publisher[int] { return sources.Slice(ints(0, n)) },
	} {
		t.Run(name, func(t *testing.T) {
			sizes := &runSizes{}
			rec := flowtest.NewSubscriber[int](t, flow.Unbounded, flowtest.CancelAfter(300))
			build(10000).Subscribe(sizes.wrap(rec))
			if diff := cmp.Diff(ints(0, 300), rec.Items()); diff != "" {
				t.Errorf("items (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff([]int{256, 256}, sizes.sizes); diff != "" {
				t.Errorf("run sizes (-want +got)\n%s", diff)
			}
		})
	}
}

// runSizes records the size of every run handed to the subscriber it
// wraps, which it passes on item by item until cancelled.
type runSizes struct{ sizes []int }

func (r *runSizes) wrap(s flow.Subscriber[int]) flow.Subscriber[int] {
	return &sizeTaker{Subscriber: s, r: r}
}

type sizeTaker struct {
	flow.Subscriber[int]
	r         *runSizes
	up        flow.Subscription
	cancelled bool
}

func (s *sizeTaker) OnSubscribe(up flow.Subscription) { s.up = up; s.Subscriber.OnSubscribe(s) }
func (s *sizeTaker) Request(n int64)                  { s.up.Request(n) }
func (s *sizeTaker) Cancel()                          { s.cancelled = true; s.up.Cancel() }
func (s *sizeTaker) OnNextBatch(items []int) {
	s.r.sizes = append(s.r.sizes, len(items))
	for _, v := range items {
		if s.cancelled {
			return
		}
		s.OnNext(v)
	}
}

func TestRunsSliceIsNotCopied(t *testing.T) {
	items := ints(0, 10)
	var got []int
	taker := &aliasTaker{items: items, seen: &got}
	sources.Slice(items).Subscribe(taker)
	if diff := cmp.Diff([]int{0}, got); diff != "" {
		t.Errorf("offsets of the runs in the slice (-want +got)\n%s", diff)
	}
}

// aliasTaker records where each run it is handed starts in items, or -1
// when the run is a copy.
type aliasTaker struct {
	items []int
	seen  *[]int
}

func (a *aliasTaker) OnSubscribe(s flow.Subscription) { s.Request(flow.Unbounded) }
func (a *aliasTaker) OnNext(int)                      { panic("OnNext: want runs") }
func (a *aliasTaker) OnError(err error)               { panic(fmt.Sprint("OnError: ", err)) }
func (a *aliasTaker) OnComplete()                     {}
func (a *aliasTaker) OnNextBatch(items []int) {
	for i := range a.items {
		if &a.items[i] == &items[0] {
			*a.seen = append(*a.seen, i)
			return
		}
	}
	*a.seen = append(*a.seen, -1)
}
