package operators_test

// Tests of FlatMap's inline path: an inner publisher that is a bounded
// fused loop (Range, Slice, Just, and Map, MapErr, Filter and Tap over
// them) runs on the outer source's goroutine when downstream's demand
// covers it. Each test runs the same inners twice, as they are and
// wrapped in a flow.PublisherFunc that only delegates Subscribe (so
// FlatMap cannot see the loop and subscribes as it always did), and
// requires the same signals, errors, drops and outer requests of both.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sources"
)

// fmSubscribed hides the fused loop of pub: FlatMap subscribes to it.
func fmSubscribed[T any](pub flow.Publisher[T]) flow.Publisher[T] {
	return flow.PublisherFunc[T](pub.Subscribe)
}

// fmInFusedLoop reports whether its caller runs inside a fused loop: an
// inner publisher that FlatMap runs inline. A subscribed Range emits from
// its Subscription, never from FusedLoop.
func fmInFusedLoop() bool {
	pcs := make([]uintptr, 128)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if strings.Contains(f.Function, ".FusedLoop") {
			return true
		}
		if !more {
			return false
		}
	}
}

// fmRun is the record of one FlatMap run.
type fmRun struct {
	Items    []int
	Outcome  string
	Requests []int64 // from the outer source
	Cancels  int     // of the outer source
	Drops    []btDrop[int]
	inline   []bool // per item: delivered from inside a fused loop
}

// fmDemand drives a subscriber: how much it requests, and when.
type fmDemand struct {
	name    string
	initial int64
	each    int64 // RequestOnNext; 0 for none
	burst   int64 // the test requests burst at a time until the end; 0 for none
	cancel  int64 // CancelAfter; 0 for none
}

var fmDemands = []fmDemand{
	{name: "one at a time", initial: 1, each: 1},
	{name: "bursts of 7", burst: 7},
	{name: "unbounded", initial: flow.Unbounded},
}

// fmFlatMap runs FlatMap over an outer btSource of n items, with inner(v)
// as the inner publisher of v, wrapped so that it is subscribed when
// subscribed is set, under the demand d.
func fmFlatMap(t *testing.T, n int, inner func(v int) flow.Publisher[int], subscribed bool, d fmDemand,
	opts ...operators.Option) fmRun {
	t.Helper()
	outer := &btSource{n: n}
	drops := &btDrops[int]{}
	f := inner
	if subscribed {
		f = func(v int) flow.Publisher[int] { return fmSubscribed(inner(v)) }
	}
	var fopts []flowtest.Option
	if d.each > 0 {
		fopts = append(fopts, flowtest.RequestOnNext(d.each))
	}
	if d.cancel > 0 {
		fopts = append(fopts, flowtest.CancelAfter(d.cancel))
	}
	var inline []bool
	rec := btHook(flowtest.NewSubscriber[int](t, d.initial, fopts...), func(int) {
		inline = append(inline, fmInFusedLoop())
	})
	operators.FlatMap(outer, f, append(opts, operators.OnDrop(drops.Hook))...).Subscribe(rec)
	if d.burst > 0 {
		for i := 0; !rec.Terminated() && i < 100_000; i++ {
			rec.Request(d.burst)
		}
	}
	if d.cancel == 0 {
		btAwait(t, rec.Subscriber)
	}
	return fmRun{btItems(rec.Subscriber), rec.Outcome(), outer.Requests(), outer.Cancels(), drops.All(), inline}
}

// fmCompare runs inner both ways and requires the same record of both;
// it returns the record of the inline way.
func fmCompare(t *testing.T, n int, inner func(v int) flow.Publisher[int], d fmDemand,
	opts ...operators.Option) fmRun {
	t.Helper()
	fast := fmFlatMap(t, n, inner, false, d, opts...)
	slow := fmFlatMap(t, n, inner, true, d, opts...)
	if diff := cmp.Diff(slow, fast, cmpopts.IgnoreUnexported(fmRun{})); diff != "" {
		t.Errorf("inline path differs from the subscribed path (-subscribed +inline)\n%s", diff)
	}
	if slices.Contains(slow.inline, true) {
		t.Errorf("the subscribed path delivered from a fused loop")
	}
	return fast
}

