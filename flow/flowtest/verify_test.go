package flowtest

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
)

// failedNames returns the names of the checks that failed, sorted.
func failedNames(out map[string]outcome) []string {
	var names []string
	for name, o := range out {
		if o.failed() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// skippedNames returns the names of the checks that were skipped, sorted.
func skippedNames(out map[string]outcome) []string {
	var names []string
	for name, o := range out {
		if o.skip != "" && !o.failed() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// logFailures logs why each check failed, to explain a diff.
func logFailures(t *testing.T, out map[string]outcome) {
	t.Helper()
	for _, name := range failedNames(out) {
		t.Logf("%s: %s", name, strings.Join(out[name].errs, " | "))
	}
}

// run runs checks inside a synctest bubble, so that the timeouts of broken
// subjects pass on the fake clock at once.
func run(t *testing.T, checks []check, tm timing) map[string]outcome {
	t.Helper()
	var out map[string]outcome
	synctest.Test(t, func(t *testing.T) {
		out = runAll(checks, tm, nil)
	})
	return out
}

func TestVerifyPublisherPassesConformingPublishers(t *testing.T) {
	for name, cfg := range map[string]PublisherConfig[int64]{
		"range publisher with Demand as the loop token": rangeConfig(pubOK),
		"asynchronous publisher": {
			New:    func(n int64) flow.Publisher[int64] { return asyncRange{n: n} },
			Failed: func() flow.Publisher[int64] { return failing },
		},
		"kit source": {
			New: func(n int64) flow.Publisher[int64] {
				return &source[int64]{n: n, elem: func(i int64) int64 { return i }}
			},
			Failed: func() flow.Publisher[int64] { return &source[int64]{err: errTestFailed} },
		},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			VerifyPublisher(t, cfg)
			// The only real-time waits are the 20ms no-signal windows.
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("VerifyPublisher took %v on a synchronous publisher, want < 2s", d)
			}
		})
	}
}

func TestVerifyPublisherSkipsWhatTheTCKDoesNotVerify(t *testing.T) {
	out := run(t, publisherChecks(rangeConfig(pubOK)), newTiming(0, 0))
	want := []string{
		"untested_spec108_possiblyCanceledSubscriptionShouldNotReceiveOnErrorOrOnCompleteSignals",
		"untested_spec110_rejectASubscriptionRequestIfTheSameSubscriberSubscribesTwice",
		"untested_spec304_requestShouldNotPerformHeavyComputations",
		"untested_spec305_cancelMustNotSynchronouslyPerformHeavyComputation",
	}
	if diff := cmp.Diff(want, skippedNames(out)); diff != "" {
		t.Errorf("skipped checks (-want +got):\n%s", diff)
	}
	if got := failedNames(out); len(got) > 0 {
		logFailures(t, out)
		t.Errorf("failed checks: %v", got)
	}
	if len(out) != 38 {
		t.Errorf("%d checks, want the 38 of PublisherVerification", len(out))
	}
}

func TestVerifyPublisherCatchesBrokenPublishers(t *testing.T) {
	completion := []string{
		"required_createPublisher1MustProduceAStreamOfExactly1Element",
		"required_createPublisher3MustProduceAStreamOfExactly3Elements",
		"required_spec102_maySignalLessThanRequestedAndTerminateSubscription",
		"required_spec105_mustSignalOnCompleteWhenFiniteStreamTerminates",
		"required_spec107_mustNotEmitFurtherSignalsOnceOnCompleteHasBeenSignalled",
		"required_spec317_mustSupportACumulativePendingElementCountUpToLongMaxValue",
		"required_spec317_mustSupportAPendingElementCountUpToLongMaxValue",
		"stochastic_spec103_mustSignalOnMethodsSequentially",
		"untested_spec106_mustConsiderSubscriptionCancelledAfterOnErrorOrOnCompleteHasBeenCalled",
	}
	tests := []struct {
		name string
		bug  pubBug
		want []string
	}{
		{
			// Every check that requests less than the stream holds sees
			// the extra item; 103 and 302 re-request in each OnNext, which
			// covers it.
			name: "emits more than requested",
			bug:  pubExtraItem,
			want: []string{
				"required_createPublisher3MustProduceAStreamOfExactly3Elements",
				"required_spec101_subscriptionRequestMustResultInTheCorrectNumberOfProducedElements",
				"required_spec105_mustSignalOnCompleteWhenFiniteStreamTerminates",
				"required_spec312_cancelMustMakeThePublisherToEventuallyStopSignaling",
				"required_spec313_cancelMustMakeThePublisherEventuallyDropAllReferencesToTheSubscriber",
			},
		},
		{
			name: "calls OnNext recursively from Request",
			bug:  pubRecursive,
			want: []string{"required_spec303_mustNotAllowUnboundedRecursion"},
		},
		{
			// The optional 3.9 test is skipped, as in the TCK.
			name: "ignores Request(0) and negative requests",
			bug:  pubIgnoreNonPositive,
			want: []string{
				"required_spec309_requestNegativeNumberMustSignalIllegalArgumentException",
				"required_spec309_requestZeroMustSignalIllegalArgumentException",
			},
		},
		{
			// 312 passes: a synchronous publisher has emitted the whole
			// demand before Cancel. 317 requests without bound and is
			// abandoned after 1000 items past Cancel.
			name: "signals after Cancel",
			bug:  pubIgnoreCancel,
			want: []string{
				"required_spec306_afterSubscriptionIsCancelledRequestMustBeNops",
				"required_spec313_cancelMustMakeThePublisherEventuallyDropAllReferencesToTheSubscriber",
				"required_spec317_mustNotSignalOnErrorWhenPendingAboveLongMaxValue",
			},
		},
		{
			name: "keeps the subscriber after Cancel",
			bug:  pubKeepSubscriber,
			want: []string{"required_spec313_cancelMustMakeThePublisherEventuallyDropAllReferencesToTheSubscriber"},
		},
		{
			// Every required check that waits for OnComplete; the optional
			// ones are skipped.
			name: "never completes",
			bug:  pubNeverComplete,
			want: completion,
		},
		{
			// Every check that sees OnComplete, and 109, 302 and 303, whose
			// streams complete while the check still listens.
			name: "OnNext after OnComplete",
			bug:  pubNextAfterComplete,
			want: sorted(append(slices.Clone(completion),
				"required_spec109_mustIssueOnSubscribeForNonNullSubscriber",
				"required_spec302_mustAllowSynchronousRequestCallsFromOnNextAndOnSubscribe",
				"required_spec303_mustNotAllowUnboundedRecursion",
			)),
		},
		{
			// Every check whose subscriber requests from inside OnNext.
			name: "OnNext on another goroutine while OnNext runs",
			bug:  pubOtherGoroutine,
			want: []string{
				"required_spec302_mustAllowSynchronousRequestCallsFromOnNextAndOnSubscribe",
				"required_spec303_mustNotAllowUnboundedRecursion",
				"required_spec317_mustNotSignalOnErrorWhenPendingAboveLongMaxValue",
				"stochastic_spec103_mustSignalOnMethodsSequentially",
			},
		},
		{
			name: "Subscribe(nil) does not panic",
			bug:  pubSubscribeNilOK,
			want: []string{"required_spec109_subscribeThrowNPEOnNullSubscriber"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := run(t, publisherChecks(rangeConfig(tt.bug)), newTiming(0, 0))
			if diff := cmp.Diff(tt.want, failedNames(out)); diff != "" {
				logFailures(t, out)
				t.Errorf("failed checks (-want +got):\n%s", diff)
			}
		})
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

func TestVerifyPublisherFailureMessagesNameTheRule(t *testing.T) {
	tests := []struct {
		bug   pubBug
		check string
		want  string
	}{
		{pubExtraItem, "required_spec101_subscriptionRequestMustResultInTheCorrectNumberOfProducedElements",
			"flowtest: protocol violation: OnNext(1) is item 2, but only 1 were requested (rule 1.1)"},
		{pubRecursive, "required_spec303_mustNotAllowUnboundedRecursion",
			"OnNext re-entered from a Request made in OnNext: recursion depth 2, MaxRecursion is 1 (rule 3.3)"},
		{pubIgnoreNonPositive, "required_spec309_requestZeroMustSignalIllegalArgumentException",
			"no signal within 1s, want OnError"},
		{pubKeepSubscriber, "required_spec313_cancelMustMakeThePublisherEventuallyDropAllReferencesToTheSubscriber",
			"the subscriber is still reachable after Cancel and 10 garbage collections: the publisher or its Subscription keeps a reference to it (rule 3.13)"},
		{pubIgnoreCancel, "required_spec317_mustNotSignalOnErrorWhenPendingAboveLongMaxValue",
			"1000 items after Cancel: the publisher ignores Cancel (rule 3.12)"},
		{pubNextAfterComplete, "required_spec107_mustNotEmitFurtherSignalsOnceOnCompleteHasBeenSignalled",
			"flowtest: protocol violation: OnNext(1) after OnComplete (rule 1.7)"},
		{pubOtherGoroutine, "required_spec302_mustAllowSynchronousRequestCallsFromOnNextAndOnSubscribe",
			"flowtest: protocol violation: OnNext delivered on another goroutine while a signal handler was still running (rule 1.3)"},
		{pubSubscribeNilOK, "required_spec109_subscribeThrowNPEOnNullSubscriber",
			"Subscribe(nil) returned normally, want a panic (rule 1.9)"},
	}
	for _, tt := range tests {
		t.Run(tt.check, func(t *testing.T) {
			var c check
			for _, ck := range publisherChecks(rangeConfig(tt.bug)) {
				if ck.name == tt.check {
					c = ck
				}
			}
			var o outcome
			synctest.Test(t, func(t *testing.T) { o = runCheck(c, newTiming(0, 0)) })
			if len(o.errs) == 0 || o.errs[0] != tt.want {
				t.Errorf("first error = %q, want %q (all: %q)", first(o.errs), tt.want, o.errs)
			}
		})
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func TestVerifyPublisherConfiguration(t *testing.T) {
	base := rangeConfig(pubOK)
	tests := []struct {
		name        string
		edit        func(*PublisherConfig[int64])
		wantFailed  []string
		wantSkipped []string // besides the four the TCK does not verify
	}{
		{
			name: "no Failed publisher skips the tests that need one",
			edit: func(c *PublisherConfig[int64]) { c.Failed = nil },
			wantSkipped: []string{
				"optional_spec104_mustSignalOnErrorWhenFails",
				"required_spec109_mayRejectCallsToSubscribeIfPublisherIsUnableOrUnwillingToServeThemRejectionMustTriggerOnErrorAfterOnSubscribe",
				"untested_spec107_mustNotEmitFurtherSignalsOnceOnErrorHasBeenSignalled",
			},
		},
		{
			name: "MaxElements 3 skips the tests that need more items",
			edit: func(c *PublisherConfig[int64]) { c.MaxElements = 3 },
			wantSkipped: []string{
				"optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequenceToAllOfItsSubscribersWhenRequestingOneByOne",
				"optional_spec309_requestNegativeNumberMaySignalIllegalArgumentExceptionWithSpecificMessage",
				"required_spec101_subscriptionRequestMustResultInTheCorrectNumberOfProducedElements",
				"required_spec302_mustAllowSynchronousRequestCallsFromOnNextAndOnSubscribe",
				"required_spec309_requestNegativeNumberMustSignalIllegalArgumentException",
				"required_spec309_requestZeroMustSignalIllegalArgumentException",
				"required_spec312_cancelMustMakeThePublisherToEventuallyStopSignaling",
				"required_spec317_mustNotSignalOnErrorWhenPendingAboveLongMaxValue",
				"stochastic_spec103_mustSignalOnMethodsSequentially",
			},
		},
		{
			name: "an Infinite publisher skips the tests that need OnComplete",
			edit: func(c *PublisherConfig[int64]) {
				c.Infinite = true
				c.New = func(n int64) flow.Publisher[int64] { return rangePub{n: n, bug: pubNeverComplete} }
			},
			wantSkipped: []string{
				"optional_spec105_emptyStreamMustTerminateBySignallingOnComplete",
				"optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequenceToAllOfItsSubscribersWhenRequestingManyUpfrontAndCompleteAsExpected",
				"optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequenceToAllOfItsSubscribersWhenRequestingOneByOne",
				"required_createPublisher1MustProduceAStreamOfExactly1Element",
				"required_createPublisher3MustProduceAStreamOfExactly3Elements",
				"required_spec102_maySignalLessThanRequestedAndTerminateSubscription",
				"required_spec105_mustSignalOnCompleteWhenFiniteStreamTerminates",
				"required_spec107_mustNotEmitFurtherSignalsOnceOnCompleteHasBeenSignalled",
				"required_spec317_mustSupportACumulativePendingElementCountUpToLongMaxValue",
				"required_spec317_mustSupportAPendingElementCountUpToLongMaxValue",
				"stochastic_spec103_mustSignalOnMethodsSequentially",
				"untested_spec106_mustConsiderSubscriptionCancelledAfterOnErrorOrOnCompleteHasBeenCalled",
			},
		},
		{
			name:       "negative MaxElements and MaxRecursion fail validation",
			edit:       func(c *PublisherConfig[int64]) { c.MaxElements, c.MaxRecursion = -1, -1 },
			wantFailed: []string{"required_validate_boundedDepthOfOnNextAndRequestRecursion", "required_validate_maxElementsFromPublisher"},
		},
		{
			// Naive recursion of depth 3 for 3 items exceeds 2.
			name: "MaxRecursion bounds the recursion depth",
			edit: func(c *PublisherConfig[int64]) {
				c.MaxRecursion = 2
				c.New = func(n int64) flow.Publisher[int64] { return rangePub{n: n, bug: pubRecursive} }
			},
			wantFailed: []string{"required_spec303_mustNotAllowUnboundedRecursion"},
		},
	}
	notVerified := []string{
		"untested_spec108_possiblyCanceledSubscriptionShouldNotReceiveOnErrorOrOnCompleteSignals",
		"untested_spec110_rejectASubscriptionRequestIfTheSameSubscriberSubscribesTwice",
		"untested_spec304_requestShouldNotPerformHeavyComputations",
		"untested_spec305_cancelMustNotSynchronouslyPerformHeavyComputation",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.edit(&cfg)
			out := run(t, publisherChecks(cfg), newTiming(0, 0))
			if diff := cmp.Diff(tt.wantFailed, failedNames(out)); diff != "" {
				logFailures(t, out)
				t.Errorf("failed checks (-want +got):\n%s", diff)
			}
			want := sorted(append(slices.Clone(tt.wantSkipped), notVerified...))
			if diff := cmp.Diff(want, skippedNames(out)); diff != "" {
				t.Errorf("skipped checks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifySubscriberPassesConformingSubscribers(t *testing.T) {
	t.Run("subscriber", func(t *testing.T) { VerifySubscriber(t, collectorConfig(subOK)) })
	t.Run("sink", func(t *testing.T) {
		VerifySubscriber(t, SubscriberConfig[int64]{Sink: drainSink(false), Element: func(i int64) int64 { return i }})
	})
}

func TestVerifySubscriberSkips(t *testing.T) {
	notVerified := []string{
		"required_spec213_blackbox_onNext_mustThrowNullPointerExceptionWhenParametersAreNull",
		"untested_spec202_blackbox_shouldAsynchronouslyDispatch",
		"untested_spec204_blackbox_mustConsiderTheSubscriptionAsCancelledInAfterRecievingOnCompleteOrOnError",
		"untested_spec211_blackbox_mustMakeSureThatAllCallsOnItsMethodsHappenBeforeTheProcessingOfTheRespectiveEvents",
		"untested_spec212_blackbox_mustNotCallOnSubscribeMoreThanOnceBasedOnObjectEquality",
		"untested_spec213_blackbox_failingOnSignalInvocation",
		"untested_spec301_blackbox_mustNotBeCalledOutsideSubscriberContext",
		"untested_spec308_blackbox_requestMustRegisterGivenNumberElementsToBeProduced",
		"untested_spec314_blackbox_cancelMayCauseThePublisherToShutdownIfNoOtherSubscriptionExists",
		"untested_spec315_blackbox_cancelMustNotThrowExceptionAndMustSignalOnError",
		"untested_spec316_blackbox_requestMustNotThrowExceptionAndMustOnErrorTheSubscriber",
	}
	needSink := []string{
		"untested_spec206_blackbox_mustCallSubscriptionCancelIfItIsNoLongerValid",
		"untested_spec208_blackbox_mustBePreparedToReceiveOnNextSignalsAfterHavingCalledSubscriptionCancel",
	}
	t.Run("subscriber", func(t *testing.T) {
		out := run(t, subscriberChecks(collectorConfig(subOK)), newTiming(0, 0))
		if diff := cmp.Diff(sorted(append(slices.Clone(notVerified), needSink...)), skippedNames(out)); diff != "" {
			t.Errorf("skipped checks (-want +got):\n%s", diff)
		}
		if len(out) != 26 {
			t.Errorf("%d checks, want the 26 of SubscriberBlackboxVerification", len(out))
		}
	})
	t.Run("sink", func(t *testing.T) {
		cfg := SubscriberConfig[int64]{Sink: drainSink(false), Element: func(i int64) int64 { return i }}
		out := run(t, subscriberChecks(cfg), newTiming(0, 0))
		if diff := cmp.Diff(notVerified, skippedNames(out)); diff != "" {
			t.Errorf("skipped checks (-want +got):\n%s", diff)
		}
	})
}

func TestVerifySubscriberCatchesBrokenSubscribers(t *testing.T) {
	// Every check that delivers OnComplete.
	completes := []string{
		"required_spec201_blackbox_mustSignalDemandViaSubscriptionRequest",
		"required_spec203_blackbox_mustNotCallMethodsOnSubscriptionOrPublisherInOnComplete",
		"required_spec205_blackbox_mustCallSubscriptionCancelIfItAlreadyHasAnSubscriptionAndReceivesAnotherOnSubscribeSignal",
		"required_spec209_blackbox_mustBePreparedToReceiveAnOnCompleteSignalWithPrecedingRequestCall",
		"required_spec209_blackbox_mustBePreparedToReceiveAnOnCompleteSignalWithoutPrecedingRequestCall",
		"untested_spec207_blackbox_mustEnsureAllCallsOnItsSubscriptionTakePlaceFromTheSameThreadOrTakeCareOfSynchronization",
		"untested_spec310_blackbox_requestMaySynchronouslyCallOnNextOnSubscriber",
		"untested_spec311_blackbox_requestMaySynchronouslyCallOnCompleteOrOnError",
	}
	tests := []struct {
		name string
		cfg  SubscriberConfig[int64]
		want []string
	}{
		{
			name: "never requests",
			cfg:  collectorConfig(subNeverRequests),
			want: []string{
				"required_spec201_blackbox_mustSignalDemandViaSubscriptionRequest",
				"required_spec209_blackbox_mustBePreparedToReceiveAnOnCompleteSignalWithPrecedingRequestCall",
				"required_spec210_blackbox_mustBePreparedToReceiveAnOnErrorSignalWithPrecedingRequestCall",
				"untested_spec207_blackbox_mustEnsureAllCallsOnItsSubscriptionTakePlaceFromTheSameThreadOrTakeCareOfSynchronization",
				"untested_spec310_blackbox_requestMaySynchronouslyCallOnNextOnSubscriber",
				"untested_spec311_blackbox_requestMaySynchronouslyCallOnCompleteOrOnError",
			},
		},
		{
			name: "keeps a second Subscription",
			cfg:  collectorConfig(subKeepsSecond),
			want: []string{"required_spec205_blackbox_mustCallSubscriptionCancelIfItAlreadyHasAnSubscriptionAndReceivesAnotherOnSubscribeSignal"},
		},
		{
			name: "accepts nil arguments",
			cfg:  collectorConfig(subAcceptsNil),
			want: []string{
				"required_spec213_blackbox_onError_mustThrowNullPointerExceptionWhenParametersAreNull",
				"required_spec213_blackbox_onSubscribe_mustThrowNullPointerExceptionWhenParametersAreNull",
			},
		},
		{
			name: "requests from inside OnComplete",
			cfg:  collectorConfig(subRequestsOnComplete),
			want: completes,
		},
		{
			name: "sink that ignores the cancellation of its context",
			cfg:  SubscriberConfig[int64]{Sink: drainSink(true), Element: func(i int64) int64 { return i }},
			want: []string{
				"untested_spec206_blackbox_mustCallSubscriptionCancelIfItIsNoLongerValid",
				"untested_spec208_blackbox_mustBePreparedToReceiveOnNextSignalsAfterHavingCalledSubscriptionCancel",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := run(t, subscriberChecks(tt.cfg), newTiming(0, 0))
			if diff := cmp.Diff(tt.want, failedNames(out)); diff != "" {
				logFailures(t, out)
				t.Errorf("failed checks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyProcessorPassesAConformingProcessor(t *testing.T) {
	VerifyProcessor(t, identityConfig(procOK))
}

func TestVerifyProcessorChecks(t *testing.T) {
	out := run(t, processorChecks(identityConfig(procOK)), newTiming(0, 0))
	if got := failedNames(out); len(got) > 0 {
		logFailures(t, out)
		t.Errorf("failed checks: %v", got)
	}
	// 38 publisher, 3 processor and 27 whitebox subscriber tests.
	if len(out) != 68 {
		t.Errorf("%d checks, want 68", len(out))
	}
	// A unicast processor: the multi-subscriber tests are skipped.
	for _, name := range []string{
		"optional_spec111_maySupportMultiSubscribe",
		"required_spec104_mustCallOnErrorOnAllItsSubscribersIfItEncountersANonRecoverableError",
		"required_mustRequestFromUpstreamForElementsThatHaveBeenRequestedLongAgo",
	} {
		if out[name].skip == "" {
			t.Errorf("%s was not skipped", name)
		}
	}
}

func TestVerifyProcessorCatchesAProcessorThatDropsErrors(t *testing.T) {
	out := run(t, processorChecks(identityConfig(procDropsErrors)), newTiming(0, 0))
	want := []string{
		"mustImmediatelyPassOnOnErrorEventsReceivedFromItsUpstreamToItsDownstream",
		"optional_spec104_mustSignalOnErrorWhenFails",
		"required_spec109_mayRejectCallsToSubscribeIfPublisherIsUnableOrUnwillingToServeThemRejectionMustTriggerOnErrorAfterOnSubscribe",
		"required_spec210_mustBePreparedToReceiveAnOnErrorSignalWithPrecedingRequestCall",
		"required_spec210_mustBePreparedToReceiveAnOnErrorSignalWithoutPrecedingRequestCall",
		"untested_spec107_mustNotEmitFurtherSignalsOnceOnErrorHasBeenSignalled",
		"untested_spec109_subscribeShouldNotThrowNonFatalThrowable",
	}
	if diff := cmp.Diff(want, failedNames(out)); diff != "" {
		logFailures(t, out)
		t.Errorf("failed checks (-want +got):\n%s", diff)
	}
}

func TestUnknownSkipNames(t *testing.T) {
	checks := publisherChecks(rangeConfig(pubOK))
	got := unknownSkips(checks, map[string]string{
		"required_spec309_requestZeroMustSignalIllegalArgumentException": "known",
		"required_spec309_requestZeroMustSignalIllegalArgumentExceptio":  "typo",
	})
	want := []string{"required_spec309_requestZeroMustSignalIllegalArgumentExceptio"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unknownSkips (-want +got):\n%s", diff)
	}
}

func TestSkipEntriesAreReportedAsSkipped(t *testing.T) {
	name := "required_spec313_cancelMustMakeThePublisherEventuallyDropAllReferencesToTheSubscriber"
	var out map[string]outcome
	synctest.Test(t, func(t *testing.T) {
		out = runAll(publisherChecks(rangeConfig(pubKeepSubscriber)), newTiming(0, 0), map[string]string{name: "reason"})
	})
	if diff := cmp.Diff(outcome{skip: "reason"}, out[name], cmp.AllowUnexported(outcome{})); diff != "" {
		t.Errorf("outcome (-want +got):\n%s", diff)
	}
}

func TestCheckNamesAreUniqueAndNameTheirRule(t *testing.T) {
	for kind, checks := range map[string][]check{
		"publisher":  publisherChecks(rangeConfig(pubOK)),
		"subscriber": subscriberChecks(collectorConfig(subOK)),
		"processor":  processorChecks(identityConfig(procOK)),
	} {
		seen := map[string]bool{}
		for _, c := range checks {
			if seen[c.name] {
				t.Errorf("%s: duplicate check %s", kind, c.name)
			}
			seen[c.name] = true
			if !strings.Contains(c.name, "_spec") && !strings.Contains(c.name, "validate_") &&
				!strings.Contains(c.name, "createPublisher") && !strings.Contains(c.name, "Whitebox") &&
				!strings.HasPrefix(c.name, "must") && !strings.HasPrefix(c.name, "required_must") {
				t.Errorf("%s: %s names no rule", kind, c.name)
			}
		}
	}
}
