package flowtest

import (
	"context"
	"time"

	"github.com/sluicego/sluice/flow"
)

// PublisherConfig describes a publisher under test, in the terms of the
// Reactive Streams TCK's PublisherVerification.
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
	// more are skipped.
	MaxElements int64
	// MaxRecursion is the deepest OnNext → Request → OnNext recursion
	// allowed (boundedDepthOfOnNextAndRequestRecursion); 0 means 1.
	MaxRecursion int
	// Timeout bounds the wait for a signal the kit expects; 0 means 1s.
	Timeout time.Duration
	// NoSignalTimeout is how long the kit waits before it concludes that
	// no further signal is coming; 0 means 20ms.
	NoSignalTimeout time.Duration
	// Skip names tests (by their TCK method name) that do not apply,
	// each with a reason in the map value; they are reported as skipped.
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
	// return.
	Sink func(ctx context.Context, pub flow.Publisher[T]) error
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
	// MaxElements, MaxRecursion, Timeout, NoSignalTimeout and Skip are as
	// in PublisherConfig.
	MaxElements     int64
	MaxRecursion    int
	Timeout         time.Duration
	NoSignalTimeout time.Duration
	Skip            map[string]string
}
