package operators_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/fuse"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// fusable is the loop-fusion interface of internal/fuse, seen from outside.
type fusable interface {
	FusedLoop(run *fuse.Run, yield func(int) bool) error
}

type outcome struct {
	Items []int
	Err   string
}

// collectBoth runs pub through the fused loop (default options) and
// through the subscription path (an explicit Prefetch turns fusion off).
func collectBoth(t *testing.T, pub flow.Publisher[int]) (fused, subscribed outcome) {
	t.Helper()
	if _, ok := pub.(fusable); !ok {
		t.Fatalf("%T does not run as a fused loop", pub)
	}
	run := func(opts ...sinks.Option) outcome {
		var o outcome
		err := sinks.ForEach(context.Background(), pub, func(v int) error { o.Items = append(o.Items, v); return nil }, opts...)
		if err != nil {
			o.Err = err.Error()
		}
		return o
	}
	return run(), run(sinks.Prefetch(16))
}

func TestLoopFusionMatchesSubscriptionPath(t *testing.T) {
	boom := errors.New("boom")
	double := func(v int) int { return v * 2 }
	odd := func(v int) bool { return v%2 == 1 }
	tests := []struct {
		name string
		pub  func() flow.Publisher[int]
		want outcome
	}{
		{"map", func() flow.Publisher[int] { return operators.Map(sources.Range(0, 5), double) },
			outcome{Items: []int{0, 2, 4, 6, 8}}},
		{"filter over slice", func() flow.Publisher[int] { return operators.Filter(sources.Slice([]int{1, 2, 3, 5, 8}), odd) },
			outcome{Items: []int{1, 3, 5}}},
		{"map then filter then tap", func() flow.Publisher[int] {
			return operators.Tap(operators.Filter(operators.Map(sources.Range(0, 6), func(v int) int { return v + 1 }), odd), func(int) {})
		}, outcome{Items: []int{1, 3, 5}}},
		{"filter then map", func() flow.Publisher[int] { return operators.Map(operators.Filter(sources.Range(0, 6), odd), double) },
			outcome{Items: []int{2, 6, 10}}},
		{"maperr fails", func() flow.Publisher[int] {
			return operators.MapErr(sources.Range(0, 10), func(v int) (int, error) {
				if v == 3 {
					return 0, boom
				}
				return v, nil
			}, operators.Name("parse"))
		}, outcome{Items: []int{0, 1, 2}, Err: "parse: boom"}},
		{"map panics", func() flow.Publisher[int] {
			return operators.Map(sources.Range(0, 10), func(v int) int {
				if v == 2 {
					panic(boom)
				}
				return v
			}, operators.Name("risky"))
		}, outcome{Items: []int{0, 1}, Err: "risky: sluice: panic: boom"}},
		{"filter panics under a map", func() flow.Publisher[int] {
			keep := func(v int) bool {
				if v == 4 {
					panic("bad row")
				}
				return true
			}
			return operators.Map(operators.Filter(sources.Range(0, 10), keep, operators.Name("validate")), double, operators.Name("double"))
		}, outcome{Items: []int{0, 2, 4, 6}, Err: "validate: sluice: panic: bad row"}},
		{"tap panics", func() flow.Publisher[int] {
			return operators.Tap(sources.Range(0, 3), func(v int) {
				if v == 1 {
					panic(fmt.Sprint("tap ", v))
				}
			}, operators.Name("peek"))
		}, outcome{Items: []int{0}, Err: "peek: sluice: panic: tap 1"}},
		// Two layers that share code: the panic is told apart by its place
		// in the chain, not by the function.
		{"outer of two maps panics", func() flow.Publisher[int] {
			inner := operators.Map(sources.Range(0, 10), double, operators.Name("inner"))
			return operators.Map(inner, func(v int) int {
				if v == 6 {
					panic("outer")
				}
				return v
			}, operators.Name("outer"))
		}, outcome{Items: []int{0, 2, 4}, Err: "outer: sluice: panic: outer"}},
		{"inner of two maps panics", func() flow.Publisher[int] {
			inner := operators.Map(sources.Range(0, 10), func(v int) int {
				if v == 2 {
					panic("inner")
				}
				return v
			}, operators.Name("inner"))
			return operators.Map(inner, double, operators.Name("outer"))
		}, outcome{Items: []int{0, 2}, Err: "inner: sluice: panic: inner"}},
		{"map panics under a filter (one fused closure)", func() flow.Publisher[int] {
			risky := operators.Map(sources.Range(0, 10), func(v int) int {
				if v == 5 {
					panic("map 5")
				}
				return v
			}, operators.Name("risky"))
			return operators.Filter(risky, func(v int) bool { return v%2 == 0 }, operators.Name("even"))
		}, outcome{Items: []int{0, 2, 4}, Err: "risky: sluice: panic: map 5"}},
		{"keep panics in a map-filter pair over a slice", func() flow.Publisher[int] {
			m := operators.Map(sources.Slice([]int{1, 2, 3, 4}), double, operators.Name("double"))
			return operators.Filter(m, func(v int) bool {
				if v == 6 {
					panic("six")
				}
				return true
			}, operators.Name("check"))
		}, outcome{Items: []int{2, 4}, Err: "check: sluice: panic: six"}},
		{"a pair over a range longer than one run", func() flow.Publisher[int] {
			return operators.Filter(operators.Map(sources.Range(0, 200), double), func(v int) bool { return v%3 == 0 })
		}, outcome{Items: multiplesOf6Below(400)}},
		// reflect.MakeFunc functions share their code address, so the pair
		// cannot tell them apart from the stack and records a phase.
		{"map and filter made by reflect.MakeFunc", func() flow.Publisher[int] {
			var f func(int) int
			var keep func(int) bool
			reflect.ValueOf(&f).Elem().Set(reflect.MakeFunc(reflect.TypeOf(f), func(a []reflect.Value) []reflect.Value {
				if a[0].Int() == 7 {
					panic("made map")
				}
				return []reflect.Value{reflect.ValueOf(int(a[0].Int()) * 2)}
			}))
			reflect.ValueOf(&keep).Elem().Set(reflect.MakeFunc(reflect.TypeOf(keep), func(a []reflect.Value) []reflect.Value {
				return []reflect.Value{reflect.ValueOf(a[0].Int()%4 == 0)}
			}))
			return operators.Filter(operators.Map(sources.Range(0, 10), f, operators.Name("made")), keep, operators.Name("kept"))
		}, outcome{Items: []int{0, 4, 8, 12}, Err: "made: sluice: panic: made map"}},
		{"nested helper calls inside the user function", func() flow.Publisher[int] {
			return operators.Filter(operators.Map(sources.Range(0, 10), double, operators.Name("double")), func(v int) bool {
				return deepPanic(v, 3)
			}, operators.Name("deep"))
		}, outcome{Items: []int{0, 2, 4}, Err: "deep: sluice: panic: deep 6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fused, subscribed := collectBoth(t, tt.pub())
			if diff := cmp.Diff(tt.want, subscribed, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("subscription path (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, fused, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("fused loop (-want +got)\n%s", diff)
			}
			// Collect takes runs where the loop can hand them over
			// (fuse.RunLoop, Range and Slice): the same items, also
			// before a panic.
			var runs outcome
			items, err := sinks.Collect(context.Background(), tt.pub())
			runs.Items = items
			if err != nil {
				runs.Err = err.Error()
			}
			if diff := cmp.Diff(tt.want, runs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("fused loop in runs (-want +got)\n%s", diff)
			}
		})
	}
}

// TestLoopFusionRunsForReduce checks Reduce and Drain over fused loops,
// with and without runs (Range and Slice hand a sink runs; Map and
// Filter(Map) over them do not), against the subscription path: the same
// result, the same accumulator before a panic in f, keep or the sink's
// own function, and the same error.
func TestLoopFusionRunsForReduce(t *testing.T) {
	type result struct {
		Acc  int
		N    int64
		Err  string
		NErr string
	}
	panicAt := func(at int) func(int) int {
		return func(v int) int {
			if v == at {
				panic(fmt.Sprint("f ", v))
			}
			return v * 3
		}
	}
	keepAt := func(at int) func(int) bool {
		return func(v int) bool {
			if v == at {
				panic(fmt.Sprint("keep ", v))
			}
			return v%2 == 0
		}
	}
	slice := make([]int, 300)
	for i := range slice {
		slice[i] = i
	}
	for _, tc := range []struct {
		name string
		pub  flow.Publisher[int]
		runs bool // the loop hands the sink runs
	}{
		{"range", sources.Range(0, 300), true},
		{"slice", sources.Slice(slice), true},
		{"map over range", operators.Map(sources.Range(0, 300), panicAt(-1)), false},
		{"map over slice", operators.Map(sources.Slice(slice), panicAt(-1)), false},
		{"map over range panics", operators.Map(sources.Range(0, 300), panicAt(150), operators.Name("m")), false},
		{"map over slice panics", operators.Map(sources.Slice(slice), panicAt(70), operators.Name("m")), false},
		{"pair over range", operators.Filter(operators.Map(sources.Range(0, 300), panicAt(-1)), keepAt(-1)), false},
		{"pair over range, f panics", operators.Filter(operators.Map(sources.Range(0, 300), panicAt(200), operators.Name("m")), keepAt(-1), operators.Name("k")), false},
		{"pair over range, keep panics", operators.Filter(operators.Map(sources.Range(0, 300), panicAt(-1), operators.Name("m")), keepAt(3*131), operators.Name("k")), false},
		{"pair over slice, keep panics", operators.Filter(operators.Map(sources.Slice(slice), panicAt(-1), operators.Name("m")), keepAt(3*67), operators.Name("k")), false},
	} {
		for _, sinkPanics := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/sink panics=%v", tc.name, sinkPanics), func(t *testing.T) {
				add := func(a, v int) int {
					if sinkPanics && a > 5000 {
						panic("sink")
					}
					return a + v
				}
				run := func(opts ...sinks.Option) result {
					var r result
					acc, err := sinks.Reduce(context.Background(), tc.pub, 0, add, opts...)
					r.Acc = acc
					if err != nil {
						r.Err = err.Error()
					}
					n, err := sinks.Drain(context.Background(), tc.pub, opts...)
					r.N = n
					if err != nil {
						r.NErr = err.Error()
					}
					return r
				}
				fused, subscribed := run(), run(sinks.Prefetch(16))
				if rl, ok := tc.pub.(fuse.RunLoop[int]); (ok && rl.FusedRunsOK()) != tc.runs {
					t.Errorf("%T hands a sink runs: %v, want %v", tc.pub, ok, tc.runs)
				}
				if diff := cmp.Diff(subscribed, fused); diff != "" {
					t.Errorf("fused in runs (-subscribed +fused)\n%s", diff)
				}
			})
		}
	}
}

