package sqlsink_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/sinks/sqlsink"
	"github.com/sluicego/sluice/sources"
	_ "modernc.org/sqlite"
)

type trip struct {
	ID   int
	City string
}

var columns = []string{"id", "city"}

func tripValues(t trip) []any { return []any{t.ID, t.City} }

// openDB opens a fresh SQLite database in a temporary directory with a
// table trips (id primary key, city), closed at the end of the test.
func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(`CREATE TABLE trips (id INTEGER PRIMARY KEY, city TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// rows returns the table's rows by id.
func rows(t *testing.T, db *sql.DB) []trip {
	t.Helper()
	rs, err := db.Query(`SELECT id, city FROM trips ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []trip
	for rs.Next() {
		var tr trip
		if err := rs.Scan(&tr.ID, &tr.City); err != nil {
			t.Fatal(err)
		}
		out = append(out, tr)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func trips(ids ...int) []trip {
	out := make([]trip, len(ids))
	for i, id := range ids {
		out[i] = trip{id, "c" + string(rune('a'+id%26))}
	}
	return out
}

func span(from, to int) []int {
	var ids []int
	for i := from; i <= to; i++ {
		ids = append(ids, i)
	}
	return ids
}

// watched wraps a publisher and records, at each Request, its n and what
// probe returns then; and counts Cancel calls.
type watched[T any] struct {
	pub   flow.Publisher[T]
	probe func() int

	mu       sync.Mutex
	requests [][2]int64
	cancels  int
}

func (w *watched[T]) Subscribe(s flow.Subscriber[T]) {
	w.pub.Subscribe(flow.SubscriberFuncs[T]{
		Subscribe: func(sub flow.Subscription) { s.OnSubscribe(&watchedSub[T]{w, sub}) },
		Next:      s.OnNext,
		Error:     s.OnError,
		Complete:  s.OnComplete,
	})
}

type watchedSub[T any] struct {
	w   *watched[T]
	sub flow.Subscription
}

func (x *watchedSub[T]) Request(n int64) {
	p := int64(-1)
	if x.w.probe != nil {
		p = int64(x.w.probe())
	}
	x.w.mu.Lock()
	x.w.requests = append(x.w.requests, [2]int64{n, p})
	x.w.mu.Unlock()
	x.sub.Request(n)
}

func (x *watchedSub[T]) Cancel() {
	x.w.mu.Lock()
	x.w.cancels++
	x.w.mu.Unlock()
	x.sub.Cancel()
}

func TestInsertWritesEveryRow(t *testing.T) {
	big := trips(span(1, 1000)...)
	tests := []struct {
		name    string
		batches [][]trip
		opts    []sqlsink.Option
		want    []trip
	}{
		{"small batches, two rows per statement", [][]trip{trips(1, 2, 3), nil, trips(4, 5)},
			[]sqlsink.Option{sqlsink.MaxParams(4)}, trips(1, 2, 3, 4, 5)},
		{"a batch split into statements of 64 rows", [][]trip{big}, nil, big},
		{"dollar placeholders", [][]trip{trips(1, 2, 3)},
			[]sqlsink.Option{sqlsink.DollarPlaceholders(), sqlsink.MaxParams(4)}, trips(1, 2, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t)
			n, err := sqlsink.Insert(context.Background(), sources.Slice(tt.batches), db, "trips", columns, tripValues, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got := []any{n, rows(t, db)}
			if diff := cmp.Diff([]any{int64(len(tt.want)), tt.want}, got); diff != "" {
				t.Errorf("count, rows (-want +got)\n%s", diff)
			}
		})
	}
}

func TestInsertRequestsTheNextBatchAfterCommit(t *testing.T) {
	db := openDB(t)
	pub := &watched[[]trip]{
		pub:   sources.Slice([][]trip{trips(1, 2, 3), trips(4, 5), trips(6)}),
		probe: func() int { return len(rows(t, db)) },
	}
	n, err := sqlsink.Insert(context.Background(), pub, db, "trips", columns, tripValues)
	if err != nil {
		t.Fatal(err)
	}
	// Each Request(1) comes when the batches before it are in the table.
	want := [][2]int64{{1, 0}, {1, 3}, {1, 5}, {1, 6}}
	if diff := cmp.Diff([]any{int64(6), want}, []any{n, pub.requests}); diff != "" {
		t.Errorf("count, (request, rows in table) (-want +got)\n%s", diff)
	}
}

// batchErr is the comparable view of a *sqlsink.BatchError.
type batchErr struct {
	Rows, Attempts int
	Constraint     bool // the cause is a constraint violation
}

func asBatchErr(err error) batchErr {
	var be *sqlsink.BatchError
	if !errors.As(err, &be) {
		return batchErr{Rows: -1}
	}
	return batchErr{be.Rows, be.Attempts, be.Err != nil && strings.Contains(be.Err.Error(), "UNIQUE constraint failed")}
}

func TestInsertFailedBatch(t *testing.T) {
	// The second batch repeats an id: its transaction fails every time.
	batches := [][]trip{trips(1, 2), trips(3, 3), trips(4)}

	t.Run("retried with backoff, then dead-lettered, and the stream goes on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			db := openDB(t)
			var retries []int
			var dead [][]trip
			var deadErr batchErr
			start := time.Now()
			n, err := sqlsink.Insert(context.Background(), sources.Slice(batches), db, "trips", columns, tripValues,
				sqlsink.Retry(3, 10*time.Millisecond),
				sqlsink.OnRetry(func(attempt int, _ error) { retries = append(retries, attempt) }),
				sqlsink.DeadLetter(func(b []trip, err *sqlsink.BatchError) {
					dead = append(dead, b)
					deadErr = asBatchErr(err)
				}))
			got := []any{n, err, retries, time.Since(start), dead, deadErr, rows(t, db)}
			want := []any{int64(3), nil, []int{1, 2}, 30 * time.Millisecond, [][]trip{trips(3, 3)},
				batchErr{2, 3, true}, trips(1, 2, 4)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("count, err, retries, wait, dead letters, its error, rows (-want +got)\n%s", diff)
			}
		})
	})
	t.Run("without a dead letter it ends the stream and cancels upstream", func(t *testing.T) {
		db := openDB(t)
		pub := &watched[[]trip]{pub: sources.Slice(batches)}
		n, err := sqlsink.Insert(context.Background(), pub, db, "trips", columns, tripValues)
		got := []any{n, asBatchErr(err), pub.cancels, rows(t, db)}
		want := []any{int64(2), batchErr{2, 1, true}, 1, trips(1, 2)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("count, error, cancels, rows (-want +got)\n%s", diff)
		}
	})
}

func TestInsertContextCancelDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := openDB(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			time.Sleep(90 * time.Minute)
			cancel()
		}()
		start := time.Now()
		pub := &watched[[]trip]{pub: sources.Slice([][]trip{trips(1), trips(2, 2), trips(3)})}
		n, err := sqlsink.Insert(ctx, pub, db, "trips", columns, tripValues, sqlsink.Retry(5, time.Hour))
		// Attempt 1 fails, the 1h wait passes, attempt 2 fails, the 2h wait
		// is cut short by the cancel at 90 minutes.
		got := []any{n, errors.Is(err, context.Canceled), time.Since(start), pub.cancels, rows(t, db)}
		want := []any{int64(1), true, 90 * time.Minute, 1, trips(1)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("count, cancelled, elapsed, cancels, rows (-want +got)\n%s", diff)
		}
	})
}

func TestInsertBadValuesEndTheStream(t *testing.T) {
	t.Run("wrong number of values", func(t *testing.T) {
		db := openDB(t)
		n, err := sqlsink.Insert(context.Background(), sources.Slice([][]trip{trips(1)}), db, "trips", columns,
			func(tr trip) []any { return []any{tr.ID} },
			sqlsink.Retry(3, 0), sqlsink.DeadLetter(func([]trip, *sqlsink.BatchError) { t.Error("dead-lettered") }))
		got := []any{n, errors.Is(err, sqlsink.ErrValueCount), rows(t, db)}
		if diff := cmp.Diff([]any{int64(0), true, []trip(nil)}, got); diff != "" {
			t.Errorf("count, ErrValueCount, rows (-want +got)\n%s", diff)
		}
	})
	t.Run("panic in values rolls the batch back", func(t *testing.T) {
		db := openDB(t)
		n, err := sqlsink.Insert(context.Background(), sources.Slice([][]trip{trips(1), trips(2, 3)}), db, "trips", columns,
			func(tr trip) []any {
				if tr.ID == 3 {
					panic("bad row")
				}
				return tripValues(tr)
			}, sqlsink.MaxParams(2))
		var pe *flow.PanicError
		got := []any{n, errors.As(err, &pe) && pe.Value == "bad row", rows(t, db)}
		if diff := cmp.Diff([]any{int64(1), true, trips(1)}, got); diff != "" {
			t.Errorf("count, panic error, rows (-want +got)\n%s", diff)
		}
	})
}

