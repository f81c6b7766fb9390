package monitor_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/monitor"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// forgetful is a hand-written subscriber that takes part in monitoring
// (it has a Context method) and requests only what it is told to.
type forgetful struct {
	ctx   context.Context
	first int64 // requested in OnSubscribe, if > 0
	busy  time.Duration
	each  bool // request one more after each item (after busy)

	mu   sync.Mutex
	sub  flow.Subscription
	got  []int
	done bool
}

func (f *forgetful) Context() context.Context { return f.ctx }

func (f *forgetful) OnSubscribe(s flow.Subscription) {
	f.mu.Lock()
	f.sub = s
	f.mu.Unlock()
	if f.first > 0 {
		s.Request(f.first)
	}
}

func (f *forgetful) OnNext(v int) {
	f.mu.Lock()
	f.got = append(f.got, v)
	f.mu.Unlock()
	if f.busy > 0 {
		time.Sleep(f.busy)
	}
	if f.each {
		f.sub.Request(1)
	}
}

func (f *forgetful) OnError(error) { f.end() }
func (f *forgetful) OnComplete()   { f.end() }

func (f *forgetful) end() {
	f.mu.Lock()
	f.done = true
	f.mu.Unlock()
}

func (f *forgetful) cancel() {
	f.mu.Lock()
	s := f.sub
	f.mu.Unlock()
	s.Cancel()
}

// reports collects the registry's stall reports.
type reports struct {
	mu  sync.Mutex
	got []monitor.Report
}

func (r *reports) add(rep monitor.Report) {
	r.mu.Lock()
	r.got = append(r.got, rep)
	r.mu.Unlock()
}

func (r *reports) list() []monitor.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]monitor.Report(nil), r.got...)
}

// brief is the part of a report that tests compare exactly.
type brief struct {
	Kind                           monitor.StallKind
	Stage                          string
	Position, Stages               int
	Duration                       time.Duration
	Buffered, Requested, Delivered int64
	LastRequest                    time.Duration // since the test started
}

func briefs(reps []monitor.Report, start time.Time) []brief {
	out := []brief{}
	for _, r := range reps {
		b := brief{Kind: r.Kind, Stage: r.Stage.Name, Position: r.Stage.Position, Stages: r.Stages,
			Duration: r.Duration, Buffered: r.Stage.Buffered, Requested: r.Stage.Requested, Delivered: r.Stage.Delivered}
		if !r.Stage.LastRequest.IsZero() {
			b.LastRequest = r.Stage.LastRequest.Sub(start)
		}
		out = append(out, b)
	}
	return out
}

const threshold = 10 * time.Second

func newRegistry(rs *reports, opts ...monitor.Option) *monitor.Registry {
	return monitor.New("test", append([]monitor.Option{
		monitor.StallThreshold(threshold), monitor.Logger(nil), monitor.OnStall(rs.add),
	}, opts...)...)
}

func TestForgottenRequestIsReportedAtTheThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var rs reports
		reg := newRegistry(&rs)
		defer reg.Close()
		pub := operators.Map(sources.Range(0, 1000), func(v int) int { return v * 2 }, operators.Name("double"))
		sub := &forgetful{ctx: reg.Context(context.Background()), first: 10}
		pub.Subscribe(sub)

		time.Sleep(threshold - time.Second)
		synctest.Wait()
		if got := rs.list(); len(got) != 0 {
			t.Fatalf("reported before the threshold: %v", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		want := []brief{{Kind: monitor.Stalled, Stage: "double", Position: 2, Stages: 2,
			Duration: threshold, Requested: 10, Delivered: 10}}
		if diff := cmp.Diff(want, briefs(rs.list(), start)); diff != "" {
			t.Errorf("reports (-want +got)\n%s", diff)
		}
		// Once per stall: no second report while it lasts.
		time.Sleep(3 * threshold)
		synctest.Wait()
		if n := len(rs.list()); n != 1 {
			t.Errorf("%d reports, want 1", n)
		}
		snap := reg.Snapshot()
		if got := snap.Stages[0].Stalls; got != 1 {
			t.Errorf("stalls counted on the stage = %d, want 1", got)
		}
		sub.cancel()
	})
}

