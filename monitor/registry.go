package monitor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/sluicego/sluice/internal/probe"
)

// Registry is the monitor of one pipeline: it holds the stages that
// registered through its context, takes snapshots of their counters, and
// runs the stall detector.
//
// A Registry is goroutine-safe. While any of its stages is live it runs
// one goroutine, which wakes every check interval, reads the counters
// (atomic loads, no locks shared with the item path), and exits when every
// registered stage has ended; a stage that registers later starts it
// again. Close stops it for good.
type Registry struct {
	pipeline string
	cfg      config
	reg      *probe.Registry

	mu      sync.Mutex
	running bool
	closed  bool
	wake    chan struct{}  // buffered 1: a stage ended, check now
	stop    chan struct{}  // closed by Close
	done    sync.WaitGroup // the checker goroutine
	cancels []cancelCtx    // FailOnStall: the contexts handed out, to cancel on a stall

	gmu    sync.Mutex
	gauges []gauge // values published beside the stages, see Gauge

	wmu     sync.Mutex              // held by a check and by Snapshot
	watches map[*probe.Stage]*watch // the detector's memory
}

type cancelCtx struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

type config struct {
	threshold time.Duration
	interval  time.Duration
	logger    *slog.Logger
	noLog     bool
	handler   func(Report)
	fail      bool
}

// Option configures a Registry.
type Option func(*config)

// StallThreshold sets how long a stage may hold items ready with no
// downstream demand (or go without a first Request) before it is
// reported. The default is 10 seconds. d <= 0 panics.
func StallThreshold(d time.Duration) Option {
	if d <= 0 {
		panic("sluice: monitor.StallThreshold: d <= 0")
	}
	return func(c *config) { c.threshold = d }
}

// CheckInterval sets how often the detector reads the counters. The
// default is a fifth of the stall threshold. A stall is reported between
// threshold and threshold + interval after demand ran out. d <= 0 panics.
func CheckInterval(d time.Duration) Option {
	if d <= 0 {
		panic("sluice: monitor.CheckInterval: d <= 0")
	}
	return func(c *config) { c.interval = d }
}

// Logger sets the slog.Logger that stall reports are written to, at level
// Warn. The default is slog.Default(). A nil logger turns logging off.
func Logger(l *slog.Logger) Option {
	return func(c *config) { c.logger, c.noLog = l, l == nil }
}

// OnStall sets a handler called with every stall report, on the
// registry's goroutine; it must not block for long. A nil handler panics.
func OnStall(h func(Report)) Option {
	if h == nil {
		panic("sluice: monitor.OnStall: nil handler")
	}
	return func(c *config) { c.handler = h }
}

// FailOnStall makes a stall end the pipeline: every context returned by
// Registry.Context is cancelled with a *StallError as its cause, which
// matches ErrStalled with errors.Is. The sinks of sluice return
// context.Cause, so the sink's call returns that error.
func FailOnStall() Option { return func(c *config) { c.fail = true } }

// New returns the registry of the pipeline named pipeline, which labels
// its metrics. An empty name panics.
//
// A registry keeps the stages of ended subscriptions, so that a snapshot
// taken after a run shows it, until it holds 4096 stages; then, as more
// register, the ended ones are forgotten first. One registry can thus
// watch a service's pipelines one after another for as long as it runs.
func New(pipeline string, opts ...Option) *Registry {
	if pipeline == "" {
		panic("sluice: monitor.New: empty pipeline name")
	}
	r := &Registry{
		pipeline: pipeline,
		cfg:      config{threshold: 10 * time.Second},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		watches:  map[*probe.Stage]*watch{},
	}
	for _, o := range opts {
		if o == nil {
			panic("sluice: monitor.New: nil Option")
		}
		o(&r.cfg)
	}
	if r.cfg.interval == 0 {
		r.cfg.interval = r.cfg.threshold / 5
	}
	if r.cfg.logger == nil && !r.cfg.noLog {
		r.cfg.logger = slog.Default()
	}
	r.reg = probe.NewRegistry(r.attached, r.ended)
	return r
}

