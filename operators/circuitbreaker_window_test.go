package operators_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicego/sluice/operators"
)

// This file tests the time-based window of CircuitBreaker
// (BreakerConfig.WindowDuration) and slow calls (SlowCallDuration). The
// harness is circuitbreaker_test.go's.

// step is one move of a breaker script: wait, then make the calls.
type step struct {
	wait  time.Duration
	calls []bool // true: a call that fails
}

// timedStep is a step whose calls take time.
type timedStep struct {
	wait  time.Duration
	calls []timedCall
}

// timedCall is a call that takes took, then fails if fail is set.
type timedCall struct {
	fail bool
	took time.Duration
}

// runSteps runs the steps on a fresh breaker under synctest and returns
// the outcome of every call, and the transitions with their times.
func runSteps(t *testing.T, cfg operators.BreakerConfig, steps []step) (outcomes, events []string) {
	t.Helper()
	var ts []timedStep
	for _, s := range steps {
		var calls []timedCall
		for _, f := range s.calls {
			calls = append(calls, timedCall{fail: f})
		}
		ts = append(ts, timedStep{s.wait, calls})
	}
	return runTimedSteps(t, cfg, ts)
}

// runTimedSteps is runSteps with calls that take time.
func runTimedSteps(t *testing.T, cfg operators.BreakerConfig, steps []timedStep) (outcomes, events []string) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		h := newCBHarness(cfg)
		for _, s := range steps {
			time.Sleep(s.wait)
			for _, c := range s.calls {
				outcomes = append(outcomes, h.callFor(c.fail, c.took))
			}
		}
		events = h.events
	})
	return outcomes, events
}

// callFor is h.call with a call that takes d before it returns.
func (h *cbHarness) callFor(fail bool, d time.Duration) string {
	err := h.cb.Do(context.Background(), func(context.Context) error {
		time.Sleep(d)
		if fail {
			return errBoom
		}
		return nil
	})
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, operators.ErrCircuitOpen):
		return "rejected"
	}
	return "fail"
}

const ok, fail = false, true

func TestCircuitBreakerTimeWindowEdges(t *testing.T) {
	// A 10s window of ten 1s buckets: bucket k holds the calls that
	// complete in [k s, (k+1) s) and is forgotten at (k+10) s.
	cfg := operators.BreakerConfig{
		WindowDuration: 10 * time.Second, WindowBuckets: 10, MinCalls: 4, FailureRate: 0.5, CoolDown: time.Minute,
	}
	tests := []struct {
		name     string
		minCalls int // if set, replaces cfg.MinCalls
		steps    []step
		events   []string
	}{{
		name:   "a rate reached inside the window opens it",
		steps:  []step{{0, []bool{fail, ok, ok}}, {10*time.Second - 1, []bool{fail}}},
		events: []string{"closed->open@9.999999999s"},
	}, {
		name:  "the first bucket is forgotten exactly at its boundary",
		steps: []step{{0, []bool{fail, ok, ok}}, {10 * time.Second, []bool{fail}}},
	}, {
		name: "a call late in its bucket is forgotten with it",
		steps: []step{{0, []bool{ok}}, {999 * ms, []bool{fail, ok, ok}},
			{9*time.Second + ms, []bool{fail}}},
	}, {
		name: "the next bucket still counts until its own boundary",
		steps: []step{{time.Second, []bool{fail, ok, ok}},
			{10*time.Second - 1, []bool{fail}}},
		events: []string{"closed->open@10.999999999s"},
	}, {
		name: "and is forgotten at it",
		steps: []step{{time.Second, []bool{fail, ok, ok}},
			{10 * time.Second, []bool{fail}}},
	}, {
		name:   "failures close together open it",
		steps:  []step{{0, []bool{ok, fail}}, {9 * time.Second, []bool{ok, fail}}},
		events: []string{"closed->open@9s"},
	}, {
		name: "the same failures spread out do not",
		steps: []step{{0, []bool{ok, fail}}, {10 * time.Second, []bool{ok, fail}},
			{10 * time.Second, []bool{ok, fail}}},
	}, {
		name: "buckets partly expired: the window slides one bucket at a time",
		// 0s: f; 4s: o o; 9s: o o; 10s: o, and the failure is gone. At
		// 13.5s: f f f make 3 of 8; at 14s the 4s successes expire and
		// the next failure makes 4 of 7.
		steps: []step{{0, []bool{fail}}, {4 * time.Second, []bool{ok, ok}},
			{5 * time.Second, []bool{ok, ok}}, {time.Second, []bool{ok}},
			{3500 * ms, []bool{fail, fail, fail}}, {500 * ms, []bool{fail}}},
		events: []string{"closed->open@14s"},
	}, {
		name:   "a success that brings the window to MinCalls opens it",
		steps:  []step{{0, []bool{fail, fail, fail}}, {9 * time.Second, []bool{ok}}},
		events: []string{"closed->open@9s"},
	}, {
		name: "a success after older successes expired opens it",
		// At 9s, f f over o o o o o is 2 of 7; at 10s the successes are
		// gone and one more makes 2 of 3.
		minCalls: 3,
		steps: []step{{0, []bool{ok, ok, ok, ok, ok}}, {9 * time.Second, []bool{fail, fail}},
			{time.Second, []bool{ok}}},
		events: []string{"closed->open@10s"},
	}, {
		name: "a long quiet spell forgets everything",
		steps: []step{{0, []bool{fail, fail, fail}}, {1000 * time.Hour, []bool{fail}},
			{0, []bool{ok, ok}}, {0, []bool{fail}}},
		events: []string{"closed->open@1000h0m0s"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			if tt.minCalls != 0 {
				c.MinCalls = tt.minCalls
			}
			outcomes, events := runSteps(t, c, tt.steps)
			// Every call is made: the breaker opens at the last one at the
			// earliest.
			var want []string
			for _, s := range tt.steps {
				for _, f := range s.calls {
					want = append(want, map[bool]string{ok: "ok", fail: "fail"}[f])
				}
			}
			checkBreakerRun(t, want, outcomes, tt.events, events)
		})
	}
}

