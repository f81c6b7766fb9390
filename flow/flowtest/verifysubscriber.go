package flowtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicego/sluice/flow"
)

// errTest is the error the kit signals with OnError in subscriber tests.
var errTest = errorString("flowtest: test error")

// VerifySubscriber runs the Reactive Streams 1.0.4 TCK's
// SubscriberBlackboxVerification against the subscriber that cfg.New
// creates, or against the blocking sink cfg.Sink, each test as a subtest
// named exactly after the TCK method, such as
// required_spec205_blackbox_mustCallSubscriptionCancelIfItAlreadyHasAnSubscriptionAndReceivesAnotherOnSubscribeSignal.
// The rule a test covers is the number after "spec".
//
// The kit plays the publisher: it calls OnSubscribe with a Subscription
// of its own that records every Request and Cancel, and delivers items
// made by cfg.Element only within the demand signalled. Throughout, it
// reports a Request(n <= 0), overlapping calls to Request and Cancel
// (rule 2.7), a call made from inside OnComplete or OnError (rule 2.3) and
// any panic of the subscriber.
//
// Several untested_ rules of the TCK are checked in Go:
// untested_spec207 (serial calls on the Subscription),
// untested_spec310 and untested_spec311 (a Request that synchronously
// calls OnNext, OnComplete or OnError), and, with Sink only,
// untested_spec206 and untested_spec208 (cancelling the sink's context must
// cancel the Subscription and return ctx.Err(), and an OnNext in flight
// afterwards must be accepted). OnSubscribe(nil) and OnError(nil) must
// panic (rule 2.13); OnNext(null) does not apply to Go generics. With
// Sink the kit also checks that the sink returns nil after OnComplete and
// the error after OnError (rules 2.9, 2.10).
//
// A Sink runs on a goroutine the kit owns; at the end of each test the kit
// cancels its context and waits up to cfg.Timeout for it to return.
func VerifySubscriber[T any](t *testing.T, cfg SubscriberConfig[T]) {
	t.Helper()
	if (cfg.New == nil) == (cfg.Sink == nil) {
		t.Fatal("flowtest: SubscriberConfig needs exactly one of New and Sink")
	}
	if cfg.Element == nil {
		t.Fatal("flowtest: SubscriberConfig.Element is nil")
	}
	verify(t, "SubscriberConfig", subscriberChecks(cfg), newTiming(cfg.Timeout, cfg.NoSignalTimeout), cfg.Skip)
}

// stage is the kit playing publisher to one subscriber under test (the
// TCK's BlackboxTestStage).
type stage[T any] struct {
	e    *env
	cfg  *SubscriberConfig[T]
	sub  flow.Subscriber[T]
	up   *upstream
	next int64 // index of the next element

	// Sink only.
	cancelCtx context.CancelFunc
	sinkDone  chan struct{}
	sinkErr   error // valid once sinkDone is closed
	sinkPanic error
}

// newStage obtains a fresh subscriber under test, without calling
// OnSubscribe: from cfg.New, or from the Subscribe call of cfg.Sink run on
// a goroutine of the kit.
func newStage[T any](e *env, cfg *SubscriberConfig[T]) *stage[T] {
	st := &stage[T]{e: e, cfg: cfg}
	if cfg.New != nil {
		e.call("New()", func() { st.sub = cfg.New() })
		if st.sub == nil {
			e.fatalf("New() returned nil")
		}
		return st
	}
	ctx, cancel := context.WithCancel(context.Background())
	pub := &capture[T]{e: e, subs: make(chan flow.Subscriber[T], 1)}
	st.cancelCtx = cancel
	st.sinkDone = make(chan struct{})
	go func() {
		defer close(st.sinkDone)
		st.sinkPanic = flow.Catch(func() { st.sinkErr = cfg.Sink(ctx, pub) })
	}()
	e.Cleanup(func() {
		cancel()
		if !waitChan(st.sinkDone, e.timeout) {
			e.Errorf("Sink did not return within %v after its context was cancelled", e.timeout)
			return
		}
		if st.sinkPanic != nil {
			e.Errorf("Sink panicked: %v", st.sinkPanic)
		}
	})
	deadline := newDeadline(e.timeout)
	defer deadline.stop()
	select {
	case st.sub = <-pub.subs:
	case <-st.sinkDone:
		e.fatalf("Sink returned without subscribing (err = %v, panic = %v)", st.sinkErr, st.sinkPanic)
	case <-deadline.timer.C:
		e.fatalf("Sink did not call Subscribe within %v", e.timeout)
	}
	return st
}

