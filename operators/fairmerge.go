package operators

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
)

// fairBatch is how many items FairByKey takes out of its queues per lock.
const fairBatch = 32

// FairByKey re-orders src for fairness between keys (tenants): it holds a
// bounded FIFO queue of perKey items per key and emits round-robin across
// the keys that have items, one item per key per turn. One noisy key
// cannot fill a shared buffer and delay the others by more than one item
// per round. Items of one key keep their order; at most MaxKeys keys
// (option, default 1024) hold items at once, and a key whose queue empties
// is forgotten.
//
// What it requests upstream under [flow.Block] (the default; see
// [KeyOverflow]): only what is sure to fit, whatever the keys of the
// items turn out to be. With O items requested and not yet received, L
// the longest queue and H the keys held, it requests
// R = min(perKey − L, MaxKeys − H) − O when R is at least a quarter of
// min(perKey, MaxKeys), or when R > 0 and nothing is outstanding; it
// checks at subscription (before any demand) and whenever items are
// emitted or arrive. So it never drops.
// The price is head-of-line blocking: while one key's queue is full,
// nothing more is requested, and the other keys wait until downstream has
// taken an item of the full key (one round). Downstream demand only moves
// items out of the queues; it is not forwarded.
//
// Under [flow.DropNewest], [flow.DropOldest] and [flow.Fail] it requests
// flow.Unbounded at subscription, as [Buffer] does, and applies the policy
// to an item whose key's queue is full: DropNewest drops the item,
// DropOldest evicts the key's oldest item, Fail drops the item, cancels
// upstream and ends the stream with [flow.ErrOverflow] after the queued
// items. An item with a new key while MaxKeys keys are held is dropped
// with flow.ReasonNewest under both drop policies (there is no oldest item
// of its key), and ends the stream under Fail.
//
// When it emits: as soon as an item is queued and downstream has demand,
// on the goroutine of whoever got there first (upstream's OnNext or
// downstream's Request), in a serial loop that is never re-entered
// (rule 3.3).
//
// How it ends: upstream's OnComplete and OnError reach downstream after
// the queued items; so does a key function panic (a *flow.PanicError
// wrapped with the stage name; upstream is cancelled and the item dropped
// with flow.ReasonError). Cancel and Request(n <= 0) cancel upstream and
// drop the queued items with flow.ReasonCancelled.
//
// Every dropped item is counted and passed to the OnDrop hook. Options:
// [Name], [OnDrop], [KeyOverflow], [MaxKeys]. Each subscription has its
// own queues. Cost: per item, the key function, a map lookup and a mutex
// acquisition on arrival; the emitting side takes the mutex once per 32
// items: about the cost of a Buffer under Block (see
// BenchmarkFairByKey). Memory is at most MaxKeys × perKey items,
// allocated as keys appear and reused. perKey <= 0 or a nil src or key
// panics.
func FairByKey[T any, K comparable](src flow.Publisher[T], key func(T) K, perKey int, opts ...Option) flow.Publisher[T] {
	if src == nil {
		panic("sluice: FairByKey: nil source")
	}
	mustFunc("FairByKey", key == nil)
	if perKey <= 0 {
		panic("sluice: FairByKey: perKey <= 0")
	}
	cfg, name := newConfig("fairByKey", opts)
	kc := keyedConfig(opts)
	return &fairByKey[T, K]{
		src:     src,
		key:     key,
		perKey:  perKey,
		maxKeys: kc.maxKeys,
		policy:  kc.keyOverflow,
		name:    name,
		hook:    stage.DropHook[T](&cfg, name),
	}
}

type fairByKey[T any, K comparable] struct {
	src     flow.Publisher[T]
	key     func(T) K
	perKey  int
	maxKeys int
	policy  flow.Overflow
	name    string
	hook    func(T, flow.DropReason)
	stats   ring.Counters
}

