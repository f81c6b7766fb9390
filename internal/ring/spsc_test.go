package ring

import (
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSPSCIsABoundedFIFO(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 5, 8, 100} {
		q := NewSPSC[int](capacity)
		var got []int
		next := 0
		for lap := range 6 {
			for q.Offer(next) {
				next++
			}
			if q.Len() != capacity {
				t.Fatalf("cap %d: Len() = %d when full, want %d", capacity, q.Len(), capacity)
			}
			for range min(capacity, lap+1) {
				v, ok := q.Poll()
				if !ok {
					t.Fatalf("cap %d: Poll on a non-empty queue failed", capacity)
				}
				got = append(got, v)
			}
			// Taken but not released: still no room.
			if q.Offer(-1) {
				t.Fatalf("cap %d: Offer succeeded before Release", capacity)
			}
			q.Release()
		}
		for {
			v, ok := q.Poll()
			if !ok {
				break
			}
			got = append(got, v)
		}
		q.Release()
		if !q.Empty() || q.Len() != 0 {
			t.Errorf("cap %d: queue not empty after draining", capacity)
		}
		want := make([]int, next)
		for i := range want {
			want[i] = i
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cap %d: (-want +got)\n%s", capacity, diff)
		}
	}
}

func TestSPSCReleaseClearsTheSlotsOfPointerTypes(t *testing.T) {
	q := NewSPSC[*int](4)
	for range 3 { // the third lap wraps: Release clears [3, 4) and [0, 1)
		q.Offer(new(int))
		q.Offer(new(int))
		q.Poll()
		q.Poll()
		q.Release()
		for i, p := range q.buf {
			if p != nil {
				t.Errorf("slot %d still holds a reference after Release", i)
			}
		}
	}
	// A taken but unreleased item is still in its slot; nothing else is.
	q.Offer(new(int))
	q.Poll()
	if held := q.buf[(q.headLocal-1)&q.mask]; held == nil {
		t.Error("Poll cleared the slot before Release")
	}
}

func TestSPSCHoldsPointers(t *testing.T) {
	type plain struct {
		a int
		b [2]float64
	}
	type withString struct {
		a int
		s string
	}
	got := []bool{
		holdsPointers(reflect.TypeFor[int]()), holdsPointers(reflect.TypeFor[plain]()),
		holdsPointers(reflect.TypeFor[[0]*int]()), holdsPointers(reflect.TypeFor[withString]()),
		holdsPointers(reflect.TypeFor[*int]()), holdsPointers(reflect.TypeFor[[]byte]()),
		holdsPointers(reflect.TypeFor[any]()), holdsPointers(reflect.TypeFor[[3]map[int]int]()),
	}
	want := []bool{false, false, false, true, true, true, true, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestSPSCNewPanicsOnNonPositiveCapacity(t *testing.T) {
	defer func() {
		if got, want := recover(), "sluice: ring.NewSPSC: capacity <= 0"; got != want {
			t.Errorf("panic = %v, want %q", got, want)
		}
	}()
	NewSPSC[int](0)
}

// A producer and a consumer on two goroutines, the consumer releasing
// room in batches: every item arrives once, in order.
func TestSPSCConcurrentProducerConsumer(t *testing.T) {
	const n = 100000
	for _, capacity := range []int{1, 7, 256} {
		q := NewSPSC[int](capacity)
		got := make([]int, 0, n)
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range n {
				for !q.Offer(i) {
					runtime.Gosched()
				}
			}
		})
		wg.Go(func() {
			taken := 0
			for len(got) < n {
				v, ok := q.Poll()
				if !ok {
					q.Release()
					runtime.Gosched()
					continue
				}
				got = append(got, v)
				if taken++; taken%max(capacity/2, 1) == 0 {
					q.Release()
				}
			}
		})
		wg.Wait()
		for i, v := range got {
			if v != i {
				t.Fatalf("cap %d: item %d is %d", capacity, i, v)
			}
		}
	}
}

func TestSPSCPutIsInvisibleUntilPublish(t *testing.T) {
	q := NewSPSC[int](4)
	var got []string
	for i := range 3 {
		got = append(got, fmt.Sprint("put ", i, " ", q.Put(i)))
	}
	_, ok := q.Poll()
	got = append(got, fmt.Sprint("poll before publish ", ok, " len ", q.Len()))
	q.Publish()
	for {
		v, ok := q.Poll()
		if !ok {
			break
		}
		got = append(got, fmt.Sprint("poll ", v))
	}
	// Unpublished items count against the capacity.
	q.Release()
	for i := range 5 {
		got = append(got, fmt.Sprint("put ", 10+i, " ", q.Put(10+i)))
	}
	want := []string{"put 0 true", "put 1 true", "put 2 true", "poll before publish false len 0",
		"poll 0", "poll 1", "poll 2", "put 10 true", "put 11 true", "put 12 true", "put 13 true", "put 14 false"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}
