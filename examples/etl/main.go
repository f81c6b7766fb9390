// Command etl is sluice's main job: an extract-transform-load pipeline
// that runs end to end on embedded defaults.
//
//	go run ./examples/etl                 # 100 000 generated orders
//	go run ./examples/etl -rows 1000000 -batch 1000 -out /tmp/orders.csv
//
// The pipeline generates CSV order lines (about 1 in 50 deliberately bad),
// parses and validates them, sends the bad rows with their reasons to a
// reject file, converts the good ones to a normalised record, batches them
// by size and time, and writes each batch to the output CSV file. Demand
// flows from the writer back to the generator: the generator produces a
// line only when a batch has room for it. At the end it prints a report
// of what each stage saw.
package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

func main() {
	var cfg config
	flag.IntVar(&cfg.rows, "rows", 100_000, "number of order lines to generate")
	flag.IntVar(&cfg.batch, "batch", 500, "rows per write batch")
	flag.DurationVar(&cfg.maxWait, "max-wait", 100*time.Millisecond, "longest a partial batch waits before it is written")
	flag.StringVar(&cfg.out, "out", filepath.Join(os.TempDir(), "sluice-etl", "orders.csv"), "output CSV file")
	flag.StringVar(&cfg.rejects, "rejects", "", "reject file (default: rejects.csv beside -out)")
	flag.Parse()
	if cfg.rejects == "" {
		cfg.rejects = filepath.Join(filepath.Dir(cfg.out), "rejects.csv")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, cfg, os.Stderr)
	rep.print(os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etl:", err)
		os.Exit(1)
	}
}

type config struct {
	rows     int
	batch    int
	maxWait  time.Duration
	out      string
	rejects  string
	progress bool
}

// order is a validated, normalised row.
type order struct {
	ID       int64
	Customer string
	Country  string
	Cents    int64 // quantity × unit price
}

// parsed is a line after parsing: an order, or the reason it was rejected.
type parsed struct {
	Line   string
	Order  order
	Reason string
}

// report counts what each stage saw.
type report struct {
	Generated, Parsed, Rejected, Written, Batches int64
	Reasons                                       map[string]int64
	Elapsed                                       time.Duration
	Out, Rejects                                  string
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nstage       items\n")
	fmt.Fprintf(w, "generate    %d\n", r.Generated)
	fmt.Fprintf(w, "parse       %d\n", r.Parsed)
	fmt.Fprintf(w, "validate    %d rejected\n", r.Rejected)
	for _, reason := range []string{"bad field count", "bad id", "bad quantity", "bad price", "empty customer", "unknown country"} {
		if n := r.Reasons[reason]; n > 0 {
			fmt.Fprintf(w, "  %-16s %d\n", reason, n)
		}
	}
	fmt.Fprintf(w, "batch       %d batches\n", r.Batches)
	fmt.Fprintf(w, "write       %d rows\n", r.Written)
	if r.Elapsed > 0 {
		fmt.Fprintf(w, "\n%d rows in %v (%.0f rows/s)\n", r.Generated, r.Elapsed.Round(time.Millisecond), float64(r.Generated)/r.Elapsed.Seconds())
	}
	fmt.Fprintf(w, "output:  %s\nrejects: %s\n", r.Out, r.Rejects)
}

