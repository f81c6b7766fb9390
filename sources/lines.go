package sources

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/pull"
)

// DefaultMaxLineLength is the longest line, in bytes without its
// terminator, that [Lines], [CSV] and [JSONLines] accept unless a
// [MaxLineLength] option says otherwise: 1 MiB.
const DefaultMaxLineLength = 1 << 20

// ErrLineTooLong is the cause (see [LineError]) of the error that ends a
// reader source when a line is longer than its [MaxLineLength].
var ErrLineTooLong = errors.New("sluice: line too long")

// ErrReaderSubscribed is signalled, through OnError, to the second and
// later subscribers of a publisher made by [Lines], [CSV] or [JSONLines]:
// an io.Reader can be read only once, so such a publisher serves a single
// subscriber. The File variants ([LinesFile], [CSVFile],
// [JSONLinesFile]) open the file afresh for each subscriber instead.
var ErrReaderSubscribed = errors.New("sluice: reader source already has a subscriber")

// LineError is the error that ends a reader source when a line cannot be
// read: it is longer than the limit ([ErrLineTooLong]) or the underlying
// reader failed. It is never skipped, not even with [SkipMalformed].
type LineError struct {
	// Line is the 1-based number of the line that could not be read.
	Line int
	// Err is the cause: ErrLineTooLong or the reader's error.
	Err error
}

var _ error = (*LineError)(nil)

// Error names the line and the cause.
func (e *LineError) Error() string {
	return fmt.Sprintf("sluice: line %d: %v", e.Line, e.Err)
}

// Unwrap returns the cause.
func (e *LineError) Unwrap() error { return e.Err }

// RecordError reports a malformed record of [CSV] or [JSONLines]: a CSV
// row that does not parse or has the wrong number of fields, a row that
// the decode function rejects, or a line that is not valid JSON for T. It
// ends the stream, unless the source was given [SkipMalformed], which
// hands it to a callback and goes on with the next record.
type RecordError struct {
	// Line is the 1-based line on which the record starts.
	Line int
	// Record is the 1-based number of the record among the data records
	// (the CSV header is not counted; neither are blank JSON lines).
	Record int
	// Fields holds the CSV record's fields when it parsed but was
	// rejected (wrong field count, or an error from decode); nil otherwise.
	Fields []string
	// Text holds the JSON line that failed to decode; empty for CSV.
	Text string
	// Err is the cause: a *csv.ParseError, the decode function's error,
	// or the encoding/json error.
	Err error
}

var _ error = (*RecordError)(nil)

// Error names the line, the record and the cause.
func (e *RecordError) Error() string {
	return fmt.Sprintf("sluice: line %d: record %d: %v", e.Line, e.Record, e.Err)
}

// Unwrap returns the cause.
func (e *RecordError) Unwrap() error { return e.Err }

// readConfig is the result of applying reader options.
type readConfig struct {
	maxLine int                // 0 means DefaultMaxLineLength
	skip    func(*RecordError) // nil: a malformed record ends the stream
	name    string             // given with Name; empty: derived when monitored
}

// LinesOption configures [Lines] and [LinesFile].
type LinesOption interface{ applyLines(*readConfig) }

// RecordOption configures [CSV], [CSVFile], [JSONLines] and
// [JSONLinesFile].
type RecordOption interface{ applyRecord(*readConfig) }

// ReadOption is an option that every reader source accepts.
type ReadOption interface {
	LinesOption
	RecordOption
}

type readOption func(*readConfig)

func (f readOption) applyLines(c *readConfig)  { f(c) }
func (f readOption) applyRecord(c *readConfig) { f(c) }

type recordOption func(*readConfig)

func (f recordOption) applyRecord(c *readConfig) { f(c) }

// MaxLineLength bounds the length of a line, in bytes without its "\n" or
// "\r\n" terminator (default [DefaultMaxLineLength]). A longer line ends
// the stream with a *[LineError] that wraps [ErrLineTooLong] and names the
// line. It bounds the memory a source holds: a line is buffered whole
// before it is emitted. For [CSV] it bounds each physical line, and a
// quoted field may span several. n <= 0 panics.
func MaxLineLength(n int) ReadOption {
	if n <= 0 {
		panic("sluice: MaxLineLength: n <= 0")
	}
	return readOption(func(c *readConfig) { c.maxLine = n })
}

