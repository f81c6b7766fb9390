package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicego/sluice/internal/probe"
)

// ErrStalled is the cause of a pipeline ended by FailOnStall. The error
// is a *StallError; errors.Is(err, ErrStalled) reports it.
var ErrStalled = errors.New("sluice: pipeline stalled")

// StallKind says what the detector saw.
type StallKind uint8

const (
	// Stalled: the stage had items ready for downstream (buffered, or an
	// upstream that is not exhausted) and no outstanding downstream demand
	// for longer than the threshold, while its subscriber was not busy in
	// OnNext. Its subscriber received what it asked for and did not ask
	// for more.
	Stalled StallKind = iota + 1
	// NeverRequested: OnSubscribe was delivered to the stage's subscriber,
	// which sent no Request within the threshold.
	NeverRequested
)

// String returns "stalled" or "never requested".
func (k StallKind) String() string {
	switch k {
	case Stalled:
		return "stalled"
	case NeverRequested:
		return "never requested"
	}
	return "StallKind(" + fmt.Sprint(uint8(k)) + ")"
}

// Report describes one stall. The stage it names is the one whose
// subscriber stopped requesting: stages above it that ran out of demand
// only because it did are not reported.
type Report struct {
	Pipeline string
	Kind     StallKind
	Stage    StageInfo     // the stage's counters when the stall was reported
	Stages   int           // how many stages the pipeline has, for "position of"
	Duration time.Duration // how long demand has been missing, as observed
	At       time.Time     // when the report was made
}

// String is a one-line description naming the stage, its position, how
// long, and its counters.
func (r Report) String() string {
	s := r.Stage
	last := "never"
	if !s.LastRequest.IsZero() {
		last = r.At.Sub(s.LastRequest).Round(time.Millisecond).String() + " ago"
	}
	why := "its subscriber stopped requesting"
	if r.Kind == NeverRequested {
		why = "its subscriber never requested"
	}
	return fmt.Sprintf("sluice: pipeline %q: stage %q (%s, position %d of %d) %s for %v (%s): buffered %d, requested %d, delivered %d, last request %s",
		r.Pipeline, s.Name, s.Kind, s.Position, r.Stages, r.Kind, r.Duration.Round(time.Millisecond), why,
		s.Buffered, s.Requested, s.Delivered, last)
}

// StallError is the error a FailOnStall registry ends its pipeline with.
type StallError struct{ Report Report }

// Error returns the report's description.
func (e *StallError) Error() string { return e.Report.String() }

// Is reports whether target is ErrStalled.
func (e *StallError) Is(target error) bool { return target == ErrStalled }

// watch is the detector's memory of one stage between checks.
type watch struct {
	delivered int64
	lastNext  time.Time // when a change of the delivered count was seen
	zeroSince time.Time // when missing demand was first seen; zero if not
	reported  bool
}

// check runs one detection pass.
func (r *Registry) check(now time.Time) {
	r.wmu.Lock()
	reports := r.detect(now)
	r.wmu.Unlock()
	for _, rep := range reports {
		r.act(rep)
	}
}

// detect reads every stage once and returns the stalls to report.
func (r *Registry) detect(now time.Time) []Report {
	stages := r.reg.Stages()
	reads := make(map[*probe.Stage]probe.Counters, len(stages))
	for _, s := range stages {
		reads[s] = s.Read()
		s.Refresh()
	}
	var reports []Report
	var snap *Snapshot
	for _, s := range stages {
		c := reads[s]
		w := r.watches[s]
		if w == nil {
			w = &watch{}
			r.watches[s] = w
		}
		if c.Delivered != w.delivered {
			w.delivered, w.lastNext = c.Delivered, now
		}
		if c.State.Terminal() {
			delete(r.watches, s)
			continue
		}
		kind, since := condition(s, c, w, now)
		if kind == 0 {
			w.zeroSince, w.reported = time.Time{}, false
			continue
		}
		if w.zeroSince.IsZero() {
			w.zeroSince = since
		}
		if w.reported || now.Sub(w.zeroSince) < r.cfg.threshold || explained(s, reads) {
			continue
		}
		w.reported = true
		s.Stalled()
		if snap == nil {
			sn := r.snapshot(now, stages, reads, r.watches)
			snap = &sn
		}
		info := snap.stage(s.ID)
		info.Stalls++
		reports = append(reports, Report{
			Pipeline: r.pipeline, Kind: kind, Stage: info, Stages: len(snap.Stages),
			Duration: now.Sub(w.zeroSince), At: now,
		})
	}
	return reports
}

// condition returns the kind of stall the counters show, if any, and
// when it can be said to have started.
func condition(s *probe.Stage, c probe.Counters, w *watch, now time.Time) (StallKind, time.Time) {
	if s.Role == probe.Sink || s.Role == probe.Junction {
		return 0, time.Time{}
	}
	if c.State == probe.Subscribed {
		return NeverRequested, s.Since
	}
	if c.Outstanding != 0 || c.Busy {
		return 0, time.Time{}
	}
	ready := c.Buffered > 0 || (s.Role != probe.HotSource && !c.UpDone)
	if !ready {
		return 0, time.Time{}
	}
	if !c.IdleSince.IsZero() && !c.IdleSince.Before(c.LastRequest) {
		return Stalled, c.IdleSince
	}
	return Stalled, now
}

// explained reports whether the stage's missing demand is explained by its
// registered downstream stage being out of demand itself (or busy): then
// the culprit is further down, and this stage is only backpressured.
func explained(s *probe.Stage, reads map[*probe.Stage]probe.Counters) bool {
	d := s.Downstream
	switch {
	case d == nil || d.Role == probe.Sink:
		return false
	case d.Role == probe.Junction:
		return true // the fan-out's outputs are judged instead
	}
	c, ok := reads[d]
	if !ok {
		c = d.Read()
	}
	if c.State.Terminal() {
		return false
	}
	return c.State == probe.Subscribed || c.Outstanding == 0 || c.Busy
}

// act carries out the configured actions for one report.
func (r *Registry) act(rep Report) {
	if r.cfg.logger != nil {
		s := rep.Stage
		r.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "sluice: stage stalled",
			slog.String("pipeline", rep.Pipeline),
			slog.String("stage", s.Name),
			slog.String("kind", rep.Kind.String()),
			slog.Int("position", s.Position),
			slog.Int("stages", rep.Stages),
			slog.Duration("for", rep.Duration),
			slog.Int64("buffered", s.Buffered),
			slog.Int64("requested", s.Requested),
			slog.Int64("delivered", s.Delivered),
			slog.Time("last_request", s.LastRequest),
		)
	}
	if r.cfg.handler != nil {
		r.cfg.handler(rep)
	}
	if r.cfg.fail {
		r.mu.Lock()
		cancels := r.cancels
		r.mu.Unlock()
		err := &StallError{Report: rep}
		for _, c := range cancels {
			c.cancel(err)
		}
	}
}
