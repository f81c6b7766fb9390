// Package probe holds the counters that sluice stages keep for the
// monitor package, and the context plumbing by which a stage finds the
// registry of its pipeline.
//
// A stage calls Attach when a subscriber subscribes to it. If that
// subscriber carries a context (it implements interface{ Context()
// context.Context }) with a registry in it, Attach registers a *Stage for
// this subscription and returns it, linked to the downstream stage that
// put itself in the context; otherwise it returns nil, and every *Stage
// method is a no-op on nil, so a pipeline without a registry pays one nil
// check per signal.
//
// # Cost on the item path
//
// The delivered count is written by one goroutine at a time (OnNext is
// serial, rule 1.3), so it is kept in a plain field and published to the
// atomic that readers see only when it must be exact: when it reaches the
// requested count (demand exhausted, which the stall detector reads), at
// the end of the stream, and when a reader asked for fresh figures (the
// registry lowers the publication threshold on every check). Next costs
// an increment, one atomic load (a plain load on amd64 and arm64) and a
// predictable branch. Request, drops and state changes are control
// signals and use atomics directly.
package probe

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// State is the life-cycle state of one stage's subscription.
type State int32

// The states, in the order a stage moves through them.
const (
	Subscribed State = iota + 1 // OnSubscribe was delivered, no Request yet
	Active                      // at least one Request arrived
	Completed                   // OnComplete was delivered
	Failed                      // OnError was delivered
	Cancelled                   // downstream cancelled
)

// String returns the state's lower-case name, used as a metric label.
func (s State) String() string {
	switch s {
	case Subscribed:
		return "subscribed"
	case Active:
		return "active"
	case Completed:
		return "completed"
	case Failed:
		return "failed"
	case Cancelled:
		return "cancelled"
	}
	return "unknown"
}

// Terminal reports whether s is Completed, Failed or Cancelled.
func (s State) Terminal() bool { return s >= Completed }

// Role says how the stall detector reads a stage.
type Role uint8

const (
	// Operator stages sit between an upstream and a downstream.
	Operator Role = iota
	// Source stages have no upstream; a cold source that has not completed
	// always has items ready.
	Source
	// HotSource stages (emitters) have items ready only when they hold
	// some in their buffer.
	HotSource
	// Sink stages end a pipeline: they request for themselves, so they
	// are never stalled, and they explain no stall upstream of them.
	Sink
	// Junction stages are the shared upstream side of a fan-out: they
	// deliver to several stages (registered under them with AttachUnder),
	// are never stalled themselves, and a stage that delivers to one is
	// never the culprit: the fan-out's own outputs are judged instead.
	Junction
)

// NumReasons bounds flow.DropReason values; index 0 is unused.
const NumReasons = int(flow.ReasonError) + 1

// LatencyBuckets are the upper bounds, in seconds, of the latency
// histogram that async stages fill.
var LatencyBuckets = [NumBuckets - 1]float64{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1, 10}

// NumBuckets is the number of latency buckets, the last one unbounded.
const NumBuckets = 9

// Stage holds the counters of one stage's subscription. Its methods are
// safe on a nil *Stage (they do nothing) and, unless documented
// otherwise, from any goroutine.
type Stage struct {
	// Immutable after Attach.
	Name       string
	Kind       string
	Role       Role
	ID         int
	Downstream *Stage // the stage this one delivers to, nil if unregistered
	Upstream   *Stage // set only by Child: the stage that feeds this one
	Since      time.Time
	reg        *Registry

	requested   atomic.Int64 // cumulative, saturating at flow.Unbounded
	delivered   atomic.Int64 // published copy of n
	publishAt   atomic.Int64 // publish when n reaches it
	errors      atomic.Int64
	stalls      atomic.Int64
	redelivered atomic.Int64
	state       atomic.Int32
	busy        atomic.Bool  // delivering the item that used the last demand
	upDone      atomic.Bool  // upstream has completed (nothing more will come)
	lastRequest atomic.Int64 // unix nanoseconds, 0 = never
	idleSince   atomic.Int64 // unix nanoseconds: the OnNext that used the last demand returned
	dropped     [NumReasons]atomic.Int64
	latency     [NumBuckets]atomic.Int64
	latencySum  atomic.Int64 // nanoseconds

	length func() int // reports Buffered when set; read by readers only

	// Owned by the goroutine that delivers items (serial by rule 1.3).
	n         int64
	watchBusy bool
}

