package jetstream

import "time"

// DefaultMaxPull is the largest pull request a subscription sends, unless
// [MaxPull] says otherwise.
const DefaultMaxPull = 256

// DefaultPullWait is how long a pull request waits at the server for
// messages, unless [PullWait] says otherwise.
const DefaultPullWait = time.Second

// Option configures a [Source]. Options are validated when they are
// created: an invalid option panics with a sluice: message.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	maxPull    int
	wait       time.Duration
	name       string
	deadLetter func(DeadLetter)
	untilEmpty bool
}

func newConfig(fn string, opts []Option) config {
	c := config{maxPull: DefaultMaxPull, wait: DefaultPullWait}
	for _, o := range opts {
		if o == nil {
			panic("sluice: jetstream." + fn + ": nil Option")
		}
		o.apply(&c)
	}
	return c
}

// MaxPull sets the largest pull request (in messages) that a
// subscription sends; the default is [DefaultMaxPull]. A subscription
// asks for min(uncovered demand, n) messages per pull and opens the next
// pull when what it still awaits falls to n/4, so n bounds both the size
// of one round trip and what arrives in one burst. n <= 0 panics.
func MaxPull(n int) Option {
	if n <= 0 {
		panic("sluice: jetstream.MaxPull: n <= 0")
	}
	return optionFunc(func(c *config) { c.maxPull = n })
}

// PullWait sets how long one pull request waits at the server for
// messages before it expires; the default is [DefaultPullWait]. An
// expired pull that got fewer messages than it asked for is simply
// replaced by a new one while demand lasts. Shorter waits make an idle
// subscription send more requests; longer ones delay the end of a
// cancelled subscription, which lets its open pulls run out so that
// nothing they bring is lost (see Source), and, with [UntilEmpty], the
// end of the stream. d < 10ms panics.
func PullWait(d time.Duration) Option {
	if d < 10*time.Millisecond {
		panic("sluice: jetstream.PullWait: d < 10ms")
	}
	return optionFunc(func(c *config) { c.wait = d })
}

// Name sets the source's stage name, shown by the monitor package.
// Without it a monitored subscription is named "jetstream#N". An empty
// name panics.
func Name(name string) Option {
	if name == "" {
		panic("sluice: jetstream.Name: empty name")
	}
	return optionFunc(func(c *config) { c.name = name })
}

// OnDeadLetter sets the hook that receives a [DeadLetter] record for
// every message that is terminated: by [Msg.Term], on the goroutine that
// calls it, or by the source when decoding fails, on the source's
// goroutine. The hook must be goroutine-safe and quick; it runs before the
// server is told to terminate the message. A nil hook panics.
func OnDeadLetter(h func(DeadLetter)) Option {
	if h == nil {
		panic("sluice: jetstream.OnDeadLetter: nil hook")
	}
	return optionFunc(func(c *config) { c.deadLetter = h })
}

// UntilEmpty makes each subscription complete, instead of waiting for
// new messages forever, once the consumer has nothing left to do for it:
// a pull ended with fewer messages than it asked for, no pull is open,
// the consumer has no undelivered messages (NumPending == 0), and every
// message delivered and not yet acknowledged (NumAckPending) is one this
// subscription delivered itself. Messages held unacknowledged by other
// subscriptions keep it pulling, so that if their holder crashes it
// receives their redelivery. It suits batch jobs over a stream that is
// no longer written to. Each check costs one consumer-info request, made
// only when a pull comes back short.
func UntilEmpty() Option {
	return optionFunc(func(c *config) { c.untilEmpty = true })
}