// SkipMalformed makes [CSV] or [JSONLines] skip malformed records instead
// of failing: each one is passed to report, with its position and cause,
// and the source goes on with the next record without emitting anything
// for it. report runs on the goroutine that owns the emission loop,
// serially; a panic in it ends the stream with a *[flow.PanicError].
// A run of skipped records stops as soon as the subscription is
// cancelled, from report or from any goroutine. Lines that cannot be read
// ([LineError]) still end the stream. nil report panics.
func SkipMalformed(report func(err *RecordError)) RecordOption {
	if report == nil {
		panic("sluice: SkipMalformed: nil function")
	}
	return recordOption(func(c *readConfig) { c.skip = report })
}

func linesConfig(name string, opts []LinesOption) readConfig {
	var c readConfig
	for _, o := range opts {
		if o == nil {
			panic("sluice: " + name + ": nil option")
		}
		o.applyLines(&c)
	}
	if c.maxLine == 0 {
		c.maxLine = DefaultMaxLineLength
	}
	return c
}

func recordConfig(name string, opts []RecordOption) readConfig {
	var c readConfig
	for _, o := range opts {
		if o == nil {
			panic("sluice: " + name + ": nil option")
		}
		o.applyRecord(&c)
	}
	if c.maxLine == 0 {
		c.maxLine = DefaultMaxLineLength
	}
	return c
}

// readerInput is where a reader source reads from: a reader given by the caller
// (never closed), or a file opened at the first call into the source and
// closed with it. It is touched only by the owner of the emission loop.
type readerInput struct {
	r    io.Reader
	path string        // opened by open when r is nil
	f    io.ReadCloser // the file opened, closed by close
}

// openSourceFile opens the file of a File source; tests replace it to count
// Close calls.
var openSourceFile = func(path string) (io.ReadCloser, error) { return os.Open(path) }

func (in *readerInput) open() (io.Reader, error) {
	if in.r != nil {
		return in.r, nil
	}
	f, err := openSourceFile(in.path)
	if err != nil {
		return nil, err
	}
	in.f, in.r = f, f
	return f, nil
}

func (in *readerInput) close() {
	if in.f != nil {
		_ = in.f.Close() // a read-only file: nothing was lost
		in.f = nil
	}
	in.r = nil
}

// readerOnce is the single-use guard of a publisher over a caller's reader.
type readerOnce struct{ used atomic.Bool }

func (o *readerOnce) claim() bool { return o.used.CompareAndSwap(false, true) }

// lineReader splits a reader into lines of bounded length. A line that
// fits in the bufio buffer is returned without copying; a longer one is
// gathered in buf.
type lineReader struct {
	br   *bufio.Reader
	max  int
	line int // lines returned so far
	buf  []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	// The buffer holds the longest line plus "\r\n" if that is small, so
	// that most lines are sliced out of it; long limits gather in buf.
	size := min(max+2, 64<<10)
	return &lineReader{br: bufio.NewReaderSize(r, size), max: max}
}

// next returns the next line without its terminator, valid until the next
// call, or io.EOF at the end, or a *LineError.
func (l *lineReader) next() ([]byte, error) {
	b, err := l.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		b, err = l.gather(b)
	}
	switch {
	case err == nil:
	case err == io.EOF && len(b) > 0:
		// A last line without a terminator.
	case err == io.EOF:
		return nil, io.EOF
	case err == ErrLineTooLong:
		l.line++
		return nil, &LineError{Line: l.line, Err: ErrLineTooLong}
	default:
		return nil, &LineError{Line: l.line + 1, Err: err}
	}
	l.line++
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if len(b) > l.max {
		return nil, &LineError{Line: l.line, Err: ErrLineTooLong}
	}
	return b, nil
}