// Request records a downstream Request(n). Non-positive n is not counted.
func (s *Stage) Request(n int64) {
	if s == nil || n <= 0 {
		return
	}
	for {
		old := s.requested.Load()
		if old == flow.Unbounded || s.requested.CompareAndSwap(old, flow.AddCap(old, n)) {
			break
		}
	}
	s.lastRequest.Store(time.Now().UnixNano())
	s.state.CompareAndSwap(int32(Subscribed), int32(Active))
}

// Next counts one item that the stage is about to deliver. The caller
// must call Returned after the downstream OnNext returns. Next and
// Returned must be called by the delivering goroutine only.
func (s *Stage) Next() {
	s.n++
	if s.n >= s.publishAt.Load() {
		s.publish()
	}
}

// NextN counts a run of k items that the stage is about to deliver in
// one call (see stage.BatchSubscriber), as k calls of Next would. The
// caller must call Returned after the call returns.
func (s *Stage) NextN(k int64) {
	s.n += k
	if s.n >= s.publishAt.Load() {
		s.publish()
	}
}

// Returned marks the end of the OnNext call that Next announced. After
// the item that used the last outstanding demand it records the time, so
// the stall detector knows exactly when demand ran out; that costs a
// clock read per exhaustion of demand, never per item otherwise.
func (s *Stage) Returned() {
	if s.watchBusy {
		s.watchBusy = false
		s.idleSince.Store(time.Now().UnixNano())
		s.busy.Store(false)
	}
}

// publish makes n visible and sets the next threshold: the requested
// count (so that demand exhaustion is always published exactly) or 1024
// items on, whichever comes first.
func (s *Stage) publish() {
	s.delivered.Store(s.n)
	req := s.requested.Load()
	if s.n >= req {
		s.busy.Store(true)
		s.watchBusy = true
	}
	next := s.n + 1024
	switch {
	case s.Role == Sink:
		next = s.n + 1 // a sink's count is the one users read: always exact
	case req > s.n && req < next:
		next = req
	}
	s.publishAt.Store(next)
}

// Set sets the delivered count to n and publishes it. Only the
// delivering goroutine may call it (a fused run's source does, for every
// stage of the run).
func (s *Stage) Set(n int64) {
	s.n = n
	s.delivered.Store(n)
	s.publishAt.Store(1<<63 - 1)
}

// Refreshed reports whether a reader asked for fresh figures since the
// last Set (see Refresh).
func (s *Stage) Refreshed() bool { return s.publishAt.Load() == 0 }

// Flush publishes the delivered count. Only the delivering goroutine may
// call it: stages with a drain loop call it at the end of each pass, so
// their counts are exact whenever they rest.
func (s *Stage) Flush() {
	if s != nil {
		s.delivered.Store(s.n)
	}
}

// Refresh asks the delivering goroutine to publish its count on its next
// item. Readers call it; it is safe from any goroutine.
func (s *Stage) Refresh() { s.publishAt.Store(0) }

// SetLen makes readers take Buffered from length, a goroutine-safe
// function (such as a ring's Len); the item path
// then pays nothing for it. Call it before the stage is read, right after
// Attach.
func (s *Stage) SetLen(length func() int) {
	if s != nil {
		s.length = length
	}
}

// Drop counts one dropped item.
func (s *Stage) Drop(r flow.DropReason) {
	if s != nil && int(r) < NumReasons {
		s.dropped[r].Add(1)
	}
}

