package flowtest

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"weak"

	"github.com/sluicego/sluice/flow"
)

// VerifyPublisher runs every test of the Reactive Streams 1.0.4 TCK's
// PublisherVerification against the publishers that cfg.New (and
// cfg.Failed) create, each as a subtest named exactly after the TCK method,
// such as required_spec309_requestZeroMustSignalIllegalArgumentException.
// The rule a test covers is the number after "spec" (309 is rule 3.9).
//
// Tests prefixed untested_ are not verified by the TCK; the kit runs those
// it can check in Go (such as untested_spec107_mustNotEmitFurtherSignalsOnceOnErrorHasBeenSignalled)
// and skips the others with the reason. Tests prefixed optional_ are
// skipped, not failed, when the publisher does not implement the optional
// behaviour. Tests that need more items than cfg.MaxElements, OnComplete
// from an Infinite publisher, or a Failed publisher that is nil are
// skipped, as in the TCK.
//
// Go translations of the TCK: Subscribe(nil) must panic (rule 1.9);
// Request(n <= 0) must signal an error that matches flow.ErrNonPositiveRequest
// (rule 3.9); after Cancel the publisher must drop every reference to the
// subscriber, which the kit checks with a weak pointer while it keeps the
// publisher and the cancelled Subscription reachable (rule 3.13). In every
// test the kit's subscriber flags signals that overlap (rule 1.3), exceed
// demand (rule 1.1) or follow a terminal signal (rule 1.7). The null-item
// rules do not apply to Go generics.
//
// VerifyPublisher runs in well under a second for a synchronous publisher:
// the only real-time waits are cfg.NoSignalTimeout (20ms) where the TCK
// expects no signal, a dozen times.
func VerifyPublisher[T any](t *testing.T, cfg PublisherConfig[T]) {
	t.Helper()
	if cfg.New == nil {
		t.Fatal("flowtest: PublisherConfig.New is nil")
	}
	verify(t, "PublisherConfig", publisherChecks(cfg), newTiming(cfg.Timeout, cfg.NoSignalTimeout), cfg.Skip)
}

// publisherSuite holds a normalized PublisherConfig.
type publisherSuite[T any] struct {
	newPub   func(n int64) flow.Publisher[T]
	failed   func() flow.Publisher[T] // nil: no failed publisher
	maxElems int64
	infinite bool
	maxRec   int
	rawMax   int64 // as configured, for the validation tests
	rawRec   int
}

func newPublisherSuite[T any](cfg PublisherConfig[T]) *publisherSuite[T] {
	p := &publisherSuite[T]{
		newPub:   cfg.New,
		failed:   cfg.Failed,
		maxElems: cfg.MaxElements,
		infinite: cfg.Infinite,
		maxRec:   cfg.MaxRecursion,
		rawMax:   cfg.MaxElements,
		rawRec:   cfg.MaxRecursion,
	}
	if p.maxElems <= 0 {
		p.maxElems = flow.Unbounded
	}
	if p.maxRec <= 0 {
		p.maxRec = 1
	}
	return p
}

func publisherChecks[T any](cfg PublisherConfig[T]) []check {
	return newPublisherSuite(cfg).checks()
}

// active returns a publisher of n items (activePublisherTest in the TCK),
// or skips the test if the configuration cannot provide one.
func (p *publisherSuite[T]) active(e *env, n int64, needsCompletion bool) flow.Publisher[T] {
	if n > p.maxElems {
		e.skipf("needs a publisher of %d items, and MaxElements is %d", n, p.maxElems)
	}
	if needsCompletion && p.infinite {
		e.skipf("needs OnComplete, and the publisher is Infinite")
	}
	var pub flow.Publisher[T]
	e.call(fmt.Sprintf("New(%d)", n), func() { pub = p.newPub(n) })
	if pub == nil {
		e.fatalf("New(%d) returned nil", n)
	}
	return pub
}

// failedPublisher returns the Failed publisher or skips the test.
func (p *publisherSuite[T]) failedPublisher(e *env) flow.Publisher[T] {
	if p.failed == nil {
		e.skipf("needs a publisher that fails; set Failed to run it")
	}
	var pub flow.Publisher[T]
	e.call("Failed()", func() { pub = p.failed() })
	if pub == nil {
		e.fatalf("Failed() returned nil")
	}
	return pub
}

