package ring

import (
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
)

// Upstream is a stage's handle on its upstream Subscription.
//
// Request must be called serially; the stages call it only from their
// drain loop (a flow.WIP), so a Request made re-entrantly from inside the
// upstream's OnNext reaches the upstream directly, as rule 3.3 expects
// upstream to handle. Cancel may be called from any goroutine, at once
// and only once: it may overlap a Request running on another goroutine,
// which every sluice Subscription allows (a foreign publisher whose
// Subscription requires strictly serial calls, as rule 2.7 permits, should
// be wrapped in a sluice source first). After Cancel, Request does
// nothing.
type Upstream struct {
	sub    flow.Subscription
	set    atomic.Bool
	cancel atomic.Bool
}

// Set stores the subscription and reports true, or reports false when a
// subscription was already set (the caller must then cancel s, rule 2.5).
// Set must happen before Request and Cancel.
func (u *Upstream) Set(s flow.Subscription) bool {
	if !u.set.CompareAndSwap(false, true) {
		return false
	}
	u.sub = s
	return true
}

// Request asks upstream for n more items (n > 0).
func (u *Upstream) Request(n int64) {
	if !u.cancel.Load() {
		u.sub.Request(n)
	}
}

// Cancel cancels the upstream subscription, once.
func (u *Upstream) Cancel() {
	if u.cancel.CompareAndSwap(false, true) {
		u.sub.Cancel()
	}
}