func TestNeverRequested(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var rs reports
		reg := newRegistry(&rs)
		defer reg.Close()
		sub := &forgetful{ctx: reg.Context(context.Background())}
		operators.Filter(sources.Range(0, 5), func(int) bool { return true }, operators.Name("keep")).Subscribe(sub)
		time.Sleep(threshold)
		synctest.Wait()
		want := []brief{{Kind: monitor.NeverRequested, Stage: "keep", Position: 2, Stages: 2, Duration: threshold}}
		if diff := cmp.Diff(want, briefs(rs.list(), start)); diff != "" {
			t.Errorf("reports (-want +got)\n%s", diff)
		}
		sub.cancel()
	})
}

func TestSlowButHealthySubscriberIsNotReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rs reports
		reg := newRegistry(&rs)
		defer reg.Close()
		// Each item takes three thresholds inside OnNext, and the next is
		// requested only then: demand is zero between items, but the
		// subscriber is busy, not forgetful.
		sub := &forgetful{ctx: reg.Context(context.Background()), first: 1, each: true, busy: 3 * threshold}
		operators.Map(sources.Range(0, 4), func(v int) int { return v }).Subscribe(sub)
		synctest.Wait()
		if got := rs.list(); len(got) != 0 {
			t.Errorf("a busy subscriber was reported: %v", got)
		}
		if diff := cmp.Diff([]int{0, 1, 2, 3}, sub.got); diff != "" {
			t.Errorf("items (-want +got)\n%s", diff)
		}
	})
}

func TestSlowSinkIsNotReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rs reports
		reg := newRegistry(&rs)
		defer reg.Close()
		n := 0
		err := sinks.ForEach(reg.Context(context.Background()),
			operators.Map(sources.Range(0, 6), func(v int) int { return v }),
			func(int) error { time.Sleep(2 * threshold); n++; return nil },
			sinks.Prefetch(1))
		if err != nil || n != 6 {
			t.Fatalf("ForEach = %v after %d items", err, n)
		}
		if got := rs.list(); len(got) != 0 {
			t.Errorf("a slow sink's pipeline was reported: %v", got)
		}
	})
}

func TestIdleSourceIsNotReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rs reports
		reg := newRegistry(&rs)
		defer reg.Close()
		ch := make(chan int)
		ctx, cancel := context.WithCancel(reg.Context(context.Background()))
		done := make(chan error)
		go func() {
			_, err := sinks.Drain(ctx, operators.Map(sources.FromChannel(ch), func(v int) int { return v }))
			done <- err
		}()
		time.Sleep(5 * threshold) // demand is there, data is not: idle
		synctest.Wait()
		if got := rs.list(); len(got) != 0 {
			t.Errorf("an idle pipeline was reported: %v", got)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Drain = %v, want context.Canceled", err)
		}
	})
}

func TestFailOnStallEndsThePipeline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rs reports
		reg := newRegistry(&rs, monitor.FailOnStall())
		defer reg.Close()
		// A hand-written stage in the middle forgets to request after its
		// first batch: Buffer above it holds items, and the sink below it
		// waits for ever without the detector.
		src := operators.Buffer(sources.Range(0, 1000), 64, flow.Block, operators.Name("buffer"))
		mid := &forgetfulStage{first: 16}
		got := 0
		err := sinks.ForEach(reg.Context(context.Background()), mid.wrap(src), func(int) error { got++; return nil })
		if !errors.Is(err, monitor.ErrStalled) {
			t.Fatalf("ForEach = %v, want ErrStalled", err)
		}
		var se *monitor.StallError
		if !errors.As(err, &se) || se.Report.Stage.Name != "buffer" {
			t.Errorf("stall error %v does not name the buffer", err)
		}
		if got != 16 {
			t.Errorf("sink got %d items, want 16", got)
		}
		reps := rs.list()
		if len(reps) != 1 || reps[0].Stage.Name != "buffer" || reps[0].Stage.Buffered != 48 {
			t.Errorf("reports = %v, want one naming buffer with 48 buffered (64 requested, 16 delivered)", reps)
		}
	})
}

// forgetfulStage is a pass-through processor that requests first items
// upstream once, whatever its downstream asks for. It forwards its
// downstream's context, so the stages above it are monitored.
type forgetfulStage struct {
	first int64
}

func (f *forgetfulStage) wrap(src flow.Publisher[int]) flow.Publisher[int] {
	return flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		src.Subscribe(&forgetfulLink{down: s, first: f.first})
	})
}

