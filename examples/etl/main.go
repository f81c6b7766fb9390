// Command etl is sluice's main job: an extract-transform-load pipeline
// from a CSV file of taxi trips into a database, that runs with no flags,
// no network and nothing to install.
//
//	go run ./examples/etl                        # 1,000,000 generated trips into SQLite
//	go run ./examples/etl -n 100000 -workers 4   # fewer rows, more workers
//	go run ./examples/etl -in trips.csv          # your own file, same columns
//	go run ./examples/etl -dsn postgres://user@localhost/db   # PostgreSQL, with COPY
//	go run ./examples/etl -metrics :2112         # Prometheus metrics while it runs
//
// Without -in it generates a file of synthetic trips, about 0.5 % of them
// broken on purpose. The pipeline is
//
//	CSV file → parse → validate → enrich (parallel) → batch → handoff → database
//
// Records that are malformed or fail validation go to a reject file with
// their reason; the rest are enriched on several goroutines, batched, and
// written one batch per transaction (SQLite) or COPY (PostgreSQL). Every
// stage is monitored. At the end it prints the monitor's table, totals that
// must reconcile (read = written + rejected, checked against the table),
// and the throughput. See docs/etl.md.
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sluicego/sluice/monitor"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/scheduler"
	"github.com/sluicego/sluice/sinks/sqlsink"
	"github.com/sluicego/sluice/sources"
)

// config is the job's configuration, from the flags.
type config struct {
	N        int           // rows to generate (without In)
	In       string        // input CSV; "" generates one
	Dir      string        // working directory for the generated input, SQLite file and rejects; "" makes a temporary one
	DSN      string        // postgres://… writes to PostgreSQL; "" to a SQLite file in Dir
	Table    string        // table to create and load
	Sync     string        // SQLite's synchronous setting: off, normal or full
	Batch    int           // rows per batch; 0: defaultBatch
	MaxWait  time.Duration // longest a partial batch waits
	Workers  int           // enrich goroutines
	Seed     uint64        // generator seed
	Metrics  string        // address to serve /metrics on; "" for none
	Keep     bool          // keep the generated input
	Interval time.Duration // progress period; 0: 100 ms on a terminal, 1 s otherwise
	TTY      bool          // draw a progress bar instead of lines
}