// capture is the publisher a Sink subscribes to: it hands the subscriber
// to the check, which then plays the publisher.
type capture[T any] struct {
	e    *env
	subs chan flow.Subscriber[T]
	n    atomic.Int32
}

func (c *capture[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	if c.n.Add(1) > 1 {
		c.e.Errorf("the Sink subscribed more than once")
		flow.Reject(s, errors.New("flowtest: one subscriber only"))
		return
	}
	c.subs <- s
}

// subscribe calls OnSubscribe with u.
func (st *stage[T]) subscribe(u *upstream) {
	st.up = u
	st.e.call("OnSubscribe", func() { st.sub.OnSubscribe(u) })
}

// setup obtains a subscriber and subscribes it, like the TCK's
// blackboxSubscriberTest.
func setup[T any](e *env, cfg *SubscriberConfig[T]) *stage[T] {
	st := newStage(e, cfg)
	st.subscribe(newUpstream(e, "Subscription"))
	return st
}

// triggerRequest calls cfg.TriggerRequest, if any.
func (st *stage[T]) triggerRequest() {
	if st.cfg.TriggerRequest != nil && st.cfg.New != nil {
		st.e.call("TriggerRequest", func() { st.cfg.TriggerRequest(st.sub) })
	}
}

func (st *stage[T]) element() T {
	var item T
	st.e.call("Element", func() { item = st.cfg.Element(st.next) })
	st.next++
	return item
}

// sendNext delivers the next element within the demand, waiting up to the
// timeout for the demand.
func (st *stage[T]) sendNext() {
	if !st.up.take() {
		st.e.fatalf("the subscriber did not request more items within %v (rule 2.1)", st.e.timeout)
	}
	st.deliverNext()
}

// deliverNext delivers the next element regardless of demand.
func (st *stage[T]) deliverNext() {
	item := st.element()
	st.e.call("OnNext", func() { st.sub.OnNext(item) })
}

func (st *stage[T]) sendComplete() {
	deliverTerminal(func() { st.e.call("OnComplete", st.sub.OnComplete) })
}

func (st *stage[T]) sendError(err error) {
	deliverTerminal(func() { st.e.call("OnError", func() { st.sub.OnError(err) }) })
}

// expectSinkResult waits for a Sink to return after a terminal signal and
// checks its error: nil after OnComplete, one that matches want after
// OnError. It does nothing for a subscriber made by New.
func (st *stage[T]) expectSinkResult(want error) {
	if st.sinkDone == nil {
		return
	}
	if !waitChan(st.sinkDone, st.e.timeout) {
		st.e.fatalf("Sink did not return within %v after the stream ended", st.e.timeout)
	}
	switch {
	case st.sinkPanic != nil:
		// reported by the cleanup
	case want == nil && st.sinkErr != nil:
		st.e.Errorf("Sink returned %v after OnComplete, want nil", st.sinkErr)
	case want != nil && !errors.Is(st.sinkErr, want):
		st.e.Errorf("Sink returned %v after OnError(%v), want an error that matches it", st.sinkErr, want)
	}
}

// needsSink skips a test that needs a way to make the subscriber cancel.
func (st *stage[T]) needsSink() {
	if st.sinkDone == nil {
		st.e.skipf("needs a way to make the subscriber cancel: set Sink, whose context the kit cancels")
	}
}

func subscriberChecks[T any](cfg SubscriberConfig[T]) []check {
	c := &cfg
	return []check{
		{name: "required_spec201_blackbox_mustSignalDemandViaSubscriptionRequest", run: func(e *env) {
			st := setup(e, c)
			st.triggerRequest()
			n := st.up.expectRequest()
			for i := int64(0); i < min(n, 512) && !st.up.cancelled(); i++ {
				st.sendNext()
			}
			st.sendComplete()
			st.expectSinkResult(nil)
		}},
		notVerified("untested_spec202_blackbox_shouldAsynchronouslyDispatch", "whether a subscriber dispatches work asynchronously is not observable"),
		{name: "required_spec203_blackbox_mustNotCallMethodsOnSubscriptionOrPublisherInOnComplete", run: func(e *env) {
			st := newStage(e, c)
			st.subscribe(newUpstream(e, "Subscription"))
			st.sendComplete() // the Subscription reports calls from inside
		}},
		{name: "required_spec203_blackbox_mustNotCallMethodsOnSubscriptionOrPublisherInOnError", run: func(e *env) {
			st := newStage(e, c)
			st.subscribe(newUpstream(e, "Subscription"))
			st.sendError(errTest)
		}},
		notVerified("untested_spec204_blackbox_mustConsiderTheSubscriptionAsCancelledInAfterRecievingOnCompleteOrOnError", "the subscriber's internal state is not observable"),
		{name: "required_spec205_blackbox_mustCallSubscriptionCancelIfItAlreadyHasAnSubscriptionAndReceivesAnotherOnSubscribeSignal", run: func(e *env) {
			st := setup(e, c)
			second := newUpstream(e, "second Subscription")
			second.forbidRequest = true
			e.call("OnSubscribe (second)", func() { st.sub.OnSubscribe(second) })
			second.expectCancelled("a second Subscription must be cancelled, rule 2.5")
			st.sendComplete()
		}},
		{name: "untested_spec206_blackbox_mustCallSubscriptionCancelIfItIsNoLongerValid", run: func(e *env) {
			// Go: a Sink whose context is done must cancel and return.
			st := setup(e, c)
			st.needsSink()
			st.cancelCtx()
			st.up.expectCancelled("cancelling the Sink's context must cancel its Subscription, rule 2.6")
			if !waitChan(st.sinkDone, e.timeout) {
				e.fatalf("Sink did not return within %v after its context was cancelled", e.timeout)
			}
			if st.sinkPanic == nil && !errors.Is(st.sinkErr, context.Canceled) {
				e.Errorf("Sink returned %v after its context was cancelled, want an error that matches context.Canceled", st.sinkErr)
			}
		}},
		{name: "untested_spec207_blackbox_mustEnsureAllCallsOnItsSubscriptionTakePlaceFromTheSameThreadOrTakeCareOfSynchronization", run: func(e *env) {
			// Go: stream 100 items within the demand; the Subscription
			// reports any Request or Cancel that overlaps another.
			st := setup(e, c)
			st.triggerRequest()
			st.up.expectRequest()
			for range 100 {
				if st.up.cancelled() || !st.waitDemand() {
					break
				}
				st.deliverNext()
			}
			st.sendComplete()
			st.expectSinkResult(nil)
		}},
		{name: "untested_spec208_blackbox_mustBePreparedToReceiveOnNextSignalsAfterHavingCalledSubscriptionCancel", run: func(e *env) {
			// Go: with Sink, cancel the context, then deliver an item that
			// was in flight.
			st := setup(e, c)
			st.needsSink()
			st.up.expectRequest()
			st.cancelCtx()
			st.up.expectCancelled("cancelling the Sink's context must cancel its Subscription, rule 2.6")
			st.deliverNext()
		}},
		{name: "required_spec209_blackbox_mustBePreparedToReceiveAnOnCompleteSignalWithPrecedingRequestCall", run: func(e *env) {
			st := setup(e, c)
			st.triggerRequest()
			st.up.expectRequest()
			st.sendComplete()
			st.expectSinkResult(nil)
		}},
		{name: "required_spec209_blackbox_mustBePreparedToReceiveAnOnCompleteSignalWithoutPrecedingRequestCall", run: func(e *env) {
			st := setup(e, c)
			st.sendComplete()
			st.expectSinkResult(nil)
		}},
		{name: "required_spec210_blackbox_mustBePreparedToReceiveAnOnErrorSignalWithPrecedingRequestCall", run: func(e *env) {
			st := setup(e, c)
			st.triggerRequest()
			st.up.expectRequest()
			st.sendError(errTest)
			st.expectSinkResult(errTest)
		}},
		{name: "required_spec210_blackbox_mustBePreparedToReceiveAnOnErrorSignalWithoutPrecedingRequestCall", run: func(e *env) {
			st := setup(e, c)
			st.sendError(errTest)
			st.expectSinkResult(errTest)
		}},
		notVerified("untested_spec211_blackbox_mustMakeSureThatAllCallsOnItsMethodsHappenBeforeTheProcessingOfTheRespectiveEvents", "happens-before inside the subscriber is not observable; run the tests with -race"),
		notVerified("untested_spec212_blackbox_mustNotCallOnSubscribeMoreThanOnceBasedOnObjectEquality", "a subscriber cannot be made to subscribe itself twice from outside"),
		notVerified("untested_spec213_blackbox_failingOnSignalInvocation", "what a subscriber does when it fails is implementation-defined"),
		{name: "required_spec213_blackbox_onSubscribe_mustThrowNullPointerExceptionWhenParametersAreNull", run: func(e *env) {
			st := newStage(e, c)
			if flow.Catch(func() { st.sub.OnSubscribe(nil) }) == nil {
				e.Errorf("OnSubscribe(nil) returned normally, want a panic (rule 2.13)")
			}
		}},
		notApplicable("required_spec213_blackbox_onNext_mustThrowNullPointerExceptionWhenParametersAreNull",
			"an item of type T cannot be null; its zero value is a valid item"),
		{name: "required_spec213_blackbox_onError_mustThrowNullPointerExceptionWhenParametersAreNull", run: func(e *env) {
			st := newStage(e, c)
			st.subscribe(newUpstream(e, "Subscription"))
			if flow.Catch(func() { st.sub.OnError(nil) }) == nil {
				e.Errorf("OnError(nil) returned normally, want a panic (rule 2.13)")
			}
		}},
		notVerified("untested_spec301_blackbox_mustNotBeCalledOutsideSubscriberContext", "the calling context is not observable"),
		notVerified("untested_spec308_blackbox_requestMustRegisterGivenNumberElementsToBeProduced", "a publisher rule; VerifyPublisher covers it"),
		{name: "untested_spec310_blackbox_requestMaySynchronouslyCallOnNextOnSubscriber", run: func(e *env) {
			// Go: the kit emits from inside the subscriber's own Request.
			st := newStage(e, c)
			em := newSyncEmitter(st, 8, nil)
			st.subscribe(em.up)
			st.triggerRequest()
			em.run()
			st.expectSinkResult(nil)
		}},
		{name: "untested_spec311_blackbox_requestMaySynchronouslyCallOnCompleteOrOnError", run: func(e *env) {
			// Go: the first Request synchronously signals OnComplete, then,
			// for a second subscriber, OnError.
			for _, end := range []error{nil, errTest} {
				st := newStage(e, c)
				em := newSyncEmitter(st, 0, end)
				st.subscribe(em.up)
				st.triggerRequest()
				em.run()
				st.expectSinkResult(end)
			}
		}},
		notVerified("untested_spec314_blackbox_cancelMayCauseThePublisherToShutdownIfNoOtherSubscriptionExists", "a publisher rule"),
		notVerified("untested_spec315_blackbox_cancelMustNotThrowExceptionAndMustSignalOnError", "a publisher rule"),
		notVerified("untested_spec316_blackbox_requestMustNotThrowExceptionAndMustOnErrorTheSubscriber", "a publisher rule"),
	}
}

// waitDemand waits, up to the no-signal timeout, for outstanding demand
// and consumes one unit of it; false means the subscriber stopped asking.
func (st *stage[T]) waitDemand() bool {
	if st.up.tryTake() {
		return true
	}
	deadline := newDeadline(st.e.quiet)
	defer deadline.stop()
	for {
		st.up.mu.Lock()
		ch := st.up.changed
		st.up.mu.Unlock()
		if st.up.tryTake() {
			return true
		}
		if !deadline.wait(ch) {
			return st.up.tryTake()
		}
	}
}

// syncEmitter makes the kit's Subscription emit from inside Request, as a
// synchronous publisher does (rules 3.10, 3.11): up to n items, then
// OnComplete, or end on the first Request. It is serial and non-recursive
// (a WIP drain loop), whichever goroutine calls Request.
type syncEmitter[T any] struct {
	st   *stage[T]
	up   *upstream
	n    int64
	end  error // with n == 0: nil for OnComplete, else OnError(end)
	wip  flow.WIP
	sent int64
	done atomic.Bool
	// force ends the stream at the next pass, for a subscriber that stops
	// requesting before n items.
	force    atomic.Bool
	finished chan struct{}
	once     sync.Once
}

func newSyncEmitter[T any](st *stage[T], n int64, end error) *syncEmitter[T] {
	em := &syncEmitter[T]{st: st, up: newUpstream(st.e, "Subscription"), n: n, end: end, finished: make(chan struct{})}
	em.up.emit = em.drain
	return em
}

// run waits for the emitter to finish; if the subscriber stops requesting
// first, it ends the stream itself.
func (em *syncEmitter[T]) run() {
	e := em.st.e
	if !waitChan(em.finished, e.quiet) {
		if em.up.requestCount() == 0 && !waitChan(em.finished, e.timeout) {
			e.fatalf("no Request within %v (rule 2.1)", e.timeout)
		}
		em.force.Store(true)
		em.drain()
	}
	if !waitChan(em.finished, e.timeout) {
		e.fatalf("the synchronous emission did not end within %v", e.timeout)
	}
}

func (em *syncEmitter[T]) drain() {
	if !em.wip.Enter() {
		return
	}
	em.up.inEmit.Add(1)
	defer em.up.inEmit.Add(-1)
	for missed := int32(1); missed != 0; missed = em.wip.Leave(missed) {
		for !em.done.Load() {
			if em.up.cancelled() {
				em.finish(false)
				break
			}
			if em.sent == em.n || em.force.Load() {
				em.finish(true)
				break
			}
			if !em.up.tryTake() {
				break
			}
			// Not st.element: this may run on the subscriber's goroutine.
			item := em.st.cfg.Element(em.st.next)
			em.st.next++
			em.sent++
			if err := flow.Catch(func() { em.st.sub.OnNext(item) }); err != nil {
				em.st.e.Errorf("OnNext panicked: %v", err)
				em.finish(false)
			}
		}
	}
}

// finish ends the emission, with a terminal signal if terminate is set.
func (em *syncEmitter[T]) finish(terminate bool) {
	em.done.Store(true)
	if terminate {
		e, sub := em.st.e, em.st.sub
		deliverTerminal(func() {
			if em.end == nil {
				if err := flow.Catch(sub.OnComplete); err != nil {
					e.Errorf("OnComplete panicked: %v", err)
				}
				return
			}
			if err := flow.Catch(func() { sub.OnError(em.end) }); err != nil {
				e.Errorf("OnError panicked: %v", err)
			}
		})
	}
	em.once.Do(func() { close(em.finished) })
}
