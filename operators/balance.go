package operators

import (
	"fmt"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
)

// Balance splits src between n outputs: each item goes to exactly one
// output, chosen round robin among the outputs that have demand, which
// is how parallel workers share a stream (give each output its own
// goroutine with [PublishOn] on its own scheduler).
//
// Start: src is subscribed when all n outputs have subscribed, so that
// the first items are shared among all; [MinSubscribers](k) starts it
// after k of them. Each output accepts one subscriber: a second one is
// rejected with an error.
//
// Demand: Balance prefetches. It requests P items from src when src
// subscribes (the [Prefetch] option, default 256) and L = P − P/4 more
// each time L items have been handed out (Reactor's 75 % rule). An item
// is handed out only to an output with outstanding demand, so Balance
// backpressures only when no output has demand; upstream demand follows
// the sum of the outputs' demands, batched by the prefetch, and the items
// requested but not yet delivered never exceed P. Every upstream Request
// is made from the drain loop, serially.
//
// Delivery: one drain loop serves all outputs, on the goroutine of
// whoever signalled work; signals to each output are serial, and Request
// from OnNext never re-enters OnNext (rule 3.3). Items are never assigned
// to an output ahead of its demand, so an output that cancels leaves
// nothing behind: the items still queued go to the other outputs.
//
// Ending: upstream's OnComplete or OnError reaches every output once the
// queue is empty (outputs that subscribe later receive it at once). An
// output's Cancel, Request(n <= 0) or panic in OnNext ends that output
// only (with an error for the latter two). When every subscribed output
// has cancelled, upstream is cancelled ([AutoCancel]), the queued items
// are dropped with flow.ReasonCancelled, and outputs subscribing later
// receive [ErrHubClosed]. Every drop is counted and passed to the
// [OnDrop] hook.
//
// Each output implements [StatsReporter]; its Stats are the whole stage's
// (Produced = Delivered + Σ Dropped + Buffered once quiescent, Buffered
// being the queue). The Subscription an output's subscriber receives
// implements StatsReporter too, with that output's own counts. Options: [Name], [Prefetch], [OnDrop],
// [MinSubscribers], [AutoCancel]; the per-subscriber buffer options are
// ignored. Cost: per item, one queue put (an atomic store) and an atomic
// load upstream, and a round-robin pick, an atomic load and an OnNext
// downstream, with one deferred recover per drain pass; nothing is
// allocated per item (see BenchmarkBalance for parallel workers). Balance
// panics if src is nil or n <= 0.
func Balance[T any](src flow.Publisher[T], n int, opts ...Option) []flow.Publisher[T] {
	mustSource("Balance", src)
	if n <= 0 {
		panic("sluice: Balance: n <= 0")
	}
	h := newFanoutHub("balance", src, true, n, opts)
	outs := make([]flow.Publisher[T], n)
	for i := range outs {
		outs[i] = &balanceOutput[T]{h: h, i: i}
	}
	return outs
}

// balanceOutput is one output of a Balance.
type balanceOutput[T any] struct {
	h    *fanoutHub[T]
	i    int
	used atomic.Bool
}

// Subscribe subscribes s to this output; a second subscriber is rejected.
func (o *balanceOutput[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	if !o.used.CompareAndSwap(false, true) {
		flow.Reject(s, fmt.Errorf("sluice: %s: output %d already has a subscriber", o.h.name, o.i))
		return
	}
	o.h.subscribe(s)
}

// Stats implements StatsReporter with the accounting of the whole stage.
func (o *balanceOutput[T]) Stats() BufferStats { return o.h.stats() }