func TestCircuitBreakerTimeWindowMinCalls(t *testing.T) {
	// MinCalls counts the calls inside the window: the failure at 0s has
	// expired when the third one comes, so it takes a fourth.
	outcomes, events := runSteps(t, operators.BreakerConfig{
		WindowDuration: 10 * time.Second, WindowBuckets: 10, MinCalls: 3, CoolDown: time.Minute,
	}, []step{
		{0, []bool{fail}}, {5 * time.Second, []bool{fail}}, {5 * time.Second, []bool{fail}},
		{time.Second, []bool{fail}}, {0, []bool{ok}},
	})
	want := []string{"fail", "fail", "fail", "fail", "rejected"}
	checkBreakerRun(t, want, outcomes, []string{"closed->open@11s"}, events)
}

func TestCircuitBreakerTimeWindowTransitions(t *testing.T) {
	// Half-open and closing work as with a count-based window, and
	// closing empties the window, failures still within WindowDuration
	// included.
	outcomes, events := runSteps(t, operators.BreakerConfig{
		Name: "cb", WindowDuration: time.Minute, MinCalls: 2, CoolDown: time.Second, HalfOpenProbes: 2,
	}, []step{
		{0, []bool{fail, ok}},           // 1 of 2: 50 % opens at the success
		{0, []bool{ok}},                 // rejected
		{999 * ms, []bool{ok}},          // still open
		{ms, []bool{ok, fail}},          // half-open: a probe fails
		{0, []bool{ok}},                 // open again
		{time.Second, []bool{ok}},       // half-open: one probe succeeds
		{0, []bool{ok}},                 // the second: closed
		{0, []bool{fail}},               // the window restarted: 1 call < MinCalls
		{5 * time.Second, []bool{fail}}, // 2 of 2: open
	})
	want := []string{"fail", "ok", "rejected", "rejected", "ok", "fail", "rejected", "ok", "ok", "fail", "fail"}
	wantEvents := []string{
		"closed->open@0s", "open->half-open@1s", "half-open->open@1s",
		"open->half-open@2s", "half-open->closed@2s", "closed->open@7s",
	}
	checkBreakerRun(t, want, outcomes, wantEvents, events)
}

// breakerModel is a naive reference for a breaker with one probe and
// either window, with or without slow calls: it keeps every call since
// the last transition and finds the window's calls among them at each
// call. Calls are made one at a time.
type breakerModel struct {
	cfg      operators.BreakerConfig
	now      time.Duration
	state    operators.BreakerState
	openedAt time.Duration
	calls    []modelCall
	events   []string
}

type modelCall struct {
	bucket       int64
	failed, slow bool
}

func (m *breakerModel) to(s operators.BreakerState) {
	m.events = append(m.events, fmt.Sprintf("%v->%v@%v", m.state, s, m.now))
	m.state = s
	m.openedAt = m.now
	m.calls = m.calls[:0]
}

func (m *breakerModel) call(c timedCall) string {
	if m.state == operators.BreakerOpen && m.now-m.openedAt >= m.cfg.CoolDown {
		m.to(operators.BreakerHalfOpen)
	}
	if m.state == operators.BreakerOpen {
		return "rejected" // at once
	}
	m.now += c.took
	outcome := map[bool]string{false: "ok", true: "fail"}[c.fail]
	slow := m.cfg.SlowCallDuration != 0 && c.took > m.cfg.SlowCallDuration
	if m.state == operators.BreakerHalfOpen {
		if c.fail || slow {
			m.to(operators.BreakerOpen)
		} else {
			m.to(operators.BreakerClosed)
		}
		return outcome
	}
	var bucket int64
	if m.cfg.WindowDuration != 0 {
		bucket = int64(m.now / (m.cfg.WindowDuration / time.Duration(m.cfg.WindowBuckets)))
	}
	m.calls = append(m.calls, modelCall{bucket, c.fail, slow})
	var window []modelCall
	if m.cfg.WindowDuration != 0 {
		for _, c := range m.calls {
			if c.bucket > bucket-int64(m.cfg.WindowBuckets) {
				window = append(window, c)
			}
		}
	} else {
		window = m.calls[max(0, len(m.calls)-m.cfg.Window):]
		if !c.fail && !slow {
			return outcome // a count-based window judges at a failure or a slow call
		}
	}
	failures, slows := 0, 0
	for _, c := range window {
		if c.failed {
			failures++
		}
		if c.slow {
			slows++
		}
	}
	n := float64(len(window))
	if len(window) >= m.cfg.MinCalls && (float64(failures) >= m.cfg.FailureRate*n ||
		m.cfg.SlowCallDuration != 0 && float64(slows) >= m.cfg.SlowCallRate*n) {
		m.to(operators.BreakerOpen)
	}
	return outcome
}

func TestCircuitBreakerModel(t *testing.T) {
	// Random scripts against the naive model: gaps around the bucket
	// width and the window, bursts, long silences, calls around the slow
	// threshold.
	const slow = 300 * ms
	tests := []struct {
		name string
		cfg  operators.BreakerConfig
	}{
		{"time-based", operators.BreakerConfig{
			WindowDuration: 4 * time.Second, WindowBuckets: 4, MinCalls: 3, FailureRate: 0.6, CoolDown: 1500 * ms,
		}},
		{"time-based with slow calls", operators.BreakerConfig{
			WindowDuration: 4 * time.Second, WindowBuckets: 4, MinCalls: 3, FailureRate: 0.9, CoolDown: 1500 * ms,
			SlowCallDuration: slow, SlowCallRate: 0.5,
		}},
		{"count-based", operators.BreakerConfig{
			Window: 5, MinCalls: 3, FailureRate: 0.6, CoolDown: 1500 * ms,
		}},
		{"count-based with slow calls", operators.BreakerConfig{
			Window: 5, MinCalls: 3, FailureRate: 0.9, CoolDown: 1500 * ms, SlowCallDuration: slow, SlowCallRate: 0.5,
		}},
	}
	gaps := []time.Duration{0, 0, 0, 1, 100 * ms, 999 * ms, time.Second, 1001 * ms, 2500 * ms, 3 * time.Second,
		4*time.Second - 1, 4 * time.Second, 7 * time.Second, time.Hour}
	took := []time.Duration{0, 0, 0, slow, slow + 1, 2 * slow}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(50) {
				r := rand.New(rand.NewPCG(seed, 1))
				var steps []timedStep
				for range 200 {
					s := timedStep{wait: gaps[r.IntN(len(gaps))]}
					for range 1 + r.IntN(3) {
						c := timedCall{fail: r.IntN(2) == 0}
						if tt.cfg.SlowCallDuration != 0 {
							c.took = took[r.IntN(len(took))]
						}
						s.calls = append(s.calls, c)
					}
					steps = append(steps, s)
				}
				m := &breakerModel{cfg: tt.cfg}
				if m.cfg.WindowDuration != 0 && m.cfg.WindowBuckets == 0 {
					m.cfg.WindowBuckets = 10
				}
				var want []string
				for _, s := range steps {
					m.now += s.wait
					for _, c := range s.calls {
						want = append(want, m.call(c))
					}
				}
				outcomes, events := runTimedSteps(t, tt.cfg, steps)
				if diff := cmp.Diff(want, outcomes); diff != "" {
					t.Fatalf("seed %d: outcomes (-model +breaker)\n%s", seed, diff)
				}
				if diff := cmp.Diff(m.events, events); diff != "" {
					t.Fatalf("seed %d: transitions (-model +breaker)\n%s", seed, diff)
				}
				if len(m.events) < 10 {
					t.Fatalf("seed %d: only %d transitions: the script does not exercise the breaker", seed, len(m.events))
				}
			}
		})
	}
}

