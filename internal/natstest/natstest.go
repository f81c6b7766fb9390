// Package natstest runs an embedded NATS server with JetStream, on
// loopback and in-process, for the tests of the JetStream connectors and
// for the distributed example. Only tests and examples import it, so the
// nats-server dependency stays out of the library's packages.
package natstest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StartServer starts a JetStream-enabled server on 127.0.0.1 and a free
// port, storing its files under storeDir, and waits until it accepts
// connections. The caller must call Stop.
func StartServer(storeDir string) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  storeDir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		return nil, fmt.Errorf("natstest: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		Stop(s)
		return nil, errors.New("natstest: server not ready after 10s")
	}
	return s, nil
}

// Stop shuts s down and waits until every goroutine it started is gone.
func Stop(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// Env is one embedded server and a connection to it.
type Env struct {
	Server *server.Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
	URL    string
}

// Start starts a server for t, connects to it, and registers a cleanup
// that closes the connection and shuts the server down, so that goleak
// finds nothing left when the package's tests end.
func Start(t testing.TB) *Env {
	t.Helper()
	s, err := StartServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		Stop(s)
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		Stop(s)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		Stop(s)
	})
	return &Env{Server: s, Conn: nc, JS: js, URL: s.ClientURL()}
}

// Connect opens another connection to e's server (one per simulated
// process), closed when t ends.
func (e *Env) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}
