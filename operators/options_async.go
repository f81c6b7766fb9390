package operators

import "github.com/sluicego/sluice/internal/stage"

// DelayError sets whether an async boundary ([PublishOn]) or a concurrent
// map ([ParallelMap], [MapAsync]) delivers an upstream error after the
// items it has already queued (true, the default, as Reactor's
// delayError) or at once (false), dropping the
// queued items, each counted and passed to the [OnDrop] hook with
// flow.ReasonCancelled. Stages that do not queue ignore it.
func DelayError(delay bool) Option { return delayErrorOption(delay) }

type delayErrorOption bool

func (delayErrorOption) apply(*stage.Config) {} // read by asyncConfig

// asyncConfig returns the settings of the options that only async
// boundaries read. The last DelayError wins.
func asyncConfig(opts []Option) (delayError bool) {
	delayError = true
	for _, o := range opts {
		if d, ok := o.(delayErrorOption); ok {
			delayError = bool(d)
		}
	}
	return delayError
}
