package operators_test

// Tests of the hand-over of runs of items between sluice's own stages
// (internal/stage.BatchSubscriber): every stage that passes runs must
// produce exactly the signals it produces item by item, whether its
// downstream takes runs or single items.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/internal/stage/stagetest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sources"
)

// TestRunsConformance verifies the stages that hand over runs against a
// downstream that takes them.
func TestRunsConformance(t *testing.T) {
	even := func(v int) bool { return v%2 == 0 }
	for sname, s := range asyncSchedulers(t) {
		for _, tc := range []struct {
			name string
			new  func(n int64) flow.Publisher[int]
			max  int64
		}{
			{"PublishOn(Range)", func(n int64) flow.Publisher[int] {
				return operators.PublishOn(sources.Range(0, int(n)), s)
			}, 0},
			{"PublishOn(PublishOn(Range))", func(n int64) flow.Publisher[int] {
				return operators.PublishOn(operators.PublishOn(sources.Range(0, int(n)), s), s, operators.Prefetch(5))
			}, 0},
			{"Map(PublishOn(Range))", func(n int64) flow.Publisher[int] {
				return operators.Map(operators.PublishOn(sources.Range(0, int(n)), s), func(v int) int { return v + 1 })
			}, 0},
			{"Filter(PublishOn(Range))", func(n int64) flow.Publisher[int] {
				return operators.Filter(operators.PublishOn(sources.Range(0, int(2*n)), s), even)
			}, 1 << 40},
			{"MapErr(PublishOn(Range))", func(n int64) flow.Publisher[int] {
				return operators.MapErr(operators.PublishOn(sources.Range(0, int(n)), s), func(v int) (int, error) { return v, nil })
			}, 0},
			{"Tap(PublishOn(Range))", func(n int64) flow.Publisher[int] {
				return operators.Tap(operators.PublishOn(sources.Range(0, int(n)), s), func(int) {})
			}, 0},
			{"Filter(Map(PublishOn(Range)))", func(n int64) flow.Publisher[int] {
				return operators.Filter(operators.Map(operators.PublishOn(sources.Range(0, int(2*n)), s), func(v int) int { return v + 1 }), even)
			}, 1 << 40},
			{"Map(Filter(PublishOn(Range)))", func(n int64) flow.Publisher[int] {
				return operators.Map(operators.Filter(operators.PublishOn(sources.Range(0, int(2*n)), s), even), func(v int) int { return v + 1 })
			}, 1 << 40},
		} {
			t.Run(sname+"/"+tc.name, func(t *testing.T) {
				var used []*stagetest.Runs[int]
				var mu sync.Mutex
				flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
					New: func(n int64) flow.Publisher[int] {
						p := stagetest.TakeRuns(tc.new(n))
						mu.Lock()
						used = append(used, p)
						mu.Unlock()
						return p
					},
					MaxElements: tc.max,
					Timeout:     5 * time.Second,
				})
				var runs int64
				mu.Lock()
				defer mu.Unlock()
				for _, p := range used {
					p.Check(t, false)
					runs += p.Runs.Load()
				}
				if runs == 0 {
					t.Error("no publisher handed over a run")
				}
			})
		}
	}
}

// chainRecorder requests in a scripted pattern from its own OnNext (the
// next chunk once the outstanding demand is used up) and records what it
// gets.
type chainRecorder struct {
	chunks []int64 // request sizes, cycled
	next   int
	left   int64
	sub    flow.Subscription
	items  []int
	err    error
	done   chan struct{}
}

func newChainRecorder(chunks ...int64) *chainRecorder {
	return &chainRecorder{chunks: chunks, done: make(chan struct{})}
}

func (r *chainRecorder) request() {
	n := r.chunks[r.next%len(r.chunks)]
	r.next++
	r.left = n
	r.sub.Request(n)
}
func (r *chainRecorder) OnSubscribe(s flow.Subscription) { r.sub = s; r.request() }
func (r *chainRecorder) OnNext(v int) {
	r.items = append(r.items, v)
	if r.left != flow.Unbounded {
		if r.left--; r.left == 0 {
			r.request()
		}
	}
}
func (r *chainRecorder) OnError(err error) { r.err = err; close(r.done) }
func (r *chainRecorder) OnComplete()       { close(r.done) }

func (r *chainRecorder) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end")
	}
}

