package monitor_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/monitor"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// A registry in the sink's context is all it takes: every stage of the
// pipeline registers, and the snapshot shows them from the source down.
func Example() {
	reg := monitor.New("example", monitor.Logger(nil))
	defer reg.Close()

	squares := operators.Map(sources.Range(1, 100, sources.Name("numbers")), func(n int) int { return n * n }, operators.Name("square"))
	odd := operators.Filter(squares, func(n int) bool { return n%2 == 1 }, operators.Name("odd"))
	sum, err := sinks.Reduce(reg.Context(context.Background()), odd, 0, func(a, b int) int { return a + b }, sinks.Name("sum"))
	fmt.Println(sum, err)
	reg.Snapshot().WriteTable(os.Stdout)
	// Output:
	// 166650 <nil>
	// POS  STAGE    KIND    STATE      REQUESTED  DELIVERED  DEMAND     BUFFERED  DROPPED  ERRORS  STALLS
	// 1    numbers  range   completed  unbounded  100        unbounded  0         0        0       0
	// 2    square   map     completed  unbounded  100        unbounded  0         0        0       0
	// 3    odd      filter  completed  unbounded  50         unbounded  0         0        0       0
	// 4    sum      reduce  completed  unbounded  50         unbounded  0         0        0       0
}

// OnStall receives every report; here a subscriber takes one item and
// never asks for more.
func ExampleOnStall() {
	stalled := make(chan monitor.Report, 1)
	reg := monitor.New("example",
		monitor.StallThreshold(20*time.Millisecond),
		monitor.Logger(nil),
		monitor.OnStall(func(r monitor.Report) { stalled <- r }))
	defer reg.Close()

	ctx, cancel := context.WithCancel(reg.Context(context.Background()))
	var sub flow.Subscription
	lazy := &subscriber{ctx: ctx, onSubscribe: func(s flow.Subscription) { sub = s; s.Request(1) }}
	operators.Map(sources.Range(0, 10), func(n int) int { return n }, operators.Name("pass")).Subscribe(lazy)

	r := <-stalled
	fmt.Println(r.Stage.Name, r.Kind, "requested", r.Stage.Requested, "delivered", r.Stage.Delivered)
	sub.Cancel()
	cancel()
	// Output:
	// pass stalled requested 1 delivered 1
}

// subscriber is a minimal hand-written subscriber that takes part in
// monitoring through its Context method.
type subscriber struct {
	ctx         context.Context
	onSubscribe func(flow.Subscription)
}

func (s *subscriber) Context() context.Context          { return s.ctx }
func (s *subscriber) OnSubscribe(sub flow.Subscription) { s.onSubscribe(sub) }
func (s *subscriber) OnNext(int)                        {}
func (s *subscriber) OnError(error)                     {}
func (s *subscriber) OnComplete()                       {}

// The collector publishes sluice_stage_* metrics; register it like any
// other prometheus.Collector and serve it with promhttp.Handler.
func ExampleNewCollector() {
	reg := monitor.New("etl", monitor.Logger(nil))
	defer reg.Close()
	_, _ = sinks.Drain(reg.Context(context.Background()), sources.Range(0, 10, sources.Name("rows")), sinks.Name("load"))

	pr := prometheus.NewRegistry()
	pr.MustRegister(monitor.NewCollector(reg))
	// http.Handle("/metrics", promhttp.HandlerFor(pr, promhttp.HandlerOpts{}))
	mfs, _ := pr.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "sluice_stage_delivered_total" {
				fmt.Println(mf.GetName(), m.GetLabel()[0].GetValue(), m.GetLabel()[1].GetValue(), m.GetCounter().GetValue())
			}
		}
	}
	// Output:
	// sluice_stage_delivered_total etl load 10
	// sluice_stage_delivered_total etl rows 10
}
