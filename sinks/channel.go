package sinks

import (
	"context"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
)

// ToChannel subscribes to pub and sends each item to ch, in order, then
// closes ch when it returns, whatever the reason. It blocks until the
// stream ends: it returns nil when pub completes and pub's error when it
// fails. When ctx is done first, a send in progress is abandoned, upstream
// is cancelled and ToChannel returns ctx.Err(); if ctx is already done it
// closes ch and returns without subscribing.
//
// ToChannel must be the only sender on ch and nobody else may close it;
// the usual shape runs ToChannel on its own goroutine and ranges over ch
// on another. Every send happens before ch is closed, and no send starts
// after ToChannel has returned.
//
// Demand: ToChannel requests max(cap(ch), 1) items when it subscribes,
// unless a [Prefetch] or [Unbounded] option says otherwise, and limit =
// prefetch − prefetch/4 more after sending every limit items, so it asks
// for more as the reader drains the channel. A send blocks (backpressure)
// while the channel is full, on the goroutine that delivers the item: with
// a synchronous upstream that is the one that called ToChannel. The
// subscriber passed upstream has a Context method that returns ctx.
//
// Cost: per item, a channel send in a select and two uncontended
// compare-and-swaps (which make closing ch safe against a send in flight
// from an asynchronous upstream); nothing is allocated after
// subscription. With a reader on another goroutine and a channel of 256,
// it measured about 140 ns per item, the cost of the channel. ToChannel
// panics if ch is nil.
func ToChannel[T any](ctx context.Context, pub flow.Publisher[T], ch chan<- T, opts ...Option) error {
	c := newConfig("ToChannel", ctx, pub, opts)
	if ch == nil {
		panic("sluice: ToChannel: nil channel")
	}
	s := &channelSubscriber[T]{ch: ch, ctxDone: ctx.Done(), left: make(chan struct{})}
	defer s.close()
	_, err := run(ctx, pub, &s.base, s, c, max(cap(ch), 1))
	return err
}

// The gate that orders sends before close(ch).
const (
	gateOpen    int32 = iota // no send in progress
	gateSending              // OnNext is sending
	gateWaiting              // the sink waits for the send in progress
	gateClosed               // ch is closed, or about to be
)

type channelSubscriber[T any] struct {
	base
	ch      chan<- T
	ctxDone <-chan struct{}
	gate    atomic.Int32
	left    chan struct{} // closed by the send that finds the gate waiting
}

func (s *channelSubscriber[T]) OnNext(item T) {
	if s.state.Load() != running || !s.gate.CompareAndSwap(gateOpen, gateSending) {
		return
	}
	sent := true
	select {
	case s.ch <- item:
	case <-s.ctxDone:
		sent = false
	}
	if !s.gate.CompareAndSwap(gateSending, gateOpen) {
		close(s.left) // the sink is waiting to close ch
		return
	}
	if !sent {
		// ctx is done and this item is lost: drop everything after it too,
		// so that the reader sees a prefix of the stream.
		s.cancel()
		return
	}
	s.consumed()
}

// close closes ch once no send is in progress, and keeps later sends out.
func (s *channelSubscriber[T]) close() {
	for {
		switch s.gate.Load() {
		case gateOpen:
			if !s.gate.CompareAndSwap(gateOpen, gateClosed) {
				continue
			}
		case gateSending:
			if !s.gate.CompareAndSwap(gateSending, gateWaiting) {
				continue
			}
			<-s.left
		}
		close(s.ch)
		return
	}
}

var _ flow.Subscriber[int] = (*channelSubscriber[int])(nil)
