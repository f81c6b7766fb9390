package sources_test

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/sources"
)

type trip struct {
	ID   int
	City string
}

// decodeTrip maps a record to a trip by the header's column names.
func decodeTrip(header, rec []string) (trip, error) {
	var tr trip
	for i, name := range header {
		switch name {
		case "id":
			id, err := strconv.Atoi(rec[i])
			if err != nil {
				return trip{}, err
			}
			tr.ID = id
		case "city":
			tr.City = rec[i]
		}
	}
	return tr, nil
}

// recErr is the comparable view of a *sources.RecordError.
type recErr struct {
	Line, Record int
	Fields       []string
	Text         string
	Cause        string
}

func asRecErr(t *testing.T, err error) recErr {
	t.Helper()
	var re *sources.RecordError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T) is not a *RecordError", err, err)
	}
	return recErr{re.Line, re.Record, re.Fields, re.Text, re.Err.Error()}
}

func TestCSVDecodesEachRecord(t *testing.T) {
	tests := []struct {
		name, in string
		want     []trip
	}{
		{"empty input", "", nil},
		{"header only", "id,city\n", nil},
		{"records", "id,city\n1,Oslo\n2,Lima\n", []trip{{1, "Oslo"}, {2, "Lima"}}},
		{"columns in any order", "city,id\r\nOslo,1\r\nLima,2", []trip{{1, "Oslo"}, {2, "Lima"}}},
		{"quoted field with a newline", "id,city\n1,\"New\nYork\"\n2,\"a,b\"\n", []trip{{1, "New\nYork"}, {2, "a,b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAll(t, sources.CSV(strings.NewReader(tt.in), decodeTrip))
			if diff := cmp.Diff(tt.want, r.Items()); diff != "" {
				t.Errorf("items (-want +got)\n%s", diff)
			}
			if r.Err() != nil || !r.Terminated() {
				t.Errorf("err = %v, terminated = %t; want completion", r.Err(), r.Terminated())
			}
		})
	}
}

func TestCSVMalformedRecordNamesItsLine(t *testing.T) {
	_, atoiErr := strconv.Atoi("x")
	tests := []struct {
		name  string
		in    string
		items []trip
		err   recErr
	}{
		{"wrong field count", "id,city\n1,Oslo\n2\n3,Rome\n", []trip{{1, "Oslo"}},
			recErr{Line: 3, Record: 2, Fields: []string{"2"},
				Cause: (&csv.ParseError{StartLine: 3, Line: 3, Column: 1, Err: csv.ErrFieldCount}).Error()}},
		{"decode error after a multi-line record", "id,city\n1,\"a\nb\"\nx,Rome\n", []trip{{1, "a\nb"}},
			recErr{Line: 4, Record: 2, Fields: []string{"x", "Rome"}, Cause: atoiErr.Error()}},
		{"bare quote", "id,city\n1,Oslo\n2,Li\"ma\n", []trip{{1, "Oslo"}},
			recErr{Line: 3, Record: 2,
				Cause: (&csv.ParseError{StartLine: 3, Line: 3, Column: 5, Err: csv.ErrBareQuote}).Error()}},
		{"malformed header", "id,\"city\nx", nil,
			recErr{Line: 1, Record: 0,
				Cause: (&csv.ParseError{StartLine: 1, Line: 2, Column: 2, Err: csv.ErrQuote}).Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAll(t, sources.CSV(strings.NewReader(tt.in), decodeTrip))
			if diff := cmp.Diff(tt.items, r.Items()); diff != "" {
				t.Errorf("items (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.err, asRecErr(t, r.Err())); diff != "" {
				t.Errorf("error (-want +got)\n%s", diff)
			}
		})
	}
}

func TestCSVSkipMalformedReportsAndGoesOn(t *testing.T) {
	in := "id,city\n1,Oslo\n2\nx,Rome\n3,\"Li\"ma\"\n4,Lima\n"
	var reports []recErr
	skip := sources.SkipMalformed(func(err *sources.RecordError) {
		reports = append(reports, asRecErr(t, err))
	})
	r := runAll(t, sources.CSV(strings.NewReader(in), decodeTrip, skip))
	_, atoiErr := strconv.Atoi("x")
	wantReports := []recErr{
		{Line: 3, Record: 2, Fields: []string{"2"},
			Cause: (&csv.ParseError{StartLine: 3, Line: 3, Column: 1, Err: csv.ErrFieldCount}).Error()},
		{Line: 4, Record: 3, Fields: []string{"x", "Rome"}, Cause: atoiErr.Error()},
		{Line: 5, Record: 4, Cause: (&csv.ParseError{StartLine: 5, Line: 5, Column: 6, Err: csv.ErrQuote}).Error()},
	}
	if diff := cmp.Diff(wantReports, reports); diff != "" {
		t.Errorf("reports (-want +got)\n%s", diff)
	}
	wantLog := logOf([]trip{{1, "Oslo"}, {4, "Lima"}}, "OnComplete")
	if diff := cmp.Diff(wantLog, r.Log()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
}

func TestSkipMalformedStopsOnCancel(t *testing.T) {
	pubs := map[string]func(report func(*sources.RecordError)) flow.Publisher[string]{
		"CSV": func(report func(*sources.RecordError)) flow.Publisher[string] {
			return sources.CSVFile("f", func(_, rec []string) (string, error) {
				if rec[0] == "bad" {
					return "", errors.New("bad record")
				}
				return rec[0], nil
			}, sources.SkipMalformed(report))
		},
		"JSONLines": func(report func(*sources.RecordError)) flow.Publisher[string] {
			return sources.JSONLinesFile[string]("f", sources.SkipMalformed(report))
		},
	}
	contents := map[string]string{
		"CSV":       "h\na\nbad\nbad\nbad\nb\n",
		"JSONLines": "\"a\"\nbad\nbad\nbad\n\"b\"\n",
	}
	for name, pub := range pubs {
		t.Run(name, func(t *testing.T) {
			_, closes := fakeFiles(t, contents[name])
			r := newRecorder[string](t)
			var reported []int
			r.onSubscribe = requestFirst[string](flow.Unbounded)
			pub(func(err *sources.RecordError) {
				reported = append(reported, err.Line)
				r.sub.Cancel() // from inside the skip run
			}).Subscribe(r)
			got := []any{reported, r.Log(), closes.Load()}
			want := []any{[]int{3}, []string{"OnSubscribe", "OnNext(a)"}, int32(1)}
			if name == "JSONLines" {
				want[0] = []int{2}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("lines reported, log, closes (-want +got)\n%s", diff)
			}
		})
	}
}

func TestCSVLineTooLong(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		items    []trip
		line     int
	}{
		{"long data line", "id,city\n1,Oslo\n2,Reykjavik\n3,Rome\n", 8, []trip{{1, "Oslo"}}, 3},
		{"CRLF does not count", "id,city\r\n1,Oslo\r\n2,Lima\r\n", 7, []trip{{1, "Oslo"}, {2, "Lima"}}, 0},
		{"long header", "id,city,extra\n1,Oslo\n", 8, nil, 1},
		{"long last line without terminator", "id,city\n1,Reykjavik", 8, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Read one byte at a time, and all at once: the limit must not
			// depend on how the reads are split.
			for _, split := range []bool{false, true} {
				var in io.Reader = strings.NewReader(tt.in)
				if split {
					in = oneByte{strings.NewReader(tt.in)}
				}
				pub := sources.CSV(in, decodeTrip, sources.MaxLineLength(tt.max))
				r := runAll(t, pub)
				if diff := cmp.Diff(tt.items, r.Items()); diff != "" {
					t.Errorf("split=%t: items (-want +got)\n%s", split, diff)
				}
				if tt.line == 0 {
					if r.Err() != nil {
						t.Errorf("split=%t: error %v, want completion", split, r.Err())
					}
					continue
				}
				want := lineErr{tt.line, sources.ErrLineTooLong.Error()}
				if diff := cmp.Diff(want, asLineErr(t, r.Err())); diff != "" {
					t.Errorf("split=%t: error (-want +got)\n%s", split, diff)
				}
			}
		})
	}
}

// oneByte reads one byte at a time.
type oneByte struct{ r *strings.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestCSVReadErrorEndsTheStream(t *testing.T) {
	boom := errors.New("disk on fire")
	r := runAll(t, sources.CSV(readThenFail("id,city\n1,Oslo\n2,Li", boom), decodeTrip))
	if diff := cmp.Diff([]trip{{1, "Oslo"}}, r.Items()); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(lineErr{3, boom.Error()}, asLineErr(t, r.Err())); diff != "" {
		t.Errorf("error (-want +got)\n%s", diff)
	}
}

// readThenFail returns a reader of s that then fails with err.
func readThenFail(s string, err error) *failAfter { return &failAfter{s: s, err: err} }

type failAfter struct {
	s   string
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.s == "" {
		return 0, f.err
	}
	n := copy(p, f.s)
	f.s = f.s[n:]
	return n, nil
}

func TestCSVPanicInDecode(t *testing.T) {
	r := runAll(t, sources.CSV(strings.NewReader("a\n1\n2\n"), func(_, rec []string) (string, error) {
		if rec[0] == "2" {
			panic("bad row")
		}
		return rec[0], nil
	}))
	var pe *flow.PanicError
	if !errors.As(r.Err(), &pe) || pe.Value != "bad row" {
		t.Fatalf("error %v, want a *flow.PanicError of \"bad row\"", r.Err())
	}
	if diff := cmp.Diff([]string{"1"}, r.Items()); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
}

func TestCSVConformance(t *testing.T) {
	flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
		New: func(n int64) flow.Publisher[int] {
			return sources.CSV(&csvRows{nLines: nLines{n: n}}, func(_, rec []string) (int, error) { return strconv.Atoi(rec[0]) })
		},
		Failed: func() flow.Publisher[int] {
			return usedUp(sources.CSV(strings.NewReader(""), func(_, _ []string) (int, error) { return 0, nil }))
		},
	})
}

// csvRows is a CSV reader with a header and the rows 0 … n-1, made as it
// is read.
type csvRows struct {
	header bool
	nLines
}

func (c *csvRows) Read(p []byte) (int, error) {
	if !c.header {
		c.header = true
		c.pend = append(c.pend[:0], "n\n"...)
	}
	return c.nLines.Read(p)
}

func ExampleCSV() {
	in := strings.NewReader("id,city\n1,Oslo\n2\n3,Lima\n")
	type row struct {
		ID   string
		City string
	}
	pub := sources.CSV(in, func(header, rec []string) (row, error) {
		return row{ID: rec[0], City: rec[1]}, nil
	}, sources.SkipMalformed(func(err *sources.RecordError) {
		fmt.Println("skipped line", err.Line, "fields", err.Fields)
	}))
	printAll(pub)
	// Output:
	// {1 Oslo}
	// skipped line 3 fields [2]
	// {3 Lima}
	// done
}