func main() {
	cfg := config{}
	flag.IntVar(&cfg.N, "n", 1_000_000, "number of trips to generate (ignored with -in)")
	flag.StringVar(&cfg.In, "in", "", "read this CSV file instead of generating one (same header)")
	flag.StringVar(&cfg.Dir, "dir", "", "directory for the generated input, the SQLite file and the reject file (default: a new temporary directory)")
	flag.StringVar(&cfg.DSN, "dsn", "", "load into PostgreSQL, e.g. postgres://user@localhost:5432/db, instead of SQLite")
	flag.StringVar(&cfg.Table, "table", "trips", "table to create and load (PostgreSQL: dropped and recreated)")
	flag.StringVar(&cfg.Sync, "sync", "off", "SQLite: when to sync the write-ahead log: off (leave it to the OS), normal (at checkpoints) or full (every commit)")
	flag.IntVar(&cfg.Batch, "batch", 0, "rows per batch, one transaction (SQLite) or COPY (PostgreSQL) each (default 1000 for SQLite, 10000 for PostgreSQL)")
	flag.DurationVar(&cfg.MaxWait, "max-wait", 200*time.Millisecond, "longest a partial batch waits for more rows")
	flag.IntVar(&cfg.Workers, "workers", runtime.GOMAXPROCS(0), "goroutines that enrich rows")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the generated data")
	flag.StringVar(&cfg.Metrics, "metrics", "", "serve Prometheus metrics on this address while running, e.g. :2112")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the generated input file")
	flag.DurationVar(&cfg.Interval, "progress", 0, "progress period (default 100ms on a terminal, 1s otherwise)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if flag.NArg() > 0 || cfg.N < 0 || cfg.Batch < 0 || cfg.Workers < 1 || cfg.MaxWait < 0 {
		flag.Usage()
		os.Exit(2)
	}
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cfg.TTY = true
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "etl:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, cfg, os.Stdout)
	if rep != nil {
		rep.print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "etl:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// run runs the job, writing its header and progress to out, and returns
// what happened. The report is nil only when the job could not start.
func run(ctx context.Context, cfg config, out io.Writer) (*report, error) {
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "sluice-etl-")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if cfg.Batch == 0 {
		cfg.Batch = defaultBatch(cfg.DSN)
	}
	rep := &report{cfg: cfg, Reasons: map[string]int64{}, Rejects: filepath.Join(dir, "rejects.csv")}

	// Extract: the input file, generated unless given.
	input, total := cfg.In, 0
	if input == "" {
		input = filepath.Join(dir, "trips.csv")
		start := time.Now()
		f, err := os.Create(input)
		if err != nil {
			return nil, err
		}
		g, err := generate(ctx, f, cfg.N, cfg.Seed, false)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(input)
			return nil, fmt.Errorf("generate %s: %w", input, err)
		}
		rep.GenTime, rep.InputBytes, total = time.Since(start), g.Bytes, cfg.N
		if !cfg.Keep {
			defer os.Remove(input)
		}
	} else {
		f, err := os.Open(input)
		if err != nil {
			return nil, err
		}
		total, err = countRecords(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(input); err == nil {
			rep.InputBytes = fi.Size()
		}
	}
	rep.Input = input

	// Load: the target table, created afresh.
	var tgt target
	var err error
	if cfg.DSN != "" {
		if !isPostgres(cfg.DSN) {
			return nil, fmt.Errorf("-dsn %q: only postgres:// URLs are supported", cfg.DSN)
		}
		tgt, err = openPostgres(ctx, cfg.DSN, cfg.Table)
	} else {
		tgt, err = openSQLite(ctx, filepath.Join(dir, "trips.db"), cfg.Table, cfg.Sync)
	}
	if err != nil {
		return nil, err
	}
	defer tgt.Close()
	rep.Target = tgt.Describe()

	rej, err := newRejects(rep.Rejects)
	if err != nil {
		return nil, err
	}
	defer rej.close()

	// Every stage registers with the monitor through the sink's context.
	reg := monitor.New("etl")
	defer reg.Close()
	if cfg.Metrics != "" {
		stopMetrics, addr, err := serveMetrics(cfg.Metrics, reg)
		if err != nil {
			return nil, err
		}
		defer stopMetrics()
		rep.Metrics = "http://" + addr + "/metrics"
	}
	rep.printHeader(out, total)

	// The loader runs its transactions on a goroutine of its own, so that
	// reading, parsing and enriching go on while a batch commits.
	loader := scheduler.NewSingle()
	defer loader.Close()

	var read atomic.Int64
	record := 0 // the source's record number, kept by its goroutine
	src := sources.CSVFile(input, func(_, rec []string) (raw, error) {
		read.Add(1)
		record++
		r := raw{Record: record}
		copy(r.Fields[:], rec)
		return r, nil
	}, sources.SkipMalformed(func(e *sources.RecordError) {
		read.Add(1)
		record = e.Record
		rej.malformed(e)
	}), sources.Name("read"))
	parsed := operators.Map(src, parse, operators.Name("parse"))
	valid := operators.Filter(parsed, func(c checked) bool {
		if validate(&c) {
			return true
		}
		rej.invalid(c)
		return false
	}, operators.Name("validate"))
	rows := operators.ParallelMap(valid, enrich, cfg.Workers, operators.Name("enrich"))
	batches := operators.Batch(rows, cfg.Batch, cfg.MaxWait, operators.Name("batch"))
	handoff := operators.PublishOn(batches, loader, operators.Prefetch(2), operators.Name("handoff"))

	prog := startProgress(out, cfg, total, &read, rej)
	start := time.Now()
	written, err := tgt.Load(reg.Context(ctx), handoff, rej.deadLetter)
	rep.Wall = time.Since(start)
	prog.stop()
	loader.Close() // its goroutine has finished the last task once Close returns
	reg.Close()

	rep.Snapshot = reg.Snapshot()
	rep.Read, rep.Written = read.Load(), written
	rep.Rejected, rep.Reasons = rej.counts()
	rep.Err = err
	if cerr := rej.close(); err == nil && cerr != nil {
		err = fmt.Errorf("reject file: %w", cerr)
	}
	if err != nil {
		return rep, err
	}
	if rep.InTable, err = tgt.Count(ctx); err != nil {
		return rep, fmt.Errorf("count the rows loaded: %w", err)
	}
	rep.Reconciled = rep.Read == rep.Written+rep.Rejected && rep.InTable == rep.Written
	if !rep.Reconciled {
		return rep, fmt.Errorf("totals do not reconcile: read %d, written %d, rejected %d, in table %d",
			rep.Read, rep.Written, rep.Rejected, rep.InTable)
	}
	return rep, nil
}

// defaultBatch is the batch size for a target. A COPY costs PostgreSQL
// round trips and a commit whatever its size, so larger batches pay: on
// the 2-core reference VM, 1,000,000 rows went in about twice as fast in
// batches of 10,000 as of 1,000. SQLite's transactions are cheap, and its
// batches of 1,000 were as fast as larger ones.
func defaultBatch(dsn string) int {
	if dsn != "" {
		return 10_000
	}
	return 1000
}

// serveMetrics serves the registry's metrics at /metrics on addr until the
// returned function is called.
func serveMetrics(addr string, reg *monitor.Registry) (func(), string, error) {
	pr := prometheus.NewRegistry()
	pr.MustRegister(monitor.NewCollector(reg))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(pr, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("-metrics: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // ends with ErrServerClosed
	}()
	host := ln.Addr().String()
	if strings.HasPrefix(addr, ":") {
		host = "localhost" + addr
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, host, nil
}

// rejects writes rejected records, with their reasons, to a CSV file, and
// counts them by reason. It is called from the source's goroutine (parse
// and validation failures) and from the loader's (batches that could not
// be written), so it locks.
type rejects struct {
	mu     sync.Mutex
	f      *os.File
	w      *csv.Writer
	n      int64
	by     map[string]int64
	err    error
	closed bool
}

func newRejects(path string) (*rejects, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	r := &rejects{f: f, w: csv.NewWriter(f), by: map[string]int64{}}
	_ = r.w.Write([]string{"record", "reason", "detail", "data"}) // an error shows in Flush

	return r, nil
}

func (r *rejects) add(record, reason, detail, data string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.by[reason]++
	_ = r.w.Write([]string{record, reason, detail, data})
}

// malformed records a record that the CSV reader could not split into
// the header's fields.
func (r *rejects) malformed(e *sources.RecordError) {
	detail := e.Err.Error()
	var data string
	if e.Fields != nil {
		data = strings.Join(e.Fields, ",")
	}
	if i := strings.LastIndex(detail, ": "); i >= 0 { // "record on line 7: wrong number of fields"
		detail = detail[i+2:]
	}
	r.add(fmt.Sprint(e.Record), reasonMalformed, fmt.Sprintf("line %d: %s", e.Line, detail), data)
}

// invalid records a record that did not parse or validate.
func (r *rejects) invalid(c checked) {
	r.add(fmt.Sprint(c.Raw.Record), c.Reason, c.Detail, strings.Join(c.Raw.Fields[:], ","))
}

// deadLetter records the rows of a batch that the database refused.
func (r *rejects) deadLetter(batch []row, err *sqlsink.BatchError) {
	for _, x := range batch {
		r.add("", reasonLoadFailed, err.Err.Error(), fmt.Sprintf("trip_id=%d", x.ID))
	}
}

func (r *rejects) count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *rejects) counts() (int64, map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int64, len(r.by))
	for k, v := range r.by {
		m[k] = v
	}
	return r.n, m
}

// close flushes and syncs the file; it is idempotent.
func (r *rejects) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.err
	}
	r.closed = true
	r.w.Flush()
	r.err = errors.Join(r.w.Error(), r.f.Sync(), r.f.Close())
	return r.err
}
