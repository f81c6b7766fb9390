package sinks_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"testing"

	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

const writeBenchN = 100_000

func benchRows() []row {
	rows := make([]row, writeBenchN)
	for i := range rows {
		rows[i] = row{i, "name-" + strconv.Itoa(i%100)}
	}
	return rows
}

// BenchmarkWriteJSONLines writes 1e5 small structs to io.Discard; "loop"
// is the baseline: a json.Encoder on a bufio.Writer in a plain loop.
func BenchmarkWriteJSONLines(b *testing.B) {
	rows := benchRows()
	b.Run("sink", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n, err := sinks.WriteJSONLines(context.Background(), sources.Slice(rows), io.Discard); err != nil || n != writeBenchN {
				b.Fatal(n, err)
			}
		}
		perItem(b, writeBenchN)
	})
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bw := bufio.NewWriterSize(io.Discard, 64<<10)
			enc := json.NewEncoder(bw)
			enc.SetEscapeHTML(false)
			for _, r := range rows {
				if err := enc.Encode(r); err != nil {
					b.Fatal(err)
				}
			}
			_ = bw.Flush()
		}
		perItem(b, writeBenchN)
	})
}

// BenchmarkWriteCSV writes 1e5 two-field records to io.Discard; "loop"
// is the baseline: a csv.Writer in a plain loop.
func BenchmarkWriteCSV(b *testing.B) {
	rows := benchRows()
	b.Run("sink", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n, err := sinks.WriteCSV(context.Background(), sources.Slice(rows), io.Discard, []string{"id", "name"}, encodeRow); err != nil || n != writeBenchN {
				b.Fatal(n, err)
			}
		}
		perItem(b, writeBenchN)
	})
	b.Run("loop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cw := csv.NewWriter(bufio.NewWriterSize(io.Discard, 64<<10))
			_ = cw.Write([]string{"id", "name"})
			for _, r := range rows {
				_ = cw.Write(encodeRow(r))
			}
			cw.Flush()
		}
		perItem(b, writeBenchN)
	})
}
