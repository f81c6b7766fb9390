package operators_test

import (
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sources"
)

// reuseRecorder copies every batch it gets (it must not keep them) and
// notes which backing arrays it was handed.
type reuseRecorder struct {
	sub     flow.Subscription
	batches [][]int
	arrays  map[unsafe.Pointer]int
	done    bool
}

func (r *reuseRecorder) OnSubscribe(s flow.Subscription) { r.sub = s; s.Request(1) }
func (r *reuseRecorder) OnNext(b []int) {
	r.batches = append(r.batches, append([]int(nil), b...))
	r.arrays[unsafe.Pointer(unsafe.SliceData(b))]++
	r.sub.Request(1)
}
func (r *reuseRecorder) OnError(err error) { panic(err) }
func (r *reuseRecorder) OnComplete()       { r.done = true }

func TestBatchReuseBatchesRecyclesSlices(t *testing.T) {
	r := &reuseRecorder{arrays: map[unsafe.Pointer]int{}}
	operators.Batch(sources.Range(0, 100), 8, 0, operators.ReuseBatches()).Subscribe(r)
	var want [][]int
	for i := 0; i < 100; i += 8 {
		var b []int
		for j := i; j < min(i+8, 100); j++ {
			b = append(b, j)
		}
		want = append(want, b)
	}
	if diff := cmp.Diff(want, r.batches); diff != "" || !r.done {
		t.Fatalf("batches (done=%v) (-want +got)\n%s", r.done, diff)
	}
	// One batch at a time over a synchronous source: the stage holds at
	// most batchAhead+1 slices, so 13 batches come from a handful of arrays.
	if len(r.arrays) > 6 {
		t.Errorf("%d distinct arrays for %d batches: slices are not recycled", len(r.arrays), len(r.batches))
	}
}

func TestBatchReuseBatchesWithMaxWaitPanics(t *testing.T) {
	err := flow.Catch(func() { operators.Batch(sources.Range(0, 1), 8, 1, operators.ReuseBatches()) })
	if err == nil || err.Error() != "sluice: panic: sluice: Batch: ReuseBatches needs maxWait == 0" {
		t.Errorf("Batch(maxWait > 0, ReuseBatches) = %v", err)
	}
}

func TestBatchReuseBatchesConformance(t *testing.T) {
	flowtest.VerifyPublisher(t, flowtest.PublisherConfig[[]int]{
		New: func(n int64) flow.Publisher[[]int] {
			return operators.Batch(sources.Range(0, int(n)), 1, 0, operators.ReuseBatches())
		},
		MaxElements: 1 << 10,
	})
}
