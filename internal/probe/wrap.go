package probe

import (
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// Observe returns a subscriber that counts the signals st's stage sends to
// s and the demand s sends back, for stages whose emission loop is not
// instrumented itself (Range, Slice). It costs one more interface call per
// signal, and is used only when the stage is monitored: with st == nil it
// returns s.
func Observe[T any](st *Stage, s flow.Subscriber[T]) flow.Subscriber[T] {
	if st == nil {
		return s
	}
	return &observer[T]{down: s, st: st}
}

type observer[T any] struct {
	down      flow.Subscriber[T]
	st        *Stage
	up        flow.Subscription
	cancelled atomic.Bool // downstream cancelled: a run goes no further
}

func (o *observer[T]) OnSubscribe(s flow.Subscription) {
	o.up = s
	o.down.OnSubscribe(o)
}

func (o *observer[T]) OnNext(v T) {
	o.st.Next()
	o.down.OnNext(v)
	o.st.Returned()
}

// OnNextBatch passes a run on whole when the subscriber takes runs, and
// item by item otherwise (see stage.BatchSubscriber), counting it either
// way.
func (o *observer[T]) OnNextBatch(items []T) {
	if b := stage.Batcher(o.down); b != nil {
		o.st.NextN(int64(len(items)))
		b.OnNextBatch(items)
		o.st.Returned()
		return
	}
	for _, v := range items {
		if o.cancelled.Load() {
			return // as the source would have stopped item by item
		}
		o.OnNext(v)
	}
}

func (o *observer[T]) OnError(err error) {
	o.st.End(Failed)
	o.down.OnError(err)
}

func (o *observer[T]) OnComplete() {
	o.st.End(Completed)
	o.down.OnComplete()
}

// EmitsInRequest answers for the wrapped Subscription: the observer
// delivers on the goroutine it is called on (see stage.SyncEmitter).
func (o *observer[T]) EmitsInRequest() bool { return stage.EmitsInRequest(o.up) }

func (o *observer[T]) Request(n int64) {
	o.st.Request(n)
	o.up.Request(n)
}

func (o *observer[T]) Cancel() {
	o.cancelled.Store(true)
	o.st.End(Cancelled)
	o.up.Cancel()
}
