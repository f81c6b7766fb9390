package operators_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sources"
)

// Every resilience stage that is a publisher passes the TCK's
// PublisherVerification over a conforming source.
func TestResilienceConformance(t *testing.T) {
	fast := operators.RetryPolicy{InitialDelay: time.Microsecond, Jitter: operators.NoJitter}
	rng := func(n int64) flow.Publisher[int] { return sources.Range(0, int(n)) }
	// failsFirst fails its first subscription before any item, then
	// emits n items.
	failsFirst := func(n int64) flow.Publisher[int] {
		items := make([]int, n)
		for i := range items {
			items[i] = i
		}
		return &rsSource{start: time.Now(), scripts: []rsScript{{err: errBoom}, {items: items}}}
	}
	id := func(_ context.Context, v int) (int, error) { return v, nil }
	lim := func() *operators.AdaptiveLimit {
		return operators.NewAdaptiveLimit(operators.AdaptiveConfig{Max: 4, Target: time.Second})
	}
	tests := []struct {
		name  string
		new   func(n int64) flow.Publisher[int]
		stage func(flow.Publisher[int]) flow.Publisher[int]
	}{
		{"Retry without failures",
			func(n int64) flow.Publisher[int] { return operators.Retry(rng(n), fast) },
			func(p flow.Publisher[int]) flow.Publisher[int] {
				return operators.Retry(p, operators.RetryPolicy{MaxAttempts: 1})
			}},
		{"Retry after a failure",
			func(n int64) flow.Publisher[int] { return operators.Retry(failsFirst(n), fast) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.Retry(p, fast) }},
		{"TimeoutFirst",
			func(n int64) flow.Publisher[int] { return operators.TimeoutFirst(rng(n), time.Hour) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.TimeoutFirst(p, time.Hour) }},
		{"TimeoutIdle",
			func(n int64) flow.Publisher[int] { return operators.TimeoutIdle(rng(n), time.Hour) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.TimeoutIdle(p, time.Hour) }},
		{"TimeoutDemand",
			func(n int64) flow.Publisher[int] { return operators.TimeoutDemand(rng(n), time.Hour) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.TimeoutDemand(p, time.Hour) }},
		{"RateLimit",
			func(n int64) flow.Publisher[int] { return operators.RateLimit(rng(n), 1e6, 64) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.RateLimit(p, 1e6, 64) }},
		{"RateLimit burst 1",
			func(n int64) flow.Publisher[int] { return operators.RateLimit(rng(n), 1e5, 1) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.RateLimit(p, 1e5, 1) }},
		{"RateLimit rate.Inf",
			func(n int64) flow.Publisher[int] { return operators.RateLimit(rng(n), rate.Inf, 1) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.RateLimit(p, rate.Inf, 1) }},
		{"MapAsyncAdaptive",
			func(n int64) flow.Publisher[int] { return operators.MapAsyncAdaptive(rng(n), id, lim()) },
			func(p flow.Publisher[int]) flow.Publisher[int] { return operators.MapAsyncAdaptive(p, id, lim()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
				New:         tt.new,
				Failed:      func() flow.Publisher[int] { return tt.stage(sources.Error[int](errBoom)) },
				MaxElements: conformanceMax,
				Timeout:     5 * time.Second,
			})
		})
	}
}

// Stress: Retry under -race with random demand from another goroutine,
// racing with the timer goroutines that resubscribe, and random cancel
// points. Properties: no protocol violation; never more items than
// requested; a completed stream holds every attempt's items in order
// (the replay that Retry documents).
func TestRetryStress(t *testing.T) {
	for iter := range 60 {
		rng := rand.New(rand.NewPCG(uint64(iter), 7))
		var scripts []rsScript
		want := []int{}
		attempts := 1 + rng.IntN(4)
		for a := range attempts {
			var items []int
			for i := range rng.IntN(6) {
				items = append(items, a*100+i)
			}
			want = append(want, items...)
			sc := rsScript{items: items}
			if a < attempts-1 {
				sc.err = errBoom
			}
			scripts = append(scripts, sc)
		}
		cancelAt := -1
		if rng.IntN(3) == 0 {
			cancelAt = rng.IntN(len(want) + 1)
		}
		src := &rsSource{start: time.Now(), scripts: scripts}
		rec := flowtest.NewSubscriber[int](t, 0, flowtest.Timeout(5*time.Second))
		p := operators.RetryPolicy{MaxAttempts: 5, InitialDelay: 20 * time.Microsecond, MaxDelay: 100 * time.Microsecond}
		operators.Retry[int](src, p).Subscribe(rec)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			total := int64(0)
			for !rec.Terminated() && total < int64(len(want)+3) {
				n := 1 + rng.Int64N(3)
				total += n
				rec.Request(n)
				if cancelAt >= 0 && len(rec.Items()) >= cancelAt {
					rec.Cancel()
					return
				}
				time.Sleep(time.Duration(rng.IntN(30)) * time.Microsecond)
			}
		}()
		wg.Wait()
		if cancelAt >= 0 {
			rec.Cancel()
			continue
		}
		if !rec.AwaitTerminated() {
			t.Fatalf("iteration %d: not terminated; items %v", iter, rec.Items())
		}
		if diff := cmp.Diff(want, rec.Items()); diff != "" || !rec.Completed() {
			t.Fatalf("iteration %d: completed=%v err=%v (-want +got)\n%s", iter, rec.Completed(), rec.Err(), diff)
		}
		if got, req := int64(len(rec.Items())), rec.Requested(); got > req {
			t.Fatalf("iteration %d: %d items for %d requested", iter, got, req)
		}
	}
}

