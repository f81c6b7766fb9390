// Package flowtest checks that publishers, subscribers and processors
// follow the Reactive Streams protocol of package flow. It is a Go port of
// the Reactive Streams 1.0.4 TCK, plus a recording [Subscriber] for
// ordinary tests.
//
// # Verifying a publisher
//
// Give [VerifyPublisher] a function that makes a publisher of exactly n
// items; it runs every test of the TCK's PublisherVerification as a
// subtest:
//
//	func TestCounterConforms(t *testing.T) {
//		flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int64]{
//			New:    func(n int64) flow.Publisher[int64] { return NewCounter(n) },
//			Failed: func() flow.Publisher[int64] { return NewFailing(errBoom) },
//		})
//	}
//
// [PublisherConfig] says what the publisher can do (MaxElements, Infinite,
// MaxRecursion) and which tests to skip, with a reason.
//
// # Verifying a subscriber, a sink or a processor
//
// [VerifySubscriber] plays the publisher to a subscriber made by
// [SubscriberConfig].New, or to a blocking sink given as
// [SubscriberConfig].Sink, which the kit runs on a goroutine of its own and
// stops through its context at the end of each test:
//
//	flowtest.VerifySubscriber(t, flowtest.SubscriberConfig[int]{
//		Sink:    func(ctx context.Context, pub flow.Publisher[int]) error { return Drain(ctx, pub) },
//		Element: func(i int64) int { return int(i) },
//	})
//
// [VerifyProcessor]
// runs the publisher tests on a processor fed by the kit, the subscriber
// tests on its upstream side, and the TCK's processor tests.
//
// # Reading the results
//
// Each subtest is named exactly after the TCK method it ports, so the
// rule it covers is in its name: required_spec309_requestZeroMustSignalIllegalArgumentException
// covers rule 3.9. Tests prefixed optional_ are skipped, not failed, when
// the optional behaviour is missing; untested_ tests are those the TCK
// does not verify, and the kit runs the ones it can check in Go (rule
// 3.13 with a weak pointer, rules 2.6 and 2.8 on a sink's context, rules
// 3.10 and 3.11 with a synchronous publisher) and skips the others with a
// reason. Tests of null arguments apply to OnSubscribe(nil), OnError(nil)
// and Subscribe(nil), which must panic, and not to items.
//
// A failure names the rule, for example
//
//	flowtest: protocol violation: OnNext(3) is item 3, but only 2 were requested (rule 1.1)
//
// # The test Subscriber
//
// [NewSubscriber] returns a [Subscriber] that records every [Signal], lets
// a test drive demand, waits for signals with a timeout (also inside a
// testing/synctest bubble), and reports each protocol violation of the
// publisher feeding it to the test at once.
//
// # Timeouts
//
// The kit waits up to Timeout (1s) for a signal it expects and
// NoSignalTimeout (20ms) to conclude that none is coming. These are its
// only real-time waits: they slow a test but never fail a correct
// publisher. The publisher tests run in about 0.3s on a synchronous
// publisher.
package flowtest
