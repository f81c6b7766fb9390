package httpsink_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/sinks/httpsink"
	"github.com/sluicego/sluice/sources"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is an in-memory http.RoundTripper: answer decides each call's
// status and Retry-After from the item and the attempt number. It
// records the calls, their times and the peak concurrency.
type server struct {
	answer func(item, attempt int) (code int, retryAfter string)
	work   time.Duration

	mu       sync.Mutex
	start    time.Time
	attempts map[int]int
	calls    []call
	inFlight int
	peak     int
}

type call struct {
	Item, Attempt int
	At            time.Duration
	Key           string
	Code          int
}

func (s *server) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	item, _ := strconv.Atoi(string(body))
	s.mu.Lock()
	if s.attempts == nil {
		s.attempts = map[int]int{}
	}
	s.attempts[item]++
	attempt := s.attempts[item]
	s.inFlight++
	s.peak = max(s.peak, s.inFlight)
	s.mu.Unlock()
	if s.work > 0 {
		select {
		case <-time.After(s.work):
		case <-r.Context().Done(): // as a real transport: the call is aborted
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
			return nil, r.Context().Err()
		}
	}
	code, ra := http.StatusOK, ""
	if s.answer != nil {
		code, ra = s.answer(item, attempt)
	}
	s.mu.Lock()
	s.inFlight--
	s.calls = append(s.calls, call{item, attempt, time.Since(s.start), r.Header.Get("Idempotency-Key"), code})
	s.mu.Unlock()
	h := http.Header{}
	if ra != "" {
		h.Set("Retry-After", ra)
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(http.StatusText(code))), Request: r}, nil
}

func encode(v int) ([]byte, error) { return []byte(strconv.Itoa(v)), nil }

func items(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestPostsEveryItemWithBoundedConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{start: time.Now(), work: 10 * time.Millisecond}
		n, err := httpsink.Post(context.Background(), sources.Slice(items(20)), "http://svc/items", encode,
			httpsink.Client(&http.Client{Transport: srv}), httpsink.Concurrency(3))
		if n != 20 || err != nil {
			t.Fatalf("Post = %d, %v", n, err)
		}
		var got []int
		for _, c := range srv.calls {
			got = append(got, c.Item)
		}
		sort.Ints(got)
		if diff := cmp.Diff(items(20), got); diff != "" {
			t.Errorf("items posted (-want +got)\n%s", diff)
		}
		if srv.peak != 3 {
			t.Errorf("peak concurrency %d, want 3", srv.peak)
		}
		// 20 calls of 10 ms, 3 at a time: 7 rounds.
		if last := srv.calls[len(srv.calls)-1].At; last != 70*time.Millisecond {
			t.Errorf("last call done at %v, want 70ms", last)
		}
	})
}

func TestHonours429And503RetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{start: time.Now(), answer: func(item, attempt int) (int, string) {
			switch {
			case item == 0 && attempt == 1:
				return http.StatusTooManyRequests, "2"
			case item == 0 && attempt == 2:
				return http.StatusServiceUnavailable, "1"
			}
			return http.StatusOK, ""
		}}
		n, err := httpsink.Post(context.Background(), sources.Slice([]int{0}), "http://svc/", encode,
			httpsink.Client(&http.Client{Transport: srv}), httpsink.Jitter(func() float64 { return 0.5 }))
		if n != 1 || err != nil {
			t.Fatalf("Post = %d, %v", n, err)
		}
		want := []call{
			{Item: 0, Attempt: 1, At: 0, Code: 429},
			{Item: 0, Attempt: 2, At: 2 * time.Second, Code: 503}, // Retry-After beats the 50 ms backoff
			{Item: 0, Attempt: 3, At: 3 * time.Second, Code: 200},
		}
		if diff := cmp.Diff(want, srv.calls); diff != "" {
			t.Errorf("calls (-want +got)\n%s", diff)
		}
	})
}