func TestLoopFusionKeepsPanicErrorsAndAttribution(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	pub := operators.Map(sources.Range(0, 10), func(v int) int { return v }, operators.Name("inner"))
	// A panic in the sink's own function passes through the Map
	// unattributed, as it would through the subscription path.
	err := sinks.ForEach(ctx, pub, func(v int) error {
		if v == 5 {
			panic(boom)
		}
		return nil
	})
	var pe *flow.PanicError
	if !errors.As(err, &pe) || !errors.Is(err, boom) {
		t.Fatalf("ForEach = %v, want a *flow.PanicError wrapping boom", err)
	}
	if got, want := err.Error(), "sluice: panic: boom"; got != want {
		t.Errorf("error = %q, want %q (not attributed to the map stage)", got, want)
	}
}

// A fused run stops within one item of the stop flag when a Filter
// rejects everything; a Filter(Map(…)) pair over a Range, which runs the
// range inside its own loop (fuse.RangeLoop), at the end of the run of 64
// items the cancel came in.
func TestLoopFusionStopsOnCancelWhileFilterRejects(t *testing.T) {
	id := func(v int) int { return v }
	tests := []struct {
		name      string
		build     func(keep func(int) bool) flow.Publisher[int]
		wantCalls int
	}{
		{"filter over range", func(keep func(int) bool) flow.Publisher[int] {
			return operators.Filter(sources.Range(0, 1<<40), keep)
		}, 1001}, // the source checks the stop flag before each item
		{"pair over range", func(keep func(int) bool) flow.Publisher[int] {
			return operators.Filter(operators.Map(sources.Range(0, 1<<40), id), keep)
		}, 1024}, // the end of the run 960..1023
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				calls := 0
				none := tt.build(func(v int) bool {
					calls++
					if v == 1000 {
						cancel()
						synctest.Wait() // let the context's AfterFunc set the stop flag
					}
					return false
				})
				n, err := sinks.Drain(ctx, none)
				if !errors.Is(err, context.Canceled) || n != 0 {
					t.Errorf("Drain = %d, %v; want 0, context.Canceled", n, err)
				}
				if calls != tt.wantCalls {
					t.Errorf("filter called %d times, want %d", calls, tt.wantCalls)
				}
			})
		})
	}
}

