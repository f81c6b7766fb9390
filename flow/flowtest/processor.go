package flowtest

import (
	"reflect"
	"testing"

	"github.com/sluicego/sluice/flow"
)

// VerifyProcessor runs the Reactive Streams 1.0.4 TCK's
// IdentityProcessorVerification against the processors that cfg.New
// creates, each test as a subtest named exactly after the TCK method:
//
//   - every PublisherVerification test (see [VerifyPublisher]) on the
//     processor as a publisher, fed by a conforming synchronous source of
//     the kit that emits cfg.Element(0), cfg.Element(1), ...; the failed
//     publisher is a processor whose upstream fails at once;
//   - every SubscriberWhiteboxVerification test on the processor as a
//     subscriber: the kit plays its upstream with a Subscription that
//     records Request and Cancel, and drives and observes it through a
//     test Subscriber of the kit subscribed downstream (the TCK's probe
//     and puppet);
//   - the processor tests: required_spec104_mustCallOnErrorOnAllItsSubscribersIfItEncountersANonRecoverableError,
//     mustImmediatelyPassOnOnErrorEventsReceivedFromItsUpstreamToItsDownstream
//     and required_mustRequestFromUpstreamForElementsThatHaveBeenRequestedLongAgo
//     (the first and last need two subscribers; they are skipped when
//     cfg.MaxSubscribers is 1).
//
// Items are compared with reflect.DeepEqual.
func VerifyProcessor[T any](t *testing.T, cfg ProcessorConfig[T]) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("flowtest: ProcessorConfig.New is nil")
	}
	if cfg.Element == nil {
		t.Fatal("flowtest: ProcessorConfig.Element is nil")
	}
	verify(t, "ProcessorConfig", processorChecks(cfg), newTiming(cfg.Timeout, cfg.NoSignalTimeout), cfg.Skip)
}

type processorSuite[T any] struct {
	cfg     ProcessorConfig[T]
	bufSize int
}

func processorChecks[T any](cfg ProcessorConfig[T]) []check {
	ps := &processorSuite[T]{cfg: cfg, bufSize: cfg.BufferSize}
	if ps.bufSize <= 0 {
		ps.bufSize = 16
	}
	pubs := newPublisherSuite(PublisherConfig[T]{
		New:          ps.asPublisher,
		Failed:       ps.failedPublisher,
		MaxElements:  cfg.MaxElements,
		MaxRecursion: cfg.MaxRecursion,
	})
	checks := pubs.checks()
	checks = append(checks, ps.processorChecks()...)
	return append(checks, ps.whiteboxChecks()...)
}

// newProcessor calls cfg.New, ending the check on a panic or nil.
func (ps *processorSuite[T]) newProcessor(e *env) flow.Processor[T, T] {
	var proc flow.Processor[T, T]
	e.call("New", func() { proc = ps.cfg.New(ps.bufSize) })
	if proc == nil {
		e.fatalf("New(%d) returned nil", ps.bufSize)
	}
	return proc
}

// asPublisher is createPublisher of the TCK: a processor subscribed to a
// source of n items.
func (ps *processorSuite[T]) asPublisher(n int64) flow.Publisher[T] {
	proc := ps.cfg.New(ps.bufSize)
	if proc == nil {
		return nil
	}
	(&source[T]{n: n, elem: ps.cfg.Element}).Subscribe(proc)
	return proc
}

// failedPublisher subscribes each subscriber to a new processor whose
// upstream then fails.
func (ps *processorSuite[T]) failedPublisher() flow.Publisher[T] {
	return flow.PublisherFunc[T](func(s flow.Subscriber[T]) {
		proc := ps.cfg.New(ps.bufSize)
		proc.Subscribe(s)
		(&source[T]{err: errTestFailed}).Subscribe(proc)
	})
}

// procStage is the kit playing upstream of a processor under test (the
// TCK's WhiteboxTestStage and TestSetup).
type procStage[T any] struct {
	e     *env
	ps    *processorSuite[T]
	proc  flow.Processor[T, T]
	up    *upstream
	down  *probe[T] // the whitebox probe and puppet
	next  int64
	lastT T
}