// TestRunsChainExact runs the async chain of the performance budget, with
// runs between every stage, under several demand patterns, and checks
// the exact items against the chain computed by hand, for a downstream
// that takes runs and for one that takes single items.
func TestRunsChainExact(t *testing.T) {
	const n = 5000
	double := func(v int) int { return v * 2 }
	keep := func(v int) bool { return v%3 != 0 }
	var want []int
	for i := range n {
		if v := double(i); keep(v) {
			want = append(want, v)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]int64, 40)
	for i := range random {
		random[i] = 1 + rng.Int64N(300)
	}
	patterns := map[string][]int64{
		"unbounded": {flow.Unbounded},
		"one":       {1},
		"7":         {7},
		"1000":      {1000},
		"random":    random,
	}
	for sname, s := range asyncSchedulers(t) {
		for pname, chunks := range patterns {
			for _, runs := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/runs=%v", sname, pname, runs), func(t *testing.T) {
					pub := operators.PublishOn(
						operators.Filter(
							operators.PublishOn(
								operators.Map(operators.PublishOn(sources.Range(0, n), s), double),
								s, operators.Prefetch(64)),
							keep),
						s, operators.Prefetch(16))
					rec := newChainRecorder(chunks...)
					if runs {
						tp := stagetest.TakeRuns(pub)
						tp.Subscribe(rec)
						rec.wait(t)
						tp.Check(t, true)
					} else {
						pub.Subscribe(rec)
						rec.wait(t)
					}
					if rec.err != nil {
						t.Fatalf("error %v", rec.err)
					}
					if diff := cmp.Diff(want, rec.items); diff != "" {
						t.Errorf("items (-want +got)\n%s", diff)
					}
				})
			}
		}
	}
}

// TestRunsUserPanic checks that a panic in the function of Map or Filter,
// in the middle of a run, delivers the items before it and then the
// error, exactly as item by item, whatever the downstream takes.
func TestRunsUserPanic(t *testing.T) {
	tens := func(at int) func(int) int {
		return func(v int) int {
			if v == at {
				panic("five")
			}
			return v * 10
		}
	}
	keepAt := func(at, mod int) func(int) bool {
		return func(v int) bool {
			if v == at {
				panic("five")
			}
			return v%mod == 0
		}
	}
	for _, tc := range []struct {
		name  string
		stage func(flow.Publisher[int]) flow.Publisher[int]
		want  []int
		who   string // the stage the error names
	}{
		{"Map", func(p flow.Publisher[int]) flow.Publisher[int] {
			return operators.Map(p, func(v int) int {
				if v == 5 {
					panic("five")
				}
				return v * 10
			}, operators.Name("tens"))
		}, []int{0, 10, 20, 30, 40}, "tens"},
		{"Filter", func(p flow.Publisher[int]) flow.Publisher[int] {
			return operators.Filter(p, func(v int) bool {
				if v == 5 {
					panic("five")
				}
				return v%2 == 0
			}, operators.Name("tens"))
		}, []int{0, 2, 4}, "tens"},
		{"MapErr panics", func(p flow.Publisher[int]) flow.Publisher[int] {
			return operators.MapErr(p, func(v int) (int, error) { return tens(5)(v), nil }, operators.Name("tens"))
		}, []int{0, 10, 20, 30, 40}, "tens"},
		{"Tap panics", func(p flow.Publisher[int]) flow.Publisher[int] {
			return operators.Tap(p, func(v int) { tens(5)(v) }, operators.Name("tens"))
		}, []int{0, 1, 2, 3, 4}, "tens"},
		// The fused pairs (fuse.go), with a panic in either function.
		{"Filter(Map), f panics", func(p flow.Publisher[int]) flow.Publisher[int] {
			return operators.Filter(operators.Map(p, tens(5), operators.Name("m")), keepAt(-1, 20), operators.Name("k"))
		}, []int{0, 20, 40}, "m"},
		{"Filter(Map), keep panics", func(p flow.Publisher[int]) flow.Publisher[int] {
			return operators.Filter(operators.Map(p, tens(-1), operators.Name("m")), keepAt(50, 20), operators.Name("k"))
		}, []int{0, 20, 40}, "k"},
		{"Map(Filter), keep panics", func(p flow.Publisher[int]) flow.Publisher[int] {
			return operators.Map(operators.Filter(p, keepAt(5, 2), operators.Name("k")), tens(-1), operators.Name("m"))
		}, []int{0, 20, 40}, "k"},
		{"Map(Filter), f panics", func(p flow.Publisher[int]) flow.Publisher[int] {
			return operators.Map(operators.Filter(p, keepAt(-1, 2), operators.Name("k")), tens(4), operators.Name("m"))
		}, []int{0, 20}, "m"},
	} {
		for _, runs := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/runs=%v", tc.name, runs), func(t *testing.T) {
				// PublishOn over Range hands the stage a run of all ten
				// items (direct mode, on the Immediate scheduler).
				up := stagetest.TakeRuns(operators.PublishOn(sources.Range(0, 10), scheduler.Immediate))
				var pub flow.Publisher[int] = tc.stage(up)
				var tp *stagetest.Runs[int]
				if runs {
					tp = stagetest.TakeRuns(pub)
					pub = tp
				}
				rec := flowtest.NewSubscriber[int](t, flow.Unbounded)
				pub.Subscribe(rec)
				if !rec.AwaitTerminated() {
					t.Fatal("no terminal signal")
				}
				if diff := cmp.Diff(tc.want, btItems(rec)); diff != "" {
					t.Errorf("items (-want +got)\n%s", diff)
				}
				var pe *flow.PanicError
				if err := rec.Err(); !errors.As(err, &pe) || pe.Value != "five" || !hasPrefix(err.Error(), tc.who+": ") {
					t.Errorf("error %v, want a *flow.PanicError of \"five\" from %s", err, tc.who)
				}
				up.Check(t, true)
				if tp != nil {
					tp.Check(t, true)
				}
				if v := rec.Violations(); len(v) != 0 {
					t.Errorf("violations: %v", v)
				}
			})
		}
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// TestRunsCancelStopsUserFunction checks that a stage taking a run from
// upstream but delivering item by item calls its function once per item
// delivered, and no more once downstream has cancelled: exactly as
// without runs.
func TestRunsCancelStopsUserFunction(t *testing.T) {
	for _, name := range []string{"Map", "Filter"} {
		t.Run(name, func(t *testing.T) {
			calls := 0
			up := stagetest.TakeRuns(operators.PublishOn(sources.Range(0, 100), scheduler.Immediate))
			var pub flow.Publisher[int]
			if name == "Map" {
				pub = operators.Map(up, func(v int) int { calls++; return v })
			} else {
				pub = operators.Filter(up, func(v int) bool { calls++; return true })
			}
			rec := flowtest.NewSubscriber[int](t, 50, flowtest.CancelAfter(3))
			pub.Subscribe(rec)
			if diff := cmp.Diff([]int{0, 1, 2}, btItems(rec)); diff != "" || calls != 3 {
				t.Errorf("function called %d times, want 3; items (-want +got)\n%s", calls, diff)
			}
			up.Check(t, true)
		})
	}
}

