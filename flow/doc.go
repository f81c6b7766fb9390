// Package flow defines the Reactive Streams protocol that every sluice
// stage speaks, and the small helpers that stages share.
//
// # The protocol
//
// A [Publisher] emits items to a [Subscriber] only as fast as the
// subscriber asks for them: the subscriber receives a [Subscription] in
// OnSubscribe and calls Request(n) to allow n more OnNext calls. Demand is
// additive and saturates at [Unbounded]. A subscription ends with exactly
// one OnError or OnComplete, or with Cancel from the subscriber. This is
// the Reactive Streams 1.0.4 specification translated to Go; the rules are
// quoted by number throughout sluice, and docs/spec-compliance.md maps each
// of them to the code and the test that proves it.
//
// # Building stages
//
// Emission must be serial (rule 1.3), and a Request made from inside
// OnNext must not call OnNext again (rule 3.3). [Demand] and [WIP] give a
// stage a drain loop that satisfies both without locks, channels or
// allocation: whoever moves the counter off zero runs the loop, and
// everyone else only records work for it. [AddCap] is the saturating
// demand arithmetic of rule 3.17.
//
// A panic in user code becomes a [*PanicError] that travels downstream
// through OnError ([Catch], [NewPanicError]). [PublisherFunc] and
// [SubscriberFuncs] adapt plain functions; [Reject] and [Complete] end a
// subscriber at subscription time.
//
// Package flow/flowtest verifies that a Publisher, Subscriber or Processor
// follows the protocol.
package flow
