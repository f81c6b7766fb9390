package sources_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/sources"
)

// runAll subscribes a recorder to pub, requests everything and returns it.
func runAll[T any](t *testing.T, pub flow.Publisher[T]) *recorder[T] {
	t.Helper()
	r := newRecorder[T](t)
	r.onSubscribe = requestFirst[T](flow.Unbounded)
	pub.Subscribe(r)
	return r
}

// lineErr is the comparable view of a *sources.LineError.
type lineErr struct {
	Line  int
	Cause string
}

func asLineErr(t *testing.T, err error) lineErr {
	t.Helper()
	var le *sources.LineError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LineError", err, err)
	}
	return lineErr{le.Line, le.Err.Error()}
}

func TestLinesEmitsEachLineWithoutTerminator(t *testing.T) {
	long := strings.Repeat("x", 100_000) // longer than the 64 KiB buffer
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty input", "", nil},
		{"one line without terminator", "a", []string{"a"}},
		{"one line with terminator", "a\n", []string{"a"}},
		{"last line without terminator", "a\nb", []string{"a", "b"}},
		{"CRLF terminators", "a\r\nb\r\n", []string{"a", "b"}},
		{"CR inside a line is kept", "a\rb\n", []string{"a\rb"}},
		{"empty lines", "\n\r\n\n", []string{"", "", ""}},
		{"last line CR only", "a\n\r", []string{"a", ""}},
		{"line longer than the buffer", long + "\r\nz", []string{long, "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runAll(t, sources.Lines(strings.NewReader(tt.in)))
			if diff := cmp.Diff(tt.want, r.Items()); diff != "" {
				t.Errorf("items (-want +got)\n%s", diff)
			}
			if r.Err() != nil || !r.Terminated() {
				t.Errorf("err = %v, terminated = %t; want completion", r.Err(), r.Terminated())
			}
		})
	}
}

