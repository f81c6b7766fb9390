// Command stall shows sluice's stall detector at work.
//
// The pipeline reads numbers, parses them, queues them in a bounded
// buffer, and hands them to a hand-written stage, "enrich", that requests
// one batch from the buffer and then forgets to request more: the classic
// reactive bug. Without the detector the program would hang silently.
// With it, the monitor names the stage whose subscriber stopped asking
// (the buffer feeding "enrich"), prints the snapshot table, and ends the
// pipeline with monitor.ErrStalled.
//
//	go run ./examples/stall
//	go run ./examples/stall -threshold 500ms
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/monitor"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

func main() {
	threshold := flag.Duration("threshold", 2*time.Second, "how long a stage may hold items with no demand before it is reported")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *threshold); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run builds the pipeline, runs it under a registry that fails on stall,
// and prints what the detector found. It returns nil when the detector
// did its job.
func run(ctx context.Context, out io.Writer, threshold time.Duration) error {
	reg := monitor.New("stall-demo",
		monitor.StallThreshold(threshold),
		monitor.Logger(slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{} // keep the output stable
				}
				return a
			},
		}))),
		monitor.FailOnStall(),
	)
	defer reg.Close()

	lines := operators.Map(sources.Range(1, 10_000, sources.Name("read")), strconv.Itoa, operators.Name("format"))
	parsed := operators.MapErr(lines, strconv.Atoi, operators.Name("parse"))
	queued := operators.Buffer(parsed, 64, flow.Block, operators.Name("queue"))
	enriched := forgetful(queued, 16)

	n := 0
	err := sinks.ForEach(reg.Context(ctx), enriched, func(int) error { n++; return nil }, sinks.Name("write"))
	fmt.Fprintf(out, "\nthe sink received %d items, then: %v\n\n", n, err)
	if err := reg.Snapshot().WriteTable(out); err != nil {
		return err
	}
	if !errors.Is(err, monitor.ErrStalled) {
		return fmt.Errorf("expected the detector to end the pipeline, got %v", err)
	}
	return nil
}

// forgetful is the buggy stage: it passes items through, but requests
// first items from upstream once, whatever its downstream asks for. It
// forwards its downstream's context (the Context method), which is how the
// stages above it find the monitor.
func forgetful(src flow.Publisher[int], first int64) flow.Publisher[int] {
	return flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		src.Subscribe(&enrich{down: s, first: first})
	})
}

type enrich struct {
	down  flow.Subscriber[int]
	first int64
	up    flow.Subscription
}

func (e *enrich) Context() context.Context {
	if c, ok := e.down.(interface{ Context() context.Context }); ok {
		return c.Context()
	}
	return context.Background()
}

func (e *enrich) OnSubscribe(s flow.Subscription) {
	e.up = s
	e.down.OnSubscribe(e)
	s.Request(e.first) // the only request it will ever make
}

func (e *enrich) OnNext(v int)      { e.down.OnNext(v * 10) }
func (e *enrich) OnError(err error) { e.down.OnError(err) }
func (e *enrich) OnComplete()       { e.down.OnComplete() }
func (e *enrich) Request(int64)     {} // the bug: downstream demand is ignored
func (e *enrich) Cancel()           { e.up.Cancel() }
