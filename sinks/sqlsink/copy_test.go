package sqlsink_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/sinks/sqlsink"
	"github.com/sluicego/sluice/sources"
)

// defaultPostgresDSN is where the PostgreSQL tests look for a server when
// SLUICE_TEST_POSTGRES_DSN is not set.
const defaultPostgresDSN = "postgres://sluice@127.0.0.1:5432/sluice?sslmode=disable"

// pgConn connects to the test server, or skips the test, saying why, when
// none is reachable. The connection is closed at the end of the test.
func pgConn(tb testing.TB) *pgx.Conn {
	tb.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = defaultPostgresDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Skipf("no PostgreSQL server reachable at %s (set SLUICE_TEST_POSTGRES_DSN, or run .ci/run, which starts one): %v", dsn, err)
	}
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// pgTable creates a fresh table trips_<n> (id bigint primary key, city
// text not null), dropped at the end of the test, and returns its name.
func pgTable(tb testing.TB, conn *pgx.Conn) string {
	tb.Helper()
	name := fmt.Sprintf("trips_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := conn.Exec(context.Background(), `CREATE TABLE `+name+` (id bigint PRIMARY KEY, city text NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _, _ = conn.Exec(context.Background(), `DROP TABLE IF EXISTS `+name) })
	return name
}

// pgRows returns the table's rows by id.
func pgRows(tb testing.TB, conn *pgx.Conn, table string) []trip {
	tb.Helper()
	rs, err := conn.Query(context.Background(), `SELECT id, city FROM `+table+` ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rs.Close()
	var out []trip
	for rs.Next() {
		var id int64
		var tr trip
		if err := rs.Scan(&id, &tr.City); err != nil {
			tb.Fatal(err)
		}
		tr.ID = int(id)
		out = append(out, tr)
	}
	if err := rs.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func pgTripValues(t trip) []any { return []any{int64(t.ID), t.City} }

func TestCopyFromWritesEveryRow(t *testing.T) {
	conn := pgConn(t)
	big := trips(span(1, 2500)...)
	tests := []struct {
		name    string
		batches [][]trip
	}{
		{"small batches and an empty one", [][]trip{trips(1, 2, 3), nil, trips(4, 5)}},
		{"one large batch", [][]trip{big}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := pgTable(t, conn)
			var want []trip
			for _, b := range tt.batches {
				want = append(want, b...)
			}
			n, err := sqlsink.CopyFrom(context.Background(), sources.Slice(tt.batches), conn, table, columns, pgTripValues)
			if err != nil {
				t.Fatal(err)
			}
			got := []any{n, pgRows(t, conn, table)}
			if diff := cmp.Diff([]any{int64(len(want)), want}, got); diff != "" {
				t.Errorf("count, rows (-want +got)\n%s", diff)
			}
		})
	}
}

func TestCopyFromSchemaQualifiedTable(t *testing.T) {
	conn := pgConn(t)
	table := pgTable(t, conn)
	n, err := sqlsink.CopyFrom(context.Background(), sources.Slice([][]trip{trips(7)}), conn, "public."+table, columns, pgTripValues)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{int64(1), trips(7)}, []any{n, pgRows(t, conn, table)}); diff != "" {
		t.Errorf("count, rows (-want +got)\n%s", diff)
	}
}

func TestCopyFromRequestsTheNextBatchAfterTheCopy(t *testing.T) {
	conn := pgConn(t)
	table := pgTable(t, conn)
	// The probe runs on the goroutine that requests, between COPYs, so it
	// may use the connection.
	pub := &watched[[]trip]{
		pub:   sources.Slice([][]trip{trips(1, 2, 3), trips(4, 5), trips(6)}),
		probe: func() int { return len(pgRows(t, conn, table)) },
	}
	n, err := sqlsink.CopyFrom(context.Background(), pub, conn, table, columns, pgTripValues)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int64{{1, 0}, {1, 3}, {1, 5}, {1, 6}}
	if diff := cmp.Diff([]any{int64(6), want}, []any{n, pub.requests}); diff != "" {
		t.Errorf("count, (request, rows in table) (-want +got)\n%s", diff)
	}
}

// isUniqueViolation reports whether err's last attempt failed on a
// duplicate key.
func pgBatchErr(err error) batchErr {
	var be *sqlsink.BatchError
	if !errors.As(err, &be) {
		return batchErr{Rows: -1}
	}
	return batchErr{be.Rows, be.Attempts, be.Err != nil && strings.Contains(be.Err.Error(), "duplicate key")}
}

func TestCopyFromFailedBatch(t *testing.T) {
	// The second batch repeats an id: its COPY fails every time.
	batches := [][]trip{trips(1, 2), trips(3, 3), trips(4)}

	t.Run("retried, then dead-lettered, and the stream goes on", func(t *testing.T) {
		conn := pgConn(t)
		table := pgTable(t, conn)
		var retries []int
		var dead [][]trip
		var deadErr batchErr
		n, err := sqlsink.CopyFrom(context.Background(), sources.Slice(batches), conn, table, columns, pgTripValues,
			sqlsink.Retry(3, time.Millisecond),
			sqlsink.OnRetry(func(attempt int, _ error) { retries = append(retries, attempt) }),
			sqlsink.DeadLetter(func(b []trip, err *sqlsink.BatchError) {
				dead = append(dead, b)
				deadErr = pgBatchErr(err)
			}))
		got := []any{n, err, retries, dead, deadErr, pgRows(t, conn, table)}
		want := []any{int64(3), nil, []int{1, 2}, [][]trip{trips(3, 3)}, batchErr{2, 3, true}, trips(1, 2, 4)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("count, err, retries, dead letters, its error, rows (-want +got)\n%s", diff)
		}
	})
	t.Run("without a dead letter it ends the stream and cancels upstream", func(t *testing.T) {
		conn := pgConn(t)
		table := pgTable(t, conn)
		pub := &watched[[]trip]{pub: sources.Slice(batches)}
		n, err := sqlsink.CopyFrom(context.Background(), pub, conn, table, columns, pgTripValues)
		got := []any{n, pgBatchErr(err), pub.cancels, pgRows(t, conn, table)}
		want := []any{int64(2), batchErr{2, 1, true}, 1, trips(1, 2)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("count, error, cancels, rows (-want +got)\n%s", diff)
		}
	})
}

func TestCopyFromBadValuesEndTheStream(t *testing.T) {
	t.Run("wrong number of values", func(t *testing.T) {
		conn := pgConn(t)
		table := pgTable(t, conn)
		n, err := sqlsink.CopyFrom(context.Background(), sources.Slice([][]trip{trips(1)}), conn, table, columns,
			func(tr trip) []any { return []any{int64(tr.ID)} },
			sqlsink.Retry(3, 0), sqlsink.DeadLetter(func([]trip, *sqlsink.BatchError) { t.Error("dead-lettered") }))
		got := []any{n, errors.Is(err, sqlsink.ErrValueCount), pgRows(t, conn, table)}
		if diff := cmp.Diff([]any{int64(0), true, []trip(nil)}, got); diff != "" {
			t.Errorf("count, ErrValueCount, rows (-want +got)\n%s (err %v)", diff, err)
		}
	})
	t.Run("a panic in values aborts the COPY", func(t *testing.T) {
		conn := pgConn(t)
		table := pgTable(t, conn)
		n, err := sqlsink.CopyFrom(context.Background(), sources.Slice([][]trip{trips(1), trips(2, 3)}), conn, table, columns,
			func(tr trip) []any {
				if tr.ID == 3 {
					panic("bad row")
				}
				return pgTripValues(tr)
			}, sqlsink.Retry(3, 0))
		var pe *flow.PanicError
		got := []any{n, errors.As(err, &pe) && pe.Value == "bad row", pgRows(t, conn, table)}
		if diff := cmp.Diff([]any{int64(1), true, trips(1)}, got); diff != "" {
			t.Errorf("count, panic error, rows (-want +got)\n%s (err %v)", diff, err)
		}
	})
}

func TestCopyFromContextCancelled(t *testing.T) {
	conn := pgConn(t)
	table := pgTable(t, conn)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pub := &watched[[]trip]{pub: sources.Slice([][]trip{trips(1)})}
	n, err := sqlsink.CopyFrom(ctx, pub, conn, table, columns, pgTripValues)
	got := []any{n, errors.Is(err, context.Canceled), pgRows(t, conn, table)}
	if diff := cmp.Diff([]any{int64(0), true, []trip(nil)}, got); diff != "" {
		t.Errorf("count, cancelled, rows (-want +got)\n%s", diff)
	}
}

func TestCopyFromConforms(t *testing.T) {
	conn := pgConn(t)
	if _, err := conn.Exec(context.Background(), `CREATE TEMP TABLE conf (n bigint)`); err != nil {
		t.Fatal(err)
	}
	flowtest.VerifySubscriber(t, flowtest.SubscriberConfig[[]int64]{
		Sink: func(ctx context.Context, pub flow.Publisher[[]int64]) error {
			_, err := sqlsink.CopyFrom(ctx, pub, conn, "conf", []string{"n"}, func(n int64) []any { return []any{n} })
			return err
		},
		Element: func(i int64) []int64 { return []int64{i} },
	})
}

func TestCopyFromPanicsOnBadArguments(t *testing.T) {
	ctx, pub, conn := context.Background(), sources.Empty[[]trip](), &pgx.Conn{}
	tests := map[string]func(){
		"sluice: CopyFrom: nil Copier": func() { _, _ = sqlsink.CopyFrom(ctx, pub, nil, "t", columns, tripValues) },
		"sluice: CopyFrom: nil Publisher": func() {
			_, _ = sqlsink.CopyFrom[trip](ctx, nil, conn, "t", columns, tripValues)
		},
		"sluice: CopyFrom: empty table name": func() { _, _ = sqlsink.CopyFrom(ctx, pub, conn, "", columns, tripValues) },
		"sluice: CopyFrom: no columns":       func() { _, _ = sqlsink.CopyFrom(ctx, pub, conn, "t", nil, tripValues) },
		"sluice: CopyFrom: nil values":       func() { _, _ = sqlsink.CopyFrom[trip](ctx, pub, conn, "t", columns, nil) },
		"sluice: CopyFrom: nil Option":       func() { _, _ = sqlsink.CopyFrom(ctx, pub, conn, "t", columns, tripValues, nil) },
		"sluice: CopyFrom: DeadLetter is a func([]int, *sqlsink.BatchError), not a func of the stream's batches": func() {
			_, _ = sqlsink.CopyFrom(ctx, pub, conn, "t", columns, tripValues, sqlsink.DeadLetter(func([]int, *sqlsink.BatchError) {}))
		},
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

type benchTrip struct {
	ID                          int64
	Vendor, Zone, Payment, Note string
	Pickup, Dropoff             time.Time
	Distance, Fare, Tip         float64
}

// BenchmarkCopyFrom copies 20,000 rows of ten columns into PostgreSQL in
// batches of the given size (skipped without a server).
func BenchmarkCopyFrom(b *testing.B) {
	conn := pgConn(b)
	if _, err := conn.Exec(context.Background(), `CREATE TEMP TABLE bench (id bigint, vendor text, zone text, payment text, note text,
		pickup timestamptz, dropoff timestamptz, distance float8, fare float8, tip float8)`); err != nil {
		b.Fatal(err)
	}
	const n = 20_000
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]benchTrip, n)
	for i := range rows {
		p := t0.Add(time.Duration(i) * time.Second)
		rows[i] = benchTrip{int64(i), "V1", "Z" + fmt.Sprint(i%200), "card", "", p, p.Add(10 * time.Minute), 3.2, 14.5, 2}
	}
	values := func(r benchTrip) []any {
		return []any{r.ID, r.Vendor, r.Zone, r.Payment, r.Note, r.Pickup, r.Dropoff, r.Distance, r.Fare, r.Tip}
	}
	cols := []string{"id", "vendor", "zone", "payment", "note", "pickup", "dropoff", "distance", "fare", "tip"}
	for _, size := range []int{100, 1000} {
		var batches [][]benchTrip
		for i := 0; i < n; i += size {
			batches = append(batches, rows[i:min(i+size, n)])
		}
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			for b.Loop() {
				got, err := sqlsink.CopyFrom(context.Background(), sources.Slice(batches), conn, "bench", cols, values)
				if err != nil || got != n {
					b.Fatalf("CopyFrom = %d, %v", got, err)
				}
				b.StopTimer()
				if _, err := conn.Exec(context.Background(), `TRUNCATE bench`); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// Rows go into PostgreSQL with one COPY per batch; the next batch is
// requested only once the previous COPY has completed. In a pipeline the
// batches come from operators.Batch. (Not run as a test: it needs a
// server.)
func ExampleCopyFrom() {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, "postgres://sluice@127.0.0.1:5432/sluice?sslmode=disable")
	if err != nil {
		panic(err)
	}
	defer conn.Close(ctx)

	type fare struct {
		ID     int64
		Amount float64
	}
	batches := sources.Slice([][]fare{{{1, 12.5}, {2, 7}}, {{3, 30.25}}})
	n, err := sqlsink.CopyFrom(ctx, batches, conn, "public.fares", []string{"id", "amount"},
		func(f fare) []any { return []any{f.ID, f.Amount} },
		sqlsink.Retry(3, 100*time.Millisecond),
		sqlsink.DeadLetter(func(b []fare, err *sqlsink.BatchError) { fmt.Println("not loaded:", len(b), err) }))
	fmt.Println(n, err)
}
