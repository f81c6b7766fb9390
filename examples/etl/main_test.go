package main

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunWritesGoodRowsAndRejectsBadOnes(t *testing.T) {
	dir := t.TempDir()
	cfg := config{rows: 1000, batch: 64, maxWait: time.Second, out: filepath.Join(dir, "out.csv"), rejects: filepath.Join(dir, "rej.csv")}
	rep, err := run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep.Elapsed = 0
	want := &report{
		Generated: 1000, Parsed: 1000, Rejected: 20, Written: 980, Batches: 16, // ceil(980/64)
		Reasons: map[string]int64{"bad field count": 4, "bad id": 4, "bad quantity": 3, "bad price": 3, "empty customer": 3, "unknown country": 3},
		Out:     cfg.out, Rejects: cfg.rejects,
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("report (-want +got)\n%s", diff)
	}
	out := readCSV(t, cfg.out)
	if len(out) != 981 {
		t.Fatalf("output has %d records, want header + 980", len(out))
	}
	if diff := cmp.Diff([]string{"100000", "customer-0", "FR", "110"}, out[1]); diff != "" { // 1 × 1.10
		t.Errorf("first output row (-want +got)\n%s", diff)
	}
	rej := readCSV(t, cfg.rejects)
	if diff := cmp.Diff([]string{"100049,customer-49,DE,5", "bad field count"}, rej[1]); diff != "" {
		t.Errorf("first reject (-want +got)\n%s", diff)
	}
}

func TestRunStopsWhenContextIsCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := config{rows: 1000, batch: 10, out: filepath.Join(dir, "out.csv"), rejects: filepath.Join(dir, "rej.csv")}
	_, err := run(ctx, cfg, nil)
	if err == nil || !isCanceled(err) {
		t.Errorf("run = %v, want context.Canceled", err)
	}
}

func TestParseCents(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{{"1.10", 110, true}, {"3", 300, true}, {"0.5", 50, true}, {"2.345", 0, false}, {"free", 0, false}, {"-1.00", 0, false}}
	for _, tt := range tests {
		got, ok := parseCents(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseCents(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }
