package sources_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

// countAny is counting for any item type: 256 up front, 192 more after
// each 192 received.
type countAny[T any] struct {
	sub  flow.Subscription
	n    int
	next int
	err  error
	done bool
}

func (c *countAny[T]) OnSubscribe(s flow.Subscription) {
	c.sub, c.next = s, 192
	s.Request(256)
}

func (c *countAny[T]) OnNext(T) {
	if c.n++; c.n == c.next {
		c.next += 192
		c.sub.Request(192)
	}
}

func (c *countAny[T]) OnError(err error) { c.err, c.done = err, true }
func (c *countAny[T]) OnComplete()       { c.done = true }

const benchLines = 100_000

// benchCSV is a CSV input of benchLines taxi-trip-like records of five
// short fields (about 40 bytes a line).
var benchCSV = func() []byte {
	var b bytes.Buffer
	b.WriteString("id,vendor,pickup,distance,fare\n")
	for i := range benchLines {
		fmt.Fprintf(&b, "%d,V%d,2026-11-23T10:%02d:00,%d.%d,%d.50\n", i, i%3, i%60, i%30, i%10, 5+i%40)
	}
	return b.Bytes()
}()

func benchItems[T any](b *testing.B, n int, pub func() flow.Publisher[T]) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCSV)))
	for b.Loop() {
		c := &countAny[T]{}
		pub().Subscribe(c)
		if c.n != n || !c.done || c.err != nil {
			b.Fatalf("got %d items, done=%t, err=%v; want %d", c.n, c.done, c.err, n)
		}
	}
	reportPerItem(b, n)
}

// BenchmarkLines reads benchLines lines of about 40 bytes from memory.
// "bufio.Scanner" is the baseline: a plain loop that makes the same
// strings, with no protocol.
func BenchmarkLines(b *testing.B) {
	b.Run("Lines", func(b *testing.B) {
		benchItems(b, benchLines+1, func() flow.Publisher[string] {
			return sources.Lines(bytes.NewReader(benchCSV))
		})
	})
	b.Run("bufio.Scanner", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchCSV)))
		for b.Loop() {
			sc := bufio.NewScanner(bytes.NewReader(benchCSV))
			n := 0
			for sc.Scan() {
				benchSink += len(sc.Text())
				n++
			}
			if n != benchLines+1 {
				b.Fatalf("got %d lines", n)
			}
		}
		reportPerItem(b, benchLines+1)
	})
}

type benchTrip struct {
	ID       int
	Vendor   string
	Pickup   string
	Distance string
	Fare     string
}

func decodeBenchTrip(_, rec []string) (benchTrip, error) {
	id, err := strconv.Atoi(rec[0])
	return benchTrip{id, rec[1], rec[2], rec[3], rec[4]}, err
}

// BenchmarkCSV decodes benchLines records of five fields into a struct.
// "csv.Reader" is the baseline: the same decoding in a plain loop.
func BenchmarkCSV(b *testing.B) {
	b.Run("CSV", func(b *testing.B) {
		benchItems(b, benchLines, func() flow.Publisher[benchTrip] {
			return sources.CSV(bytes.NewReader(benchCSV), decodeBenchTrip)
		})
	})
	b.Run("csv.Reader", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchCSV)))
		for b.Loop() {
			cr := csv.NewReader(bytes.NewReader(benchCSV))
			cr.ReuseRecord = true
			header, _ := cr.Read()
			header = append([]string(nil), header...)
			n := 0
			for {
				rec, err := cr.Read()
				if err != nil {
					break
				}
				t, _ := decodeBenchTrip(header, rec)
				benchSink += t.ID
				n++
			}
			if n != benchLines {
				b.Fatalf("got %d records", n)
			}
		}
		reportPerItem(b, benchLines)
	})
}

// BenchmarkJSONLines decodes benchLines small objects.
func BenchmarkJSONLines(b *testing.B) {
	var in bytes.Buffer
	for i := range benchLines {
		fmt.Fprintf(&in, `{"id":%d,"kind":"k%d"}`+"\n", i, i%7)
	}
	b.ReportAllocs()
	b.SetBytes(int64(in.Len()))
	for b.Loop() {
		c := &countAny[event]{}
		sources.JSONLines[event](bytes.NewReader(in.Bytes())).Subscribe(c)
		if c.n != benchLines || c.err != nil {
			b.Fatalf("got %d items, err=%v", c.n, c.err)
		}
	}
	reportPerItem(b, benchLines)
}
