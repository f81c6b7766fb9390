// Command httpingest shows HTTP ingress with visible backpressure.
//
// A server accepts JSON events into a bounded buffer (sources/httpingest)
// in front of a deliberately slow sink. Two load generators hit it on
// loopback, one after the other, with the same number of clients:
//
//   - "polite" clients back off for the Retry-After the server sends
//     with each 429;
//   - "impatient" clients ignore it and retry at once.
//
// For each, the run prints the answers by status, the latency of
// accepted requests (p50, p99), what the sink received, and the heap: the
// buffer bounds memory whatever the load, and the polite clients get the
// same work done with far fewer rejected calls.
//
//	go run ./examples/httpingest
//	go run ./examples/httpingest -clients 32 -events 4000 -sink-delay 500us
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources/httpingest"
)

type event struct {
	ID   int    `json:"id"`
	Kind string `json:"kind"`
}

type params struct {
	clients   int
	events    int           // per generator
	capacity  int           // the ingress buffer
	sinkDelay time.Duration // per event
	unit      time.Duration // how long a Retry-After second lasts for the polite clients (shortened for demos and tests)
}

func main() {
	var p params
	flag.IntVar(&p.clients, "clients", 16, "concurrent clients per generator")
	flag.IntVar(&p.events, "events", 2000, "events each generator must get accepted")
	flag.IntVar(&p.capacity, "capacity", 64, "ingress buffer capacity")
	flag.DurationVar(&p.sinkDelay, "sink-delay", 500*time.Microsecond, "time the sink takes per event")
	flag.DurationVar(&p.unit, "retry-unit", 10*time.Millisecond, "how long polite clients wait per Retry-After second (1s honours it exactly)")
	flag.Parse()
	if err := run(os.Stdout, p); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// result is what one generator saw.
type result struct {
	name      string
	codes     map[int]int
	latencies []time.Duration // of accepted requests
	delivered int64
	heapMiB   float64
	elapsed   time.Duration
}

func run(out io.Writer, p params) error {
	fmt.Fprintf(out, "ingress buffer %d, sink %v per event, %d clients, %d events per generator\n\n", p.capacity, p.sinkDelay, p.clients, p.events)
	fmt.Fprintf(out, "%-10s %8s %8s %8s %8s %9s %9s %10s %9s\n", "clients", "calls", "202", "429", "503", "p50", "p99", "delivered", "heap MiB")
	for _, polite := range []bool{true, false} {
		r, err := generate(p, polite)
		if err != nil {
			return err
		}
		calls := 0
		for _, n := range r.codes {
			calls += n
		}
		fmt.Fprintf(out, "%-10s %8d %8d %8d %8d %9v %9v %10d %9.1f\n", r.name, calls, r.codes[202], r.codes[429], r.codes[503],
			pct(r.latencies, 50), pct(r.latencies, 99), r.delivered, r.heapMiB)
	}
	fmt.Fprintln(out, "\nEvery accepted event reached the sink; the heap stays flat because the buffer is bounded.")
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[(len(d)-1)*p/100].Round(10 * time.Microsecond)
}

func heapMiB() float64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return float64(s[0].Value.Uint64()) / (1 << 20)
}

// generate starts a server and a slow sink, runs one generator until it
// has p.events accepted, shuts down in order, and reports.
func generate(p params, polite bool) (result, error) {
	r := result{name: "impatient", codes: map[int]int{}}
	if polite {
		r.name = "polite"
	}
	h := httpingest.New(httpingest.JSON[event](), httpingest.Capacity(p.capacity))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)

	var delivered atomic.Int64
	sinkErr := make(chan error, 1)
	go func() {
		sinkErr <- sinks.ForEach(context.Background(), h.Publisher(), func(it *httpingest.Item[event]) error {
			time.Sleep(p.sinkDelay) // a slow database
			delivered.Add(1)
			it.Ack()
			return nil
		}, sinks.Prefetch(8))
	}()

	url := "http://" + ln.Addr().String() + "/events"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: p.clients}, Timeout: 10 * time.Second}
	var next atomic.Int64
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for range p.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				id := int(next.Add(1))
				if id > p.events {
					return
				}
				for { // until this event is accepted
					body := fmt.Appendf(nil, `{"id":%d,"kind":"click"}`, id)
					t0 := time.Now()
					resp, err := client.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					r.codes[resp.StatusCode]++
					if resp.StatusCode == http.StatusAccepted {
						r.latencies = append(r.latencies, time.Since(t0))
					}
					mu.Unlock()
					if resp.StatusCode == http.StatusAccepted {
						break
					}
					if polite {
						s, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
						time.Sleep(time.Duration(max(s, 1)) * p.unit)
					}
				}
			}
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	runtime.GC()
	r.heapMiB = heapMiB()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		return r, err
	}
	if err := <-sinkErr; err != nil {
		return r, err
	}
	if err := srv.Shutdown(ctx); err != nil {
		return r, err
	}
	client.CloseIdleConnections()
	r.delivered = delivered.Load()
	if r.delivered != int64(r.codes[202]) {
		return r, fmt.Errorf("%s: %d accepted but %d delivered", r.name, r.codes[202], r.delivered)
	}
	return r, nil
}
