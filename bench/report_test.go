package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/bench/internal/svgtext"
)

func fakeResults() []Result {
	rs := []Result{
		{Scenario: Scenario{Group: "g", Library: "go", Name: "loop", Baseline: true}, Items: 1_000_000, Median: 2, Min: 1.5, Max: 3},
		{Scenario: Scenario{Group: "g", Library: "sluice", Name: "a|b"}, Items: 1_000_000, Median: 20, Min: 10, Max: 400, AllocsPerItem: 0.5, BytesPerItem: 8,
			PeakHeapBytes: 3 << 20, Metrics: map[string]float64{"z": 1, "dropped": 12345, "mean": 2.5}},
		{Scenario: Scenario{Group: "h<&>", Library: "rxgo", Name: "x"}, Items: 1000, Median: 1500, Min: 1500, Max: 1500},
	}
	return finish(rs)
}

func TestFinishRatios(t *testing.T) {
	rs := fakeResults()
	got := [][]Ratio{rs[0].Ratios, rs[1].Ratios, rs[2].Ratios}
	want := [][]Ratio{{{"go/loop", 1}}, {{"go/loop", 10}}, nil}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ratios (-want +got):\n%s", d)
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b, fakeResults()); err != nil {
		t.Fatal(err)
	}
	want := `| scenario | library | variant | items | ns/item (median) | min | max | allocs/item | B/item | peak heap | vs baselines | other |
|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|
| g | go | loop (baseline) | 1e6 | 2.00 | 1.50 | 3.00 | 0 | 0 |  |  |  |
| g | sluice | a\|b | 1e6 | 20.0 | 10.0 | 400 | 0.50 | 8.0 | 3.00 MiB | ×10 go/loop | dropped=12345, mean=2.50, z=1 |
| h<&> | rxgo | x | 1e3 | 1500 | 1500 | 1500 | 0 | 0 |  |  |  |
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("Markdown (-want +got):\n%s", d)
	}
}

// parseSVG returns the texts of the SVG document r by class (see
// svgtext.Texts), failing t if it is not well-formed.
func parseSVG(t *testing.T, r io.Reader) map[string][]string {
	t.Helper()
	texts, err := svgtext.Texts(r)
	if err != nil {
		t.Fatalf("SVG is not well-formed XML: %v", err)
	}
	return texts
}

func TestSVG(t *testing.T) {
	var b bytes.Buffer
	if err := SVG(&b, fakeResults(), ChartOptions{Title: "T & co", Subtitle: "go test"}); err != nil {
		t.Fatal(err)
	}
	got := parseSVG(t, &b)
	want := map[string][]string{
		"title":    {"T & co"}, // the <title> element
		"subtitle": {"go test"},
		"x-label":  {"ns per item (median, log scale; whiskers: min–max)"},
		"y-label":  {"scenario / library / variant"},
		"legend":   {"go", "sluice", "rxgo"},
	}
	for k, w := range want {
		g := got[k]
		if k == "title" { // the <title> element, the heading, then the bars' tooltips
			w = []string{"T & co", "T & co", "g/go/loop: 2.00 ns/item (min 1.50, max 3.00)",
				"g/sluice/a|b: 20.0 ns/item (min 10.0, max 400)", "h<&>/rxgo/x: 1500 ns/item (min 1500, max 1500)"}
		}
		if d := cmp.Diff(w, g); d != "" {
			t.Errorf("%s (-want +got):\n%s", k, d)
		}
	}
}

func TestMeasure(t *testing.T) {
	var runs []int
	var progress []int
	s := []Scenario{
		{Group: "g", Library: "go", Name: "base", Baseline: true, Items: 7, Run: func(_ context.Context, n int) error { runs = append(runs, n); return nil }},
		{Group: "g", Library: "x", Name: "y", Run: func(ctx context.Context, n int) error {
			runs = append(runs, n)
			ReportMetric(ctx, "runs", float64(len(runs)))
			return nil
		}},
	}
	rs, err := Measure(context.Background(), s, Options{Count: 2, Warmup: 1, PeakHeap: true, Progress: func(done, total int, _ Scenario) {
		progress = append(progress, done, total)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int{7, DefaultItems, 7, DefaultItems, 7, DefaultItems}, runs); d != "" {
		t.Errorf("runs (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int{0, 6, 1, 6, 2, 6, 3, 6, 4, 6, 5, 6, 6, 6}, progress); d != "" {
		t.Errorf("progress (-want +got):\n%s", d)
	}
	if len(rs) != 2 || len(rs[0].NsPerItem) != 2 || len(rs[1].Ratios) != 1 || rs[1].Ratios[0].Baseline != "go/base" {
		t.Errorf("results = %+v", rs)
	}
	// The timed runs of x/y were the 4th and 6th runs: median 5.
	if d := cmp.Diff(map[string]float64{"runs": 5}, rs[1].Metrics); d != "" {
		t.Errorf("metrics (-want +got):\n%s", d)
	}
	if rs[0].Metrics != nil || rs[0].PeakHeapBytes <= 0 {
		t.Errorf("go/base: metrics %v, peak heap %v; want none, > 0", rs[0].Metrics, rs[0].PeakHeapBytes)
	}
	ReportMetric(context.Background(), "outside", 1) // does nothing

	boom := errors.New("boom")
	s[1].Run = func(context.Context, int) error { return boom }
	rs, err = Measure(context.Background(), s, Options{Count: 1})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "g/x/y") || rs != nil {
		t.Errorf("Measure with a failing run = %d results, %v; want none, boom wrapped with g/x/y", len(rs), err)
	}
}
