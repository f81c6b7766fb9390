package sources_test

import (
	"sync"
	"time"

	"github.com/sluicego/sluice/flow"
)

// emRecorder records what a subscriber receives. It requests Initial in
// OnSubscribe and Each after every item, and cancels in the OnNext of item
// number CancelAt (1-based; 0 for never). Signals may come from any
// goroutine, serially.
type emRecorder[T any] struct {
	Initial  int64
	Each     int64
	CancelAt int
	Start    time.Time // when set, arrival times are recorded since Start

	mu    sync.Mutex
	sub   flow.Subscription
	items []T
	times []time.Duration
	res   string
	done  chan struct{}
	once  sync.Once
}

func (r *emRecorder[T]) ch() chan struct{} {
	r.once.Do(func() { r.done = make(chan struct{}) })
	return r.done
}

func (r *emRecorder[T]) OnSubscribe(s flow.Subscription) {
	r.ch()
	r.mu.Lock()
	r.sub = s
	r.mu.Unlock()
	if r.Initial > 0 {
		s.Request(r.Initial)
	}
}

func (r *emRecorder[T]) OnNext(v T) {
	r.mu.Lock()
	if r.res != "" {
		r.res += "; OnNext after terminal"
	}
	r.items = append(r.items, v)
	if !r.Start.IsZero() {
		r.times = append(r.times, time.Since(r.Start))
	}
	n, s := len(r.items), r.sub
	r.mu.Unlock()
	if n == r.CancelAt {
		s.Cancel()
		return
	}
	if r.Each > 0 {
		s.Request(r.Each)
	}
}

func (r *emRecorder[T]) end(res string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.res != "" {
		r.res += "; second terminal: " + res
		return
	}
	r.res = res
	close(r.ch())
}

func (r *emRecorder[T]) OnError(err error) { r.end("error: " + err.Error()) }
func (r *emRecorder[T]) OnComplete()       { r.end("complete") }

func (r *emRecorder[T]) Request(n int64) { r.subscription().Request(n) }
func (r *emRecorder[T]) Cancel()         { r.subscription().Cancel() }

func (r *emRecorder[T]) subscription() flow.Subscription {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sub
}

func (r *emRecorder[T]) Items() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

func (r *emRecorder[T]) Times() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.times...)
}

// Result is "complete", "error: <message>", or "open".
func (r *emRecorder[T]) Result() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.res == "" {
		return "open"
	}
	return r.res
}

func (r *emRecorder[T]) Done() <-chan struct{} { return r.ch() }

type emDrop[T any] struct {
	Item   T
	Reason flow.DropReason
}

// emDrops is an OnDrop hook that records every drop.
type emDrops[T any] struct {
	mu    sync.Mutex
	drops []emDrop[T]
}

func (d *emDrops[T]) Hook(v T, r flow.DropReason) {
	d.mu.Lock()
	d.drops = append(d.drops, emDrop[T]{v, r})
	d.mu.Unlock()
}

func (d *emDrops[T]) All() []emDrop[T] {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]emDrop[T](nil), d.drops...)
}

func (d *emDrops[T]) Counts() map[flow.DropReason]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var m map[flow.DropReason]int64
	for _, x := range d.drops {
		if m == nil {
			m = map[flow.DropReason]int64{}
		}
		m[x.Reason]++
	}
	return m
}

func emDropsOf(r flow.DropReason, items ...int) []emDrop[int] {
	var out []emDrop[int]
	for _, v := range items {
		out = append(out, emDrop[int]{v, r})
	}
	return out
}
