package sqlsink_test

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/sluicego/sluice/sinks/sqlsink"
	"github.com/sluicego/sluice/sources"
	_ "modernc.org/sqlite"
)

// Batches go in one transaction each; a batch that violates a constraint
// is retried, then handed to the dead-letter callback, and the rest goes on.
func ExampleInsert() {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: one in-memory database
	if _, err := db.Exec(`CREATE TABLE fares (id INTEGER PRIMARY KEY, amount REAL)`); err != nil {
		panic(err)
	}

	type fare struct {
		ID     int
		Amount float64
	}
	batches := sources.Slice([][]fare{
		{{1, 9.5}, {2, 12}},
		{{3, 7}, {3, 8}}, // id 3 twice: the whole batch fails
		{{4, 30.25}},
	})
	n, err := sqlsink.Insert(context.Background(), batches, db, "fares", []string{"id", "amount"},
		func(f fare) []any { return []any{f.ID, f.Amount} },
		sqlsink.Retry(2, 0),
		sqlsink.DeadLetter(func(batch []fare, err *sqlsink.BatchError) {
			fmt.Printf("dead letter: %d rows after %d attempts\n", len(batch), err.Attempts)
		}))
	fmt.Println("inserted", n, err)

	var count int
	var total float64
	if err := db.QueryRow(`SELECT count(*), sum(amount) FROM fares`).Scan(&count, &total); err != nil {
		panic(err)
	}
	fmt.Println("table:", count, "rows, total", total)
	// Output:
	// dead letter: 2 rows after 2 attempts
	// inserted 3 <nil>
	// table: 3 rows, total 51.75
}
