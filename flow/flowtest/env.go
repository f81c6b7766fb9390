package flowtest

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicego/sluice/flow"
)

// The kit is built from named checks that run against an env, a small
// reporter of its own, rather than against *testing.T. VerifyPublisher,
// VerifySubscriber and VerifyProcessor run every check in a subtest and
// forward its outcome; the kit's own tests run the same checks directly
// and assert which of them fail for deliberately broken stages.

// check is one conformance test, named after the TCK method it ports.
type check struct {
	name string
	// optional turns a failure into a skip, as the TCK does for the
	// optional_ tests that run a publisher (optionalActivePublisherTest).
	optional bool
	run      func(e *env)
}

// timing holds the two timeouts of a run.
type timing struct {
	timeout time.Duration // for a signal that is expected
	quiet   time.Duration // to conclude that no signal is coming
}

func newTiming(timeout, quiet time.Duration) timing {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	if quiet <= 0 {
		quiet = defaultNoSignalTimeout
	}
	return timing{timeout: timeout, quiet: quiet}
}

// env is the reporter a check runs against. Errorf, Helper and Cleanup
// make it a TB for the Subscribers the check creates; Errorf may be called
// from any goroutine. fatalf and skipf end the check and must be called
// on the check's goroutine.
type env struct {
	timing
	mu       sync.Mutex
	errs     []string
	done     bool
	cleanups []func()
}

// Control-flow panics of fatalf and skipf.
type (
	failNow struct{}
	skipNow struct{ reason string }
)

func (e *env) Helper() {}

// Errorf records a failure. Failures reported after the check has ended,
// by a publisher that keeps signalling, are dropped.
func (e *env) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.done {
		e.errs = append(e.errs, msg)
	}
}

// Cleanup registers f to run when the check ends, last registered first.
func (e *env) Cleanup(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

func (e *env) fatalf(format string, args ...any) {
	e.Errorf(format, args...)
	panic(failNow{})
}

func (e *env) skipf(format string, args ...any) {
	panic(skipNow{reason: fmt.Sprintf(format, args...)})
}

// guard runs f, turning a panic into a failure; it returns false if f
// panicked or ended the check.
func (e *env) guard(f func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			ok = false
			switch r.(type) {
			case failNow, skipNow:
			default:
				e.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}
	}()
	f()
	return true
}

// call runs f, a call into the code under test named what, and ends the
// check if it panics.
func (e *env) call(what string, f func()) {
	if err := flow.Catch(f); err != nil {
		var pe *flow.PanicError
		if errors.As(err, &pe) {
			switch pe.Value.(type) {
			case failNow, skipNow:
				panic(pe.Value) // a hook of the kit ended the check
			}
		}
		e.fatalf("%s panicked: %v", what, err)
	}
}

// outcome is the result of one check.
type outcome struct {
	errs []string
	skip string // the reason, if the check was skipped
}

func (o outcome) failed() bool { return len(o.errs) > 0 }

// runCheck runs c on the calling goroutine, then its cleanups.
func runCheck(c check, tm timing) outcome {
	e := &env{timing: tm}
	var skip string
	func() {
		defer func() {
			if r := recover(); r != nil {
				switch v := r.(type) {
				case failNow:
				case skipNow:
					skip = v.reason
				default:
					e.Errorf("panic: %v\n%s", r, debug.Stack())
				}
			}
		}()
		c.run(e)
	}()
	for {
		e.mu.Lock()
		n := len(e.cleanups)
		if n == 0 {
			e.mu.Unlock()
			break
		}
		f := e.cleanups[n-1]
		e.cleanups = e.cleanups[:n-1]
		e.mu.Unlock()
		e.guard(f)
	}
	e.mu.Lock()
	e.done = true
	errs := e.errs
	e.mu.Unlock()
	if c.optional && len(errs) > 0 {
		return outcome{skip: "the publisher does not implement this OPTIONAL requirement: " + errs[0]}
	}
	return outcome{errs: errs, skip: skip}
}

// runAll runs every check and returns the outcomes by name; skip names
// checks not to run, with the reason.
func runAll(checks []check, tm timing, skip map[string]string) map[string]outcome {
	out := make(map[string]outcome, len(checks))
	for _, c := range checks {
		if reason, ok := skip[c.name]; ok {
			out[c.name] = outcome{skip: reason}
			continue
		}
		out[c.name] = runCheck(c, tm)
	}
	return out
}

// verify runs every check as a subtest of t and forwards its outcome.
func verify(t *testing.T, kind string, checks []check, tm timing, skip map[string]string) {
	t.Helper()
	for _, name := range unknownSkips(checks, skip) {
		t.Errorf("flowtest: %s.Skip names %q, which is not a test", kind, name)
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if reason, ok := skip[c.name]; ok {
				t.Skip(reason)
			}
			o := runCheck(c, tm)
			for _, msg := range o.errs {
				t.Error(msg)
			}
			if o.skip != "" {
				t.Skip(o.skip)
			}
		})
	}
}

// unknownSkips returns the names in skip that name no check, sorted.
func unknownSkips(checks []check, skip map[string]string) []string {
	known := make(map[string]bool, len(checks))
	for _, c := range checks {
		known[c.name] = true
	}
	var unknown []string
	for name := range skip {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// notVerified is a check that the TCK does not verify either.
func notVerified(name, why string) check {
	return check{name: name, run: func(e *env) { e.skipf("not verified by this kit (nor by the TCK): %s", why) }}
}

// notApplicable is a TCK check that has no meaning in Go.
func notApplicable(name, why string) check {
	return check{name: name, run: func(e *env) { e.skipf("not applicable in Go: %s", why) }}
}

// deliverTerminal calls f, which delivers OnComplete or OnError to a
// subscriber under test. The kit's Subscriptions look for this frame on
// the stack to catch a Request or Cancel made from inside the terminal
// signal (rule 2.3).
//
//go:noinline
func deliverTerminal(f func()) { f() }

// calledFromTerminal reports whether the caller runs inside
// deliverTerminal on this goroutine.
func calledFromTerminal() bool {
	var pcs [256]uintptr
	n := runtime.Callers(2, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, "/flowtest.deliverTerminal") {
			return true
		}
		if !more {
			return false
		}
	}
}

// waitChan waits up to d for ch to be closed.
func waitChan(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	default:
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-timer.C:
		return false
	}
}

var errTestFailed = errorString("flowtest: the test publisher failed")

type errorString string

func (e errorString) Error() string { return string(e) }
