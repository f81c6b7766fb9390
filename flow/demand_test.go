package flow_test

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
)

func TestAddCap(t *testing.T) {
	tests := []struct {
		a, b, want int64
	}{
		{0, 0, 0},
		{1, 2, 3},
		{flow.Unbounded, 1, flow.Unbounded},
		{1, flow.Unbounded, flow.Unbounded},
		{flow.Unbounded - 1, 1, flow.Unbounded},
		{flow.Unbounded - 1, 2, flow.Unbounded},
		{math.MaxInt64 / 2, math.MaxInt64/2 + 1, flow.Unbounded},
		{math.MaxInt64 / 2, math.MaxInt64 / 2, math.MaxInt64 - 1},
	}
	for _, tt := range tests {
		if got := flow.AddCap(tt.a, tt.b); got != tt.want {
			t.Errorf("AddCap(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestDemand(t *testing.T) {
	t.Run("add returns previous and saturates", func(t *testing.T) {
		var d flow.Demand
		var got []int64
		got = append(got, d.Add(5), d.Add(flow.Unbounded-3), d.Add(1), d.Load())
		want := []int64{0, 5, flow.Unbounded, flow.Unbounded}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
	t.Run("produced subtracts unless unbounded", func(t *testing.T) {
		var d flow.Demand
		d.Add(10)
		got := []int64{d.Produced(3), d.Produced(7)}
		d.Add(flow.Unbounded)
		got = append(got, d.Produced(1000), d.Load())
		want := []int64{7, 0, flow.Unbounded, flow.Unbounded}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
	t.Run("concurrent adds sum exactly", func(t *testing.T) {
		var d flow.Demand
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 1000 {
					d.Add(3)
				}
			})
		}
		wg.Wait()
		if got := d.Load(); got != 24000 {
			t.Errorf("Load() = %d, want 24000", got)
		}
	})
}

func TestWIPSerialisesAndLosesNoWork(t *testing.T) {
	var (
		w       flow.WIP
		pending sync.Map // work items signalled
		mu      sync.Mutex
		inLoop  int
		maxIn   int
		done    = map[int]bool{}
		wg      sync.WaitGroup
	)
	drain := func() {
		if !w.Enter() {
			return
		}
		for missed := int32(1); missed != 0; missed = w.Leave(missed) {
			mu.Lock()
			inLoop++
			maxIn = max(maxIn, inLoop)
			mu.Unlock()
			pending.Range(func(k, _ any) bool {
				pending.Delete(k)
				mu.Lock()
				done[k.(int)] = true
				mu.Unlock()
				return true
			})
			mu.Lock()
			inLoop--
			mu.Unlock()
		}
	}
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				pending.Store(g*1000+i, true)
				drain()
			}
		})
	}
	wg.Wait()
	if w.Active() {
		t.Error("WIP still active after all drains returned")
	}
	if maxIn != 1 {
		t.Errorf("max goroutines in the drain loop = %d, want 1", maxIn)
	}
	if len(done) != 2000 {
		t.Errorf("drained %d work items, want 2000", len(done))
	}
}

func TestPanicError(t *testing.T) {
	sentinel := errors.New("boom")
	t.Run("unwraps an error value", func(t *testing.T) {
		err := flow.Catch(func() { panic(fmt.Errorf("wrapped: %w", sentinel)) })
		var pe *flow.PanicError
		if !errors.As(err, &pe) {
			t.Fatalf("Catch returned %T, want *flow.PanicError", err)
		}
		if !errors.Is(err, sentinel) {
			t.Errorf("errors.Is(%v, sentinel) = false", err)
		}
		if len(pe.Stack) == 0 {
			t.Error("Stack is empty")
		}
		if got, want := err.Error(), "sluice: panic: wrapped: boom"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	})
	t.Run("non-error value does not unwrap", func(t *testing.T) {
		err := flow.Catch(func() { panic(42) })
		if got := errors.Unwrap(err); got != nil {
			t.Errorf("Unwrap() = %v, want nil", got)
		}
		if got, want := err.Error(), "sluice: panic: 42"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	})
	t.Run("no panic is nil", func(t *testing.T) {
		if err := flow.Catch(func() {}); err != nil {
			t.Errorf("Catch = %v, want nil", err)
		}
	})
	t.Run("re-wrapping keeps the original", func(t *testing.T) {
		first := flow.NewPanicError("x")
		if got := flow.NewPanicError(first); got != first {
			t.Errorf("NewPanicError(*PanicError) returned a new value")
		}
	})
}

func TestNonPositiveRequestError(t *testing.T) {
	err := flow.NonPositiveRequestError(-3)
	if !errors.Is(err, flow.ErrNonPositiveRequest) {
		t.Errorf("errors.Is(%v, ErrNonPositiveRequest) = false", err)
	}
	if got, want := err.Error(), "sluice: non-positive subscription request (rule 3.9): Request(-3)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestAdaptersEnforceRule213(t *testing.T) {
	var s flow.SubscriberFuncs[int]
	for name, f := range map[string]func(){
		"OnSubscribe(nil)": func() { s.OnSubscribe(nil) },
		"OnError(nil)":     func() { s.OnError(nil) },
		"Subscribe(nil)":   func() { flow.PublisherFunc[int](func(flow.Subscriber[int]) {}).Subscribe(nil) },
	} {
		if err := flow.Catch(f); err == nil {
			t.Errorf("%s did not panic", name)
		}
	}
}

func BenchmarkDemandAdd(b *testing.B) {
	var d flow.Demand
	for b.Loop() {
		d.Add(1)
		d.Produced(1)
	}
}
