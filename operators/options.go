package operators

import (
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// Option configures one stage at construction. Options are validated once,
// when the stage is built; an invalid option panics with a sluice: message.
type Option interface {
	apply(*stage.Config)
}

type optionFunc func(*stage.Config)

func (f optionFunc) apply(c *stage.Config) { f(c) }

// Name sets the stage's name, used in errors, metrics and stall reports.
// Without it a stage is named after its kind and construction order, such
// as "map#2". An empty name panics.
func Name(name string) Option { return optionFunc(stage.SetName(name)) }

// OnDrop sets a dead-letter hook, called with every item the stage does not
// deliver and the reason (see flow.DropReason). Stages that can drop
// items (Buffer, Batch, BatchWeighted, LimitRate, PublishOn, ParallelMap,
// MapAsync, the fan-in and fan-out stages) call it on the goroutine that
// drops the item, one call at a time per subscription; it must not block.
// T must be the stage's item type (for ParallelMap and MapAsync, the input
// type): a mismatch panics when such a stage is built. Stages that never
// drop (Map, Filter, Take and the other transforms) ignore it. A nil hook
// panics.
func OnDrop[T any](hook func(item T, reason flow.DropReason)) Option {
	return optionFunc(stage.SetDropHook(hook))
}

// Prefetch sets how many items a stage that requests ahead asks for
// before it is drained; it replenishes by 75 % of it. Buffer (as a cap
// under its capacity), BatchWeighted, the async boundaries, ParallelMap
// and MapAsync (which keep prefetch + workers items in flight), the
// fan-in stages (per source), Partition (per output queue) and GroupBy
// (per group queue and routing queue) use it;
// stages that do not request ahead, including LimitRate (whose high and
// low arguments say the same thing), ignore it. n <= 0 panics.
func Prefetch(n int) Option {
	if n <= 0 {
		panic("sluice: Prefetch: n <= 0")
	}
	return optionFunc(func(c *stage.Config) { c.Prefetch = n })
}

// Concurrency sets how many inner sources a fan-in stage such as FlatMap
// subscribes to at once. Stages whose concurrency is an argument ignore
// it. n <= 0 panics.
func Concurrency(n int) Option {
	if n <= 0 {
		panic("sluice: Concurrency: n <= 0")
	}
	return optionFunc(func(c *stage.Config) { c.Concurrency = n })
}

// Ordered makes a concurrent stage (ParallelMap, MapAsync, FlatMap) emit
// results in the order of its input, holding early results in a reorder
// buffer bounded by its prefetch. Without it results are emitted as they
// complete. Stages that are always ordered ignore it.
func Ordered() Option { return optionFunc(func(c *stage.Config) { c.Ordered = true }) }

// newConfig applies opts over the defaults and fixes the stage's name.
func newConfig(kind string, opts []Option) (stage.Config, string) {
	return stage.Build(kind, opts, Option.apply)
}
