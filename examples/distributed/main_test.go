package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestThreeWorkersShareTheJobs runs the example small, with its embedded
// server: every job is processed once, by one of three workers, and the
// report names every stage.
func TestThreeWorkersShareTheJobs(t *testing.T) {
	const n = 3000
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := run(ctx, &out, options{
		mode: "all", workers: 3, n: n, stream: "JOBS", durable: "workers",
		maxAck: 1000, pullWait: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	total := 0
	for _, c := range res.PerWorker {
		total += c
	}
	got := struct {
		Produced       int64
		Workers, Total int
		Distinct       int
	}{res.Produced, len(res.PerWorker), total, res.Distinct}
	want := struct {
		Produced       int64
		Workers, Total int
		Distinct       int
	}{n, 3, n, n}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s\n%s", diff, out.String())
	}
	for _, s := range []string{"produced 3000 jobs to JOBS", "total: 3000 jobs processed, 3000 distinct",
		"publish", "pull-w1", "pull-w2", "pull-w3", "commit-w1", "commit-w2", "commit-w3"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
	t.Log("\n" + out.String())
}

func TestUnknownMode(t *testing.T) {
	if _, err := run(context.Background(), &strings.Builder{}, options{mode: "nope"}); err == nil {
		t.Error("run accepted -mode nope")
	}
}
