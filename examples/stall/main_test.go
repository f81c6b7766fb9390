package main

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTheDetectorNamesTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		if err := run(context.Background(), &out, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		want := `level=WARN msg="sluice: stage stalled" pipeline=stall-demo stage=queue kind=stalled position=4 stages=5 for=2s buffered=48 requested=16 delivered=16 last_request=2000-01-01T00:00:00.000Z

the sink received 16 items, then: sluice: pipeline "stall-demo": stage "queue" (buffer, position 4 of 5) stalled for 2s (its subscriber stopped requesting): buffered 48, requested 16, delivered 16, last request 2s ago

POS  STAGE   KIND     STATE      REQUESTED  DELIVERED  DEMAND  BUFFERED  DROPPED       ERRORS  STALLS
1    read    range    cancelled  64         64         0       0         0             0       0
2    format  map      cancelled  64         64         0       0         0             0       0
3    parse   maperr   cancelled  64         64         0       0         0             0       0
4    queue   buffer   cancelled  16         16         0       0         cancelled=48  0       1
5    write   forEach  cancelled  256        16         240     0         0             0       0
`
		if diff := cmp.Diff(want, out.String()); diff != "" {
			t.Errorf("output (-want +got)\n%s", diff)
		}
	})
}
