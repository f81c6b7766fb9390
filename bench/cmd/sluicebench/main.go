// Command sluicebench runs sluice's benchmark scenarios beside their
// baselines (a plain loop, Go channel pipelines, rxgo v2) and reports the
// figures as a markdown table and an SVG bar chart.
//
// Usage:
//
//	go run ./bench/cmd/sluicebench [flags]
//
// Each scenario runs -count times (5 by default), one run at a time, in
// rounds (the first run of every scenario, then the second…) so that a
// change in the machine's load hits every scenario alike; the
// table gives the median, min and max ns/item, the allocations per item,
// the peak heap during a run, the ratio of the median to each baseline
// of the scenario's group, and what the scenarios report themselves (the
// items delivered and dropped by the slow-sink scenarios).
// The progress goes to standard error: a bar redrawn in place on a
// terminal, a line per round (and every 10 s) otherwise.
//
// Flags:
//
//	-run regexp    run only the scenarios whose group/library/name matches
//	-n items       items per run for every scenario (default: each its own, 1e6 or 1e5)
//	-count n       timed runs per scenario (default 5)
//	-warmup n      untimed runs per scenario before the timed ones (default 1)
//	-md path       also write the markdown table to path
//	-svg path      write the SVG chart to path (default sluicebench.svg; "" for none)
//	-heap          sample the peak heap of each run (default true)
//	-list          list the scenarios and exit
//	-cpuprofile f  write a CPU profile of the runs to f
//	-memprofile f  write a heap profile to f at the end
//
// The figures are those of the machine it runs on, with whatever else
// runs there: quote medians of several runs, and compare only figures
// from the same run.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/sluicego/sluice/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command, with its arguments and outputs as parameters; it
// returns the exit code (2 for bad flags, 1 for failures).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluicebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		pattern    = fs.String("run", "", "run only the scenarios whose group/library/name matches this regexp")
		items      = fs.Int("n", 0, "items per run for every scenario (0: each scenario's own)")
		count      = fs.Int("count", 5, "timed runs per scenario")
		warmup     = fs.Int("warmup", 1, "untimed runs per scenario before the timed ones")
		mdPath     = fs.String("md", "", "also write the markdown table to this file")
		svgPath    = fs.String("svg", "sluicebench.svg", `write the SVG chart to this file ("" for none)`)
		list       = fs.Bool("list", false, "list the scenarios and exit")
		heap       = fs.Bool("heap", true, "sample the peak heap during each run (runtime/metrics, every ms)")
		cpuProfile = fs.String("cpuprofile", "", "write a CPU profile to this file")
		memProfile = fs.String("memprofile", "", "write a heap profile to this file at the end")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluicebench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *count <= 0 || *items < 0 || *warmup < 0 {
		fmt.Fprintln(stderr, "sluicebench: -count must be > 0, -n and -warmup >= 0")
		return 2
	}
	re, err := regexp.Compile(*pattern)
	if err != nil {
		fmt.Fprintf(stderr, "sluicebench: -run: %v\n", err)
		return 2
	}
	var scenarios []bench.Scenario
	for _, s := range bench.Scenarios() {
		if re.MatchString(s.ID()) {
			scenarios = append(scenarios, s)
		}
	}
	if *list {
		for _, s := range scenarios {
			fmt.Fprintln(stdout, s.ID())
		}
		return 0
	}
	if len(scenarios) == 0 {
		fmt.Fprintf(stderr, "sluicebench: no scenario matches %q (see -list)\n", *pattern)
		return 1
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "sluicebench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "sluicebench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	p := newProgress(stderr, isTerminal(stderr))
	loadBefore := loadAverage()
	start := time.Now()
	results, err := bench.Measure(ctx, scenarios, bench.Options{
		Count: *count, Items: *items, Warmup: *warmup, PeakHeap: *heap, Progress: p.update,
	})
	p.finish(time.Since(start))
	if err != nil {
		fmt.Fprintf(stderr, "sluicebench: %v\n", err)
		return 1
	}

	cmdline := "sluicebench " + strings.Join(args, " ")
	machine := fmt.Sprintf("%s, %s/%s, %d CPUs, GOMAXPROCS=%d, %s",
		cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	if loadBefore != "" {
		machine += fmt.Sprintf(", load average %s before, %s after", loadBefore, loadAverage())
	}
	var md bytes.Buffer
	fmt.Fprintf(&md, "`%s` on %s; medians of %d runs.\n\n", strings.TrimSpace(cmdline), machine, *count)
	if err := bench.Markdown(&md, results); err != nil {
		fmt.Fprintf(stderr, "sluicebench: %v\n", err)
		return 1
	}
	if _, err := stdout.Write(md.Bytes()); err != nil {
		return 1
	}
	if *mdPath != "" {
		if err := os.WriteFile(*mdPath, md.Bytes(), 0o644); err != nil {
			fmt.Fprintf(stderr, "sluicebench: %v\n", err)
			return 1
		}
	}
	if *svgPath != "" {
		var svg bytes.Buffer
		err := bench.SVG(&svg, results, bench.ChartOptions{
			Title:    fmt.Sprintf("sluice vs baselines: ns per item, median of %d", *count),
			Subtitle: machine,
		})
		if err == nil {
			err = os.WriteFile(*svgPath, svg.Bytes(), 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "sluicebench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "chart written to %s\n", *svgPath)
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			fmt.Fprintf(stderr, "sluicebench: %v\n", err)
			return 1
		}
	}
	return 0
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	return errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
}

// progress reports the runs done: on a terminal, a bar redrawn in place
// with \r; otherwise a line at the start of each round and at least every
// 10 seconds.
type progress struct {
	w        io.Writer
	tty      bool
	first    string    // the first scenario of a round
	lastLine time.Time // when the last line was written
	drew     bool
}

func newProgress(w io.Writer, tty bool) *progress { return &progress{w: w, tty: tty} }

func (p *progress) update(done, total int, s bench.Scenario) {
	if s.Run == nil { // the final call
		return
	}
	id := s.ID()
	if p.tty {
		const width = 30
		filled := width * done / max(total, 1)
		fmt.Fprintf(p.w, "\r[%s%s] %3d/%d %-60.60s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total, id)
		p.drew = true
		return
	}
	// A line per round (the first scenario of each) and every 10 s.
	if id == p.first || done == 0 || time.Since(p.lastLine) >= 10*time.Second {
		if done == 0 {
			p.first = id
		}
		fmt.Fprintf(p.w, "[%d/%d] %s\n", done, total, id)
		p.lastLine = time.Now()
	}
}

func (p *progress) finish(elapsed time.Duration) {
	if p.drew {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", 100)+"\r")
	}
	fmt.Fprintf(p.w, "done in %v\n", elapsed.Round(time.Millisecond))
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or
// "" where there is none: a loaded machine gives noisy figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// cpuModel returns the CPU's model name from /proc/cpuinfo, or GOARCH.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}