func (p *publisherSuite[T]) checks() []check {
	return []check{
		{name: "required_validate_maxElementsFromPublisher", run: func(e *env) {
			if p.rawMax < 0 {
				e.Errorf("MaxElements is %d, want >= 0", p.rawMax)
			}
		}},
		{name: "required_validate_boundedDepthOfOnNextAndRequestRecursion", run: func(e *env) {
			if p.rawRec < 0 {
				e.Errorf("MaxRecursion is %d, want >= 0 (0 means 1)", p.rawRec)
			}
		}},
		{name: "required_createPublisher1MustProduceAStreamOfExactly1Element", run: func(e *env) {
			p.exactly(e, 1)
		}},
		{name: "required_createPublisher3MustProduceAStreamOfExactly3Elements", run: func(e *env) {
			p.exactly(e, 3)
		}},
		{name: "required_spec101_subscriptionRequestMustResultInTheCorrectNumberOfProducedElements", run: p.spec101},
		{name: "required_spec102_maySignalLessThanRequestedAndTerminateSubscription", run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 3, true))
			sub.request(10)
			sub.nextElements(3)
			sub.expectCompletion()
		}},
		{name: "stochastic_spec103_mustSignalOnMethodsSequentially", run: p.spec103},
		{name: "optional_spec104_mustSignalOnErrorWhenFails", run: func(e *env) {
			p.onSubscribeThenOnError(e, p.failedPublisher(e))
		}},
		{name: "required_spec105_mustSignalOnCompleteWhenFiniteStreamTerminates", run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 3, true))
			sub.requestNextElement()
			sub.requestNextElement()
			sub.requestNextElement()
			sub.requestEndOfStream()
			sub.expectNone("after OnComplete")
		}},
		{name: "optional_spec105_emptyStreamMustTerminateBySignallingOnComplete", optional: true, run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 0, true))
			sub.request(1)
			sub.expectCompletion()
			sub.expectNone("after OnComplete")
		}},
		{name: "untested_spec106_mustConsiderSubscriptionCancelledAfterOnErrorOrOnCompleteHasBeenCalled", run: func(e *env) {
			// Go: after OnComplete, Cancel and Request are no-ops.
			sub := subscribeProbe(e, p.active(e, 1, true))
			sub.request(10)
			sub.nextElement()
			sub.expectCompletion()
			sub.cancel()
			sub.request(1)
			sub.expectNone("after OnComplete, Cancel and Request(1)")
		}},
		{name: "required_spec107_mustNotEmitFurtherSignalsOnceOnCompleteHasBeenSignalled", run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 1, true))
			sub.request(10)
			sub.nextElement()
			sub.expectCompletion()
			sub.request(10)
			sub.expectNone("after OnComplete and Request(10)")
		}},
		{name: "untested_spec107_mustNotEmitFurtherSignalsOnceOnErrorHasBeenSignalled", run: func(e *env) {
			// Go: verified with the Failed publisher.
			sub := subscribeProbe(e, p.failedPublisher(e))
			sub.expectError()
			sub.request(10)
			sub.expectNone("after OnError and Request(10)")
		}},
		notVerified("untested_spec108_possiblyCanceledSubscriptionShouldNotReceiveOnErrorOrOnCompleteSignals",
			"a terminal signal may race with Cancel; the rule says SHOULD"),
		{name: "untested_spec109_subscribeShouldNotThrowNonFatalThrowable", run: func(e *env) {
			// Go: Subscribe with a subscriber must return without panicking,
			// which every test checks; this one checks it in isolation.
			subscribeProbe(e, p.active(e, 1, false))
			if p.failed != nil {
				sub := subscribeProbe(e, p.failedPublisher(e))
				sub.expectError()
			}
		}},
		{name: "required_spec109_subscribeThrowNPEOnNullSubscriber", run: func(e *env) {
			pub := p.active(e, 0, false)
			if flow.Catch(func() { pub.Subscribe(nil) }) == nil {
				e.Errorf("Subscribe(nil) returned normally, want a panic (rule 1.9)")
			}
		}},
		{name: "required_spec109_mustIssueOnSubscribeForNonNullSubscriber", run: func(e *env) {
			sub := startProbe(e, p.active(e, 0, false))
			sub.awaitSubscribed()
			// The probe reports any signal before OnSubscribe and a second
			// OnSubscribe as violations.
		}},
		{name: "required_spec109_mayRejectCallsToSubscribeIfPublisherIsUnableOrUnwillingToServeThemRejectionMustTriggerOnErrorAfterOnSubscribe", run: func(e *env) {
			p.onSubscribeThenOnError(e, p.failedPublisher(e))
		}},
		notVerified("untested_spec110_rejectASubscriptionRequestIfTheSameSubscriberSubscribesTwice",
			"subscribing the same subscriber twice is the caller's error (rule 2.12)"),
		{name: "optional_spec111_maySupportMultiSubscribe", optional: true, run: func(e *env) {
			pub := p.active(e, 1, false)
			subscribeProbe(e, pub)
			subscribeProbe(e, pub)
		}},
		{name: "optional_spec111_registeredSubscribersMustReceiveOnNextOrOnCompleteSignals", optional: true, run: func(e *env) {
			pub := p.active(e, 1, false)
			sub1 := subscribeProbe(e, pub)
			sub2 := subscribeProbe(e, pub)
			sub1.requestNextElementOrEnd()
			sub2.requestNextElementOrEnd()
		}},
		{name: "optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequenceToAllOfItsSubscribersWhenRequestingOneByOne", optional: true, run: p.multicastOneByOne},
		{name: "optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequenceToAllOfItsSubscribersWhenRequestingManyUpfront", optional: true, run: func(e *env) {
			p.multicastUpfront(e, false)
		}},
		{name: "optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequenceToAllOfItsSubscribersWhenRequestingManyUpfrontAndCompleteAsExpected", optional: true, run: func(e *env) {
			p.multicastUpfront(e, true)
		}},
		{name: "required_spec302_mustAllowSynchronousRequestCallsFromOnNextAndOnSubscribe", run: p.spec302},
		{name: "required_spec303_mustNotAllowUnboundedRecursion", run: p.spec303},
		notVerified("untested_spec304_requestShouldNotPerformHeavyComputations", "cost cannot be judged from outside"),
		notVerified("untested_spec305_cancelMustNotSynchronouslyPerformHeavyComputation", "cost cannot be judged from outside"),
		{name: "required_spec306_afterSubscriptionIsCancelledRequestMustBeNops", run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 3, false))
			sub.cancel()
			sub.request(1)
			sub.request(1)
			sub.request(1)
			sub.expectNone("after Cancel and Request(1) three times")
		}},
		{name: "required_spec307_afterSubscriptionIsCancelledAdditionalCancelationsMustBeNops", run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 1, false))
			sub.cancel()
			sub.cancel()
			sub.cancel()
			sub.expectNone("after Cancel three times")
		}},
		{name: "required_spec309_requestZeroMustSignalIllegalArgumentException", run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 10, false))
			sub.request(0)
			sub.expectErrorIs(flow.ErrNonPositiveRequest)
		}},
		{name: "required_spec309_requestNegativeNumberMustSignalIllegalArgumentException", run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 10, false))
			sub.request(math.MinInt64)
			sub.expectErrorIs(flow.ErrNonPositiveRequest)
		}},
		{name: "optional_spec309_requestNegativeNumberMaySignalIllegalArgumentExceptionWithSpecificMessage", optional: true, run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 10, false))
			sub.request(-1)
			err := sub.expectError()
			msg := err.Error()
			for _, want := range []string{"3.9", "non-positive subscription request", "negative subscription request"} {
				if strings.Contains(msg, want) {
					return
				}
			}
			e.Errorf("OnError(%v): the message names neither rule 3.9 nor a non-positive request", err)
		}},
		{name: "required_spec312_cancelMustMakeThePublisherToEventuallyStopSignaling", run: p.spec312},
		{name: "required_spec313_cancelMustMakeThePublisherEventuallyDropAllReferencesToTheSubscriber", run: p.spec313},
		{name: "required_spec317_mustSupportAPendingElementCountUpToLongMaxValue", run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 3, true))
			sub.request(flow.Unbounded)
			sub.nextElements(3)
			sub.expectCompletion()
		}},
		{name: "required_spec317_mustSupportACumulativePendingElementCountUpToLongMaxValue", run: func(e *env) {
			sub := subscribeProbe(e, p.active(e, 3, true))
			sub.request(math.MaxInt64 / 2)
			sub.request(math.MaxInt64 / 2)
			sub.request(1) // the demand is now exactly flow.Unbounded
			sub.nextElements(3)
			sub.expectCompletion()
		}},
		{name: "required_spec317_mustNotSignalOnErrorWhenPendingAboveLongMaxValue", run: p.spec317Above},
	}
}

