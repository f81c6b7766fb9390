package sources_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/sources"
)

type event struct {
	ID   int    `json:"id"`
	Kind string `json:"kind"`
}

// unmarshalErr returns the message of json.Unmarshal's error for line
// into a T.
func unmarshalErr[T any](line string) string {
	var v T
	return json.Unmarshal([]byte(line), &v).Error()
}

func TestJSONLinesDecodesEachLine(t *testing.T) {
	tests := []struct {
		name, in string
		want     []event
	}{
		{"empty input", "", nil},
		{"lines", `{"id":1,"kind":"a"}` + "\n" + `{"id":2,"kind":"b"}` + "\n", []event{{1, "a"}, {2, "b"}}},
		{"CRLF and no final terminator", `{"id":1}` + "\r\n" + `{"kind":"b"}`, []event{{1, ""}, {0, "b"}}},
		{"blank lines are skipped", "\n  \t\n" + `{"id":3}` + "\n\r\n", []event{{3, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAll(t, sources.JSONLines[event](strings.NewReader(tt.in)))
			if diff := cmp.Diff(tt.want, r.Items()); diff != "" {
				t.Errorf("items (-want +got)\n%s", diff)
			}
			if r.Err() != nil || !r.Terminated() {
				t.Errorf("err = %v, terminated = %t; want completion", r.Err(), r.Terminated())
			}
		})
	}
}

func TestJSONLinesMalformedLineNamesItsLine(t *testing.T) {
	in := `{"id":1}` + "\n\n" + `{"id":"x"}` + "\n" + `{"id":3}` + "\n"
	r := runAll(t, sources.JSONLines[event](strings.NewReader(in)))
	if diff := cmp.Diff([]event{{1, ""}}, r.Items()); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
	want := recErr{Line: 3, Record: 2, Text: `{"id":"x"}`, Cause: unmarshalErr[event](`{"id":"x"}`)}
	if diff := cmp.Diff(want, asRecErr(t, r.Err())); diff != "" {
		t.Errorf("error (-want +got)\n%s", diff)
	}
}

func TestJSONLinesSkipMalformedReportsAndGoesOn(t *testing.T) {
	in := `{"id":1}` + "\n" + `{"id":` + "\n" + `[1]` + "\n" + `{"id":4}` + "\n"
	var reports []recErr
	r := runAll(t, sources.JSONLines[event](strings.NewReader(in), sources.SkipMalformed(func(err *sources.RecordError) {
		reports = append(reports, asRecErr(t, err))
	})))
	wantReports := []recErr{
		{Line: 2, Record: 2, Text: `{"id":`, Cause: unmarshalErr[event](`{"id":`)},
		{Line: 3, Record: 3, Text: `[1]`, Cause: unmarshalErr[event](`[1]`)},
	}
	if diff := cmp.Diff(wantReports, reports); diff != "" {
		t.Errorf("reports (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(logOf([]event{{1, ""}, {4, ""}}, "OnComplete"), r.Log()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
}

func TestJSONLinesLongLineIsNeverSkipped(t *testing.T) {
	in := `{"id":1}` + "\n" + `{"id":22222}` + "\n" + `{"id":3}` + "\n"
	skip := sources.SkipMalformed(func(err *sources.RecordError) { t.Errorf("reported %v", err) })
	r := runAll(t, sources.JSONLines[event](strings.NewReader(in), skip, sources.MaxLineLength(10)))
	if diff := cmp.Diff([]event{{1, ""}}, r.Items()); diff != "" {
		t.Errorf("items (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(lineErr{2, sources.ErrLineTooLong.Error()}, asLineErr(t, r.Err())); diff != "" {
		t.Errorf("error (-want +got)\n%s", diff)
	}
}

func TestJSONLinesConformance(t *testing.T) {
	flowtest.VerifyPublisher(t, flowtest.PublisherConfig[int]{
		New:    func(n int64) flow.Publisher[int] { return sources.JSONLines[int](&nLines{n: n}) },
		Failed: func() flow.Publisher[int] { return usedUp(sources.JSONLines[int](strings.NewReader(""))) },
	})
}

func ExampleJSONLines() {
	in := strings.NewReader(`{"id":1,"kind":"click"}
{"id":2,"kind":
{"id":3,"kind":"view"}
`)
	type event struct {
		ID   int    `json:"id"`
		Kind string `json:"kind"`
	}
	printAll(sources.JSONLines[event](in, sources.SkipMalformed(func(err *sources.RecordError) {
		fmt.Printf("skipped line %d: %q\n", err.Line, err.Text)
	})))
	// Output:
	// {1 click}
	// skipped line 2: "{\"id\":2,\"kind\":"
	// {3 view}
	// done
}
