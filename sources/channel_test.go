package sources_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

// TestFromChannelReceivesOnlyOnDemand: a sender on an unbuffered channel
// stays blocked until there is demand; a Request waits for a value on the
// requesting goroutine; Cancel from another goroutine wakes it without
// taking a value, which stays for the next receiver.
func TestFromChannelReceivesOnlyOnDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan int)
		var sent atomic.Int32
		go func() {
			ch <- 1
			sent.Add(1)
		}()
		r := newRecorder[int](t)
		sources.FromChannel(ch).Subscribe(r)
		synctest.Wait()
		if got := sent.Load(); got != 0 {
			t.Fatalf("%d values received before any Request", got)
		}

		r.sub.Request(1) // a value is waiting: returns after delivering it
		synctest.Wait()
		if got := sent.Load(); got != 1 {
			t.Fatalf("sender unblocked %d times after Request(1), want 1", got)
		}

		var returned atomic.Bool
		go func() {
			r.sub.Request(1) // nothing to receive: blocks this goroutine
			returned.Store(true)
		}()
		synctest.Wait()
		if returned.Load() {
			t.Fatal("Request(1) returned with nothing to receive")
		}
		r.sub.Request(5) // from another goroutine: only adds demand
		r.sub.Cancel()
		synctest.Wait()
		if !returned.Load() {
			t.Fatal("Cancel did not wake the blocked Request")
		}
		if diff := cmp.Diff(logOf([]int{1}), r.Log()); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}

		// The cancelled subscription took nothing: the next value goes to a
		// new subscriber.
		go func() { ch <- 2 }()
		r2 := newRecorder[int](t)
		sources.FromChannel(ch).Subscribe(r2)
		r2.sub.Request(1)
		r2.sub.Cancel()
		if diff := cmp.Diff(logOf([]int{2}), r2.Log()); diff != "" {
			t.Errorf("second subscriber (-want +got)\n%s", diff)
		}
	})
}

// TestFromChannelBadRequestWakesTheWait: a non-positive request from
// another goroutine ends a subscription whose loop is blocked waiting,
// and the loop delivers the error.
func TestFromChannelBadRequestWakesTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan int)
		r := newRecorder[int](t)
		sources.FromChannel(ch).Subscribe(r)
		done := make(chan struct{})
		go func() {
			r.sub.Request(1)
			close(done)
		}()
		synctest.Wait()
		r.sub.Request(-2)
		<-done
		if diff := cmp.Diff(logOf[int](nil, badRequest(-2)), r.Log()); diff != "" {
			t.Errorf("(-want +got)\n%s", diff)
		}
	})
}

func TestFromChannelCompletesWhenClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan string)
		r := newRecorder[string](t)
		r.onSubscribe = requestFirst[string](flow.Unbounded)
		done := make(chan struct{})
		go func() {
			sources.FromChannel(ch).Subscribe(r)
			close(done)
		}()
		ch <- "a"
		ch <- "b"
		synctest.Wait()
		if diff := cmp.Diff(logOf([]string{"a", "b"}), r.Log()); diff != "" {
			t.Errorf("before close (-want +got)\n%s", diff)
		}
		close(ch)
		<-done
		if diff := cmp.Diff(logOf([]string{"a", "b"}, "OnComplete"), r.Log()); diff != "" {
			t.Errorf("after close (-want +got)\n%s", diff)
		}
	})
}

// TestFromChannelSubscribersCompete: each value goes to exactly one of
// several concurrent subscribers.
func TestFromChannelSubscribersCompete(t *testing.T) {
	const n = 2000
	ch := make(chan int)
	pub := sources.FromChannel(ch)
	recs := []*recorder[int]{newRecorder[int](t), newRecorder[int](t), newRecorder[int](t)}
	var wg sync.WaitGroup
	for _, r := range recs {
		r.onSubscribe = requestFirst[int](64)
		r.onNext = func(r *recorder[int], i, _ int) {
			if i%32 == 31 {
				r.sub.Request(32)
			}
		}
		wg.Go(func() { pub.Subscribe(r) })
	}
	for i := range n {
		ch <- i
	}
	close(ch)
	wg.Wait()
	var all []int
	for i, r := range recs {
		if !r.Terminated() || r.Err() != nil {
			t.Errorf("subscriber %d: did not complete: %v", i, r.Err())
		}
		items := r.Items()
		if !slices.IsSorted(items) {
			t.Errorf("subscriber %d: items out of order", i)
		}
		all = append(all, items...)
	}
	slices.Sort(all)
	if diff := cmp.Diff(ints(0, n), all); diff != "" {
		t.Errorf("union of the items (-want +got)\n%s", diff)
	}
}
