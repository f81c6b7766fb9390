package flow

// RequireSubscriber panics with a sluice: message when s is nil. Every
// Publisher's Subscribe calls it first: subscribing nil is a programmer
// error (rule 1.9), not a runtime failure.
func RequireSubscriber[T any](s Subscriber[T]) {
	if s == nil {
		panic("sluice: Subscribe called with a nil Subscriber (rule 1.9)")
	}
}

// PublisherFunc adapts a function to the Publisher interface. The function
// receives each subscriber and must follow the protocol itself: call
// OnSubscribe once, then emit only what was requested. Subscribe(nil)
// panics before the function is called (rule 1.9).
type PublisherFunc[T any] func(s Subscriber[T])

// Subscribe calls f(s).
func (f PublisherFunc[T]) Subscribe(s Subscriber[T]) {
	RequireSubscriber(s)
	f(s)
}

// SubscriberFuncs adapts functions to the Subscriber interface; a nil
// field ignores its signal. It requests nothing by itself: OnSubscribe
// must keep the Subscription and call Request. The adapter holds no state,
// so its goroutine-safety is that of the functions.
//
// It enforces rule 2.13: OnSubscribe(nil) and OnError(nil) panic.
type SubscriberFuncs[T any] struct {
	Subscribe func(s Subscription)
	Next      func(item T)
	Error     func(err error)
	Complete  func()
}

// OnSubscribe calls f.Subscribe.
func (f SubscriberFuncs[T]) OnSubscribe(s Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	if f.Subscribe != nil {
		f.Subscribe(s)
	}
}

// OnNext calls f.Next.
func (f SubscriberFuncs[T]) OnNext(item T) {
	if f.Next != nil {
		f.Next(item)
	}
}

// OnError calls f.Error.
func (f SubscriberFuncs[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	if f.Error != nil {
		f.Error(err)
	}
}

// OnComplete calls f.Complete.
func (f SubscriberFuncs[T]) OnComplete() {
	if f.Complete != nil {
		f.Complete()
	}
}

// noopSubscription is handed to subscribers whose subscription is over
// before it starts. Request and Cancel do nothing (rule 3.6).
type noopSubscription struct{}

func (noopSubscription) Request(int64) {}
func (noopSubscription) Cancel()       {}

// Reject refuses a subscriber: it calls OnSubscribe with a subscription
// that ignores requests, then OnError(err). This is how a publisher
// signals a failure that happens at subscription time (rules 1.4, 1.9).
// err must not be nil.
func Reject[T any](s Subscriber[T], err error) {
	if err == nil {
		panic("sluice: Reject called with a nil error")
	}
	s.OnSubscribe(noopSubscription{})
	s.OnError(err)
}

// Complete ends a subscriber at once: it calls OnSubscribe with a
// subscription that ignores requests, then OnComplete, without waiting for
// demand (rule 1.5 allows a publisher with nothing to send to complete
// early).
func Complete[T any](s Subscriber[T]) {
	s.OnSubscribe(noopSubscription{})
	s.OnComplete()
}
