package flowtest

import (
	"context"
	"time"

	"github.com/sluicego/sluice/flow"
)

// PublisherConfig describes a publisher under test, in the terms of the
// Reactive Streams TCK's PublisherVerification. The zero value of every
// field but New means its default.
type PublisherConfig[T any] struct {
	// New returns a fresh publisher that emits exactly n items and then
	// completes (createPublisher in the TCK). Required.
	New func(n int64) flow.Publisher[T]
	// Failed returns a publisher that signals OnError (after OnSubscribe,
	// with or without a request) and nothing else
	// (createFailedPublisher). Nil skips the tests that need one.
	Failed func() flow.Publisher[T]
	// MaxElements is the largest n that New supports
	// (maxElementsFromPublisher); 0 means flow.Unbounded. Tests that need
	// more are skipped. A negative value fails
	// required_validate_maxElementsFromPublisher.
	MaxElements int64
	// Infinite reports that the publisher never signals OnComplete (a
	// ticker, a hot source): New(n) emits at least n items but the stream
	// does not end. The tests that need OnComplete are skipped, as with
	// maxElementsFromPublisher() == Long.MAX_VALUE in the TCK.
	Infinite bool
	// MaxRecursion is the deepest OnNext → Request → OnNext recursion
	// allowed (boundedDepthOfOnNextAndRequestRecursion); 0 means 1. A
	// negative value fails
	// required_validate_boundedDepthOfOnNextAndRequestRecursion.
	MaxRecursion int
	// Timeout bounds the wait for a signal the kit expects; 0 means 1s.
	Timeout time.Duration
	// NoSignalTimeout is how long the kit waits before it concludes that
	// no further signal is coming; 0 means 20ms.
	NoSignalTimeout time.Duration
	// Skip names tests (by their TCK method name) that do not apply,
	// each with a reason in the map value; they are reported as skipped.
	// A name that matches no test is reported as an error, so that a typo
	// does not silently run the test.
	Skip map[string]string
}

// SubscriberConfig describes a subscriber under test, in the terms of the
// TCK's SubscriberBlackboxVerification and SubscriberWhiteboxVerification.
// Exactly one of New and Sink must be set.
type SubscriberConfig[T any] struct {
	// New returns a fresh subscriber under test.
	New func() flow.Subscriber[T]
	// Sink runs a blocking sink (such as sinks.Drain) against pub until
	// the stream ends or ctx is done. The kit runs it on a goroutine it
	// owns, cancels ctx at the end of each test, and waits for it to
	// return. Sink must return once ctx is done, even if it has not yet
	// received OnSubscribe.
	//
	// With Sink the kit checks more than it can with New: that the sink
	// returns nil after OnComplete and the error after OnError, and that
	// cancelling ctx cancels the subscription and returns an error that
	// matches context.Canceled.
	Sink func(ctx context.Context, pub flow.Publisher[T]) error
	// TriggerRequest, if set, is called after OnSubscribe for a subscriber
	// made by New that signals demand only when told to (triggerRequest in
	// the TCK). It is not used with Sink.
	TriggerRequest func(s flow.Subscriber[T])
	// Element returns the i-th item to feed the subscriber (createElement).
	// Required.
	Element func(i int64) T
	// Timeout bounds the wait for a signal the kit expects; 0 means 1s.
	Timeout time.Duration
	// NoSignalTimeout is how long the kit waits before it concludes that
	// no further signal is coming; 0 means 20ms.
	NoSignalTimeout time.Duration
	// Skip names tests that do not apply, as in PublisherConfig.
	Skip map[string]string
}

// ProcessorConfig describes an identity processor under test, in the
// terms of the TCK's IdentityProcessorVerification: every item it receives
// it emits unchanged, in order.
type ProcessorConfig[T any] struct {
	// New returns a fresh processor. bufferSize is the number of items the
	// processor may buffer (processorBufferSize in the TCK). Required.
	New func(bufferSize int) flow.Processor[T, T]
	// Element returns the i-th item to feed the processor. Required.
	Element func(i int64) T
	// BufferSize is passed to New; 0 means 16.
	BufferSize int
	// MaxSubscribers is how many subscribers the processor serves at once
	// (maxSupportedSubscribers); 0 means no limit. The tests that need two
	// subscribers are skipped when it is 1.
	MaxSubscribers int
	// MaxElements, MaxRecursion, Timeout, NoSignalTimeout and Skip are as
	// in PublisherConfig.
	MaxElements     int64
	MaxRecursion    int
	Timeout         time.Duration
	NoSignalTimeout time.Duration
	Skip            map[string]string
}
