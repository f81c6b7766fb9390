package sources

import (
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/pull"
)

// FromChannel returns a publisher that emits the values received from ch,
// in order, and completes when ch is closed.
//
// It receives only when there is demand: one receive per unit of demand,
// none before the first Request. The receive runs on the goroutine that
// owns the emission loop, that is the goroutine whose Request moved the
// demand off zero, and blocks it while ch has nothing to give; Requests
// from other goroutines meanwhile only add demand and return. Put an
// async boundary in front (SubscribeOn) to move the waiting off the
// caller's goroutine. Cancel, from any goroutine, wakes a blocked receive
// at once; a value received at the very moment of the Cancel may still be
// delivered, nothing after it.
//
// A channel is a hot source: FromChannel does not replay values, and
// several subscriptions compete for them, each value going to exactly one
// subscriber. The end of the stream is noticed, and OnComplete signalled,
// when ch is closed and there is demand. Each subscription allocates one
// channel (to be woken by Cancel). An item that is ready costs one
// non-blocking receive (about 30 ns in all on a 2-core 2.3 GHz machine);
// otherwise the loop waits in a select on ch and that channel.
//
// FromChannel panics if ch is nil.
func FromChannel[T any](ch <-chan T) flow.Publisher[T] {
	if ch == nil {
		panic("sluice: FromChannel: nil channel")
	}
	return chanPublisher[T]{ch: ch}
}

type chanPublisher[T any] struct{ ch <-chan T }

func (p chanPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	pull.Subscribe(s, &chanSource[T]{ch: p.ch, done: make(chan struct{})}, "fromChannel", "")
}

type chanSource[T any] struct {
	ch   <-chan T
	done chan struct{} // closed by Interrupt, once
}

func (c *chanSource[T]) Next() (T, bool, error) {
	select { // fast path: a value is ready, one non-blocking receive
	case v, ok := <-c.ch:
		return v, ok, nil
	default:
	}
	select {
	case v, ok := <-c.ch:
		return v, ok, nil
	case <-c.done:
		var zero T
		return zero, false, nil
	}
}

func (c *chanSource[T]) Interrupt() { close(c.done) }

func (c *chanSource[T]) Close() {}
