// Package sqlsink writes a stream of batches into a table of any
// database/sql database, one transaction per batch.
//
//	batches := operators.Batch(rows, 500, time.Second) // a flow.Publisher[[]Row]
//	n, err := sqlsink.Insert(ctx, batches, db, "trips", []string{"id", "fare"},
//		func(r Row) []any { return []any{r.ID, r.Fare} })
//
// # Transactions and demand
//
// [Insert] requests one batch, inserts it in one transaction of multi-row
// INSERT statements, commits, and only then requests the next batch: at
// most one batch is in flight, and a batch is either wholly in the table
// or not at all.
//
// # Failures
//
// A batch whose transaction fails is retried as [Retry] says (by default
// it is not), then handed to the [DeadLetter] callback, and the stream
// goes on; without a DeadLetter, it ends the stream with a *[BatchError].
// Nothing is lost silently: every row delivered to Insert is committed,
// passed to the callback, or in the batch whose failure Insert returns.
//
// # Drivers
//
// The SQL is portable: INSERT INTO table (columns) VALUES (…), (…).
// Placeholders are "?" (SQLite, MySQL) unless [DollarPlaceholders] is
// given (PostgreSQL). A statement carries at most [MaxParams] parameters
// (default [DefaultMaxParams], 128; SQLite's historical limit is 999), so
// a batch is split into statements of at most 128/len(columns) rows; the
// statement of that many rows is prepared once per transaction.
package sqlsink

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sinks"
)

// DefaultMaxParams is the most parameters an INSERT statement carries
// unless [MaxParams] says otherwise. It is well under SQLite's historical
// limit of 999 because larger statements are slower with
// modernc.org/sqlite, whose parameter binding is quadratic in their
// number: 20,000 rows of four columns went in at about 330,000 rows/s with
// 128 parameters a statement and 210,000 with 999 (batches of 1,000, 2-core
// x86 VM, go test -bench Insert ./sinks/sqlsink).
const DefaultMaxParams = 128

// BatchError reports a batch that could not be inserted: every attempt
// failed. It is passed to the [DeadLetter] callback, or ends the stream.
type BatchError struct {
	// Rows is the number of rows in the batch.
	Rows int
	// Attempts is the number of transactions tried.
	Attempts int
	// Err is the error of the last attempt.
	Err error
}

var _ error = (*BatchError)(nil)

// Error names the batch size, the attempts and the last error.
func (e *BatchError) Error() string {
	return fmt.Sprintf("sluice: sqlsink: batch of %d rows failed after %d attempts: %v", e.Rows, e.Attempts, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *BatchError) Unwrap() error { return e.Err }

// ErrValueCount ends the stream when the values function returns a
// slice whose length is not the number of columns; it is a programming
// error, so the batch is not retried nor dead-lettered.
var ErrValueCount = errors.New("sluice: sqlsink: values count does not match columns")

// Option configures one call of [Insert]. Invalid options panic when they
// are created, with a sluice: message.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	attempts   int
	backoff    time.Duration
	maxParams  int
	dollar     bool
	deadLetter any // func([]T, *BatchError), checked by Insert
	onRetry    func(attempt int, err error)
	name       string // the sink's stage name for the monitor; empty: derived
}

// Name names the sink's stage for the monitor package (default
// "forEach#N", the sink it runs on). An empty name panics.
func Name(name string) Option {
	if name == "" {
		panic("sluice: sqlsink.Name: empty name")
	}
	return optionFunc(func(c *config) { c.name = name })
}

// setup checks the arguments every sink of this package shares, applies
// opts and returns the config and the dead-letter hook for T. fn names the
// sink in panic messages.
func setup[T any](fn string, ctx context.Context, pub flow.Publisher[[]T], table string, columns []string, values func(T) []any, opts []Option) (config, func([]T, *BatchError)) {
	switch {
	case ctx == nil:
		panic("sluice: " + fn + ": nil Context")
	case pub == nil:
		panic("sluice: " + fn + ": nil Publisher")
	case table == "":
		panic("sluice: " + fn + ": empty table name")
	case len(columns) == 0:
		panic("sluice: " + fn + ": no columns")
	case values == nil:
		panic("sluice: " + fn + ": nil values")
	}
	c := config{attempts: 1, maxParams: DefaultMaxParams}
	for _, o := range opts {
		if o == nil {
			panic("sluice: " + fn + ": nil Option")
		}
		o.apply(&c)
	}
	if c.deadLetter == nil {
		return c, nil
	}
	dl, ok := c.deadLetter.(func([]T, *BatchError))
	if !ok {
		panic(fmt.Sprintf("sluice: %s: DeadLetter is a %T, not a func of the stream's batches", fn, c.deadLetter))
	}
	return c, dl
}