func TestCircuitBreakerSlowCalls(t *testing.T) {
	// A count-based window of 4 that opens at 2 slow calls in 4; failures
	// alone would need 4 in 4. A call of exactly SlowCallDuration is not
	// slow; a slow probe reopens the breaker.
	outcomes, events := runTimedSteps(t, operators.BreakerConfig{
		Window: 4, MinCalls: 4, FailureRate: 1, SlowCallDuration: 100 * ms, SlowCallRate: 0.5,
		CoolDown: time.Second,
	}, []timedStep{
		{0, []timedCall{{ok, 100 * ms}, {fail, 0}, {ok, 100*ms + 1}, {fail, 0}}},  // 1 slow of 4
		{0, []timedCall{{ok, 150 * ms}}},                                          // [fail, slow, fail, slow]: 2 of 4
		{0, []timedCall{{ok, 0}}},                                                 // rejected
		{time.Second, []timedCall{{ok, 200 * ms}}},                                // a slow probe
		{time.Second, []timedCall{{ok, 100 * ms}}},                                // a probe in time: closed
		{0, []timedCall{{ok, time.Second}, {ok, time.Second}, {ok, time.Second}}}, // the window restarted: 3 < MinCalls
		{0, []timedCall{{ok, 0}}},                                                 // 3 slow of 4, judged at a slow call only
		{0, []timedCall{{fail, time.Minute}}},                                     // a slow failure: [slow slow ok slow] is 3 of 4
	})
	want := []string{"ok", "fail", "ok", "fail", "ok", "rejected", "ok", "ok", "ok", "ok", "ok", "ok", "fail"}
	wantEvents := []string{
		"closed->open@350.000001ms", "open->half-open@1.350000001s", "half-open->open@1.550000001s",
		"open->half-open@2.550000001s", "half-open->closed@2.650000001s", "closed->open@1m5.650000001s",
	}
	checkBreakerRun(t, want, outcomes, wantEvents, events)
}

func TestCircuitBreakerSlowCallsTimeWindow(t *testing.T) {
	// Slow calls expire with their bucket like failures. SlowCallRate 0
	// means 1: every call in the window slow.
	cfg := operators.BreakerConfig{
		WindowDuration: 10 * time.Second, WindowBuckets: 10, MinCalls: 2, SlowCallDuration: time.Second,
		CoolDown: time.Minute,
	}
	slowCall := []timedCall{{ok, 2 * time.Second}}
	t.Run("close together", func(t *testing.T) {
		_, events := runTimedSteps(t, cfg, []timedStep{{0, slowCall}, {6 * time.Second, slowCall}})
		if diff := cmp.Diff([]string{"closed->open@10s"}, events); diff != "" {
			t.Errorf("transitions (-want +got)\n%s", diff)
		}
	})
	t.Run("spread out", func(t *testing.T) {
		// The first completes at 2s and expires at 12s, as the second
		// completes.
		_, events := runTimedSteps(t, cfg, []timedStep{{0, slowCall}, {8 * time.Second, slowCall}})
		if len(events) != 0 {
			t.Errorf("transitions %q, want none", events)
		}
	})
	t.Run("one fast call keeps it closed", func(t *testing.T) {
		_, events := runTimedSteps(t, cfg, []timedStep{{0, slowCall}, {0, []timedCall{{ok, 0}}}, {0, slowCall}})
		if len(events) != 0 {
			t.Errorf("transitions %q, want none", events)
		}
	})
}