func (p *fairByKey[T, K]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	f := &fairSub[T, K]{
		p:      p,
		down:   s,
		queues: make(map[K]*keyQueue[T, K]),
		rr:     make([]*keyQueue[T, K], p.maxKeys),
		byLen:  make([]int, p.perKey+1),
	}
	f.drops.Init(p.hook, p.name, &p.stats.Dropped)
	f.probe, f.ctx = probe.Attach(s, "fairByKey", p.name, probe.Operator)
	f.drops.SetProbe(f.probe)
	f.badN.Store(noBadRequest)
	p.src.Subscribe(f)
}

// keyQueue is the FIFO of one key.
type keyQueue[T any, K comparable] struct {
	key   K
	items []T // ring of perKey items
	head  int
	n     int
}

// fairSub is one subscription of a FairByKey: the upstream subscriber
// and downstream's Subscription.
type fairSub[T any, K comparable] struct {
	probe *probe.Stage    // monitor counters, nil when not monitored
	ctx   context.Context // exposed upstream by Context
	p     *fairByKey[T, K]
	up    ring.Upstream
	down  flow.Subscriber[T] // owned by the drain loop once subscribed
	drops ring.Drops[T]

	demand     flow.Demand
	wip        flow.WIP
	subscribed atomic.Bool
	cancelled  atomic.Bool
	badN       atomic.Int64

	mu sync.Mutex
	// Under mu: the queues of the keys held, the round-robin order of
	// those keys (a ring of capacity maxKeys), queue lengths by length
	// (byLen[l] keys have l items; maxLen is the longest), the items held
	// and requested, and the end of upstream.
	queues      map[K]*keyQueue[T, K]
	rr          []*keyQueue[T, K]
	rrHead, rrN int
	byLen       []int
	maxLen      int
	buffered    int
	outstanding int64 // requested upstream, not yet received
	spare       []*keyQueue[T, K]
	done        bool  // upstream ended, or the stage failed
	err         error // the error to end with, after the queued items
	stopped     bool  // cancelled: take nothing more

	// drain-owned
	batch     []T
	unbounded bool
	finished  bool
}

func (f *fairSub[T, K]) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if !f.up.Set(s) {
		s.Cancel() // rule 2.5
		return
	}
	f.down.OnSubscribe(f)
	f.subscribed.Store(true)
	f.drain()
}

// OnNext queues v under its key: the single place where FairByKey
// receives an item.
func (f *fairSub[T, K]) OnNext(v T) {
	f.p.stats.Produced.Add(1)
	k, err := f.callKey(v)
	var evicted T
	reason, evict := flow.DropReason(0), false
	f.mu.Lock()
	if f.outstanding != flow.Unbounded {
		f.outstanding--
	}
	switch {
	case f.stopped || f.done:
		reason = flow.ReasonCancelled
	case err != nil:
		reason = flow.ReasonError
		f.failLocked(err)
	default:
		reason, evicted, evict = f.enqueueLocked(k, v)
	}
	f.mu.Unlock()
	if evict {
		f.drops.Drop(evicted, flow.ReasonOldest)
	}
	if reason != 0 {
		f.drops.Drop(v, reason)
	}
	if reason == flow.ReasonError || reason == flow.ReasonOverflow {
		f.up.Cancel()
	}
	f.drain()
}

