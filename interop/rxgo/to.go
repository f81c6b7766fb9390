package rxgo

import (
	"context"
	"sync"

	rx "github.com/reactivex/rxgo/v2"

	"github.com/sluicego/sluice/flow"
)

// DefaultPrefetch is the number of items [ToObservable] requests at first
// when no [Prefetch] option is given.
const DefaultPrefetch = 256

// ToObservable returns a cold rxgo Observable of the items of pub: each
// Observe subscribes to pub anew, on a goroutine that rxgo starts
// (rx.Defer), and passes pub's items to the Observable's channel as
// rx.Of(item), then pub's error as rx.Error(err), then closes the
// channel.
//
// What it requests upstream: P items when pub's OnSubscribe arrives (the
// [Prefetch] option, default 256), then L = P − P/4 more each time L
// items have been passed to the channel (Reactor's 75 % rule), so at most
// P items are requested and not yet passed on. OnNext blocks while the
// channel is full: the Observable's consumer paces pub, on whatever
// goroutine pub delivers (for a synchronous pub, the goroutine rxgo
// started).
//
// How it ends: when pub completes or fails, or when the context of the
// Observe call (rx.WithContext, given to Observe or with
// [ObservableOptions]) is done; then it cancels pub, stops sending, and
// rxgo closes the channel. Without a context an Observe whose consumer
// stops reading leaves the goroutine blocked, as with any rxgo
// Observable: give Observe a context. Options: [Prefetch],
// [ObservableOptions] (passed to rx.Defer, such as
// rx.WithBufferedChannel). Cost: per item, an uncontended mutex, an
// rx.Item that boxes the value (one allocation for most non-pointer
// types) and a channel send; per L items, one Request. ToObservable
// panics if pub is nil.
func ToObservable[T any](pub flow.Publisher[T], opts ...Option) rx.Observable {
	if pub == nil {
		panic("sluice: ToObservable: nil Publisher")
	}
	c, _ := newConfig("toObservable", opts)
	prefetch := DefaultPrefetch
	if c.Prefetch > 0 {
		prefetch = c.Prefetch
	}
	return rx.Defer([]rx.Producer{func(ctx context.Context, next chan<- rx.Item) {
		s := &toSubscriber[T]{
			ctx:      ctx,
			next:     next,
			prefetch: int64(prefetch),
			limit:    int64(max(prefetch-prefetch/4, 1)),
			done:     make(chan struct{}),
		}
		pub.Subscribe(s)
		s.wait()
	}}, c.rxOpts...)
}

// toSubscriber passes a Publisher's signals to an rxgo channel. Signals
// are serial (the protocol), but may come from any goroutine; mu makes
// the producer wait for a send in progress before rxgo closes the
// channel.
type toSubscriber[T any] struct {
	ctx      context.Context
	next     chan<- rx.Item
	prefetch int64
	limit    int64

	mu       sync.Mutex
	sub      flow.Subscription
	closed   bool  // no more sends: ended, cancelled, or ctx done; guarded by mu
	consumed int64 // items sent since the last Request; touched in OnNext only
	doneOnce sync.Once
	done     chan struct{} // closed when the stream has ended
}

func (s *toSubscriber[T]) OnSubscribe(sub flow.Subscription) {
	if sub == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	s.mu.Lock()
	if s.sub != nil || s.closed {
		s.mu.Unlock()
		sub.Cancel() // rule 2.5, or Observe's context already done
		return
	}
	s.sub = sub
	s.mu.Unlock()
	sub.Request(s.prefetch)
}

// OnNext is the adapter's single delivery point: it sends the item, then
// requests L more after every L items.
func (s *toSubscriber[T]) OnNext(v T) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if !rx.Of(v).SendContext(s.ctx, s.next) {
		s.closed = true
		sub := s.sub
		s.mu.Unlock()
		sub.Cancel()
		s.end()
		return
	}
	s.consumed++
	request := s.consumed == s.limit
	if request {
		s.consumed = 0
	}
	sub := s.sub
	s.mu.Unlock()
	if request {
		sub.Request(s.limit)
	}
}

func (s *toSubscriber[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		rx.Error(err).SendContext(s.ctx, s.next)
	}
	s.mu.Unlock()
	s.end()
}

func (s *toSubscriber[T]) OnComplete() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.end()
}

// Context returns the context of the Observe call, for stages that
// watch their subscriber's context.
func (s *toSubscriber[T]) Context() context.Context { return s.ctx }

func (s *toSubscriber[T]) end() { s.doneOnce.Do(func() { close(s.done) }) }

// wait returns when the stream has ended or Observe's context is done;
// then nothing is being sent, nor will be, and rxgo may close the
// channel.
func (s *toSubscriber[T]) wait() {
	select {
	case <-s.done:
		return
	case <-s.ctx.Done():
	}
	s.mu.Lock()
	if s.closed {
		// The stream is ending, or OnNext found ctx done and is
		// cancelling: it closes done once that is over.
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closed = true
	sub := s.sub
	s.mu.Unlock()
	if sub != nil {
		sub.Cancel()
	}
}
