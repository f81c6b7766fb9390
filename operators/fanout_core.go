package operators

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
)

// fanoutHub is the engine of Broadcast and Balance: one upstream
// subscription, a bounded queue of the items received from it, and a set
// of subscribers, all served by one drain loop serialised by a flow.WIP.
//
// Who runs what:
//   - upstream's OnNext (any goroutine, serially) puts the item in q, an
//     SPSC ring of capacity prefetch, and runs the loop unless it is
//     running (or the item arrives from inside the loop's own request);
//   - a subscriber's Request and Cancel record their signal in the
//     subscriber and run the loop;
//   - Subscribe calls the new subscriber's OnSubscribe on the caller's
//     goroutine, adds it to pending under mu, subscribes upstream if the
//     stage is now connected, and runs the loop;
//   - the loop (pass) adopts pending subscribers, removes cancelled ones,
//     makes every upstream request, moves items from q to the subscribers
//     (every item to each subscriber for Broadcast, each item to one for
//     Balance), and delivers terminal signals.
//
// Demand: upstream is asked for prefetch items when it subscribes, and
// for limit = prefetch − prefetch/4 more each time limit items have been
// taken out of q, so q never overflows and upstream never has more than
// prefetch items requested and not yet handed out. Items leave q only
// when a subscriber can take them; that is where the backpressure is.
//
// The four hot points, for counters to come: items taken from q (take),
// items handed to a subscriber (deliver), drops (dropSub, dropHub), and
// upstream requests (requestUp).
type fanoutHub[T any] struct {
	// read-only after construction
	src             flow.Publisher[T]
	kind            string
	name            string
	balance         bool
	policy          flow.Overflow
	capacity        int // per-subscriber buffer (Broadcast)
	cancelSlow      bool
	minSubs         int
	autoCancel      bool
	prefetch, limit int64
	q               *ring.SPSC[T]
	upSub           fanoutUp[T]
	hub             *probe.Stage // the shared side, for the monitor; set under mu by the first monitored subscriber

	up         ring.Upstream
	upReady    atomic.Bool // up is set
	upDone     atomic.Bool // upstream ended; upErr is set
	upErr      error
	upOverflow atomic.Bool // upstream sent more than requested
	requesting atomic.Bool // the loop is inside up.Request
	wip        flow.WIP

	drops     ring.Drops[T]
	dropped   [ring.NumReasons]atomic.Int64
	took      atomic.Int64 // items taken out of q (handed out or dropped), per batch
	rejected  atomic.Int64 // items upstream sent that never entered q
	delivered atomic.Int64
	buffered  atomic.Int64 // in subscriber buffers

	mu         sync.Mutex
	pending    []*fanoutSub[T]
	joined     int // subscribers ever, for minSubs
	hasPending atomic.Bool
	connected  atomic.Bool

	// loop-owned
	subs        []*fanoutSub[T]
	started     bool // the initial request was made
	consumed    int64
	ended       bool // no item will be handed out any more; see endErr
	endErr      error
	cancelUp    bool // upstream must be cancelled once it is set
	everLive    bool
	rr          int   // Balance: where the round robin looks first
	taken       int64 // taken from q, not yet added to took
	upCancelled bool
	cur         *fanoutSub[T] // whose OnNext is running
	item        T             // Broadcast: the item being fanned out
	next        int           // Broadcast: the next subscriber for item
	fanning     bool          // Broadcast: item is being fanned out
	resume      bool          // Broadcast: an OnNext panicked during fan
}