// enqueueLocked queues v under k or applies the overflow policy. It
// returns the reason v was dropped (0 if it was not) and the item
// evicted under DropOldest, if any.
func (f *fairSub[T, K]) enqueueLocked(k K, v T) (reason flow.DropReason, evicted T, evict bool) {
	q := f.queues[k]
	if q == nil {
		if len(f.queues) == f.p.maxKeys {
			switch f.p.policy {
			case flow.Fail:
				f.failLocked(fmt.Errorf("%w: %s: more than %d keys", flow.ErrOverflow, f.p.name, f.p.maxKeys))
				return flow.ReasonOverflow, evicted, false
			case flow.Block:
				f.failLocked(fmt.Errorf("%w: %s: upstream sent more than was requested", flow.ErrOverflow, f.p.name))
				return flow.ReasonOverflow, evicted, false
			}
			return flow.ReasonNewest, evicted, false
		}
		q = f.newQueueLocked(k)
	}
	if q.n == f.p.perKey {
		switch f.p.policy {
		case flow.DropNewest:
			return flow.ReasonNewest, evicted, false
		case flow.DropOldest:
			evicted, evict = q.pop(), true
			f.buffered--
			q.push(v)
			f.buffered++
			return 0, evicted, evict
		case flow.Fail:
			f.failLocked(fmt.Errorf("%w: %s (key %v, capacity %d)", flow.ErrOverflow, f.p.name, k, f.p.perKey))
		default:
			f.failLocked(fmt.Errorf("%w: %s: upstream sent more than was requested", flow.ErrOverflow, f.p.name))
		}
		return flow.ReasonOverflow, evicted, false
	}
	f.byLen[q.n]--
	q.push(v)
	f.byLen[q.n]++
	f.maxLen = max(f.maxLen, q.n)
	f.buffered++
	return 0, evicted, false
}

func (f *fairSub[T, K]) newQueueLocked(k K) *keyQueue[T, K] {
	var q *keyQueue[T, K]
	if n := len(f.spare); n > 0 {
		q = f.spare[n-1]
		f.spare = f.spare[:n-1]
	} else {
		q = &keyQueue[T, K]{items: make([]T, f.p.perKey)}
	}
	q.key = k
	f.queues[k] = q
	f.byLen[0]++
	f.rr[(f.rrHead+f.rrN)%len(f.rr)] = q
	f.rrN++
	return q
}

func (q *keyQueue[T, K]) push(v T) {
	q.items[(q.head+q.n)%len(q.items)] = v
	q.n++
}

func (q *keyQueue[T, K]) pop() T {
	var zero T
	v := q.items[q.head]
	q.items[q.head] = zero
	q.head = (q.head + 1) % len(q.items)
	q.n--
	return v
}

// takeLocked takes up to n items round-robin into f.batch.
func (f *fairSub[T, K]) takeLocked(n int) {
	for ; n > 0 && f.rrN > 0; n-- {
		q := f.rr[f.rrHead]
		f.rr[f.rrHead] = nil
		f.rrHead = (f.rrHead + 1) % len(f.rr)
		f.rrN--
		l := q.n
		f.batch = append(f.batch, q.pop())
		f.buffered--
		f.byLen[l]--
		if q.n > 0 {
			f.byLen[q.n]++
			f.rr[(f.rrHead+f.rrN)%len(f.rr)] = q
			f.rrN++
		} else {
			delete(f.queues, q.key)
			var zero K
			q.key, q.head = zero, 0
			f.spare = append(f.spare, q)
		}
		for f.maxLen > 0 && f.byLen[f.maxLen] == 0 {
			f.maxLen--
		}
	}
}

// clearLocked empties every queue into f.batch.
func (f *fairSub[T, K]) clearLocked() {
	f.takeLocked(f.buffered)
}

func (f *fairSub[T, K]) failLocked(err error) {
	if !f.done {
		f.done = true
		f.err = err
	}
}

func (f *fairSub[T, K]) callKey(v T) (k K, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %w", f.p.name, flow.NewPanicError(p))
		}
	}()
	return f.p.key(v), nil
}

func (f *fairSub[T, K]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	f.mu.Lock()
	f.failLocked(err)
	f.mu.Unlock()
	f.drain()
}

func (f *fairSub[T, K]) OnComplete() {
	f.mu.Lock()
	f.failLocked(nil)
	f.mu.Unlock()
	f.drain()
}

// Context returns the downstream's context, naming this stage (see
// package monitor).
func (f *fairSub[T, K]) Context() context.Context { return f.ctx }

