// Package jetstream is the sink that publishes a stream's items to NATS
// JetStream with asynchronous publish acks, a bounded number of them
// pending, a retry policy and a dead-letter hook. Its counterpart, the
// source that consumes a stream with demand-driven pulls, is package
// sources/jetstream; docs/distributed.md explains how the two scale a
// pipeline out over several processes.
package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/backoff"
	"github.com/sluicego/sluice/internal/probe"
)

// ErrProtocol is the cause of the error a sink returns when its upstream
// emits more items than it requested (rule 1.1).
var ErrProtocol = errors.New("sluice: jetstream: upstream emitted beyond demand")

// DeadLetter is what the [OnDeadLetter] hook receives for an item that
// was not published.
type DeadLetter struct {
	// Item is the item; nil unless a hook was set when it was published.
	Item any
	// Msg is the encoded message; nil when encode failed.
	Msg *nats.Msg
	// Err is the last attempt's error, or encode's error.
	Err error
	// Attempts is the number of publish attempts made; 0 when encode
	// failed.
	Attempts int
}

// Publish subscribes to pub, publishes each item as the message that
// encode returns (its Subject must belong to a stream), and blocks until
// the stream ends and every publish has been acknowledged by the server.
// It returns the number of messages the server acknowledged, and nil
// when pub completed, pub's error when it failed, ctx's cause when ctx
// ended first, or the first publish or encode failure that had no
// dead-letter hook to go to (upstream is then cancelled). A panic in
// encode ends the stream with a *[flow.PanicError].
//
// Demand: Publish requests MaxPending (default 256) items when it
// subscribes, and afterwards requests one item per acknowledged or
// dead-lettered message, in batches of max(1, MaxPending/4), so that the
// items requested and not received plus the publishes awaiting their ack
// never exceed MaxPending: the pipeline runs at the pace of the server's
// acks.
//
// Goroutines: encode runs on the goroutine that delivers the items; the
// acks are awaited, in publish order, on one goroutine that Publish owns
// and ends before it returns. When ctx ends, Publish returns without
// waiting for pending acks; their messages may or may not have been
// stored.
//
// Cost: per item, encode, one nats.go asynchronous publish (which
// allocates its message and ack future) and one channel send and receive
// to hand the future to the ack goroutine; per MaxPending/4 items, one
// Request.
func Publish[T any](ctx context.Context, j js.JetStream, pub flow.Publisher[T], encode func(T) (*nats.Msg, error), opts ...Option) (int64, error) {
	check("Publish", ctx, j, pub == nil, encode == nil)
	s := newSink(ctx, j, newConfig("Publish", opts), "publish")
	return s.run(func() { pub.Subscribe(&itemSubscriber[T]{sink: s, encode: encode}) })
}

func check(fn string, ctx context.Context, j js.JetStream, nilPub, nilEncode bool) {
	switch {
	case ctx == nil:
		panic("sluice: jetstream." + fn + ": nil Context")
	case j == nil:
		panic("sluice: jetstream." + fn + ": nil JetStream")
	case nilPub:
		panic("sluice: jetstream." + fn + ": nil Publisher")
	case nilEncode:
		panic("sluice: jetstream." + fn + ": nil encode function")
	}
}

// entry is one message handed from OnNext to the ack goroutine.
type entry struct {
	f    js.PubAckFuture // nil when the first publish call failed
	msg  *nats.Msg       // nil when encode failed
	item any             // set only when the item may reach the hook
	err  error           // encode or publish-call error
}

// sink is the state shared by the subscriber and the ack goroutine.
type sink struct {
	ctx     context.Context // the monitored context, returned by Context
	done    <-chan struct{} // the caller's ctx.Done
	cause   func() error
	js      js.JetStream
	cfg     config
	name    string
	pubOpts []js.PublishOpt

	entries chan entry // capacity maxPending: OnNext never blocks
	mu      sync.Mutex // guards sub, for Cancel from the ack goroutine
	sub     flow.Subscription
	stopped atomic.Bool // no more OnNext wanted: cancelled, failed or ended
	upErr   error       // written before entries is closed
	closed  bool        // entries closed; owned by the signalling side

	published atomic.Int64
	probe     *probe.Stage
}

func newSink(ctx context.Context, j js.JetStream, c config, kind string) *sink {
	s := &sink{done: ctx.Done(), cause: func() error { return context.Cause(ctx) }, js: j, cfg: c}
	s.probe, s.ctx = probe.AttachContext(ctx, kind, c.name, probe.Sink)
	s.name = c.name
	if s.probe != nil {
		s.name = s.probe.Name
	} else if s.name == "" {
		s.name = kind
	}
	s.pubOpts = []js.PublishOpt{js.WithRetryAttempts(0)} // one retry policy: ours
	s.entries = make(chan entry, c.maxPending)
	return s
}

// Context returns the sink's context, so that upstream stages can tie
// their work to it and register with its monitor.
func (s *sink) Context() context.Context { return s.ctx }

// run subscribes, runs the ack loop on a goroutine it owns, and returns
// its result once that goroutine has ended.
func (s *sink) run(subscribe func()) (int64, error) {
	if err := s.cause(); err != nil {
		return 0, err
	}
	res := make(chan error, 1)
	go func() { res <- s.acks() }()
	subscribe()
	err := <-res
	return s.published.Load(), err
}

func (s *sink) onSubscribe(sub flow.Subscription, initial int64) {
	if sub == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	s.mu.Lock()
	first := s.sub == nil
	if first {
		s.sub = sub
	}
	s.mu.Unlock()
	if !first || s.stopped.Load() {
		sub.Cancel() // rule 2.5, or already over
		return
	}
	s.probe.Request(initial)
	sub.Request(initial)
}

