package main

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A short run on loopback: both generators get every event accepted, and
// what was accepted was delivered (run checks it and fails otherwise).
func TestRun(t *testing.T) {
	var out strings.Builder
	err := run(&out, params{clients: 8, events: 300, capacity: 16, sinkDelay: 100 * time.Microsecond, unit: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 5 || !strings.HasPrefix(lines[3], "polite") || !strings.HasPrefix(lines[4], "impatient") {
		t.Fatalf("output:\n%s", out.String())
	}
	for _, l := range lines[3:5] {
		f := strings.Fields(l)
		if f[2] != "300" || f[7] != "300" {
			t.Errorf("row %q: want 300 accepted and 300 delivered", l)
		}
	}
}