func run(ctx context.Context, cfg config, progress io.Writer) (*report, error) {
	rep := &report{Reasons: map[string]int64{}, Out: cfg.out, Rejects: cfg.rejects}
	if err := os.MkdirAll(filepath.Dir(cfg.out), 0o755); err != nil {
		return rep, err
	}
	out, err := os.Create(cfg.out)
	if err != nil {
		return rep, err
	}
	defer out.Close() // second Close after the explicit one is harmless
	rej, err := os.Create(cfg.rejects)
	if err != nil {
		return rep, err
	}
	defer rej.Close()
	outw, rejw := csv.NewWriter(bufio.NewWriter(out)), csv.NewWriter(bufio.NewWriter(rej))
	_ = outw.Write([]string{"id", "customer", "country", "cents"})
	_ = rejw.Write([]string{"line", "reason"})

	var rejErr error
	start := time.Now()
	// Extract: generated CSV lines, one per unit of demand.
	lines := sources.Generate(func() int { return 0 }, func(i int) (string, int, error) {
		if i >= cfg.rows {
			return "", i, sources.Stop
		}
		return fakeLine(i), i + 1, nil
	})
	counted := operators.Tap(lines, func(string) { rep.Generated++ }, operators.Name("generate"))
	// Transform: parse, then route rejects to the reject file with reasons.
	rows := operators.Map(counted, parse, operators.Name("parse"))
	valid := operators.Filter(rows, func(p parsed) bool {
		rep.Parsed++
		if p.Reason == "" {
			return true
		}
		rep.Rejected++
		rep.Reasons[p.Reason]++
		if err := rejw.Write([]string{p.Line, p.Reason}); err != nil && rejErr == nil {
			rejErr = fmt.Errorf("write %s: %w", cfg.rejects, err)
		}
		return false
	}, operators.Name("validate"))
	orders := operators.Map(valid, func(p parsed) order { return p.Order }, operators.Name("normalise"))
	// Load: batches bounded by size and time, written one at a time.
	batches := operators.Batch(orders, cfg.batch, cfg.maxWait, operators.Name("batch"))

	lastTick := time.Now()
	err = sinks.ForEach(ctx, batches, func(b []order) error {
		rep.Batches++
		for _, o := range b {
			rec := []string{strconv.FormatInt(o.ID, 10), o.Customer, o.Country, strconv.FormatInt(o.Cents, 10)}
			if err := outw.Write(rec); err != nil {
				return fmt.Errorf("write %s: %w", cfg.out, err)
			}
		}
		rep.Written += int64(len(b))
		if progress != nil && time.Since(lastTick) > 200*time.Millisecond {
			lastTick = time.Now()
			fmt.Fprintf(progress, "\r%s", bar(rep.Generated, int64(cfg.rows)))
		}
		return nil
	})
	rep.Elapsed = time.Since(start)
	if progress != nil {
		fmt.Fprintf(progress, "\r%s\n", bar(rep.Generated, int64(cfg.rows)))
	}
	outw.Flush()
	rejw.Flush()
	return rep, errors.Join(err, rejErr, outw.Error(), rejw.Error(), out.Close(), rej.Close())
}

func bar(done, total int64) string {
	const width = 40
	if total <= 0 {
		total = 1
	}
	n := int(done * width / total)
	return fmt.Sprintf("[%s%s] %3d%% %d/%d", strings.Repeat("#", n), strings.Repeat(".", width-n), done*100/total, done, total)
}

var countries = []string{"FR", "DE", "US", "JP", "BR", "IN", "NG", "CA"}

// fakeLine returns the i-th generated CSV line: id,customer,country,qty,price.
// Every 50th line is broken in one of several ways.
func fakeLine(i int) string {
	id := strconv.Itoa(100000 + i)
	cust := "customer-" + strconv.Itoa(i%997)
	country := countries[i%len(countries)]
	qty := strconv.Itoa(1 + i%9)
	price := strconv.Itoa(1+i%400) + "." + strconv.Itoa(10+i%90)
	if i%50 == 49 {
		switch (i / 50) % 6 {
		case 0:
			return id + "," + cust + "," + country + "," + qty // missing field
		case 1:
			id = "x" + id
		case 2:
			qty = "-" + qty
		case 3:
			price = "free"
		case 4:
			cust = " "
		case 5:
			country = "ZZ"
		}
	}
	return strings.Join([]string{id, cust, country, qty, price}, ",")
}

// parse turns a line into an order, or a rejection with its reason.
func parse(line string) parsed {
	p := parsed{Line: line}
	f := strings.Split(line, ",")
	if len(f) != 5 {
		p.Reason = "bad field count"
		return p
	}
	id, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		p.Reason = "bad id"
		return p
	}
	qty, err := strconv.Atoi(f[3])
	if err != nil || qty <= 0 {
		p.Reason = "bad quantity"
		return p
	}
	cents, ok := parseCents(f[4])
	if !ok {
		p.Reason = "bad price"
		return p
	}
	cust := strings.TrimSpace(f[1])
	if cust == "" {
		p.Reason = "empty customer"
		return p
	}
	country := strings.ToUpper(strings.TrimSpace(f[2]))
	if !known(country) {
		p.Reason = "unknown country"
		return p
	}
	p.Order = order{ID: id, Customer: cust, Country: country, Cents: int64(qty) * cents}
	return p
}

func parseCents(s string) (int64, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w < 0 {
		return 0, false
	}
	var c int64
	if frac != "" {
		if len(frac) > 2 {
			return 0, false
		}
		if c, err = strconv.ParseInt((frac + "0")[:2], 10, 64); err != nil {
			return 0, false
		}
	}
	return w*100 + c, true
}

func known(country string) bool {
	for _, c := range countries {
		if c == country {
			return true
		}
	}
	return false
}
