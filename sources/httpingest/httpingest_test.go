package httpingest_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources/httpingest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type order struct {
	ID  int    `json:"id"`
	SKU string `json:"sku"`
}

type answer struct {
	Code       int
	RetryAfter string
	Body       string
}

func post(h http.Handler, body string) answer {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body)))
	return answer{rec.Code, rec.Header().Get("Retry-After"), strings.TrimSpace(rec.Body.String())}
}

// taker is a subscriber that requests what it is told and keeps the
// items; it acknowledges them when ack is set.
type taker struct {
	mu   sync.Mutex
	sub  flow.Subscription
	got  []order
	ack  func(*httpingest.Item[order])
	done bool
}

func (t *taker) OnSubscribe(s flow.Subscription) { t.mu.Lock(); t.sub = s; t.mu.Unlock() }
func (t *taker) OnNext(it *httpingest.Item[order]) {
	t.mu.Lock()
	t.got = append(t.got, it.Value)
	t.mu.Unlock()
	if t.ack != nil {
		t.ack(it)
	}
}
func (t *taker) OnError(error) { t.end() }
func (t *taker) OnComplete()   { t.end() }
func (t *taker) end()          { t.mu.Lock(); t.done = true; t.mu.Unlock() }
func (t *taker) request(n int64) {
	t.mu.Lock()
	s := t.sub
	t.mu.Unlock()
	s.Request(n)
}
func (t *taker) items() []order {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]order(nil), t.got...)
}

func TestAsyncAcceptsUntilTheBufferIsFullThen429(t *testing.T) {
	h := httpingest.New(httpingest.JSON[order](), httpingest.Capacity(2))
	sub := &taker{}
	h.Publisher().Subscribe(sub) // no demand yet: the buffer fills
	got := []answer{
		post(h, `{"id":1,"sku":"a"}`),
		post(h, `{"id":2,"sku":"b"}`),
		post(h, `{"id":3,"sku":"c"}`),
	}
	want := []answer{
		{Code: 202}, {Code: 202},
		{Code: 429, RetryAfter: "1", Body: "too many requests: the pipeline is behind"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got)\n%s", diff)
	}
	sub.request(10)
	if diff := cmp.Diff([]order{{1, "a"}, {2, "b"}}, sub.items()); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
	if got := post(h, `{"id":4,"sku":"d"}`); got.Code != 202 {
		t.Errorf("after draining: %+v, want 202", got)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	want2 := httpingest.Stats{Accepted: 3, Rejected: 1}
	if diff := cmp.Diff(want2, h.Stats()); diff != "" {
		t.Errorf("stats (-want +got)\n%s", diff)
	}
}

func TestMalformedAndOversizedBodiesNeverReachThePipeline(t *testing.T) {
	h := httpingest.New(httpingest.JSON[order](), httpingest.MaxBodyBytes(32))
	sub := &taker{}
	h.Publisher().Subscribe(sub)
	sub.request(flow.Unbounded)
	got := []answer{
		post(h, `{"id":1`),
		post(h, `{"id":1,"colour":"red"}`),
		post(h, `{"id":1} {"id":2}`),
		post(h, `{"id":1,"sku":"`+strings.Repeat("x", 64)+`"}`),
	}
	want := []answer{
		{Code: 400, Body: "malformed request: unexpected EOF"},
		{Code: 400, Body: `malformed request: json: unknown field "colour"`},
		{Code: 400, Body: "malformed request: trailing data after the JSON value"},
		{Code: 413, Body: "body larger than 32 bytes"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got)\n%s", diff)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(sub.items()); n != 0 || h.Stats().Malformed != 4 {
		t.Errorf("%d items reached the pipeline, stats %+v", n, h.Stats())
	}
}

func TestSyncWaitsForTheAcknowledgement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := httpingest.New(httpingest.JSON[order](), httpingest.WithMode(httpingest.Sync, 5*time.Second))
		sub := &taker{ack: func(it *httpingest.Item[order]) {
			switch it.Value.ID {
			case 1:
				it.Ack()
			case 2:
				it.Nack(errors.New("duplicate key"))
			} // 3: never acknowledged
		}}
		h.Publisher().Subscribe(sub)
		sub.request(flow.Unbounded)
		var got []answer
		for _, body := range []string{`{"id":1}`, `{"id":2}`, `{"id":3}`} {
			start := time.Now()
			a := post(h, body)
			a.Body += " after " + time.Since(start).String()
			got = append(got, a)
		}
		want := []answer{
			{Code: 200, Body: " after 0s"},
			{Code: 500, Body: "not committed: duplicate key after 0s"},
			{Code: 504, Body: "accepted, not yet committed after 5s"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("answers (-want +got)\n%s", diff)
		}
		if err := h.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		want2 := httpingest.Stats{Accepted: 3, Acked: 1, Nacked: 1, TimedOut: 1}
		if diff := cmp.Diff(want2, h.Stats()); diff != "" {
			t.Errorf("stats (-want +got)\n%s", diff)
		}
	})
}

func TestShutdownRefusesNewRequestsAndDrainsTheAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := httpingest.New(httpingest.JSON[order](), httpingest.Capacity(8))
		sub := &taker{}
		h.Publisher().Subscribe(sub)
		for i := range 3 {
			post(h, `{"id":`+string(rune('1'+i))+`}`)
		}
		done := make(chan error)
		go func() { done <- h.Shutdown(context.Background()) }()
		synctest.Wait()
		if got := post(h, `{"id":9}`); got.Code != 503 || got.RetryAfter == "" {
			t.Errorf("during shutdown: %+v, want 503 with Retry-After", got)
		}
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v before the pipeline drained", err)
		default:
		}
		sub.request(flow.Unbounded) // the pipeline drains what was accepted
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]order{{ID: 1}, {ID: 2}, {ID: 3}}, sub.items()); diff != "" || !sub.done {
			t.Errorf("drained (complete=%v) (-want +got)\n%s", sub.done, diff)
		}
	})
}

func TestShutdownGivesUpWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := httpingest.New(httpingest.JSON[order]())
		sub := &taker{}
		h.Publisher().Subscribe(sub)
		post(h, `{"id":1}`) // accepted, never requested
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); !errors.Is(err, httpingest.ErrShutdown) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v", err)
		}
		sub.request(1) // let the subscription end for goleak
	})
}

// Retry-After is the waiting items over the observed drain rate.
func TestRetryAfterFollowsTheDrainRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := httpingest.New(httpingest.JSON[order](), httpingest.Capacity(40))
		sub := &taker{}
		h.Publisher().Subscribe(sub)
		for range 40 {
			post(h, `{"id":1}`)
		}
		// Drain 10 items a second for two seconds: 20 left, at 10/s.
		for range 2 {
			sub.request(10)
			time.Sleep(time.Second)
		}
		if got := post(h, `{"id":2}`); got.Code != 202 {
			t.Fatalf("room after draining: %+v", got)
		}
		for range 20 {
			post(h, `{"id":3}`) // fill up again: 40 waiting
		}
		got := post(h, `{"id":4}`)
		if got.Code != 429 || got.RetryAfter != "4" {
			t.Errorf("full: %+v, want 429 with Retry-After 4 (40 waiting at 10/s)", got)
		}
		sub.request(flow.Unbounded)
		if err := h.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