// fmAll reports whether every item was delivered inline (want) or none
// was (!want).
func fmAll(inline []bool, want bool) bool {
	for _, b := range inline {
		if b != want {
			return false
		}
	}
	return true
}

func TestFlatMapInlineDeliversTheSameItems(t *testing.T) {
	// Inner v yields v*1000, v*1000+1, …: size items in all.
	kinds := []struct {
		name  string
		inner func(v, size int) flow.Publisher[int]
		bound func(size int) int
	}{
		{"Range", func(v, size int) flow.Publisher[int] { return sources.Range(v*1000, size) },
			func(size int) int { return size }},
		{"Just", func(v, size int) flow.Publisher[int] { return sources.Just(btInts(v*1000, v*1000+size)...) },
			func(size int) int { return size }},
		{"Map", func(v, size int) flow.Publisher[int] {
			return operators.Map(sources.Range(0, size), func(i int) int { return v*1000 + i })
		}, func(size int) int { return size }},
		{"Filter/Tap/MapErr", func(v, size int) flow.Publisher[int] {
			// Twice the items, half of them filtered out: the bound is 2*size.
			even := operators.Filter(sources.Range(0, 2*size), func(i int) bool { return i%2 == 0 })
			halved := operators.MapErr(even, func(i int) (int, error) { return v*1000 + i/2, nil })
			return operators.Tap(halved, func(int) {})
		}, func(size int) int { return 2 * size }},
	}
	for _, size := range []int{0, 1, 3, 1000} {
		n := 40
		if size == 1000 {
			n = 4
		}
		var want []int
		for v := range n {
			want = append(want, btInts(v*1000, v*1000+size)...)
		}
		for _, k := range kinds {
			for _, d := range fmDemands {
				for _, ordered := range []bool{false, true} {
					t.Run(fmt.Sprintf("size=%d/%s/%s/ordered=%v", size, k.name, d.name, ordered), func(t *testing.T) {
						var opts []operators.Option
						if ordered {
							opts = append(opts, operators.Ordered())
						}
						got := fmCompare(t, n, func(v int) flow.Publisher[int] { return k.inner(v, size) }, d, opts...)
						items := got.Items
						if !ordered {
							// Interleaved, as the round-robin drain serves the
							// queued inners; each inner's items in order.
							for src, vs := range fiPerSource(items) {
								if !slices.IsSorted(vs) {
									t.Errorf("inner %d out of order: %v", src, vs)
								}
							}
							items = fiSorted(items)
						}
						if diff := cmp.Diff(want, items); diff != "" || got.Outcome != "complete" {
							t.Errorf("outcome %s, items (-want +got)\n%s", got.Outcome, diff)
						}
						if got.Drops != nil {
							t.Errorf("drops %v", got.Drops)
						}
						// Which way the inners went: inline exactly when the
						// demand at hand covers the bound.
						switch {
						case d.burst > 0 && k.bound(size) > int(d.burst):
							if !fmAll(got.inline, false) {
								t.Errorf("an inner of bound %d > demand %d ran inline", k.bound(size), d.burst)
							}
						case d.initial == flow.Unbounded || (d.each > 0 && k.bound(size) <= int(d.each)):
							if !fmAll(got.inline, true) {
								t.Errorf("inline per item %v, want every item inline", got.inline)
							}
						case d.each > 0:
							if !fmAll(got.inline, false) {
								t.Errorf("an inner of bound %d > demand %d ran inline", k.bound(size), d.each)
							}
						}
					})
				}
			}
		}
	}
}

