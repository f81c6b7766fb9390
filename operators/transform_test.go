package operators_test

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
	"weak"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sources"
)

// trStage is one transform stage over ints, with what it does to
// Range(1, 10).
type trStage struct {
	name  string
	build func(src flow.Publisher[int]) flow.Publisher[int]
	want  []int // output for the items 1..10
	up2   int64 // the upstream request for a first downstream Request(2)
}

func trStages() []trStage {
	id := func(v int) int { return v }
	yes := func(int) bool { return true }
	return []trStage{
		{"Map", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Map(s, func(v int) int { return v * 10 })
		}, []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 2},
		{"MapErr", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.MapErr(s, func(v int) (int, error) { return v, nil })
		}, trInts(1, 10), 2},
		{"Filter", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Filter(s, yes)
		}, trInts(1, 10), 2},
		{"FilterErr", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.FilterErr(s, func(int) (bool, error) { return true, nil })
		}, trInts(1, 10), 2},
		{"Tap", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Tap(s, func(int) {})
		}, trInts(1, 10), 2},
		{"Scan", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Scan(s, 0, func(a, v int) int { return a + v })
		}, []int{1, 3, 6, 10, 15, 21, 28, 36, 45, 55}, 2},
		{"Take", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Take(s, 100)
		}, trInts(1, 10), 2},
		{"TakeWhile", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.TakeWhile(s, yes)
		}, trInts(1, 10), 2},
		{"Skip", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Skip(s, 1)
		}, trInts(2, 10), 3},
		{"Distinct", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Distinct(s)
		}, trInts(1, 10), 2},
		{"DistinctBy", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.DistinctBy(s, id)
		}, trInts(1, 10), 2},
		{"DistinctUntilChanged", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.DistinctUntilChanged(s)
		}, trInts(1, 10), 2},
		{"Filter(Map) fused", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Filter(operators.Map(s, func(v int) int { return v * 10 }), yes)
		}, []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 2},
		{"Map(Filter) fused", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Map(operators.Filter(s, yes), func(v int) int { return v * 10 })
		}, []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 2},
		{"Pipe", func(s flow.Publisher[int]) flow.Publisher[int] {
			var ops operators.Stages[int]
			return operators.Pipe(s, ops.Map(id), ops.Filter(yes), ops.Tap(func(int) {}))
		}, trInts(1, 10), 2},
	}
}

func TestStagesRunToCompletion(t *testing.T) {
	for _, st := range trStages() {
		for _, demand := range []struct {
			name        string
			first, each int64
		}{
			{"unbounded", flow.Unbounded, 0},
			{"one at a time", 1, 1},
			{"three then three", 3, 0},
		} {
			t.Run(st.name+"/"+demand.name, func(t *testing.T) {
				p := newTrProbe[int](t, nil)
				p.onSubscribe = trRequestFirst[int](demand.first)
				if demand.each > 0 {
					p.onNext = trRequestEach[int](demand.each)
				} else if demand.first == 3 {
					var n int
					p.onNext = func(p *trProbe[int], _ int) {
						if n++; n%3 == 0 {
							p.request(3)
						}
					}
				}
				st.build(sources.Range(1, 10)).Subscribe(p)
				if diff := cmp.Diff(trLogOf(st.want, "OnComplete"), p.log.get()); diff != "" {
					t.Errorf("log (-want +got)\n%s", diff)
				}
			})
		}
	}
}

