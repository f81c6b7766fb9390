package rxgo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	rx "github.com/reactivex/rxgo/v2"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
	"github.com/sluicego/sluice/sources"
)

// ErrItemType is the error, wrapped with the stage name and the types,
// that ends a [FromObservable] stream when the Observable emits a value
// that is not of the Publisher's item type.
var ErrItemType = errors.New("sluice: rxgo: item of the wrong type")

// FromObservable returns a Publisher of the items of obs, which must be
// of type T (a nil value is accepted as the zero T when T is an interface
// type).
//
// Each Subscribe observes obs anew (obs.Observe, with the
// [ObservableOptions] and an rx.WithContext of the adapter's): a lazy
// Observable (Just, Range, Defer, operators on them) runs again for each
// subscriber, while one built on a channel (FromChannel) hands each item
// to one of its observers only. Subscribe starts one goroutine that reads
// the Observable's channel into a buffer of capacity items, a
// sources.Emitter under policy:
//
//   - [flow.Block]: when the buffer is full the goroutine waits for room,
//     so it stops reading and rxgo's goroutines block on their channel
//     sends: a lazy Observable is slowed to the subscriber's pace. An
//     Observable that cannot wait (rx.FromEventSource) drops by itself,
//     unseen by this adapter.
//   - [flow.DropNewest], [flow.DropOldest]: the goroutine reads as fast as
//     rxgo sends, and a full buffer drops the incoming item or evicts the
//     oldest.
//   - [flow.Fail]: an item that finds the buffer full is dropped and ends
//     the stream with an error that matches flow.ErrOverflow, after the
//     buffered items.
//
// What it requests upstream: nothing, since rxgo has no demand; the
// subscriber's Request(n) lets n buffered items through. Items read
// before the subscriber requests are buffered.
//
// How it ends: when the Observable's channel closes, the subscriber
// receives the buffered items then OnComplete; an error item (rxgo's
// default strategy stops the Observable on it) is passed on unchanged,
// after the buffered items; a value of the wrong type ends the stream
// with an error that matches [ErrItemType]. When the subscriber cancels,
// or its context (if it has a Context() context.Context method, as
// sluice's sinks do) is done, the adapter cancels the context it gave to
// Observe, which stops rxgo's goroutines, and its own goroutine ends.
//
// Every item read and not delivered is counted and passed to the
// [OnDrop] hook with its reason. Options: [Name], [OnDrop],
// [ObservableOptions]. Cost: per item, rxgo's channel receive and a type
// assertion, then an Emitter emit (a mutex and a few atomic operations);
// Subscribe allocates the buffer and starts a goroutine.
//
// FromObservable panics if obs is nil, capacity <= 0, policy is invalid,
// or the OnDrop hook's item type is not T. The Publisher is
// goroutine-safe and may be subscribed many times.
func FromObservable[T any](obs rx.Observable, capacity int, policy flow.Overflow, opts ...Option) flow.Publisher[T] {
	if obs == nil {
		panic("sluice: FromObservable: nil Observable")
	}
	if capacity <= 0 {
		panic("sluice: FromObservable: capacity <= 0")
	}
	if !policy.Valid() {
		panic(fmt.Sprintf("sluice: FromObservable: invalid policy %v", policy))
	}
	c, name := newConfig("fromObservable", opts)
	p := &fromPublisher[T]{
		obs:      obs,
		capacity: capacity,
		policy:   policy,
		name:     name,
		rxOpts:   slices.Clip(c.rxOpts),
		srcOpts:  []sources.Option{sources.Name(name)},
	}
	if hook := stage.DropHook[T](&c.Config, name); hook != nil {
		p.srcOpts = append(p.srcOpts, sources.OnDrop(hook))
	}
	return p
}

type fromPublisher[T any] struct {
	obs      rx.Observable
	capacity int
	policy   flow.Overflow
	name     string
	rxOpts   []rx.Option
	srcOpts  []sources.Option
}

func (p *fromPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	parent := context.Background()
	if c, ok := s.(interface{ Context() context.Context }); ok && c.Context() != nil {
		parent = c.Context()
	}
	e := sources.NewEmitter[T](p.capacity, p.policy, p.srcOpts...)
	e.Publisher().Subscribe(s)
	ctx, cancel := context.WithCancel(parent)
	ch := p.obs.Observe(append(p.rxOpts, rx.WithContext(ctx))...)
	go p.pump(ctx, cancel, ch, e)
}

// pump reads the Observable's channel into the emitter until the channel
// closes, an error item arrives, the subscription ends or ctx is done.
// It is the stage's single delivery point.
func (p *fromPublisher[T]) pump(ctx context.Context, cancel context.CancelFunc, ch <-chan rx.Item, e *sources.Emitter[T]) {
	defer cancel()
	for {
		select {
		case <-e.Done():
			return
		case <-ctx.Done():
			e.Fail(context.Cause(ctx))
			return
		case it, ok := <-ch:
			if !ok {
				if err := ctx.Err(); err != nil {
					// A cancelled rxgo chain closes its channel too.
					e.Fail(context.Cause(ctx))
				} else {
					e.Complete()
				}
				return
			}
			if it.E != nil {
				e.Fail(it.E)
				return
			}
			v, ok := it.V.(T)
			if !ok {
				if any(v) != nil || it.V != nil { // a nil value is the zero T for an interface T
					e.Fail(fmt.Errorf("%s: %w: got %T, want %T", p.name, ErrItemType, it.V, v))
					return
				}
			}
			if err := e.Emit(ctx, v); err != nil {
				// ErrClosed (the subscriber cancelled, or a Fail overflow
				// ended the stream: either way the emitter is closed) or
				// ctx.Err().
				if ctx.Err() != nil {
					e.Fail(context.Cause(ctx))
				}
				return
			}
		}
	}
}
