package operators

import (
	"errors"
	"fmt"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// ErrTooManyGroups ends a [GroupBy] built with [FailAtMaxGroups] when an
// item with a new key arrives while maxGroups groups are open. The error
// that reaches subscribers wraps it with the stage name and the key.
var ErrTooManyGroups = errors.New("sluice: too many open groups")

// defaultMaxKeys is the bound on the keys FairByKey holds at once when no
// MaxKeys option is given.
const defaultMaxKeys = 1024

// OutputOverflow sets the overflow policy of [Partition] outputs: of the
// outputs listed, or of every output when none is listed. The default,
// [flow.Block], makes a slow output backpressure the whole Partition;
// another policy sheds that output's excess instead (see Partition). Later
// options override earlier ones for the outputs they name. Stages other
// than Partition ignore it. An invalid policy or a negative output panics
// here; an output >= n panics when Partition is built.
func OutputOverflow(policy flow.Overflow, outputs ...int) Option {
	if !policy.Valid() {
		panic(fmt.Sprintf("sluice: OutputOverflow: invalid policy %v", policy))
	}
	for _, i := range outputs {
		if i < 0 {
			panic(fmt.Sprintf("sluice: OutputOverflow: negative output %d", i))
		}
	}
	return outputOverflowOption{policy: policy, outputs: append([]int(nil), outputs...)}
}

type outputOverflowOption struct {
	policy  flow.Overflow
	outputs []int
}

func (outputOverflowOption) apply(*stage.Config) {} // read by partitionPolicies

// EagerCancel makes a [Partition] cancel its upstream as soon as the
// subscriber of any output cancels (or calls Request(n <= 0)), like
// Akka's Partition with eagerCancel, instead of once every output has
// cancelled (the default). Every other output then completes at once,
// without waiting for demand: the items queued for it are dropped with
// flow.ReasonCancelled (Akka drops its pending element the same way), and
// so are items that were already in flight from upstream. It has no
// effect once upstream has ended: the outputs still receive their queued
// items and upstream's terminal signal. Stages other than Partition
// ignore it; [AutoCancel], for Broadcast and Balance, is the default
// behaviour here (upstream is cancelled when the last output cancels).
// Cost: one more indirect call per item delivered, to watch for the
// cancel.
func EagerCancel() Option { return eagerCancelOption{} }

type eagerCancelOption struct{}

func (eagerCancelOption) apply(*stage.Config) {} // read by keyedConfig

// GroupOverflow sets the overflow policy of the queue of every group of a
// [GroupBy] (P items, the Prefetch). The default, [flow.Block], makes an
// item whose group's queue is full wait, with upstream backpressured, so a
// group nobody consumes stops the whole GroupBy; another policy sheds that
// group's excess instead, as [Buffer] does: [flow.DropNewest] and
// [flow.DropOldest] drop it (counted and passed to [OnDrop]), [flow.Fail]
// ends that group alone with [flow.ErrOverflow] (see GroupBy). Stages
// other than GroupBy ignore it. An invalid policy panics.
func GroupOverflow(policy flow.Overflow) Option {
	if !policy.Valid() {
		panic(fmt.Sprintf("sluice: GroupOverflow: invalid policy %v", policy))
	}
	return groupOverflowOption(policy)
}

type groupOverflowOption flow.Overflow

func (groupOverflowOption) apply(*stage.Config) {} // read by keyedConfig

// FailAtMaxGroups makes a [GroupBy] end with an error that matches
// [ErrTooManyGroups] when an item with a new key arrives while maxGroups
// groups are open, instead of waiting, with upstream backpressured, until
// a group is cancelled (the default). Stages other than GroupBy ignore it.
func FailAtMaxGroups() Option { return failAtMaxGroupsOption{} }

type failAtMaxGroupsOption struct{}

func (failAtMaxGroupsOption) apply(*stage.Config) {} // read by keyedConfig

// KeyOverflow sets what [FairByKey] does when an item arrives for a key
// whose queue is full, or for a new key while MaxKeys keys are held. The
// default, [flow.Block], never lets that happen: upstream is requested
// only what is sure to fit (see FairByKey). Stages other than FairByKey
// ignore it. An invalid policy panics.
func KeyOverflow(policy flow.Overflow) Option {
	if !policy.Valid() {
		panic(fmt.Sprintf("sluice: KeyOverflow: invalid policy %v", policy))
	}
	return keyOverflowOption(policy)
}

type keyOverflowOption flow.Overflow

func (keyOverflowOption) apply(*stage.Config) {} // read by keyedConfig

// MaxKeys bounds the number of distinct keys [FairByKey] holds items for
// at once; the default is 1024. Stages other than FairByKey ignore it.
// n <= 0 panics.
func MaxKeys(n int) Option {
	if n <= 0 {
		panic("sluice: MaxKeys: n <= 0")
	}
	return maxKeysOption(n)
}

type maxKeysOption int

func (maxKeysOption) apply(*stage.Config) {} // read by keyedConfig

// keyedSettings holds the settings of the options that only the keyed stages
// read. The last option of each kind wins.
type keyedSettings struct {
	failAtMax     bool
	groupOverflow flow.Overflow
	keyOverflow   flow.Overflow
	maxKeys       int
	eagerCancel   bool
}

func keyedConfig(opts []Option) keyedSettings {
	k := keyedSettings{maxKeys: defaultMaxKeys}
	for _, o := range opts {
		switch o := o.(type) {
		case failAtMaxGroupsOption:
			k.failAtMax = true
		case groupOverflowOption:
			k.groupOverflow = flow.Overflow(o)
		case keyOverflowOption:
			k.keyOverflow = flow.Overflow(o)
		case maxKeysOption:
			k.maxKeys = int(o)
		case eagerCancelOption:
			k.eagerCancel = true
		}
	}
	return k
}

// partitionPolicies returns the policy of each of n outputs. An output
// named by an OutputOverflow option that is >= n panics.
func partitionPolicies(n int, opts []Option) []flow.Overflow {
	ps := make([]flow.Overflow, n)
	for _, o := range opts {
		oo, ok := o.(outputOverflowOption)
		if !ok {
			continue
		}
		if len(oo.outputs) == 0 {
			for i := range ps {
				ps[i] = oo.policy
			}
			continue
		}
		for _, i := range oo.outputs {
			if i >= n {
				panic(fmt.Sprintf("sluice: Partition: OutputOverflow names output %d of %d", i, n))
			}
			ps[i] = oo.policy
		}
	}
	return ps
}
