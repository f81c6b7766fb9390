package sinks

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/sluicego/sluice/flow"
)

// writeBufferSize is the size of the buffer in front of a writer sink's
// io.Writer.
const writeBufferSize = 64 << 10

// errWriterClosed ends a late item of an asynchronous upstream that
// arrives after the writer sink has flushed and returned.
var errWriterClosed = errors.New("sluice: writer sink already returned")

// bufferedWriter is the part of WriteJSONLines and WriteCSV that owns the
// buffer: items are written under mu so that the final flush never races
// an item that an asynchronous upstream delivers after ctx ended (see
// ForEach). The mutex is uncontended on the per-item path.
type bufferedWriter struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	w      io.Writer
	closed bool
	n      int64
}

func newBufferedWriter(w io.Writer) *bufferedWriter {
	return &bufferedWriter{bw: bufio.NewWriterSize(w, writeBufferSize), w: w}
}

// finish flushes the buffer, syncs an *os.File if nothing failed, and
// returns the count and the first error: err (the stream's), then the
// flush's, then the sync's.
func (b *bufferedWriter) finish(err error, flush func() error) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	ferr := flush()
	if ferr == nil {
		ferr = syncFile(b.w)
	}
	if err == nil {
		err = ferr
	}
	return b.n, err
}

// syncFile calls Sync on w if it is an *os.File of a regular file; pipes
// and terminals, such as os.Stdout often is, cannot be synced.
func syncFile(w io.Writer) error {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	return f.Sync()
}

// WriteJSONLines subscribes to pub and writes each item to w as one line
// of JSON (encoding/json, HTML characters not escaped, "\n" after each),
// in order. It returns the number of items written and nil when pub
// completes; the count so far and pub's error when it fails; or the first
// error of encoding or writing an item, after cancelling upstream. A
// panic in a MarshalJSON method is returned as a *[flow.PanicError].
//
// Writes go through a 64 KiB buffer, flushed when the stream ends, however
// it ends; so a write error may surface up to 64 KiB after the item that
// caused it, and on error the count includes items that were buffered but
// may not all have reached w. After a successful flush, if w is an
// *os.File of a regular file, WriteJSONLines calls its Sync, so that the
// data is on disk when it returns nil (a pipe or terminal, such as
// os.Stdout may be, is not synced). It never closes w.
//
// Demand, context and goroutines are those of [ForEach], which it calls
// with opts: prefetch 256 by default, replenished by 192; when ctx is
// done it cancels upstream, flushes what was written and returns
// ctx.Err(); if ctx is already done it writes nothing and returns
// ctx.Err() without subscribing. Items are encoded serially; w is written from the goroutine
// that delivers the items, and at the end from the caller's.
//
// Cost: the JSON encoding of the item plus one uncontended mutex per
// item, so that a late item of an asynchronous upstream cannot race the
// final flush: about 190 ns per struct of two fields, within noise of a
// json.Encoder in a plain loop (medians of 5 on a 2-core x86 VM; go test
// -bench Write ./sinks).
//
// WriteJSONLines panics if ctx, pub or w is nil, or an option is nil.
func WriteJSONLines[T any](ctx context.Context, pub flow.Publisher[T], w io.Writer, opts ...Option) (int64, error) {
	if w == nil {
		panic("sluice: WriteJSONLines: nil Writer")
	}
	newConfig("WriteJSONLines", ctx, pub, opts)
	if ctx.Err() != nil {
		return 0, context.Cause(ctx)
	}
	b := newBufferedWriter(w)
	enc := json.NewEncoder(b.bw)
	enc.SetEscapeHTML(false)
	err := ForEach(ctx, pub, func(item T) error {
		b.mu.Lock()
		defer b.mu.Unlock() // deferred: a panicking MarshalJSON must not keep it
		if b.closed {
			return errWriterClosed
		}
		if err := enc.Encode(item); err != nil {
			return err
		}
		b.n++
		return nil
	}, opts...)
	return b.finish(err, b.bw.Flush)
}

// WriteCSV subscribes to pub and writes each item to w as one CSV record
// (encoding/csv: RFC 4180, "\n" line endings, fields quoted when needed),
// made by encode, in order. If header is not nil it is written first, even
// when the stream has no items. It returns the number of items written
// (the header not counted) and nil when pub completes; the count so far
// and pub's error when it fails; or the first write error, after
// cancelling upstream. encode runs serially on the goroutine that
// delivers the items; a panic in it is returned as a *[flow.PanicError],
// upstream cancelled. The slice encode returns may be reused by it for the
// next item.
//
// Buffering, the final flush, Sync of an *os.File and the meaning of the
// count on error are as for [WriteJSONLines]; so are demand, context and
// goroutines, those of [ForEach], which it calls with opts. It never
// closes w.
//
// Cost: the call of encode and encoding/csv's quoting, plus one
// uncontended mutex per item: about 130 ns per record of two fields,
// where csv.Writer in a plain loop takes about 75 ns, mostly because the
// slice encode returns must be allocated when encode is called through a
// func value (medians of 5 on a 2-core x86 VM; go test -bench Write
// ./sinks).
//
// WriteCSV panics if ctx, pub, w or encode is nil, or an option is nil.
func WriteCSV[T any](ctx context.Context, pub flow.Publisher[T], w io.Writer, header []string, encode func(T) []string, opts ...Option) (int64, error) {
	if w == nil {
		panic("sluice: WriteCSV: nil Writer")
	}
	if encode == nil {
		panic("sluice: WriteCSV: nil encode")
	}
	newConfig("WriteCSV", ctx, pub, opts)
	if ctx.Err() != nil {
		return 0, context.Cause(ctx)
	}
	b := newBufferedWriter(w)
	cw := csv.NewWriter(b.bw) // reuses b.bw: it is a large enough *bufio.Writer
	flush := func() error {
		cw.Flush()
		return cw.Error()
	}
	if header != nil {
		if err := cw.Write(header); err != nil {
			return b.finish(err, flush)
		}
	}
	err := ForEach(ctx, pub, func(item T) error {
		b.mu.Lock()
		defer b.mu.Unlock() // deferred: a panicking encode must not keep it
		if b.closed {
			return errWriterClosed
		}
		if err := cw.Write(encode(item)); err != nil {
			return err
		}
		b.n++
		return nil
	}, opts...)
	return b.finish(err, flush)
}
