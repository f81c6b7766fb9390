// Package svgtext reads back the texts of an SVG chart, for the tests of
// the bench harness and of the sluicebench command.
package svgtext

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// Texts checks that r is well-formed XML and returns the non-blank text
// of its elements, keyed by the element's class attribute, or by its name
// when it has none (the <title> element under "title"); the text elements
// inside the element of class "legend" are keyed "legend". It reads r to
// the end, and is not goroutine-safe only in that it consumes r.
func Texts(r io.Reader) (map[string][]string, error) {
	d := xml.NewDecoder(r)
	out := map[string][]string{}
	var stack []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			class := tok.Name.Local
			for _, a := range tok.Attr {
				if a.Name.Local == "class" {
					class = a.Value
				}
			}
			if len(stack) > 0 && stack[len(stack)-1] == "legend" && tok.Name.Local == "text" {
				class = "legend"
			}
			stack = append(stack, class)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s != "" && len(stack) > 0 {
				out[stack[len(stack)-1]] = append(out[stack[len(stack)-1]], s)
			}
		}
	}
}
