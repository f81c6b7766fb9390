package httpsink_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/sinks/httpsink"
	"github.com/sluicego/sluice/sources"
)

// Post each event to a service that is busy for the first call: the sink
// waits for the Retry-After it is given, then carries on.
func ExamplePost() {
	var calls atomic.Int64
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer svc.Close()

	start := time.Now()
	n, err := httpsink.Post(context.Background(), sources.Range(1, 3), svc.URL+"/events",
		func(v int) ([]byte, error) { return []byte(strconv.Itoa(v)), nil },
		httpsink.Concurrency(1), httpsink.IdempotencyKey(func(v int) string { return "event-" + strconv.Itoa(v) }))
	fmt.Println(n, err, calls.Load(), time.Since(start) >= time.Second)
	// Output:
	// 3 <nil> 4 true
}