type forgetfulLink struct {
	down  flow.Subscriber[int]
	first int64
	up    flow.Subscription
}

func (l *forgetfulLink) Context() context.Context {
	if c, ok := l.down.(interface{ Context() context.Context }); ok {
		return c.Context()
	}
	return context.Background()
}
func (l *forgetfulLink) OnSubscribe(s flow.Subscription) {
	l.up = s
	l.down.OnSubscribe(l)
	s.Request(l.first)
}
func (l *forgetfulLink) OnNext(v int)      { l.down.OnNext(v) }
func (l *forgetfulLink) OnError(err error) { l.down.OnError(err) }
func (l *forgetfulLink) OnComplete()       { l.down.OnComplete() }
func (l *forgetfulLink) Request(int64)     {} // forgotten
func (l *forgetfulLink) Cancel()           { l.up.Cancel() }

// The registry is never closed here: synctest.Test returns only once every
// goroutine of the bubble has exited, so a checker that outlived its
// pipeline would keep the test from ending.
func TestCheckerStopsWhenThePipelineEndsAndRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rs reports
		reg := newRegistry(&rs)
		if _, err := sinks.Drain(reg.Context(context.Background()), sources.Range(0, 100)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the checker sees every stage ended and exits

		// A second pipeline on the same registry starts it again.
		sub := &forgetful{ctx: reg.Context(context.Background()), first: 1}
		operators.Map(sources.Range(0, 10), func(v int) int { return v }, operators.Name("again")).Subscribe(sub)
		time.Sleep(threshold)
		synctest.Wait()
		if got := rs.list(); len(got) != 1 || got[0].Stage.Name != "again" {
			t.Fatalf("reports after restart: %v", got)
		}
		sub.cancel()
	})
}

// groupsSub subscribes to every group except the one for skip, with
// unbounded demand; it takes part in monitoring through Context.
type groupsSub struct {
	ctx  context.Context
	skip int
	mu   sync.Mutex
	subs []flow.Subscription
	got  map[int][]int
}

func (g *groupsSub) Context() context.Context { return g.ctx }
func (g *groupsSub) OnSubscribe(s flow.Subscription) {
	g.keep(s)
	s.Request(flow.Unbounded)
}
func (g *groupsSub) OnNext(grp *operators.Group[int, int]) {
	if grp.Key() == g.skip {
		return // the bug: this group is never consumed
	}
	k := grp.Key()
	grp.Subscribe(flow.SubscriberFuncs[int]{
		Subscribe: func(s flow.Subscription) { g.keep(s); s.Request(flow.Unbounded) },
		Next: func(v int) {
			g.mu.Lock()
			g.got[k] = append(g.got[k], v)
			g.mu.Unlock()
		},
	})
}
func (g *groupsSub) OnError(error) {}
func (g *groupsSub) OnComplete()   {}
func (g *groupsSub) keep(s flow.Subscription) {
	g.mu.Lock()
	g.subs = append(g.subs, s)
	g.mu.Unlock()
}
func (g *groupsSub) cancelAll() {
	g.mu.Lock()
	subs := g.subs
	g.mu.Unlock()
	for _, s := range subs {
		s.Cancel()
	}
}

func TestStalledGroupByGroupIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var rs reports
		reg := newRegistry(&rs)
		defer reg.Close()
		groups := operators.GroupBy(sources.Range(0, 100), func(v int) int { return v % 3 }, 3,
			operators.Name("by-tenant"), operators.Prefetch(8))
		sub := &groupsSub{ctx: reg.Context(context.Background()), skip: 2, got: map[int][]int{}}
		groups.Subscribe(sub)
		time.Sleep(threshold)
		synctest.Wait()
		// Group 2 fills its queue (8) and, once the head item for it
		// cannot be routed, the whole GroupBy waits: groups 0 and 1 got
		// what was routed before.
		want := []brief{{Kind: monitor.NeverRequested, Stage: "by-tenant[2]", Position: 3, Stages: 5,
			Duration: threshold, Buffered: 8}}
		if diff := cmp.Diff(want, briefs(rs.list(), start)); diff != "" {
			t.Errorf("reports (-want +got)\n%s", diff)
		}
		sub.cancelAll()
	})
}