// fmPanicking builds the inner publishers of the panic tests: inner v
// emits v*10, v*10+1, v*10+2, and the stage under test panics on 21.
var fmPanicking = []struct {
	name  string
	inner func(v int) flow.Publisher[int]
	err   string // "" when the stage has a derived name
}{
	{"Map", func(v int) flow.Publisher[int] {
		return operators.Map(sources.Range(v*10, 3), fmPanicOn21, operators.Name("m"))
	}, "m: sluice: panic: bad 21"},
	{"Map derived name", func(v int) flow.Publisher[int] {
		return operators.Map(sources.Range(v*10, 3), fmPanicOn21)
	}, ""},
	{"Map over Map, the lower one panics", func(v int) flow.Publisher[int] {
		low := operators.Map(sources.Range(v*10, 3), fmPanicOn21, operators.Name("low"))
		return operators.Map(low, func(i int) int { return i }, operators.Name("high"))
	}, "low: sluice: panic: bad 21"},
	{"Map over Map, the higher one panics", func(v int) flow.Publisher[int] {
		low := operators.Map(sources.Range(v*10, 3), func(i int) int { return i }, operators.Name("low"))
		return operators.Map(low, fmPanicOn21, operators.Name("high"))
	}, "high: sluice: panic: bad 21"},
	{"Filter over Map, f panics", func(v int) flow.Publisher[int] {
		m := operators.Map(sources.Slice([]int{v * 10, v*10 + 1, v*10 + 2}), fmPanicOn21, operators.Name("m"))
		return operators.Filter(m, func(int) bool { return true }, operators.Name("f"))
	}, "m: sluice: panic: bad 21"},
	{"Filter over Map, keep panics", func(v int) flow.Publisher[int] {
		m := operators.Map(sources.Range(v*10, 3), func(i int) int { return i }, operators.Name("m"))
		return operators.Filter(m, func(i int) bool { fmPanicOn21(i); return true }, operators.Name("f"))
	}, "f: sluice: panic: bad 21"},
	{"Tap", func(v int) flow.Publisher[int] {
		return operators.Tap(sources.Range(v*10, 3), func(i int) { fmPanicOn21(i) }, operators.Name("t"))
	}, "t: sluice: panic: bad 21"},
	{"MapErr", func(v int) flow.Publisher[int] {
		return operators.MapErr(sources.Range(v*10, 3), func(i int) (int, error) { return fmPanicOn21(i), nil },
			operators.Name("me"))
	}, "me: sluice: panic: bad 21"},
}

func fmPanicOn21(i int) int {
	if i == 21 {
		panic(fmt.Sprintf("bad %d", i))
	}
	return i
}

func TestFlatMapInlinePanicIsTheSubscribedPathsError(t *testing.T) {
	for _, tt := range fmPanicking {
		for _, delay := range []bool{false, true} {
			for _, ordered := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/DelayError(%v)/ordered=%v", tt.name, delay, ordered), func(t *testing.T) {
					inners := make([]flow.Publisher[int], 5) // built once: a derived name is the same both ways
					for v := range inners {
						inners[v] = tt.inner(v)
					}
					opts := []operators.Option{operators.DelayError(delay)}
					if ordered {
						opts = append(opts, operators.Ordered())
					}
					got := fmCompare(t, len(inners), func(v int) flow.Publisher[int] { return inners[v] },
						fmDemand{initial: flow.Unbounded}, opts...)
					want := tt.err
					if want == "" {
						want = strings.SplitN(fmError(t, inners[2]), ":", 2)[0] + ": sluice: panic: bad 21"
					}
					if got.Outcome != "error: "+want {
						t.Errorf("outcome %q, want error: %s", got.Outcome, want)
					}
					if diff := cmp.Diff([]int{0, 1, 2, 10, 11, 12, 20}, got.Items); diff != "" {
						t.Errorf("items (-want +got)\n%s", diff)
					}
					if got.Cancels != 1 || !fmAll(got.inline, true) {
						t.Errorf("outer cancelled %d times, inline %v", got.Cancels, got.inline)
					}
				})
			}
		}
	}
	t.Run("the error is a *flow.PanicError", func(t *testing.T) {
		_, err := fiCollect(t, operators.FlatMap(sources.Range(0, 5), fmPanicking[0].inner))
		var pe *flow.PanicError
		if !errors.As(err, &pe) || pe.Value != "bad 21" {
			t.Errorf("error %v, want a *flow.PanicError of bad 21", err)
		}
	})
}

