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
	"github.com/sluicego/sluice/internal/probe"
)

// bindTimeout bounds the creation or lookup of the consumer when a
// subscription starts.
const bindTimeout = 10 * time.Second

// Source is a [flow.Publisher] of the messages of a durable JetStream
// pull consumer. Every subscription is one independent puller bound to
// the same consumer: subscriptions in one process, or in several
// processes with a Source each, share the consumer's messages, and the
// server delivers each message to one of them at a time.
//
// # Demand
//
// A subscription turns downstream demand into pull requests. With D the
// outstanding demand and O the messages asked for in open pulls and not
// yet delivered, it opens a pull of min(D − O, MaxPull) messages whenever
// D − O > 0 and O <= MaxPull/4 (the low-water mark), with at most two
// pulls open at once. Hence O never exceeds D: the messages in hand,
// which are part of O, never exceed what downstream requested, and a
// pull is issued ahead of need only while the current one is a quarter
// from done. Each pull waits at most PullWait at the server; one that
// expires short is replaced while demand lasts. Under Unbounded demand
// it pulls MaxPull at a time, still two at most.
//
// The server adds its own bound: the consumer's MaxAckPending caps the
// messages delivered and not yet acknowledged across every subscription
// of every process; when it is reached, pulls wait, whatever the demand.
//
// # Delivery
//
// Items are [Msg] values, delivered in the order they arrive, on a
// goroutine that the subscription owns (one per subscription, ending
// with it; [Source.Wait] waits for it). The source acknowledges nothing:
// downstream calls Msg.Ack after committing. A message whose decode
// function fails is terminated, counted in Stats.DecodeErrors and passed
// to the [OnDeadLetter] hook, and does not use demand; a panic in decode
// ends the stream with a *[flow.PanicError] and the message is nak'ed.
//
// # Ending
//
// The stream never completes by itself (a stream has no end), unless
// [UntilEmpty] is given. It fails when the consumer cannot be created or
// bound, or a pull fails for another reason than its expiry, with an
// error wrapped with the stage name. Transient pull failures (no
// responders while the consumer is being created or updated, a
// leadership change, a reconnection) are retried, up to 10 times in a
// row with a doubling pause. On Cancel the subscription stops pulling,
// naks every message it received and did not deliver (so the server
// redelivers them at once to the other subscriptions), and leaves
// delivered messages to downstream: nothing is acknowledged that was not
// committed. Because a pull cannot be withdrawn from the server, the
// goroutine lets the open pulls run out (at most PullWait) and naks what
// they still bring; [Source.Wait] waits for that.
//
// # Cost
//
// Per message: a channel receive from nats.go, the parse of its reply
// subject (Metadata), the decode function, an atomic add or two; the
// Msg itself is not allocated. Per pull: one request and one
// subscription on the connection, and one short-lived goroutine inside
// nats.go.
type Source[T any] struct {
	js     js.JetStream
	stream string
	ccfg   js.ConsumerConfig
	cons   js.Consumer // set by FromConsumer
	decode func(js.Msg) (T, error)
	cfg    config
	c      counters
	wg     sync.WaitGroup
}

// New returns a Source that creates or updates the durable pull consumer
// cfg on stream (jetstream.CreateOrUpdateConsumer, with the subscriber's
// context) when a subscription starts, and decodes each message with
// decode. cfg.Durable must be set: a durable consumer is what lets
// several subscriptions and processes share the work and survive
// restarts. Leave cfg.AckPolicy at its zero value (explicit acks) for
// at-least-once delivery; set AckWait, MaxAckPending, MaxDeliver and
// BackOff to taste.
//
// A nil js or decode, an empty stream or an empty cfg.Durable panics.
func New[T any](j js.JetStream, stream string, cfg js.ConsumerConfig, decode func(js.Msg) (T, error), opts ...Option) *Source[T] {
	switch {
	case j == nil:
		panic("sluice: jetstream.New: nil JetStream")
	case stream == "":
		panic("sluice: jetstream.New: empty stream name")
	case cfg.Durable == "":
		panic("sluice: jetstream.New: ConsumerConfig.Durable is empty")
	case decode == nil:
		panic("sluice: jetstream.New: nil decode function")
	}
	s := &Source[T]{js: j, stream: stream, ccfg: cfg, decode: decode, cfg: newConfig("New", opts)}
	s.c.deadLetter = s.cfg.deadLetter
	return s
}

