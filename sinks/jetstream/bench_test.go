package jetstream_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sluicego/sluice/internal/natstest"
	jsk "github.com/sluicego/sluice/sinks/jetstream"
	"github.com/sluicego/sluice/sources"
)

// BenchmarkPublish measures Publish of b.N small messages to a memory
// stream (loopback, embedded server), by MaxPending.
func BenchmarkPublish(b *testing.B) {
	for _, pending := range []int{64, 256, 1024} {
		b.Run("maxPending="+strconv.Itoa(pending), func(b *testing.B) {
			e := natstest.Start(b)
			newStreamB(b, e, "BENCH")
			b.ResetTimer()
			start := time.Now()
			n, err := jsk.Publish(context.Background(), e.JS, sources.Range(0, b.N), encodeTo("BENCH.x"), jsk.MaxPending(pending))
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "ns/msg")
			if err != nil || n != int64(b.N) {
				b.Fatalf("Publish = %d, %v", n, err)
			}
		})
	}
}