func TestStagesForwardNonPositiveRequest(t *testing.T) {
	for _, n := range []int64{0, -1} {
		for _, st := range trStages() {
			t.Run(st.name+"/Request("+strconv.FormatInt(n, 10)+")", func(t *testing.T) {
				log := &trLog{}
				p := newTrProbe[int](t, log)
				p.onSubscribe = trRequestFirst[int](2)
				p.onNext = func(p *trProbe[int], _ int) { p.request(n) }
				st.build(newTrSpy(log, sources.Range(1, 10))).Subscribe(p)

				want := []string{
					"OnSubscribe",
					fmt.Sprintf("up.Request(%d)", st.up2),
					fmt.Sprintf("OnNext(%d)", st.want[0]),
					fmt.Sprintf("up.Request(%d)", n),
					fmt.Sprintf("OnError(%v)", flow.NonPositiveRequestError(n)),
				}
				if diff := cmp.Diff(want, log.get()); diff != "" {
					t.Errorf("log (-want +got)\n%s", diff)
				}
				if !errors.Is(p.Err(), flow.ErrNonPositiveRequest) {
					t.Errorf("error %v does not match flow.ErrNonPositiveRequest", p.Err())
				}
			})
		}
	}
}

// Request(0) from another goroutine while upstream emits on its own: the
// error must arrive serially, after the OnNext in flight, and end the
// stream. The probe reports any overlap.
func TestStagesNonPositiveRequestFromAnotherGoroutine(t *testing.T) {
	for _, st := range trStages() {
		t.Run(st.name, func(t *testing.T) {
			first := make(chan struct{})
			p := newTrProbe[int](t, nil)
			p.quiet = true
			var n int
			p.onNext = func(*trProbe[int], int) {
				if n++; n == 1 {
					close(first)
				}
			}
			build := st.build
			if st.name == "Take" {
				build = func(s flow.Publisher[int]) flow.Publisher[int] { return operators.Take(s, 1<<40) }
			}
			pub := build(sources.Range(1, 1<<40))
			pub.Subscribe(p)
			emitted := make(chan struct{})
			go func() {
				defer close(emitted)
				p.request(flow.Unbounded) // emits on this goroutine until stopped
			}()
			<-first
			p.request(0)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Fatal("no terminal signal after Request(0)")
			}
			<-emitted
			if !errors.Is(p.Err(), flow.ErrNonPositiveRequest) {
				t.Errorf("error = %v, want one matching flow.ErrNonPositiveRequest", p.Err())
			}
			items := p.Items()
			k := min(len(items), len(st.want))
			if diff := cmp.Diff(st.want[:k], items[:k]); len(items) == 0 || diff != "" {
				t.Errorf("got %d items, not a prefix of the stage's output (-want +got)\n%s", len(items), diff)
			}
		})
	}
}

func TestStagesCancelMidStream(t *testing.T) {
	for _, st := range trStages() {
		t.Run(st.name, func(t *testing.T) {
			log := &trLog{}
			p := newTrProbe[int](t, log)
			p.onSubscribe = trRequestFirst[int](2)
			var n int
			p.onNext = func(p *trProbe[int], _ int) {
				if n++; n == 2 {
					p.sub.Cancel()
					p.sub.Cancel() // idempotent (rule 3.5)
					p.request(5)   // ignored after Cancel (rule 3.6)
				}
			}
			st.build(newTrSpy(log, sources.Range(1, 10))).Subscribe(p)
			want := []string{
				"OnSubscribe",
				fmt.Sprintf("up.Request(%d)", st.up2),
				fmt.Sprintf("OnNext(%d)", st.want[0]),
				fmt.Sprintf("OnNext(%d)", st.want[1]),
				"up.Cancel",
			}
			// The request after Cancel may reach the cancelled upstream,
			// where it must change nothing.
			got := slices.DeleteFunc(log.get(), func(e string) bool { return e == "up.Request(5)" })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("log (-want +got)\n%s", diff)
			}
		})
	}
}

