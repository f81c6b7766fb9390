package jetstream

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
)

// Msg is one JetStream message delivered by a [Source]: the decoded Value
// and the acknowledgement handle of the message it came from.
//
// The source never acknowledges a message itself: whoever commits the
// item (usually the sink, after its write succeeded) calls [Msg.Ack].
// Until then the message counts against the consumer's MaxAckPending,
// and if nobody settles it within the consumer's AckWait the server
// redelivers it, to this or to another subscription. That is the
// at-least-once contract.
//
// Msg is a small value (the item, two pointers and two integers); copying
// it copies the handle, and settling any copy settles the message. Its
// methods are goroutine-safe; only the first of Ack, Nak, NakWithDelay and
// Term takes effect, later ones return an error from nats.go
// (jetstream.ErrMsgAlreadyAckd). Each one publishes one small message to
// the server; Ack and Nak do not wait for a reply, AckSync does.
type Msg[T any] struct {
	// Value is the message decoded by the source's decode function.
	Value T

	raw          js.Msg
	t            *tally
	numDelivered uint64
	streamSeq    uint64
}

// Raw returns the nats.go message: subject, headers, data and metadata.
func (m Msg[T]) Raw() js.Msg { return m.raw }

// NumDelivered is how many times the server has delivered this message,
// this delivery included: 1 for a first delivery, more for a
// redelivery after a Nak, an AckWait expiry or a crashed consumer.
func (m Msg[T]) NumDelivered() uint64 { return m.numDelivered }

// StreamSeq is the message's sequence number in its stream: the same for
// every delivery of the message, so it can key idempotent writes.
func (m Msg[T]) StreamSeq() uint64 { return m.streamSeq }

// Ack acknowledges the message: the server will not deliver it again.
// Call it only after the item has been committed. It does not wait for
// the server; see AckSync.
func (m Msg[T]) Ack() error {
	err := m.raw.Ack()
	m.t.settled(err, &m.t.src.acked)
	return err
}

// AckSync acknowledges the message and waits until the server confirms
// it, or ctx is done. After a nil return the message will not be
// redelivered, even if this process crashes at once.
func (m Msg[T]) AckSync(ctx context.Context) error {
	err := m.raw.DoubleAck(ctx)
	m.t.settled(err, &m.t.src.acked)
	return err
}

// Nak tells the server that the message was not processed, so that it
// redelivers it at once, possibly to another subscription.
func (m Msg[T]) Nak() error {
	err := m.raw.Nak()
	m.t.settled(err, &m.t.src.naked)
	return err
}

// NakWithDelay is Nak for a retriable failure: the server redelivers the
// message after delay.
func (m Msg[T]) NakWithDelay(delay time.Duration) error {
	err := m.raw.NakWithDelay(delay)
	m.t.settled(err, &m.t.src.naked)
	return err
}

// Term terminates the message on a permanent failure: the server never
// redelivers it. The source's dead-letter hook (see [OnDeadLetter]), if
// any, receives a [DeadLetter] record with reason first, on the calling
// goroutine, so that the record is kept before the message is gone.
func (m Msg[T]) Term(reason string) error {
	if h := m.t.src.deadLetter; h != nil {
		h(newDeadLetter(m.raw, m.numDelivered, m.streamSeq, reason, nil))
	}
	err := m.raw.TermWithReason(reason)
	m.t.settled(err, &m.t.src.terminated)
	return err
}

// InProgress resets the server's AckWait timer for the message: long work
// calls it periodically (more often than AckWait) so that the message is
// not redelivered while it is still being processed.
func (m Msg[T]) InProgress() error {
	err := m.raw.InProgress()
	if err == nil {
		m.t.src.inProgress.Add(1)
	}
	return err
}

// DeadLetter is the record that the dead-letter hook receives for a
// message that is terminated: by [Msg.Term], or by the source when the
// decode function fails.
type DeadLetter struct {
	Subject      string
	Header       nats.Header
	Data         []byte
	StreamSeq    uint64
	NumDelivered uint64
	// Reason is the reason given to Term, or the decode error's text.
	Reason string
	// Err is the decode error, nil for Term.
	Err error
}

func newDeadLetter(raw js.Msg, delivered, seq uint64, reason string, err error) DeadLetter {
	return DeadLetter{
		Subject:      raw.Subject(),
		Header:       raw.Headers(),
		Data:         raw.Data(),
		StreamSeq:    seq,
		NumDelivered: delivered,
		Reason:       reason,
		Err:          err,
	}
}

// tally is shared by the Msgs of one subscription: it counts, for the
// subscription, the messages settled downstream, and points to the
// source's counters.
type tally struct {
	src     *counters
	settles atomic.Int64 // Ack, Nak, Term that succeeded on this subscription's messages
}

func (t *tally) settled(err error, c *atomic.Int64) {
	if err == nil {
		t.settles.Add(1)
		c.Add(1)
	}
}

// counters are the source's statistics, summed over its subscriptions.
type counters struct {
	deadLetter func(DeadLetter) // read-only, from the options

	pulls, received, delivered, redelivered atomic.Int64
	acked, naked, terminated, inProgress    atomic.Int64
	decodeErrors, released                  atomic.Int64
}

// Stats are the counters of a [Source], summed over all its
// subscriptions. Once the subscriptions have ended and their downstream
// has settled every message,
//
//	Received = Delivered + DecodeErrors + Released
type Stats struct {
	// Pulls counts the pull requests sent to the server.
	Pulls int64
	// Received counts the messages that arrived from the server.
	Received int64
	// Delivered counts the messages passed downstream (OnNext).
	Delivered int64
	// Redelivered counts the received messages whose NumDelivered was
	// above 1: redeliveries after a Nak, an AckWait expiry or a crash.
	Redelivered int64
	// Acked, Naked and Terminated count successful Ack/AckSync,
	// Nak/NakWithDelay and Term calls; Terminated includes decode
	// failures.
	Acked, Naked, Terminated int64
	// InProgress counts successful InProgress calls.
	InProgress int64
	// DecodeErrors counts messages whose decode function failed; they
	// were terminated and passed to the dead-letter hook.
	DecodeErrors int64
	// Released counts messages received but not delivered because the
	// subscription ended; they were nak'ed so that the server redelivers
	// them at once to another subscription.
	Released int64
}

func (c *counters) stats() Stats {
	return Stats{
		Pulls:        c.pulls.Load(),
		Received:     c.received.Load(),
		Delivered:    c.delivered.Load(),
		Redelivered:  c.redelivered.Load(),
		Acked:        c.acked.Load(),
		Naked:        c.naked.Load(),
		Terminated:   c.terminated.Load(),
		InProgress:   c.inProgress.Load(),
		DecodeErrors: c.decodeErrors.Load(),
		Released:     c.released.Load(),
	}
}