func (s *sink) request(n int64) {
	s.mu.Lock()
	sub := s.sub
	s.mu.Unlock()
	if sub != nil && !s.stopped.Load() {
		s.probe.Request(n)
		sub.Request(n)
	}
}

// cancel stops the stream from the ack goroutine. The monitor records a
// cancellation: Failed would publish the delivered count, which belongs
// to the delivering goroutine, possibly still running.
func (s *sink) cancel() {
	if s.stopped.CompareAndSwap(false, true) {
		s.probe.End(probe.Cancelled)
		s.mu.Lock()
		sub := s.sub
		s.mu.Unlock()
		if sub != nil {
			sub.Cancel()
		}
	}
}

// send hands e to the ack goroutine. It reports false when the upstream
// emitted beyond demand, which fills the channel.
func (s *sink) send(e entry) bool {
	select {
	case s.entries <- e:
		return true
	default:
		return false
	}
}

// publish encodes and publishes v, then hands it over.
func publishOne[T any](s *sink, v T, encode func(T) (*nats.Msg, error)) bool {
	m, err := encode(v)
	if err != nil {
		return s.send(entry{item: v, err: fmt.Errorf("%s: encode: %w", s.name, err)})
	}
	if m == nil {
		return s.send(entry{item: v, err: fmt.Errorf("%s: encode returned a nil message", s.name)})
	}
	f, err := s.js.PublishMsgAsync(m, s.pubOpts...)
	e := entry{f: f, msg: m, err: err}
	if s.cfg.deadLetter != nil {
		e.item = v
	}
	return s.send(e)
}

// upstreamEnded records the end of the upstream (err nil: completed) and
// lets the ack goroutine finish once it has drained what is pending.
func (s *sink) upstreamEnded(err error) {
	if s.closed {
		return
	}
	s.closed = true
	s.upErr = err
	close(s.entries)
}

// violation ends the stream on a protocol violation by the upstream.
func (s *sink) violation() {
	s.upstreamEnded(fmt.Errorf("%s: %w", s.name, ErrProtocol))
	s.cancel()
}

// acks is the ack goroutine: it waits for each publish's ack in order,
// retries failures, feeds the dead-letter hook and requests more.
func (s *sink) acks() error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	wait := func(d time.Duration) <-chan time.Time {
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		return timer.C
	}
	batch := max(1, int64(s.cfg.maxPending)/4)
	var freed int64
	for {
		var e entry
		var ok bool
		select {
		case e, ok = <-s.entries:
		case <-s.done:
			s.cancel()
			return s.cause()
		}
		if !ok {
			if s.upErr != nil {
				s.probe.End(probe.Failed)
			} else {
				s.probe.End(probe.Completed)
			}
			return s.upErr
		}
		err := s.settle(e, wait)
		if err != nil {
			if s.cause() != nil {
				s.cancel()
				return s.cause()
			}
			s.cancel()
			return err
		}
		// Demand outstanding + publishes pending + freed = MaxPending, so
		// with nothing outstanding and nothing pending, freed = MaxPending
		// >= batch: requesting in whole batches never stalls.
		freed++
		if freed >= batch {
			s.request(freed)
			freed = 0
		}
	}
}

// settle waits for e's ack, retrying as the policy says; it returns an
// error only when the message failed and there is no hook, or ctx ended.
func (s *sink) settle(e entry, wait func(time.Duration) <-chan time.Time) error {
	if e.msg == nil { // encode failed
		return s.dead(DeadLetter{Item: e.item, Err: e.err})
	}
	attempt := 1
	err := e.err
	for {
		if err == nil {
			select {
			case <-e.f.Ok():
				s.published.Add(1)
				return nil
			case err = <-e.f.Err():
			case <-wait(s.cfg.ackTimeout):
				err = js.ErrAsyncPublishTimeout
			case <-s.done:
				return s.cause()
			}
		}
		if attempt >= s.cfg.attempts {
			return s.dead(DeadLetter{Item: e.item, Msg: e.msg, Err: fmt.Errorf("%s: publish to %q: %w", s.name, e.msg.Subject, err), Attempts: attempt})
		}
		select {
		case <-wait(backoff.Delay(attempt, s.cfg.backoff, 32*s.cfg.backoff, 2, backoff.None, 0)):
		case <-s.done:
			return s.cause()
		}
		attempt++
		e.f, err = s.js.PublishMsgAsync(e.msg, s.pubOpts...)
	}
}

func (s *sink) dead(d DeadLetter) error {
	if s.cfg.deadLetter == nil {
		return d.Err
	}
	s.probe.Drop(flow.ReasonError)
	s.cfg.deadLetter(d)
	return nil
}

// itemSubscriber is the subscriber of Publish.
type itemSubscriber[T any] struct {
	*sink
	encode func(T) (*nats.Msg, error)
}

func (p *itemSubscriber[T]) OnSubscribe(sub flow.Subscription) {
	p.onSubscribe(sub, int64(p.cfg.maxPending))
}

func (p *itemSubscriber[T]) OnNext(v T) {
	if p.stopped.Load() || p.closed {
		return
	}
	if p.probe != nil {
		p.probe.Next()
		defer p.probe.Returned()
	}
	defer func() {
		if r := recover(); r != nil { // encode panicked
			p.upstreamEnded(fmt.Errorf("%s: encode: %w", p.name, flow.NewPanicError(r)))
			p.cancel()
		}
	}()
	if !publishOne(p.sink, v, p.encode) {
		p.violation()
	}
}

func (p *itemSubscriber[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	p.upstreamEnded(err)
}

func (p *itemSubscriber[T]) OnComplete() { p.upstreamEnded(nil) }
