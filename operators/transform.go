package operators

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/internal/probe"
	"github.com/sluicego/sluice/internal/ring"
	"github.com/sluicego/sluice/internal/stage"
)

// This file holds the shared core of the transform stages and the
// one-for-one stages Map, MapErr, Tap and Scan. Filtering stages are in
// filter.go, Take, TakeWhile and Skip in take.go, Pipe in pipe.go.
//
// Every transform stage builds, per subscription, one object that is both
// the Subscriber of its upstream and the Subscription of its downstream
// (a processor in the Reactive Streams sense). Upstream signals arrive
// serially (rule 1.3), so the per-item state of a stage lives in plain
// fields written only by OnNext. The only state shared with the
// downstream's goroutines is the downstream reference itself, held in an
// atomic pointer: OnNext loads it (a plain load on amd64 and arm64), and
// Cancel, a terminal signal or a failing user function swaps it to nil.
// Whoever swaps the non-nil value out owns the end of the subscription,
// so OnError/OnComplete are sent at most once, nothing follows them, and
// the stage drops its reference to the subscriber (rule 3.13).
//
// A Request(n <= 0) from downstream is forwarded upstream as it is, which
// is what Reactor and RxJava operators do: by rule 3.9 the upstream
// publisher treats the subscription as cancelled and signals
// OnError(flow.NonPositiveRequestError(n)) from its own serial emission,
// and the stage passes it down. That orders the error after any OnNext in
// flight on another goroutine without a per-item guard in the stage.
//
// User functions run under a deferred recover, one per item: a panic
// becomes a *flow.PanicError wrapped with the stage name, upstream is
// cancelled and downstream gets OnError. The deferred call is the largest
// part of a stage's per-item cost, which is why Filter(Map(…)) and
// Map(Filter(…)) fuse into one stage (fuse.go).

// relay is the downstream half shared by the per-subscription objects of
// the transform stages: it forwards Request and Cancel upstream and passes
// terminal signals down. It is embedded; the embedding type supplies
// OnNext and, where demand is reshaped, Request.
type relay[R any] struct {
	down  atomic.Pointer[flow.Subscriber[R]] // nil once cancelled or ended
	up    flow.Subscription                  // set once, in OnSubscribe
	name  string                             // the stage name, for errors
	probe *probe.Stage                       // counters, nil when not monitored
	ctx   context.Context                    // exposed upstream by Context

	// buf is the scratch run an OnNextBatch builds, owned by the
	// upstream's serial signals.
	buf  []R
	ptrs bool // R holds pointers: emitRun clears the runs it delivered
}

// init links the stage to its downstream s and registers it, as kind,
// with the monitor registry that s's context carries, if any.
func (l *relay[R]) init(s flow.Subscriber[R], name, kind string) {
	l.down.Store(&s)
	l.name = name
	l.probe, l.ctx = probe.Attach(s, kind, name, probe.Operator)
}

// Context returns the downstream's context, naming this stage, so that
// the stages upstream register under it and user functions can use it.
func (l *relay[R]) Context() context.Context { return l.ctx }

// emit delivers v downstream, counting it when the stage is monitored.
func (l *relay[R]) emit(p *flow.Subscriber[R], v R) {
	if st := l.probe; st != nil {
		st.Next()
		(*p).OnNext(v)
		st.Returned()
		return
	}
	(*p).OnNext(v)
}

// scratch returns a run of n items to build an OnNextBatch's output in.
// It allocates only when a longer run than ever before arrives, and at
// most stage.MaxBatch items. OnNext goroutine only.
func (l *relay[R]) scratch(n int) []R {
	if cap(l.buf) < n {
		l.buf = make([]R, max(n, min(2*cap(l.buf), stage.MaxBatch)))
		l.ptrs = ring.HoldsPointers[R]()
	}
	return l.buf[:n]
}

// batchTo returns the downstream *p as a stage.BatchSubscriber when it
// takes runs of items, or nil: the stage then delivers item by item. One
// type assertion per run.
func (l *relay[R]) batchTo(p *flow.Subscriber[R]) stage.BatchSubscriber[R] {
	return stage.Batcher(*p)
}