// exactly checks that New(n) emits n items, one per Request(1), and then
// completes.
func (p *publisherSuite[T]) exactly(e *env, n int) {
	sub := subscribeProbe(e, p.active(e, int64(n), true))
	for i := range n {
		if _, ok := sub.requestNextElementOrEnd(); !ok {
			e.fatalf("OnComplete after %d items, want %d", i, n)
		}
	}
	sub.requestEndOfStream()
}

func (p *publisherSuite[T]) spec101(e *env) {
	sub := subscribeProbe(e, p.active(e, 5, false))
	sub.expectNone("before the first Request")
	sub.request(1)
	sub.nextElement()
	sub.expectNone("after the item of Request(1)")
	sub.request(1)
	sub.request(2)
	sub.nextElements(3)
	sub.expectNone("after the items of Request(1) and Request(2)")
}

func (p *publisherSuite[T]) spec103(e *env) {
	const iterations, elements = 100, 10
	o := defaultOptions()
	o.timeout, o.quiet = e.timeout, e.quiet
	o.requestOnNext = 1
	for i := range iterations {
		pub := p.active(e, elements, true)
		s := newSubscriber[T](e, 1, o)
		e.call("Subscribe", func() { pub.Subscribe(s) })
		ok := s.await(elements*e.timeout, func() bool { return s.terminal })
		s.close()
		switch {
		case !ok:
			e.Errorf("iteration %d of %d: no OnComplete after %d items", i+1, iterations, len(s.Items()))
		case s.Err() != nil:
			e.Errorf("iteration %d of %d: unexpected OnError(%v)", i+1, iterations, s.Err())
		case len(s.Violations()) == 0:
			continue
		}
		return // one failed iteration is enough
	}
}