func TestLinesErrorNamesTheLine(t *testing.T) {
	boom := errors.New("disk on fire")
	tests := []struct {
		name  string
		r     io.Reader
		max   int
		items []string
		err   lineErr
	}{
		{"line over the limit", strings.NewReader("abc\nabcd\nx\n"), 3, []string{"abc"},
			lineErr{2, sources.ErrLineTooLong.Error()}},
		{"CRLF does not count", strings.NewReader("abc\r\nabc\r\nabcd"), 3, []string{"abc", "abc"},
			lineErr{3, sources.ErrLineTooLong.Error()}},
		{"long line past the buffer", strings.NewReader("ok\n" + strings.Repeat("y", 200_000) + "\n"), 100_000,
			[]string{"ok"}, lineErr{2, sources.ErrLineTooLong.Error()}},
		{"line exactly at a long limit", strings.NewReader(strings.Repeat("y", 100_001) + "\n"), 100_000,
			nil, lineErr{1, sources.ErrLineTooLong.Error()}},
		{"read error", io.MultiReader(strings.NewReader("a\nb\nc"), errReader(boom)), 0,
			[]string{"a", "b"}, lineErr{3, boom.Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []sources.LinesOption
			if tt.max > 0 {
				opts = append(opts, sources.MaxLineLength(tt.max))
			}
			r := runAll(t, sources.Lines(tt.r, opts...))
			if diff := cmp.Diff(tt.items, r.Items()); diff != "" {
				t.Errorf("items (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.err, asLineErr(t, r.Err())); diff != "" {
				t.Errorf("error (-want +got)\n%s", diff)
			}
		})
	}
	t.Run("message", func(t *testing.T) {
		err := (&sources.LineError{Line: 7, Err: sources.ErrLineTooLong}).Error()
		if want := "sluice: line 7: sluice: line too long"; err != want {
			t.Errorf("Error() = %q, want %q", err, want)
		}
	})
}

// errReader returns a reader that fails at once with err.
func errReader(err error) io.Reader { return failingReader{err} }

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestLinesEmitsOnlyWhatIsRequested(t *testing.T) {
	r := newRecorder[string](t)
	sources.Lines(strings.NewReader("l0\nl1\nl2\n")).Subscribe(r)
	r.sub.Request(2)
	got := [][]string{r.Log()}
	r.sub.Request(1)
	got = append(got, r.Log())
	r.sub.Request(1)
	got = append(got, r.Log())
	want := [][]string{
		{"OnSubscribe", "OnNext(l0)", "OnNext(l1)"},
		{"OnSubscribe", "OnNext(l0)", "OnNext(l1)", "OnNext(l2)"},
		{"OnSubscribe", "OnNext(l0)", "OnNext(l1)", "OnNext(l2)", "OnComplete"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logs after Request(2), Request(1), Request(1) (-want +got)\n%s", diff)
	}
}

// goidReader records the goroutine of each Read.
type goidReader struct {
	r    io.Reader
	mu   sync.Mutex
	gids map[int64]bool
}

func (g *goidReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	g.gids[goid()] = true
	g.mu.Unlock()
	return g.r.Read(p)
}

func TestLinesReadsOnTheGoroutineThatRequests(t *testing.T) {
	in := &goidReader{r: strings.NewReader("a\nb\n"), gids: map[int64]bool{}}
	r := newRecorder[string](t)
	sources.Lines(in).Subscribe(r)
	var requester int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		requester = goid()
		r.sub.Request(flow.Unbounded)
	}()
	<-done
	got := []any{in.gids, r.Log()}
	want := []any{map[int64]bool{requester: true}, []string{"OnSubscribe", "OnNext(a)", "OnNext(b)", "OnComplete"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("goroutines that read, log (-want +got)\n%s", diff)
	}
}

func TestReaderSourcesServeOneSubscriber(t *testing.T) {
	pubs := map[string]flow.Publisher[string]{
		"Lines":     sources.Lines(strings.NewReader("a\n")),
		"CSV":       sources.CSV(strings.NewReader("h\na\n"), func(_, rec []string) (string, error) { return rec[0], nil }),
		"JSONLines": sources.JSONLines[string](strings.NewReader(`"a"` + "\n")),
	}
	for name, pub := range pubs {
		t.Run(name, func(t *testing.T) {
			first := runAll(t, pub)
			second := runAll(t, pub)
			want := [][]string{
				{"OnSubscribe", "OnNext(a)", "OnComplete"},
				{"OnSubscribe", "OnError(" + sources.ErrReaderSubscribed.Error() + ")"},
			}
			if diff := cmp.Diff(want, [][]string{first.Log(), second.Log()}); diff != "" {
				t.Errorf("logs of two subscribers (-want +got)\n%s", diff)
			}
			if !errors.Is(second.Err(), sources.ErrReaderSubscribed) {
				t.Errorf("second error %v does not match ErrReaderSubscribed", second.Err())
			}
		})
	}
}

// countingFile is the io.ReadCloser handed to a File source by the test
// hook: it counts Close calls.
type countingFile struct {
	io.Reader
	closes *atomic.Int32
}

func (c countingFile) Close() error { c.closes.Add(1); return nil }

// fakeFiles replaces the File sources' opener for the test: every open of
// any path returns content, and opens and closes are counted.
func fakeFiles(t *testing.T, content string) (opens, closes *atomic.Int32) {
	opens, closes = new(atomic.Int32), new(atomic.Int32)
	restore := sources.SetOpenFile(func(string) (io.ReadCloser, error) {
		opens.Add(1)
		return countingFile{strings.NewReader(content), closes}, nil
	})
	t.Cleanup(restore)
	return opens, closes
}

func TestFileSourcesCloseTheirFile(t *testing.T) {
	toString := func(_, rec []string) (string, error) { return rec[0], nil }
	kinds := []struct {
		name    string
		content string // three records, the third malformed
		pub     func() flow.Publisher[string]
	}{
		{"LinesFile", "a\nb\n" + strings.Repeat("c", 20) + "\n",
			func() flow.Publisher[string] { return sources.LinesFile("f", sources.MaxLineLength(10)) }},
		{"CSVFile", "h\na\nb\n\"c\n",
			func() flow.Publisher[string] { return sources.CSVFile("f", toString) }},
		{"JSONLinesFile", "\"a\"\n\"b\"\n{\n",
			func() flow.Publisher[string] { return sources.JSONLinesFile[string]("f") }},
	}
	for _, k := range kinds {
		endings := []struct {
			name     string
			request  int64
			cancelAt int // cancel in OnNext of this item; -1 never
			items    []string
			terminal bool
			failed   bool
		}{
			{"on error", flow.Unbounded, -1, []string{"a", "b"}, true, true},
			{"on cancel during emission", flow.Unbounded, 1, []string{"a", "b"}, false, false},
			{"on cancel between requests", 2, -1, []string{"a", "b"}, false, false},
		}
		for _, e := range endings {
			t.Run(k.name+"/"+e.name, func(t *testing.T) {
				opens, closes := fakeFiles(t, k.content)
				r := newRecorder[string](t)
				r.onNext = func(r *recorder[string], i int, _ string) {
					if i == e.cancelAt {
						r.sub.Cancel()
					}
				}
				k.pub().Subscribe(r)
				before := opens.Load()
				r.sub.Request(e.request)
				if e.request != flow.Unbounded {
					r.sub.Cancel() // two items read, no loop running
				}
				got := []any{before, opens.Load(), closes.Load(), r.Items(), r.Terminated(), r.Err() != nil}
				want := []any{int32(0), int32(1), int32(1), e.items, e.terminal, e.failed}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("opens before Request, opens, closes, items, terminated, failed (-want +got)\n%s", diff)
				}
			})
		}
		t.Run(k.name+"/on completion of a good file", func(t *testing.T) {
			_, closes := fakeFiles(t, withoutLastLine(k.content))
			r := runAll(t, k.pub())
			got := []any{closes.Load(), r.Items(), r.Log()[len(r.Log())-1]}
			want := []any{int32(1), []string{"a", "b"}, "OnComplete"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("closes, items, last signal (-want +got)\n%s", diff)
			}
		})
		t.Run(k.name+"/each subscriber opens its own", func(t *testing.T) {
			opens, closes := fakeFiles(t, withoutLastLine(k.content))
			pub := k.pub()
			a, b := runAll(t, pub), runAll(t, pub)
			got := []any{opens.Load(), closes.Load(), a.Items(), b.Items()}
			want := []any{int32(2), int32(2), []string{"a", "b"}, []string{"a", "b"}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("opens, closes, items of each (-want +got)\n%s", diff)
			}
		})
		t.Run(k.name+"/on a non-positive request", func(t *testing.T) {
			_, closes := fakeFiles(t, k.content)
			r := newRecorder[string](t)
			k.pub().Subscribe(r)
			r.sub.Request(1)
			r.sub.Request(0)
			got := []any{closes.Load(), r.Log()}
			want := []any{int32(1), []string{"OnSubscribe", "OnNext(a)", badRequest(0)}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("closes, log (-want +got)\n%s", diff)
			}
		})
	}
}

func TestFileSourcesReadRealFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(path, []byte("x\r\ny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runAll(t, sources.LinesFile(path))
	if diff := cmp.Diff([]string{"OnSubscribe", "OnNext(x)", "OnNext(y)", "OnComplete"}, r.Log()); diff != "" {
		t.Errorf("log (-want +got)\n%s", diff)
	}
	missing := runAll(t, sources.LinesFile(filepath.Join(dir, "missing")))
	if !errors.Is(missing.Err(), os.ErrNotExist) {
		t.Errorf("missing file: error %v, want one that matches os.ErrNotExist", missing.Err())
	}
}

func TestReaderSourcesPanicOnBadArguments(t *testing.T) {
	dec := func(_, _ []string) (int, error) { return 0, nil }
	tests := map[string]func(){
		"sluice: Lines: nil Reader":           func() { sources.Lines(nil) },
		"sluice: Lines: nil option":           func() { sources.Lines(strings.NewReader(""), nil) },
		"sluice: MaxLineLength: n <= 0":       func() { sources.MaxLineLength(0) },
		"sluice: SkipMalformed: nil function": func() { sources.SkipMalformed(nil) },
		"sluice: CSV: nil Reader":             func() { sources.CSV(nil, dec) },
		"sluice: CSV: nil decode":             func() { sources.CSV[int](strings.NewReader(""), nil) },
		"sluice: CSVFile: nil decode":         func() { sources.CSVFile[int]("f", nil) },
		"sluice: JSONLines: nil Reader":       func() { sources.JSONLines[int](nil) },
		"sluice: JSONLinesFile: nil option":   func() { sources.JSONLinesFile[int]("f", nil) },
	}
	for want, f := range tests {
		if got := mustPanic(t, f); got != want {
			t.Errorf("panic %q, want %q", got, want)
		}
	}
}

// nLines is a reader of the lines "0\n" … "n-1\n", made as it is read so
// that a large n costs no memory.
type nLines struct {
	i, n int64
	pend []byte
}

func (r *nLines) Read(p []byte) (int, error) {
	w := 0
	for w < len(p) {
		if len(r.pend) == 0 {
			if r.i == r.n {
				break
			}
			r.pend = strconv.AppendInt(r.pend[:0], r.i, 10)
			r.pend = append(r.pend, '\n')
			r.i++
		}
		c := copy(p[w:], r.pend)
		r.pend = r.pend[c:]
		w += c
	}
	if w == 0 {
		return 0, io.EOF
	}
	return w, nil
}

// usedUp returns a reader publisher whose one subscription is taken, so
// that it fails every subscriber without waiting for demand. A reader
// that fails is not enough: it is read only under demand.
func usedUp[T any](pub flow.Publisher[T]) flow.Publisher[T] {
	pub.Subscribe(flow.SubscriberFuncs[T]{Subscribe: func(s flow.Subscription) { s.Cancel() }})
	return pub
}

func TestLinesConformance(t *testing.T) {
	flowtest.VerifyPublisher(t, flowtest.PublisherConfig[string]{
		New:    func(n int64) flow.Publisher[string] { return sources.Lines(&nLines{n: n}) },
		Failed: func() flow.Publisher[string] { return usedUp(sources.Lines(strings.NewReader(""))) },
	})
}

func TestLinesFileConformance(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	file := func(n int64) string { // a file of n lines, written once
		mu.Lock()
		defer mu.Unlock()
		path := filepath.Join(dir, strconv.FormatInt(n, 10))
		if _, err := os.Stat(path); err == nil {
			return path
		}
		var buf bytes.Buffer
		_, _ = io.Copy(&buf, &nLines{n: n})
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	flowtest.VerifyPublisher(t, flowtest.PublisherConfig[string]{
		New:         func(n int64) flow.Publisher[string] { return sources.LinesFile(file(n)) },
		MaxElements: 1 << 12,
		// No Failed: a File source fails (a missing file) only under
		// demand; TestFileSourcesReadRealFiles covers that path.
	})
}

// withoutLastLine drops the last line of s, which ends with "\n".
func withoutLastLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return s[:strings.LastIndexByte(s, '\n')+1]
}
