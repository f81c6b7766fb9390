package operators

import (
	"context"

	"github.com/sluicego/sluice/flow"
)

// MapAsync returns a publisher that emits the result of f(ctx, item) for
// every item of src, with up to concurrency calls of f in flight at once:
// for I/O-bound f (an HTTP call, a database query).
//
// Goroutines: each subscription starts concurrency goroutines of its own
// when upstream's OnSubscribe arrives; each makes one call at a time, and
// every one of them ends once the stream is over (complete, error or
// cancel): no goroutine outlives the subscription, and none is started
// per item. f is called concurrently, so it must be goroutine-safe.
//
// Context: ctx is the same for every call of one subscription. It is
// derived from the context of the downstream subscriber if that
// subscriber implements interface{ Context() context.Context } (the sinks
// of package sinks do, so cancelling a sink's ctx reaches the calls),
// and from context.Background() otherwise. It is cancelled when the
// stream ends: on Cancel, on an error, and after completion.
//
// Order, demand, emission, termination and options are those of
// [ParallelMap], with W = concurrency: at most P + W items are in flight
// (P the [Prefetch], default 256), P + W are requested upstream at first
// and L = P − P/4 more each time L items have been delivered, whatever
// downstream asks; with [Ordered] results come in the order of src. An
// error returned by f ends the stream: downstream receives it wrapped
// with the stage name ("mapAsync#1: …", errors.Is sees through), upstream
// is cancelled, ctx is cancelled so that the other calls in flight
// return early, and OnError is sent once all of them have returned. The
// item whose call failed is dropped with flow.ReasonError; results of the
// other calls, and items not yet called, with flow.ReasonCancelled, each
// counted and passed to the [OnDrop] hook (item type T). A panic in f is
// an error too, a *flow.PanicError. Errors of calls that end after the
// stream has ended (ctx.Err(), typically) are not reported, only dropped.
//
// Cost: each call costs two short lock acquisitions (taking the item,
// handing back the result) and a signal of the drain loop: about 0.2 µs
// per item in all with a call that returns at once, on the 2-core
// reference machine (BenchmarkMapAsync), little beside the I/O it waits
// on; a worker parks on a sync.Cond only when no item is waiting.
// Nothing is allocated per item; Subscribe allocates the queues
// (O(P + W)) and the context. MapAsync panics if src or f is nil or
// concurrency <= 0.
func MapAsync[T, R any](src flow.Publisher[T], f func(ctx context.Context, v T) (R, error), concurrency int, opts ...Option) flow.Publisher[R] {
	mustSource("MapAsync", src)
	mustFunc("MapAsync", f == nil)
	if concurrency <= 0 {
		panic("sluice: MapAsync: concurrency <= 0")
	}
	c, name := newConfig("mapAsync", opts)
	return newPMPublisher(src, f, concurrency, 1, true, c, name, opts)
}

var _ flow.Subscription = (*pmSub[int, int])(nil)
