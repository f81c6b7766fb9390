// Package stagetest holds test helpers for the internal stage protocol
// (stage.BatchSubscriber), shared by the tests of the packages whose
// stages hand over runs of items.
package stagetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// Runs wraps a publisher so that every subscriber it is given takes
// runs (stage.BatchSubscriber), as sluice's own stages do: upstream then
// hands it runs. The wrapper passes a run on whole to a subscriber that
// takes runs, and item by item to any other, stopping once the subscriber
// has cancelled, as a stage that takes runs does. It counts the runs and
// items it received and records any run that breaks the
// stage.BatchSubscriber contract.
type Runs[T any] struct {
	src flow.Publisher[T]

	// Runs and Items count the runs and the items handed over.
	Runs, Items atomic.Int64
	mu          sync.Mutex
	bad         []string
}

// TakeRuns returns src wrapped so that its subscribers take runs.
func TakeRuns[T any](src flow.Publisher[T]) *Runs[T] { return &Runs[T]{src: src} }

// Subscribe subscribes s to the wrapped publisher through a subscriber
// that takes runs.
func (p *Runs[T]) Subscribe(s flow.Subscriber[T]) {
	p.src.Subscribe(newRunTaker(s, p))
}

// Check fails t if a run broke the contract, or if want and no run came.
func (p *Runs[T]) Check(t testing.TB, wantRuns bool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.bad {
		t.Error(b)
	}
	if wantRuns && p.Runs.Load() == 0 {
		t.Error("upstream handed over no run: the test does not exercise the run path")
	}
}

// taker is the subscriber Runs hands upstream. It drops its
// reference to the subscriber on cancel and at the end, as a stage must
// (rule 3.13).
type taker[T any] struct {
	down atomic.Pointer[flow.Subscriber[T]]
	pub  *Runs[T]
	up   flow.Subscription
}

func newRunTaker[T any](s flow.Subscriber[T], pub *Runs[T]) *taker[T] {
	r := &taker[T]{pub: pub}
	r.down.Store(&s)
	return r
}

func (r *taker[T]) OnSubscribe(s flow.Subscription) {
	r.up = s
	if d := r.down.Load(); d != nil {
		(*d).OnSubscribe(r)
	}
}
func (r *taker[T]) Request(n int64) { r.up.Request(n) }
func (r *taker[T]) Cancel() {
	r.down.Store(nil)
	r.up.Cancel()
}
func (r *taker[T]) OnNext(v T) {
	if d := r.down.Load(); d != nil {
		(*d).OnNext(v)
	}
}
func (r *taker[T]) OnError(err error) {
	if d := r.down.Swap(nil); d != nil {
		(*d).OnError(err)
	}
}
func (r *taker[T]) OnComplete() {
	if d := r.down.Swap(nil); d != nil {
		(*d).OnComplete()
	}
}

func (r *taker[T]) OnNextBatch(items []T) {
	if len(items) == 0 || len(items) > stage.MaxBatch {
		r.pub.mu.Lock()
		r.pub.bad = append(r.pub.bad, fmt.Sprintf("OnNextBatch with %d items, want 1 to %d", len(items), stage.MaxBatch))
		r.pub.mu.Unlock()
	}
	r.pub.Runs.Add(1)
	r.pub.Items.Add(int64(len(items)))
	d := r.down.Load()
	if d == nil {
		return
	}
	if b := stage.Batcher(*d); b != nil {
		b.OnNextBatch(items)
		return
	}
	for _, v := range items {
		if r.down.Load() == nil {
			return
		}
		(*d).OnNext(v)
	}
}

var _ stage.BatchSubscriber[int] = (*taker[int])(nil)
