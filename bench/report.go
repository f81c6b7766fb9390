package bench

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Markdown writes results as a GitHub-flavoured markdown table, one row
// per result in the order given: group, library, variant, items, median,
// min and max ns/item, allocs/item, B/item, the peak heap (when
// measured), the ratio of the median to each baseline of the group
// ("×2.5 go/plain" is 2.5 times slower than the baseline go/plain; "×0.10"
// is 10 times faster), and the metrics reported with [ReportMetric].
func Markdown(w io.Writer, results []Result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "| scenario | library | variant | items | ns/item (median) | min | max | allocs/item | B/item | peak heap | vs baselines | other |")
	fmt.Fprintln(bw, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|")
	for _, r := range results {
		var ratios []string
		for _, x := range r.Ratios {
			if x.Baseline == r.Scenario.Library+"/"+r.Scenario.Name {
				continue
			}
			ratios = append(ratios, "×"+sig(x.Times, 2)+" "+x.Baseline)
		}
		variant := r.Scenario.Name
		if r.Scenario.Baseline {
			variant += " (baseline)"
		}
		var other []string
		for _, k := range slices.Sorted(maps.Keys(r.Metrics)) {
			v := r.Metrics[k]
			if v == math.Trunc(v) && math.Abs(v) < 1e15 {
				other = append(other, k+"="+strconv.FormatInt(int64(v), 10))
			} else {
				other = append(other, k+"="+sig(v, 3))
			}
		}
		heap := ""
		if r.PeakHeapBytes > 0 {
			heap = bytesLabel(r.PeakHeapBytes)
		}
		fmt.Fprintf(bw, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			mdEscape(r.Scenario.Group), mdEscape(r.Scenario.Library), mdEscape(variant),
			itemsLabel(r.Items), sig(r.Median, 3), sig(r.Min, 3), sig(r.Max, 3),
			sig(r.AllocsPerItem, 2), sig(r.BytesPerItem, 2), heap,
			mdEscape(strings.Join(ratios, ", ")), mdEscape(strings.Join(other, ", ")))
	}
	return bw.Flush()
}

// bytesLabel writes b in KiB or MiB.
func bytesLabel(b float64) string {
	if b >= 1<<20 {
		return sig(b/(1<<20), 3) + " MiB"
	}
	return sig(b/(1<<10), 3) + " KiB"
}

// itemsLabel writes n as "1e6" when it is a power of ten times 1..9.
func itemsLabel(n int) string {
	e := 0
	m := n
	for m >= 10 && m%10 == 0 {
		m /= 10
		e++
	}
	if e >= 3 && m < 10 {
		if m == 1 {
			return "1e" + strconv.Itoa(e)
		}
		return strconv.Itoa(m) + "e" + strconv.Itoa(e)
	}
	return strconv.Itoa(n)
}

// sig formats v with about digits significant digits and no exponent.
func sig(v float64, digits int) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	mag := int(math.Floor(math.Log10(math.Abs(v))))
	dec := max(digits-1-mag, 0)
	return strconv.FormatFloat(v, 'f', dec, 64)
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// ChartOptions configures [SVG]. The zero value is usable.
type ChartOptions struct {
	// Title heads the chart (default "sluice benchmarks").
	Title string
	// Subtitle, if not empty, is written under the title: the command,
	// the machine.
	Subtitle string
	// Width is the width in pixels (default 900).
	Width int
}