// UpstreamDone records that the stage's upstream has completed, so it
// has items ready only while it holds some.
func (s *Stage) UpstreamDone() {
	if s != nil {
		s.upDone.Store(true)
	}
}

// End records the terminal state of the subscription. For Completed and
// Failed it must be called by the delivering goroutine, which publishes
// the exact delivered count; Failed also counts an error.
func (s *Stage) End(st State) {
	if s == nil {
		return
	}
	if st != Cancelled {
		s.delivered.Store(s.n)
	}
	if st == Failed {
		s.errors.Add(1)
	}
	for {
		old := State(s.state.Load())
		if old.Terminal() {
			return
		}
		if s.state.CompareAndSwap(int32(old), int32(st)) {
			if s.reg != nil && s.reg.onEnd != nil {
				s.reg.onEnd()
			}
			return
		}
	}
}

// ObserveLatency adds one observation to the stage's latency histogram.
func (s *Stage) ObserveLatency(d time.Duration) {
	if s == nil {
		return
	}
	sec := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && sec > LatencyBuckets[i] {
		i++
	}
	s.latency[i].Add(1)
	s.latencySum.Add(int64(d))
}

// Redelivered counts one item that a durable source received again after
// an earlier delivery was not acknowledged (JetStream's NumDelivered > 1).
func (s *Stage) Redelivered() {
	if s != nil {
		s.redelivered.Add(1)
	}
}

// Stalled counts one stall report against the stage.
func (s *Stage) Stalled() { s.stalls.Add(1) }

// Counters is a consistent-enough copy of a stage's counters: each field
// is read atomically, the set is not read under a lock.
type Counters struct {
	State       State
	Requested   int64
	Delivered   int64
	Outstanding int64 // Requested - Delivered, or flow.Unbounded
	Buffered    int64
	Errors      int64
	Stalls      int64
	Redelivered int64
	Busy        bool
	UpDone      bool
	LastRequest time.Time // zero if no Request came
	IdleSince   time.Time // when the OnNext that used the last demand returned; zero if never
	Dropped     [NumReasons]int64
	Latency     [NumBuckets]int64
	LatencySum  time.Duration
}

// Read returns the stage's counters; on a nil Stage, zero counters.
func (s *Stage) Read() Counters {
	if s == nil {
		return Counters{}
	}
	c := Counters{
		State:       State(s.state.Load()),
		Requested:   s.requested.Load(),
		Delivered:   s.delivered.Load(),
		Errors:      s.errors.Load(),
		Stalls:      s.stalls.Load(),
		Redelivered: s.redelivered.Load(),
		Busy:        s.busy.Load(),
		UpDone:      s.upDone.Load(),
		LatencySum:  time.Duration(s.latencySum.Load()),
	}
	if s.length != nil {
		c.Buffered = int64(s.length())
	}
	if ns := s.lastRequest.Load(); ns != 0 {
		c.LastRequest = time.Unix(0, ns)
	}
	if ns := s.idleSince.Load(); ns != 0 {
		c.IdleSince = time.Unix(0, ns)
	}
	for i := range c.Dropped {
		c.Dropped[i] = s.dropped[i].Load()
	}
	for i := range c.Latency {
		c.Latency[i] = s.latency[i].Load()
	}
	switch {
	case c.Requested == flow.Unbounded:
		c.Outstanding = flow.Unbounded
	case c.Requested > c.Delivered:
		c.Outstanding = c.Requested - c.Delivered
	}
	return c
}

// Registry is the set of stages of one pipeline. The monitor package
// wraps it; stages reach it through a context.
type Registry struct {
	mu       sync.Mutex
	stages   []*Stage
	lastID   int
	onAttach func() // called without mu after every registration
	onEnd    func() // called when a stage reaches a terminal state
}

// NewRegistry returns an empty registry. onAttach, if not nil, runs after
// every registration (the monitor starts its checker there); onEnd, if not
// nil, runs when a stage reaches a terminal state (the monitor stops its
// checker once every stage has).
func NewRegistry(onAttach, onEnd func()) *Registry {
	return &Registry{onAttach: onAttach, onEnd: onEnd}
}

