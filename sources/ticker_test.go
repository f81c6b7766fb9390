package sources_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/sources"
)

// tickerRun subscribes to a Ticker of period 10ms under synctest, lets
// script drive the subscriber, then cancels and returns the ticks received
// (as offsets from the start), when they arrived, the result, and the
// drops (as offsets).
func tickerRun(t *testing.T, policy flow.Overflow, script func(rec *flowtest.Subscriber[time.Time])) (ticks, arrivals []time.Duration, result string, drops []emDrop[time.Duration]) {
	t.Helper()
	start := time.Now()
	var hook emDrops[time.Time]
	rec := flowtest.NewSubscriber[time.Time](t, 0)
	sources.Ticker(10*time.Millisecond, policy, sources.Name("tk"), sources.OnDrop(hook.Hook)).Subscribe(rec)
	script(rec)
	result = rec.Outcome()
	rec.Cancel()
	for _, v := range rec.Items() {
		ticks = append(ticks, v.Sub(start))
	}
	for _, d := range hook.All() {
		drops = append(drops, emDrop[time.Duration]{d.Item.Sub(start), d.Reason})
	}
	return ticks, rec.ItemOffsets(start), result, drops
}

func TestTicker(t *testing.T) {
	ms := time.Millisecond
	t.Run("DropOldest keeps the latest tick while there is no demand", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ticks, arrivals, result, drops := tickerRun(t, flow.DropOldest, func(rec *flowtest.Subscriber[time.Time]) {
				rec.Request(1)
				time.Sleep(45 * ms)
				rec.Request(1)
			})
			got := []any{ticks, arrivals, result, drops}
			want := []any{
				[]time.Duration{10 * ms, 40 * ms},
				[]time.Duration{10 * ms, 45 * ms},
				"open",
				[]emDrop[time.Duration]{{20 * ms, flow.ReasonOldest}, {30 * ms, flow.ReasonOldest}},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("DropNewest keeps the earliest", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ticks, _, _, drops := tickerRun(t, flow.DropNewest, func(rec *flowtest.Subscriber[time.Time]) {
				time.Sleep(35 * ms)
				rec.Request(1)
			})
			got := []any{ticks, drops}
			want := []any{
				[]time.Duration{10 * ms},
				[]emDrop[time.Duration]{{20 * ms, flow.ReasonNewest}, {30 * ms, flow.ReasonNewest}},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("Fail ends the stream after the pending tick", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ticks, arrivals, result, drops := tickerRun(t, flow.Fail, func(rec *flowtest.Subscriber[time.Time]) {
				time.Sleep(25 * ms)
				rec.Request(5)
			})
			got := []any{ticks, arrivals, result, drops}
			want := []any{
				[]time.Duration{10 * ms},
				[]time.Duration{25 * ms},
				"error: sluice: buffer overflow: tk (capacity 1)",
				[]emDrop[time.Duration]{{20 * ms, flow.ReasonOverflow}},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("Block holds the ticking goroutine until there is room", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ticks, arrivals, _, drops := tickerRun(t, flow.Block, func(rec *flowtest.Subscriber[time.Time]) {
				time.Sleep(45 * ms)
				rec.Request(2)
				synctest.Wait()
			})
			got := []any{ticks, arrivals, drops}
			want := []any{
				[]time.Duration{10 * ms, 20 * ms},
				[]time.Duration{45 * ms, 45 * ms},
				// time.Ticker kept the 30ms tick for its late receiver
				// (and skipped 40ms); it was buffered at 45ms and dropped
				// by the cancel.
				[]emDrop[time.Duration]{{30 * ms, flow.ReasonCancelled}},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
	t.Run("each subscriber has its own ticker", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			pub := sources.Ticker(10*ms, flow.DropOldest)
			start := time.Now()
			a := flowtest.NewSubscriber[time.Time](t, 2)
			pub.Subscribe(a)
			time.Sleep(5 * ms)
			b := flowtest.NewSubscriber[time.Time](t, 2)
			pub.Subscribe(b)
			time.Sleep(30 * ms)
			a.Cancel()
			b.Cancel()
			got := []any{a.ItemOffsets(start), b.ItemOffsets(start)}
			want := []any{[]time.Duration{10 * ms, 20 * ms}, []time.Duration{15 * ms, 25 * ms}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	})
}
