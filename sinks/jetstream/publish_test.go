package jetstream_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/natstest"
	jsk "github.com/sluicego/sluice/sinks/jetstream"
	"github.com/sluicego/sluice/sources"
)

func newStream(t *testing.T, e *natstest.Env, name string) jetstream.Stream {
	t.Helper()
	return newStreamB(t, e, name)
}

func newStreamB(t testing.TB, e *natstest.Env, name string) jetstream.Stream {
	t.Helper()
	s, err := e.JS.CreateStream(context.Background(), jetstream.StreamConfig{
		Name:     name,
		Subjects: []string{name + ".>"},
		Storage:  jetstream.MemoryStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storedInts reads every message of the stream back, in order.
func storedInts(t *testing.T, s jetstream.Stream) []int {
	t.Helper()
	ctx := context.Background()
	c, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for len(got) < int(info.State.Msgs) {
		b, err := c.Fetch(min(1000, int(info.State.Msgs)-len(got)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			v, err := strconv.Atoi(string(m.Data()))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if err := b.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func encodeTo(subject string) func(int) (*nats.Msg, error) {
	return func(v int) (*nats.Msg, error) {
		return &nats.Msg{Subject: subject, Data: strconv.AppendInt(nil, int64(v), 10)}, nil
	}
}

func ints(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// TestPublishStoresEverything: every item is stored once, in order, and
// the count returned is exact.
func TestPublishStoresEverything(t *testing.T) {
	const n = 20_000
	e := natstest.Start(t)
	s := newStream(t, e, "OUT")
	got, err := jsk.Publish(context.Background(), e.JS, sources.Range(0, n), encodeTo("OUT.x"))
	if err != nil || got != n {
		t.Fatalf("Publish = %d, %v; want %d, nil", got, err, n)
	}
	if diff := cmp.Diff(ints(0, n), storedInts(t, s)); diff != "" {
		t.Errorf("stored (-want +got):\n%.2000s", diff)
	}
}

// TestPublisherOutpacingServerStaysBounded: a synchronous Range emits as
// fast as it is asked; the acks pending in nats.go never exceed
// MaxPending, and the bound is reached (the source outpaces the server).
func TestPublisherOutpacingServerStaysBounded(t *testing.T) {
	const n, maxPending = 20_000, 64
	e := natstest.Start(t)
	newStream(t, e, "FAST")
	var peak, over atomic.Int64
	encode := func(v int) (*nats.Msg, error) {
		p := int64(e.JS.PublishAsyncPending()) // before this item's publish
		if p >= maxPending {
			over.Add(1)
		}
		if p > peak.Load() {
			peak.Store(p)
		}
		return &nats.Msg{Subject: "FAST.x", Data: strconv.AppendInt(nil, int64(v), 10)}, nil
	}
	got, err := jsk.Publish(context.Background(), e.JS, sources.Range(0, n), encode, jsk.MaxPending(maxPending))
	if err != nil || got != n {
		t.Fatalf("Publish = %d, %v; want %d, nil", got, err, n)
	}
	if over.Load() != 0 {
		t.Errorf("%d items were published with %d or more acks pending (peak %d)", over.Load(), maxPending, peak.Load())
	}
	if p := peak.Load(); p < maxPending/2 {
		t.Errorf("peak pending %d: the publisher never outpaced the server, the test proves nothing", p)
	}
	t.Logf("peak pending acks %d of %d", peak.Load(), maxPending)
}

// TestRetryThenDeadLetter: publishes to a subject with no stream fail;
// each is retried up to the policy's attempts, then dead-lettered, and
// the stream goes on.
func TestRetryThenDeadLetter(t *testing.T) {
	e := natstest.Start(t)
	var mu sync.Mutex
	var dead []jsk.DeadLetter
	got, err := jsk.Publish(context.Background(), e.JS, sources.Range(0, 5), encodeTo("NOSTREAM.x"),
		jsk.Retry(3, time.Millisecond), jsk.MaxPending(2),
		jsk.OnDeadLetter(func(d jsk.DeadLetter) { mu.Lock(); dead = append(dead, d); mu.Unlock() }))
	if err != nil || got != 0 {
		t.Fatalf("Publish = %d, %v; want 0, nil", got, err)
	}
	var items []int
	for _, d := range dead {
		items = append(items, d.Item.(int))
		if d.Attempts != 3 || d.Msg == nil || !errors.Is(d.Err, jetstream.ErrNoStreamResponse) {
			t.Errorf("dead letter %+v: want 3 attempts, the message, and ErrNoStreamResponse", d)
		}
	}
	if diff := cmp.Diff(ints(0, 5), items); diff != "" {
		t.Errorf("dead-lettered items (-want +got):\n%s", diff)
	}
}

// TestFailureWithoutHookEndsTheStream: without a dead-letter hook the
// first message that fails every attempt ends the stream with its error
// and cancels upstream.
func TestFailureWithoutHookEndsTheStream(t *testing.T) {
	e := natstest.Start(t)
	src := sources.Range(0, 1000)
	var cancelled atomic.Bool
	pub := flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		src.Subscribe(flow.SubscriberFuncs[int]{
			Subscribe: func(sub flow.Subscription) {
				s.OnSubscribe(cancelSpy{sub, &cancelled})
			},
			Next:     s.OnNext,
			Error:    s.OnError,
			Complete: s.OnComplete,
		})
	})
	got, err := jsk.Publish(context.Background(), e.JS, pub, encodeTo("NOSTREAM.x"), jsk.Retry(2, time.Millisecond))
	if got != 0 || !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("Publish = %d, %v; want 0 and ErrNoStreamResponse", got, err)
	}
	if !cancelled.Load() {
		t.Error("upstream was not cancelled")
	}
}

type cancelSpy struct {
	flow.Subscription
	cancelled *atomic.Bool
}

func (c cancelSpy) Cancel() {
	c.cancelled.Store(true)
	c.Subscription.Cancel()
}

// TestEncodeErrorAndPanic: an encode error goes to the hook; a panic
// ends the stream with a *flow.PanicError.
func TestEncodeErrorAndPanic(t *testing.T) {
	e := natstest.Start(t)
	s := newStream(t, e, "ENC")
	var dead []int
	encode := func(v int) (*nats.Msg, error) {
		if v%2 == 1 {
			return nil, errors.New("odd")
		}
		return encodeTo("ENC.x")(v)
	}
	got, err := jsk.Publish(context.Background(), e.JS, sources.Range(0, 6), encode,
		jsk.OnDeadLetter(func(d jsk.DeadLetter) { dead = append(dead, d.Item.(int)) }))
	if err != nil || got != 3 {
		t.Fatalf("Publish = %d, %v; want 3, nil", got, err)
	}
	if diff := cmp.Diff([]int{1, 3, 5}, dead); diff != "" {
		t.Errorf("dead (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{0, 2, 4}, storedInts(t, s)); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}

	_, err = jsk.Publish(context.Background(), e.JS, sources.Range(0, 6), func(int) (*nats.Msg, error) { panic("boom") })
	var pe *flow.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" {
		t.Errorf("err = %v, want a *flow.PanicError(boom)", err)
	}
}

// recorder is a publisher that emits nothing and records the demand it
// received and whether it was cancelled.
type recorder struct {
	requested atomic.Int64
	cancelled atomic.Bool
	once      sync.Once
	asked     chan struct{} // closed at the first Request
}

func (r *recorder) Subscribe(s flow.Subscriber[int]) { s.OnSubscribe(recorderSub{r}) }

type recorderSub struct{ r *recorder }

func (x recorderSub) Request(n int64) {
	x.r.requested.Add(n)
	x.r.once.Do(func() { close(x.r.asked) })
}

func (x recorderSub) Cancel() { x.r.cancelled.Store(true) }

// TestContextCancel: a cancelled context ends Publish with ctx's error
// and cancels upstream; the initial demand is MaxPending.
func TestContextCancel(t *testing.T) {
	e := natstest.Start(t)
	rec := &recorder{asked: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := jsk.Publish(ctx, e.JS, rec, encodeTo("CAN.x"), jsk.MaxPending(10))
		done <- err
	}()
	<-rec.asked // Publish has subscribed and made its initial request
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !rec.cancelled.Load() || rec.requested.Load() != 10 {
		t.Errorf("upstream: cancelled %v requested %d, want true and 10", rec.cancelled.Load(), rec.requested.Load())
	}
}

func TestConstructionPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil ctx":      func() { jsk.Publish(nil, fakeJS, sources.Range(0, 1), encodeTo("x")) }, //nolint:staticcheck
		"nil js":       func() { jsk.Publish(context.Background(), nil, sources.Range(0, 1), encodeTo("x")) },
		"nil pub":      func() { jsk.Publish[int](context.Background(), fakeJS, nil, encodeTo("x")) },
		"nil encode":   func() { jsk.Publish[int](context.Background(), fakeJS, sources.Range(0, 1), nil) },
		"MaxPending 0": func() { jsk.MaxPending(0) },
		"Retry 0":      func() { jsk.Retry(0, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || len(s) < 8 || s[:8] != "sluice: " {
					t.Errorf("panic %v, want a sluice: message", r)
				}
			}()
			f()
		})
	}
}

var fakeJS jetstream.JetStream = struct{ jetstream.JetStream }{}
