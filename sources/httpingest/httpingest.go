// Package httpingest turns HTTP requests into the items of a pipeline,
// with backpressure that callers can see.
//
// A [Handler] is an http.Handler in front of a bounded [sources.Emitter]
// (policy flow.Block). Each request body is decoded into one item and
// offered to the buffer without waiting:
//
//   - accepted: the handler answers 202 Accepted at once ([Async], the
//     default), or waits until the pipeline acknowledges the item
//     ([Sync]) and answers 200 OK, or 500 if the sink failed it, or 504
//     if the acknowledgement takes longer than the timeout;
//   - buffer full: 429 Too Many Requests with a Retry-After header, in
//     whole seconds, from the number of items waiting and the rate at
//     which the pipeline has been draining them;
//   - shutting down: 503 Service Unavailable, with Retry-After;
//   - body over the size limit: 413; undecodable body: 400 with the
//     reason. Neither reaches the pipeline.
//
// The pipeline receives *[Item] values. An Item carries the decoded value
// and an acknowledgement: the sink calls [Item.Ack] (or Nack) once it has
// committed the value. In Async mode acknowledgements only count.
//
// Shutdown stops accepting (503), waits for the handlers in flight,
// completes the stream, so that the pipeline drains what was accepted,
// and returns when the subscription is over.
package httpingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

// ErrShutdown is the error of Shutdown when its context ends before the
// pipeline has drained.
var ErrShutdown = errors.New("sluice: httpingest: shutdown: pipeline not drained")

// Item is one accepted request's value on its way through the pipeline.
// Ack or Nack must be called at most once, by the stage that commits it;
// both are goroutine-safe and cost a channel send at most.
type Item[T any] struct {
	Value T
	// Received is when the handler accepted the request.
	Received time.Time
	done     chan error // buffered 1; nil in Async mode
	h        ackCounter
	once     atomic.Bool
}

type ackCounter interface{ acked(err error) }

// Ack reports that the value was committed. In Sync mode the handler
// then answers 200.
func (it *Item[T]) Ack() { it.finish(nil) }

// Nack reports that the value could not be committed; in Sync mode the
// handler answers 500 with err's message.
func (it *Item[T]) Nack(err error) {
	if err == nil {
		err = errors.New("not committed")
	}
	it.finish(err)
}

func (it *Item[T]) finish(err error) {
	if !it.once.CompareAndSwap(false, true) {
		return
	}
	it.h.acked(err)
	if it.done != nil {
		it.done <- err
	}
}

// Mode says when the handler answers an accepted request.
type Mode uint8

const (
	// Async answers 202 Accepted as soon as the item is buffered.
	Async Mode = iota
	// Sync waits for Item.Ack (200), Item.Nack (500) or the timeout (504).
	Sync
)

type config struct {
	capacity   int
	maxBody    int64
	mode       Mode
	ackTimeout time.Duration
	name       string
	maxRetry   time.Duration
}

// Option configures a Handler.
type Option func(*config)

// Capacity sets how many accepted items may wait for the pipeline
// (default 1024). n <= 0 panics.
func Capacity(n int) Option {
	if n <= 0 {
		panic("sluice: httpingest.Capacity: n <= 0")
	}
	return func(c *config) { c.capacity = n }
}

// MaxBodyBytes sets the largest request body accepted (default 1 MiB);
// larger ones get 413. n <= 0 panics.
func MaxBodyBytes(n int64) Option {
	if n <= 0 {
		panic("sluice: httpingest.MaxBodyBytes: n <= 0")
	}
	return func(c *config) { c.maxBody = n }
}

// WithMode sets when an accepted request is answered: [Async] (default)
// or [Sync], which waits up to ackTimeout for the pipeline's Ack.
// ackTimeout <= 0 with Sync panics.
func WithMode(m Mode, ackTimeout time.Duration) Option {
	if m == Sync && ackTimeout <= 0 {
		panic("sluice: httpingest.WithMode: Sync needs a positive ackTimeout")
	}
	return func(c *config) { c.mode, c.ackTimeout = m, ackTimeout }
}

// Name names the source stage for errors and the monitor package.
func Name(name string) Option {
	if name == "" {
		panic("sluice: httpingest.Name: empty name")
	}
	return func(c *config) { c.name = name }
}

// MaxRetryAfter caps the Retry-After the handler advertises (default 60
// seconds). d < time.Second panics.
func MaxRetryAfter(d time.Duration) Option {
	if d < time.Second {
		panic("sluice: httpingest.MaxRetryAfter: d < 1s")
	}
	return func(c *config) { c.maxRetry = d }
}

// Stats counts what a Handler did with the requests it got.
type Stats struct {
	Accepted  int64 // buffered for the pipeline
	Rejected  int64 // 429: buffer full
	Refused   int64 // 503: shutting down
	Malformed int64 // 400 and 413
	Acked     int64 // Ack called
	Nacked    int64 // Nack called
	TimedOut  int64 // Sync mode: no acknowledgement in time (504)
}

// Handler is the http.Handler of an ingress; see the package doc. It is
// goroutine-safe: net/http calls ServeHTTP concurrently.
type Handler[T any] struct {
	cfg    config
	decode func(*http.Request) (T, error)
	em     *sources.Emitter[*Item[T]]

	closing  atomic.Bool
	inflight sync.WaitGroup
	mu       sync.Mutex // serialises Shutdown with ServeHTTP's Add

	accepted, rejected, refused, malformed atomic.Int64
	acks, nacks, timeouts                  atomic.Int64

	rate drainRate
}