// emitRun hands the run vs, built in the scratch space, to the batch
// downstream b, and clears it afterwards when R holds pointers, so the
// scratch space keeps nothing reachable. OnNext goroutine only.
func (l *relay[R]) emitRun(b stage.BatchSubscriber[R], vs []R) {
	if len(vs) == 0 {
		return
	}
	handRun(l.probe, b, vs)
	if l.ptrs {
		clear(vs)
	}
}

// afterRun is deferred by a stage that maps a run of n items into out,
// its scratch space, while *i counts the items done: if the stage's
// function panicked on item *i, the results before it go downstream to b,
// then the error. It must be the deferred function itself, for recover.
func (l *relay[R]) afterRun(b stage.BatchSubscriber[R], out []R, i *int, n int) {
	if *i < n {
		if v := recover(); v != nil {
			l.emitRun(b, out[:*i])
			l.panicked(v)
		}
	}
}

// runTarget is how a filtering stage starts on a run taken from upstream:
// it returns the downstream p and, when p takes runs and the stage is not
// monitored, p as b, with ok true. Otherwise it passes the run through
// next (the stage's OnNext) item by item, or drops it when the stage has
// ended, and reports ok false.
func runTarget[T, R any](l *relay[R], items []T, next func(T)) (p *flow.Subscriber[R], b stage.BatchSubscriber[R], ok bool) {
	if p = l.down.Load(); p == nil {
		return nil, nil, false
	}
	if b = l.batchTo(p); b == nil {
		nextEach(l, p, items, next)
		return nil, nil, false
	}
	return p, b, true
}

// nextEach passes a run taken from upstream through next (the stage's
// OnNext) item by item, stopping once downstream, p when the run came,
// has cancelled or the stream has ended.
func nextEach[T, R any](l *relay[R], p *flow.Subscriber[R], items []T, next func(T)) {
	for _, v := range items {
		if l.down.Load() != p {
			return
		}
		next(v)
	}
}

// Request forwards n upstream. A non-positive n is forwarded too: the
// upstream publisher signals OnError(flow.NonPositiveRequestError(n))
// through this stage (rule 3.9), from its own serial emission, so the
// error can never overlap an OnNext in flight on another goroutine, and
// this stage needs no per-item guard to order it.
func (l *relay[R]) Request(n int64) {
	l.probe.Request(n)
	l.up.Request(n)
}

// Cancel drops the downstream reference and cancels upstream. It is
// idempotent and does nothing after the subscription has ended.
func (l *relay[R]) Cancel() {
	if l.down.Swap(nil) != nil {
		l.probe.End(probe.Cancelled)
		l.up.Cancel()
	}
}

// subscribe handles OnSubscribe for self, the embedding stage.
func (l *relay[R]) subscribe(up flow.Subscription, self flow.Subscription) {
	if up == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if l.up != nil {
		up.Cancel() // rule 2.5: a second subscription is refused
		return
	}
	l.up = up
	if p := l.down.Load(); p != nil {
		(*p).OnSubscribe(self)
	}
}

// OnError passes an upstream failure down unchanged.
func (l *relay[R]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	if p := l.down.Swap(nil); p != nil {
		l.probe.End(probe.Failed)
		(*p).OnError(err)
	}
}

// OnComplete passes upstream completion down.
func (l *relay[R]) OnComplete() {
	if p := l.down.Swap(nil); p != nil {
		l.probe.End(probe.Completed)
		(*p).OnComplete()
	}
}

// complete ends the stream early (Take, TakeWhile): it cancels upstream
// and completes downstream, unless downstream cancelled first. p is the
// downstream reference the caller loaded.
func (l *relay[R]) complete(p *flow.Subscriber[R]) {
	if l.down.CompareAndSwap(p, nil) {
		l.probe.End(probe.Completed)
		l.up.Cancel()
		(*p).OnComplete()
	}
}

// fail ends the stream with err, the failure of a user function, wrapped
// with the stage name: upstream is cancelled, downstream gets OnError, and
// nothing is signalled after it even if upstream keeps emitting.
func (l *relay[R]) fail(err error) { l.failAs(l.name, err) }

// failAs is fail for the stage called name (a fused stage has two).
func (l *relay[R]) failAs(name string, err error) {
	if p := l.down.Swap(nil); p != nil {
		l.probe.End(probe.Failed)
		l.up.Cancel()
		(*p).OnError(fmt.Errorf("%s: %w", name, err))
	}
}