// fmError returns the error that pub ends with when collected alone.
func fmError(t *testing.T, pub flow.Publisher[int]) string {
	t.Helper()
	_, err := fiCollect(t, pub)
	if err == nil {
		t.Fatalf("no error")
	}
	return err.Error()
}

func TestFlatMapInlineInnerError(t *testing.T) {
	inner := func(v int) flow.Publisher[int] {
		return operators.MapErr(sources.Range(v*10, 3), func(i int) (int, error) {
			if i == 21 {
				return 0, errBoom
			}
			return i, nil
		}, operators.Name("me"))
	}
	for _, delay := range []bool{false, true} {
		for _, d := range fmDemands {
			t.Run(fmt.Sprintf("DelayError(%v)/%s", delay, d.name), func(t *testing.T) {
				got := fmCompare(t, 5, inner, d, operators.DelayError(delay))
				if got.Outcome != "error: me: boom" || got.Cancels != 1 {
					t.Errorf("outcome %q, outer cancelled %d times", got.Outcome, got.Cancels)
				}
				want := []int{0, 1, 2, 10, 11, 12, 20}
				if d.burst > 0 && !delay {
					// Before the first Request every inner has queued its
					// items; the error drops them.
					if diff := cmp.Diff(btDropsOf(flow.ReasonCancelled, want...), got.Drops); diff != "" {
						t.Errorf("drops (-want +got)\n%s", diff)
					}
					want = nil
				}
				if diff := cmp.Diff(want, got.Items); diff != "" {
					t.Errorf("items (-want +got)\n%s", diff)
				}
			})
		}
	}
	t.Run("errors.Is", func(t *testing.T) {
		_, err := fiCollect(t, operators.FlatMap(sources.Range(0, 5), inner))
		if !errors.Is(err, errBoom) {
			t.Errorf("error %v does not match errBoom", err)
		}
	})
}

func TestFlatMapInlineCancel(t *testing.T) {
	inner := func(v int) flow.Publisher[int] { return sources.Range(v*10, 3) }
	for _, at := range []int64{1, 2, 3, 4, 8} {
		for _, ordered := range []bool{false, true} {
			t.Run(fmt.Sprintf("after %d/ordered=%v", at, ordered), func(t *testing.T) {
				var opts []operators.Option
				if ordered {
					opts = append(opts, operators.Ordered())
				}
				got := fmCompare(t, 5, inner, fmDemand{initial: flow.Unbounded, cancel: at}, opts...)
				want := []int{0, 1, 2, 10, 11, 12, 20, 21, 22}[:at]
				if diff := cmp.Diff(want, got.Items); diff != "" || got.Outcome != "open" || got.Cancels != 1 {
					t.Errorf("outcome %s, outer cancelled %d times, items (-want +got)\n%s", got.Outcome, got.Cancels, diff)
				}
				if got.Drops != nil || !fmAll(got.inline, true) {
					t.Errorf("drops %v, inline %v", got.Drops, got.inline)
				}
			})
		}
	}
	// A fused Filter that rejects items stops at the first rejection after
	// the cancel, as the subscribed Range stops; an item kept after the
	// cancel is dropped, as the subscribed path drops it from the ring.
	for _, keepIt := range []bool{false, true} {
		t.Run(fmt.Sprintf("from a Filter's keep, kept=%v", keepIt), func(t *testing.T) {
			run := func(subscribed bool) (calls int, r fmRun) {
				var cancel func()
				inner := func(v int) flow.Publisher[int] {
					return operators.Filter(sources.Range(v*10, 5), func(i int) bool {
						calls++
						if i == 12 {
							cancel()
							return keepIt
						}
						return i%2 == 0
					})
				}
				outer := &btSource{n: 5}
				drops := &btDrops[int]{}
				f := inner
				if subscribed {
					f = func(v int) flow.Publisher[int] { return fmSubscribed(inner(v)) }
				}
				rec := flowtest.NewSubscriber[int](t, flow.Unbounded)
				cancel = rec.Cancel
				operators.FlatMap(outer, f, operators.OnDrop(drops.Hook)).Subscribe(rec)
				return calls, fmRun{Items: btItems(rec), Outcome: rec.Outcome(), Requests: outer.Requests(),
					Cancels: outer.Cancels(), Drops: drops.All()}
			}
			fastCalls, fast := run(false)
			slowCalls, slow := run(true)
			if diff := cmp.Diff(slow, fast, cmpopts.IgnoreUnexported(fmRun{})); diff != "" || fastCalls != slowCalls {
				t.Errorf("keep called %d times inline, %d subscribed; (-subscribed +inline)\n%s", fastCalls, slowCalls, diff)
			}
			var wantDrops []btDrop[int]
			if keepIt {
				wantDrops = btDropsOf(flow.ReasonCancelled, 12)
			}
			if diff := cmp.Diff(wantDrops, fast.Drops); diff != "" || fastCalls != 8 {
				t.Errorf("keep called %d times, want 8; drops (-want +got)\n%s", fastCalls, diff)
			}
		})
	}
}

