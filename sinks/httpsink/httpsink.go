// Package httpsink posts the items of a pipeline to an HTTP endpoint,
// as a client that backs off when the server says so.
package httpsink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/backoff"
)

// StatusError is a response that was not a success, after retries.
type StatusError struct {
	Code int
	Body string // the start of the response body
}

// Error returns the status and the start of the body.
func (e *StatusError) Error() string {
	return fmt.Sprintf("sluice: httpsink: %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

type config struct {
	client      *http.Client
	concurrency int
	timeout     time.Duration
	attempts    int
	base, cap   time.Duration
	key         any // func(T) string
	contentType string
	method      string
	deadLetter  any // func(T, error)
	rand        func() float64
}

// Option configures Post.
type Option func(*config)

// Client sets the http.Client (default http.DefaultClient).
func Client(c *http.Client) Option {
	if c == nil {
		panic("sluice: httpsink.Client: nil client")
	}
	return func(cfg *config) { cfg.client = c }
}

// Concurrency bounds the requests in flight (default 4): Post requests
// that many items from upstream and one more as each call completes.
// n <= 0 panics.
func Concurrency(n int) Option {
	if n <= 0 {
		panic("sluice: httpsink.Concurrency: n <= 0")
	}
	return func(c *config) { c.concurrency = n }
}

// Timeout bounds each call, retries apart (default 10 s). d <= 0 panics.
func Timeout(d time.Duration) Option {
	if d <= 0 {
		panic("sluice: httpsink.Timeout: d <= 0")
	}
	return func(c *config) { c.timeout = d }
}

// Retry sets the attempts per item (default 5) and the exponential
// backoff with full jitter between them: a delay drawn uniformly from
// [0, min(max, base·2^(attempt-1))], raised to the server's Retry-After
// when it sent one. attempts < 1 or base <= 0 or max < base panics.
func Retry(attempts int, base, max time.Duration) Option {
	if attempts < 1 || base <= 0 || max < base {
		panic("sluice: httpsink.Retry: invalid arguments")
	}
	return func(c *config) { c.attempts, c.base, c.cap = attempts, base, max }
}

// IdempotencyKey sends key(item) in an Idempotency-Key header with each
// call. Only then are failures that may have reached the server (network
// errors, timeouts, 5xx other than 503) retried; 429 and 503 answers, by
// which the server says it did not process the call, are always retried.
func IdempotencyKey[T any](key func(T) string) Option {
	if key == nil {
		panic("sluice: httpsink.IdempotencyKey: nil func")
	}
	return func(c *config) { c.key = key }
}

// ContentType sets the Content-Type header (default application/json).
func ContentType(s string) Option { return func(c *config) { c.contentType = s } }

// Method sets the HTTP method (default POST).
func Method(m string) Option { return func(c *config) { c.method = m } }

// DeadLetter sets where an item goes when its retries are exhausted or
// its failure is not retryable: to f, and the sink goes on. Without it,
// such a failure ends the stream with the error.
func DeadLetter[T any](f func(item T, err error)) Option {
	if f == nil {
		panic("sluice: httpsink.DeadLetter: nil func")
	}
	return func(c *config) { c.deadLetter = f }
}

// Jitter replaces the random source of the backoff jitter (a value in
// [0, 1)), for tests.
func Jitter(f func() float64) Option { return func(c *config) { c.rand = f } }

// Post sends every item of pub, encoded by encode, to url, and returns how
// many calls succeeded (2xx) once pub completes, or with the error that
// ended the stream.
//
// Demand: it requests Concurrency items at subscription and one more each
// time a call completes (succeeded, dead-lettered), so a slow server slows
// the pipeline and no more than Concurrency requests are in flight. Each
// item is posted by one of Concurrency goroutines that Post owns and ends
// before it returns. When ctx is done, calls in flight are cancelled,
// upstream is cancelled and Post returns context.Cause(ctx).
//
// A panic in encode or a hook ends the stream with a *flow.PanicError.
func Post[T any](ctx context.Context, pub flow.Publisher[T], url string, encode func(T) ([]byte, error), opts ...Option) (int64, error) {
	if ctx == nil || pub == nil || encode == nil {
		panic("sluice: httpsink.Post: nil argument")
	}
	cfg := config{client: http.DefaultClient, concurrency: 4, timeout: 10 * time.Second, attempts: 5,
		base: 100 * time.Millisecond, cap: 10 * time.Second, contentType: "application/json", method: http.MethodPost, rand: rand.Float64}
	for _, o := range opts {
		if o == nil {
			panic("sluice: httpsink.Post: nil Option")
		}
		o(&cfg)
	}
	p := &poster[T]{cfg: cfg, url: url, encode: encode, items: make(chan T, cfg.concurrency)}
	if cfg.key != nil {
		k, ok := cfg.key.(func(T) string)
		if !ok {
			panic(fmt.Sprintf("sluice: httpsink.IdempotencyKey: %T is not func(item) string for this stream", cfg.key))
		}
		p.key = k
	}
	if cfg.deadLetter != nil {
		d, ok := cfg.deadLetter.(func(T, error))
		if !ok {
			panic(fmt.Sprintf("sluice: httpsink.DeadLetter: %T is not func(item, error) for this stream", cfg.deadLetter))
		}
		p.dead = d
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	p.ctx, p.cancel = ctx, cancel
	var wg sync.WaitGroup
	for range cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work()
		}()
	}
	stop := context.AfterFunc(ctx, p.cancelUp)
	pub.Subscribe(p)
	wg.Wait()
	stop()
	p.cancelUp()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil && ctx.Err() != nil {
		return p.ok, context.Cause(ctx)
	}
	return p.ok, p.err
}

type poster[T any] struct {
	cfg    config
	url    string
	encode func(T) ([]byte, error)
	key    func(T) string
	dead   func(T, error)
	ctx    context.Context
	cancel context.CancelCauseFunc

	items chan T // buffered Concurrency: never full, demand is bounded by it

	mu     sync.Mutex
	sub    flow.Subscription
	closed bool
	ok     int64
	err    error
}

// Context returns Post's context, so that monitored stages upstream
// register (see package monitor).
func (p *poster[T]) Context() context.Context { return p.ctx }

func (p *poster[T]) OnSubscribe(s flow.Subscription) {
	if s == nil {
		panic("sluice: OnSubscribe called with a nil Subscription (rule 2.13)")
	}
	p.mu.Lock()
	if p.sub != nil || p.ctx.Err() != nil {
		p.mu.Unlock()
		s.Cancel()
		return
	}
	p.sub = s
	p.mu.Unlock()
	s.Request(int64(p.cfg.concurrency))
}

func (p *poster[T]) OnNext(v T) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return // ended: the item is ignored, upstream is being cancelled
	}
	select {
	case p.items <- v:
		p.mu.Unlock()
	default: // more than requested: a protocol violation upstream
		p.mu.Unlock()
		p.fail(fmt.Errorf("sluice: httpsink: upstream sent more than requested: %w", flow.ErrOverflow))
	}
}