// panicked turns the value recovered from a user function into a
// *flow.PanicError and fails the stream with it. It must be called from
// the deferred function that recovered, so the stack is the panic's. A nil
// value (runtime.Goexit) is left alone.
func (l *relay[R]) panicked(v any) { l.panickedAs(l.name, v) }

// panickedAs is panicked for the stage called name.
func (l *relay[R]) panickedAs(name string, v any) {
	if v != nil {
		l.failAs(name, flow.NewPanicError(v))
	}
}

// mustFunc panics at construction when a user function is nil.
func mustFunc(kind string, isNil bool) {
	if isNil {
		panic("sluice: " + kind + ": nil function")
	}
}

// mustSource panics at construction when the upstream publisher is nil.
func mustSource[T any](kind string, src flow.Publisher[T]) {
	if src == nil {
		panic("sluice: " + kind + ": nil source")
	}
}

// ---- Map ----

// Map returns a publisher that emits f(item) for every item of src, in
// order, and ends as src ends.
//
// Demand: pass-through. Request(n) from downstream is forwarded upstream
// as Request(n), and Cancel as Cancel; Map buffers nothing. A Request(n)
// with n <= 0 is forwarded too, and the upstream's rule 3.9 error comes
// back through Map, ordered after any item in flight; every transform
// stage does the same.
//
// f runs on the goroutine that delivers the item, one item at a time, so
// it needs no locking of its own. If f panics, the panic becomes a
// *flow.PanicError wrapped with the stage name ("map#1: sluice: panic:
// …"); the stream ends with it and upstream is cancelled.
//
// Runs: between sluice's own stages items travel in runs of up to 256
// (see "Runs between stages" in docs/architecture.md). Map takes a run
// under one deferred recover; when its downstream takes runs too (another
// sluice stage), f maps the whole run before downstream sees
// the first result, and a cancel from downstream is seen between runs.
// Otherwise each result is delivered before f sees the next item. A panic
// delivers the results before it, then the error, either way.
//
// Options: [Name]. The subscription is goroutine-safe. Cost: about 5.5 ns
// per item on a 2-core Xeon VM for single items, the call of f included
// (an interface call, a deferred recover, of which 2 ns, and an atomic
// load); in runs, the call of f, a store, and per run one interface call
// and one deferred recover. Nothing is allocated after Subscribe, which
// allocates two small objects, and the scratch slice of a run (at most
// 256 items) on the first run. Filter(Map(…)) and Map(Filter(…)) fuse
// into one stage that costs about as much as one of them alone. Map
// panics if src or f is nil.
func Map[T, R any](src flow.Publisher[T], f func(T) R, opts ...Option) flow.Publisher[R] {
	mustSource("Map", src)
	mustFunc("Map", f == nil)
	_, name := newConfig("map", opts)
	if l, ok := src.(fuse.Loop[T]); ok {
		return mapLoop[T, R]{&mapPublisher[T, R]{src: src, f: f, name: name}, l} // loop.go
	}
	if fp, ok := src.(*filterPublisher[T]); ok && fp.fresh == nil {
		// Map(Filter(…)): one stage (fuse.go)
		return &filterMapPublisher[T, R]{src: fp.src, keep: fp.keep, f: f, filterName: fp.name, mapName: name}
	}
	return &mapPublisher[T, R]{src: src, f: f, name: name}
}

type mapPublisher[T, R any] struct {
	src  flow.Publisher[T]
	f    func(T) R
	name string
}

func (m *mapPublisher[T, R]) Subscribe(s flow.Subscriber[R]) {
	flow.RequireSubscriber(s)
	x := &mapSubscriber[T, R]{f: m.f}
	x.init(s, m.name, "map")
	m.src.Subscribe(x)
}

type mapSubscriber[T, R any] struct {
	relay[R]
	f func(T) R
}

func (x *mapSubscriber[T, R]) OnSubscribe(up flow.Subscription) { x.subscribe(up, x) }

func (x *mapSubscriber[T, R]) OnNext(item T) {
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
	r := x.f(item)
	ok = true
	x.emit(p, r)
}

