package operators

import (
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
)

// ---- Take ----

// Take returns a publisher that emits the first n items of src and then
// completes, cancelling src. If src ends before n items, Take ends as src
// does. Take(src, 0) completes at once: it subscribes to src, cancels it
// and completes the subscriber without waiting for demand.
//
// Demand: Take never asks upstream for more than n items in total. For a
// downstream Request(k) it requests min(k, n - requested so far), so a
// downstream that requests n or more at once (Unbounded included) causes
// exactly one upstream Request(n), and requests after the n-th item is
// requested are not forwarded. It cancels upstream just before it emits
// the n-th item, then completes after it. Cancel is forwarded; Take
// buffers nothing.
//
// Options: [Name]. The subscription is goroutine-safe. Cost: about 2 ns
// per item (it calls no user function, so it has no deferred recover);
// nothing is allocated after Subscribe. Take panics if src is nil or
// n < 0.
func Take[T any](src flow.Publisher[T], n int64, opts ...Option) flow.Publisher[T] {
	mustSource("Take", src)
	if n < 0 {
		panic("sluice: Take: n < 0")
	}
	_, name := newConfig("take", opts)
	return &takePublisher[T]{src: src, limit: n, name: name}
}

type takePublisher[T any] struct {
	src   flow.Publisher[T]
	limit int64
	name  string
}

func (m *takePublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	x := &takeSubscriber[T]{limit: m.limit}
	x.bad.Store(1)
	x.init(s, m.name, "take")
	m.src.Subscribe(x)
}

type takeSubscriber[T any] struct {
	relay[T]
	limit     int64
	requested atomic.Int64 // requested upstream so far, <= limit
	bad       atomic.Int64 // the first non-positive request, or 1 when none (see Request)
	count     int64        // items received; written by OnNext only
}

func (x *takeSubscriber[T]) OnSubscribe(up flow.Subscription) {
	first := x.up == nil
	x.subscribe(up, x)
	if first && x.limit == 0 {
		if p := x.down.Load(); p != nil {
			x.complete(p)
		} else {
			up.Cancel()
		}
	}
}

// Request forwards min(n, limit - requested) upstream.
func (x *takeSubscriber[T]) Request(n int64) {
	x.probe.Request(n)
	if n <= 0 {
		// Upstream signals the rule 3.9 error, unless Take has already
		// cancelled it to deliver the last item: then OnNext signals it
		// instead of OnComplete.
		x.bad.CompareAndSwap(1, n)
		x.up.Request(n)
		return
	}
	for {
		r := x.requested.Load()
		if r >= x.limit {
			return
		}
		add := min(n, x.limit-r)
		if x.requested.CompareAndSwap(r, r+add) {
			x.up.Request(add)
			return
		}
	}
}

func (x *takeSubscriber[T]) OnNext(item T) {
	p := x.down.Load()
	if p == nil {
		return
	}
	x.count++
	if x.count < x.limit {
		x.emit(p, item)
		return
	}
	x.up.Cancel() // the last item: upstream is done before downstream sees it
	x.emit(p, item)
	if x.down.CompareAndSwap(p, nil) { // unless downstream cancelled in OnNext
		if n := x.bad.Load(); n <= 0 {
			x.probe.End(probe.Failed)
			(*p).OnError(flow.NonPositiveRequestError(n))
			return
		}
		x.probe.End(probe.Completed)
		(*p).OnComplete()
	}
}

// ---- TakeWhile ----

// TakeWhile returns a publisher that emits the items of src while
// pred(item) is true. At the first item for which pred is false it
// cancels src and completes, without emitting that item. If src ends
// first, TakeWhile ends as src does.
//
// Demand: pass-through, as [Map] (it cannot know in advance how many items
// it will take): Request(n) is forwarded as Request(n), Cancel as Cancel.
// pred runs on the delivering goroutine, one item at a time; a panic in it
// ends the stream with a *flow.PanicError wrapped with the stage name, and
// upstream is cancelled.
//
// Options: [Name]. The subscription is goroutine-safe. Cost: as Map.
// TakeWhile panics if src or pred is nil.
func TakeWhile[T any](src flow.Publisher[T], pred func(T) bool, opts ...Option) flow.Publisher[T] {
	mustSource("TakeWhile", src)
	mustFunc("TakeWhile", pred == nil)
	_, name := newConfig("takewhile", opts)
	return &takeWhilePublisher[T]{src: src, pred: pred, name: name}
}

type takeWhilePublisher[T any] struct {
	src  flow.Publisher[T]
	pred func(T) bool
	name string
}

func (m *takeWhilePublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	x := &takeWhileSubscriber[T]{pred: m.pred}
	x.init(s, m.name, "takewhile")
	m.src.Subscribe(x)
}

type takeWhileSubscriber[T any] struct {
	relay[T]
	pred func(T) bool
}

func (x *takeWhileSubscriber[T]) OnSubscribe(up flow.Subscription) { x.subscribe(up, x) }

func (x *takeWhileSubscriber[T]) OnNext(item T) {
	p := x.down.Load()
	if p == nil {
		return
	}
	ok := false
	defer func() {
		if !ok {
			x.panicked(recover())
		}
	}()
	more := x.pred(item)
	ok = true
	if !more {
		x.complete(p)
		return
	}
	x.emit(p, item)
}

// ---- Skip ----

// Skip returns a publisher that drops the first n items of src and emits
// the rest, ending as src ends. Skip(src, 0) returns src.
//
// Demand: the first positive downstream Request(k) is forwarded as
// Request(k + n) (saturating at Unbounded), so the skipped items are
// requested once, together with the first real demand; later requests
// and Cancel are forwarded unchanged. Skip buffers nothing.
//
// Options: [Name]. The subscription is goroutine-safe. Cost: about 2 ns
// per item, as [Take]; nothing is allocated after Subscribe. Skip panics
// if src is nil or n < 0.
func Skip[T any](src flow.Publisher[T], n int64, opts ...Option) flow.Publisher[T] {
	mustSource("Skip", src)
	if n < 0 {
		panic("sluice: Skip: n < 0")
	}
	_, name := newConfig("skip", opts)
	if n == 0 {
		return src
	}
	return &skipPublisher[T]{src: src, skip: n, name: name}
}

type skipPublisher[T any] struct {
	src  flow.Publisher[T]
	skip int64
	name string
}

func (m *skipPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	x := &skipSubscriber[T]{skip: m.skip}
	x.init(s, m.name, "skip")
	m.src.Subscribe(x)
}

type skipSubscriber[T any] struct {
	relay[T]
	skip    int64
	started atomic.Bool // the first positive request has added skip
	skipped int64       // written by OnNext only
}

func (x *skipSubscriber[T]) OnSubscribe(up flow.Subscription) { x.subscribe(up, x) }

// Request adds the items to skip to the first positive request.
func (x *skipSubscriber[T]) Request(n int64) {
	x.probe.Request(n) // what downstream asked for, before the skipped items
	if n > 0 && !x.started.Load() && x.started.CompareAndSwap(false, true) {
		n = flow.AddCap(n, x.skip)
	}
	x.up.Request(n)
}

func (x *skipSubscriber[T]) OnNext(item T) {
	p := x.down.Load()
	if p == nil {
		return
	}
	if x.skipped < x.skip {
		x.skipped++
		return
	}
	x.emit(p, item)
}