// A panic in the sink's own function under a pair over a Range passes
// through unattributed, as on the subscription path.
func TestLoopFusionPairOverRangeLeavesTheSinksPanicBare(t *testing.T) {
	pub := operators.Filter(operators.Map(sources.Range(0, 100), func(v int) int { return v }, operators.Name("id")),
		func(int) bool { return true }, operators.Name("all"))
	err := sinks.ForEach(context.Background(), pub, func(v int) error {
		if v == 70 {
			panic("sink")
		}
		return nil
	})
	if got, want := fmt.Sprint(err), "sluice: panic: sink"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

// multiplesOf6Below returns 0, 6, 12, … below n.
func multiplesOf6Below(n int) []int {
	var out []int
	for v := 0; v < n; v += 6 {
		out = append(out, v)
	}
	return out
}

// deepPanic panics for v == 6 from depth calls down.
func deepPanic(v, depth int) bool {
	if depth > 0 {
		return deepPanic(v, depth-1)
	}
	if v == 6 {
		panic(fmt.Sprint("deep ", v))
	}
	return true
}

func TestBatchFusesOnlyByCountAndMatchesTheSubscription(t *testing.T) {
	boom := errors.New("boom")
	failAt10 := func(v int) (int, error) {
		if v == 10 {
			return 0, boom
		}
		return v, nil
	}
	type result struct {
		Batches [][]int
		Err     string
	}
	run := func(pub flow.Publisher[[]int], opts ...sinks.Option) result {
		var r result
		err := sinks.ForEach(context.Background(), pub, func(b []int) error {
			r.Batches = append(r.Batches, append([]int(nil), b...))
			return nil
		}, opts...)
		if err != nil {
			r.Err = err.Error()
		}
		return r
	}
	tests := []struct {
		name string
		pub  flow.Publisher[[]int]
		want result
	}{
		{"whole batches and a partial one", operators.Batch(sources.Range(0, 10), 4, 0),
			result{Batches: [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}}},
		{"batches past the initial capacity grow", operators.Batch(sources.Range(0, 10000), 9000, 0),
			result{Batches: [][]int{rangeInts(0, 9000), rangeInts(9000, 10000)}}},
		{"reused slices", operators.Batch(sources.Range(0, 10), 4, 0, operators.ReuseBatches()),
			result{Batches: [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}}},
		{"the partial batch comes before the upstream error",
			operators.Batch(operators.MapErr(sources.Range(0, 20), failAt10, operators.Name("parse")), 4, 0),
			result{Batches: [][]int{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}, Err: "parse: boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.pub.(interface {
				FusedLoop(*fuse.Run, func([]int) bool) error
			}); !ok {
				t.Fatalf("%T does not fuse", tt.pub)
			}
			if diff := cmp.Diff(tt.want, run(tt.pub)); diff != "" {
				t.Errorf("fused (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, run(tt.pub, sinks.Prefetch(2))); diff != "" {
				t.Errorf("subscribed (-want +got)\n%s", diff)
			}
		})
	}
	if _, ok := operators.Batch(sources.Range(0, 10), 4, time.Second).(interface {
		FusedLoop(*fuse.Run, func([]int) bool) error
	}); ok {
		t.Error("a timed Batch fuses: its timer would not be observable")
	}
}

// rangeInts returns [from, to).
func rangeInts(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}
