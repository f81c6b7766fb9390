package operators

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sluicego/sluice/flow"
)

// RateLimit returns a publisher that mirrors src at no more than r items
// per second on average, with bursts of up to burst items: a token bucket
// (golang.org/x/time/rate), one per subscription. It shapes by delaying
// and never drops: it paces its requests upstream, so src is never asked
// for an item before a token is there for it, and items flow through as
// soon as they arrive.
//
// Demand: downstream's Request(n) is credited; the stage requests
// upstream Request(k) for k = min(credit, burst, whole tokens available
// now), taking k tokens, as often as tokens allow; when no token is
// available it reserves the next one and requests 1 item when it is due
// (then takes whatever more the bucket holds). So it never requests more
// than downstream asked for, nor faster than the tokens come; with
// Unbounded demand it requests in batches of at most burst. Cancel cancels
// upstream and the pending timer, and hands the reserved token back.
//
// Timers: one time.AfterFunc timer per subscription, re-armed per
// reserved token (so at high rates one wake-up often lets several items
// through); pacing is exact under testing/synctest. The subscription is
// goroutine-safe. Cost: nothing per item beside the forwarding (about
// 8 ns per item over the bare chain on the 2-core VM,
// BenchmarkResilience); the bucket's
// mutex and a clock read once per batch of requests. Options: [Name]. It panics if src
// is nil, r <= 0 or burst < 1; r may be rate.Inf, which passes demand
// through unchanged.
func RateLimit[T any](src flow.Publisher[T], r rate.Limit, burst int, opts ...Option) flow.Publisher[T] {
	mustSource("RateLimit", src)
	if !(r > 0) {
		panic("sluice: RateLimit: r <= 0")
	}
	if burst < 1 {
		panic("sluice: RateLimit: burst < 1")
	}
	_, name := newConfig("rateLimit", opts)
	return newRateLimit(src, func() *rate.Limiter { return rate.NewLimiter(r, burst) }, name)
}

// RateLimitShared is [RateLimit] with a limiter that the caller owns and
// may share between stages, subscriptions and other code (an API quota
// spent by several pipelines): each subscription takes its tokens from
// lim. Changes to lim's limit and burst take effect at the next request.
// A limit of 0 with burst 0 lets nothing through; a burst of 0 with a
// finite limit ends the stream with an error. It panics if src or lim is
// nil.
func RateLimitShared[T any](src flow.Publisher[T], lim *rate.Limiter, opts ...Option) flow.Publisher[T] {
	mustSource("RateLimitShared", src)
	if lim == nil {
		panic("sluice: RateLimitShared: nil limiter")
	}
	_, name := newConfig("rateLimit", opts)
	return newRateLimit(src, func() *rate.Limiter { return lim }, name)
}

func newRateLimit[T any](src flow.Publisher[T], newLim func() *rate.Limiter, name string) flow.Publisher[T] {
	return flow.PublisherFunc[T](func(s flow.Subscriber[T]) {
		rl := &rateSub[T]{lim: newLim()}
		rl.init(s, name, "rateLimit")
		src.Subscribe(rl)
	})
}

type rateSub[T any] struct {
	relay[T]
	lim *rate.Limiter

	credit flow.Demand // requested by downstream, not yet upstream
	wip    flow.WIP
	ready  atomic.Bool // the reserved token is due
	done   atomic.Bool

	waiting   bool // drain loop only: a token is reserved, its timer pending
	unbounded bool // drain loop only: Unbounded was requested upstream

	mu      sync.Mutex // guards the fields below
	timer   *time.Timer
	res     *rate.Reservation
	stopped bool
}

// OnSubscribe passes the subscription down. It holds the drain loop
// meanwhile, so that no request goes upstream, and no item comes from a
// timer's goroutine, before downstream's OnSubscribe has returned (rule
// 1.3); requests made inside it are served when it returns.
func (rl *rateSub[T]) OnSubscribe(up flow.Subscription) {
	if !rl.wip.Enter() {
		rl.subscribe(up, rl) // a second subscription: refused
		return
	}
	rl.subscribe(up, rl)
	rl.drainLoop()
}