// Request implements flow.Subscription.
func (f *fairSub[T, K]) Request(n int64) {
	f.probe.Request(n)
	if n <= 0 {
		f.badN.CompareAndSwap(noBadRequest, n)
	} else {
		f.demand.Add(n)
	}
	f.drain()
}

// Cancel implements flow.Subscription.
func (f *fairSub[T, K]) Cancel() {
	if f.cancelled.CompareAndSwap(false, true) {
		f.probe.End(probe.Cancelled)
		f.drain()
	}
}

func (f *fairSub[T, K]) drain() {
	if !f.wip.Enter() {
		return
	}
	for missed := int32(1); missed != 0; missed = f.wip.Leave(missed) {
		if f.subscribed.Load() && !f.finished {
			f.drainPass()
		}
	}
}

// drainPass requests upstream, emits what downstream demands, and ends
// the stream: the single place where FairByKey requests and delivers.
func (f *fairSub[T, K]) drainPass() {
	for {
		if n := f.badN.Load(); n != noBadRequest {
			f.stop(flow.NonPositiveRequestError(n))
			return
		}
		if f.cancelled.Load() || f.drops.Err() != nil {
			f.stop(f.drops.Err())
			return
		}
		r := f.demand.Load()
		want := min(r, fairBatch)
		f.mu.Lock()
		f.takeLocked(int(want))
		req := f.creditLocked()
		end, err := f.done && f.buffered == 0 && len(f.batch) == 0, f.err
		f.mu.Unlock()
		if req > 0 {
			f.up.Request(req)
		}
		if end {
			f.terminate(err)
			return
		}
		if len(f.batch) == 0 {
			if req > 0 {
				continue // a synchronous upstream may have delivered
			}
			return
		}
		var e int64
		for i, v := range f.batch {
			if f.cancelled.Load() || f.badN.Load() != noBadRequest {
				f.dropBatch(f.batch[i:])
				break
			}
			if pr := f.probe; pr != nil {
				pr.Next()
				f.down.OnNext(v)
				pr.Returned()
			} else {
				f.down.OnNext(v)
			}
			e++
		}
		clear(f.batch)
		f.batch = f.batch[:0]
		f.demand.Produced(e)
		f.p.stats.Delivered.Add(e)
	}
}

// creditLocked returns what to request upstream now, and counts it as
// outstanding.
func (f *fairSub[T, K]) creditLocked() int64 {
	if f.done || f.unbounded {
		return 0
	}
	if f.p.policy != flow.Block {
		f.unbounded = true
		f.outstanding = flow.Unbounded
		return flow.Unbounded
	}
	room := int64(min(f.p.perKey-f.maxLen, f.p.maxKeys-len(f.queues)))
	limit := int64(max(1, min(f.p.perKey, f.p.maxKeys)/4))
	if n := room - f.outstanding; n > 0 && (n >= limit || f.outstanding == 0) {
		f.outstanding += n
		return n
	}
	return 0
}

func (f *fairSub[T, K]) dropBatch(vs []T) {
	for _, v := range vs {
		f.drops.Drop(v, flow.ReasonCancelled)
	}
}

func (f *fairSub[T, K]) terminate(err error) {
	s := f.down
	f.release()
	if err != nil {
		f.probe.End(probe.Failed)
		s.OnError(err)
	} else {
		f.probe.End(probe.Completed)
		s.OnComplete()
	}
}

// stop ends the subscription early: upstream cancelled, queued items
// dropped with ReasonCancelled, err (if not nil) delivered.
func (f *fairSub[T, K]) stop(err error) {
	f.up.Cancel()
	f.mu.Lock()
	f.stopped = true
	f.clearLocked()
	f.mu.Unlock()
	f.dropBatch(f.batch)
	clear(f.batch)
	f.batch = f.batch[:0]
	s := f.down
	f.release()
	if err != nil {
		f.probe.End(probe.Failed)
		s.OnError(err)
	}
}

// release drops the reference to the subscriber (rule 3.13).
func (f *fairSub[T, K]) release() {
	f.down = nil
	f.finished = true
}