// run writes every batch of pub with write, one at a time: it requests the
// next batch only once write has returned (committed, or dead-lettered).
// mu makes run wait for a write that an asynchronous upstream's late
// batch started as ctx ended (see sinks.ForEach), and keeps any batch from
// starting after run has returned. It returns *n, the rows written.
func run[T any](ctx context.Context, c *config, pub flow.Publisher[[]T], write func(context.Context, []T) error, n *int64) (int64, error) {
	var mu sync.Mutex
	returned := false
	opts := []sinks.Option{sinks.Prefetch(1)}
	if c.name != "" {
		opts = append(opts, sinks.Name(c.name))
	}
	err := sinks.ForEach(ctx, pub, func(batch []T) error {
		mu.Lock()
		defer mu.Unlock()
		if returned {
			return context.Cause(ctx)
		}
		return write(ctx, batch)
	}, opts...)
	mu.Lock()
	defer mu.Unlock()
	returned = true
	return *n, err
}

// Retry makes a failed batch be tried up to attempts times in all, in a
// fresh transaction each time, waiting backoff before the second attempt
// and twice as long before each following one (backoff, 2·backoff,
// 4·backoff…), up to 32 × backoff. The wait ends early when ctx is done. Without Retry a batch
// is tried once. attempts < 1 or backoff < 0 panics.
func Retry(attempts int, backoff time.Duration) Option {
	if attempts < 1 {
		panic("sluice: Retry: attempts < 1")
	}
	if backoff < 0 {
		panic("sluice: Retry: backoff < 0")
	}
	return optionFunc(func(c *config) { c.attempts, c.backoff = attempts, backoff })
}

// OnRetry calls f before each retry of a failed batch, with the number of
// the attempt that failed (from 1) and its error: a place to log. It runs
// on the goroutine that runs the transactions. nil f panics.
func OnRetry(f func(attempt int, err error)) Option {
	if f == nil {
		panic("sluice: OnRetry: nil function")
	}
	return optionFunc(func(c *config) { c.onRetry = f })
}

// DeadLetter makes a batch that failed every attempt go to f, with the
// *[BatchError], instead of ending the stream; Insert then goes on with
// the next batch. T must be the item type of the [Insert] it is given to,
// or Insert panics. f runs on the goroutine that runs the transactions; a
// panic in it ends the stream with a *[flow.PanicError]. nil f panics.
func DeadLetter[T any](f func(batch []T, err *BatchError)) Option {
	if f == nil {
		panic("sluice: DeadLetter: nil function")
	}
	return optionFunc(func(c *config) { c.deadLetter = f })
}

// MaxParams sets the most parameters an INSERT statement may carry
// (default [DefaultMaxParams]); a batch is split into statements of
// n/len(columns) rows. SQLite before 3.32 allows 999, later 32766,
// PostgreSQL 65535; a driver that pays a round trip per statement gains
// from a higher n. n < 1 panics.
func MaxParams(n int) Option {
	if n < 1 {
		panic("sluice: MaxParams: n < 1")
	}
	return optionFunc(func(c *config) { c.maxParams = n })
}

// DollarPlaceholders numbers the placeholders $1, $2… as PostgreSQL
// drivers expect, instead of "?".
func DollarPlaceholders() Option {
	return optionFunc(func(c *config) { c.dollar = true })
}

