package sinks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

type row struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

func encodeRow(r row) []string { return []string{strconv.Itoa(r.ID), r.Name} }

// result is what a writer sink returned and wrote.
type result struct {
	N   int64
	Err string
	Out string
}

func resultOf(n int64, err error, out string) result {
	r := result{N: n, Out: out}
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// thenFail emits items, then fails with err.
func thenFail[T any](items []T, err error) flow.Publisher[T] {
	return sources.Generate(func() int { return 0 }, func(i int) (T, int, error) {
		if i == len(items) {
			var zero T
			return zero, i, err
		}
		return items[i], i + 1, nil
	})
}

// mapPub applies f to the items of pub; the operators package is not
// imported by the sinks tests.
func mapPub[T, R any](pub flow.Publisher[T], f func(T) R) flow.Publisher[R] {
	return flow.PublisherFunc[R](func(s flow.Subscriber[R]) {
		pub.Subscribe(flow.SubscriberFuncs[T]{
			Subscribe: s.OnSubscribe,
			Next:      func(v T) { s.OnNext(f(v)) },
			Error:     s.OnError,
			Complete:  s.OnComplete,
		})
	})
}

func TestWriteJSONLinesWritesEachItem(t *testing.T) {
	rows := []row{{1, "a<b>&c"}, {2, "é\"\n"}}
	tests := []struct {
		name string
		pub  flow.Publisher[row]
		opts []sinks.Option
		want result
	}{
		{"items", sources.Slice(rows), nil,
			result{2, "", `{"id":1,"name":"a<b>&c"}` + "\n" + `{"id":2,"name":"é\"\n"}` + "\n"}},
		{"one at a time", sources.Slice(rows), []sinks.Option{sinks.Prefetch(1)},
			result{2, "", `{"id":1,"name":"a<b>&c"}` + "\n" + `{"id":2,"name":"é\"\n"}` + "\n"}},
		{"no items", sources.Empty[row](), nil, result{0, "", ""}},
		{"upstream error keeps what came before", thenFail(rows[:1], errBoom), nil,
			result{1, errBoom.Error(), `{"id":1,"name":"a<b>&c"}` + "\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := sinks.WriteJSONLines(context.Background(), tt.pub, &buf, tt.opts...)
			if diff := cmp.Diff(tt.want, resultOf(n, err, buf.String())); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestWriteCSVWritesEachRecord(t *testing.T) {
	rows := []row{{1, "plain"}, {2, "a,b"}, {3, "say \"hi\"\nbye"}}
	tests := []struct {
		name   string
		pub    flow.Publisher[row]
		header []string
		want   result
	}{
		{"header and quoting", sources.Slice(rows), []string{"id", "name"},
			result{3, "", "id,name\n1,plain\n2,\"a,b\"\n3,\"say \"\"hi\"\"\nbye\"\n"}},
		{"no header", sources.Slice(rows[:1]), nil, result{1, "", "1,plain\n"}},
		{"header of an empty stream", sources.Empty[row](), []string{"id", "name"}, result{0, "", "id,name\n"}},
		{"upstream error keeps what came before", thenFail(rows[:2], errBoom), []string{"id"},
			result{2, errBoom.Error(), "id\n1,plain\n2,\"a,b\"\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := sinks.WriteCSV(context.Background(), tt.pub, &buf, tt.header, encodeRow)
			if diff := cmp.Diff(tt.want, resultOf(n, err, buf.String())); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// failingWriter accepts ok bytes, then fails every write with err.
type failingWriter struct {
	ok     int
	err    error
	writes int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	if len(p) <= w.ok {
		w.ok -= len(p)
		return len(p), nil
	}
	n := w.ok
	w.ok = 0
	return n, w.err
}

// writers runs each writer sink over an int publisher.
var writers = []struct {
	name string
	run  func(ctx context.Context, pub flow.Publisher[int], w io.Writer) (int64, error)
}{
	{"WriteJSONLines", func(ctx context.Context, pub flow.Publisher[int], w io.Writer) (int64, error) {
		return sinks.WriteJSONLines(ctx, pub, w)
	}},
	{"WriteCSV", func(ctx context.Context, pub flow.Publisher[int], w io.Writer) (int64, error) {
		return sinks.WriteCSV(ctx, pub, w, nil, func(i int) []string { return []string{strconv.Itoa(i)} })
	}},
}

func TestWritersWriteErrorEndsTheStreamAndCancelsUpstream(t *testing.T) {
	diskFull := errors.New("disk full")
	for _, wr := range writers {
		t.Run(wr.name+"/while streaming", func(t *testing.T) {
			pub := newPub(-1, nil, syncMode) // endless: only the error can stop it
			w := &failingWriter{ok: 1000, err: diskFull}
			n, err := wr.run(context.Background(), pub, w)
			got := []any{errors.Is(err, diskFull), pub.Cancels(), n > 1000, w.writes}
			// The buffer fills once (64 KiB), the write fails, the stream ends.
			want := []any{true, 1, true, 1}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("error is diskFull, cancels, n > 1000, writes (-want +got)\n%s", diff)
			}
		})
		t.Run(wr.name+"/at the final flush", func(t *testing.T) {
			pub := newPub(3, nil, syncMode)
			w := &failingWriter{ok: 2, err: diskFull}
			n, err := wr.run(context.Background(), pub, w)
			if diff := cmp.Diff(result{3, diskFull.Error(), ""}, resultOf(n, err, "")); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// unencodable has no JSON encoding.
type unencodable struct{ C chan int }

// panicky panics when it is encoded.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("cannot encode") }

func TestWritersItemErrorsCancelUpstream(t *testing.T) {
	t.Run("WriteJSONLines/unsupported type", func(t *testing.T) {
		var buf bytes.Buffer
		p := newPub(3, nil, syncMode)
		pub := mapPub(p, func(i int) unencodable { return unencodable{} })
		n, err := sinks.WriteJSONLines(context.Background(), pub, &buf)
		var ute *json.UnsupportedTypeError
		got := []any{n, errors.As(err, &ute), p.Cancels(), buf.String()}
		if diff := cmp.Diff([]any{int64(0), true, 1, ""}, got); diff != "" {
			t.Errorf("n, unsupported type error, cancels, output (-want +got)\n%s", diff)
		}
	})
	t.Run("WriteJSONLines/panic in MarshalJSON", func(t *testing.T) {
		var buf bytes.Buffer
		p := newPub(3, nil, syncMode)
		n, err := sinks.WriteJSONLines(context.Background(), mapPub(p, func(int) panicky { return panicky{} }), &buf)
		var pe *flow.PanicError
		got := []any{n, errors.As(err, &pe), p.Cancels()}
		if diff := cmp.Diff([]any{int64(0), true, 1}, got); diff != "" {
			t.Errorf("n, panic error, cancels (-want +got)\n%s", diff)
		}
	})
	t.Run("WriteCSV/panic in encode", func(t *testing.T) {
		var buf bytes.Buffer
		p := newPub(5, nil, syncMode)
		n, err := sinks.WriteCSV(context.Background(), p, &buf, []string{"n"}, func(i int) []string {
			if i == 2 {
				panic("bad item")
			}
			return []string{strconv.Itoa(i)}
		})
		var pe *flow.PanicError
		got := []any{n, errors.As(err, &pe) && pe.Value == "bad item", p.Cancels(), buf.String()}
		if diff := cmp.Diff([]any{int64(2), true, 1, "n\n0\n1\n"}, got); diff != "" {
			t.Errorf("n, panic error, cancels, output (-want +got)\n%s", diff)
		}
	})
}

func TestWritersContext(t *testing.T) {
	for _, wr := range writers {
		t.Run(wr.name+"/already done: nothing written, no subscription", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var buf bytes.Buffer
			p := newPub(3, nil, syncMode)
			n, err := wr.run(ctx, p, &buf)
			got := []any{resultOf(n, err, buf.String()), p.Subscribes()}
			if diff := cmp.Diff([]any{result{0, context.Canceled.Error(), ""}, 0}, got); diff != "" {
				t.Errorf("result, subscribes (-want +got)\n%s", diff)
			}
		})
		t.Run(wr.name+"/cancelled while streaming: what was counted is flushed", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := newPub(-1, nil, syncMode)
			p.onEmit = func(i int) {
				if i == 5 {
					cancel()
				}
			}
			var buf bytes.Buffer
			n, err := wr.run(ctx, p, &buf)
			var want strings.Builder
			for i := range int(n) {
				fmt.Fprintf(&want, "%d\n", i)
			}
			got := []any{errors.Is(err, context.Canceled), n >= 5, buf.String(), p.Cancels()}
			if diff := cmp.Diff([]any{true, true, want.String(), 1}, got); diff != "" {
				t.Errorf("cancelled, n >= 5, output, cancels (-want +got)\n%s", diff)
			}
		})
	}
}

// With an asynchronous upstream, an item may still be delivered while the
// sink returns; the output must still match the count exactly, and the
// race detector must see no race on the buffer.
func TestWritersAsyncUpstreamCancelled(t *testing.T) {
	for _, wr := range writers {
		t.Run(wr.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := newPub(-1, nil, asyncMode)
			p.onEmit = func(i int) {
				if i == 1000 {
					cancel()
				}
			}
			var buf bytes.Buffer
			n, err := wr.run(ctx, p, &buf)
			out := buf.String() // read before the publisher's goroutine is waited for
			p.Wait()
			var want strings.Builder
			for i := range int(n) {
				fmt.Fprintf(&want, "%d\n", i)
			}
			got := []any{errors.Is(err, context.Canceled), n >= 1000, out, buf.String()}
			if diff := cmp.Diff([]any{true, true, want.String(), want.String()}, got); diff != "" {
				t.Errorf("cancelled, n >= 1000, output at return, output later (-want +got)\n%s", diff)
			}
		})
	}
}

func TestWritersToAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := sinks.WriteJSONLines(context.Background(), sources.Range(0, 3), f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	data, _ := os.ReadFile(path)
	if diff := cmp.Diff(result{3, "", "0\n1\n2\n"}, resultOf(n, err, string(data))); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestWritersToAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := make(chan string)
	go func() {
		data, _ := io.ReadAll(r)
		read <- string(data)
	}()
	n, err := sinks.WriteCSV(context.Background(), sources.Range(0, 2), w, []string{"n"},
		func(i int) []string { return []string{strconv.Itoa(i)} })
	_ = w.Close()
	if diff := cmp.Diff(result{2, "", "n\n0\n1\n"}, resultOf(n, err, <-read)); diff != "" {
		t.Errorf("a pipe is not synced (-want +got)\n%s", diff)
	}
}

func TestWritersConform(t *testing.T) {
	for _, wr := range writers {
		t.Run(wr.name, func(t *testing.T) {
			flowtest.VerifySubscriber(t, flowtest.SubscriberConfig[int]{
				Sink: func(ctx context.Context, pub flow.Publisher[int]) error {
					_, err := wr.run(ctx, pub, io.Discard)
					return err
				},
				Element: func(i int64) int { return int(i) },
			})
		})
	}
}

func TestWritersPanicOnBadArguments(t *testing.T) {
	ctx, pub := context.Background(), sources.Empty[int]()
	enc := func(int) []string { return nil }
	tests := map[string]func(){
		"sluice: WriteJSONLines: nil Writer":    func() { _, _ = sinks.WriteJSONLines(ctx, pub, nil) },
		"sluice: WriteJSONLines: nil Publisher": func() { _, _ = sinks.WriteJSONLines[int](ctx, nil, io.Discard) },
		"sluice: WriteCSV: nil Writer":          func() { _, _ = sinks.WriteCSV(ctx, pub, nil, nil, enc) },
		"sluice: WriteCSV: nil encode":          func() { _, _ = sinks.WriteCSV(ctx, pub, io.Discard, nil, nil) },
		"sluice: WriteCSV: nil Option":          func() { _, _ = sinks.WriteCSV(ctx, pub, io.Discard, nil, enc, nil) },
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

func ExampleWriteJSONLines() {
	type point struct {
		X, Y int
	}
	var out bytes.Buffer
	n, err := sinks.WriteJSONLines(context.Background(), sources.Slice([]point{{1, 2}, {3, 4}}), &out)
	fmt.Print(out.String())
	fmt.Println(n, err)
	// Output:
	// {"X":1,"Y":2}
	// {"X":3,"Y":4}
	// 2 <nil>
}

func ExampleWriteCSV() {
	var out bytes.Buffer
	n, err := sinks.WriteCSV(context.Background(), sources.Range(1, 3), &out, []string{"n", "square"},
		func(i int) []string { return []string{strconv.Itoa(i), strconv.Itoa(i * i)} })
	fmt.Print(out.String())
	fmt.Println(n, err)
	// Output:
	// n,square
	// 1,1
	// 2,4
	// 3,9
	// 3 <nil>
}
