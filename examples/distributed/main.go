// Command distributed shows a sluice pipeline scaled out behind NATS
// JetStream: a producer publishes jobs to a stream with bounded pending
// acks, and workers bound to one durable pull consumer share them, each
// acknowledging a job only after committing it.
//
//	go run ./examples/distributed                   # embedded server, 10,000 jobs, 3 workers
//	go run ./examples/distributed -n 100000 -workers 5 -work 50us
//
// Several terminals (several processes) against one server:
//
//	nats-server -js                                  # or: go run ./examples/distributed -mode worker -forever
//	go run ./examples/distributed -nats-url nats://127.0.0.1:4222 -mode worker -workers 2 -forever
//	go run ./examples/distributed -nats-url nats://127.0.0.1:4222 -mode worker -workers 2 -forever
//	go run ./examples/distributed -nats-url nats://127.0.0.1:4222 -mode producer -n 50000
//
// Each worker prints what it processed when it ends (Ctrl-C, or once the
// consumer is empty without -forever), followed by the monitor snapshot
// of every stage in the process. See docs/distributed.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicego/sluice/internal/natstest"
	"github.com/sluicego/sluice/monitor"
	"github.com/sluicego/sluice/sinks"
	jsk "github.com/sluicego/sluice/sinks/jetstream"
	"github.com/sluicego/sluice/sources"
	jss "github.com/sluicego/sluice/sources/jetstream"
)

// options are the command-line flags.
type options struct {
	url      string        // "" starts an embedded server
	mode     string        // all, producer or worker
	workers  int           // workers in this process
	n        int           // jobs to produce
	stream   string        // stream name; its subject is <stream>.jobs
	durable  string        // the shared durable consumer
	work     time.Duration // simulated work per job
	forever  bool          // workers wait for new jobs instead of ending when the consumer is empty
	maxAck   int           // consumer MaxAckPending
	pullWait time.Duration // worker pull wait
}

func main() {
	var o options
	flag.StringVar(&o.url, "nats-url", "", "NATS server URL; empty starts an embedded server with JetStream")
	flag.StringVar(&o.mode, "mode", "all", "all (produce, then work), producer or worker")
	flag.IntVar(&o.workers, "workers", 3, "workers in this process")
	flag.IntVar(&o.n, "n", 10_000, "jobs to produce")
	flag.StringVar(&o.stream, "stream", "JOBS", "stream name")
	flag.StringVar(&o.durable, "durable", "workers", "durable consumer shared by every worker")
	flag.DurationVar(&o.work, "work", 0, "simulated work per job")
	flag.BoolVar(&o.forever, "forever", false, "workers keep waiting for jobs until interrupted")
	flag.IntVar(&o.maxAck, "max-ack-pending", 1000, "consumer MaxAckPending: jobs in flight across all workers")
	flag.DurationVar(&o.pullWait, "pull-wait", time.Second, "how long one pull waits at the server")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "distributed:", err)
		os.Exit(1)
	}
}

// result is what one run did, for the test.
type result struct {
	Produced  int64
	PerWorker []int
	Distinct  int
}

// run executes one invocation: it starts the embedded server if needed,
// creates the stream, produces and/or works, and writes its report to out.
func run(ctx context.Context, out io.Writer, o options) (result, error) {
	var res result
	switch o.mode {
	case "all", "producer", "worker":
	default:
		return res, fmt.Errorf("unknown -mode %q", o.mode)
	}
	url := o.url
	if url == "" {
		dir, err := os.MkdirTemp("", "sluice-distributed-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(dir)
		srv, err := natstest.StartServer(dir)
		if err != nil {
			return res, err
		}
		defer natstest.Stop(srv)
		url = srv.ClientURL()
		fmt.Fprintf(out, "embedded NATS server with JetStream at %s\n", url)
	}

	nc, js, err := connect(url)
	if err != nil {
		return res, err
	}
	defer nc.Close()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     o.stream,
		Subjects: []string{o.stream + ".>"},
	}); err != nil {
		return res, fmt.Errorf("creating stream %s: %w", o.stream, err)
	}

	reg := monitor.New("distributed")
	defer reg.Close()
	if o.mode != "worker" {
		start := time.Now()
		res.Produced, err = produce(reg.Context(ctx), js, o)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(out, "produced %d jobs to %s in %v\n", res.Produced, o.stream, time.Since(start).Round(time.Millisecond))
	}
	if o.mode != "producer" {
		if err := work(ctx, out, reg, url, o, &res); err != nil {
			return res, err
		}
	}
	fmt.Fprintln(out)
	return res, reg.Snapshot().WriteTable(out)
}

func connect(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("sluice-distributed"))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// produce publishes o.n jobs, job i carrying the number i, with at most
// 256 publish acks pending.
func produce(ctx context.Context, js jetstream.JetStream, o options) (int64, error) {
	subject := o.stream + ".jobs"
	return jsk.Publish(ctx, js, sources.Range(0, o.n), func(i int) (*nats.Msg, error) {
		return &nats.Msg{Subject: subject, Data: strconv.AppendInt(nil, int64(i), 10)}, nil
	}, jsk.Name("publish"))
}

// work runs o.workers workers, each with its own connection as a separate
// process would have, until the consumer is empty (or ctx ends with
// -forever), and reports what each did.
func work(ctx context.Context, out io.Writer, reg *monitor.Registry, url string, o options, res *result) error {
	cfg := jetstream.ConsumerConfig{
		Durable:       o.durable,
		AckWait:       30 * time.Second,
		MaxAckPending: o.maxAck,
	}
	type report struct {
		jobs, redelivered int
		seen              []int
		err               error
	}
	reports := make([]report, o.workers)
	var wg sync.WaitGroup
	for w := range o.workers {
		nc, js, err := connect(url)
		if err != nil {
			return err
		}
		defer nc.Close()
		opts := []jss.Option{jss.Name(fmt.Sprintf("pull-w%d", w+1)), jss.PullWait(o.pullWait)}
		if !o.forever {
			opts = append(opts, jss.UntilEmpty())
		}
		src := jss.New(js, o.stream, cfg, func(m jetstream.Msg) (int, error) {
			return strconv.Atoi(string(m.Data()))
		}, opts...)
		wg.Go(func() {
			defer src.Wait()
			r := &reports[w]
			r.err = sinks.ForEach(reg.Context(ctx), src, func(m jss.Msg[int]) error {
				if o.work > 0 {
					time.Sleep(o.work) // the job
				}
				r.seen = append(r.seen, m.Value) // the commit
				r.jobs++
				if m.NumDelivered() > 1 {
					r.redelivered++
				}
				return m.Ack() // only after the commit
			}, sinks.Name(fmt.Sprintf("commit-w%d", w+1)))
			if o.forever && errors.Is(r.err, context.Canceled) {
				r.err = nil // Ctrl-C is how a -forever worker ends
			}
		})
	}
	wg.Wait()
	var all []int
	for w, r := range reports {
		if r.err != nil {
			return fmt.Errorf("worker %d: %w", w+1, r.err)
		}
		fmt.Fprintf(out, "worker %d: %d jobs (%d redelivered)\n", w+1, r.jobs, r.redelivered)
		res.PerWorker = append(res.PerWorker, r.jobs)
		all = append(all, r.seen...)
	}
	slices.Sort(all)
	res.Distinct = len(slices.Compact(all))
	fmt.Fprintf(out, "total: %d jobs processed, %d distinct\n", len(all), res.Distinct)
	return nil
}
