package jetstream_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/internal/natstest"
	"github.com/sluicego/sluice/sinks"
	jss "github.com/sluicego/sluice/sources/jetstream"
)

// TestOnceEachAcrossThreeConsumers: 100,000 messages, three subscriptions
// on three connections bound to one durable consumer, acking after
// "commit": every message is processed exactly once, and the work is
// shared.
func TestOnceEachAcrossThreeConsumers(t *testing.T) {
	const n = 100_000
	e := natstest.Start(t)
	start := time.Now()
	stream := newStream(t, e, n)
	t.Logf("published %d messages in %v", n, time.Since(start))
	start = time.Now()
	// AckWait bounds how long a message lost on its way to a worker (see
	// the report of Redelivered below) waits before it is redelivered.
	cfg := jetstream.ConsumerConfig{Durable: "workers", MaxAckPending: 4096, AckWait: 5 * time.Second}

	var (
		mu   sync.Mutex
		seen = make([]int, 0, n)
		per  [3]int
		srcs [3]*jss.Source[int]
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for w := range 3 {
		_, js := e.Connect(t)
		srcs[w] = jss.New(js, stream, cfg, atoi, jss.UntilEmpty(), jss.PullWait(200*time.Millisecond))
		wg.Go(func() {
			local := make([]int, 0, n/2)
			errs[w] = sinks.ForEach(ctx, srcs[w], func(m jss.Msg[int]) error {
				local = append(local, m.Value) // the "commit"
				return m.Ack()
			})
			mu.Lock()
			seen = append(seen, local...)
			per[w] = len(local)
			mu.Unlock()
		})
	}
	wg.Wait()
	for w := range 3 {
		srcs[w].Wait()
		if errs[w] != nil {
			t.Fatalf("worker %d: %v", w, errs[w])
		}
		if per[w] == 0 {
			t.Errorf("worker %d processed nothing: the work was not shared (per worker %v)", w, per)
		}
	}
	slices.Sort(seen)
	if diff := cmp.Diff(ints(0, n), seen); diff != "" {
		t.Fatalf("processed set differs (-want +got):\n%.2000s", diff)
	}
	var total jss.Stats
	for _, s := range srcs {
		st := s.Stats()
		total.Pulls += st.Pulls
		total.Received += st.Received
		total.Delivered += st.Delivered
		total.Acked += st.Acked
		total.Redelivered += st.Redelivered
	}
	// Once each: n received, n delivered, n acked. A redelivery is
	// possible only for a message that the server sent and no worker
	// received (seen under extreme load, see docs/distributed.md): it was
	// then received, and processed, once.
	got := jss.Stats{Received: total.Received, Delivered: total.Delivered, Acked: total.Acked}
	if diff := cmp.Diff(jss.Stats{Received: n, Delivered: n, Acked: n}, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	t.Logf("consumed in %v; per worker: %v; %d pulls, %d redelivered", time.Since(start), per, total.Pulls, total.Redelivered)
}

// TestKilledConsumerIsRedelivered: a subscription that receives messages
// and dies without acking (its context cancelled) has them redelivered,
// after AckWait, to the other subscriptions, which process everything.
func TestKilledConsumerIsRedelivered(t *testing.T) {
	const n, killAfter = 2000, 100
	e := natstest.Start(t)
	stream := newStream(t, e, n)
	cfg := jetstream.ConsumerConfig{Durable: "workers", AckWait: time.Second}

	// The victim takes killAfter messages, acks none, and is killed.
	_, vjs := e.Connect(t)
	victim := jss.New(vjs, stream, cfg, atoi)
	vctx, kill := context.WithCancel(context.Background())
	var held []int
	err := sinks.ForEach(vctx, victim, func(m jss.Msg[int]) error {
		if vctx.Err() != nil {
			return nil // dead: the sink's cancellation is on its way
		}
		held = append(held, m.Value)
		if len(held) == killAfter {
			kill()
		}
		return nil // no ack: it dies before committing
	}, sinks.Prefetch(killAfter))
	victim.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("victim: err = %v, want context.Canceled", err)
	}
	if len(held) != killAfter {
		t.Fatalf("victim held %d messages, want %d", len(held), killAfter)
	}
	if info := consumerInfo(t, e.JS, stream, "workers"); info.NumAckPending < killAfter {
		t.Fatalf("NumAckPending after the kill = %d, want >= %d (the victim's messages)", info.NumAckPending, killAfter)
	}

	// Two survivors process everything, the victim's messages included.
	type rec struct{ v, delivered int }
	var (
		mu  sync.Mutex
		got []rec
		wg  sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srcs := make([]*jss.Source[int], 2)
	for w := range srcs {
		_, js := e.Connect(t)
		srcs[w] = jss.New(js, stream, cfg, atoi, jss.UntilEmpty(), jss.PullWait(200*time.Millisecond))
		wg.Go(func() {
			err := sinks.ForEach(ctx, srcs[w], func(m jss.Msg[int]) error {
				mu.Lock()
				got = append(got, rec{m.Value, int(m.NumDelivered())})
				mu.Unlock()
				return m.Ack()
			})
			if err != nil {
				t.Errorf("survivor %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	var values []int
	redelivered := map[int]bool{}
	for _, r := range got {
		values = append(values, r.v)
		if r.delivered > 1 {
			redelivered[r.v] = true
		}
	}
	slices.Sort(values)
	values = slices.Compact(values)
	if diff := cmp.Diff(ints(0, n), values); diff != "" {
		t.Fatalf("survivors' set differs (-want +got):\n%.2000s", diff)
	}
	for _, v := range held {
		if !redelivered[v] {
			t.Errorf("message %d held by the victim was not processed as a redelivery", v)
		}
	}
	// A duplicate is allowed only for a redelivered message.
	count := map[int]int{}
	for _, r := range got {
		count[r.v]++
		if count[r.v] > 1 && !redelivered[r.v] {
			t.Errorf("message %d processed twice without a redelivery", r.v)
		}
	}
	var red int64
	for _, s := range srcs {
		s.Wait()
		red += s.Stats().Redelivered
	}
	if red < killAfter {
		t.Errorf("Stats().Redelivered = %d, want >= %d", red, killAfter)
	}
}

// TestSlowSinksStayWithinMaxAckPending: two slow subscriptions with a
// large demand; the server never lets more than MaxAckPending messages
// be unacknowledged, which the consumer info shows throughout.
func TestSlowSinksStayWithinMaxAckPending(t *testing.T) {
	const n, maxAck = 300, 16
	e := natstest.Start(t)
	stream := newStream(t, e, n)
	cfg := jetstream.ConsumerConfig{Durable: "slow", MaxAckPending: maxAck}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := e.JS.CreateOrUpdateConsumer(ctx, stream, cfg) // for the watcher; the sources bind to it
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Go(func() {
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(2 * time.Millisecond):
			}
			info, err := cons.Info(ctx)
			if err != nil {
				t.Errorf("consumer info: %v", err)
				return
			}
			if p := int64(info.NumAckPending); p > peak.Load() {
				peak.Store(p)
			}
		}
	})
	var wg sync.WaitGroup
	var processed atomic.Int64
	for w := range 2 {
		_, js := e.Connect(t)
		src := jss.New(js, stream, cfg, atoi, jss.UntilEmpty(), jss.PullWait(100*time.Millisecond))
		wg.Go(func() {
			defer src.Wait()
			err := sinks.ForEach(ctx, src, func(m jss.Msg[int]) error {
				time.Sleep(500 * time.Microsecond) // the slow commit
				processed.Add(1)
				return m.Ack()
			}, sinks.Prefetch(256)) // demand far above MaxAckPending
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	close(stopWatch)
	watch.Wait()
	if got := processed.Load(); got != n {
		t.Errorf("processed %d messages, want %d", got, n)
	}
	if p := peak.Load(); p > maxAck || p == 0 {
		t.Errorf("peak NumAckPending = %d, want 1..%d", p, maxAck)
	}
}

// TestPullsFollowDemand: the source asks the server for exactly what was
// requested, so the consumer shows exactly that many messages delivered
// and unacknowledged, and pulls min(uncovered demand, MaxPull).
func TestPullsFollowDemand(t *testing.T) {
	e := natstest.Start(t)
	stream := newStream(t, e, 1000)
	src := jss.New(e.JS, stream, jetstream.ConsumerConfig{Durable: "d"}, atoi)
	sub := flowtest.NewSubscriber[jss.Msg[int]](t, 10)
	src.Subscribe(sub)
	if !sub.AwaitItems(10) {
		t.Fatal("10 items did not arrive")
	}
	if !sub.ExpectNone() {
		t.Fatal("more than the 10 requested items arrived")
	}
	if info := consumerInfo(t, e.JS, stream, "d"); info.NumAckPending != 10 || info.NumPending != 990 {
		t.Fatalf("after Request(10): NumAckPending %d NumPending %d, want 10 and 990", info.NumAckPending, info.NumPending)
	}
	sub.Request(300) // one pull of 256, then one of 44 at the low-water mark
	if !sub.AwaitItems(310) {
		t.Fatal("310 items did not arrive")
	}
	sub.ExpectNone()
	sub.Cancel()
	src.Wait()
	st := src.Stats()
	want := jss.Stats{Pulls: 3, Received: 310, Delivered: 310}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	var got []int
	for _, m := range sub.Items() {
		got = append(got, m.Value)
	}
	slices.Sort(got) // two overlapping pulls interleave
	if diff := cmp.Diff(ints(0, 310), got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}

// TestSettlement: decode failures and Term go to the dead-letter hook;
// Nak redelivers; InProgress is counted.
func TestSettlement(t *testing.T) {
	e := natstest.Start(t)
	stream := newStream(t, e, 0)
	subject := stream + ".work"
	for _, s := range []string{"1", "x", "3", "4"} {
		if _, err := e.JS.Publish(context.Background(), subject, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var dead []jss.DeadLetter
	src := jss.New(e.JS, stream, jetstream.ConsumerConfig{Durable: "d"}, atoi,
		jss.UntilEmpty(), jss.PullWait(100*time.Millisecond),
		jss.OnDeadLetter(func(d jss.DeadLetter) { mu.Lock(); dead = append(dead, d); mu.Unlock() }))
	var got []string
	err := sinks.ForEach(context.Background(), src, func(m jss.Msg[int]) error {
		got = append(got, string(m.Raw().Data())+"/"+string(rune('0'+m.NumDelivered())))
		switch {
		case m.Value == 3:
			return m.Term("three is permanent")
		case m.Value == 4 && m.NumDelivered() == 1:
			return m.Nak() // retriable: comes back
		default:
			if err := m.InProgress(); err != nil {
				return err
			}
			return m.AckSync(context.Background())
		}
	})
	src.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1/1", "3/1", "4/1", "4/2"}, got); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	type dl struct {
		Data   string
		Seq    uint64
		Reason string
		IsErr  bool
	}
	var gotDead []dl
	for _, d := range dead {
		gotDead = append(gotDead, dl{string(d.Data), d.StreamSeq, d.Reason, d.Err != nil})
	}
	wantDead := []dl{{"x", 2, `strconv.Atoi: parsing "x": invalid syntax`, true}, {"3", 3, "three is permanent", false}}
	if diff := cmp.Diff(wantDead, gotDead); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
	want := jss.Stats{Received: 5, Delivered: 4, Redelivered: 1, Acked: 2, Naked: 1, Terminated: 2, InProgress: 2, DecodeErrors: 1}
	st := src.Stats()
	st.Pulls = 0
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// TestConformance runs the Reactive Streams publisher rules against a
// source over a fresh stream of n messages that completes when empty.
func TestConformance(t *testing.T) {
	e := natstest.Start(t)
	flowtest.VerifyPublisher(t, flowtest.PublisherConfig[jss.Msg[int]]{
		New: func(n int64) flow.Publisher[jss.Msg[int]] {
			stream := newStream(t, e, int(n))
			return jss.New(e.JS, stream, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckNonePolicy},
				atoi, jss.UntilEmpty(), jss.PullWait(50*time.Millisecond))
		},
		Failed: func() flow.Publisher[jss.Msg[int]] {
			return jss.New(e.JS, "NO_SUCH_STREAM", jetstream.ConsumerConfig{Durable: "c"}, atoi)
		},
		MaxElements: 512,
		Timeout:     2 * time.Second,
	})
}

func TestConstructionPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"nil js":       func() { jss.New[int](nil, "S", jetstream.ConsumerConfig{Durable: "d"}, atoi) },
		"no stream":    func() { jss.New(fakeJS, "", jetstream.ConsumerConfig{Durable: "d"}, atoi) },
		"no durable":   func() { jss.New(fakeJS, "S", jetstream.ConsumerConfig{}, atoi) },
		"nil decode":   func() { jss.New[int](fakeJS, "S", jetstream.ConsumerConfig{Durable: "d"}, nil) },
		"MaxPull 0":    func() { jss.MaxPull(0) },
		"PullWait 1ms": func() { jss.PullWait(time.Millisecond) },
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

// fakeJS is a non-nil JetStream for construction checks; it is never used.
var fakeJS jetstream.JetStream = struct{ jetstream.JetStream }{}