// Insert subscribes to pub and inserts the rows of each batch into table,
// one transaction per batch, each row's column values given by values in
// the order of columns. It returns the number of rows committed and nil
// when pub completes; the rows committed so far and pub's error when it
// fails; the *[BatchError] of a batch that failed every attempt, when
// there is no [DeadLetter]; or ctx.Err() when ctx is done. Rows passed to
// DeadLetter are not counted. Empty batches are skipped.
//
// table and columns are written into the SQL as they are, not quoted: they
// must be trusted identifiers. The values are always passed as parameters.
//
// Demand: Insert requests one batch when it subscribes and the next one
// only after the previous one has been committed (or dead-lettered): it
// calls [sinks.ForEach] with [sinks.Prefetch](1), and inherits its context
// handling: when ctx is done the transaction in progress is rolled back,
// upstream is cancelled and Insert returns ctx.Err().
//
// Goroutines: the transactions run on the goroutine that delivers the
// batches, and block it; put an asynchronous boundary before Insert so
// that the stages upstream keep working while a batch commits. Insert
// returns only once no transaction of its own is running, and starts none
// afterwards. values is called serially, for each row of a batch, on that
// goroutine; a panic in it rolls the transaction back and ends the stream
// with a *[flow.PanicError]. Insert keeps no reference to a batch after
// it has been committed.
//
// Cost: per batch, one transaction, one prepared statement and
// ⌈rows/(maxParams/len(columns))⌉ executions; per row, the call of values
// and the driver's conversion of its parameters. The argument slice and
// the SQL of a full statement are built once per call of Insert. Into a
// SQLite file through modernc.org/sqlite, four columns: about 360,000
// rows/s in batches of 1,000, and 80,000 in batches of 100, where the
// commits dominate (medians of 5 on a 2-core x86 VM; go test -bench
// Insert ./sinks/sqlsink).
//
// Insert panics if ctx, pub, db or values is nil, table is empty, columns
// is empty, len(columns) exceeds the parameter limit, an option is nil, or
// a DeadLetter's type does not match T.
func Insert[T any](ctx context.Context, pub flow.Publisher[[]T], db *sql.DB, table string, columns []string, values func(T) []any, opts ...Option) (int64, error) {
	if db == nil {
		panic("sluice: Insert: nil DB")
	}
	c, dl := setup("Insert", ctx, pub, table, columns, values, opts)
	if len(columns) > c.maxParams {
		panic("sluice: Insert: more columns than MaxParams")
	}
	w := &writer[T]{db: db, values: values, cfg: c, ncol: len(columns), deadLetter: dl}
	w.prefix = "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES "
	w.rowsPerStmt = c.maxParams / len(columns)
	w.fullSQL = w.statement(w.rowsPerStmt)
	w.args = make([]any, 0, w.rowsPerStmt*len(columns))
	return run(ctx, &w.cfg, pub, w.batch, &w.n)
}

type writer[T any] struct {
	db          *sql.DB
	values      func(T) []any
	cfg         config
	deadLetter  func([]T, *BatchError)
	ncol        int
	prefix      string
	rowsPerStmt int
	fullSQL     string // the statement of rowsPerStmt rows
	args        []any
	n           int64 // rows committed
}

// statement returns the INSERT of rows rows.
func (w *writer[T]) statement(rows int) string {
	var b strings.Builder
	b.Grow(len(w.prefix) + rows*(w.ncol*4+4))
	b.WriteString(w.prefix)
	p := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range w.ncol {
			if c > 0 {
				b.WriteString(", ")
			}
			if w.cfg.dollar {
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(p))
				p++
			} else {
				b.WriteByte('?')
			}
		}
		b.WriteByte(')')
	}
	return b.String()
}

// batch inserts one batch, retrying as configured, and dead-letters it or
// returns the error that ends the stream.
func (w *writer[T]) batch(ctx context.Context, batch []T) error {
	return retryBatch(ctx, &w.cfg, batch, w.insert, w.deadLetter, &w.n)
}

// insert runs one transaction for batch.
func (w *writer[T]) insert(ctx context.Context, batch []T) (err error) {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	committing := false
	defer func() {
		if !committing { // an error, or a panic in values
			_ = tx.Rollback() // the error that matters is the first
		}
	}()
	var full *sql.Stmt // the statement of rowsPerStmt rows, prepared once
	for len(batch) > 0 {
		k := min(len(batch), w.rowsPerStmt)
		args := w.args[:0]
		for _, row := range batch[:k] {
			v := w.values(row)
			if len(v) != w.ncol {
				clear(args)
				return fmt.Errorf("%w: %d values for %d columns", ErrValueCount, len(v), w.ncol)
			}
			args = append(args, v...)
		}
		if k == w.rowsPerStmt {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, w.fullSQL); err != nil {
					clear(args)
					return err
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, w.statement(k), args...)
		}
		clear(args) // keep no reference to the rows' values
		if err != nil {
			return err
		}
		batch = batch[k:]
	}
	committing = true
	return tx.Commit()
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
