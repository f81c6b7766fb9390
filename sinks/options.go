package sinks

import (
	"context"
	"strings"

	"github.com/sluicego/sluice/flow"
)

// DefaultPrefetch is the number of items a sink requests when it
// subscribes, unless a [Prefetch] or [Unbounded] option says otherwise.
// [ToChannel] defaults to the channel's capacity instead.
const DefaultPrefetch = 256

// Option configures one call of a sink. Options are validated when they
// are created: an invalid option panics with a sluice: message.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is the result of applying a sink's options.
type config struct {
	prefetch  int    // 0 means the sink's default
	unbounded bool   // request flow.Unbounded once instead
	kind      string // "forEach", "reduce", …: the monitor's stage kind
	name      string // given with Name; empty means derived
}

// Prefetch sets how many items the sink requests when it subscribes. After
// consuming limit = n - n/4 of them it requests limit more (Reactor's 75 %
// rule), so at most n items are ever outstanding; Prefetch(1) requests one
// item at a time. It overrides an earlier [Unbounded]. n <= 0 panics.
func Prefetch(n int) Option {
	if n <= 0 {
		panic("sluice: Prefetch: n <= 0")
	}
	return optionFunc(func(c *config) { c.prefetch, c.unbounded = n, false })
}

// Unbounded makes the sink request [flow.Unbounded] once, when it
// subscribes, and never again: the upstream may emit as fast as it can.
// It suits benchmarks and sources that are cheap to run to the end; it
// saves one Request per 192 items over the default. It overrides an
// earlier [Prefetch]. [All] rejects it, because its queue is bounded.
func Unbounded() Option {
	return optionFunc(func(c *config) { c.prefetch, c.unbounded = 0, true })
}

// Name sets the sink's stage name, shown by the monitor package. Without
// it a monitored sink is named after its kind and order, such as
// "reduce#1". An empty name panics.
func Name(name string) Option {
	if name == "" {
		panic("sluice: Name: empty name")
	}
	return optionFunc(func(c *config) { c.name = name })
}

// newConfig applies opts and checks the arguments every sink shares.
// name is the sink's function name, for panic messages.
func newConfig[T any](name string, ctx context.Context, pub flow.Publisher[T], opts []Option) config {
	if ctx == nil {
		panic("sluice: " + name + ": nil Context")
	}
	if pub == nil {
		panic("sluice: " + name + ": nil Publisher")
	}
	c := config{kind: strings.ToLower(name[:1]) + name[1:]}
	for _, o := range opts {
		if o == nil {
			panic("sluice: " + name + ": nil Option")
		}
		o.apply(&c)
	}
	return c
}

// demand returns what to request at subscription (initial) and the
// replenishment batch (limit); limit == 0 means never replenish.
func (c config) demand(defaultPrefetch int) (initial, limit int64) {
	if c.unbounded {
		return flow.Unbounded, 0
	}
	p := int64(c.prefetch)
	if p == 0 {
		p = int64(defaultPrefetch)
	}
	return p, p - p/4
}