// onSubscribeThenOnError expects OnSubscribe then OnError, each once.
func (p *publisherSuite[T]) onSubscribeThenOnError(e *env, pub flow.Publisher[T]) {
	sub := subscribeProbe(e, pub)
	sub.expectError()
	sub.expectNone("after OnError")
}

func (p *publisherSuite[T]) multicastOneByOne(e *env) {
	pub := p.active(e, 5, true)
	sub1 := subscribeProbe(e, pub)
	sub2 := subscribeProbe(e, pub)
	sub3 := subscribeProbe(e, pub)
	sub1.request(1)
	x := []T{sub1.nextElement()}
	sub2.request(2)
	y := sub2.nextElements(2)
	sub1.request(1)
	x = append(x, sub1.nextElement())
	sub3.request(3)
	z := sub3.nextElements(3)
	sub3.request(1)
	z = append(z, sub3.nextElement())
	sub3.request(1)
	z = append(z, sub3.nextElement())
	sub3.requestEndOfStream()
	sub2.request(3)
	y = append(y, sub2.nextElements(3)...)
	sub2.requestEndOfStream()
	sub1.request(2)
	x = append(x, sub1.nextElements(2)...)
	sub1.request(1)
	x = append(x, sub1.nextElement())
	sub1.requestEndOfStream()
	if !reflect.DeepEqual(x, y) {
		e.Errorf("subscribers 1 and 2 received different sequences: %v and %v", x, y)
	}
	if !reflect.DeepEqual(x, z) {
		e.Errorf("subscribers 1 and 3 received different sequences: %v and %v", x, z)
	}
}

func (p *publisherSuite[T]) multicastUpfront(e *env, complete bool) {
	pub := p.active(e, 3, complete)
	subs := []*probe[T]{subscribeProbe(e, pub), subscribeProbe(e, pub), subscribeProbe(e, pub)}
	for _, s := range subs {
		s.request(4)
	}
	var got [3][]T
	for i, s := range subs {
		got[i] = s.nextElements(3)
	}
	if complete {
		for _, s := range subs {
			s.expectCompletion()
		}
	}
	if !reflect.DeepEqual(got[0], got[1]) || !reflect.DeepEqual(got[1], got[2]) {
		e.Errorf("subscribers received different sequences: %v, %v and %v", got[0], got[1], got[2])
	}
}

func (p *publisherSuite[T]) spec302(e *env) {
	const n = 6
	pub := p.active(e, n, false)
	sub := newProbe[T](e)
	sub.hookSubscribe = func() {
		sub.Request(1)
		sub.Request(1)
		sub.Request(1)
	}
	sub.hookNext = func(T) { sub.Request(1) }
	e.Cleanup(sub.finish)
	e.call("Subscribe", func() { pub.Subscribe(sub.Subscriber) })
	sub.awaitSubscribed()
	if !sub.await(e.timeout, func() bool { return sub.items >= n || sub.terminal }) {
		e.fatalf("%d items within %v, want %d", len(sub.Items()), e.timeout, n)
	}
	sub.settle()
}

