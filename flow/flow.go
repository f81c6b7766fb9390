package flow

import "math"

// Publisher is a potentially unbounded source of items that emits them to
// each [Subscriber] according to the demand that subscriber signals through
// [Subscription.Request].
//
// Subscribe may be called any number of times; each call starts a new
// subscription. Subscribe(nil) panics (rule 1.9). A publisher that refuses
// a subscriber calls OnSubscribe and then OnError on it; it never returns an
// error from Subscribe.
type Publisher[T any] interface {
	Subscribe(s Subscriber[T])
}

// Subscriber receives the signals of one subscription, always serially
// (rule 1.3): OnSubscribe exactly once, then OnNext at most as many times
// as it requested, then at most one of OnError or OnComplete.
//
// A Subscriber must not block the publisher for long in any method, and
// may call Request and Cancel from inside OnNext: sluice publishers never
// re-enter OnNext from such a call (rule 3.3).
type Subscriber[T any] interface {
	// OnSubscribe hands the subscriber its Subscription. Nothing is
	// emitted until the subscriber calls Request. Calling it with nil
	// panics (rule 2.13).
	OnSubscribe(s Subscription)
	// OnNext delivers one item, in response to demand.
	OnNext(item T)
	// OnError ends the subscription with a failure. Calling it with nil
	// panics (rule 2.13).
	OnError(err error)
	// OnComplete ends the subscription successfully.
	OnComplete()
}

// Subscription links one Subscriber to one Publisher.
//
// Every Subscription that sluice creates is goroutine-safe: Request and
// Cancel may be called from any goroutine, concurrently with each other and
// with signals in flight. That is stronger than rule 2.7 requires; code
// that must also work with foreign publishers should still serialise its
// calls.
type Subscription interface {
	// Request adds n to the outstanding demand. Demand is additive and
	// saturates at Unbounded (rule 3.17). A non-positive n ends the
	// subscription with an error that matches ErrNonPositiveRequest
	// (rule 3.9). After Cancel, or after a terminal signal, Request does
	// nothing (rule 3.6).
	Request(n int64)
	// Cancel asks the publisher to stop signalling and to drop its
	// reference to the subscriber (rule 3.13). It is idempotent (rule 3.5)
	// and items already in flight may still arrive.
	Cancel()
}

// Processor is a stage that is both a Subscriber of T and a Publisher of R.
type Processor[T, R any] interface {
	Subscriber[T]
	Publisher[R]
}

// Unbounded is the demand that means "no limit". Requesting it, or
// accumulating demand that reaches it, switches a publisher into
// unbounded mode for the rest of the subscription (rule 3.17).
const Unbounded int64 = math.MaxInt64