// New returns a Handler that decodes each request with decode. decode
// reads the request (its body is already limited to MaxBodyBytes) and
// returns the item or an error, which becomes a 400 answer with the
// error's text. A nil decode panics.
func New[T any](decode func(r *http.Request) (T, error), opts ...Option) *Handler[T] {
	if decode == nil {
		panic("sluice: httpingest.New: nil decode")
	}
	cfg := config{capacity: 1024, maxBody: 1 << 20, name: "httpingest", maxRetry: time.Minute}
	for _, o := range opts {
		if o == nil {
			panic("sluice: httpingest.New: nil Option")
		}
		o(&cfg)
	}
	h := &Handler[T]{cfg: cfg, decode: decode}
	h.em = sources.NewEmitter[*Item[T]](cfg.capacity, flow.Block, sources.Name(cfg.name))
	h.rate.start = time.Now()
	return h
}

// Publisher returns the stream of accepted items, for one subscriber.
// Demand flows to the buffer: the subscriber takes items as it requests
// them, and when it falls behind the buffer fills and callers get 429.
func (h *Handler[T]) Publisher() flow.Publisher[*Item[T]] { return h.em.Publisher() }

// Stats returns the handler's counts.
func (h *Handler[T]) Stats() Stats {
	return Stats{
		Accepted: h.accepted.Load(), Rejected: h.rejected.Load(), Refused: h.refused.Load(),
		Malformed: h.malformed.Load(), Acked: h.acks.Load(), Nacked: h.nacks.Load(), TimedOut: h.timeouts.Load(),
	}
}

func (h *Handler[T]) acked(err error) {
	if err == nil {
		h.acks.Add(1)
	} else {
		h.nacks.Add(1)
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if h.closing.Load() {
		h.mu.Unlock()
		h.refused.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(h.retryAfter()))
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	h.inflight.Add(1)
	h.mu.Unlock()
	defer h.inflight.Done()

	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.maxBody)
	v, err := h.decode(r)
	if err != nil {
		h.malformed.Add(1)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("body larger than %d bytes", tooBig.Limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "malformed request: "+err.Error(), http.StatusBadRequest)
		return
	}
	it := &Item[T]{Value: v, Received: time.Now(), h: h}
	if h.cfg.mode == Sync {
		it.done = make(chan error, 1)
	}
	switch h.em.TryEmit(it) {
	case sources.Accepted:
		h.accepted.Add(1)
	case sources.Full:
		h.rejected.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(h.retryAfter()))
		http.Error(w, "too many requests: the pipeline is behind", http.StatusTooManyRequests)
		return
	default: // Closed: the pipeline ended
		h.refused.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(h.retryAfter()))
		http.Error(w, "pipeline closed", http.StatusServiceUnavailable)
		return
	}
	if h.cfg.mode == Async {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	t := time.NewTimer(h.cfg.ackTimeout)
	defer t.Stop()
	select {
	case err := <-it.done:
		if err != nil {
			http.Error(w, "not committed: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	case <-t.C:
		h.timeouts.Add(1)
		http.Error(w, "accepted, not yet committed", http.StatusGatewayTimeout)
	case <-r.Context().Done():
	}
}

// retryAfter estimates, in whole seconds, when the buffer will have room:
// the items waiting divided by the rate the pipeline has drained them at,
// at least 1 and at most MaxRetryAfter.
func (h *Handler[T]) retryAfter() int {
	st := h.em.Stats()
	perSec, known := h.rate.observe(st.Delivered, time.Now())
	maxS := int(h.cfg.maxRetry / time.Second)
	switch {
	case !known:
		return 1 // no measurement yet
	case perSec <= 0:
		return maxS // the pipeline has stopped draining
	}
	s := int(math.Ceil(float64(st.Buffered) / perSec))
	return min(max(s, 1), maxS)
}

// drainRate is an exponentially weighted estimate of delivered items per
// second, updated when a caller needs it (on a 429 or 503).
type drainRate struct {
	mu        sync.Mutex
	start     time.Time
	last      time.Time
	delivered int64
	perSec    float64
	known     bool
}

// observe folds the deliveries since the last call into the estimate, if
// at least 100 ms have passed, and returns it; known is false until then.
func (d *drainRate) observe(delivered int64, now time.Time) (perSec float64, known bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last.IsZero() {
		d.last = d.start
	}
	if dt := now.Sub(d.last).Seconds(); dt >= 0.1 {
		cur := float64(delivered-d.delivered) / dt
		if !d.known {
			d.perSec, d.known = cur, true
		} else {
			d.perSec = 0.7*d.perSec + 0.3*cur
		}
		d.last, d.delivered = now, delivered
	}
	return d.perSec, d.known
}

// Shutdown stops accepting (new requests get 503), waits for the requests
// in flight to be answered (in Sync mode, that is until their items are
// acknowledged or time out), completes the stream so the pipeline drains
// what was accepted, and waits until the subscription is over. It returns
// ErrShutdown, wrapped with ctx's error, if ctx ends first. Call it before
// http.Server.Shutdown returns, or after: the order does not matter.
func (h *Handler[T]) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing.Store(true)
	h.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		h.inflight.Wait()
		close(idle)
	}()
	select {
	case <-idle:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrShutdown, ctx.Err())
	}
	h.em.Complete()
	select {
	case <-h.em.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrShutdown, ctx.Err())
	}
}

// JSON returns a decode function for New that reads the body as one JSON
// value of type T, rejecting unknown fields and trailing data.
func JSON[T any]() func(*http.Request) (T, error) {
	return func(r *http.Request) (T, error) {
		var v T
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			return v, err
		}
		if _, err := dec.Token(); err != io.EOF {
			return v, errors.New("trailing data after the JSON value")
		}
		return v, nil
	}
}