func newFanoutHub[T any](kind string, src flow.Publisher[T], balance bool, defaultMin int, opts []Option) *fanoutHub[T] {
	c, name := newConfig(kind, opts)
	fs := fanoutConfig(opts)
	h := &fanoutHub[T]{
		src:        src,
		kind:       kind,
		name:       name,
		balance:    balance,
		policy:     fs.policy,
		capacity:   fs.capacity,
		cancelSlow: fs.cancelSlow,
		minSubs:    fs.minSubs,
		autoCancel: fs.autoCancel,
		prefetch:   defaultAsyncPrefetch,
	}
	if h.minSubs == 0 {
		h.minSubs = defaultMin
	}
	if balance {
		h.policy, h.capacity, h.cancelSlow = flow.Block, 0, false
	}
	if c.Prefetch > 0 {
		h.prefetch = int64(c.Prefetch)
	}
	h.limit = h.prefetch - h.prefetch/4
	h.q = ring.NewSPSC[T](int(h.prefetch))
	h.upSub.h = h
	h.drops.Init(stage.DropHook[T](&c, name), name, &h.dropped)
	return h
}

// subscribe starts a subscription for s: OnSubscribe on the caller's
// goroutine, then the subscriber joins the loop.
func (h *fanoutHub[T]) subscribe(s flow.Subscriber[T]) {
	x := &fanoutSub[T]{h: h, down: s}
	x.badN.Store(fanoutNoBad)
	if h.capacity > 0 {
		x.buf = make([]T, h.capacity)
	}
	h.mu.Lock()
	if h.upSub.ctx == nil && !h.connected.Load() {
		// The first monitored subscriber registers the fan-out's shared
		// side, a Junction that the stages upstream deliver to and every
		// subscriber's stage hangs under.
		if ctx := probe.ContextOf(s); probe.FromContext(ctx) != nil {
			h.hub, h.upSub.ctx = probe.AttachContext(ctx, h.kind, h.name, probe.Junction)
			h.hub.SetLen(h.q.Len)
		}
	}
	hub := h.hub
	h.mu.Unlock()
	x.probe, _ = probe.AttachUnder(s, hub, h.kind, h.name, probe.Operator)
	x.probe.SetLen(func() int { return int(x.buffered.Load()) })
	s.OnSubscribe(x) // the loop does not know x yet: nothing overlaps
	h.mu.Lock()
	h.pending = append(h.pending, x)
	h.hasPending.Store(true)
	h.joined++
	connect := h.joined >= h.minSubs && !h.connected.Load()
	if connect {
		h.connected.Store(true)
	}
	h.mu.Unlock()
	if connect {
		h.src.Subscribe(&h.upSub)
	}
	h.signal()
}

// connect subscribes upstream now, if that was not done yet.
func (h *fanoutHub[T]) connect() {
	h.mu.Lock()
	connect := !h.connected.Load()
	h.connected.Store(true)
	h.mu.Unlock()
	if connect {
		h.src.Subscribe(&h.upSub)
	}
}

// stats reads the stage's counters.
func (h *fanoutHub[T]) stats() BufferStats {
	var dropped [ring.NumReasons]int64
	for i := range dropped {
		dropped[i] = h.dropped[i].Load()
	}
	delivered := h.delivered.Load()
	queued := int64(h.q.Len())
	s := ring.Snapshot{
		Delivered: delivered,
		Buffered:  queued + h.buffered.Load(),
		Dropped:   dropped,
		Produced:  h.took.Load() + queued + h.rejected.Load(),
	}
	return toBufferStats(s)
}

// ---- upstream side ----

// fanoutUp is the hub's subscriber to upstream.
type fanoutUp[T any] struct {
	h   *fanoutHub[T]
	ctx context.Context // names the hub's Junction stage; set under h.mu before connecting
}

// Context returns the context of the first subscriber that carried a
// monitor registry, naming the fan-out's Junction stage (see package
// monitor), so the stages upstream register under the fan-out.
func (u *fanoutUp[T]) Context() context.Context {
	if u.ctx == nil {
		return context.Background()
	}
	return u.ctx
}

func (u *fanoutUp[T]) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if !u.h.up.Set(s) {
		s.Cancel() // rule 2.5
		return
	}
	u.h.upReady.Store(true)
	u.h.signal() // the loop makes the initial request
}

