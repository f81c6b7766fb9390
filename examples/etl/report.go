package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicego/sluice/monitor"
)

// report is what the job did.
type report struct {
	cfg        config
	Input      string
	InputBytes int64
	GenTime    time.Duration // 0 when the input was given
	Target     string
	Rejects    string
	Metrics    string

	Read, Written, Rejected int64
	InTable                 int64 // rows in the table after the load
	Reasons                 map[string]int64
	Reconciled              bool
	Wall                    time.Duration
	Snapshot                monitor.Snapshot
	Err                     error // the load's error, if it failed
}

// printHeader prints what the job is about to do.
func (r *report) printHeader(w io.Writer, total int) {
	c := r.cfg
	fmt.Fprintf(w, "sluice ETL: %s trips, %d enrich workers, batches of %s (max wait %v)\n",
		commas(int64(total)), c.Workers, commas(int64(c.Batch)), c.MaxWait)
	if r.GenTime > 0 || c.In == "" {
		kept := "deleted at the end; -keep keeps it"
		if c.Keep {
			kept = "kept"
		}
		fmt.Fprintf(w, "  input    %s (generated: %s in %v, %s)\n", r.Input, mb(r.InputBytes), r.GenTime.Round(time.Millisecond), kept)
	} else {
		fmt.Fprintf(w, "  input    %s (%s)\n", r.Input, mb(r.InputBytes))
	}
	fmt.Fprintf(w, "  output   %s\n", r.Target)
	fmt.Fprintf(w, "  rejects  %s\n", r.Rejects)
	if r.Metrics != "" {
		fmt.Fprintf(w, "  metrics  %s\n", r.Metrics)
	}
	fmt.Fprintln(w)
}

// print prints the monitor's table, the totals and the throughput.
func (r *report) print(w io.Writer) {
	fmt.Fprintln(w, "\nStages (monitor snapshot; for batch and below, items are batches)")
	snap := r.Snapshot
	var b strings.Builder
	_ = snap.WriteTable(&b)
	for _, line := range strings.SplitAfter(strings.TrimRight(b.String(), "\n"), "\n") {
		fmt.Fprint(w, "  ", line)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "\nTotals")
	width := len(commas(r.Read))
	row := func(name string, n int64, note string) {
		fmt.Fprintf(w, "  %-10s %*s  %s\n", name, width, commas(n), note)
	}
	row("read", r.Read, "records in the input")
	inTable := ""
	if r.Err == nil {
		inTable = fmt.Sprintf("rows committed (the table holds %s)", commas(r.InTable))
	} else {
		inTable = "rows committed before the job stopped"
	}
	row("written", r.Written, inTable)
	row("rejected", r.Rejected, "records in the reject file, by reason:")
	for _, reason := range reasons {
		if n := r.Reasons[reason]; n > 0 {
			row("", n, "  "+reason)
		}
	}
	switch {
	case r.Err != nil:
		fmt.Fprintf(w, "  incomplete: the job stopped (%v); %s records were in flight and are in neither count\n",
			r.Err, commas(r.Read-r.Written-r.Rejected))
	case r.Reconciled:
		fmt.Fprintf(w, "  read = written + rejected: %s = %s + %s, and the table holds every written row: OK\n",
			commas(r.Read), commas(r.Written), commas(r.Rejected))
	default:
		fmt.Fprintf(w, "  MISMATCH: read %s, written + rejected %s, in table %s\n",
			commas(r.Read), commas(r.Written+r.Rejected), commas(r.InTable))
	}

	fmt.Fprintln(w)
	rate := 0.0
	if r.Wall > 0 {
		rate = float64(r.Read) / r.Wall.Seconds()
	}
	fmt.Fprintf(w, "  wall time %v, %s records/s from the first read to the last commit", r.Wall.Round(time.Millisecond), commas(int64(rate)))
	if r.GenTime > 0 {
		fmt.Fprintf(w, " (generating the input took %v more)", r.GenTime.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
}

// progress shows the job's progress: a bar redrawn in place on a
// terminal, or a line per period otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	read  *atomic.Int64
	rej   *rejects
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup
}

func startProgress(w io.Writer, cfg config, total int, read *atomic.Int64, rej *rejects) *progress {
	p := &progress{w: w, tty: cfg.TTY, total: total, read: read, rej: rej, start: time.Now(), done: make(chan struct{})}
	every := cfg.Interval
	if every <= 0 {
		every = time.Second
		if p.tty {
			every = 100 * time.Millisecond
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.show(false)
			}
		}
	}()
	return p
}

// stop ends the updates and shows the final state.
func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
	p.show(true)
}

func (p *progress) show(final bool) {
	n := p.read.Load()
	el := time.Since(p.start)
	rate := float64(n) / el.Seconds()
	pct := 100.0
	if p.total > 0 {
		pct = min(100, float64(n)*100/float64(p.total))
	}
	eta := "--"
	switch {
	case final:
		eta = "done"
	case rate > 0 && int64(p.total) > n:
		eta = (time.Duration(float64(int64(p.total)-n)/rate*float64(time.Second)) + time.Second/2).Truncate(time.Second).String()
	case int64(p.total) <= n:
		eta = "0s"
	}
	width := len(commas(int64(p.total)))
	stats := fmt.Sprintf("%*s/%s read  %*s rows/s  ETA %-5s  rejected %s",
		width, commas(n), commas(int64(p.total)), 9, commas(int64(rate)), eta, commas(p.rej.count()))
	if p.tty {
		const bar = 30
		k := int(pct * bar / 100)
		fmt.Fprintf(p.w, "\r\x1b[K  [%s%s] %3.0f%%  %s", strings.Repeat("█", k), strings.Repeat("░", bar-k), pct, stats)
		if final {
			fmt.Fprintln(p.w)
		}
		return
	}
	fmt.Fprintf(p.w, "  %6s  %3.0f%%  %s\n", el.Truncate(100*time.Millisecond), pct, stats)
}

// commas formats n with thousands separators.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// mb formats a byte count in megabytes.
func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
