package operators

import (
	"math"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/internal/stage"
)

// Filtering stages forward downstream's Request(n) upstream unchanged.
// Every item they reject has used up one unit of upstream demand without
// satisfying downstream, so they must ask upstream for a replacement, but
// not with a Request(1) per rejected item. They count rejected items in a
// plain field (OnNext is serial) and re-request them all in one call once
// the demand that upstream still holds has fallen to a third of the
// rejections pending or less.
//
// Why that never stalls: let D be downstream's outstanding demand, U the
// upstream's, and pend the rejections not yet re-requested. Upstream has
// been asked for everything downstream asked for plus the re-requested
// rejections, and has delivered the accepted items plus all rejections,
// so U = D - pend. The stream could stall only with U = 0 and D > 0, that
// is pend = D > 0; the stage flushes whenever U <= pend/3 after an item,
// which includes U = 0 with anything pending, and U only falls when an
// item arrives, so that state is never left standing. The stage computes
// U as req - recv, where req counts what it has asked upstream for (it
// counts a downstream request before forwarding it, so req - recv is never
// below the true U). A flush asks for exactly the rejections pending, so
// the stage never asks for more than downstream did plus what it
// rejected, and never delivers more than downstream requested.
//
// U <= pend/3 with U = D - pend means pend >= 3D/4: the replacements go up
// when three quarters of the demand upstream held has been spent on
// rejected items (Reactor's 75 % rule), so upstream keeps a quarter of the
// demand to work on meanwhile. For a downstream that requests 256 and
// then 192 at a time, the batches are 50 to 190 items. A downstream that
// requests one item at a time gets one replacement request per rejected
// item: a stage without a buffer cannot ask for more than was rejected.

// refill is the demand accounting of the filtering stages. To keep the
// per-item cost to plain arithmetic, OnNext does not look at req for every
// item: due counts down the items that can arrive before the flush
// condition can first hold (see dueIn), and flush looks at req only when
// it reaches zero. req only grows behind OnNext's back, which only delays
// the condition, so the countdown never misses it.
type refill struct {
	req  flow.Demand // total requested upstream, saturating at Unbounded
	recv int64       // items received from upstream; written by OnNext only
	pend int64       // rejected items not yet re-requested; OnNext only
	due  int64       // items until flush must run again; OnNext only
}

// filterLink is the shared half of the filtering stages: a relay whose
// Request also counts what it forwards.
type filterLink[T any] struct {
	relay[T]
	refill
}

// Request counts n and forwards it upstream; n <= 0 is forwarded as is
// (see relay.Request).
func (x *filterLink[T]) Request(n int64) {
	x.probe.Request(n)
	if n > 0 {
		x.req.Add(n) // before forwarding: req - recv must not undercount U
	}
	x.up.Request(n)
}

// flush re-requests the pending rejections if the upstream's outstanding
// demand U has fallen to a third of their number or below, and sets the
// countdown to the next look. Called from OnNext only, when due runs out.
func (x *filterLink[T]) flush() {
	r := x.req.Load()
	if r == flow.Unbounded {
		x.pend, x.due = 0, flow.Unbounded // nothing to replace, ever
		return
	}
	u := r - x.recv
	if u <= x.pend/3 && x.pend > 0 {
		n := x.pend
		x.pend = 0
		x.req.Add(n)
		x.up.Request(n)
		u += n
	}
	x.due = dueIn(u, x.pend)
}

// dueIn returns how many more items can arrive before the flush condition
// U <= pend/3 (that is 3U <= pend) can first hold, given U and pend now.
// Each item lowers U by one and raises pend by at most one, so after k
// items 3(U-k) <= pend+k needs k >= (3U-pend)/4. It is at least 1.
func dueIn(u, pend int64) int64 {
	if u > math.MaxInt64/4 {
		return math.MaxInt64 / 4
	}
	return max((3*u-pend+3)/4, 1)
}

// segment returns how many of the n items left in a run can be taken
// before the replacement countdown (due) runs out: a stage that takes
// runs works through them in such segments and accounts for each with
// counted, so that its counters move once per segment, not per item.
func (x *filterLink[T]) segment(n int) int {
	return int(min(int64(n), max(x.due, 1)))
}

// counted accounts for a segment of n items of which kept were passed
// on, as n calls of OnNext would, and re-requests the rejected ones when
// due.
func (x *filterLink[T]) counted(n, kept int) {
	x.recv += int64(n)
	x.pend += int64(n - kept)
	if x.due -= int64(n); x.due <= 0 {
		x.flush()
	}
}

// ---- Filter ----