func (u *fanoutUp[T]) OnNext(v T) {
	h := u.h
	if !h.q.Offer(v) {
		// More than requested (rule 1.1): q holds all that may be in
		// flight.
		h.rejected.Add(1)
		h.drops.Drop(v, flow.ReasonOverflow)
		h.upOverflow.Store(true)
		h.signal()
		return
	}
	// Inside the loop's own up.Request the loop looks at q afterwards;
	// see requestUp.
	if !h.requesting.Load() {
		h.signal()
	}
}

func (u *fanoutUp[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	if u.h.upDone.Load() {
		return
	}
	u.h.hub.End(probe.Failed)
	u.h.upErr = err
	u.h.upDone.Store(true)
	u.h.signal()
}

func (u *fanoutUp[T]) OnComplete() {
	if u.h.upDone.Load() {
		return
	}
	u.h.hub.End(probe.Completed)
	u.h.upDone.Store(true)
	u.h.signal()
}

// ---- subscribers ----

const fanoutNoBad = 1 // fanoutSub.badN when no non-positive request was seen

// fanoutSub is one subscriber's Subscription.
type fanoutSub[T any] struct {
	h       *fanoutHub[T]
	probe   *probe.Stage // this subscriber's monitor counters, nil when not monitored
	demand  flow.Demand
	stopped atomic.Bool // cancelled or bad request: take nothing more
	badN    atomic.Int64
	done    atomic.Bool // the subscription is over

	// counters, for Stats
	offered   atomic.Int64
	delivered atomic.Int64
	buffered  atomic.Int64
	dropped   [ring.NumReasons]atomic.Int64

	// loop-owned (down is also written by subscribe, before the loop
	// sees the subscription)
	down    flow.Subscriber[T]
	buf     []T // ring of the per-subscriber buffer
	head, n int
	avail   int64 // demand left for this pass (flow.Unbounded: no limit)
	sent    int64 // delivered in this pass, not yet settled
	offers  int64 // offered in this pass, not yet settled
	kill    error // end this subscriber with this error
}

// Request adds n to the subscriber's demand and runs the loop. n <= 0
// ends this subscription with an error that matches
// flow.ErrNonPositiveRequest; the others go on.
func (x *fanoutSub[T]) Request(n int64) {
	if x.done.Load() {
		return
	}
	x.probe.Request(n)
	if n <= 0 {
		x.badN.CompareAndSwap(fanoutNoBad, n)
		x.stopped.Store(true)
	} else {
		x.demand.Add(n)
	}
	x.h.signal()
}

// Cancel ends this subscription; the others go on.
func (x *fanoutSub[T]) Cancel() {
	if x.done.Load() || !x.stopped.CompareAndSwap(false, true) {
		return
	}
	x.probe.End(probe.Cancelled)
	x.h.signal()
}

// Stats returns this subscription's accounting: Produced counts the items
// offered to it (handed to it or to its buffer, or dropped for it), and
// Produced = Delivered + Σ Dropped + Buffered once the stage is
// quiescent.
func (x *fanoutSub[T]) Stats() BufferStats {
	var s ring.Snapshot
	for i := range s.Dropped {
		s.Dropped[i] = x.dropped[i].Load()
	}
	s.Delivered = x.delivered.Load()
	s.Buffered = x.buffered.Load()
	s.Produced = x.offered.Load()
	return toBufferStats(s)
}

func (x *fanoutSub[T]) usable() bool { return x.kill == nil && !x.stopped.Load() }

// room is how many items x can accept now without a drop.
func (x *fanoutSub[T]) room(capacity int) int64 {
	if x.n != 0 {
		return int64(capacity - x.n) // no demand is left: see flush
	}
	return flow.AddCap(x.avail, int64(capacity))
}

func (x *fanoutSub[T]) push(v T) {
	x.buf[(x.head+x.n)%len(x.buf)] = v
	x.n++
	x.buffered.Add(1)
	x.h.buffered.Add(1)
}

func (x *fanoutSub[T]) pop() T {
	var zero T
	v := x.buf[x.head]
	x.buf[x.head] = zero
	x.head = (x.head + 1) % len(x.buf)
	x.n--
	x.buffered.Add(-1)
	x.h.buffered.Add(-1)
	return v
}

// ---- the loop ----

func (h *fanoutHub[T]) signal() {
	if !h.wip.Enter() {
		return
	}
	for missed := int32(1); missed != 0; missed = h.wip.Leave(missed) {
		h.pass()
	}
}

// pass does everything that can be done now.
func (h *fanoutHub[T]) pass() {
	h.sweep()
	if !h.ended {
		if h.upOverflow.Load() {
			h.end(fmt.Errorf("%s: %w: upstream emitted more than requested", h.name, flow.ErrOverflow), true)
		} else if err := h.drops.Err(); err != nil {
			h.end(err, true)
		}
	}
	if h.cancelUp && !h.upCancelled && h.upReady.Load() {
		h.upCancelled = true
		h.up.Cancel()
	}
	if !h.ended && !h.started && h.upReady.Load() {
		h.started = true
		if !h.upDone.Load() { // an empty upstream may end in OnSubscribe
			h.requestUp(h.prefetch) // a synchronous upstream fills q here
		}
	}
	// Adopt after looking at upReady: the subscribers that made the
	// stage connect were pending before upstream could be ready, so none
	// of the first MinSubscribers misses an item.
	if h.hasPending.Load() {
		h.adopt()
	}
	for _, s := range h.subs {
		s.avail = s.demand.Load()
	}
	for h.serve() {
	}
	for _, s := range h.subs {
		h.settle(s)
	}
	h.sweep()
	if !h.ended && h.upDone.Load() && h.q.Empty() {
		h.end(h.upErr, false)
	}
	if !h.ended && h.autoCancel && h.everLive && len(h.subs) == 0 && !h.hasPending.Load() && h.connected.Load() {
		h.end(fmt.Errorf("%s: %w", h.name, ErrHubClosed), true)
	}
	if h.ended {
		h.dropQueue()
		h.finish()
	}
}

// serve delivers what the subscribers' demand allows: their buffered
// items, then items from q. A panic in a subscriber's OnNext (h.cur) cuts
// that subscriber off with the panic and makes serve report true, to be
// called again: it then first offers the item being broadcast to the
// subscribers that had not received it. One deferred call per pass, none
// per item.
func (h *fanoutHub[T]) serve() (again bool) {
	defer func() {
		if s := h.cur; s != nil {
			h.cur = nil
			if p := recover(); p != nil {
				s.kill = fmt.Errorf("%s: %w", h.name, flow.NewPanicError(p))
				h.resume, h.fanning = h.fanning, false
				again = true
			}
		}
	}()
	if h.resume {
		h.resume = false
		h.fan(h.item, h.next)
	}
	for _, s := range h.subs {
		if s.n != 0 {
			h.flush(s)
		}
	}
	if !h.ended && len(h.subs) != 0 {
		if h.balance {
			h.dispatchBalance()
		} else {
			h.dispatchBroadcast()
		}
	}
	var zero T
	h.item = zero // do not keep the last item alive
	return false
}

// adopt moves the new subscribers into the loop.
func (h *fanoutHub[T]) adopt() {
	h.mu.Lock()
	h.subs = append(h.subs, h.pending...)
	clear(h.pending)
	h.pending = h.pending[:0]
	h.hasPending.Store(false)
	h.mu.Unlock()
	h.everLive = h.everLive || len(h.subs) != 0
}

// sweep removes the subscribers that cancelled, made a bad request,
// panicked in OnNext or were cut loose, and signals their error.
func (h *fanoutHub[T]) sweep() {
	for i := 0; i < len(h.subs); {
		s := h.subs[i]
		var err error
		switch {
		case s.kill != nil:
			err = s.kill
		case s.stopped.Load():
			if n := s.badN.Load(); n != fanoutNoBad {
				err = flow.NonPositiveRequestError(n)
			}
		default:
			i++
			continue
		}
		d := h.detach(i)
		if err != nil {
			s.probe.End(probe.Failed)
			d.OnError(err)
		}
	}
}

// detach removes subscriber i, drops its buffer and forgets its
// subscriber (rule 3.13), which it returns.
func (h *fanoutHub[T]) detach(i int) flow.Subscriber[T] {
	s := h.subs[i]
	h.settle(s)
	for s.n != 0 {
		h.dropSub(s, s.pop(), flow.ReasonCancelled)
	}
	h.subs = slices.Delete(h.subs, i, i+1)
	if h.rr > i {
		h.rr--
	}
	s.done.Store(true)
	d := s.down
	s.down = nil
	return d
}

// finish ends, once the stage has ended, every subscriber whose buffer is
// empty.
func (h *fanoutHub[T]) finish() {
	for i := 0; i < len(h.subs); {
		s := h.subs[i]
		if s.n != 0 && s.usable() {
			i++
			continue
		}
		kill := s.kill
		stopped := s.stopped.Load()
		d := h.detach(i)
		switch {
		case kill != nil:
			s.probe.End(probe.Failed)
			d.OnError(kill)
		case stopped:
			if n := s.badN.Load(); n != fanoutNoBad {
				s.probe.End(probe.Failed)
				d.OnError(flow.NonPositiveRequestError(n))
			}
		case h.endErr != nil:
			s.probe.End(probe.Failed)
			d.OnError(h.endErr)
		default:
			s.probe.End(probe.Completed)
			d.OnComplete()
		}
	}
}

// end stops handing out items: the subscribers get what they have
// buffered, then endErr (OnComplete when nil). With cancel, upstream is
// cancelled.
func (h *fanoutHub[T]) end(err error, cancel bool) {
	h.ended, h.endErr = true, err
	if cancel {
		h.hub.End(probe.Cancelled)
		h.cancelUp = true
		if h.upReady.Load() && !h.upCancelled {
			h.upCancelled = true
			h.up.Cancel()
		}
	}
}

// dropQueue drops what is left in q once the stage has ended.
func (h *fanoutHub[T]) dropQueue() {
	for {
		v, ok := h.q.Poll()
		if !ok {
			break
		}
		h.took.Add(1)
		h.drops.Drop(v, flow.ReasonCancelled)
	}
	h.q.Release()
}

// flush delivers s's buffered items while it has demand.
func (h *fanoutHub[T]) flush(s *fanoutSub[T]) {
	for s.n != 0 && s.avail != 0 && s.usable() {
		h.deliver(s, s.pop())
	}
}

// take removes the next item from q, counting it towards the next
// replenishing request.
func (h *fanoutHub[T]) take() (T, bool) {
	v, ok := h.q.Poll()
	if !ok {
		return v, false
	}
	h.taken++
	if h.consumed++; h.consumed == h.limit {
		h.consumed = 0
		h.released() // room before the request that fills it
		if !h.upDone.Load() {
			h.requestUp(h.limit)
		}
	}
	return v, true
}

// released makes the room of the items taken from q available to
// upstream, and counts them.
func (h *fanoutHub[T]) released() {
	h.q.Release()
	if h.taken != 0 {
		h.took.Add(h.taken)
		h.taken = 0
		if h.hub != nil {
			h.hub.Set(h.took.Load()) // the hub delivers what leaves its queue
		}
	}
}

// requestUp asks upstream for n more items. A synchronous upstream
// delivers inside it; its OnNext then does not run the loop, which looks
// at q when the request returns.
func (h *fanoutHub[T]) requestUp(n int64) {
	if h.ended {
		return
	}
	h.hub.Request(n) // the hub's counters: what it asked upstream for
	h.requesting.Store(true)
	h.up.Request(n)
	h.requesting.Store(false)
}

// deliver hands v to s, which has demand. A panic in OnNext is
// recovered by serve.
func (h *fanoutHub[T]) deliver(s *fanoutSub[T], v T) {
	if s.avail != flow.Unbounded {
		s.avail--
	}
	s.sent++
	h.cur = s
	if pr := s.probe; pr != nil {
		pr.Next()
		s.down.OnNext(v)
		pr.Returned()
	} else {
		s.down.OnNext(v)
	}
	h.cur = nil
}

// settle publishes what a pass delivered to s.
func (h *fanoutHub[T]) settle(s *fanoutSub[T]) {
	if s.offers != 0 {
		s.offered.Add(s.offers)
		s.offers = 0
	}
	if s.sent != 0 {
		s.probe.Flush()
		s.demand.Produced(s.sent)
		s.delivered.Add(s.sent)
		h.delivered.Add(s.sent)
		s.sent = 0
	}
}

// dropSub drops v, meant for s. A panic in the hook ends the stage.
func (h *fanoutHub[T]) dropSub(s *fanoutSub[T], v T, r flow.DropReason) {
	s.dropped[r].Add(1)
	s.probe.Drop(r)
	h.drops.Drop(v, r)
	if err := h.drops.Err(); err != nil && !h.ended {
		h.end(err, true)
	}
}

// dispatchBroadcast hands every item it takes from q to every
// subscriber. Under Block it takes an item only when every subscriber can
// accept it (demand, or room in its buffer); under the other policies,
// when one can.
func (h *fanoutHub[T]) dispatchBroadcast() {
	block := h.policy == flow.Block && !h.cancelSlow
	var k int64
	usable := 0
	if block {
		k = flow.Unbounded
	}
	for _, s := range h.subs {
		if !s.usable() {
			continue
		}
		usable++
		if block {
			k = min(k, s.room(h.capacity))
		} else {
			k = max(k, s.room(h.capacity))
		}
	}
	if usable == 0 {
		return // hold the items for the subscribers to come
	}
	for k != 0 && !h.ended {
		v, ok := h.take()
		if !ok {
			break
		}
		if k != flow.Unbounded {
			k--
		}
		h.item = v
		h.fan(v, 0)
	}
	h.released()
}

// fan offers v to the subscribers from index from on. h.item is v, and
// h.next the index to go on from if an OnNext panics.
func (h *fanoutHub[T]) fan(v T, from int) {
	h.fanning = true
	for j := from; j < len(h.subs); j++ {
		if s := h.subs[j]; s.usable() {
			h.next = j + 1
			h.offer(s, v)
		}
	}
	h.fanning = false
}

// offer gives v to s: at once if it has demand and nothing buffered, else
// to its buffer, else by the overflow policy.
func (h *fanoutHub[T]) offer(s *fanoutSub[T], v T) {
	s.offers++
	if s.n == 0 && s.avail != 0 {
		h.deliver(s, v)
		return
	}
	if s.n < h.capacity {
		s.push(v)
		return
	}
	switch {
	case h.cancelSlow:
		h.dropSub(s, v, flow.ReasonOverflow)
		for s.n != 0 {
			h.dropSub(s, s.pop(), flow.ReasonCancelled)
		}
		s.kill = fmt.Errorf("%s: %w (buffer of %d full)", h.name, ErrSlowSubscriber, h.capacity)
	case h.policy == flow.DropNewest:
		h.dropSub(s, v, flow.ReasonNewest)
	case h.policy == flow.DropOldest:
		h.dropSub(s, s.pop(), flow.ReasonOldest)
		s.push(v)
	default: // Fail; Block cannot get here
		h.dropSub(s, v, flow.ReasonOverflow)
		h.end(fmt.Errorf("%s: %w (subscriber buffer of %d full)", h.name, flow.ErrOverflow, h.capacity), true)
	}
}

// dispatchBalance hands each item it takes from q to one subscriber with
// demand, round robin; it takes nothing while no subscriber has demand.
func (h *fanoutHub[T]) dispatchBalance() {
	for {
		n := len(h.subs)
		var s *fanoutSub[T]
		for j := range n {
			i := h.rr + j
			if i >= n {
				i -= n
			}
			if c := h.subs[i]; c.avail != 0 && c.usable() {
				s = c
				if h.rr = i + 1; h.rr == n {
					h.rr = 0
				}
				break
			}
		}
		if s == nil {
			break
		}
		v, ok := h.take()
		if !ok {
			break
		}
		s.offers++
		h.deliver(s, v)
	}
	h.released()
}
