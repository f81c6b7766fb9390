package httpingest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources/httpingest"
)

// An ingress with room for two events: the third call, made before the
// pipeline has asked for anything, is told to come back later.
func Example() {
	h := httpingest.New(httpingest.JSON[order](), httpingest.Capacity(2))
	// http.Handle("/orders", h) in a real server.
	for _, body := range []string{`{"id":1}`, `{"id":2}`, `{"id":3}`, `{"id":`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(body)))
		fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Header().Get("Retry-After"))))
	}
	done := make(chan error)
	go func() {
		done <- sinks.ForEach(context.Background(), h.Publisher(), func(it *httpingest.Item[order]) error {
			fmt.Println("stored order", it.Value.ID)
			it.Ack()
			return nil
		})
	}()
	_ = h.Shutdown(context.Background()) // drains what was accepted
	fmt.Println(<-done)
	// Output:
	// 202
	// 202
	// 429 1
	// 400
	// stored order 1
	// stored order 2
	// <nil>
}
