package monitor_test

import (
	"context"
	"github.com/google/go-cmp/cmp"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/monitor"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

func TestMetricsAreScrapedOverHTTP(t *testing.T) {
	reg := monitor.New("etl", monitor.Logger(nil))
	defer reg.Close()
	src := operators.Buffer(sources.Range(0, 10, sources.Name("numbers")), 4, flow.DropNewest, operators.Name("shed"))
	sub := &forgetful{ctx: reg.Context(context.Background())}
	src.Subscribe(sub) // 4 buffered, 6 dropped before any demand
	sub.sub.Request(2)

	pr := prometheus.NewRegistry()
	pr.MustRegister(monitor.NewCollector(reg))
	srv := httptest.NewServer(promhttp.HandlerFor(pr, promhttp.HandlerOpts{}))
	defer srv.Close()

	want := `
# HELP sluice_stage_buffered Items the stage holds.
# TYPE sluice_stage_buffered gauge
sluice_stage_buffered{pipeline="etl",stage="numbers"} 0
sluice_stage_buffered{pipeline="etl",stage="shed"} 2
# HELP sluice_stage_delivered_total Items the stage delivered downstream.
# TYPE sluice_stage_delivered_total counter
sluice_stage_delivered_total{pipeline="etl",stage="numbers"} 10
sluice_stage_delivered_total{pipeline="etl",stage="shed"} 2
# HELP sluice_stage_dropped_total Items the stage dropped, by reason.
# TYPE sluice_stage_dropped_total counter
sluice_stage_dropped_total{pipeline="etl",reason="cancelled",stage="numbers"} 0
sluice_stage_dropped_total{pipeline="etl",reason="cancelled",stage="shed"} 0
sluice_stage_dropped_total{pipeline="etl",reason="closed",stage="numbers"} 0
sluice_stage_dropped_total{pipeline="etl",reason="closed",stage="shed"} 0
sluice_stage_dropped_total{pipeline="etl",reason="error",stage="numbers"} 0
sluice_stage_dropped_total{pipeline="etl",reason="error",stage="shed"} 0
sluice_stage_dropped_total{pipeline="etl",reason="newest",stage="numbers"} 0
sluice_stage_dropped_total{pipeline="etl",reason="newest",stage="shed"} 6
sluice_stage_dropped_total{pipeline="etl",reason="oldest",stage="numbers"} 0
sluice_stage_dropped_total{pipeline="etl",reason="oldest",stage="shed"} 0
sluice_stage_dropped_total{pipeline="etl",reason="overflow",stage="numbers"} 0
sluice_stage_dropped_total{pipeline="etl",reason="overflow",stage="shed"} 0
# HELP sluice_stage_outstanding_demand Items requested from the stage and not yet delivered (capped at 2^53 for unbounded demand).
# TYPE sluice_stage_outstanding_demand gauge
sluice_stage_outstanding_demand{pipeline="etl",stage="numbers"} 9.007199254740992e+15
sluice_stage_outstanding_demand{pipeline="etl",stage="shed"} 0
# HELP sluice_stage_requested_total Items requested from the stage by its downstream.
# TYPE sluice_stage_requested_total counter
sluice_stage_requested_total{pipeline="etl",stage="numbers"} 9.007199254740992e+15
sluice_stage_requested_total{pipeline="etl",stage="shed"} 2
# HELP sluice_stage_stalls_total Stall reports against the stage.
# TYPE sluice_stage_stalls_total counter
sluice_stage_stalls_total{pipeline="etl",stage="numbers"} 0
sluice_stage_stalls_total{pipeline="etl",stage="shed"} 0
# HELP sluice_stage_errors_total Subscriptions of the stage that ended with an error.
# TYPE sluice_stage_errors_total counter
sluice_stage_errors_total{pipeline="etl",stage="numbers"} 0
sluice_stage_errors_total{pipeline="etl",stage="shed"} 0
`
	names := []string{"sluice_stage_buffered", "sluice_stage_delivered_total", "sluice_stage_dropped_total",
		"sluice_stage_outstanding_demand", "sluice_stage_requested_total", "sluice_stage_stalls_total", "sluice_stage_errors_total"}
	if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(pr); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	sub.cancel()
}

func TestAsyncStagesPublishALatencyHistogram(t *testing.T) {
	reg := monitor.New("async", monitor.Logger(nil))
	defer reg.Close()
	sched := scheduler.NewSingle()
	defer sched.Close()
	pub := operators.PublishOn(sources.Range(0, 1000), sched, operators.Name("hop"))
	if n, err := sinks.Drain(reg.Context(context.Background()), pub); err != nil || n != 1000 {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	c := monitor.NewCollector(reg)
	if n := testutil.CollectAndCount(c, "sluice_stage_latency_seconds"); n != 1 {
		t.Errorf("%d latency histograms, want 1 (the PublishOn stage)", n)
	}
	pr := prometheus.NewPedanticRegistry()
	pr.MustRegister(c)
	mfs, err := pr.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_stage_latency_seconds" {
			continue
		}
		m := mf.GetMetric()[0]
		if got := m.GetHistogram().GetSampleCount(); got == 0 {
			t.Errorf("latency histogram of %v has no samples", m.GetLabel())
		}
	}
}

func TestGaugesAreSnapshottedAndScraped(t *testing.T) {
	reg := monitor.New("edge", monitor.Logger(nil))
	defer reg.Close()
	state := 1.0
	reg.Gauge("inventory_breaker_state", "0 closed, 1 open, 2 half-open", func() float64 { return state })
	if diff := cmp.Diff([]monitor.GaugeValue{{Name: "inventory_breaker_state", Help: "0 closed, 1 open, 2 half-open", Value: 1}},
		reg.Snapshot().Gauges); diff != "" {
		t.Errorf("snapshot gauges (-want +got)\n%s", diff)
	}
	state = 2
	want := `
# HELP sluice_gauge A value registered with Registry.Gauge, such as a circuit breaker's state or an adaptive concurrency limit.
# TYPE sluice_gauge gauge
sluice_gauge{name="inventory_breaker_state",pipeline="edge"} 2
`
	if err := testutil.CollectAndCompare(monitor.NewCollector(reg), strings.NewReader(want), "sluice_gauge"); err != nil {
		t.Error(err)
	}
	if err := flow.Catch(func() { reg.Gauge("inventory_breaker_state", "", func() float64 { return 0 }) }); err == nil {
		t.Error("a gauge registered twice did not panic")
	}
}
