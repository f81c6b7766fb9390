package sources

import (
	"bytes"
	"encoding/json"
	"io"
	"sync/atomic"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/pull"
)

// JSONLines returns a publisher that reads r as JSON Lines, one JSON
// value per line, and emits each value decoded into a T with
// encoding/json, in order. Lines that are empty or hold only white space
// are skipped. An empty r emits nothing and completes.
//
// A line that does not decode into T ends the stream with a
// *[RecordError] that names the line and holds its text; with
// [SkipMalformed], it is reported and skipped. A line longer than
// [MaxLineLength] (default 1 MiB) or a read error ends the stream with a
// *[LineError].
//
// Demand, goroutines and single use are as for [Lines]: one line read and
// decoded per unit of demand, on the goroutine that owns the emission
// loop; a second subscriber is refused with [ErrReaderSubscribed]; r is
// never closed (see [JSONLinesFile]). The Subscription is goroutine-safe.
//
// Cost: that of json.Unmarshal for the line, which dominates, plus the
// read: about 800 ns per line for a struct of two fields (2-core x86 VM;
// go test -bench JSONLines ./sources).
//
// JSONLines panics if r is nil or an option is nil.
func JSONLines[T any](r io.Reader, opts ...RecordOption) flow.Publisher[T] {
	if r == nil {
		panic("sluice: JSONLines: nil Reader")
	}
	return &jsonlPublisher[T]{r: r, cfg: recordConfig("JSONLines", opts)}
}

// JSONLinesFile returns a publisher that reads the named file as
// [JSONLines] does. It is cold: each subscriber opens the file for itself
// at its first Request, and the file is closed when the subscription
// ends, on completion, error or Cancel, by the goroutine that owns the
// emission loop. An error from opening the file ends the stream with the
// *os.PathError.
//
// JSONLinesFile panics if an option is nil.
func JSONLinesFile[T any](path string, opts ...RecordOption) flow.Publisher[T] {
	return &jsonlPublisher[T]{path: path, file: true, cfg: recordConfig("JSONLinesFile", opts)}
}

type jsonlPublisher[T any] struct {
	r    io.Reader
	path string
	file bool
	cfg  readConfig
	once readerOnce
}

func (p *jsonlPublisher[T]) Subscribe(s flow.Subscriber[T]) {
	flow.RequireSubscriber(s)
	src := &jsonlSource[T]{cfg: p.cfg}
	if p.file {
		src.in.path = p.path
	} else {
		if !p.once.claim() {
			flow.Reject(s, ErrReaderSubscribed)
			return
		}
		src.in.r = p.r
	}
	pull.Subscribe(s, src, "jsonLines", p.cfg.name)
}

type jsonlSource[T any] struct {
	in      readerInput
	lr      *lineReader // nil until the input is opened
	records int
	cfg     readConfig
	stop    atomic.Bool // set by Interrupt: Cancel while skipping lines
}

// Interrupt lets Cancel stop a run of skipped lines, which Next would
// otherwise read to the next good line or the end of the input.
func (j *jsonlSource[T]) Interrupt() { j.stop.Store(true) }

func (j *jsonlSource[T]) Next() (T, bool, error) {
	var zero T
	if j.lr == nil {
		r, err := j.in.open()
		if err != nil {
			return zero, false, err
		}
		j.lr = newLineReader(r, j.cfg.maxLine)
	}
	for {
		b, err := j.lr.next()
		if err != nil {
			if err == io.EOF {
				return zero, false, nil
			}
			return zero, false, err
		}
		if len(bytes.TrimSpace(b)) == 0 {
			if j.stop.Load() {
				return zero, false, nil // cancelled: the engine reports nothing
			}
			continue
		}
		j.records++
		var item T
		err = json.Unmarshal(b, &item)
		if err == nil {
			return item, true, nil
		}
		rerr := &RecordError{Line: j.lr.line, Record: j.records, Text: string(b), Err: err}
		if j.cfg.skip == nil {
			return zero, false, rerr
		}
		j.cfg.skip(rerr)
		if j.stop.Load() {
			return zero, false, nil
		}
	}
}

func (j *jsonlSource[T]) Close() {
	j.in.close()
	j.lr = nil
}
