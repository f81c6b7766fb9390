package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"time"
)

// Scenario is one thing to time: a pipeline (sluice's, a baseline's, or a
// user's own) that processes a given number of items per run.
//
// Scenarios of one Group are compared with each other: every result of a
// group gets its ratio to each Baseline of that group.
type Scenario struct {
	// Group names what is measured, such as "map-filter-reduce". The rows
	// of one group are compared; the chart draws one cluster per group.
	Group string
	// Name names the variant within the group, such as "async" or
	// "buffered=256". Group, Library and Name together should be unique.
	Name string
	// Library is who implements the variant: "sluice", "go" (plain loops
	// and channels), "rxgo", or the user's own label. The chart colours
	// bars by library.
	Library string
	// Baseline marks the variants the others are compared with.
	Baseline bool
	// Items is the number of items of one run when Options.Items is 0.
	// Zero means DefaultItems.
	Items int
	// Prepare, if not nil, is called once with the item count before any
	// run, untimed: to build inputs or expected results.
	Prepare func(items int) error
	// Run processes items items once and returns when it is done. It must
	// return a non-nil error if the result is wrong: a scenario that
	// checks nothing measures nothing. It should stop early with
	// ctx.Err() when ctx is done.
	Run func(ctx context.Context, items int) error
}

// DefaultItems is the number of items of a run when neither the Scenario
// nor the Options set it.
const DefaultItems = 1_000_000

// ID returns "group/library/name", the scenario's name in tables and
// progress reports.
func (s Scenario) ID() string { return s.Group + "/" + s.Library + "/" + s.Name }

// Options configures [Measure]. The zero value is usable.
type Options struct {
	// Count is the number of timed runs of each scenario (default 5).
	Count int
	// Items overrides every scenario's item count when > 0.
	Items int
	// Warmup runs each scenario this many times, untimed, before its
	// timed runs (default 0).
	Warmup int
	// PeakHeap samples the bytes of live heap objects every millisecond
	// during each run (runtime/metrics) and reports the highest value in
	// Result.PeakHeapBytes. The sampler is one goroutine, woken every
	// millisecond: negligible for runs of milliseconds or more.
	PeakHeap bool
	// Progress, if not nil, is called before each run with the number of
	// runs done so far, the total, and the scenario about to run, and
	// once at the end with done == total and a zero Scenario. It is
	// called on the goroutine of Measure.
	Progress func(done, total int, s Scenario)
}

// Result is what [Measure] found for one scenario.
type Result struct {
	Scenario Scenario
	// Items is the number of items of each run.
	Items int
	// NsPerItem holds the wall time per item of every timed run, in the
	// order they ran.
	NsPerItem []float64
	// Median, Min and Max summarise NsPerItem.
	Median, Min, Max float64
	// AllocsPerItem and BytesPerItem are the medians, over the runs, of
	// the heap allocations per item and of the bytes they allocated
	// (runtime.MemStats, so every goroutine's allocations count,
	// including those of the harness and the runtime).
	AllocsPerItem, BytesPerItem float64
	// PeakHeapBytes is the median over the runs of the peak of live heap
	// objects during a run, when Options.PeakHeap is set (else 0). It
	// includes the heap that was live before the run.
	PeakHeapBytes float64
	// Metrics holds the medians over the runs of the values the Run
	// reported with [ReportMetric], by name.
	Metrics map[string]float64
	// Ratios holds Median divided by the Median of each baseline of the
	// same group (the scenario's own line included when it is one): a
	// ratio above 1 is slower than the baseline.
	Ratios []Ratio
}

// Ratio is a result's speed relative to one baseline.
type Ratio struct {
	// Baseline is the baseline's Library + "/" + Name.
	Baseline string
	// Times is the result's median ns/item over the baseline's.
	Times float64
}

