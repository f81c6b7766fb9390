package operators

import "github.com/sluicego/sluice/flow"

// Broadcaster is the hot publisher that [Broadcast] returns: every
// subscriber receives every item that the stage takes from upstream while
// it is subscribed. It is a flow.Publisher[T]; its methods are
// goroutine-safe.
//
// The Subscription each subscriber receives implements [StatsReporter]:
// its Stats are that subscriber's own accounting (items offered to it,
// delivered, buffered, dropped by reason).
type Broadcaster[T any] struct {
	h *fanoutHub[T]
}

// Broadcast returns a [Broadcaster] that subscribes once to src and
// multicasts its items to any number of subscribers, each receiving every
// item, in order.
//
// Start: src is subscribed when the first subscriber subscribes (or when
// [MinSubscribers](n) have subscribed, or at [Broadcaster.Connect],
// whichever comes first). A subscriber that joins later receives the
// items handed out after it joined (including those held for lack of
// demand when it joined), not the earlier ones.
//
// Demand: Broadcast prefetches. It requests P items from src when src
// subscribes (the [Prefetch] option, default 256), and L = P − P/4 more
// each time L items have left its queue (Reactor's 75 % rule), so at most
// P items are ever requested and not yet handed out; every upstream
// Request is made from its drain loop, serially. An item leaves the queue
// only when it can be handed out:
//
//   - by default ([flow.Block], no per-subscriber buffer) when every
//     subscriber has demand: the slowest subscriber sets the pace, and
//     upstream demand is the minimum of the subscribers' demands, batched
//     by the prefetch;
//   - with [SlowSubscriber](flow.Block, c), when every subscriber has
//     demand or room in its buffer of c;
//   - with [SlowSubscriber](p, c) for p = DropNewest, DropOldest or Fail,
//     or with [CancelSlow](c), as soon as one subscriber can take it
//     (demand or buffer room): the fastest subscriber sets the pace, and
//     a subscriber with a full buffer drops, fails the stage, or is cut
//     loose with [ErrSlowSubscriber], as the option says.
//
// With no live subscriber the items stay queued (at most P).
//
// Delivery: all subscribers are served by one drain loop, on the goroutine
// of whoever signalled work (upstream's OnNext, a subscriber's Request);
// signals to each subscriber are serial, and a Request made from OnNext
// never re-enters OnNext (rule 3.3). A subscriber that wants its own
// goroutine puts a [PublishOn] behind the Broadcaster.
//
// Ending: upstream's OnComplete or OnError reaches every subscriber after
// the items queued for it (an error is delayed, as in [Buffer]); a
// subscriber that joins after the end receives it at once. A
// subscriber's Cancel, a Request(n <= 0) (answered with an error that
// matches flow.ErrNonPositiveRequest) or a panic in its OnNext (answered
// with the *flow.PanicError, wrapped with the stage name) ends that
// subscriber only, dropping its buffered items with flow.ReasonCancelled.
// When the last live subscriber has gone, upstream is cancelled (see
// [AutoCancel]) and later subscribers receive [ErrHubClosed]. An
// upstream that emits more than requested fails the stage with
// flow.ErrOverflow.
//
// Every dropped item is counted, for the subscriber it was meant for, and
// passed to the [OnDrop] hook with its reason; items dropped from the
// stage's own queue (after a cancel or a failure) are counted by the
// Broadcaster's Stats only.
//
// Options: [Name], [Prefetch], [OnDrop], [SlowSubscriber], [CancelSlow],
// [MinSubscribers], [AutoCancel]. Cost: on the upstream side, one queue
// put (an atomic store) and one atomic load per item; on the delivery
// side, per item and subscriber, an OnNext call and an atomic load, and
// one deferred recover per drain pass; nothing is allocated per item.
// About 25 ns per item to one subscriber and 30 ns to two, against about
// 130 ns for a goroutine copying each item into one channel per
// subscriber (BenchmarkBroadcast, medians of 5 on the 2-core VM). Subscribe
// allocates the subscription and its buffer. Broadcast panics if src is
// nil.
func Broadcast[T any](src flow.Publisher[T], opts ...Option) *Broadcaster[T] {
	mustSource("Broadcast", src)
	return &Broadcaster[T]{h: newFanoutHub("broadcast", src, false, 1, opts)}
}

// Subscribe adds s: it receives OnSubscribe on the calling goroutine, then
// every item handed out from now on, as it requests them. It subscribes
// upstream if s makes the count given by [MinSubscribers] (1 by default).
// Subscribe(nil) panics.
func (b *Broadcaster[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	b.h.subscribe(s)
}

// Connect subscribes to the upstream now if that has not happened yet,
// whatever the number of subscribers. Items that arrive before any
// subscriber are held (at most one prefetch) for the first ones.
// Connect is goroutine-safe and idempotent.
func (b *Broadcaster[T]) Connect() { b.h.connect() }

// Stats returns the stage's accounting: Produced counts the items received
// from upstream, Delivered the OnNext calls to all subscribers, Buffered
// the items in the stage's queue and in the subscribers' buffers, and
// Dropped every drop. Since every item goes to every subscriber, the
// identity of [BufferStats] holds per subscription (see Broadcaster),
// not here. Stats is goroutine-safe and does not block the stream.
func (b *Broadcaster[T]) Stats() BufferStats { return b.h.stats() }
