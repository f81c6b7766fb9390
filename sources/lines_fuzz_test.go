package sources_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

// FuzzLines checks Lines against a reference split.
//
// Property: every input line comes out exactly once, in order, without its
// "\n" or "\r\n" terminator (a final line without terminator included, an
// empty final piece after the last "\n" excluded), however the reads are
// split; if a line is longer than the limit, the stream emits exactly the
// lines before it and fails with a *LineError naming its 1-based number.
func FuzzLines(f *testing.F) {
	for _, seed := range []string{"", "a", "a\n", "a\r\nb", "\n\n", "a\rb\r\n\r", "abcdefgh\nij\r\n", strings.Repeat("x", 40)} {
		f.Add(seed, uint8(4), false)
		f.Add(seed, uint8(200), true)
	}
	f.Fuzz(func(t *testing.T, in string, limit uint8, oneAtATime bool) {
		max := int(limit) + 1
		var want []string
		wantLine := 0 // the line that is too long, 0 if none
		if in != "" {
			pieces := strings.Split(in, "\n")
			if pieces[len(pieces)-1] == "" {
				pieces = pieces[:len(pieces)-1]
			}
			for i, p := range pieces {
				p = strings.TrimSuffix(p, "\r")
				if len(p) > max {
					wantLine = i + 1
					break
				}
				want = append(want, p)
			}
		}

		var pub flow.Publisher[string]
		if oneAtATime {
			pub = sources.Lines(oneByte{strings.NewReader(in)}, sources.MaxLineLength(max))
		} else {
			pub = sources.Lines(strings.NewReader(in), sources.MaxLineLength(max))
		}
		// Request one line at a time, as a slow sink would.
		r := newRecorder[string](t)
		r.onSubscribe = requestFirst[string](1)
		r.onNext = requestEach[string](1)
		pub.Subscribe(r)

		if diff := cmp.Diff(want, r.Items()); diff != "" {
			t.Errorf("lines of %q (-want +got)\n%s", in, diff)
		}
		if !r.Terminated() {
			t.Fatalf("stream of %q did not end", in)
		}
		var le *sources.LineError
		switch {
		case wantLine == 0 && r.Err() != nil:
			t.Errorf("error %v, want completion", r.Err())
		case wantLine != 0 && (!errors.As(r.Err(), &le) || le.Line != wantLine || !errors.Is(le, sources.ErrLineTooLong)):
			t.Errorf("error %v, want a *LineError for line %d", r.Err(), wantLine)
		}
	})
}