// FromConsumer returns a Source that pulls from an existing consumer,
// such as one returned by jetstream.Stream.Consumer, without changing its
// configuration. It must be a pull consumer; it should be durable for
// several processes to share it. A nil c or decode panics.
func FromConsumer[T any](c js.Consumer, decode func(js.Msg) (T, error), opts ...Option) *Source[T] {
	switch {
	case c == nil:
		panic("sluice: jetstream.FromConsumer: nil Consumer")
	case decode == nil:
		panic("sluice: jetstream.FromConsumer: nil decode function")
	}
	s := &Source[T]{cons: c, decode: decode, cfg: newConfig("FromConsumer", opts)}
	s.c.deadLetter = s.cfg.deadLetter
	return s
}

// Bytes is a decode function that returns the message's data as it is.
func Bytes(m js.Msg) ([]byte, error) { return m.Data(), nil }

// String is a decode function that returns the message's data as a
// string.
func String(m js.Msg) (string, error) { return string(m.Data()), nil }

// Stats returns the source's counters, summed over its subscriptions. It
// is goroutine-safe and costs ten atomic loads.
func (s *Source[T]) Stats() Stats { return s.c.stats() }

// Wait blocks until every subscription of s has ended and its goroutine
// has returned, having released what it held. Call it after the sinks
// have returned and before closing the NATS connection, so that no
// goroutine of s outlives the connection.
func (s *Source[T]) Wait() { s.wg.Wait() }

// Subscribe starts a subscription: it calls sub.OnSubscribe, then binds
// the consumer and pulls on a goroutine of its own, according to demand.
// Subscribe(nil) panics.
func (s *Source[T]) Subscribe(sub flow.Subscriber[Msg[T]]) {
	flow.RequireSubscriber(sub)
	p := &subscription[T]{src: s, wake: make(chan struct{}, 1)}
	p.t.src = &s.c
	p.maxPull = int64(s.cfg.maxPull)
	p.low = p.maxPull / 4
	var ctx context.Context
	p.probe, ctx = probe.Attach(sub, "jetstream", s.cfg.name, probe.Source)
	p.ctx, p.stop = context.WithCancel(ctx)
	p.name = s.cfg.name
	if p.probe != nil {
		p.name = p.probe.Name
	} else if p.name == "" {
		p.name = "jetstream"
	}
	p.down.Store(&sub)
	s.wg.Add(1)
	sub.OnSubscribe(p)
	go p.run()
}

// subscription is one puller. Request and Cancel may be called from any
// goroutine; everything below the blank line belongs to the goroutine
// that runs run.
type subscription[T any] struct {
	src       *Source[T]
	demand    flow.Demand // downstream demand not yet delivered
	cancelled atomic.Bool
	failure   atomic.Pointer[error] // a non-positive request, signalled by run
	wake      chan struct{}         // capacity 1: "demand or cancel changed"
	down      atomic.Pointer[flow.Subscriber[Msg[T]]]
	probe     *probe.Stage
	ctx       context.Context // ends with the subscription; parent of every pull
	stop      context.CancelFunc
	name      string
	t         tally

	cons    js.Consumer
	pulls   [2]pull // open pulls, oldest first
	open    int     // number of open pulls
	asked   int64   // O: asked for in open pulls and not yet received
	maxPull int64
	low     int64
	mine    int64 // delivered by this subscription
	retries int   // transient pull failures in a row
}

// pull is one open pull request.
type pull struct {
	batch js.MessageBatch
	msgs  <-chan js.Msg
	left  int64 // asked for and not yet received
}

// Request adds n to the demand and wakes the puller. It is goroutine-safe
// and never blocks. A non-positive n ends the subscription with
// flow.NonPositiveRequestError(n).
func (p *subscription[T]) Request(n int64) {
	p.probe.Request(n)
	if n <= 0 {
		if p.cancelled.Load() {
			return
		}
		err := flow.NonPositiveRequestError(n)
		p.failure.CompareAndSwap(nil, &err)
		p.cancelled.Store(true)
		p.stop()
		p.signal()
		return
	}
	p.demand.Add(n)
	p.signal()
}

// Cancel stops the subscription: no item is delivered after the one
// being delivered, if any; received messages not delivered are nak'ed.
// It drops the reference to the subscriber at once (rule 3.13). It is
// goroutine-safe and idempotent, and does not wait for the goroutine; see
// Source.Wait.
func (p *subscription[T]) Cancel() {
	if p.cancelled.CompareAndSwap(false, true) {
		p.probe.End(probe.Cancelled)
		p.down.Store(nil)
		p.stop()
		p.signal()
	}
}