// whitebox subscribes a probe to a new processor, then subscribes the
// processor to the kit's upstream, and waits for the probe's OnSubscribe.
// Without setup it stops before the upstream.
func (ps *processorSuite[T]) whitebox(e *env, setup bool) *procStage[T] {
	st := &procStage[T]{e: e, ps: ps, proc: ps.newProcessor(e)}
	st.down = startProbe(e, flow.Publisher[T](st.proc))
	if setup {
		st.subscribe(newUpstream(e, "upstream Subscription"))
		if !st.down.await(e.timeout, func() bool { return st.down.up != nil }) {
			e.fatalf("the processor did not call OnSubscribe on its subscriber within %v of its own OnSubscribe", e.timeout)
		}
	}
	return st
}

// testSetup subscribes a new processor to the kit's upstream; the test
// subscribes its subscribers.
func (ps *processorSuite[T]) testSetup(e *env) *procStage[T] {
	st := &procStage[T]{e: e, ps: ps, proc: ps.newProcessor(e)}
	st.subscribe(newUpstream(e, "upstream Subscription"))
	return st
}

func (st *procStage[T]) subscribe(u *upstream) {
	st.up = u
	st.e.call("OnSubscribe", func() { st.proc.OnSubscribe(u) })
}

// signalNext sends the next element upstream of the processor, within the
// demand it signalled, and returns it.
func (st *procStage[T]) signalNext() T {
	if !st.up.take() {
		st.e.fatalf("the processor did not request from upstream within %v (rule 2.1)", st.e.timeout)
	}
	return st.deliverNext()
}

// deliverNext sends the next element regardless of demand.
func (st *procStage[T]) deliverNext() T {
	var item T
	st.e.call("Element", func() { item = st.ps.cfg.Element(st.next) })
	st.next++
	st.lastT = item
	st.e.call("OnNext", func() { st.proc.OnNext(item) })
	return item
}

func (st *procStage[T]) sendCompletion() {
	deliverTerminal(func() { st.e.call("OnComplete", st.proc.OnComplete) })
}

func (st *procStage[T]) sendError(err error) {
	deliverTerminal(func() { st.e.call("OnError", func() { st.proc.OnError(err) }) })
}

// expectNext expects sub to receive want.
func (st *procStage[T]) expectNext(sub *probe[T], want T) {
	if got := sub.nextElement(); !reflect.DeepEqual(got, want) {
		st.e.Errorf("the processor emitted %v, want %v", got, want)
	}
}

func (ps *processorSuite[T]) needsSubscribers(e *env, n int) {
	if ps.cfg.MaxSubscribers != 0 && ps.cfg.MaxSubscribers < n {
		e.skipf("needs %d subscribers, and MaxSubscribers is %d", n, ps.cfg.MaxSubscribers)
	}
}

func (ps *processorSuite[T]) processorChecks() []check {
	return []check{
		{name: "required_spec104_mustCallOnErrorOnAllItsSubscribersIfItEncountersANonRecoverableError", run: func(e *env) {
			ps.needsSubscribers(e, 2)
			st := ps.testSetup(e)
			sub1 := subscribeProbe(e, flow.Publisher[T](st.proc))
			sub2 := subscribeProbe(e, flow.Publisher[T](st.proc))
			sub1.request(1)
			st.up.expectRequest()
			x := st.signalNext()
			st.expectNext(sub1, x)
			sub1.request(1)
			// sub1 has one item pending, sub2 has requested nothing.
			st.sendError(errTest)
			sub1.expectErrorIs(errTest)
			sub2.expectErrorIs(errTest)
		}},
		{name: "mustImmediatelyPassOnOnErrorEventsReceivedFromItsUpstreamToItsDownstream", run: func(e *env) {
			st := ps.testSetup(e)
			sub := subscribeProbe(e, flow.Publisher[T](st.proc))
			st.sendError(errTest)
			sub.expectErrorIs(errTest) // without a preceding Request
		}},
		{name: "required_mustRequestFromUpstreamForElementsThatHaveBeenRequestedLongAgo", run: func(e *env) {
			ps.needsSubscribers(e, 2)
			st := ps.testSetup(e)
			sub1 := subscribeProbe(e, flow.Publisher[T](st.proc))
			sub1.request(20)
			total := st.up.expectRequest()
			x := st.signalNext()
			st.expectNext(sub1, x)
			if total == 1 {
				total += st.up.expectRequest()
			}
			y := st.signalNext()
			st.expectNext(sub1, y)
			if total == 2 {
				total += st.up.expectRequest()
			}
			sub2 := subscribeProbe(e, flow.Publisher[T](st.proc))
			// sub1 has 18 pending, sub2 none.
			z := st.signalNext()
			st.expectNext(sub1, z)
			sub2.expectNone("before it requested anything")
			sub2.request(1)
			st.expectNext(sub2, z)
			if total == 3 {
				st.up.expectRequest()
			}
			st.sendCompletion()
			sub1.expectCompletion()
			sub2.expectCompletion()
		}},
	}
}

