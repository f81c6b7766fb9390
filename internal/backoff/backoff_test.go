package backoff_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/internal/backoff"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDelay(t *testing.T) {
	ms := time.Millisecond
	var got []time.Duration
	for k := 1; k <= 5; k++ {
		got = append(got, backoff.Delay(k, 100*ms, time.Second, 2, backoff.None, 0.5))
	}
	got = append(got,
		backoff.Delay(3, 100*ms, time.Second, 2, backoff.Full, 0.5),  // 400 ms × 0.5
		backoff.Delay(3, 100*ms, time.Second, 2, backoff.Equal, 0.5), // 200 ms + 200 ms × 0.5
		backoff.Delay(2, 100*ms, time.Second, 2, backoff.Full, 7),    // u clamped to 1
		backoff.Delay(200, 100*ms, time.Second, 2, backoff.None, 0),  // overflow: the cap
	)
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, 200 * ms, 300 * ms, 200 * ms, time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delays (-want +got)\n%s", diff)
	}
}
