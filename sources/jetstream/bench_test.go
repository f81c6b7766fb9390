package jetstream_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicego/sluice/internal/natstest"
	"github.com/sluicego/sluice/sinks"
	jss "github.com/sluicego/sluice/sources/jetstream"
)

// BenchmarkConsume measures one subscription consuming and acking b.N
// messages already in a memory stream (loopback, embedded server), by
// MaxPull.
func BenchmarkConsume(b *testing.B) {
	for _, maxPull := range []int{64, 256, 1024} {
		b.Run("maxPull="+itoa(maxPull), func(b *testing.B) {
			e := natstest.Start(b)
			stream := newStream(b, e, b.N)
			src := jss.New(e.JS, stream, jetstream.ConsumerConfig{Durable: "bench", MaxAckPending: 10_000}, atoi, jss.MaxPull(maxPull))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			n := 0
			b.ResetTimer()
			start := time.Now()
			_ = sinks.ForEach(ctx, src, func(m jss.Msg[int]) error {
				n++
				if n == b.N {
					cancel()
				}
				return m.Ack()
			}, sinks.Prefetch(1024))
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "ns/msg")
			b.StopTimer()
			src.Wait()
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
