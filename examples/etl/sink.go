package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sinks/sqlsink"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver: no cgo, no install
)

// columns are the loaded table's columns, in the order of the values
// functions below.
var columns = []string{
	"trip_id", "vendor_id", "pickup_at", "dropoff_at", "duration_s", "passengers", "distance_km",
	"avg_kmh", "pickup_borough", "dropoff_borough", "payment", "total_cents", "tip_pct",
}

// target is where the rows go: a SQLite file or a PostgreSQL table.
type target interface {
	// Describe names the target for the report.
	Describe() string
	// Load writes the batches of pub, calling dead for each batch that
	// cannot be written, and returns the rows written.
	Load(ctx context.Context, pub flow.Publisher[[]row], dead func([]row, *sqlsink.BatchError), opts ...sqlsink.Option) (int64, error)
	// Count returns the rows in the table.
	Count(ctx context.Context) (int64, error)
	Close() error
}

// sqliteTarget is a fresh SQLite file, written through database/sql with
// the pure-Go driver modernc.org/sqlite.
type sqliteTarget struct {
	path  string
	table string
	sync  string
	db    *sql.DB
}

// sqlitePragmas turns on the write-ahead log and sets how often SQLite
// syncs it (the -sync flag): "off" leaves it to the operating system, so
// a crash of the machine (not of the program) can lose the last commits
// or corrupt the file, which this job, recreating the file each run, can
// afford; "normal" syncs at checkpoints; "full" at every commit.
func sqlitePragmas(sync string) string {
	return "?_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")&_pragma=busy_timeout(5000)"
}

func openSQLite(ctx context.Context, path, table, sync string) (*sqliteTarget, error) {
	switch sync {
	case "off", "normal", "full":
	default:
		return nil, fmt.Errorf("-sync %q: want off, normal or full", sync)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
	}
	db, err := sql.Open("sqlite", "file:"+path+sqlitePragmas(sync))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer: SQLite serialises writes anyway
	_, err = db.ExecContext(ctx, `CREATE TABLE `+table+` (
		trip_id INTEGER PRIMARY KEY, vendor_id INTEGER NOT NULL,
		pickup_at INTEGER NOT NULL, dropoff_at INTEGER NOT NULL, -- Unix seconds
		duration_s INTEGER NOT NULL, passengers INTEGER NOT NULL,
		distance_km REAL NOT NULL, avg_kmh REAL NOT NULL,
		pickup_borough TEXT NOT NULL, dropoff_borough TEXT NOT NULL,
		payment TEXT NOT NULL, total_cents INTEGER NOT NULL, tip_pct REAL NOT NULL)`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create table: %w", err)
	}
	return &sqliteTarget{path: path, table: table, sync: sync, db: db}, nil
}

func (t *sqliteTarget) Describe() string {
	return fmt.Sprintf("SQLite %s, table %s (pure Go driver, WAL, synchronous=%s)", t.path, t.table, strings.ToUpper(t.sync))
}

func sqliteValues(r row) []any {
	return []any{r.ID, r.Vendor, r.Pickup.Unix(), r.Dropoff.Unix(), r.DurationS, r.Passengers, r.DistanceKm,
		r.AvgKmh, r.PickupBorough, r.DropoffBorough, r.Payment, r.TotalCents, r.TipPct}
}

func (t *sqliteTarget) Load(ctx context.Context, pub flow.Publisher[[]row], dead func([]row, *sqlsink.BatchError), opts ...sqlsink.Option) (int64, error) {
	opts = append(opts, sqlsink.DeadLetter(dead), sqlsink.Name("load"))
	return sqlsink.Insert(ctx, pub, t.db, t.table, columns, sqliteValues, opts...)
}

func (t *sqliteTarget) Count(ctx context.Context) (n int64, err error) {
	err = t.db.QueryRowContext(ctx, `SELECT count(*) FROM `+t.table).Scan(&n)
	return n, err
}

func (t *sqliteTarget) Close() error { return t.db.Close() }

// pgTarget is a PostgreSQL table, dropped and created afresh, written with
// COPY through pgx.
type pgTarget struct {
	dsn   string
	table string
	conn  *pgx.Conn
}

func openPostgres(ctx context.Context, dsn, table string) (*pgTarget, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	_, err = conn.Exec(ctx, `DROP TABLE IF EXISTS `+table)
	if err == nil {
		_, err = conn.Exec(ctx, `CREATE TABLE `+table+` (
			trip_id bigint PRIMARY KEY, vendor_id bigint NOT NULL,
			pickup_at timestamptz NOT NULL, dropoff_at timestamptz NOT NULL,
			duration_s bigint NOT NULL, passengers bigint NOT NULL,
			distance_km float8 NOT NULL, avg_kmh float8 NOT NULL,
			pickup_borough text NOT NULL, dropoff_borough text NOT NULL,
			payment text NOT NULL, total_cents bigint NOT NULL, tip_pct float8 NOT NULL)`)
	}
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("create table: %w", err)
	}
	return &pgTarget{dsn: dsn, table: table, conn: conn}, nil
}

func (t *pgTarget) Describe() string {
	c := t.conn.Config()
	return fmt.Sprintf("PostgreSQL %s:%d/%s, table %s (recreated; COPY per batch)", c.Host, c.Port, c.Database, t.table)
}

func pgValues(r row) []any {
	return []any{r.ID, r.Vendor, r.Pickup, r.Dropoff, r.DurationS, r.Passengers, r.DistanceKm,
		r.AvgKmh, r.PickupBorough, r.DropoffBorough, r.Payment, r.TotalCents, r.TipPct}
}

func (t *pgTarget) Load(ctx context.Context, pub flow.Publisher[[]row], dead func([]row, *sqlsink.BatchError), opts ...sqlsink.Option) (int64, error) {
	opts = append(opts, sqlsink.DeadLetter(dead), sqlsink.Name("load"))
	return sqlsink.CopyFrom(ctx, pub, t.conn, t.table, columns, pgValues, opts...)
}

func (t *pgTarget) Count(ctx context.Context) (n int64, err error) {
	err = t.conn.QueryRow(ctx, `SELECT count(*) FROM `+t.table).Scan(&n)
	return n, err
}

func (t *pgTarget) Close() error { return t.conn.Close(context.Background()) }

// isPostgres reports whether dsn names a PostgreSQL server.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}
