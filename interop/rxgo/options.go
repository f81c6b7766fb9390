package rxgo

import (
	rx "github.com/reactivex/rxgo/v2"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// Option configures an adapter at construction. Options are validated
// once; an invalid option panics with a sluice: message.
type Option interface {
	apply(*config)
}

type config struct {
	stage.Config
	rxOpts []rx.Option
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

func stageOption(set func(*stage.Config)) Option {
	return optionFunc(func(c *config) { set(&c.Config) })
}

// Name sets the name of the stage [FromObservable] builds, used in its
// errors, metrics and stall reports; without it the stage is named
// "fromObservable#N". [ToObservable] ignores it. An empty name panics.
func Name(name string) Option { return stageOption(stage.SetName(name)) }

// OnDrop sets the dead-letter hook of [FromObservable]: it is called
// with every item read from the Observable and not delivered, and the
// reason (flow.ReasonNewest, ReasonOldest or ReasonOverflow for the
// overflow policies, flow.ReasonCancelled for items buffered when the
// subscriber cancelled, flow.ReasonClosed for an item read after the
// stream ended). It is called serially, on the adapter's goroutine or the
// subscriber's, and must not block. T must be the Publisher's item type:
// a mismatch panics when FromObservable is called. [ToObservable] ignores
// it: it drops nothing. A nil hook panics.
func OnDrop[T any](hook func(item T, reason flow.DropReason)) Option {
	return stageOption(stage.SetDropHook(hook))
}

// Prefetch sets how many items [ToObservable] requests from the Publisher
// at first (default 256); it requests n − n/4 more each time as many have
// been passed to the Observable's channel. [FromObservable] ignores it. n
// <= 0 panics.
func Prefetch(n int) Option {
	if n <= 0 {
		panic("sluice: rxgo.Prefetch: n <= 0")
	}
	return stageOption(func(c *stage.Config) { c.Prefetch = n })
}

// ObservableOptions passes rxgo options to the Observable that
// [ToObservable] builds (rx.Defer), such as rx.WithBufferedChannel(256)
// for its channel, and to the Observe call of [FromObservable] (such as
// rx.WithBufferedChannel for the channel of the last rxgo operator). The
// adapters add their own rx.WithContext, which ends rxgo's goroutines
// when the subscription ends.
func ObservableOptions(opts ...rx.Option) Option {
	return optionFunc(func(c *config) { c.rxOpts = append(c.rxOpts, opts...) })
}

func newConfig(kind string, opts []Option) (config, string) {
	var c config
	for _, o := range opts {
		if o == nil {
			panic("sluice: " + kind + ": nil Option")
		}
		o.apply(&c)
	}
	return c, c.NameOr(kind)
}
