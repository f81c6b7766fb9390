package operators

import "github.com/sluicego/sluice/flow"

// Macro fusion: Filter applied to a Map, and Map applied to a Filter, build
// one stage instead of two. The fused stage runs both functions in one
// OnNext, under one deferred recover, and saves an interface call, a
// deferred call and a load per item (about a third of the pair's cost).
// It is not observable: it requests upstream exactly what the Filter of
// the pair would, its errors and panics are wrapped with the name of the
// stage whose function failed, and each stage keeps its name.

// filterFuser is implemented by publishers that can absorb a Filter.
type filterFuser[T any] interface {
	fuseFilter(keep func(T) bool, name string) flow.Publisher[T]
}

func (m *mapPublisher[T, R]) fuseFilter(keep func(R) bool, name string) flow.Publisher[R] {
	return &mapFilterPublisher[T, R]{src: m.src, f: m.f, keep: keep, mapName: m.name, filterName: name}
}

// mapFilterPublisher is Filter(Map(src, f), keep).
type mapFilterPublisher[T, R any] struct {
	src        flow.Publisher[T]
	f          func(T) R
	keep       func(R) bool
	mapName    string
	filterName string
}

func (m *mapFilterPublisher[T, R]) Subscribe(s flow.Subscriber[R]) {
	flow.RequireSubscriber(s)
	x := &mapFilterSubscriber[T, R]{f: m.f, keep: m.keep, mapName: m.mapName}
	x.init(s, m.filterName, "map+filter")
	m.src.Subscribe(x)
}

type mapFilterSubscriber[T, R any] struct {
	filterLink[R]
	f       func(T) R
	keep    func(R) bool
	mapName string
}

func (x *mapFilterSubscriber[T, R]) OnSubscribe(up flow.Subscription) { x.subscribe(up, x) }

func (x *mapFilterSubscriber[T, R]) OnNext(item T) {
	p := x.down.Load()
	if p == nil {
		return
	}
	x.recv++
	stage := 0 // 0: in f, 1: in keep, 2: user code done
	defer func() {
		if stage != 2 {
			x.panickedAs(x.nameOf(stage), recover())
		}
	}()
	r := x.f(item)
	stage = 1
	keep := x.keep(r)
	stage = 2
	if keep {
		x.emit(p, r)
	} else {
		x.pend++
	}
	if x.due--; x.due <= 0 {
		x.flush()
	}
}

// OnNextBatch takes a run of items from upstream (see
// stage.BatchSubscriber). When downstream takes runs too, the pair maps
// and filters the run and hands the kept results on in one call (see
// filterLink.runFiltered); a panic is named after the stage whose
// function panicked. Otherwise each item goes through OnNext.
func (x *mapFilterSubscriber[T, R]) OnNextBatch(items []T) {
	p, b, ok := runTarget(&x.relay, items, x.OnNext)
	if !ok {
		return
	}
	f, keep := x.f, x.keep
	stage := 0 // as in OnNext
	x.runFiltered(p, b, len(items), func(lo, hi int, out []R, k *int) {
		for _, v := range items[lo:hi] {
			stage = 0
			r := f(v)
			stage = 1
			if keep(r) {
				out[*k] = r
				*k++
			}
		}
	}, func() string { return x.nameOf(stage) })
}

func (x *mapFilterSubscriber[T, R]) nameOf(stage int) string {
	if stage == 0 {
		return x.mapName
	}
	return x.name
}

// filterMapPublisher is Map(Filter(src, keep), f).
type filterMapPublisher[T, R any] struct {
	src        flow.Publisher[T]
	keep       func(T) bool
	f          func(T) R
	filterName string
	mapName    string
}

func (m *filterMapPublisher[T, R]) Subscribe(s flow.Subscriber[R]) {
	flow.RequireSubscriber(s)
	x := &filterMapSubscriber[T, R]{keep: m.keep, f: m.f, filterName: m.filterName}
	x.init(s, m.mapName, "filter+map")
	m.src.Subscribe(x)
}

type filterMapSubscriber[T, R any] struct {
	filterLink[R]
	keep       func(T) bool
	f          func(T) R
	filterName string
}

func (x *filterMapSubscriber[T, R]) OnSubscribe(up flow.Subscription) { x.subscribe(up, x) }

func (x *filterMapSubscriber[T, R]) OnNext(item T) {
	p := x.down.Load()
	if p == nil {
		return
	}
	x.recv++
	stage := 0 // 0: in keep, 1: in f, 2: user code done
	defer func() {
		if stage != 2 {
			x.panickedAs(x.nameOf(stage), recover())
		}
	}()
	if x.keep(item) {
		stage = 1
		r := x.f(item)
		stage = 2
		x.emit(p, r)
	} else {
		stage = 2
		x.pend++
	}
	if x.due--; x.due <= 0 {
		x.flush()
	}
}

// OnNextBatch is [mapFilterSubscriber.OnNextBatch] for the pair in the
// other order: keep, then f on the items kept.
func (x *filterMapSubscriber[T, R]) OnNextBatch(items []T) {
	p, b, ok := runTarget(&x.relay, items, x.OnNext)
	if !ok {
		return
	}
	f, keep := x.f, x.keep
	stage := 0 // as in OnNext
	x.runFiltered(p, b, len(items), func(lo, hi int, out []R, k *int) {
		for _, v := range items[lo:hi] {
			stage = 0
			if keep(v) {
				stage = 1
				out[*k] = f(v)
				*k++
			}
		}
	}, func() string { return x.nameOf(stage) })
}

func (x *filterMapSubscriber[T, R]) nameOf(stage int) string {
	if stage == 0 {
		return x.filterName
	}
	return x.name
}