func (p *subscription[T]) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run is the subscription's goroutine. It reaches the subscriber only
// through p.down, which Cancel clears, so that its frame does not keep a
// cancelled subscriber alive (rule 3.13).
func (p *subscription[T]) run() {
	defer p.src.wg.Done()
	if err := p.bind(); err != nil {
		p.end(err)
		return
	}
	for {
		if p.cancelled.Load() {
			p.end(nil)
			return
		}
		if err := p.refill(); err != nil {
			p.end(err)
			return
		}
		if p.probe != nil {
			p.probe.Flush()
		}
		var (
			m  js.Msg
			ok bool
			i  int
		)
		select {
		case <-p.wake:
			continue
		case m, ok = <-p.pulls[0].msgs:
		case m, ok = <-p.pulls[1].msgs:
			i = 1
		}
		if !ok {
			done, err := p.closed(i)
			if err != nil || done {
				p.end(err)
				return
			}
			continue
		}
		if err := p.receive(i, m); err != nil {
			p.end(err)
			return
		}
	}
}

// bind creates, updates or looks up the consumer.
func (p *subscription[T]) bind() error {
	if p.src.cons != nil {
		p.cons = p.src.cons
	} else {
		ctx, cancel := context.WithTimeout(p.ctx, bindTimeout)
		defer cancel()
		c, err := p.src.js.CreateOrUpdateConsumer(ctx, p.src.stream, p.src.ccfg)
		if err != nil {
			// Another subscription may be creating the same consumer at
			// this moment: bind to it if it exists.
			var lerr error
			if c, lerr = p.src.js.Consumer(ctx, p.src.stream, p.src.ccfg.Durable); lerr != nil {
				return fmt.Errorf("%s: binding consumer %q on stream %q: %w", p.name, p.src.ccfg.Durable, p.src.stream, err)
			}
		}
		p.cons = c
	}
	// The server rejects pulls above the consumer's MaxRequestBatch.
	if info := p.cons.CachedInfo(); info != nil {
		if mb := int64(info.Config.MaxRequestBatch); mb > 0 && mb < p.maxPull {
			p.maxPull, p.low = mb, mb/4
		}
	}
	return nil
}

// refill opens pulls according to the demand rule (see Source).
func (p *subscription[T]) refill() error {
	for p.open < len(p.pulls) {
		d := p.demand.Load()
		if d-p.asked <= 0 || p.asked > p.low {
			return nil
		}
		k := min(d-p.asked, p.maxPull)
		// The server ends the pull (with a timeout status after the
		// last message it sent for it), never the client: a pull ended
		// client-side would lose the messages still on their way, until
		// AckWait.
		b, err := p.cons.Fetch(int(k), js.FetchMaxWait(p.src.cfg.wait))
		if err != nil {
			if p.cancelled.Load() {
				return nil
			}
			return p.retry(err)
		}
		p.pulls[p.open] = pull{batch: b, msgs: b.Messages(), left: k}
		p.open++
		p.asked += k
		p.src.c.pulls.Add(1)
	}
	return nil
}

// closed handles the end of pull i. It reports done when the stream
// must complete (UntilEmpty), or an error that must fail it.
func (p *subscription[T]) closed(i int) (done bool, err error) {
	pl := p.pulls[i]
	p.asked -= pl.left
	p.pulls[i] = p.pulls[1]
	p.pulls[1] = pull{}
	p.open--
	if p.cancelled.Load() {
		return false, nil
	}
	if err := pl.batch.Error(); err != nil && !expired(err) {
		return false, p.retry(err)
	}
	if p.src.cfg.untilEmpty && pl.left > 0 && p.open == 0 {
		return p.empty()
	}
	return false, nil
}

// expired reports whether a pull's error only says that it ended
// without all the messages it asked for.
func expired(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, js.ErrNoMessages) ||
		errors.Is(err, js.ErrBatchCompleted)
}

// transient reports whether a pull failed for a reason that passes:
// nobody answered the request (the consumer is being created or updated
// by another subscription, or its leader is moving), a leadership
// change, a missed heartbeat, a reconnection.
func transient(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, js.ErrConsumerLeadershipChanged) ||
		errors.Is(err, js.ErrNoHeartbeat) || errors.Is(err, js.ErrPinIDMismatch) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrTimeout)
}