// libraryColours are the bar colours, by library, in order of first
// appearance (a colour-blind safe palette).
var libraryColours = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// SVG writes results as a horizontal bar chart: one bar per result, its
// length the median ns/item on a logarithmic axis, with a whisker from
// min to max, grouped by scenario group, coloured by library, with a
// title, labelled axes and a legend. The output is a standalone SVG 1.1
// document (well-formed XML).
func SVG(w io.Writer, results []Result, opts ChartOptions) error {
	if opts.Title == "" {
		opts.Title = "sluice benchmarks"
	}
	if opts.Width <= 0 {
		opts.Width = 900
	}
	const (
		rowH, groupH, top0, bottom = 18, 22, 60, 70
		labelW, rightPad           = 330, 30
	)
	// Libraries in order of appearance, for the colours and the legend.
	var libs []string
	colour := map[string]string{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range results {
		if _, ok := colour[r.Scenario.Library]; !ok {
			colour[r.Scenario.Library] = libraryColours[len(libs)%len(libraryColours)]
			libs = append(libs, r.Scenario.Library)
		}
		for _, v := range []float64{r.Min, r.Median, r.Max} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 10
	}
	dLo, dHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dHi <= dLo {
		dHi = dLo + 1
	}
	top := top0
	if opts.Subtitle != "" {
		top += 16
	}
	groups := 0
	for i, r := range results {
		if i == 0 || r.Scenario.Group != results[i-1].Scenario.Group {
			groups++
		}
	}
	plotH := len(results)*rowH + groups*groupH
	height := top + plotH + bottom
	x0, x1 := float64(labelW), float64(opts.Width-rightPad)
	xOf := func(v float64) float64 {
		if v <= 0 {
			return x0
		}
		return x0 + (math.Log10(v)-dLo)/(dHi-dLo)*(x1-x0)
	}

	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		opts.Width, height, opts.Width, height)
	fmt.Fprintf(bw, "<title>%s</title>\n", esc(opts.Title))
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text class="title" x="%d" y="24" text-anchor="middle" font-size="16" font-weight="bold">%s</text>`+"\n", opts.Width/2, esc(opts.Title))
	if opts.Subtitle != "" {
		fmt.Fprintf(bw, `<text class="subtitle" x="%d" y="42" text-anchor="middle" fill="#555">%s</text>`+"\n", opts.Width/2, esc(opts.Subtitle))
	}

	// Grid and x axis: one line per decade, light lines at 2× and 5×.
	yTop, yBot := float64(top), float64(top+plotH)
	fmt.Fprintf(bw, `<g class="x-axis">`+"\n")
	for d := dLo; d <= dHi; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if d == dHi && m > 1 {
				break
			}
			x := xOf(v)
			stroke := "#ddd"
			if m == 1 {
				stroke = "#999"
			}
			fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x, yTop, x, yBot, stroke)
			if m == 1 || dHi-dLo <= 3 {
				fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, yBot+16, esc(sig(v, 1)))
			}
		}
	}
	fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", x0, yBot, x1, yBot)
	fmt.Fprintf(bw, `<text class="x-label" x="%.1f" y="%.1f" text-anchor="middle">ns per item (median, log scale; whiskers: min–max)</text>`+"\n", (x0+x1)/2, yBot+36)
	fmt.Fprintf(bw, "</g>\n")

	// Y axis: the group headings and the variant labels.
	fmt.Fprintf(bw, `<g class="y-axis">`+"\n")
	fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", x0, yTop, x0, yBot)
	fmt.Fprintf(bw, `<text class="y-label" transform="translate(12 %.1f) rotate(-90)" text-anchor="middle">scenario / library / variant</text>`+"\n", (yTop+yBot)/2)
	fmt.Fprintf(bw, "</g>\n")

	fmt.Fprintf(bw, `<g class="bars">`+"\n")
	y := yTop
	for i, r := range results {
		if i == 0 || r.Scenario.Group != results[i-1].Scenario.Group {
			y += groupH
			fmt.Fprintf(bw, `<text x="24" y="%.1f" font-weight="bold">%s</text>`+"\n", y-6, esc(r.Scenario.Group))
		}
		label := r.Scenario.Library + " / " + r.Scenario.Name
		if r.Scenario.Baseline {
			label += " (baseline)"
		}
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, y+rowH-5, esc(label))
		c := colour[r.Scenario.Library]
		bx := xOf(r.Median)
		fmt.Fprintf(bw, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s: %s ns/item (min %s, max %s)</title></rect>`+"\n",
			x0, y+3, math.Max(bx-x0, 1), rowH-6, c, esc(r.Scenario.ID()), sig(r.Median, 3), sig(r.Min, 3), sig(r.Max, 3))
		if r.Max > r.Min {
			wy := y + float64(rowH)/2
			fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", xOf(r.Min), wy, xOf(r.Max), wy)
		}
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" font-size="10" fill="#333">%s</text>`+"\n", math.Max(bx, xOf(r.Max))+4, y+rowH-5, esc(sig(r.Median, 3)))
		y += rowH
	}
	fmt.Fprintf(bw, "</g>\n")

	// Legend: one swatch per library, under the axis label.
	fmt.Fprintf(bw, `<g class="legend">`+"\n")
	lx, ly := x0, yBot+52
	for _, l := range libs {
		fmt.Fprintf(bw, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", lx, ly, colour[l])
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+16, ly+10, esc(l))
		lx += 30 + 7*float64(len(l))
	}
	fmt.Fprintf(bw, "</g>\n</svg>\n")
	return bw.Flush()
}

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