// OnNextBatch takes a run of items from upstream (see
// stage.BatchSubscriber) with one panic guard for the run. When
// downstream takes runs too, it maps the whole run into the stage's
// scratch space and hands that on in one call (see mapRun); otherwise it
// delivers each result as OnNext would, before calling f on the next
// item, and stops where downstream's cancel is seen. If f panics, the
// items mapped before are delivered first, then the error.
func (x *mapSubscriber[T, R]) OnNextBatch(items []T) {
	p := x.down.Load()
	if p == nil {
		return
	}
	if b := x.batchTo(p); b != nil {
		x.mapRun(b, items)
		return
	}
	inF := false
	defer func() {
		if inF { // f panicked
			x.panicked(recover())
		}
	}()
	for _, v := range items {
		if x.down.Load() != p {
			return // cancelled: nothing more is delivered
		}
		inF = true
		r := x.f(v)
		inF = false
		x.emit(p, r)
	}
}

// mapRun is OnNextBatch for a downstream b that takes runs. It does not
// look for downstream's cancel within the run: f may see items whose
// results a cancel discards, as behind an async boundary's prefetch.
func (x *mapSubscriber[T, R]) mapRun(b stage.BatchSubscriber[R], items []T) {
	out := x.scratch(len(items))
	i := 0
	defer x.afterRun(b, out, &i, len(items))
	f := x.f
	for ; i < len(items); i++ {
		out[i] = f(items[i])
	}
	x.emitRun(b, out)
}

// ---- MapErr ----

// MapErr returns a publisher that emits f(item) for every item of src, in
// order, until f returns an error. That error ends the stream, wrapped with
// the stage name (fmt.Errorf("%s: %w", name, err), so errors.Is and
// errors.As see the original), and upstream is cancelled.
//
// Demand: pass-through, as [Map]. Panics in f are handled as in Map, and
// so are runs of items: between sluice's stages f maps a whole run before
// downstream sees the first result; the results before an error or a
// panic are delivered first. Options: [Name]. The subscription is
// goroutine-safe. Cost: as Map.
// MapErr panics if src or f is nil.
func MapErr[T, R any](src flow.Publisher[T], f func(T) (R, error), opts ...Option) flow.Publisher[R] {
	mustSource("MapErr", src)
	mustFunc("MapErr", f == nil)
	_, name := newConfig("maperr", opts)
	p := &mapErrPublisher[T, R]{src: src, f: f, name: name}
	if l, ok := src.(fuse.Loop[T]); ok {
		return mapErrLoop[T, R]{p, l} // loop.go
	}
	return p
}

type mapErrPublisher[T, R any] struct {
	src  flow.Publisher[T]
	f    func(T) (R, error)
	name string
}

func (m *mapErrPublisher[T, R]) Subscribe(s flow.Subscriber[R]) {
	flow.RequireSubscriber(s)
	x := &mapErrSubscriber[T, R]{f: m.f}
	x.init(s, m.name, "maperr")
	m.src.Subscribe(x)
}

type mapErrSubscriber[T, R any] struct {
	relay[R]
	f func(T) (R, error)
}

func (x *mapErrSubscriber[T, R]) OnSubscribe(up flow.Subscription) { x.subscribe(up, x) }

func (x *mapErrSubscriber[T, R]) OnNext(item T) {
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
	r, err := x.f(item)
	ok = true
	if err != nil {
		x.fail(err)
		return
	}
	x.emit(p, r)
}

// OnNextBatch takes a run of items from upstream (see
// stage.BatchSubscriber). When downstream takes runs too, f maps the run
// into the stage's scratch space until the run ends or f fails, and the
// results go on in one call, before the error if f failed or panicked.
// Otherwise each item goes through OnNext.
func (x *mapErrSubscriber[T, R]) OnNextBatch(items []T) {
	_, b, ok := runTarget(&x.relay, items, x.OnNext)
	if !ok {
		return
	}
	out := x.scratch(len(items))
	i := 0
	defer x.afterRun(b, out, &i, len(items))
	f := x.f
	for ; i < len(items); i++ {
		r, err := f(items[i])
		if err != nil {
			n := i
			i = len(items) // not a panic
			x.emitRun(b, out[:n])
			x.fail(err)
			return
		}
		out[i] = r
	}
	x.emitRun(b, out)
}

// ---- Tap ----