func TestStagesPassUpstreamErrorUnchanged(t *testing.T) {
	boom := errors.New("boom")
	for _, st := range trStages() {
		t.Run(st.name, func(t *testing.T) {
			log := &trLog{}
			m := &trManual[int]{log: log}
			p := newTrProbe[int](t, log)
			p.onSubscribe = trRequestFirst[int](5)
			st.build(m).Subscribe(p)
			m.Next(1, 2)
			m.Error(boom)
			m.Next(3) // a misbehaving upstream: nothing may follow the error
			m.Complete()
			up, items := int64(5), st.want[:2]
			if st.name == "Skip" {
				up, items = 6, st.want[:1] // item 1 is skipped
			}
			want := append([]string{"OnSubscribe", fmt.Sprintf("up.Request(%d)", up)},
				trLogOf(items, "OnError(boom)")[1:]...)
			if diff := cmp.Diff(want, log.get()); diff != "" {
				t.Errorf("log (-want +got)\n%s", diff)
			}
			if p.Err() != boom {
				t.Errorf("error = %#v, want the upstream error itself", p.Err())
			}
		})
	}
}

// Rule 3.13: after Cancel, after a terminal signal from upstream, and
// after a user function fails, a stage drops its reference to the
// subscriber even if its upstream keeps a reference to the stage.
func TestStagesDropSubscriberReference(t *testing.T) {
	ends := []struct {
		name string
		end  func(m *trManual[int], sub flow.Subscription)
	}{
		{"cancel", func(_ *trManual[int], sub flow.Subscription) { sub.Cancel() }},
		{"complete", func(m *trManual[int], _ flow.Subscription) { m.Complete() }},
		{"error", func(m *trManual[int], _ flow.Subscription) { m.Error(errors.New("x")) }},
	}
	for _, st := range trStages() {
		for _, end := range ends {
			t.Run(st.name+"/"+end.name, func(t *testing.T) {
				m := &trManual[int]{log: &trLog{}}
				w, sub := subscribeWeak(t, st.build(m))
				end.end(m, sub)
				sub = nil
				for range 3 {
					runtime.GC()
				}
				if w.Value() != nil {
					t.Errorf("the stage still references its subscriber after %s", end.name)
				}
				runtime.KeepAlive(m)
			})
		}
	}
}

// subscribeWeak subscribes a probe that requests 1 and returns a weak
// pointer to it and its subscription; no strong reference stays on the
// caller's stack.
func subscribeWeak(t *testing.T, pub flow.Publisher[int]) (weak.Pointer[trProbe[int]], flow.Subscription) {
	p := newTrProbe[int](t, nil)
	p.onSubscribe = trRequestFirst[int](1)
	pub.Subscribe(p)
	return weak.Make(p), p.sub
}

func TestUserFunctionPanics(t *testing.T) {
	boom := errors.New("boom")
	crash := func(v int) {
		if v == 2 {
			panic(boom)
		}
	}
	name := operators.Name("x")
	tests := []struct {
		name  string
		build func(src flow.Publisher[int]) flow.Publisher[int]
	}{
		{"Map", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Map(s, func(v int) int { crash(v); return v }, name)
		}},
		{"MapErr", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.MapErr(s, func(v int) (int, error) { crash(v); return v, nil }, name)
		}},
		{"Filter", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Filter(s, func(v int) bool { crash(v); return true }, name)
		}},
		{"FilterErr", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.FilterErr(s, func(v int) (bool, error) { crash(v); return true, nil }, name)
		}},
		{"Tap", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Tap(s, crash, name)
		}},
		{"Scan", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Scan(s, 0, func(_, v int) int { crash(v); return v }, name)
		}},
		{"TakeWhile", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.TakeWhile(s, func(v int) bool { crash(v); return true }, name)
		}},
		{"DistinctBy", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.DistinctBy(s, func(v int) int { crash(v); return v }, name)
		}},
		// Fused pairs name the stage whose function panicked.
		{"Filter(Map) panic in map", func(s flow.Publisher[int]) flow.Publisher[int] {
			m := operators.Map(s, func(v int) int { crash(v); return v }, name)
			return operators.Filter(m, func(int) bool { return true }, operators.Name("other"))
		}},
		{"Filter(Map) panic in filter", func(s flow.Publisher[int]) flow.Publisher[int] {
			m := operators.Map(s, func(v int) int { return v }, operators.Name("other"))
			return operators.Filter(m, func(v int) bool { crash(v); return true }, name)
		}},
		{"Map(Filter) panic in filter", func(s flow.Publisher[int]) flow.Publisher[int] {
			f := operators.Filter(s, func(v int) bool { crash(v); return true }, name)
			return operators.Map(f, func(v int) int { return v }, operators.Name("other"))
		}},
		{"Map(Filter) panic in map", func(s flow.Publisher[int]) flow.Publisher[int] {
			f := operators.Filter(s, func(int) bool { return true }, operators.Name("other"))
			return operators.Map(f, func(v int) int { crash(v); return v }, name)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &trLog{}
			m := &trManual[int]{log: log}
			p := newTrProbe[int](t, log)
			p.onSubscribe = trRequestFirst[int](10)
			tt.build(m).Subscribe(p)
			m.Next(1, 2, 3) // upstream keeps emitting after the panic
			m.Complete()

			want := []string{"OnSubscribe", "up.Request(10)", "OnNext(1)", "up.Cancel", "OnError(x: sluice: panic: boom)"}
			if diff := cmp.Diff(want, log.get()); diff != "" {
				t.Errorf("log (-want +got)\n%s", diff)
			}
			var pe *flow.PanicError
			if !errors.As(p.Err(), &pe) {
				t.Fatalf("error %v is not a *flow.PanicError", p.Err())
			}
			if pe.Value != boom || !errors.Is(p.Err(), boom) {
				t.Errorf("panic value = %v, want boom, reachable with errors.Is", pe.Value)
			}
			if len(pe.Stack) == 0 {
				t.Error("PanicError has no stack")
			}
		})
	}
}

func TestUserFunctionErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		build func(src flow.Publisher[int]) flow.Publisher[int]
	}{
		{"MapErr", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.MapErr(s, func(v int) (int, error) {
				if v == 2 {
					return 0, boom
				}
				return v, nil
			}, operators.Name("parse"))
		}},
		{"FilterErr", func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.FilterErr(s, func(v int) (bool, error) { return true, map[bool]error{true: boom}[v == 2] }, operators.Name("parse"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &trLog{}
			m := &trManual[int]{log: log}
			p := newTrProbe[int](t, log)
			p.onSubscribe = trRequestFirst[int](10)
			tt.build(m).Subscribe(p)
			m.Next(1, 2, 3)
			m.Error(errors.New("late"))

			want := []string{"OnSubscribe", "up.Request(10)", "OnNext(1)", "up.Cancel", "OnError(parse: boom)"}
			if diff := cmp.Diff(want, log.get()); diff != "" {
				t.Errorf("log (-want +got)\n%s", diff)
			}
			if !errors.Is(p.Err(), boom) {
				t.Errorf("errors.Is(%v, boom) = false", p.Err())
			}
		})
	}
}

func TestDerivedNamesWrapErrors(t *testing.T) {
	boom := errors.New("boom")
	pub := operators.MapErr(sources.Range(1, 3), func(int) (int, error) { return 0, boom })
	p := newTrProbe[int](t, nil)
	p.onSubscribe = trRequestFirst[int](1)
	pub.Subscribe(p)
	if got := p.Err(); got == nil || !regexp.MustCompile(`^maperr#[0-9]+: boom$`).MatchString(got.Error()) {
		t.Errorf("error = %v, want maperr#N: boom", got)
	}
}

