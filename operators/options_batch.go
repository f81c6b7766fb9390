package operators

import "github.com/sluicego/sluice/internal/stage"

// ReuseBatches lets [Batch] recycle its slices: a batch passed to the
// subscriber's OnNext is valid only until OnNext returns, after which the
// stage refills it with later items, as bufio.Scanner does with Bytes.
// Use it when the subscriber consumes each batch synchronously (a
// database write, an encoder) and does not keep it; it removes the
// allocation of one slice per batch, most of Batch's cost. It applies to
// Batch with maxWait == 0: Batch panics when it is given with maxWait > 0,
// because a timed batch can be taken by the timer while it is being
// filled. Other stages ignore it.
func ReuseBatches() Option { return reuseBatchesOption{} }

type reuseBatchesOption struct{}

func (reuseBatchesOption) apply(*stage.Config) {} // read by reuseBatches

// reuseBatches reports whether opts hold ReuseBatches.
func reuseBatches(opts []Option) bool {
	for _, o := range opts {
		if _, ok := o.(reuseBatchesOption); ok {
			return true
		}
	}
	return false
}