func TestInsertConforms(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "conf.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	flowtest.VerifySubscriber(t, flowtest.SubscriberConfig[[]int]{
		Sink: func(ctx context.Context, pub flow.Publisher[[]int]) error {
			_, err := sqlsink.Insert(ctx, pub, db, "t", []string{"n"}, func(n int) []any { return []any{n} })
			return err
		},
		Element: func(i int64) []int { return []int{int(i)} },
	})
}

func TestInsertPanicsOnBadArguments(t *testing.T) {
	ctx, pub, db := context.Background(), sources.Empty[[]trip](), &sql.DB{}
	tests := map[string]func(){
		"sluice: Insert: nil DB": func() { _, _ = sqlsink.Insert(ctx, pub, nil, "t", columns, tripValues) },
		"sluice: Insert: nil Publisher": func() {
			_, _ = sqlsink.Insert[trip](ctx, nil, db, "t", columns, tripValues)
		},
		"sluice: Insert: empty table name": func() { _, _ = sqlsink.Insert(ctx, pub, db, "", columns, tripValues) },
		"sluice: Insert: no columns":       func() { _, _ = sqlsink.Insert(ctx, pub, db, "t", nil, tripValues) },
		"sluice: Insert: nil values":       func() { _, _ = sqlsink.Insert[trip](ctx, pub, db, "t", columns, nil) },
		"sluice: Insert: more columns than MaxParams": func() {
			_, _ = sqlsink.Insert(ctx, pub, db, "t", columns, tripValues, sqlsink.MaxParams(1))
		},
		"sluice: Insert: DeadLetter is a func([]int, *sqlsink.BatchError), not a func of the stream's batches": func() {
			_, _ = sqlsink.Insert(ctx, pub, db, "t", columns, tripValues, sqlsink.DeadLetter(func([]int, *sqlsink.BatchError) {}))
		},
		"sluice: Retry: attempts < 1":      func() { sqlsink.Retry(0, 0) },
		"sluice: Retry: backoff < 0":       func() { sqlsink.Retry(1, -1) },
		"sluice: MaxParams: n < 1":         func() { sqlsink.MaxParams(0) },
		"sluice: DeadLetter: nil function": func() { sqlsink.DeadLetter[int](nil) },
		"sluice: OnRetry: nil function":    func() { sqlsink.OnRetry(nil) },
	}
	for want, f := range tests {
		got := func() (v any) {
			defer func() { v = recover() }()
			f()
			return nil
		}()
		if got != want {
			t.Errorf("panic %v, want %q", got, want)
		}
	}
}
