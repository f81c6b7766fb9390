package jetstream_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicego/sluice/internal/natstest"
	"github.com/sluicego/sluice/sinks"
	jss "github.com/sluicego/sluice/sources/jetstream"
)

// TestStressRandomDemandAndCancel: waves of concurrent workers with random
// prefetch, MaxPull and cancel points, all acking what they process; a
// last wave runs until empty. Every message is acked, and a message is
// processed twice only as a redelivery.
func TestStressRandomDemandAndCancel(t *testing.T) {
	const n = 3000
	e := natstest.Start(t)
	stream := newStream(t, e, n)
	cfg := jetstream.ConsumerConfig{Durable: "stress", AckWait: time.Second}
	rng := rand.New(rand.NewPCG(1, 2))
	type rec struct{ v, delivered int }
	var (
		mu  sync.Mutex
		got []rec
	)
	ctx, cancelAll := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelAll()
	wave := func(workers int, last bool) {
		var wg sync.WaitGroup
		for range workers {
			prefetch := []int{1, 7, 64, 300}[rng.IntN(4)]
			maxPull := []int{1, 16, 256}[rng.IntN(3)]
			stopAt := 1 + rng.IntN(400)
			opts := []jss.Option{jss.MaxPull(maxPull), jss.PullWait(100 * time.Millisecond)}
			if last {
				opts = append(opts, jss.UntilEmpty())
			}
			src := jss.New(e.JS, stream, cfg, atoi, opts...)
			wctx, cancel := context.WithCancel(ctx)
			wg.Go(func() {
				defer cancel()
				defer src.Wait()
				count := 0
				err := sinks.ForEach(wctx, src, func(m jss.Msg[int]) error {
					mu.Lock()
					got = append(got, rec{m.Value, int(m.NumDelivered())})
					mu.Unlock()
					count++
					if !last && count == stopAt {
						cancel() // a random cancel point, after the ack below
					}
					return m.Ack()
				}, sinks.Prefetch(prefetch))
				if last && err != nil {
					t.Errorf("last wave: %v", err)
				}
			})
		}
		wg.Wait()
	}
	for range 3 {
		wave(3, false)
	}
	wave(3, true)

	var values []int
	redelivered := map[int]bool{}
	for _, r := range got {
		values = append(values, r.v)
		if r.delivered > 1 {
			redelivered[r.v] = true
		}
	}
	slices.Sort(values)
	count := map[int]int{}
	for _, v := range values {
		count[v]++
		if count[v] > 1 && !redelivered[v] {
			t.Errorf("message %d processed twice without a redelivery", v)
		}
	}
	if diff := cmp.Diff(ints(0, n), slices.Compact(values)); diff != "" {
		t.Fatalf("processed set (-want +got):\n%.2000s", diff)
	}
	if info := consumerInfo(t, e.JS, stream, "stress"); info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("consumer after the run: NumAckPending %d NumPending %d, want 0 and 0", info.NumAckPending, info.NumPending)
	}
}
