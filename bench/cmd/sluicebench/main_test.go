package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/bench/internal/svgtext"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunTableAndChart(t *testing.T) {
	dir := t.TempDir()
	svgPath, mdPath := filepath.Join(dir, "chart.svg"), filepath.Join(dir, "table.md")
	var stdout, stderr bytes.Buffer
	args := []string{"-n", "2000", "-count", "1", "-warmup", "0", "-run", "^(map-filter-reduce|batch|slow-sink)/", "-heap",
		"-svg", svgPath, "-md", mdPath, "-cpuprofile", filepath.Join(dir, "cpu.pprof"), "-memprofile", filepath.Join(dir, "mem.pprof")}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run = %d; stderr:\n%s", code, stderr.String())
	}

	// The table: a header, a separator, and one row of 10 cells per
	// scenario, in the suite's order.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rows [][]string
	for _, l := range lines {
		if strings.HasPrefix(l, "|") {
			cells := strings.Split(strings.Trim(l, "|"), " | ")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows = append(rows, cells)
		}
	}
	if len(rows) < 2 {
		t.Fatalf("no table in the output:\n%s", stdout.String())
	}
	if d := cmp.Diff([]string{"scenario", "library", "variant", "items", "ns/item (median)", "min", "max", "allocs/item", "B/item", "peak heap", "vs baselines", "other"}, rows[0]); d != "" {
		t.Errorf("header (-want +got):\n%s", d)
	}
	var ids []string
	for _, r := range rows[2:] {
		if len(r) != 12 {
			t.Errorf("row %q has %d cells, want 12", r, len(r))
			continue
		}
		ids = append(ids, r[0]+"/"+r[1]+"/"+strings.TrimSuffix(r[2], " (baseline)"))
		if r[3] != "2e3" {
			t.Errorf("row %q: items %q, want 2e3", r, r[3])
		}
	}
	wantIDs := []string{
		"map-filter-reduce/go/plain-loop", "map-filter-reduce/sluice/sync", "map-filter-reduce/sluice/async",
		"map-filter-reduce/go/chan/unbuffered", "map-filter-reduce/go/chan/buffered=256", "map-filter-reduce/go/chan/slices=256",
		"map-filter-reduce/rxgo/unbuffered", "map-filter-reduce/rxgo/buffered=256",
		"batch/go/plain-loop/size=256", "batch/sluice/size=256",
		"slow-sink/go/sink-loop", "slow-sink/sluice/buffer=1024/Block", "slow-sink/sluice/buffer=1024/DropNewest",
		"slow-sink/sluice/buffer=1024/DropOldest", "slow-sink/sluice/buffer=1024/Fail",
	}
	if d := cmp.Diff(wantIDs, ids); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
	if !strings.Contains(rows[3][10], "go/plain-loop") || !strings.Contains(rows[3][10], "go/chan/buffered=256") || !strings.Contains(rows[3][10], "rxgo/unbuffered") {
		t.Errorf("sluice/sync row has ratios %q, want one per baseline of its group", rows[3][10])
	}
	for _, r := range rows[2:] {
		if !strings.HasSuffix(r[9], "iB") {
			t.Errorf("row %q: peak heap %q, want KiB or MiB", r, r[9])
		}
		if strings.HasPrefix(r[0], "slow-sink") && r[1] == "sluice" && (!strings.Contains(r[11], "delivered=") || !strings.Contains(r[11], "dropped=")) {
			t.Errorf("slow-sink row %q has no delivered/dropped counts", r)
		}
	}
	md, err := os.ReadFile(mdPath)
	if err != nil || string(md) != stdout.String() {
		t.Errorf("-md file differs from the printed table (err %v)", err)
	}

	// The chart: well-formed XML with a title, two labelled axes and a
	// legend naming each library.
	f, err := os.Open(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	texts := svgTexts(t, f)
	for _, k := range []string{"title", "x-label", "y-label"} {
		if len(texts[k]) == 0 || texts[k][0] == "" {
			t.Errorf("chart has no %s", k)
		}
	}
	if d := cmp.Diff([]string{"go", "sluice", "rxgo"}, texts["legend"]); d != "" {
		t.Errorf("legend (-want +got):\n%s", d)
	}
	for _, p := range []string{"cpu.pprof", "mem.pprof"} {
		if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s not written: %v", p, err)
		}
	}
	if !strings.Contains(stderr.String(), "[0/15] map-filter-reduce/go/plain-loop\n") {
		t.Errorf("no progress lines on stderr:\n%s", stderr.String())
	}
}

// svgTexts returns the texts of the SVG document r by class (see
// svgtext.Texts), failing t if it is not well-formed.
func svgTexts(t *testing.T, r io.Reader) map[string][]string {
	t.Helper()
	texts, err := svgtext.Texts(r)
	if err != nil {
		t.Fatalf("chart is not well-formed XML: %v", err)
	}
	return texts
}

func TestRunBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-count", "0"}, {"-run", "("}, {"extra"}, {"-nosuchflag"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-run", "^nothing$"}, &stdout, &stderr); code != 1 {
		t.Errorf("run with no scenario = %d, want 1", code)
	}
}

func TestRunList(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"-list", "-run", "^broadcast/"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run -list = %d", code)
	}
	if d := cmp.Diff("broadcast/go/chan/subs=2/buffered=256\nbroadcast/sluice/subs=2\n", stdout.String()); d != "" {
		t.Errorf("-list (-want +got):\n%s", d)
	}
}
