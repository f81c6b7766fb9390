package sources

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/stage"
)

// Ticker emits the time of each tick of a [time.Ticker] with the given
// period, forever, to each subscriber: a hot source built on an
// [Emitter] of capacity 1 with the given overflow policy, one per
// subscription.
//
// What it emits: a tick is buffered when it happens, whatever the demand,
// and delivered when the subscriber asks. When a tick comes while the
// previous one still waits for demand, the policy decides: [flow.DropOldest]
// keeps the latest tick, [flow.DropNewest] the earliest, [flow.Fail] ends
// the stream with an error that matches flow.ErrOverflow once the pending
// tick was delivered (like Reactor's interval), and [flow.Block] makes
// the ticking goroutine wait for room, while time.Ticker skips the ticks
// it cannot hand over (those ticks are not items and are not counted).
// Dropped ticks go to the OnDrop hook with their reason.
//
// Goroutines: each subscription owns one goroutine and one time.Ticker,
// started at Subscribe and stopped when the subscriber cancels or the
// stream fails; it works under testing/synctest. The subscription is
// goroutine-safe.
//
// period <= 0 or an unknown policy panics.
func Ticker(period time.Duration, policy flow.Overflow, opts ...Option) flow.Publisher[time.Time] {
	if period <= 0 {
		panic("sluice: Ticker: period <= 0")
	}
	if !policy.Valid() {
		panic(fmt.Sprintf("sluice: Ticker: invalid policy %v", policy))
	}
	cfg, name := newConfig("ticker", opts)
	stage.DropHook[time.Time](&cfg, name) // check the hook's type now
	return &tickerPublisher{period: period, policy: policy, cfg: cfg, name: name}
}

type tickerPublisher struct {
	period time.Duration
	policy flow.Overflow
	cfg    stage.Config
	name   string
}

func (p *tickerPublisher) Subscribe(s flow.Subscriber[time.Time]) {
	flow.RequireSubscriber(s)
	e := newEmitter[time.Time](1, p.policy, p.cfg, p.name, "Ticker")
	e.Publisher().Subscribe(s)
	go p.run(e)
}

// run is the subscription's ticking goroutine; it returns when the
// subscription is over.
func (p *tickerPublisher) run(e *Emitter[time.Time]) {
	t := time.NewTicker(p.period)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			if p.policy == flow.Block {
				// Emit returns ErrClosed when the subscription ends.
				if e.Emit(context.Background(), now) != nil {
					return
				}
			} else if r := e.TryEmit(now); r == Closed || (r == Dropped && p.policy == flow.Fail) {
				return
			}
		case <-e.Done():
			return
		}
	}
}