// Pipeline returns the pipeline's name.
func (r *Registry) Pipeline() string { return r.pipeline }

// Context returns a context derived from ctx that carries the registry.
// Give it to the pipeline's sink: every sluice stage finds the registry
// through the Context method of the subscriber that subscribes to it
// (sinks expose the context they were given, and each stage exposes the
// same context to the stage above it), registers itself, and links to
// the stage below it. A hand-written Subscriber takes part by
// implementing interface{ Context() context.Context }.
//
// With FailOnStall the returned context is cancelled when a stall is
// reported.
func (r *Registry) Context(ctx context.Context) context.Context {
	ctx = probe.WithRegistry(ctx, r.reg)
	if !r.cfg.fail {
		return ctx
	}
	ctx, cancel := context.WithCancelCause(ctx)
	r.mu.Lock()
	live := r.cancels[:0]
	for _, c := range r.cancels { // forget the contexts that have ended
		if c.ctx.Err() == nil {
			live = append(live, c)
		}
	}
	r.cancels = append(live, cancelCtx{ctx, cancel})
	r.mu.Unlock()
	return ctx
}

// Close stops the checker goroutine and waits for it. Stages keep their
// counters and Snapshot still works. Close is idempotent.
func (r *Registry) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	r.mu.Unlock()
	r.done.Wait()
}

// attached runs after every registration: it starts the checker.
func (r *Registry) attached() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running || r.closed {
		return
	}
	r.running = true
	r.done.Add(1)
	go r.run()
}

// ended runs when a stage ends: the checker looks at once whether the
// pipeline is over.
func (r *Registry) ended() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Registry) run() {
	defer r.done.Done()
	t := time.NewTicker(r.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.check(time.Now())
		case <-r.wake:
		}
		if r.exitIfOver() {
			return
		}
	}
}

// exitIfOver stops the checker when every stage has ended. The decision is
// taken under mu, so a stage that registers concurrently either is seen
// here or starts a new checker in attached.
func (r *Registry) exitIfOver() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.reg.Stages() {
		if !s.Read().State.Terminal() {
			return false
		}
	}
	r.running = false
	return true
}

type gauge struct {
	name, help string
	read       func() float64
}

// Gauge publishes read() as the Prometheus gauge sluice_gauge{pipeline,
// name} at every scrape, and in Snapshot().Gauges: for values that are
// not stage counters, such as a circuit breaker's state or an adaptive
// concurrency limit:
//
//	reg.Gauge("inventory_breaker_state", "0 closed, 1 open, 2 half-open",
//		func() float64 { return float64(cb.State()) })
//	reg.Gauge("inventory_limit", "calls allowed in flight",
//		func() float64 { return float64(lim.Limit()) })
//
// read is called on the scraping or snapshotting goroutine and must be
// goroutine-safe and quick. An empty name or a nil read panics; a name
// given twice panics.
func (r *Registry) Gauge(name, help string, read func() float64) {
	if name == "" || read == nil {
		panic("sluice: monitor.Gauge: empty name or nil read")
	}
	r.gmu.Lock()
	defer r.gmu.Unlock()
	for _, g := range r.gauges {
		if g.name == name {
			panic("sluice: monitor.Gauge: " + name + " registered twice")
		}
	}
	r.gauges = append(r.gauges, gauge{name, help, read})
}

// gaugeValues reads every gauge.
func (r *Registry) gaugeValues() []GaugeValue {
	r.gmu.Lock()
	gs := append([]gauge(nil), r.gauges...)
	r.gmu.Unlock()
	out := make([]GaugeValue, len(gs))
	for i, g := range gs {
		out[i] = GaugeValue{Name: g.name, Help: g.help, Value: g.read()}
	}
	return out
}

// GaugeValue is one gauge's value in a snapshot (see Registry.Gauge).
type GaugeValue struct {
	Name, Help string
	Value      float64
}