// Tap returns a publisher that calls fn(item) for every item of src and
// then emits the item unchanged: a peek for logging, metrics or tests.
//
// Demand: pass-through, as [Map]. fn runs before the item is delivered
// downstream, on the delivering goroutine, one item at a time; between
// sluice's own stages, which pass runs of items (see [Map]), fn sees a
// whole run before the next stage sees its first item. A panic in fn ends
// the stream with a *flow.PanicError, as in Map. Options: [Name].
// The subscription is goroutine-safe. Cost: as Map. Tap panics if src or
// fn is nil.
func Tap[T any](src flow.Publisher[T], fn func(T), opts ...Option) flow.Publisher[T] {
	mustSource("Tap", src)
	mustFunc("Tap", fn == nil)
	_, name := newConfig("tap", opts)
	p := &tapPublisher[T]{src: src, fn: fn, name: name}
	if l, ok := src.(fuse.Loop[T]); ok {
		return tapLoop[T]{p, l} // loop.go
	}
	return p
}

type tapPublisher[T any] struct {
	src  flow.Publisher[T]
	fn   func(T)
	name string
}

func (m *tapPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	x := &tapSubscriber[T]{fn: m.fn}
	x.init(s, m.name, "tap")
	m.src.Subscribe(x)
}

type tapSubscriber[T any] struct {
	relay[T]
	fn func(T)
}

func (x *tapSubscriber[T]) OnSubscribe(up flow.Subscription) { x.subscribe(up, x) }

func (x *tapSubscriber[T]) OnNext(item T) {
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
	x.fn(item)
	ok = true
	x.emit(p, item)
}

// OnNextBatch takes a run of items from upstream (see
// stage.BatchSubscriber). When downstream takes runs too, fn sees the
// whole run, which then goes on unchanged in one call (the items before
// it if fn panics, then the error). Otherwise each item goes through
// OnNext.
func (x *tapSubscriber[T]) OnNextBatch(items []T) {
	_, b, ok := runTarget(&x.relay, items, x.OnNext)
	if !ok {
		return
	}
	i := 0
	defer func() {
		if i < len(items) { // fn panicked on items[i]
			if v := recover(); v != nil {
				if i > 0 {
					handRun(x.probe, b, items[:i])
				}
				x.panicked(v)
			}
		}
	}()
	fn := x.fn
	for ; i < len(items); i++ {
		fn(items[i])
	}
	handRun(x.probe, b, items)
}

// ---- Scan ----

// Scan returns a publisher that folds the items of src with f, starting
// from initial, and emits every running accumulation: for items x1, x2, …
// it emits f(initial, x1), f(f(initial, x1), x2), …. It does not emit
// initial itself, so it emits exactly one item per upstream item; use
// sinks.Reduce for the final value only.
//
// Each subscription starts again from initial. If A holds references (a
// slice, a map), f must not modify initial in place, or subscriptions will
// share it.
//
// Demand: pass-through, as [Map]. A panic in f ends the stream with a
// *flow.PanicError, as in Map. Options: [Name]. The subscription is
// goroutine-safe. Cost: as Map. Scan panics if src or f is nil.
func Scan[T, A any](src flow.Publisher[T], initial A, f func(acc A, item T) A, opts ...Option) flow.Publisher[A] {
	mustSource("Scan", src)
	mustFunc("Scan", f == nil)
	_, name := newConfig("scan", opts)
	return &scanPublisher[T, A]{src: src, initial: initial, f: f, name: name}
}

type scanPublisher[T, A any] struct {
	src     flow.Publisher[T]
	initial A
	f       func(A, T) A
	name    string
}

func (m *scanPublisher[T, A]) Subscribe(s flow.Subscriber[A]) {
	flow.RequireSubscriber(s)
	x := &scanSubscriber[T, A]{f: m.f, acc: m.initial}
	x.init(s, m.name, "scan")
	m.src.Subscribe(x)
}

type scanSubscriber[T, A any] struct {
	relay[A]
	f   func(A, T) A
	acc A // written by OnNext only
}

func (x *scanSubscriber[T, A]) OnSubscribe(up flow.Subscription) { x.subscribe(up, x) }

func (x *scanSubscriber[T, A]) OnNext(item T) {
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
	x.acc = x.f(x.acc, item)
	ok = true
	x.emit(p, x.acc)
}