// maxRetries is how many transient pull failures in a row a subscription
// rides out, waiting 10ms, 20ms, … up to PullWait between them, before it
// fails.
const maxRetries = 10

// retry handles a failed pull: it returns the error, wrapped, if the
// failure is not transient or has happened maxRetries times in a row, and
// otherwise waits before the next pull, returning early on Cancel.
func (p *subscription[T]) retry(err error) error {
	if !transient(err) || p.retries >= maxRetries {
		return fmt.Errorf("%s: pull: %w", p.name, err)
	}
	d := min(10*time.Millisecond<<p.retries, p.src.cfg.wait)
	p.retries++
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return nil
		case <-p.wake:
			if p.cancelled.Load() {
				return nil
			}
		}
	}
}

// empty reports whether the consumer has nothing left for this
// subscription (see UntilEmpty).
func (p *subscription[T]) empty() (bool, error) {
	ctx, cancel := context.WithTimeout(p.ctx, bindTimeout)
	defer cancel()
	info, err := p.cons.Info(ctx)
	if err != nil {
		if p.cancelled.Load() {
			return false, nil
		}
		return false, fmt.Errorf("%s: consumer info: %w", p.name, err)
	}
	held := p.mine - p.t.settles.Load()
	return info.NumPending == 0 && int64(info.NumAckPending) <= held, nil
}

// receive handles one message of pull i.
func (p *subscription[T]) receive(i int, m js.Msg) (err error) {
	p.pulls[i].left--
	p.asked--
	p.retries = 0
	c := &p.src.c
	c.received.Add(1)
	if p.cancelled.Load() {
		p.release(m)
		return nil
	}
	var delivered, seq uint64
	if md, err := m.Metadata(); err == nil {
		delivered, seq = md.NumDelivered, md.Sequence.Stream
		if delivered > 1 {
			c.redelivered.Add(1)
			p.probe.Redelivered() // sluice_stage_redelivered_total
		}
	}
	v, derr, perr := p.decode(m)
	if perr != nil {
		p.release(m)
		return perr
	}
	if derr != nil {
		c.decodeErrors.Add(1)
		if h := c.deadLetter; h != nil {
			h(newDeadLetter(m, delivered, seq, derr.Error(), derr))
		}
		if m.TermWithReason("decode: "+derr.Error()) == nil {
			c.terminated.Add(1)
		}
		return nil
	}
	dp := p.down.Load()
	if dp == nil { // cancelled meanwhile
		p.release(m)
		return nil
	}
	p.mine++
	c.delivered.Add(1)
	item := Msg[T]{Value: v, raw: m, t: &p.t, numDelivered: delivered, streamSeq: seq}
	if st := p.probe; st != nil {
		st.Next()
		(*dp).OnNext(item)
		st.Returned()
	} else {
		(*dp).OnNext(item)
	}
	p.demand.Produced(1)
	return nil
}

// decode runs the user's decode function, turning a panic into perr.
func (p *subscription[T]) decode(m js.Msg) (v T, derr, perr error) {
	defer func() {
		if r := recover(); r != nil {
			perr = fmt.Errorf("%s: decode: %w", p.name, flow.NewPanicError(r))
		}
	}()
	v, derr = p.src.decode(m)
	return v, derr, nil
}

// release naks a message received and not delivered.
func (p *subscription[T]) release(m js.Msg) {
	if m.Nak() == nil {
		p.src.c.naked.Add(1)
	}
	p.src.c.released.Add(1)
}

// end closes every open pull, releasing what they still hold, and sends
// the terminal signal: err, the recorded non-positive request, or
// OnComplete when the stream completed. Cancelled subscriptions get no
// signal besides a non-positive request's error.
func (p *subscription[T]) end(err error) {
	p.stop()
	for i := range p.open {
		// Wait for the server to end the pull (at most PullWait), so that
		// every message it sends for it is released, not lost.
		for m := range p.pulls[i].msgs {
			p.src.c.received.Add(1)
			p.release(m)
		}
		p.pulls[i] = pull{}
	}
	p.open, p.asked = 0, 0
	dp := p.down.Swap(nil)
	if f := p.failure.Load(); f != nil {
		err = *f
		if dp == nil {
			return // cancelled first: rule 3.6
		}
	} else if p.cancelled.Load() || dp == nil {
		return
	}
	if err != nil {
		p.probe.End(probe.Failed)
		(*dp).OnError(err)
		return
	}
	p.probe.End(probe.Completed)
	(*dp).OnComplete()
}
