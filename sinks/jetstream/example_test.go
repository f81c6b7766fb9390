package jetstream_test

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicego/sluice/internal/natstest"
	jsk "github.com/sluicego/sluice/sinks/jetstream"
	"github.com/sluicego/sluice/sources"
)

// Publish a stream of items to JetStream, with at most 128 acks pending.
func ExamplePublish() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	srv, _ := natstest.StartServer(dir)
	defer natstest.Stop(srv)
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	stream, _ := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}})

	n, err := jsk.Publish(ctx, js, sources.Range(0, 1000), func(v int) (*nats.Msg, error) {
		return &nats.Msg{Subject: "events.tick", Data: strconv.AppendInt(nil, int64(v), 10)}, nil
	}, jsk.MaxPending(128))
	info, _ := stream.Info(ctx)
	fmt.Println(n, err, info.State.Msgs)
	// Output: 1000 <nil> 1000
}