func (p *publisherSuite[T]) spec303(e *env) {
	limit := int64(p.maxRec) + 1
	pub := p.active(e, limit, false)
	sub := newProbe[T](e)
	var depth atomic.Int32
	var received atomic.Int64
	var stopped atomic.Bool
	sub.hookNext = func(T) {
		d := depth.Add(1)
		defer depth.Add(-1)
		n := received.Add(1)
		switch {
		case int(d) > p.maxRec:
			e.Errorf("OnNext re-entered from a Request made in OnNext: recursion depth %d, MaxRecursion is %d (rule 3.3)", d, p.maxRec)
		case n < limit:
			sub.Request(1) // the publisher must not call OnNext from inside
			return
		}
		stopped.Store(true)
		sub.poke()
	}
	e.Cleanup(sub.finish)
	e.call("Subscribe", func() { pub.Subscribe(sub.Subscriber) })
	sub.awaitSubscribed()
	sub.request(1)
	if !sub.await(e.timeout, func() bool { return stopped.Load() || sub.terminal }) {
		e.Errorf("neither %d items nor a terminal signal within %v", limit, e.timeout)
	}
}

func (p *publisherSuite[T]) spec312(e *env) {
	const demand1, demand2 = 10, 5
	sub := subscribeProbe(e, p.active(e, 20, false))
	sub.request(demand1)
	sub.request(demand2)
	sub.nextElement() // cancel only once the publisher is emitting
	sub.cancel()
	if !sub.settle() {
		e.Errorf("still signalling %v after Cancel (rule 3.12)", e.timeout)
	}
	if n := len(sub.Items()); n > demand1+demand2 {
		e.Errorf("%d items, more than the %d requested (rule 3.12)", n, demand1+demand2)
	}
}

func (p *publisherSuite[T]) spec313(e *env) {
	pub := p.active(e, 3, false)
	ref, subscription := subscribeAndCancel(e, pub)
	collected := false
	for range 10 {
		runtime.GC()
		if ref.Value() == nil {
			collected = true
			break
		}
		runtime.Gosched()
	}
	// The publisher and the cancelled Subscription stay reachable: neither
	// may keep the subscriber alive.
	runtime.KeepAlive(pub)
	runtime.KeepAlive(subscription)
	if !collected {
		e.Errorf("the subscriber is still reachable after Cancel and 10 garbage collections: the publisher or its Subscription keeps a reference to it (rule 3.13)")
	}
}

// subscribeAndCancel subscribes a Subscriber to pub, receives one item and
// cancels. It returns the Subscriber only as a weak pointer, and the
// Subscription it was given.
//
//go:noinline
func subscribeAndCancel[T any](e *env, pub flow.Publisher[T]) (weak.Pointer[Subscriber[T]], flow.Subscription) {
	sub := newProbe[T](e) // no cleanup: nothing but the publisher may hold it
	e.call("Subscribe", func() { pub.Subscribe(sub.Subscriber) })
	sub.awaitSubscribed()
	subscription := sub.subscription()
	e.Cleanup(func() { subscription.Cancel() })
	sub.request(1)
	sub.nextElement()
	sub.cancel()
	if err := sub.Err(); err != nil {
		e.Errorf("unexpected OnError(%v)", err)
	}
	return weak.Make(sub.Subscriber), subscription
}

// runaway is how many items after Cancel make the kit abandon a publisher
// that ignores Cancel under unbounded demand.
const runaway = 1000

func (p *publisherSuite[T]) spec317Above(e *env) {
	pub := p.active(e, math.MaxInt32, false)
	sub := newProbe[T](e)
	var mu sync.Mutex
	calls := 10 // each OnNext requests Long.MAX_VALUE-1 until this runs out
	var cancelled atomic.Bool
	sub.hookNext = func(T) {
		mu.Lock()
		calls--
		n := calls
		mu.Unlock()
		switch {
		case n >= 0:
			sub.Request(flow.Unbounded - 1)
		case !cancelled.Swap(true):
			sub.Cancel()
			sub.poke()
		case n == -runaway:
			// The demand is unbounded and the publisher ignored Cancel: a
			// synchronous one would emit forever from inside our Request.
			e.Errorf("%d items after Cancel: the publisher ignores Cancel (rule 3.12)", runaway)
			panic(failNow{})
		}
	}
	e.Cleanup(sub.finish)
	e.call("Subscribe", func() { pub.Subscribe(sub.Subscriber) })
	sub.awaitSubscribed()
	sub.request(1)
	if !sub.await(e.timeout, func() bool { return cancelled.Load() || sub.terminal }) {
		e.Errorf("%d items within %v although the demand exceeded Long.MAX_VALUE (rule 3.17)", len(sub.Items()), e.timeout)
	}
	sub.settle()
	if err := sub.Err(); err != nil {
		e.Errorf("OnError(%v) once the demand exceeded Long.MAX_VALUE (rule 3.17)", err)
		sub.mu.Lock()
		sub.cur = len(sub.signals) // reported here
		sub.mu.Unlock()
	}
}
