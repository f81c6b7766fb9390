package ring

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Len, called while the producer pushes and the consumer takes items,
// never counts fewer items than were pushed before the call, less those
// taken by its end: a stage that sizes its upstream requests by Len must
// never see room that is not there.
func TestRingLenNeverUndercountsWhileItemsAreTaken(t *testing.T) {
	const n = 50000
	r := New[int](16)
	var pushed, taken atomic.Int64 // taken counts a take before it happens
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for i := range n {
			for !r.Push(i) {
				runtime.Gosched()
			}
			pushed.Add(1)
		}
		close(done)
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			// Take an item only when the ring is full, so that Len has a
			// long prefix to search while the head moves.
			if pushed.Load()-taken.Load() == 16 {
				taken.Add(1)
				r.Pop() // the only consumer, of a full ring: it succeeds
			} else {
				runtime.Gosched()
			}
		}
	})
	low := 0
	for {
		select {
		case <-done:
			wg.Wait()
			if low > 0 {
				t.Fatalf("Len undercounted %d times", low)
			}
			return
		default:
		}
		before := pushed.Load()
		got := int64(r.Len())
		if min := before - taken.Load(); got < min {
			low++
		}
	}
}
