package operators_test

import (
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sources"
)

// trDemandCase runs a stage over a spied source with a scripted downstream
// and compares the interleaved log of upstream calls and downstream
// signals.
type trDemandCase struct {
	name  string
	src   flow.Publisher[int]
	build func(flow.Publisher[int]) flow.Publisher[int]
	first int64 // requested in OnSubscribe
	each  int64 // requested after every item (0: nothing)
	want  []string
}

func (tc trDemandCase) run(t *testing.T) {
	t.Helper()
	log := &trLog{}
	p := newTrProbe[int](t, log)
	p.onSubscribe = trRequestFirst[int](tc.first)
	if tc.each != 0 {
		p.onNext = trRequestEach[int](tc.each)
	}
	tc.build(newTrSpy(log, tc.src)).Subscribe(p)
	if diff := cmp.Diff(tc.want, log.get()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
}

func TestTake(t *testing.T) {
	take := func(n int64) func(flow.Publisher[int]) flow.Publisher[int] {
		return func(s flow.Publisher[int]) flow.Publisher[int] { return operators.Take(s, n) }
	}
	tests := []trDemandCase{
		{
			name: "zero completes at once and cancels upstream", src: sources.Range(1, 10), build: take(0), first: 5,
			want: []string{"OnSubscribe", "up.Cancel", "OnComplete"},
		},
		{
			name: "unbounded demand requests exactly n", src: sources.Range(1, 10), build: take(3), first: flow.Unbounded,
			want: []string{"OnSubscribe", "up.Request(3)", "OnNext(1)", "OnNext(2)", "up.Cancel", "OnNext(3)", "OnComplete"},
		},
		{
			name: "exactly n requested", src: sources.Range(1, 10), build: take(3), first: 3,
			want: []string{"OnSubscribe", "up.Request(3)", "OnNext(1)", "OnNext(2)", "up.Cancel", "OnNext(3)", "OnComplete"},
		},
		{
			name: "one at a time, nothing forwarded past n", src: sources.Range(1, 10), build: take(3), first: 1, each: 1,
			want: []string{"OnSubscribe", "up.Request(1)", "OnNext(1)", "up.Request(1)", "OnNext(2)", "up.Request(1)",
				"up.Cancel", "OnNext(3)", "OnComplete"},
		},
		{
			name: "request is cut to what remains", src: sources.Range(1, 10), build: take(5), first: 2, each: 2,
			want: []string{"OnSubscribe", "up.Request(2)", "OnNext(1)", "up.Request(2)", "OnNext(2)", "up.Request(1)",
				"OnNext(3)", "OnNext(4)", "up.Cancel", "OnNext(5)", "OnComplete"},
		},
		{
			name: "n larger than the stream", src: sources.Range(1, 3), build: take(20), first: flow.Unbounded,
			want: []string{"OnSubscribe", "up.Request(20)", "OnNext(1)", "OnNext(2)", "OnNext(3)", "OnComplete"},
		},
		{
			name: "n equal to the stream", src: sources.Range(1, 3), build: take(3), first: 10,
			want: []string{"OnSubscribe", "up.Request(3)", "OnNext(1)", "OnNext(2)", "up.Cancel", "OnNext(3)", "OnComplete"},
		},
		{
			name: "empty source", src: sources.Empty[int](), build: take(2), first: 1,
			want: []string{"OnSubscribe", "up.Request(1)", "OnComplete"},
		},
		{
			name: "zero on an empty source", src: sources.Empty[int](), build: take(0), first: 1,
			want: []string{"OnSubscribe", "up.Cancel", "OnComplete"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

func TestTakeCancelledDuringLastItem(t *testing.T) {
	// A downstream that cancels while it receives the n-th item gets no
	// OnComplete. (Take has cancelled upstream already; the second Cancel
	// is downstream's, forwarded, and idempotent.)
	log := &trLog{}
	p := newTrProbe[int](t, log)
	p.onSubscribe = trRequestFirst[int](flow.Unbounded)
	p.onNext = func(p *trProbe[int], v int) {
		if v == 2 {
			p.sub.Cancel()
		}
	}
	operators.Take(newTrSpy(log, sources.Range(1, 10)), 2).Subscribe(p)
	want := []string{"OnSubscribe", "up.Request(2)", "OnNext(1)", "up.Cancel", "OnNext(2)", "up.Cancel"}
	if diff := cmp.Diff(want, log.get()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
}

func TestTakeBadRequestDuringLastItem(t *testing.T) {
	// Request(0) while the n-th item is delivered: upstream is already
	// cancelled and ignores it, so Take itself ends with the rule 3.9 error
	// instead of completing.
	log := &trLog{}
	p := newTrProbe[int](t, log)
	p.onSubscribe = trRequestFirst[int](5)
	p.onNext = func(p *trProbe[int], v int) {
		if v == 2 {
			p.request(-7)
		}
	}
	operators.Take(newTrSpy(log, sources.Range(1, 10)), 2).Subscribe(p)
	want := []string{"OnSubscribe", "up.Request(2)", "OnNext(1)", "up.Cancel", "OnNext(2)", "up.Request(-7)",
		"OnError(sluice: non-positive subscription request (rule 3.9): Request(-7))"}
	if diff := cmp.Diff(want, log.get()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
}

func TestTakeConcurrentRequestsNeverExceedN(t *testing.T) {
	// Four goroutines request one item at a time, 400 times each; Take(1000)
	// must forward exactly 1000 in all and deliver 1..1000.
	spy := newTrSpy(nil, sources.Range(1, 1_000_000))
	p := newTrProbe[int](t, nil)
	p.quiet = true
	operators.Take(spy, 1000).Subscribe(p)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 400 {
				p.request(1)
			}
		})
	}
	wg.Wait()
	<-p.done
	var total int64
	for _, r := range spy.Requests() {
		total += r
	}
	if total != 1000 {
		t.Errorf("requested %d upstream, want 1000", total)
	}
	if diff := cmp.Diff(trInts(1, 1000), p.Items()); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
	if got := spy.Cancels(); got != 1 {
		t.Errorf("%d upstream cancels, want 1", got)
	}
}

func TestSkip(t *testing.T) {
	skip := func(n int64) func(flow.Publisher[int]) flow.Publisher[int] {
		return func(s flow.Publisher[int]) flow.Publisher[int] { return operators.Skip(s, n) }
	}
	tests := []trDemandCase{
		{
			name: "first request carries the skipped items", src: sources.Range(1, 5), build: skip(2), first: 1, each: 1,
			want: []string{"OnSubscribe", "up.Request(3)", "OnNext(3)", "up.Request(1)", "OnNext(4)", "up.Request(1)",
				"OnNext(5)", "up.Request(1)", "OnComplete"},
		},
		{
			name: "n larger than the stream", src: sources.Range(1, 5), build: skip(10), first: 1,
			want: []string{"OnSubscribe", "up.Request(11)", "OnComplete"},
		},
		{
			name: "unbounded saturates", src: sources.Range(1, 5), build: skip(3), first: flow.Unbounded,
			want: []string{"OnSubscribe", "up.Request(9223372036854775807)", "OnNext(4)", "OnNext(5)", "OnComplete"},
		},
		{
			name: "a bad first request does not carry them", src: sources.Range(1, 5), build: skip(2), first: 0,
			want: []string{"OnSubscribe", "up.Request(0)",
				"OnError(sluice: non-positive subscription request (rule 3.9): Request(0))"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
	t.Run("zero returns the source", func(t *testing.T) {
		src := sources.Range(1, 5)
		if got := operators.Skip(src, 0); got != src {
			t.Errorf("Skip(src, 0) = %v, want src", got)
		}
	})
}

func TestTakeWhile(t *testing.T) {
	below := func(n int) func(flow.Publisher[int]) flow.Publisher[int] {
		return func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.TakeWhile(s, func(v int) bool { return v < n })
		}
	}
	tests := []trDemandCase{
		{
			name: "stops at the first false and cancels", src: sources.Range(1, 10), build: below(4), first: flow.Unbounded,
			want: []string{"OnSubscribe", "up.Request(9223372036854775807)", "OnNext(1)", "OnNext(2)", "OnNext(3)",
				"up.Cancel", "OnComplete"},
		},
		{
			name: "false on the first item", src: sources.Range(1, 10), build: below(0), first: 2,
			want: []string{"OnSubscribe", "up.Request(2)", "up.Cancel", "OnComplete"},
		},
		{
			name: "true throughout", src: sources.Range(1, 3), build: below(100), first: 1, each: 1,
			want: []string{"OnSubscribe", "up.Request(1)", "OnNext(1)", "up.Request(1)", "OnNext(2)", "up.Request(1)",
				"OnNext(3)", "up.Request(1)", "OnComplete"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}