func (ps *processorSuite[T]) whiteboxChecks() []check {
	return []check{
		{name: "required_exerciseWhiteboxHappyPath", run: func(e *env) {
			st := ps.whitebox(e, true)
			st.down.request(1)
			st.down.request(1)
			received := st.up.expectRequest()
			st.expectNext(st.down, st.signalNext())
			st.down.request(1)
			if received == 1 {
				st.up.expectRequest()
			}
			st.expectNext(st.down, st.signalNext())
			st.down.cancel()
			st.up.expectCancelled("the processor must cancel its upstream when its only subscriber cancels")
		}},
		{name: "required_spec201_mustSignalDemandViaSubscriptionRequest", run: func(e *env) {
			st := ps.whitebox(e, true)
			st.down.request(1)
			st.up.expectRequest()
			st.expectNext(st.down, st.signalNext())
		}},
		notVerified("untested_spec202_shouldAsynchronouslyDispatch", "whether a subscriber dispatches work asynchronously is not observable"),
		{name: "required_spec203_mustNotCallMethodsOnSubscriptionOrPublisherInOnComplete", run: func(e *env) {
			st := ps.whitebox(e, false)
			st.subscribe(newUpstream(e, "upstream Subscription"))
			st.sendCompletion() // the Subscription reports calls from inside
		}},
		{name: "required_spec203_mustNotCallMethodsOnSubscriptionOrPublisherInOnError", run: func(e *env) {
			st := ps.whitebox(e, false)
			st.subscribe(newUpstream(e, "upstream Subscription"))
			st.sendError(errTest)
			st.down.mu.Lock()
			st.down.cur = len(st.down.signals) // the OnError is expected downstream
			st.down.mu.Unlock()
		}},
		notVerified("untested_spec204_mustConsiderTheSubscriptionAsCancelledInAfterRecievingOnCompleteOrOnError", "the subscriber's internal state is not observable"),
		{name: "required_spec205_mustCallSubscriptionCancelIfItAlreadyHasAnSubscriptionAndReceivesAnotherOnSubscribeSignal", run: func(e *env) {
			st := ps.whitebox(e, true)
			second := newUpstream(e, "second upstream Subscription")
			e.call("OnSubscribe (second)", func() { st.proc.OnSubscribe(second) })
			second.expectCancelled("a second Subscription must be cancelled, rule 2.5")
		}},
		notVerified("untested_spec206_mustCallSubscriptionCancelIfItIsNoLongerValid", "required_exerciseWhiteboxHappyPath checks that the processor cancels upstream when its subscriber cancels"),
		notVerified("untested_spec207_mustEnsureAllCallsOnItsSubscriptionTakePlaceFromTheSameThreadOrTakeCareOfSynchronization", "the kit's Subscription reports overlapping Request and Cancel calls in every test"),
		{name: "required_spec208_mustBePreparedToReceiveOnNextSignalsAfterHavingCalledSubscriptionCancel", run: func(e *env) {
			st := ps.whitebox(e, true)
			st.down.request(1)
			st.down.cancel()
			st.deliverNext() // in flight when the cancel reached upstream
			st.down.request(1)
			st.down.request(1)
			st.down.settle()
		}},
		{name: "required_spec209_mustBePreparedToReceiveAnOnCompleteSignalWithPrecedingRequestCall", run: func(e *env) {
			st := ps.whitebox(e, true)
			st.down.request(1)
			st.sendCompletion()
			st.down.expectCompletion()
		}},
		{name: "required_spec209_mustBePreparedToReceiveAnOnCompleteSignalWithoutPrecedingRequestCall", run: func(e *env) {
			st := ps.whitebox(e, true)
			st.sendCompletion()
			st.down.expectCompletion()
		}},
		{name: "required_spec210_mustBePreparedToReceiveAnOnErrorSignalWithPrecedingRequestCall", run: func(e *env) {
			st := ps.whitebox(e, true)
			st.down.request(1)
			st.down.request(1)
			st.sendError(errTest)
			st.down.expectErrorIs(errTest)
		}},
		{name: "required_spec210_mustBePreparedToReceiveAnOnErrorSignalWithoutPrecedingRequestCall", run: func(e *env) {
			st := ps.whitebox(e, true)
			st.sendError(errTest)
			st.down.expectErrorIs(errTest)
		}},
		notVerified("untested_spec211_mustMakeSureThatAllCallsOnItsMethodsHappenBeforeTheProcessingOfTheRespectiveEvents", "happens-before inside the subscriber is not observable; run the tests with -race"),
		notVerified("untested_spec212_mustNotCallOnSubscribeMoreThanOnceBasedOnObjectEquality_specViolation", "a subscriber cannot be made to subscribe itself twice from outside"),
		notVerified("untested_spec213_failingOnSignalInvocation", "what a subscriber does when it fails is implementation-defined"),
		{name: "required_spec213_onSubscribe_mustThrowNullPointerExceptionWhenParametersAreNull", run: func(e *env) {
			st := ps.whitebox(e, true)
			if flow.Catch(func() { st.proc.OnSubscribe(nil) }) == nil {
				e.Errorf("OnSubscribe(nil) returned normally, want a panic (rule 2.13)")
			}
		}},
		notApplicable("required_spec213_onNext_mustThrowNullPointerExceptionWhenParametersAreNull",
			"an item of type T cannot be null; its zero value is a valid item"),
		{name: "required_spec213_onError_mustThrowNullPointerExceptionWhenParametersAreNull", run: func(e *env) {
			st := ps.whitebox(e, true)
			if flow.Catch(func() { st.proc.OnError(nil) }) == nil {
				e.Errorf("OnError(nil) returned normally, want a panic (rule 2.13)")
			}
		}},
		notVerified("untested_spec301_mustNotBeCalledOutsideSubscriberContext", "the calling context is not observable"),
		{name: "required_spec308_requestMustRegisterGivenNumberElementsToBeProduced", run: func(e *env) {
			st := ps.whitebox(e, true)
			st.down.request(2)
			st.expectNext(st.down, st.signalNext())
			st.expectNext(st.down, st.signalNext())
			st.down.expectNone("after the 2 items requested")
			st.down.request(3)
		}},
		notVerified("untested_spec310_requestMaySynchronouslyCallOnNextOnSubscriber", "the publisher tests feed the processor from a synchronous source"),
		notVerified("untested_spec311_requestMaySynchronouslyCallOnCompleteOrOnError", "the publisher tests feed the processor from a synchronous source"),
		notVerified("untested_spec314_cancelMayCauseThePublisherToShutdownIfNoOtherSubscriptionExists", "a MAY rule"),
		notVerified("untested_spec315_cancelMustNotThrowExceptionAndMustSignalOnError", "every test reports a panic of Cancel"),
		notVerified("untested_spec316_requestMustNotThrowExceptionAndMustOnErrorTheSubscriber", "every test reports a panic of Request"),
	}
}
