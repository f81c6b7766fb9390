package jetstream

import (
	"time"
)

// DefaultMaxPending is the largest number of publishes awaiting their ack
// (plus the items requested and not yet received), unless [MaxPending]
// says otherwise.
const DefaultMaxPending = 256

// Defaults of the retry policy; see [Retry].
const (
	DefaultAttempts = 3
	DefaultBackoff  = 100 * time.Millisecond
)

// DefaultAckTimeout is how long a publish waits for its ack before the
// attempt counts as failed, unless [AckTimeout] says otherwise.
const DefaultAckTimeout = 5 * time.Second

// Option configures one call of [Publish]. Options
// are validated when they are created: an invalid option panics with a
// sluice: message.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	maxPending int
	attempts   int
	backoff    time.Duration
	ackTimeout time.Duration
	name       string
	deadLetter func(DeadLetter)
}

func newConfig(fn string, opts []Option) config {
	c := config{
		maxPending: DefaultMaxPending,
		attempts:   DefaultAttempts,
		backoff:    DefaultBackoff,
		ackTimeout: DefaultAckTimeout,
	}
	for _, o := range opts {
		if o == nil {
			panic("sluice: jetstream." + fn + ": nil Option")
		}
		o.apply(&c)
	}
	return c
}

// MaxPending bounds the messages in flight: published and awaiting their
// ack, plus requested from upstream and not yet received. The sink
// requests n messages when it subscribes and requests more only as acks
// return, so a slow server slows the pipeline instead of filling memory.
// The default is [DefaultMaxPending]. It should not exceed the
// JetStream context's own PublishAsyncMaxPending (4000 by default), or
// publishes stall inside nats.go and may fail with
// jetstream.ErrTooManyStalledMsgs, which then counts as a failed attempt.
// n <= 0 panics.
func MaxPending(n int) Option {
	if n <= 0 {
		panic("sluice: jetstream.MaxPending: n <= 0")
	}
	return optionFunc(func(c *config) { c.maxPending = n })
}

// Retry sets the retry policy of a publish that failed (an error ack, a
// publish error, or no ack within the ack timeout): up to attempts
// attempts in all, waiting backoff before the second, then doubling the
// wait each time, up to 32 × backoff. The defaults are
// [DefaultAttempts] and [DefaultBackoff]. After the last attempt the
// message goes to the [OnDeadLetter] hook, or ends the stream without
// one. Retrying publishes the same message again, so a message whose
// ack was lost may be stored twice; set a Nats-Msg-Id header in encode
// (jetstream deduplication) to prevent that. attempts < 1 or backoff <
// 0 panics.
func Retry(attempts int, backoff time.Duration) Option {
	if attempts < 1 {
		panic("sluice: jetstream.Retry: attempts < 1")
	}
	if backoff < 0 {
		panic("sluice: jetstream.Retry: backoff < 0")
	}
	return optionFunc(func(c *config) { c.attempts, c.backoff = attempts, backoff })
}

// AckTimeout sets how long one publish attempt waits for its ack; the
// default is [DefaultAckTimeout]. d <= 0 panics.
func AckTimeout(d time.Duration) Option {
	if d <= 0 {
		panic("sluice: jetstream.AckTimeout: d <= 0")
	}
	return optionFunc(func(c *config) { c.ackTimeout = d })
}

// Name sets the sink's stage name, shown by the monitor package. An
// empty name panics.
func Name(name string) Option {
	if name == "" {
		panic("sluice: jetstream.Name: empty name")
	}
	return optionFunc(func(c *config) { c.name = name })
}

// OnDeadLetter sets the hook that receives the messages that could not be
// published after every retry, and the items whose encode function
// failed; the stream then goes on. Without a hook such a failure ends
// the stream with its error. The hook runs on the sink's goroutine (encode
// failures: on the goroutine that delivers the item), one call at a time.
// A nil hook panics.
func OnDeadLetter(h func(DeadLetter)) Option {
	if h == nil {
		panic("sluice: jetstream.OnDeadLetter: nil hook")
	}
	return optionFunc(func(c *config) { c.deadLetter = h })
}