// Filter returns a publisher that emits the items of src for which keep
// returns true, in order, and ends as src ends.
//
// Demand: Request(n) from downstream is forwarded upstream as Request(n);
// Cancel as Cancel. Rejected items are replaced without a Request(1)
// round trip each: Filter counts them and re-requests them in one
// Request when the demand upstream still holds has fallen to a third of
// the rejections pending (about every 3D/4 rejections for a downstream
// demand of D, and at once when upstream would otherwise stop). It never
// requests more than downstream requested plus what it rejected, and
// buffers nothing. Under Unbounded demand it requests nothing more.
//
// keep runs on the goroutine that delivers the item, one item at a time.
// If keep panics, the stream ends with a *flow.PanicError wrapped with the
// stage name and upstream is cancelled.
//
// Runs: as [Map], Filter takes runs of items from sluice's own stages,
// and passes the kept items on as one run when downstream takes runs (keep
// sees the whole run first, and a cancel is seen between runs and at each
// replacement request); otherwise each kept item is delivered before keep
// sees the next.
//
// Options: [Name]. The subscription is goroutine-safe. Cost: about 6 ns
// per item, the call of keep included, as [Map], plus one Request upstream
// per batch of replacements; in runs, the call of keep and a store.
// Nothing is allocated after Subscribe but, as in Map, the scratch slice
// of a run. Filter(Map(…)) and Map(Filter(…)) fuse into one stage. Filter
// panics if src or keep is nil.
func Filter[T any](src flow.Publisher[T], keep func(T) bool, opts ...Option) flow.Publisher[T] {
	mustSource("Filter", src)
	mustFunc("Filter", keep == nil)
	_, name := newConfig("filter", opts)
	if l, ok := src.(fuse.Loop[T]); ok {
		return filterLoop[T]{&filterPublisher[T]{src: src, keep: keep, name: name}, l} // loop.go
	}
	if f, ok := src.(filterFuser[T]); ok {
		return f.fuseFilter(keep, name) // Filter(Map(…)): one stage (fuse.go)
	}
	return &filterPublisher[T]{src: src, keep: keep, name: name}
}

// filterPublisher serves Filter, and Distinct and its kin, whose keep
// function has state: fresh makes one per subscription.
type filterPublisher[T any] struct {
	src   flow.Publisher[T]
	keep  func(T) bool
	fresh func() func(T) bool
	name  string
}

func (m *filterPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	keep := m.keep
	if m.fresh != nil {
		keep = m.fresh()
	}
	x := &filterSubscriber[T]{keep: keep}
	x.init(s, m.name, "filter")
	m.src.Subscribe(x)
}

type filterSubscriber[T any] struct {
	filterLink[T]
	keep func(T) bool
}

func (x *filterSubscriber[T]) OnSubscribe(up flow.Subscription) { x.subscribe(up, x) }

func (x *filterSubscriber[T]) OnNext(item T) {
	p := x.down.Load()
	if p == nil {
		return
	}
	x.recv++
	ok := false
	defer func() {
		if !ok {
			x.panicked(recover())
		}
	}()
	keep := x.keep(item)
	ok = true
	if keep {
		x.emit(p, item)
	} else {
		x.pend++
	}
	if x.due--; x.due <= 0 {
		x.flush()
	}
}

// OnNextBatch takes a run of items from upstream (see
// stage.BatchSubscriber). When downstream takes runs too, the kept items
// go on as one run (see runFiltered); otherwise each item goes through
// OnNext, so each kept item is delivered before keep sees the next one,
// stopping where downstream's cancel is seen.
func (x *filterSubscriber[T]) OnNextBatch(items []T) {
	p, b, ok := runTarget(&x.relay, items, x.OnNext)
	if !ok {
		return
	}
	keep := x.keep
	x.runFiltered(p, b, len(items), func(lo, hi int, out []T, k *int) {
		for _, v := range items[lo:hi] {
			if keep(v) {
				out[*k] = v
				*k++
			}
		}
	}, func() string { return x.name })
}

// runFiltered is the run path of Filter and of the fused Map/Filter pairs,
// for a downstream b that takes runs. It works through the n items of a
// run in segments that end where the replacement countdown (due) runs
// out: seg handles the items lo to hi, storing the results it keeps into
// out from *k on and advancing *k as it goes; the counters are updated
// and the replacements requested once per segment, and downstream's
// cancel is looked for once per segment, so within a segment the user
// functions may see items whose results a cancel discards. The kept
// results go downstream in one call. If seg panics, the results kept
// before go downstream first, then the error, named by name.
func (x *filterLink[R]) runFiltered(p *flow.Subscriber[R], b stage.BatchSubscriber[R], n int,
	seg func(lo, hi int, out []R, k *int), name func() string) {
	out := x.scratch(n)
	k, inSeg := 0, false
	defer func() {
		if inSeg { // a user function panicked
			if v := recover(); v != nil {
				x.emitRun(b, out[:k])
				x.panickedAs(name(), v)
			}
		}
	}()
	for lo := 0; lo < n; {
		if x.down.Load() != p {
			return // cancelled: nothing more is delivered
		}
		hi := lo + x.segment(n-lo)
		kept := k
		inSeg = true
		seg(lo, hi, out, &k)
		inSeg = false
		x.counted(hi-lo, k-kept)
		lo = hi
	}
	x.emitRun(b, out[:k])
}