// TestRunsMapErrError checks that an error from MapErr's function in the
// middle of a run delivers the results before it, then the error, whatever
// the downstream takes.
func TestRunsMapErrError(t *testing.T) {
	boom := errors.New("boom")
	for _, runs := range []bool{false, true} {
		t.Run(fmt.Sprintf("runs=%v", runs), func(t *testing.T) {
			up := stagetest.TakeRuns(operators.PublishOn(sources.Range(0, 10), scheduler.Immediate))
			calls := 0
			var pub flow.Publisher[int] = operators.MapErr(up, func(v int) (int, error) {
				calls++
				if v == 6 {
					return 0, boom
				}
				return v + 100, nil
			}, operators.Name("parse"))
			if runs {
				pub = stagetest.TakeRuns(pub)
			}
			rec := flowtest.NewSubscriber[int](t, flow.Unbounded)
			pub.Subscribe(rec)
			if diff := cmp.Diff([]int{100, 101, 102, 103, 104, 105}, btItems(rec)); diff != "" {
				t.Errorf("items (-want +got)\n%s", diff)
			}
			if err := rec.Err(); !errors.Is(err, boom) || err.Error() != "parse: boom" || calls != 7 {
				t.Errorf("error %v after %d calls, want parse: boom after 7", err, calls)
			}
			up.Check(t, true)
		})
	}
}

// TestRunsOverflow checks that PublishOn counts and drops, with
// flow.ReasonOverflow, the items of a run beyond what it requested, and
// ends the stream with flow.ErrOverflow after the items it may deliver.
func TestRunsOverflow(t *testing.T) {
	for _, tc := range []struct{ sync, runs bool }{{false, false}, {false, true}, {true, false}, {true, true}} {
		sync := tc.sync
		t.Run(fmt.Sprintf("sync=%v/runs=%v", tc.sync, tc.runs), func(t *testing.T) {
			drops := &btDrops[int]{}
			// greedySub emits 5 items in one run, for a request of 4.
			greedy := flow.PublisherFunc[int](func(sub flow.Subscriber[int]) {
				if sync {
					sub.OnSubscribe(&greedySyncSub{greedySub{s: sub, runs: true}})
					return
				}
				sub.OnSubscribe(&greedySub{s: sub, runs: true})
			})
			var pub flow.Publisher[int] = operators.PublishOn(greedy, scheduler.Immediate,
				operators.Prefetch(4), operators.OnDrop(drops.Hook))
			if tc.runs {
				pub = stagetest.TakeRuns(pub)
			}
			rec := flowtest.NewSubscriber[int](t, flow.Unbounded)
			pub.Subscribe(rec)
			if !rec.AwaitTerminated() {
				t.Fatal("no terminal signal")
			}
			if err := rec.Err(); !errors.Is(err, flow.ErrOverflow) {
				t.Errorf("error %v, want flow.ErrOverflow", err)
			}
			// Direct mode delivers what it requested as it arrives. Queued,
			// the overflow ends the stream at once (stOverflow stops it), so
			// the queued items are dropped as cancelled, as item by item.
			wantItems := []int{0, 1, 2, 3}
			wantDrops := btDropsOf(flow.ReasonOverflow, 4)
			if !sync {
				wantItems = nil
				wantDrops = append(wantDrops, btDropsOf(flow.ReasonCancelled, 0, 1, 2, 3)...)
			}
			if diff := cmp.Diff(wantItems, btItems(rec)); diff != "" {
				t.Errorf("items (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(wantDrops, drops.All()); diff != "" {
				t.Errorf("drops (-want +got)\n%s", diff)
			}
		})
	}
}
