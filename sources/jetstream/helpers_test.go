package jetstream_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicego/sluice/internal/natstest"
)

var streamSeq atomic.Int64

// newStream creates a fresh in-memory stream on e's server with the
// messages "0" … "n-1" on subject <name>.work, and returns its name.
func newStream(t testing.TB, e *natstest.Env, n int) string {
	t.Helper()
	name := "S" + strconv.FormatInt(streamSeq.Add(1), 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.JS.CreateStream(ctx, jetstream.StreamConfig{
		Name:     name,
		Subjects: []string{name + ".>"},
		Storage:  jetstream.MemoryStorage,
	}); err != nil {
		t.Fatal(err)
	}
	fill(t, e, name, 0, n)
	return name
}

// fill publishes "from" … "to-1" to the stream's subject <stream>.work
// with core NATS publishes (fire and forget, the fastest way in), then
// waits until the stream holds them all.
func fill(t testing.TB, e *natstest.Env, stream string, from, to int) {
	t.Helper()
	var buf []byte
	for i := from; i < to; i++ {
		buf = strconv.AppendInt(buf[:0], int64(i), 10)
		if err := e.Conn.Publish(stream+".work", buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Conn.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := e.JS.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs >= uint64(to) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s holds %d messages after 30s, want %d", stream, info.State.Msgs, to)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// atoi is the decode function of the tests.
func atoi(m jetstream.Msg) (int, error) { return strconv.Atoi(string(m.Data())) }

func ints(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func consumerInfo(t testing.TB, js jetstream.JetStream, stream, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}