// ---- FilterErr ----

// FilterErr is [Filter] with a keep function that can fail: an error ends
// the stream, wrapped with the stage name (fmt.Errorf("%s: %w", name,
// err)), and upstream is cancelled.
//
// Demand, panics, options, goroutine-safety and cost are as in Filter.
// FilterErr panics if src or keep is nil.
func FilterErr[T any](src flow.Publisher[T], keep func(T) (bool, error), opts ...Option) flow.Publisher[T] {
	mustSource("FilterErr", src)
	mustFunc("FilterErr", keep == nil)
	_, name := newConfig("filtererr", opts)
	return &filterErrPublisher[T]{src: src, keep: keep, name: name}
}

type filterErrPublisher[T any] struct {
	src  flow.Publisher[T]
	keep func(T) (bool, error)
	name string
}

func (m *filterErrPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	x := &filterErrSubscriber[T]{keep: m.keep}
	x.init(s, m.name, "filtererr")
	m.src.Subscribe(x)
}

type filterErrSubscriber[T any] struct {
	filterLink[T]
	keep func(T) (bool, error)
}

func (x *filterErrSubscriber[T]) OnSubscribe(up flow.Subscription) { x.subscribe(up, x) }

func (x *filterErrSubscriber[T]) OnNext(item T) {
	p := x.down.Load()
	if p == nil {
		return
	}
	x.recv++
	ok := false
	defer func() {
		if !ok {
			x.panicked(recover())
		}
	}()
	keep, err := x.keep(item)
	ok = true
	if err != nil {
		x.fail(err)
		return
	}
	if keep {
		x.emit(p, item)
	} else {
		x.pend++
	}
	if x.due--; x.due <= 0 {
		x.flush()
	}
}

// ---- Distinct ----

// Distinct returns a publisher that emits each item of src the first time
// it is seen and drops later repeats, in order.
//
// Memory: each subscription keeps a set of every distinct item it has
// seen, for as long as the subscription lives, so memory grows with the
// number of distinct items. For an unbounded stream of unique keys use
// [DistinctUntilChanged] (constant memory) or a bounded window upstream.
//
// Demand: as [Filter]; repeats are re-requested in batches. Options:
// [Name]. The subscription is goroutine-safe. Cost: a map lookup per item
// and a map insert per new item. Distinct panics if src is nil.
func Distinct[T comparable](src flow.Publisher[T], opts ...Option) flow.Publisher[T] {
	mustSource("Distinct", src)
	_, name := newConfig("distinct", opts)
	return &filterPublisher[T]{src: src, name: name, fresh: func() func(T) bool {
		seen := make(map[T]struct{})
		return func(item T) bool {
			if _, dup := seen[item]; dup {
				return false
			}
			seen[item] = struct{}{}
			return true
		}
	}}
}

// DistinctBy is [Distinct] by key: it emits each item whose key(item) has
// not been seen before. It keeps the set of all keys seen, as Distinct
// does. A panic in key ends the stream with a *flow.PanicError, as in
// Filter. DistinctBy panics if src or key is nil.
func DistinctBy[T any, K comparable](src flow.Publisher[T], key func(T) K, opts ...Option) flow.Publisher[T] {
	mustSource("DistinctBy", src)
	mustFunc("DistinctBy", key == nil)
	_, name := newConfig("distinctby", opts)
	return &filterPublisher[T]{src: src, name: name, fresh: func() func(T) bool {
		seen := make(map[K]struct{})
		return func(item T) bool {
			k := key(item)
			if _, dup := seen[k]; dup {
				return false
			}
			seen[k] = struct{}{}
			return true
		}
	}}
}

// DistinctUntilChanged returns a publisher that drops an item of src when
// it equals the item just before it, so runs of equal items collapse to
// one: 1 1 2 2 1 becomes 1 2 1. It keeps only the previous item.
//
// Demand: as [Filter]. Options: [Name]. The subscription is
// goroutine-safe. Cost: as Filter plus a comparison and an indirect call;
// nothing is allocated after Subscribe. DistinctUntilChanged panics if src
// is nil.
func DistinctUntilChanged[T comparable](src flow.Publisher[T], opts ...Option) flow.Publisher[T] {
	mustSource("DistinctUntilChanged", src)
	_, name := newConfig("distinctuntilchanged", opts)
	return &filterPublisher[T]{src: src, name: name, fresh: func() func(T) bool {
		var last T
		started := false
		return func(item T) bool {
			if started && item == last {
				return false
			}
			last, started = item, true
			return true
		}
	}}
}
