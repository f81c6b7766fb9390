package sqlsink_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sluicego/sluice/sinks/sqlsink"
	"github.com/sluicego/sluice/sources"
)

type benchRow struct {
	ID       int
	Vendor   string
	Distance float64
	Fare     float64
}

// BenchmarkInsert inserts 20,000 rows of four columns into a SQLite file
// in batches of the given size. "loop" is the baseline: the same
// transactions and statements from a plain loop.
func BenchmarkInsert(b *testing.B) {
	const n = 20_000
	rows := make([]benchRow, n)
	for i := range rows {
		rows[i] = benchRow{i, fmt.Sprintf("V%d", i%3), float64(i%30) / 3, 5 + float64(i%40)}
	}
	values := func(r benchRow) []any { return []any{r.ID, r.Vendor, r.Distance, r.Fare} }
	cols := []string{"id", "vendor", "distance", "fare"}
	for _, size := range []int{100, 1000} {
		var batches [][]benchRow
		for i := 0; i < n; i += size {
			batches = append(batches, rows[i:min(i+size, n)])
		}
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				db := benchDB(b)
				b.StartTimer()
				got, err := sqlsink.Insert(context.Background(), sources.Slice(batches), db, "trips", cols, values)
				if err != nil || got != n {
					b.Fatalf("Insert = %d, %v", got, err)
				}
				b.StopTimer()
				_ = db.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func benchDB(b *testing.B) *sql.DB {
	db, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE trips (id INTEGER PRIMARY KEY, vendor TEXT, distance REAL, fare REAL)`); err != nil {
		b.Fatal(err)
	}
	return db
}
