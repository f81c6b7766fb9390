package natstest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sluicego/sluice/internal/natstest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The embedded server runs JetStream on loopback, a second connection
// reaches it, and everything is gone, goroutines included, when the test
// ends (goleak checks after the cleanups).
func TestStartServesJetStreamOnLoopback(t *testing.T) {
	env := natstest.Start(t)
	if !strings.HasPrefix(env.URL, "nats://127.0.0.1:") {
		t.Errorf("server at %q, want loopback", env.URL)
	}
	ctx := context.Background()
	if _, err := env.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	_, js2 := env.Connect(t)
	if _, err := js2.Publish(ctx, "t.x", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	info, err := env.JS.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}
