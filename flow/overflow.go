package flow

import (
	"errors"
	"strconv"
)

// Overflow is what a bounded stage does when an item arrives and it has no
// room: the one backpressure vocabulary of sluice, shared by buffers, hot
// sources, fan-out and connectors.
type Overflow uint8

const (
	// Block requests upstream only what fits, so the buffer can never
	// overflow: true backpressure. It is the default.
	Block Overflow = iota
	// DropNewest rejects the incoming item and keeps what is buffered
	// (Reactor DROP_LATEST, Akka dropNew).
	DropNewest
	// DropOldest evicts the oldest buffered item to make room for the
	// incoming one (Akka dropHead).
	DropOldest
	// Fail ends the stream with ErrOverflow once downstream has drained
	// what was already buffered (Reactor ERROR, Akka fail).
	Fail
)

// String returns the policy's name, such as "DropOldest".
func (o Overflow) String() string {
	switch o {
	case Block:
		return "Block"
	case DropNewest:
		return "DropNewest"
	case DropOldest:
		return "DropOldest"
	case Fail:
		return "Fail"
	}
	return "Overflow(" + strconv.Itoa(int(o)) + ")"
}

// Valid reports whether o is one of the four policies.
func (o Overflow) Valid() bool { return o <= Fail }

// ErrOverflow ends a stream whose bounded stage received an item it had no
// room for under the Fail policy.
var ErrOverflow = errors.New("sluice: buffer overflow")

// DropReason says why an item was not delivered. Every drop is counted by
// reason and handed to the stage's OnDrop hook, if any; String gives the
// value of the "reason" label in metrics.
type DropReason uint8

const (
	// ReasonNewest: the incoming item was rejected by a full DropNewest stage.
	ReasonNewest DropReason = iota + 1
	// ReasonOldest: a buffered item was evicted by a full DropOldest stage.
	ReasonOldest
	// ReasonOverflow: the item that overflowed a full Fail stage.
	ReasonOverflow
	// ReasonCancelled: an item that was buffered when downstream cancelled.
	ReasonCancelled
	// ReasonClosed: an item offered to a hot source that was already
	// completed, failed or closed.
	ReasonClosed
	// ReasonError: an item skipped because user code failed on it.
	ReasonError
)

// String returns the reason as a metrics label value, such as "oldest".
func (r DropReason) String() string {
	switch r {
	case ReasonNewest:
		return "newest"
	case ReasonOldest:
		return "oldest"
	case ReasonOverflow:
		return "overflow"
	case ReasonCancelled:
		return "cancelled"
	case ReasonClosed:
		return "closed"
	case ReasonError:
		return "error"
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}