// Stages returns the registered stages in registration order.
func (r *Registry) Stages() []*Stage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Stage(nil), r.stages...)
}

// MaxStages bounds what a registry remembers: when it holds that many
// stages, registering another first forgets the stages that have ended,
// so that a long-lived registry watching one short pipeline after another
// does not grow without bound. Live stages are never forgotten.
const MaxStages = 4096

func (r *Registry) add(s *Stage) {
	s.reg = r
	r.mu.Lock()
	if len(r.stages) >= MaxStages {
		live := r.stages[:0]
		for _, st := range r.stages {
			if !State(st.state.Load()).Terminal() {
				live = append(live, st)
			}
		}
		clear(r.stages[len(live):])
		r.stages = live
	}
	r.lastID++
	s.ID = r.lastID
	r.stages = append(r.stages, s)
	r.mu.Unlock()
	if r.onAttach != nil {
		r.onAttach()
	}
}

type registryKey struct{}
type stageKey struct{}

// WithRegistry returns a context that carries r.
func WithRegistry(ctx context.Context, r *Registry) context.Context {
	return context.WithValue(ctx, registryKey{}, r)
}

// FromContext returns the registry in ctx, or nil.
func FromContext(ctx context.Context) *Registry {
	if ctx == nil {
		return nil
	}
	r, _ := ctx.Value(registryKey{}).(*Registry)
	return r
}

type contexter interface{ Context() context.Context }

// ContextOf returns the context that down carries, or
// context.Background() when it carries none.
func ContextOf(down any) context.Context {
	if c, ok := down.(contexter); ok {
		if ctx := c.Context(); ctx != nil {
			return ctx
		}
	}
	return context.Background()
}

// Attach registers a stage of the given kind and name (derived as kind#N
// when empty) for a subscription
// whose downstream subscriber is down, if down's context carries a
// registry. It returns the stage (nil without a registry) and the context
// that the stage must expose upstream through its own subscriber's
// Context method, so that the stages above it register too and link to
// it. It is called once per subscription.
func Attach(down any, kind, name string, role Role) (*Stage, context.Context) {
	return AttachContext(ContextOf(down), kind, name, role)
}

// AttachContext is Attach for a downstream whose context is ctx.
func AttachContext(ctx context.Context, kind, name string, role Role) (*Stage, context.Context) {
	return attach(ctx, nil, kind, name, role)
}

func attach(ctx context.Context, up *Stage, kind, name string, role Role) (*Stage, context.Context) {
	r := FromContext(ctx)
	if r == nil {
		return nil, ctx
	}
	if name == "" {
		name = stage.DeriveName(kind)
	}
	s := &Stage{Name: name, Kind: kind, Role: role, Since: time.Now(), Upstream: up}
	s.Downstream, _ = ctx.Value(stageKey{}).(*Stage)
	s.state.Store(int32(Subscribed))
	r.add(s)
	return s, context.WithValue(ctx, stageKey{}, s)
}

// AttachUnder is Attach for one output of a fan-out: the stage delivers
// to down and is fed by up, a Junction registered by the fan-out (nil:
// no upstream link).
func AttachUnder(down any, up *Stage, kind, name string, role Role) (*Stage, context.Context) {
	return attach(ContextOf(down), up, kind, name, role)
}

// Child registers a stage that has no subscriber of its own yet (a
// GroupBy group nobody has subscribed to), delivering to nothing, under
// the stage parent. It returns nil when parent is nil.
func Child(ctx context.Context, parent *Stage, kind, name string) *Stage {
	r := FromContext(ctx)
	if r == nil || parent == nil {
		return nil
	}
	s := &Stage{Name: name, Kind: kind, Role: Operator, Since: time.Now()}
	s.Upstream = parent
	s.state.Store(int32(Subscribed))
	r.add(s)
	return s
}
