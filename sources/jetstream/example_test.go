package jetstream_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicego/sluice/internal/natstest"
	"github.com/sluicego/sluice/sinks"
	jss "github.com/sluicego/sluice/sources/jetstream"
)

// A worker that consumes a work queue through a durable pull consumer and
// acknowledges each message after its commit. Run several of these, in
// one process or many, and they share the messages.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	srv, _ := natstest.StartServer(dir)
	defer natstest.Stop(srv)
	nc, _ := nats.Connect(srv.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	for _, o := range []string{"apple", "pear", "plum"} {
		js.Publish(ctx, "orders.new", []byte(o))
	}

	src := jss.New(js, "ORDERS", jetstream.ConsumerConfig{Durable: "billing", AckWait: 30 * time.Second},
		jss.String, jss.UntilEmpty(), jss.PullWait(100*time.Millisecond))
	err := sinks.ForEach(ctx, src, func(m jss.Msg[string]) error {
		fmt.Println("billed", m.Value) // commit first…
		return m.Ack()                 // …then acknowledge
	})
	src.Wait()
	fmt.Println(err, src.Stats().Acked)
	// Output:
	// billed apple
	// billed pear
	// billed plum
	// <nil> 3
}
