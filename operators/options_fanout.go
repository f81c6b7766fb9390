package operators

import (
	"errors"
	"fmt"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// ErrSlowSubscriber ends the subscription of a [Broadcast] subscriber that
// was cut loose by the [CancelSlow] option: its buffer was full when an
// item arrived. The other subscribers are not affected. It is wrapped
// with the stage name.
var ErrSlowSubscriber = errors.New("sluice: slow subscriber cut loose")

// ErrHubClosed is signalled to a subscriber that subscribes to a
// [Broadcast] or [Balance] after the stage cancelled its upstream because
// its last subscriber had cancelled (see [AutoCancel]). It is wrapped
// with the stage name.
var ErrHubClosed = errors.New("sluice: fan-out closed: its last subscriber cancelled")

// SlowSubscriber gives every subscriber of a [Broadcast] a buffer of
// capacity items and the policy applied when an item arrives for a
// subscriber that has no demand and a full buffer:
//
//   - [flow.Block]: the Broadcast waits (the slowest subscriber sets the
//     pace); the buffer only absorbs bursts (capacity may be 0, which is
//     the default: no buffer).
//   - [flow.DropNewest]: the incoming item is dropped for that subscriber
//     only (flow.ReasonNewest).
//   - [flow.DropOldest]: that subscriber's oldest buffered item is dropped
//     (flow.ReasonOldest) to make room.
//   - [flow.Fail]: the whole Broadcast fails: upstream is cancelled, the
//     item is dropped (flow.ReasonOverflow), the items not yet handed to
//     the subscribers are dropped (flow.ReasonCancelled), and every
//     subscriber receives its buffered items and then an error that
//     matches flow.ErrOverflow.
//
// Under the three policies other than Block, the fastest subscriber sets
// the pace: an item is taken from upstream as soon as one subscriber can
// accept it without a drop. Every drop is counted for that subscriber and
// passed to the [OnDrop] hook. To end only the slow subscriber, see
// [CancelSlow]. Balance ignores this option. capacity < 0, capacity == 0
// with a policy other than Block, or an invalid policy panics.
func SlowSubscriber(policy flow.Overflow, capacity int) Option {
	if !policy.Valid() {
		panic(fmt.Sprintf("sluice: SlowSubscriber: invalid policy %v", policy))
	}
	if capacity < 0 || (capacity == 0 && policy != flow.Block) {
		panic("sluice: SlowSubscriber: capacity <= 0")
	}
	return fanoutOption{kind: foSlow, policy: policy, n: capacity}
}

// CancelSlow gives every subscriber of a [Broadcast] a buffer of capacity
// items, and cuts a subscriber loose when an item arrives while it has no
// demand and a full buffer: that item is dropped with
// flow.ReasonOverflow, its buffered items with flow.ReasonCancelled, and
// it receives at once an error that matches [ErrSlowSubscriber]. The
// other subscribers continue, and the fastest one sets the pace. It
// replaces any [SlowSubscriber] option given before it (and is replaced
// by one given after it). Balance ignores it. capacity <= 0 panics.
func CancelSlow(capacity int) Option {
	if capacity <= 0 {
		panic("sluice: CancelSlow: capacity <= 0")
	}
	return fanoutOption{kind: foCancelSlow, n: capacity}
}

// MinSubscribers makes a fan-out stage subscribe to its upstream only
// once n subscribers have subscribed (counting those that have cancelled
// since), so that none of the first n misses an item. The default is 1
// for [Broadcast] (the first subscriber starts the stream; see also
// [Broadcaster.Connect]) and the number of outputs for [Balance]. n <= 0
// panics.
func MinSubscribers(n int) Option {
	if n <= 0 {
		panic("sluice: MinSubscribers: n <= 0")
	}
	return fanoutOption{kind: foMin, n: n}
}

// AutoCancel sets whether a fan-out stage cancels its upstream when its
// last live subscriber cancels (true, the default, like Reactor's
// refCount) or keeps the upstream subscription, holding at most one
// prefetch of items for the subscribers to come (false). After an auto
// cancel, the items not yet handed to a subscriber are dropped with
// flow.ReasonCancelled, and later subscribers receive an error that
// matches [ErrHubClosed].
func AutoCancel(cancel bool) Option { return fanoutOption{kind: foAuto, b: cancel} }

const (
	foSlow uint8 = iota + 1
	foCancelSlow
	foMin
	foAuto
)

// fanoutOption carries the options that only the fan-out stages read.
type fanoutOption struct {
	kind   uint8
	policy flow.Overflow
	n      int
	b      bool
}

func (fanoutOption) apply(*stage.Config) {} // read by fanoutSettings

// fanoutSettings are the fan-out options after defaults; the last of each
// kind wins (SlowSubscriber and CancelSlow are one kind).
type fanoutSettings struct {
	policy     flow.Overflow
	capacity   int
	cancelSlow bool
	minSubs    int // 0: the stage's default
	autoCancel bool
}

func fanoutConfig(opts []Option) fanoutSettings {
	s := fanoutSettings{policy: flow.Block, autoCancel: true}
	for _, o := range opts {
		f, ok := o.(fanoutOption)
		if !ok {
			continue
		}
		switch f.kind {
		case foSlow:
			s.policy, s.capacity, s.cancelSlow = f.policy, f.n, false
		case foCancelSlow:
			s.policy, s.capacity, s.cancelSlow = flow.Block, f.n, true
		case foMin:
			s.minSubs = f.n
		case foAuto:
			s.autoCancel = f.b
		}
	}
	return s
}