// requestsFromTimer marks the stage as requesting upstream from its
// timer's goroutine (see upstreamSync in publishon.go).
func (rl *rateSub[T]) requestsFromTimer() {}

// Request credits n and requests what the tokens allow.
func (rl *rateSub[T]) Request(n int64) {
	if n <= 0 {
		rl.up.Request(n) // upstream signals the rule 3.9 error through us
		return
	}
	rl.probe.Request(n)
	rl.credit.Add(n)
	rl.drain()
}

// drain is the single place where the stage requests upstream.
func (rl *rateSub[T]) drain() {
	if rl.wip.Enter() {
		rl.drainLoop()
	}
}

// drainLoop runs the drain loop; the caller has entered rl.wip.
func (rl *rateSub[T]) drainLoop() {
	for missed := int32(1); missed != 0; missed = rl.wip.Leave(missed) {
		if rl.done.Load() || rl.unbounded {
			continue
		}
		if rl.ready.Swap(false) {
			rl.waiting = false
			rl.grant(1)
		}
		if rl.waiting {
			continue
		}
		rl.take()
	}
}

// take requests as many items as credit and tokens allow now, and
// reserves the next token when they run out. Drain loop only.
func (rl *rateSub[T]) take() {
	for !rl.done.Load() {
		c := rl.credit.Load()
		if c == 0 {
			return
		}
		if rl.lim.Limit() == rate.Inf {
			if c == flow.Unbounded {
				rl.unbounded = true
			}
			rl.grant(c)
			continue
		}
		now := time.Now()
		k := min(c, int64(rl.lim.Burst()), int64(rl.lim.TokensAt(now)))
		if k >= 1 && rl.lim.AllowN(now, int(k)) {
			rl.grant(k)
			continue
		}
		res := rl.lim.ReserveN(now, 1)
		if !res.OK() {
			rl.stop()
			rl.fail(fmt.Errorf("the limiter lets nothing through (burst %d)", rl.lim.Burst()))
			return
		}
		d := res.DelayFrom(now)
		if d <= 0 {
			rl.grant(1)
			continue
		}
		rl.mu.Lock()
		if rl.stopped {
			rl.mu.Unlock()
			res.CancelAt(now)
			return
		}
		rl.waiting = true
		rl.res = res
		if rl.timer == nil {
			rl.timer = time.AfterFunc(d, rl.due)
		} else {
			rl.timer.Reset(d)
		}
		rl.mu.Unlock()
		return
	}
}

// due is the timer's function: the reserved token is there.
func (rl *rateSub[T]) due() {
	rl.mu.Lock()
	rl.res = nil
	rl.mu.Unlock()
	rl.ready.Store(true)
	rl.drain()
}

// grant requests k items upstream, paid for by k tokens.
func (rl *rateSub[T]) grant(k int64) {
	rl.credit.Produced(k)
	rl.up.Request(k)
}

// stop ends the pacing: the timer is stopped and a reserved token given
// back to the bucket (it matters for a shared limiter).
func (rl *rateSub[T]) stop() {
	rl.done.Store(true)
	rl.mu.Lock()
	rl.stopped = true
	if rl.timer != nil {
		rl.timer.Stop()
	}
	res := rl.res
	rl.res = nil
	rl.mu.Unlock()
	if res != nil {
		res.Cancel()
	}
}

func (rl *rateSub[T]) OnNext(v T) {
	if p := rl.down.Load(); p != nil {
		rl.emit(p, v)
	}
}

func (rl *rateSub[T]) OnError(err error) {
	rl.stop()
	rl.relay.OnError(err)
}

func (rl *rateSub[T]) OnComplete() {
	rl.stop()
	rl.relay.OnComplete()
}

// Cancel cancels upstream and the pending timer.
func (rl *rateSub[T]) Cancel() {
	rl.stop()
	rl.relay.Cancel()
}