// Measure times every scenario opts.Count times and returns one result
// per scenario, in the order given, with the ratios to the baselines of
// each group filled in.
//
// The runs go in rounds: the first run of every scenario, then the
// second of every scenario, and so on (after opts.Warmup untimed rounds),
// one run at a time. On a machine whose load changes, every scenario
// then sees about the same conditions, which keeps the ratios honest.
// Prepare is called for every scenario before the first round.
//
// Each run is preceded by a runtime.GC, timed with time.Now, and
// bracketed by runtime.ReadMemStats calls (which stop the world for a few
// tens of microseconds, outside the timed section); a run should last at
// least a few milliseconds for the figures to mean something. Measure
// stops at the first error (from a Prepare, a Run or ctx) and returns it,
// wrapped with the scenario's ID, and no results. Two Measure calls at
// once disturb each other's figures.
func Measure(ctx context.Context, scenarios []Scenario, opts Options) ([]Result, error) {
	count := opts.Count
	if count <= 0 {
		count = 5
	}
	warmup := max(opts.Warmup, 0)
	type acc struct {
		allocs, bytes, heaps []float64
		metrics              map[string][]float64
	}
	results := make([]Result, len(scenarios))
	accs := make([]acc, len(scenarios))
	for i, s := range scenarios {
		if s.Run == nil {
			return nil, fmt.Errorf("sluice: bench: scenario %s has no Run", s.ID())
		}
		n := opts.Items
		if n <= 0 {
			n = s.Items
		}
		if n <= 0 {
			n = DefaultItems
		}
		results[i] = Result{Scenario: s, Items: n}
		accs[i].metrics = map[string][]float64{}
		if s.Prepare != nil {
			if err := s.Prepare(n); err != nil {
				return nil, fmt.Errorf("%s: prepare: %w", s.ID(), err)
			}
		}
	}
	total, done := len(scenarios)*(count+warmup), 0
	for round := range warmup + count {
		for i, s := range scenarios {
			if opts.Progress != nil {
				opts.Progress(done, total, s)
			}
			done++
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			m, err := runOnce(ctx, s, results[i].Items, opts.PeakHeap)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.ID(), err)
			}
			if round < warmup {
				continue
			}
			r, a := &results[i], &accs[i]
			r.NsPerItem = append(r.NsPerItem, m.ns)
			a.allocs = append(a.allocs, m.allocs)
			a.bytes = append(a.bytes, m.bytes)
			a.heaps = append(a.heaps, float64(m.peak))
			for k, v := range m.metrics {
				a.metrics[k] = append(a.metrics[k], v)
			}
		}
	}
	for i := range results {
		r, a := &results[i], &accs[i]
		r.Median, r.Min, r.Max = median(r.NsPerItem), slices.Min(r.NsPerItem), slices.Max(r.NsPerItem)
		r.AllocsPerItem, r.BytesPerItem, r.PeakHeapBytes = median(a.allocs), median(a.bytes), median(a.heaps)
		for k, vs := range a.metrics {
			if r.Metrics == nil {
				r.Metrics = map[string]float64{}
			}
			r.Metrics[k] = median(vs)
		}
	}
	if opts.Progress != nil {
		opts.Progress(done, total, Scenario{})
	}
	return finish(results), nil
}

// measurement is what runOnce found.
type measurement struct {
	ns, allocs, bytes float64
	peak              uint64
	metrics           map[string]float64
}

// runOnce times one run of s over n items.
func runOnce(ctx context.Context, s Scenario, n int, peakHeap bool) (measurement, error) {
	var before, after runtime.MemStats
	rep := &reporter{}
	ctx = context.WithValue(ctx, reporterKey{}, rep)
	runtime.GC()
	var stopHeap func() uint64
	if peakHeap {
		stopHeap = sampleHeap()
	}
	runtime.ReadMemStats(&before)
	start := time.Now()
	err := s.Run(ctx, n)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	var m measurement
	if stopHeap != nil {
		m.peak = stopHeap()
	}
	if err != nil {
		return m, err
	}
	fn := float64(n)
	m.ns = float64(elapsed.Nanoseconds()) / fn
	m.allocs = float64(after.Mallocs-before.Mallocs) / fn
	m.bytes = float64(after.TotalAlloc-before.TotalAlloc) / fn
	rep.mu.Lock()
	m.metrics = rep.m
	rep.mu.Unlock()
	return m, nil
}

type reporterKey struct{}

type reporter struct {
	mu sync.Mutex
	m  map[string]float64
}

// ReportMetric records value under name for the run that ctx belongs to
// (the ctx [Measure] passes to Scenario.Run); [Result].Metrics holds the
// median over the runs, and [Markdown] prints it. A later value for the
// same name replaces the earlier one. Outside a Measure run it does
// nothing. It is goroutine-safe and takes a mutex: call it once per run,
// not per item.
func ReportMetric(ctx context.Context, name string, value float64) {
	rep, ok := ctx.Value(reporterKey{}).(*reporter)
	if !ok {
		return
	}
	rep.mu.Lock()
	if rep.m == nil {
		rep.m = map[string]float64{}
	}
	rep.m[name] = value
	rep.mu.Unlock()
}

// sampleHeap samples the bytes of live (and not yet swept) heap objects
// every millisecond until the returned function is called, which returns
// the peak.
func sampleHeap() (stop func() uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	read := func() {
		metrics.Read(s)
		if s[0].Value.Kind() == metrics.KindUint64 {
			peak = max(peak, s[0].Value.Uint64())
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		read()
		return peak
	}
}

// finish fills in the ratios of results to the baselines of their group.
func finish(results []Result) []Result {
	for i := range results {
		r := &results[i]
		r.Ratios = r.Ratios[:0]
		for _, b := range results {
			if b.Scenario.Baseline && b.Scenario.Group == r.Scenario.Group && b.Median > 0 {
				r.Ratios = append(r.Ratios, Ratio{
					Baseline: b.Scenario.Library + "/" + b.Scenario.Name,
					Times:    r.Median / b.Median,
				})
			}
		}
	}
	return results
}

// median returns the median of xs (the mean of the two middle values for
// an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ErrWrongResult is the error scenarios return, wrapped with the details,
// when a run produced a wrong result.
var ErrWrongResult = errors.New("sluice: bench: wrong result")

// check returns nil if got == want, else an error that matches
// ErrWrongResult.
func check[T comparable](what string, got, want T) error {
	if got != want {
		return fmt.Errorf("%w: %s = %v, want %v", ErrWrongResult, what, got, want)
	}
	return nil
}