func TestFlatMapInlineNonPositiveRequest(t *testing.T) {
	inner := func(v int) flow.Publisher[int] { return sources.Just(v*10, v*10+1) }
	run := func(subscribed bool) fmRun {
		outer := &btSource{n: 5}
		f := inner
		if subscribed {
			f = func(v int) flow.Publisher[int] { return fmSubscribed(inner(v)) }
		}
		var rec *btHooked[int]
		rec = btHook(flowtest.NewSubscriber[int](t, flow.Unbounded), func(v int) {
			if v == 10 {
				rec.Request(0)
			}
		})
		operators.FlatMap(outer, f).Subscribe(rec)
		btAwait(t, rec.Subscriber)
		return fmRun{Items: btItems(rec.Subscriber), Outcome: rec.Outcome(), Requests: outer.Requests(), Cancels: outer.Cancels()}
	}
	fast, slow := run(false), run(true)
	if diff := cmp.Diff(slow, fast, cmpopts.IgnoreUnexported(fmRun{})); diff != "" {
		t.Errorf("(-subscribed +inline)\n%s", diff)
	}
	want := fmRun{Items: []int{0, 1, 10}, Outcome: "error: " + flow.NonPositiveRequestError(0).Error(),
		Requests: []int64{16, 1}, Cancels: 1}
	if diff := cmp.Diff(want, fast, cmpopts.IgnoreUnexported(fmRun{})); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// Inners run inline on whichever goroutine runs the outer's OnNext, while
// downstream requests from another: every item exactly once, the items of
// an inner in order, never beyond demand (the flowtest.Subscriber checks
// rule 1.1 and serial delivery), and in outer order with Ordered.
func TestFlatMapInlineConcurrentDemand(t *testing.T) {
	pool := scheduler.NewPool(2)
	t.Cleanup(func() { pool.Close() })
	const n = 3000
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			opts := []operators.Option{operators.Concurrency(4), operators.Prefetch(4)}
			if ordered {
				opts = append(opts, operators.Ordered())
			}
			outer := operators.PublishOn(sources.Range(0, n), pool)
			pub := operators.FlatMap(outer, func(v int) flow.Publisher[int] {
				return operators.Map(sources.Range(0, v%4), func(i int) int { return v*10 + i })
			}, opts...)
			rec := flowtest.NewSubscriber[int](t, 0, btWait)
			pub.Subscribe(rec)
			rng := rand.New(rand.NewPCG(1, 2))
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !rec.Terminated() && i < 1_000_000; i++ {
					rec.Request(int64(rng.IntN(6) + 1))
					runtime.Gosched()
				}
			}()
			btAwait(t, rec)
			wg.Wait()
			var want []int
			for v := range n {
				for i := range v % 4 {
					want = append(want, v*10+i)
				}
			}
			got := btItems(rec)
			if !ordered {
				got = fiSorted(got)
			}
			if diff := cmp.Diff(want, got); diff != "" || !rec.Completed() {
				t.Errorf("outcome %s, items (-want +got)\n%s", rec.Outcome(), diff)
			}
		})
	}
}