func TestCircuitBreakerTimeWindowConcurrentUse(t *testing.T) {
	// Many goroutines through one breaker under -race, on the real clock
	// with buckets of 1ms: every call is either made or rejected, and the
	// counts add up.
	cb := operators.NewCircuitBreaker(operators.BreakerConfig{
		WindowDuration: 10 * ms, WindowBuckets: 10, MinCalls: 5, CoolDown: ms,
	})
	hammerBreaker(t, cb)
}

func TestCircuitBreakerTimeWindowPanics(t *testing.T) {
	const prefix = "sluice: NewCircuitBreaker: BreakerConfig."
	tests := []struct {
		name string
		cfg  operators.BreakerConfig
		want string
	}{
		{"negative duration", operators.BreakerConfig{WindowDuration: -1}, "WindowDuration < 0"},
		{"negative buckets", operators.BreakerConfig{WindowDuration: time.Second, WindowBuckets: -1}, "WindowBuckets < 0"},
		{"both windows", operators.BreakerConfig{Window: 10, WindowDuration: time.Second}, "Window and WindowDuration both set"},
		{"buckets alone", operators.BreakerConfig{WindowBuckets: 10}, "WindowBuckets without WindowDuration"},
		{"uneven buckets", operators.BreakerConfig{WindowDuration: time.Second, WindowBuckets: 7},
			"WindowDuration not a multiple of WindowBuckets nanoseconds"},
		{"uneven default buckets", operators.BreakerConfig{WindowDuration: 15},
			"WindowDuration not a multiple of WindowBuckets nanoseconds"},
		{"more buckets than nanoseconds", operators.BreakerConfig{WindowDuration: 5, WindowBuckets: 10},
			"WindowDuration not a multiple of WindowBuckets nanoseconds"},
		{"negative MinCalls", operators.BreakerConfig{WindowDuration: time.Second, MinCalls: -1}, "MinCalls < 0"},
		{"negative slow duration", operators.BreakerConfig{SlowCallDuration: -1}, "SlowCallDuration < 0"},
		{"slow rate alone", operators.BreakerConfig{SlowCallRate: 0.5}, "SlowCallRate without SlowCallDuration"},
		{"slow rate above 1", operators.BreakerConfig{SlowCallDuration: time.Second, SlowCallRate: 1.5},
			"SlowCallRate outside (0, 1]"},
		{"negative slow rate", operators.BreakerConfig{SlowCallDuration: time.Second, SlowCallRate: -0.5},
			"SlowCallRate outside (0, 1]"},
		{"NaN slow rate", operators.BreakerConfig{SlowCallDuration: time.Second, SlowCallRate: math.NaN()},
			"SlowCallRate outside (0, 1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if got, want := fmt.Sprint(recover()), prefix+tt.want; got != want {
					t.Errorf("panic = %q, want %q", got, want)
				}
			}()
			operators.NewCircuitBreaker(tt.cfg)
		})
	}
}

func TestCircuitBreakerTimeWindowValidConfigs(t *testing.T) {
	// Edge values that are valid: they must not panic.
	for _, cfg := range []operators.BreakerConfig{
		{WindowDuration: 10},                               // ten buckets of 1ns
		{WindowDuration: time.Minute, WindowBuckets: 60},   // one bucket per second
		{WindowDuration: time.Second, WindowBuckets: 1},    // a fixed window
		{WindowDuration: time.Second, MinCalls: 1000},      // MinCalls is not bounded by a count
		{WindowDuration: 1, WindowBuckets: 1, MinCalls: 1}, // the smallest
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("NewCircuitBreaker(%+v) panicked: %v", cfg, r)
				}
			}()
			operators.NewCircuitBreaker(cfg)
		}()
	}
}

// checkBreakerRun compares the outcomes of a run of calls through a
// breaker, and its state transitions, with what the test wants.
func checkBreakerRun(t *testing.T, wantOutcomes, outcomes, wantEvents, events []string) {
	t.Helper()
	if diff := cmp.Diff(wantOutcomes, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(wantEvents, events); diff != "" {
		t.Errorf("transitions (-want +got)\n%s", diff)
	}
}
