package operators_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sources"
)

func TestFilterRequestsReplacementsInBatches(t *testing.T) {
	// Downstream asks for 8 once. Filter keeps multiples of 4 of 1..20,
	// and re-requests the rejections pending (pend) once the demand
	// upstream still holds (U) is at most pend/3:
	//   1..3 rejected (pend 3, U 5); 4 kept (U 4); 5, 6 rejected (pend 5, U 2);
	//   7 rejected: U 1 <= 6/3 → Request(6), U 7. 8 kept (U 6).
	//   9..11 rejected (pend 3, U 3); 12 kept (U 2); 13: U 1 <= 4/3 → Request(4).
	//   14, 15 (pend 2, U 3); 16 kept (U 2); 17: U 1 <= 3/3 → Request(3).
	//   18, 19 (pend 2, U 2); 20 kept (U 1), and Range completes.
	log := &trLog{}
	spy := newTrSpy(log, sources.Range(1, 20))
	p := newTrProbe[int](t, log)
	p.onSubscribe = trRequestFirst[int](8)
	operators.Filter(spy, func(v int) bool { return v%4 == 0 }).Subscribe(p)

	want := []string{"OnSubscribe", "up.Request(8)", "OnNext(4)", "up.Request(6)", "OnNext(8)",
		"OnNext(12)", "up.Request(4)", "OnNext(16)", "up.Request(3)", "OnNext(20)", "OnComplete"}
	if diff := cmp.Diff(want, log.get()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
}

// trFilters are Filter alone and fused with a Map on either side; they must
// account for demand identically.
var trFilters = []struct {
	name  string
	build func(src flow.Publisher[int], keep func(int) bool) flow.Publisher[int]
}{
	{"Filter", func(s flow.Publisher[int], keep func(int) bool) flow.Publisher[int] {
		return operators.Filter(s, keep)
	}},
	{"Filter(Map)", func(s flow.Publisher[int], keep func(int) bool) flow.Publisher[int] {
		return operators.Filter(operators.Map(s, func(v int) int { return v }), keep)
	}},
	{"Map(Filter)", func(s flow.Publisher[int], keep func(int) bool) flow.Publisher[int] {
		return operators.Map(operators.Filter(s, keep), func(v int) int { return v })
	}},
	{"FilterErr", func(s flow.Publisher[int], keep func(int) bool) flow.Publisher[int] {
		return operators.FilterErr(s, func(v int) (bool, error) { return keep(v), nil })
	}},
}

func TestFilterRejectingNinetyPercent(t *testing.T) {
	for _, fl := range trFilters {
		t.Run(fl.name, func(t *testing.T) { testFilterRejectingNinetyPercent(t, fl.build) })
	}
}

func testFilterRejectingNinetyPercent(t *testing.T, filter func(flow.Publisher[int], func(int) bool) flow.Publisher[int]) {
	// 1e5 items, 90 % rejected, a downstream that requests 256 and then
	// 192 after every 192 consumed. Filter must not spend a Request per
	// rejected item, must never ask for more than downstream asked for
	// plus what it rejected, and must deliver exactly the kept items.
	const n = 100_000
	spy := newTrSpy(nil, sources.Range(0, n))
	p := newTrProbe[int](t, nil)
	p.quiet = true
	p.onSubscribe, p.onNext = trRequestBatches[int](256, 192)
	filter(spy, func(v int) bool { return v%10 == 0 }).Subscribe(p)

	var want []int
	for v := 0; v < n; v += 10 {
		want = append(want, v)
	}
	if diff := cmp.Diff(want, p.Items()); diff != "" {
		t.Fatalf("items (-want +got)\n%s", diff)
	}
	select {
	case <-p.done:
	default:
		t.Fatal("the stream did not complete")
	}
	const rejected = n - n/10
	reqs := spy.Requests()
	var total int64
	for _, r := range reqs {
		total += r
	}
	downstream := p.requested.Load()
	t.Logf("%d upstream Request calls for %d rejected items; downstream made %d; %d requested upstream in all",
		len(reqs), rejected, (downstream-256)/192+1, total)
	if len(reqs) > rejected/80 {
		t.Errorf("%d upstream Request calls for %d rejected items, want at most %d", len(reqs), rejected, rejected/80)
	}
	if total > downstream+rejected {
		t.Errorf("requested %d upstream, more than downstream's %d plus %d rejected", total, downstream, rejected)
	}
}

func TestFilterNeverStalls(t *testing.T) {
	t.Run("every item rejected, one requested", func(t *testing.T) {
		spy := newTrSpy(nil, sources.Range(1, 1000))
		p := newTrProbe[int](t, nil)
		p.onSubscribe = trRequestFirst[int](1)
		operators.Filter(spy, func(int) bool { return false }).Subscribe(p)
		if diff := cmp.Diff([]string{"OnSubscribe", "OnComplete"}, p.log.get()); diff != "" {
			t.Errorf("log (-want +got)\n%s", diff)
		}
		// With one item of demand, every rejection must be replaced at once.
		if got := len(spy.Requests()); got != 1001 {
			t.Errorf("%d upstream requests, want 1001", got)
		}
	})
	t.Run("unbounded demand needs no replacements", func(t *testing.T) {
		spy := newTrSpy(nil, sources.Range(1, 1000))
		p := newTrProbe[int](t, nil)
		p.onSubscribe = trRequestFirst[int](flow.Unbounded)
		operators.Filter(spy, func(v int) bool { return v%100 == 0 }).Subscribe(p)
		if diff := cmp.Diff([]int64{flow.Unbounded}, spy.Requests()); diff != "" {
			t.Errorf("upstream requests (-want +got)\n%s", diff)
		}
		if diff := cmp.Diff([]int{100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}, p.Items()); diff != "" {
			t.Errorf("items (-want +got)\n%s", diff)
		}
	})
	// Random keep ratios and random downstream demand, with the probe
	// checking that no item arrives unrequested (rule 1.1). Property:
	// every stream completes with exactly the kept items, and Filter
	// requests no more than downstream's demand plus its rejections.
	for seed := range uint64(40) {
		fl := trFilters[seed%uint64(len(trFilters))]
		t.Run(fmt.Sprintf("%s random demand seed %d", fl.name, seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			keepEvery := 1 + rng.IntN(20)
			const n = 5000
			spy := newTrSpy(nil, sources.Range(0, n))
			p := newTrProbe[int](t, nil)
			p.quiet = true
			chunk := func() int64 { return 1 + rng.Int64N(64) }
			p.onSubscribe = func(p *trProbe[int]) { p.request(chunk()) }
			p.onNext = func(p *trProbe[int], _ int) {
				// Request more when outstanding demand is gone, or now and then.
				if p.received.Load() == p.requested.Load() || rng.IntN(8) == 0 {
					p.request(chunk())
				}
			}
			fl.build(spy, func(v int) bool { return v%keepEvery == 0 }).Subscribe(p)
			var want []int
			for v := 0; v < n; v += keepEvery {
				want = append(want, v)
			}
			if diff := cmp.Diff(want, p.Items()); diff != "" {
				t.Fatalf("keep every %d: items (-want +got)\n%s", keepEvery, diff)
			}
			var total int64
			for _, r := range spy.Requests() {
				total += r
			}
			if rejected := int64(n - len(want)); total > p.requested.Load()+rejected {
				t.Errorf("requested %d upstream, more than %d + %d", total, p.requested.Load(), rejected)
			}
		})
	}
}

func TestFilterWithRequestsFromAnotherGoroutine(t *testing.T) {
	// The consumer runs on its own goroutine and requests 192 after every
	// 192 items; Range emits on whichever goroutine moved its demand off
	// zero. Under -race this checks Filter's accounting across goroutines.
	const n = 200_000
	items := make(chan int, 256)
	p := newTrProbe[int](t, nil)
	p.quiet = true
	p.onNext = func(_ *trProbe[int], v int) { items <- v }
	operators.Filter(sources.Range(0, n), func(v int) bool { return v%7 == 0 }).Subscribe(p)

	consumed := make(chan []int)
	go func() {
		var got []int
		for len(got) < (n+6)/7 {
			got = append(got, <-items)
			if len(got)%192 == 0 {
				p.request(192)
			}
		}
		consumed <- got
	}()
	p.request(256)
	got := <-consumed
	<-p.done
	var want []int
	for v := 0; v < n; v += 7 {
		want = append(want, v)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
}

func TestDistinct(t *testing.T) {
	in := []int{1, 2, 1, 3, 2, 2, 4, 1, 3, 3}
	tests := []struct {
		name  string
		build func(flow.Publisher[int]) flow.Publisher[int]
		want  []int
	}{
		{"Distinct", func(s flow.Publisher[int]) flow.Publisher[int] { return operators.Distinct(s) }, []int{1, 2, 3, 4}},
		{"DistinctBy parity", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.DistinctBy(s, func(v int) bool { return v%2 == 0 })
		}, []int{1, 2}},
		{"DistinctUntilChanged", func(s flow.Publisher[int]) flow.Publisher[int] { return operators.DistinctUntilChanged(s) },
			[]int{1, 2, 1, 3, 2, 4, 1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := tt.build(sources.Slice(in))
			// Each subscription has its own memory of what it has seen.
			for i := range 2 {
				p := newTrProbe[int](t, nil)
				p.onSubscribe = trRequestFirst[int](1)
				p.onNext = trRequestEach[int](1)
				pub.Subscribe(p)
				if diff := cmp.Diff(trLogOf(tt.want, "OnComplete"), p.log.get()); diff != "" {
					t.Errorf("subscription %d: log (-want +got)\n%s", i, diff)
				}
			}
		})
	}
}

func TestFilterErrKeepsAndRejects(t *testing.T) {
	spy := newTrSpy(nil, sources.Range(1, 10))
	p := newTrProbe[int](t, nil)
	p.onSubscribe = trRequestFirst[int](2)
	p.onNext = trRequestEach[int](2)
	operators.FilterErr(spy, func(v int) (bool, error) { return v%3 == 0, nil }).Subscribe(p)
	if diff := cmp.Diff(trLogOf([]int{3, 6, 9}, "OnComplete"), p.log.get()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
}