// gather collects a line longer than the bufio buffer into buf. It stops
// with ErrLineTooLong as soon as the line cannot fit the limit even
// without a "\r\n" terminator, without reading the rest of it.
func (l *lineReader) gather(b []byte) ([]byte, error) {
	l.buf = append(l.buf[:0], b...)
	for {
		if len(l.buf) > l.max+2 {
			return nil, ErrLineTooLong
		}
		b, err := l.br.ReadSlice('\n')
		l.buf = append(l.buf, b...)
		if err != bufio.ErrBufferFull {
			if len(l.buf) > l.max+2 {
				return nil, ErrLineTooLong
			}
			return l.buf, err
		}
	}
}

// Lines returns a publisher that emits the lines of r, in order, without
// their "\n" or "\r\n" terminators. A last line without a terminator is
// emitted too; an empty r emits nothing and completes.
//
// Demand: it reads only under demand, one line per unit of demand, and
// nothing before the first Request; the end of the input is noticed, and
// OnComplete signalled, when there is demand for one more line. Reads go
// through a buffer of up to 64 KiB, so r is read ahead of the lines
// emitted by at most that much.
//
// Errors: a line longer than the limit ([MaxLineLength], default 1 MiB)
// or a read error ends the stream with a *[LineError] that names the
// 1-based line.
//
// Goroutines: r is read on the goroutine that owns the emission loop, the
// one whose Request moved the demand off zero, exactly as [FromChannel]
// receives; a slow read blocks that goroutine. Put an async boundary such
// as operators.SubscribeOn in front to move the reading off the caller.
// Cancel cannot interrupt a read in progress: it takes effect when the
// read returns. The Subscription is goroutine-safe.
//
// An io.Reader can be read only once, so the publisher serves a single
// subscriber: later ones are refused with OnSubscribe then
// OnError([ErrReaderSubscribed]). Lines never closes r; see [LinesFile].
//
// Cost: one allocation per line (the string), plus the read and the
// OnNext call: about 45 ns per 40-byte line read from memory, where
// bufio.Scanner in a plain loop takes about 55 ns (medians of 5 on a
// 2-core x86 VM; go test -bench Lines ./sources).
//
// Lines panics if r is nil or an option is nil.
func Lines(r io.Reader, opts ...LinesOption) flow.Publisher[string] {
	if r == nil {
		panic("sluice: Lines: nil Reader")
	}
	return &linesPublisher{r: r, cfg: linesConfig("Lines", opts)}
}

// LinesFile returns a publisher that emits the lines of the named file,
// as [Lines] does. It is cold: each subscriber opens the file for itself,
// at its first Request, and reads it from the start. The file is closed
// when the subscription ends, on completion, error or Cancel, by the
// goroutine that owns the emission loop (or that calls Cancel while no
// loop runs). An error from opening the file ends the stream with the
// *os.PathError. Other behaviour and costs are those of [Lines].
//
// LinesFile panics if an option is nil.
func LinesFile(path string, opts ...LinesOption) flow.Publisher[string] {
	return &linesPublisher{path: path, file: true, cfg: linesConfig("LinesFile", opts)}
}

type linesPublisher struct {
	r    io.Reader
	path string
	file bool
	cfg  readConfig
	once readerOnce
}

func (p *linesPublisher) Subscribe(s flow.Subscriber[string]) {
	flow.RequireSubscriber(s)
	src := &linesSource{max: p.cfg.maxLine}
	if p.file {
		src.in.path = p.path
	} else {
		if !p.once.claim() {
			flow.Reject(s, ErrReaderSubscribed)
			return
		}
		src.in.r = p.r
	}
	pull.Subscribe(s, src, "lines", p.cfg.name)
}

type linesSource struct {
	in  readerInput
	lr  *lineReader // nil until the input is opened
	max int
}

func (s *linesSource) Next() (string, bool, error) {
	if s.lr == nil {
		r, err := s.in.open()
		if err != nil {
			return "", false, err
		}
		s.lr = newLineReader(r, s.max)
	}
	b, err := s.lr.next()
	if err != nil {
		if err == io.EOF {
			return "", false, nil
		}
		return "", false, err
	}
	return string(b), true, nil
}

func (s *linesSource) Close() {
	s.in.close()
	s.lr = nil
}
