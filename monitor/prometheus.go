package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
)

// Collector is a prometheus.Collector that publishes the counters of one
// or more registries as sluice_stage_* metrics, labelled by pipeline and
// stage. Stage instances that share a name (one stage subscribed twice)
// are summed. Reading them costs atomic loads, done at scrape time only.
// A Collector is goroutine-safe.
type Collector struct {
	regs []*Registry
}

// NewCollector returns a collector for regs. Register it with
// prometheus.MustRegister or a prometheus.Registry.
func NewCollector(regs ...*Registry) *Collector {
	for _, r := range regs {
		if r == nil {
			panic("sluice: monitor.NewCollector: nil Registry")
		}
	}
	return &Collector{regs: regs}
}

var (
	labels      = []string{"pipeline", "stage"}
	descReq     = prometheus.NewDesc("sluice_stage_requested_total", "Items requested from the stage by its downstream.", labels, nil)
	descDel     = prometheus.NewDesc("sluice_stage_delivered_total", "Items the stage delivered downstream.", labels, nil)
	descDrop    = prometheus.NewDesc("sluice_stage_dropped_total", "Items the stage dropped, by reason.", append(labels[:2:2], "reason"), nil)
	descBuf     = prometheus.NewDesc("sluice_stage_buffered", "Items the stage holds.", labels, nil)
	descDemand  = prometheus.NewDesc("sluice_stage_outstanding_demand", "Items requested from the stage and not yet delivered (capped at 2^53 for unbounded demand).", labels, nil)
	descStalls  = prometheus.NewDesc("sluice_stage_stalls_total", "Stall reports against the stage.", labels, nil)
	descErrors  = prometheus.NewDesc("sluice_stage_errors_total", "Subscriptions of the stage that ended with an error.", labels, nil)
	descRedeliv = prometheus.NewDesc("sluice_stage_redelivered_total", "Items a durable source (JetStream) received again because an earlier delivery was not acknowledged.", labels, nil)
	descGauge   = prometheus.NewDesc("sluice_gauge", "A value registered with Registry.Gauge, such as a circuit breaker's state or an adaptive concurrency limit.", []string{"pipeline", "name"}, nil)
	descLatency = prometheus.NewDesc("sluice_stage_latency_seconds", "Time items wait in an async stage's queue before delivery, sampled once per drained batch.", labels, nil)
)

// maxGauge caps unbounded demand at a value a float64 holds exactly.
const maxGauge = 1 << 53

// Describe sends the descriptors of every metric the collector publishes.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReq, descDel, descDrop, descBuf, descDemand, descStalls, descErrors, descRedeliv, descGauge, descLatency} {
		ch <- d
	}
}

type agg struct {
	requested, delivered, buffered, outstanding, stalls, errors, redelivered float64
	dropped                                                                  [probe.NumReasons]float64
	latency                                                                  [probe.NumBuckets]uint64
	latencyN                                                                 uint64
	latencySum                                                               float64
}

// Collect sends the current value of every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.regs {
		for _, g := range r.gaugeValues() {
			ch <- prometheus.MustNewConstMetric(descGauge, prometheus.GaugeValue, g.Value, r.pipeline, g.Name)
		}
		byName := map[string]*agg{}
		var order []string
		for _, s := range r.reg.Stages() {
			a := byName[s.Name]
			if a == nil {
				a = &agg{}
				byName[s.Name] = a
				order = append(order, s.Name)
			}
			k := s.Read()
			a.requested = addCapped(a.requested, k.Requested)
			a.delivered += float64(k.Delivered)
			a.buffered += float64(k.Buffered)
			a.outstanding = addCapped(a.outstanding, k.Outstanding)
			a.stalls += float64(k.Stalls)
			a.errors += float64(k.Errors)
			a.redelivered += float64(k.Redelivered)
			for i, n := range k.Dropped {
				a.dropped[i] += float64(n)
			}
			for i, n := range k.Latency {
				a.latency[i] += uint64(n)
				a.latencyN += uint64(n)
			}
			a.latencySum += k.LatencySum.Seconds()
		}
		for _, name := range order {
			a := byName[name]
			lv := []string{r.pipeline, name}
			ch <- prometheus.MustNewConstMetric(descReq, prometheus.CounterValue, a.requested, lv...)
			ch <- prometheus.MustNewConstMetric(descDel, prometheus.CounterValue, a.delivered, lv...)
			for i := 1; i < probe.NumReasons; i++ {
				ch <- prometheus.MustNewConstMetric(descDrop, prometheus.CounterValue, a.dropped[i], r.pipeline, name, flow.DropReason(i).String())
			}
			ch <- prometheus.MustNewConstMetric(descBuf, prometheus.GaugeValue, a.buffered, lv...)
			ch <- prometheus.MustNewConstMetric(descDemand, prometheus.GaugeValue, a.outstanding, lv...)
			ch <- prometheus.MustNewConstMetric(descStalls, prometheus.CounterValue, a.stalls, lv...)
			ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, a.errors, lv...)
			ch <- prometheus.MustNewConstMetric(descRedeliv, prometheus.CounterValue, a.redelivered, lv...)
			if a.latencyN > 0 {
				buckets := make(map[float64]uint64, len(probe.LatencyBuckets))
				var cum uint64
				for i, ub := range probe.LatencyBuckets {
					cum += a.latency[i]
					buckets[ub] = cum
				}
				ch <- prometheus.MustNewConstHistogram(descLatency, a.latencyN, a.latencySum, buckets, lv...)
			}
		}
	}
}

// addCapped adds n to sum, treating flow.Unbounded (and anything past
// 2^53) as 2^53.
func addCapped(sum float64, n int64) float64 {
	if n == flow.Unbounded || sum+float64(n) > maxGauge {
		return maxGauge
	}
	return sum + float64(n)
}