func TestMapChangesType(t *testing.T) {
	pub := operators.Map(sources.Range(1, 3), func(v int) string { return strconv.Itoa(v) + "!" })
	p := newTrProbe[string](t, nil)
	p.onSubscribe = trRequestFirst[string](flow.Unbounded)
	pub.Subscribe(p)
	if diff := cmp.Diff(trLogOf([]string{"1!", "2!", "3!"}, "OnComplete"), p.log.get()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
}

func TestFusedPairsChangeType(t *testing.T) {
	itoa := strconv.Itoa
	tests := []struct {
		name string
		pub  flow.Publisher[string]
		want []string
	}{
		{"Filter(Map)", operators.Filter(operators.Map(sources.Range(1, 5), itoa), func(s string) bool { return s != "3" }),
			[]string{"1", "2", "4", "5"}},
		{"Map(Filter)", operators.Map(operators.Filter(sources.Range(1, 5), func(v int) bool { return v != 3 }), itoa),
			[]string{"1", "2", "4", "5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTrProbe[string](t, nil)
			p.onSubscribe = trRequestFirst[string](1)
			p.onNext = trRequestEach[string](1)
			tt.pub.Subscribe(p)
			if diff := cmp.Diff(trLogOf(tt.want, "OnComplete"), p.log.get()); diff != "" {
				t.Errorf("log (-want +got)\n%s", diff)
			}
		})
	}
}

func TestPassThroughDemand(t *testing.T) {
	// Map, MapErr, Tap, Scan and TakeWhile forward every Request and
	// Cancel unchanged.
	builds := map[string]func(flow.Publisher[int]) flow.Publisher[int]{
		"Map": func(s flow.Publisher[int]) flow.Publisher[int] { return operators.Map(s, func(v int) int { return v }) },
		"MapErr": func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.MapErr(s, func(v int) (int, error) { return v, nil })
		},
		"Tap": func(s flow.Publisher[int]) flow.Publisher[int] { return operators.Tap(s, func(int) {}) },
		"Scan": func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.Scan(s, 0, func(_, v int) int { return v })
		},
		"TakeWhile": func(s flow.Publisher[int]) flow.Publisher[int] {
			return operators.TakeWhile(s, func(int) bool { return true })
		},
	}
	for name, build := range builds {
		t.Run(name, func(t *testing.T) {
			spy := newTrSpy(nil, sources.Range(1, 5))
			p := newTrProbe[int](t, nil)
			p.onSubscribe = trRequestFirst[int](2)
			var n int
			p.onNext = func(p *trProbe[int], _ int) {
				if n++; n == 2 {
					p.request(7)
				}
			}
			build(spy).Subscribe(p)
			if diff := cmp.Diff([]int64{2, 7}, spy.Requests()); diff != "" {
				t.Errorf("upstream requests (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(trInts(1, 5), p.Items()); diff != "" {
				t.Errorf("items (-want +got)\n%s", diff)
			}
		})
	}
}

