package operators

import "github.com/sluicego/sluice/flow"

// Stage is a step that turns a publisher of T into another publisher of T,
// such as a Filter with its function bound. [Pipe] applies a list of them;
// [Stages] makes them from the operators of this package; any func with
// this signature will do.
type Stage[T any] func(flow.Publisher[T]) flow.Publisher[T]

// Then returns the stage that applies s, then next. It lets a reusable
// sub-pipeline be built once and passed around as one Stage.
func (s Stage[T]) Then(next Stage[T]) Stage[T] {
	if s == nil || next == nil {
		panic("sluice: Stage.Then: nil stage")
	}
	return func(p flow.Publisher[T]) flow.Publisher[T] { return next(s(p)) }
}

// Pipe applies stages to src in order and returns the last publisher:
// Pipe(src, a, b, c) is c(b(a(src))), written in the order the items flow.
// With no stages it returns src. Like every operator, it only builds the
// pipeline: nothing runs until a sink subscribes, and each subscription
// gets its own instance of every stage.
//
// Pipe chains stages of one item type; a stage that changes the type
// ([Map] to another type, [Scan], …) is a plain call between two Pipes.
// Pipe panics if a stage is nil, or returns nil.
func Pipe[T any](src flow.Publisher[T], stages ...Stage[T]) flow.Publisher[T] {
	mustSource("Pipe", src)
	for _, s := range stages {
		if s == nil {
			panic("sluice: Pipe: nil stage")
		}
		if src = s(src); src == nil {
			panic("sluice: Pipe: a stage returned a nil publisher")
		}
	}
	return src
}

// Stages makes the same-typed operators of this package into [Stage]
// values for [Pipe], with their functions and options bound. Its zero
// value is ready to use:
//
//	var ops operators.Stages[int]
//	out := operators.Pipe(src, ops.Filter(isEven), ops.Map(square), ops.Take(3))
//
// Each method validates its arguments at once, with the panics of the
// operator it stands for, and builds the operator when the stage is
// applied; a stage applied twice builds two operators (with two derived
// names, unless a [Name] option is given).
type Stages[T any] struct{}

// Map is [Map] from T to T as a Stage.
func (Stages[T]) Map(f func(T) T, opts ...Option) Stage[T] {
	mustFunc("Map", f == nil)
	return func(p flow.Publisher[T]) flow.Publisher[T] { return Map(p, f, opts...) }
}

// MapErr is [MapErr] from T to T as a Stage.
func (Stages[T]) MapErr(f func(T) (T, error), opts ...Option) Stage[T] {
	mustFunc("MapErr", f == nil)
	return func(p flow.Publisher[T]) flow.Publisher[T] { return MapErr(p, f, opts...) }
}

// Filter is [Filter] as a Stage.
func (Stages[T]) Filter(keep func(T) bool, opts ...Option) Stage[T] {
	mustFunc("Filter", keep == nil)
	return func(p flow.Publisher[T]) flow.Publisher[T] { return Filter(p, keep, opts...) }
}

// FilterErr is [FilterErr] as a Stage.
func (Stages[T]) FilterErr(keep func(T) (bool, error), opts ...Option) Stage[T] {
	mustFunc("FilterErr", keep == nil)
	return func(p flow.Publisher[T]) flow.Publisher[T] { return FilterErr(p, keep, opts...) }
}

// Tap is [Tap] as a Stage.
func (Stages[T]) Tap(fn func(T), opts ...Option) Stage[T] {
	mustFunc("Tap", fn == nil)
	return func(p flow.Publisher[T]) flow.Publisher[T] { return Tap(p, fn, opts...) }
}

// Scan is [Scan] with an accumulator of type T as a Stage.
func (Stages[T]) Scan(initial T, f func(acc, item T) T, opts ...Option) Stage[T] {
	mustFunc("Scan", f == nil)
	return func(p flow.Publisher[T]) flow.Publisher[T] { return Scan(p, initial, f, opts...) }
}

// Take is [Take] as a Stage.
func (Stages[T]) Take(n int64, opts ...Option) Stage[T] {
	if n < 0 {
		panic("sluice: Take: n < 0")
	}
	return func(p flow.Publisher[T]) flow.Publisher[T] { return Take(p, n, opts...) }
}

// TakeWhile is [TakeWhile] as a Stage.
func (Stages[T]) TakeWhile(pred func(T) bool, opts ...Option) Stage[T] {
	mustFunc("TakeWhile", pred == nil)
	return func(p flow.Publisher[T]) flow.Publisher[T] { return TakeWhile(p, pred, opts...) }
}

// Skip is [Skip] as a Stage.
func (Stages[T]) Skip(n int64, opts ...Option) Stage[T] {
	if n < 0 {
		panic("sluice: Skip: n < 0")
	}
	return func(p flow.Publisher[T]) flow.Publisher[T] { return Skip(p, n, opts...) }
}
