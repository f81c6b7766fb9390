package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/sluicego/sluice/monitor"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testRows = 20_000

// input generates testRows trips into dir and returns the file and what
// was broken in it.
func input(t *testing.T, dir string) (string, *generated) {
	t.Helper()
	path := filepath.Join(dir, "in.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := generate(context.Background(), f, testRows, 7, true)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return path, g
}

func testConfig(dir, in string) config {
	return config{In: in, Dir: dir, Table: "trips", Sync: "off", Batch: 500, MaxWait: 50 * time.Millisecond, Workers: 3, Interval: time.Hour}
}

// checkRun checks a finished run exactly: the totals, the reject file
// against the records broken on purpose, and the table's trip ids against
// the rest. ids returns the trip ids in the table.
func checkRun(t *testing.T, rep *report, g *generated, ids func() []int64) {
	t.Helper()
	if rep.Read != testRows || rep.Written+rep.Rejected != rep.Read || rep.InTable != rep.Written || !rep.Reconciled {
		t.Fatalf("read %d, written %d, rejected %d, in table %d, reconciled %v; want read %d = written + rejected = in table + rejected",
			rep.Read, rep.Written, rep.Rejected, rep.InTable, rep.Reconciled, testRows)
	}
	wantReasons := map[string]int64{}
	for reason, n := range g.Defects {
		wantReasons[reason] = int64(n)
	}
	if diff := cmp.Diff(wantReasons, rep.Reasons); diff != "" {
		t.Errorf("rejections by reason (-want +got)\n%s", diff)
	}
	if rep.Rejected != int64(len(g.Broken)) {
		t.Errorf("rejected %d, want the %d records broken on purpose", rep.Rejected, len(g.Broken))
	}

	// The reject file holds exactly the broken records, each with the
	// reason for its defect.
	rejected := map[int64]string{}
	for _, rec := range readCSV(t, rep.Rejects)[1:] {
		id, err := strconv.ParseInt(strings.SplitN(rec[3], ",", 2)[0], 10, 64)
		if err != nil || rec[0] == "" || rec[2] == "" {
			t.Fatalf("reject record %q: want a record number, a detail and the data", rec)
		}
		if _, dup := rejected[id]; dup {
			t.Fatalf("trip %d rejected twice", id)
		}
		rejected[id] = rec[1]
	}
	if diff := cmp.Diff(g.Broken, rejected); diff != "" {
		t.Errorf("reject file: trip id → reason (-want +got)\n%s", diff)
	}

	// The table holds every other trip, once.
	seen := map[int64]bool{}
	for _, id := range ids() {
		if seen[id] || rejected[id] != "" || id < 1 || id > testRows {
			t.Fatalf("trip %d in the table twice, or rejected too, or unknown", id)
		}
		seen[id] = true
	}
	if len(seen)+len(rejected) != testRows {
		t.Errorf("%d trips in the table + %d rejected, want %d", len(seen), len(rejected), testRows)
	}
}

func TestJobIntoSQLite(t *testing.T) {
	dir := t.TempDir()
	in, g := input(t, dir)
	var out bytes.Buffer
	rep, err := run(context.Background(), testConfig(dir, in), &out)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, rep, g, func() []int64 {
		db, err := sql.Open("sqlite", filepath.Join(dir, "trips.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		return queryIDs(t, func() (rowsScanner, error) { return db.Query(`SELECT trip_id FROM trips`) })
	})

	// The report says the same, aligned.
	rep.print(&out)
	for _, want := range []string{
		fmt.Sprintf("  read       %s  records in the input\n", commas(testRows)),
		fmt.Sprintf("  written    %6s  rows committed (the table holds %s)\n", commas(rep.Written), commas(rep.Written)),
		fmt.Sprintf("  read = written + rejected: %s = %s + %s, and the table holds every written row: OK\n",
			commas(testRows), commas(rep.Written), commas(rep.Rejected)),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Every stage is monitored, named, and completed.
	for i, stage := range []string{"read +csv", "validate +map\\+filter", "enrich +parallelMap", "batch +batch", "handoff +publishOn", "load +forEach"} {
		re := regexp.MustCompile(fmt.Sprintf(`(?m)^  %d +%s +completed `, i+1, stage))
		if !re.MatchString(out.String()) {
			t.Errorf("monitor table lacks stage %d %q, completed:\n%s", i+1, stage, out.String())
		}
	}
}

// testPostgresDSN returns the test server's DSN, or skips the test,
// saying why, when none is reachable.
func testPostgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("SLUICE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://sluice@127.0.0.1:5432/sluice?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Skipf("no PostgreSQL server reachable at %s (set SLUICE_TEST_POSTGRES_DSN, or run .ci/run, which starts one): %v", dsn, err)
	}
	_ = conn.Close(ctx)
	return dsn
}

func TestJobIntoPostgres(t *testing.T) {
	dsn := testPostgresDSN(t)
	dir := t.TempDir()
	in, g := input(t, dir)
	cfg := testConfig(dir, in)
	cfg.DSN = dsn
	cfg.Table = fmt.Sprintf("etl_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	defer conn.Exec(ctx, `DROP TABLE IF EXISTS `+cfg.Table)

	rep, err := run(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	checkRun(t, rep, g, func() []int64 {
		return queryIDs(t, func() (rowsScanner, error) {
			rs, err := conn.Query(ctx, `SELECT trip_id FROM `+cfg.Table)
			return pgRows{rs}, err
		})
	})
}

func TestJobGeneratesItsInput(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir, "")
	cfg.N, cfg.Seed = 5000, 3
	rep, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g, err := generate(context.Background(), io.Discard, 5000, 3, false) // the same seed makes the same file
	if err != nil {
		t.Fatal(err)
	}
	var rejected int64
	for _, n := range g.Defects {
		rejected += int64(n)
	}
	got := []any{rep.Read, rep.Written, rep.Rejected, rep.InputBytes}
	want := []any{int64(5000), 5000 - rejected, rejected, g.Bytes}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read, written, rejected, input size (-want +got)\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, "trips.csv")); !os.IsNotExist(err) {
		t.Errorf("generated input not deleted: %v", err)
	}
}

func TestJobStopsWhenCancelled(t *testing.T) {
	dir := t.TempDir()
	in, _ := input(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := run(ctx, testConfig(dir, in), io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run = %v, want context.Canceled", err)
	}
	if rep != nil && rep.Reconciled {
		t.Error("a cancelled run reports reconciled totals")
	}
}

func TestMetricsEndpoint(t *testing.T) {
	reg := monitor.New("etl")
	defer reg.Close()
	if err := sinks.ForEach(reg.Context(context.Background()), sources.Range(0, 10), func(int) error { return nil }, sinks.Name("load")); err != nil {
		t.Fatal(err)
	}
	stop, addr, err := serveMetrics("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `sluice_stage_delivered_total{pipeline="etl",stage="load"} 10`; !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %q:\n%s", want, body)
	}
}

func TestParse(t *testing.T) {
	good := raw{Record: 1, Fields: [numFields]string{"42", "2", "2026-01-03 08:00:00", "2026-01-03 08:20:00", "1", "5.5", "100", "150", "card", "17.25", "3.1", "0.00"}}
	c := parse(good)
	if c.Reason != "" || !validate(&c) {
		t.Fatalf("good record rejected: %s %s", c.Reason, c.Detail)
	}
	r := enrich(c)
	got := []any{r.ID, r.DurationS, r.AvgKmh, r.PickupBorough, r.DropoffBorough, r.TotalCents, r.TipPct}
	want := []any{int64(42), int64(1200), 16.5, "Brooklyn", "Manhattan", int64(1725 + 310), 18.0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("enriched row (-want +got)\n%s", diff)
	}

	tests := []struct {
		field        int
		value        string
		reason, want string
	}{
		{fDistance, "3,2", reasonBadNumber, `distance_km="3,2"`},
		{fFare, "12..5", reasonBadNumber, `fare="12..5"`},
		{fPickup, "2026-01-32 00:00:00", reasonBadTime, `pickup_at="2026-01-32 00:00:00"`},
		{fDropoff, "2026-01-03 07:00:00", reasonDropoffBefore, "pickup_at=2026-01-03 08:00:00 dropoff_at=2026-01-03 07:00:00"},
		{fFare, "-17.25", reasonNegativeFare, "fare=-17.25"},
		{fPayment, "bitcoin", reasonUnknownPay, `payment_type="bitcoin"`},
	}
	for _, tt := range tests {
		r := good
		r.Fields[tt.field] = tt.value
		c := parse(r)
		ok := c.Reason == "" && validate(&c)
		if diff := cmp.Diff([]any{false, tt.reason, tt.want}, []any{ok, c.Reason, c.Detail}); diff != "" {
			t.Errorf("%s=%q: valid, reason, detail (-want +got)\n%s", header[tt.field], tt.value, diff)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{"2026-01-03 08:00:00", "2024-02-29 23:59:59", "0001-01-01 00:00:00",
		"2026-02-29 00:00:00", "2026-13-01 00:00:00", "2026-01-00 00:00:00", "2026-01-01 24:00:00", "2026-01-01 00:60:00",
		"2026-01-01 00:00:60", "2026-01-01T00:00:00", "2026-1-01 00:00:00", "2026-01-01 00:00:0x", "", "+026-01-01 00:00:00"} {
		want, err := time.Parse(timeLayout, s)
		got, ok := parseTime(s)
		if ok != (err == nil) || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; time.Parse: %v, %v", s, got, ok, want, err)
		}
	}
}

func TestParseCents(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{{"1.10", 110, true}, {"3", 300, true}, {"0.5", 50, true}, {"-1.00", -100, true},
		{"2.345", 0, false}, {"free", 0, false}, {"", 0, false}, {"1.", 0, false}, {"+1", 0, false}, {"1.-5", 0, false}}
	for _, tt := range tests {
		got, ok := parseCents(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseCents(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCommas(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -20000: "-20,000"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}

type rowsScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

type pgRows struct{ pgx.Rows }

func (r pgRows) Close() error { r.Rows.Close(); return nil }

func queryIDs(t *testing.T, query func() (rowsScanner, error)) []int64 {
	t.Helper()
	rs, err := query()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var ids []int64
	for rs.Next() {
		var id int64
		if err := rs.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