func TestTapSeesEachItemBeforeDownstream(t *testing.T) {
	log := &trLog{}
	pub := operators.Tap(sources.Range(1, 3), func(v int) { log.add(fmt.Sprintf("tap(%d)", v)) })
	p := newTrProbe[int](t, log)
	p.onSubscribe = trRequestFirst[int](flow.Unbounded)
	pub.Subscribe(p)
	want := []string{"OnSubscribe", "tap(1)", "OnNext(1)", "tap(2)", "OnNext(2)", "tap(3)", "OnNext(3)", "OnComplete"}
	if diff := cmp.Diff(want, log.get()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
}

func TestScanRestartsFromInitialPerSubscription(t *testing.T) {
	pub := operators.Scan(sources.Range(1, 4), "", func(acc string, v int) string { return acc + strconv.Itoa(v) })
	for i := range 2 {
		p := newTrProbe[string](t, nil)
		p.onSubscribe = trRequestFirst[string](flow.Unbounded)
		pub.Subscribe(p)
		if diff := cmp.Diff([]string{"1", "12", "123", "1234"}, p.Items()); diff != "" {
			t.Errorf("subscription %d (-want +got)\n%s", i, diff)
		}
	}
}

func TestSecondOnSubscribeIsCancelled(t *testing.T) {
	// Rule 2.5: a stage that already has a subscription cancels a second.
	log := &trLog{}
	var stage flow.Subscriber[int]
	src := flow.PublisherFunc[int](func(s flow.Subscriber[int]) {
		stage = s
		s.OnSubscribe(trManualSubscription{log: log})
	})
	p := newTrProbe[int](t, log)
	operators.Map(src, func(v int) int { return v }).Subscribe(p)
	second := &trLog{}
	stage.OnSubscribe(trManualSubscription{log: second})
	if diff := cmp.Diff([]string{"up.Cancel"}, second.get()); diff != "" {
		t.Errorf("second subscription (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff([]string{"OnSubscribe"}, log.get()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
}

func TestRule213NilSignalsPanic(t *testing.T) {
	var stage flow.Subscriber[int]
	src := flow.PublisherFunc[int](func(s flow.Subscriber[int]) { stage = s })
	operators.Map(src, func(v int) int { return v }).Subscribe(newTrProbe[int](t, nil))
	for name, f := range map[string]func(){
		"OnSubscribe(nil)": func() { stage.OnSubscribe(nil) },
		"OnError(nil)":     func() { stage.OnError(nil) },
	} {
		if err := flow.Catch(f); err == nil {
			t.Errorf("%s did not panic", name)
		}
	}
}

func TestConstructionPanics(t *testing.T) {
	src := sources.Range(0, 1)
	var nilSrc flow.Publisher[int]
	var ops operators.Stages[int]
	tests := []struct {
		want string
		f    func()
	}{
		{"sluice: Map: nil source", func() { operators.Map(nilSrc, func(v int) int { return v }) }},
		{"sluice: Map: nil function", func() { operators.Map[int, int](src, nil) }},
		{"sluice: MapErr: nil function", func() { operators.MapErr[int, int](src, nil) }},
		{"sluice: Filter: nil source", func() { operators.Filter(nilSrc, func(int) bool { return true }) }},
		{"sluice: Filter: nil function", func() { operators.Filter(src, nil) }},
		{"sluice: FilterErr: nil function", func() { operators.FilterErr(src, nil) }},
		{"sluice: Tap: nil function", func() { operators.Tap(src, nil) }},
		{"sluice: Scan: nil function", func() { operators.Scan[int, int](src, 0, nil) }},
		{"sluice: TakeWhile: nil function", func() { operators.TakeWhile(src, nil) }},
		{"sluice: DistinctBy: nil function", func() { operators.DistinctBy[int, int](src, nil) }},
		{"sluice: Distinct: nil source", func() { operators.Distinct(nilSrc) }},
		{"sluice: DistinctUntilChanged: nil source", func() { operators.DistinctUntilChanged(nilSrc) }},
		{"sluice: Take: n < 0", func() { operators.Take(src, -1) }},
		{"sluice: Take: nil source", func() { operators.Take(nilSrc, 1) }},
		{"sluice: Skip: n < 0", func() { operators.Skip(src, -1) }},
		{"sluice: Pipe: nil source", func() { operators.Pipe(nilSrc) }},
		{"sluice: Pipe: nil stage", func() { operators.Pipe(src, nil) }},
		{"sluice: Pipe: a stage returned a nil publisher", func() {
			operators.Pipe(src, func(flow.Publisher[int]) flow.Publisher[int] { return nil })
		}},
		{"sluice: Stage.Then: nil stage", func() { ops.Take(1).Then(nil) }},
		{"sluice: Filter: nil function", func() { ops.Filter(nil) }},
		{"sluice: Take: n < 0", func() { ops.Take(-1) }},
		{"sluice: Skip: n < 0", func() { ops.Skip(-2) }},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			err := flow.Catch(tt.f)
			var pe *flow.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("did not panic")
			}
			if got := fmt.Sprint(pe.Value); got != tt.want {
				t.Errorf("panic %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSubscribeNilPanics(t *testing.T) {
	for _, st := range trStages() {
		if err := flow.Catch(func() { st.build(sources.Range(0, 1)).Subscribe(nil) }); err == nil {
			t.Errorf("%s: Subscribe(nil) did not panic (rule 1.9)", st.name)
		}
	}
}
