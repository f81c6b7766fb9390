package ring

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSPSCRunsMatchAModel drives PutRun, Put, Publish, PollRun, Poll and
// Release at random on one goroutine and checks every result against a
// slice model of the queue: what fits, what is visible, what comes out,
// and in which order, across wrap-arounds and capacities that are not
// powers of two.
func TestSPSCRunsMatchAModel(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 7, 8, 64} {
		t.Run(fmt.Sprintf("cap=%d", capacity), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(capacity), 7))
			q := NewSPSC[int](capacity)
			var (
				unpub, pub []int // put but not published; published, not taken
				taken      int   // taken but not released
				next       int
				out, want  []int
			)
			for step := range 20000 {
				switch rng.IntN(6) {
				case 0: // PutRun
					items := make([]int, rng.IntN(2*capacity+2))
					for i := range items {
						items[i] = next + i
					}
					room := capacity - len(unpub) - len(pub) - taken
					n := q.PutRun(items)
					if wantN := min(len(items), room); n != wantN {
						t.Fatalf("step %d: PutRun(%d items) = %d with room %d", step, len(items), n, room)
					}
					unpub = append(unpub, items[:n]...)
					next += n
				case 1: // Put
					ok := q.Put(next)
					if room := capacity - len(unpub) - len(pub) - taken; ok != (room > 0) {
						t.Fatalf("step %d: Put = %v with room %d", step, ok, room)
					}
					if ok {
						unpub = append(unpub, next)
						next++
					}
				case 2:
					q.Publish()
					pub = append(pub, unpub...)
					unpub = unpub[:0]
				case 3: // PollRun
					limit := 1 + rng.IntN(capacity+1)
					run := q.PollRun(limit)
					if len(run) > limit || len(run) > len(pub) || (len(pub) > 0 && len(run) == 0) {
						t.Fatalf("step %d: PollRun(%d) took %d of %d published", step, limit, len(run), len(pub))
					}
					if diff := cmp.Diff(pub[:len(run)], append([]int(nil), run...)); len(run) > 0 && diff != "" {
						t.Fatalf("step %d: PollRun (-want +got)\n%s", step, diff)
					}
					out = append(out, run...)
					want = append(want, pub[:len(run)]...)
					pub = pub[len(run):]
					taken += len(run)
				case 4:
					v, ok := q.Poll()
					if ok != (len(pub) > 0) || (ok && v != pub[0]) {
						t.Fatalf("step %d: Poll = %d, %v with %v published", step, v, ok, pub)
					}
					if ok {
						out = append(out, v)
						want = append(want, pub[0])
						pub = pub[1:]
						taken++
					}
				case 5:
					q.Release()
					taken = 0
				}
			}
			if diff := cmp.Diff(want, out); diff != "" {
				t.Fatalf("items out (-want +got)\n%s", diff)
			}
			if len(out) < 1000 {
				t.Fatalf("only %d items went through: the model test is too weak", len(out))
			}
		})
	}
}

// TestSPSCRunsAcrossGoroutines passes a million items from a producer
// that uses PutRun to a consumer that uses PollRun, under -race, and
// checks that every item arrives once and in order.
func TestSPSCRunsAcrossGoroutines(t *testing.T) {
	const n = 1 << 20
	q := NewSPSC[int](100)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]int, 37)
		next := 0
		for next < n {
			k := min(len(buf), n-next)
			for i := range k {
				buf[i] = next + i
			}
			for put := 0; put < k; {
				put += q.PutRun(buf[put:k])
				q.Publish()
			}
			next += k
		}
	}()
	next := 0
	for next < n {
		run := q.PollRun(29)
		for _, v := range run {
			if v != next {
				t.Fatalf("got %d, want %d", v, next)
			}
			next++
		}
		q.Release()
	}
	wg.Wait()
}

// TestSPSCReleaseClearsRuns checks that the slots of a run taken by
// PollRun hold no pointers once released, across the wrap-around.
func TestSPSCReleaseClearsRuns(t *testing.T) {
	q := NewSPSC[*int](4)
	vals := make([]*int, 6)
	for i := range vals {
		vals[i] = new(int)
	}
	q.PutRun(vals[:3])
	q.Publish()
	q.PollRun(3)
	q.Release()
	if n := q.PutRun(vals[3:]); n != 3 {
		t.Fatalf("PutRun = %d, want 3", n)
	}
	q.Publish()
	if run := q.PollRun(4); len(run) != 1 { // stops at the wrap-around
		t.Fatalf("PollRun took %d, want 1 (up to the end of the storage)", len(run))
	}
	if run := q.PollRun(4); len(run) != 2 {
		t.Fatalf("PollRun took %d, want 2", len(run))
	}
	q.Release()
	for i, p := range q.buf {
		if p != nil {
			t.Errorf("slot %d still holds a pointer after Release", i)
		}
	}
}