// An inner run inline allocates nothing of its own: per item of the outer
// source, only what f allocates (here the boxed Range, one object).
func TestFlatMapInlineAllocations(t *testing.T) {
	const n = 1000
	pub := operators.FlatMap(sources.Range(0, n), func(v int) flow.Publisher[int] { return sources.Range(v, 1) })
	sub := &fmCounter{}
	allocs := testing.AllocsPerRun(5, func() {
		sub.n = 0
		pub.Subscribe(sub)
		if sub.n != n {
			t.Fatalf("%d items", sub.n)
		}
	})
	if allocs > n+50 {
		t.Errorf("%.0f allocations for %d inner publishers, want at most %d", allocs, n, n+50)
	}
}

// fmCounter counts items under unbounded demand.
type fmCounter struct{ n int }

func (c *fmCounter) OnSubscribe(s flow.Subscription) { s.Request(flow.Unbounded) }
func (c *fmCounter) OnNext(int)                      { c.n++ }
func (c *fmCounter) OnError(err error)               { panic(err) }
func (c *fmCounter) OnComplete()                     {}

// With Ordered, an inner runs inline only when no earlier one is live or
// queued: here inner 0 is a manual publisher still running when inner 1,
// a Just, arrives, so inner 1 is subscribed and waits behind it.
func TestFlatMapInlineOrderedWaitsForEarlierInners(t *testing.T) {
	for _, subscribed := range []bool{false, true} {
		t.Run(fmt.Sprintf("subscribed=%v", subscribed), func(t *testing.T) {
			first := &fiManual[int]{}
			outer := &btSource{n: 3}
			var inline []bool
			rec := btHook(flowtest.NewSubscriber[int](t, flow.Unbounded), func(int) {
				inline = append(inline, fmInFusedLoop())
			})
			operators.FlatMap(outer, func(v int) flow.Publisher[int] {
				if v == 0 {
					return first
				}
				pub := sources.Just(v*10, v*10+1)
				if subscribed {
					return fmSubscribed(pub)
				}
				return pub
			}, operators.Ordered()).Subscribe(rec)
			got := []string{line(btItems(rec.Subscriber), outer.Requests())}
			first.Push(1, 2)
			first.End(nil)
			got = append(got, line(btItems(rec.Subscriber), outer.Requests(), rec.Outcome()))
			want := []string{"[] [16]", "[1 2 10 11 20 21] [16 3] complete"}
			if diff := cmp.Diff(want, got); diff != "" || slices.Contains(inline, true) {
				t.Errorf("inline %v; (-want +got)\n%s", inline, diff)
			}
		})
	}
}

// A panic in downstream's OnNext (a rule 2.13 violation) is not a fused
// layer's: it propagates to the caller, as from a subscribed inner.
func TestFlatMapInlineDownstreamPanicPropagates(t *testing.T) {
	for _, subscribed := range []bool{false, true} {
		t.Run(fmt.Sprintf("subscribed=%v", subscribed), func(t *testing.T) {
			pub := operators.FlatMap(sources.Range(0, 3), func(v int) flow.Publisher[int] {
				if subscribed {
					return fmSubscribed(sources.Range(v, 1))
				}
				return sources.Range(v, 1)
			})
			sub := flow.SubscriberFuncs[int]{
				Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) },
				Next: func(v int) {
					if v == 1 {
						panic("downstream")
					}
				},
			}
			err := flow.Catch(func() { pub.Subscribe(sub) })
			var pe *flow.PanicError
			if !errors.As(err, &pe) || pe.Value != "downstream" {
				t.Errorf("Subscribe raised %v, want the panic downstream", err)
			}
		})
	}
}
