package ring

import (
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRingIsABoundedFIFO(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 4, 5, 8, 100} {
		r := New[int](capacity)
		var got []int
		next := 0
		// Several laps around the slots, with partial fills.
		for lap := range 5 {
			for r.Push(next) {
				next++
			}
			if r.Len() != capacity {
				t.Fatalf("cap %d: Len() = %d after filling, want %d", capacity, r.Len(), capacity)
			}
			for range min(capacity, lap+1) {
				v, ok := r.Pop()
				if !ok {
					t.Fatalf("cap %d: Pop on a non-empty ring failed", capacity)
				}
				got = append(got, v)
			}
			if want := capacity - min(capacity, lap+1); r.Len() != want {
				t.Fatalf("cap %d: Len() = %d, want %d", capacity, r.Len(), want)
			}
		}
		for {
			v, ok := r.Pop()
			if !ok {
				break
			}
			got = append(got, v)
		}
		if !r.Empty() || r.Len() != 0 {
			t.Errorf("cap %d: ring not empty after draining", capacity)
		}
		want := make([]int, next)
		for i := range want {
			want[i] = i
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cap %d: items out of order (-want +got)\n%s", capacity, diff)
		}
	}
}

func TestRingNewPanicsOnNonPositiveCapacity(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New(0) did not panic")
		}
	}()
	New[int](0)
}

// A producer that evicts the oldest item whenever the ring is full races a
// consumer: every item must be taken exactly once, by one or the other,
// and each of them must see the items in order.
func TestRingConcurrentEvictionTakesEachItemOnce(t *testing.T) {
	const n = 200000
	for _, capacity := range []int{1, 3, 64} {
		r := New[int](capacity)
		var evicted, consumed []int
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() {
			for i := range n {
				for !r.Push(i) {
					if v, ok := r.Pop(); ok {
						evicted = append(evicted, v)
					}
				}
			}
			close(stop)
		})
		wg.Go(func() {
			for {
				if v, ok := r.Pop(); ok {
					consumed = append(consumed, v)
					continue
				}
				select {
				case <-stop:
					for {
						v, ok := r.Pop()
						if !ok {
							return
						}
						consumed = append(consumed, v)
					}
				default:
				}
			}
		})
		wg.Wait()
		if !slices.IsSorted(evicted) || !slices.IsSorted(consumed) {
			t.Fatalf("cap %d: items taken out of order", capacity)
		}
		all := append(slices.Clone(evicted), consumed...)
		slices.Sort(all)
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(all, want) {
			t.Fatalf("cap %d: %d items taken (%d evicted, %d consumed), want each of 0..%d exactly once",
				capacity, len(all), len(evicted), len(consumed), n-1)
		}
	}
}