func TestOtherFailuresAreRetriedOnlyWithAnIdempotencyKey(t *testing.T) {
	fail500 := func(item, attempt int) (int, string) {
		if item == 1 && attempt <= 2 {
			return http.StatusInternalServerError, ""
		}
		return http.StatusOK, ""
	}
	t.Run("without a key the stream ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &server{start: time.Now(), answer: fail500}
			_, err := httpsink.Post(context.Background(), sources.Slice([]int{1}), "http://svc/", encode,
				httpsink.Client(&http.Client{Transport: srv}))
			var se *httpsink.StatusError
			if !errors.As(err, &se) || se.Code != 500 || len(srv.calls) != 1 {
				t.Errorf("Post = %v after %d calls, want a 500 StatusError after 1", err, len(srv.calls))
			}
		})
	})
	t.Run("with a key it is retried with backoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := &server{start: time.Now(), answer: fail500}
			n, err := httpsink.Post(context.Background(), sources.Slice([]int{1}), "http://svc/", encode,
				httpsink.Client(&http.Client{Transport: srv}), httpsink.Jitter(func() float64 { return 0.5 }),
				httpsink.Retry(5, 100*time.Millisecond, time.Second),
				httpsink.IdempotencyKey(func(v int) string { return "order-" + strconv.Itoa(v) }))
			if n != 1 || err != nil {
				t.Fatalf("Post = %d, %v", n, err)
			}
			want := []call{
				{Item: 1, Attempt: 1, At: 0, Key: "order-1", Code: 500},
				{Item: 1, Attempt: 2, At: 50 * time.Millisecond, Key: "order-1", Code: 500},  // 0.5 × 100 ms
				{Item: 1, Attempt: 3, At: 150 * time.Millisecond, Key: "order-1", Code: 200}, // + 0.5 × 200 ms
			}
			if diff := cmp.Diff(want, srv.calls); diff != "" {
				t.Errorf("calls (-want +got)\n%s", diff)
			}
		})
	})
}

func TestBackoffStaysWithinTheJitterBounds(t *testing.T) {
	for _, r := range []float64{0, 0.999} {
		synctest.Test(t, func(t *testing.T) {
			srv := &server{start: time.Now(), answer: func(int, int) (int, string) { return http.StatusServiceUnavailable, "" }}
			_, err := httpsink.Post(context.Background(), sources.Slice([]int{7}), "http://svc/", encode,
				httpsink.Client(&http.Client{Transport: srv}), httpsink.Jitter(func() float64 { return r }),
				httpsink.Retry(4, 100*time.Millisecond, 250*time.Millisecond))
			if err == nil || len(srv.calls) != 4 {
				t.Fatalf("Post = %v after %d calls, want an error after 4", err, len(srv.calls))
			}
			for i := 1; i < len(srv.calls); i++ {
				gap := srv.calls[i].At - srv.calls[i-1].At
				ceil := min(250*time.Millisecond, 100*time.Millisecond<<(i-1))
				if gap < 0 || gap > ceil {
					t.Errorf("r=%v: delay before attempt %d = %v, want within [0, %v]", r, i+1, gap, ceil)
				}
			}
		})
	}
}

func TestDeadLetterKeepsTheStreamGoing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{start: time.Now(), answer: func(item, _ int) (int, string) {
			if item%2 == 1 {
				return http.StatusBadRequest, ""
			}
			return http.StatusOK, ""
		}}
		var mu sync.Mutex
		var dead []int
		n, err := httpsink.Post(context.Background(), sources.Slice(items(6)), "http://svc/", encode,
			httpsink.Client(&http.Client{Transport: srv}),
			httpsink.DeadLetter(func(v int, err error) {
				mu.Lock()
				dead = append(dead, v)
				mu.Unlock()
			}))
		sort.Ints(dead)
		if n != 3 || err != nil || !cmp.Equal([]int{1, 3, 5}, dead) {
			t.Errorf("Post = %d, %v; dead letters %v", n, err, dead)
		}
	})
}

func TestCancelStopsCallsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &server{start: time.Now(), work: time.Second}
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		n, err := httpsink.Post(ctx, sources.Range(0, 1000), "http://svc/", encode,
			httpsink.Client(&http.Client{Transport: srv}), httpsink.Concurrency(2))
		if !errors.Is(err, context.DeadlineExceeded) || n != 2 {
			t.Errorf("Post = %d, %v; want 2 done and DeadlineExceeded", n, err)
		}
	})
}
