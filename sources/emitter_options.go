package sources

import (
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// Option configures a hot source ([NewEmitter], [Ticker]) at construction.
// Options are validated once; an invalid option panics with a sluice:
// message.
type Option interface {
	apply(*stage.Config)
}

type optionFunc func(*stage.Config)

func (f optionFunc) apply(c *stage.Config) { f(c) }

// Name sets the source's name, used in errors, metrics and stall reports.
// Without it a source is named after its kind and construction order,
// such as "emitter#2". Every source takes it: the hot sources, Range and
// Slice (as an Option), and the reader sources (as a ReadOption). An
// empty name panics.
func Name(name string) NameOption {
	if name == "" {
		panic("sluice: Name: empty name")
	}
	return NameOption{name}
}

// NameOption is the option Name returns. It is an Option and a
// ReadOption.
type NameOption struct{ name string }

func (o NameOption) apply(c *stage.Config) { c.Name = o.name }

func (o NameOption) applyLines(c *readConfig) { c.name = o.name }

func (o NameOption) applyRecord(c *readConfig) { c.name = o.name }

// OnDrop sets a dead-letter hook, called with every item the source does
// not deliver and the reason (see flow.DropReason). It is called serially,
// on the goroutine that drops the item (a producer calling TryEmit or
// Emit, or the subscriber's goroutine for items dropped at cancel), and
// must not block nor call back into the same source. T must be the
// source's item type: a mismatch panics when the source is built. A nil
// hook panics.
func OnDrop[T any](hook func(item T, reason flow.DropReason)) Option {
	return optionFunc(stage.SetDropHook(hook))
}

// newConfig applies opts and fixes the source's name.
func newConfig(kind string, opts []Option) (stage.Config, string) {
	return stage.Build(kind, opts, Option.apply)
}