func (p *poster[T]) OnError(err error) {
	if err == nil {
		panic("sluice: OnError called with a nil error (rule 2.13)")
	}
	p.fail(err)
}

func (p *poster[T]) OnComplete() { p.close() }

// close ends the item channel once: the workers finish what is queued.
func (p *poster[T]) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.items)
	}
}

// fail records the first error and stops everything.
func (p *poster[T]) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.cancel(err)
	p.close()
}

func (p *poster[T]) cancelUp() {
	p.mu.Lock()
	s := p.sub
	p.sub = nil
	p.mu.Unlock()
	if s != nil {
		s.Cancel()
	}
	p.close()
}

func (p *poster[T]) request() {
	p.mu.Lock()
	s := p.sub
	p.mu.Unlock()
	if s != nil {
		s.Request(1)
	}
}

func (p *poster[T]) work() {
	for v := range p.items {
		if p.ctx.Err() != nil {
			continue // drain what was queued; nothing more is sent
		}
		err := flow.Catch(func() {
			if err := p.send(v); err != nil {
				if p.dead == nil {
					p.fail(err)
					return
				}
				p.dead(v, err)
			} else {
				p.mu.Lock()
				p.ok++
				p.mu.Unlock()
			}
		})
		if err != nil {
			p.fail(err)
			continue
		}
		p.request()
	}
}

// send posts v, retrying as configured.
func (p *poster[T]) send(v T) error {
	body, err := p.encode(v)
	if err != nil {
		return fmt.Errorf("sluice: httpsink: encode: %w", err)
	}
	var key string
	if p.key != nil {
		key = p.key(v)
	}
	for attempt := 1; ; attempt++ {
		retryAfter, retryable, err := p.call(body, key)
		if err == nil {
			return nil
		}
		if !retryable || attempt >= p.cfg.attempts {
			return err
		}
		d := p.backoff(attempt)
		d = max(d, retryAfter)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return context.Cause(p.ctx)
		}
	}
}

// backoff is full jitter: uniform in [0, min(cap, base·2^(attempt-1))].
func (p *poster[T]) backoff(attempt int) time.Duration {
	return backoff.Delay(attempt, p.cfg.base, p.cfg.cap, 2, backoff.Full, p.cfg.rand())
}

// call makes one attempt. It returns the server's Retry-After, whether
// the failure may be retried, and the failure.
func (p *poster[T]) call(body []byte, key string) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, p.cfg.method, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Content-Type", p.cfg.contentType)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := p.cfg.client.Do(req)
	if err != nil {
		if p.ctx.Err() != nil {
			return 0, false, context.Cause(p.ctx)
		}
		return 0, key != "", err // it may have reached the server
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 == 2 {
		return 0, false, nil
	}
	serr := &StatusError{Code: resp.StatusCode, Body: string(bytes.TrimSpace(head))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return retryAfter(resp.Header.Get("Retry-After")), true, serr
	case resp.StatusCode >= 500:
		return 0, key != "", serr
	}
	return 0, false, serr
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