// BenchmarkResilience measures the per-item cost of the resilience
// stages that sit on the item path, over Range(1e5) into a synchronous
// reducing sink (256 requested up front, 192 after every 192), next to
// the same chain without a stage (stage=none).
func BenchmarkResilience(b *testing.B) {
	const n = 100_000
	stages := []struct {
		name  string
		stage func(flow.Publisher[int]) flow.Publisher[int]
	}{
		{"none", func(p flow.Publisher[int]) flow.Publisher[int] { return p }},
		{"Retry", func(p flow.Publisher[int]) flow.Publisher[int] { return operators.Retry(p, operators.RetryPolicy{}) }},
		{"TimeoutFirst", func(p flow.Publisher[int]) flow.Publisher[int] { return operators.TimeoutFirst(p, time.Hour) }},
		{"TimeoutIdle", func(p flow.Publisher[int]) flow.Publisher[int] { return operators.TimeoutIdle(p, time.Hour) }},
		{"TimeoutDemand", func(p flow.Publisher[int]) flow.Publisher[int] { return operators.TimeoutDemand(p, time.Hour) }},
		{"RateLimit-inf", func(p flow.Publisher[int]) flow.Publisher[int] { return operators.RateLimit(p, rate.Inf, 1) }},
		{"RateLimit-1e10", func(p flow.Publisher[int]) flow.Publisher[int] { return operators.RateLimit(p, 1e10, 256) }},
	}
	for _, st := range stages {
		b.Run("stage="+st.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := &trReducer{}
				st.stage(sources.Range(0, n)).Subscribe(r)
				if !r.done {
					b.Fatal("not done")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/item")
		})
	}
}

// Stress: the timeout stages under -race, with a source that emits on
// another goroutine (PublishOn), random demand from a third one, and
// deadlines short enough to expire in the middle of deliveries.
// Properties: no protocol violation (the test subscriber reports
// overlapping signals); the stream ends with completion or a
// *TimeoutError of the stage's kind; the items are a prefix of the
// source, in order.
func TestTimeoutStress(t *testing.T) {
	pool := scheduler.NewSingle()
	defer pool.Close()
	kinds := []struct {
		kind  operators.TimeoutKind
		stage func(flow.Publisher[int], time.Duration, ...operators.Option) flow.Publisher[int]
	}{
		{operators.TimeoutKindFirst, operators.TimeoutFirst[int]},
		{operators.TimeoutKindIdle, operators.TimeoutIdle[int]},
		{operators.TimeoutKindDemand, operators.TimeoutDemand[int]},
	}
	for iter := range 20 {
		for _, k := range kinds {
			rng := rand.New(rand.NewPCG(uint64(iter), uint64(k.kind)))
			d := time.Duration(5+rng.IntN(100)) * time.Microsecond
			src := operators.PublishOn(sources.Range(0, 100), pool, operators.Prefetch(8))
			rec := flowtest.NewSubscriber[int](t, 0, flowtest.Timeout(5*time.Second))
			k.stage(src, d).Subscribe(rec)
			for !rec.Terminated() {
				rec.Request(1 + rng.Int64N(4))
				time.Sleep(time.Duration(rng.IntN(40)) * time.Microsecond)
			}
			if !rec.AwaitTerminated() {
				t.Fatalf("%v #%d: not terminated", k.kind, iter)
			}
			var te *operators.TimeoutError
			if err := rec.Err(); err != nil && (!errors.As(err, &te) || te.Kind != k.kind) {
				t.Fatalf("%v #%d: error %v", k.kind, iter, err)
			}
			for i, v := range rec.Items() {
				if v != i {
					t.Fatalf("%v #%d: items %v are not a prefix of the source", k.kind, iter, rec.Items())
				}
			}
		}
	}
}
