package httpingest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources/httpingest"
)

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// The ingress under load above its capacity, on loopback: a slow sink
// drains 1 item per millisecond while 16 clients post as fast as they
// can, 4000 requests in all. Every request gets 202, 429 or 503; every
// accepted item reaches the sink; every 429 says when to come back; and
// the heap does not grow with the load, because the buffer is bounded.
func TestIngressUnderLoadOnLoopback(t *testing.T) {
	h := httpingest.New(httpingest.JSON[order](), httpingest.Capacity(64))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var delivered atomic.Int64
	sinkDone := make(chan error, 1)
	go func() {
		sinkDone <- sinks.ForEach(context.Background(), h.Publisher(), func(it *httpingest.Item[order]) error {
			time.Sleep(time.Millisecond) // the slow database
			delivered.Add(1)
			it.Ack()
			return nil
		}, sinks.Prefetch(8))
	}()

	runtime.GC()
	before := heapBytes()
	const clients, perClient = 16, 250
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 10 * time.Second}
	var mu sync.Mutex
	codes := map[int]int{}
	missingRetryAfter := 0
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				body := fmt.Sprintf(`{"id":%d,"sku":"s"}`, c*perClient+i)
				resp, err := client.Post("http://"+ln.Addr().String()+"/", "application/json", bytes.NewBufferString(body))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				if resp.StatusCode == http.StatusTooManyRequests {
					if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
						missingRetryAfter++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	runtime.GC()
	after := heapBytes()

	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-sinkDone; err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-served
	client.CloseIdleConnections()

	total := 0
	for code, n := range codes {
		total += n
		if code != http.StatusAccepted && code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable {
			t.Errorf("%d answers with status %d", n, code)
		}
	}
	st := h.Stats()
	switch {
	case total != clients*perClient:
		t.Errorf("%d answers for %d requests", total, clients*perClient)
	case int64(codes[http.StatusAccepted]) != st.Accepted || st.Accepted != delivered.Load() || st.Acked != st.Accepted:
		t.Errorf("accepted %d (stats %d), delivered %d, acked %d: something was lost", codes[http.StatusAccepted], st.Accepted, delivered.Load(), st.Acked)
	case codes[http.StatusTooManyRequests] == 0:
		t.Errorf("no 429 under a load above capacity: %v", codes)
	case missingRetryAfter != 0:
		t.Errorf("%d answers 429 without a valid Retry-After", missingRetryAfter)
	}
	// The buffer holds 64 small items; allow generous room for the HTTP
	// machinery, but not for 4000 requests' worth of queued bodies.
	if grew := int64(after) - int64(before); grew > 8<<20 {
		t.Errorf("heap grew by %d bytes under load", grew)
	}
	t.Logf("answers %v, accepted %d, delivered %d", codes, st.Accepted, delivered.Load())
}
