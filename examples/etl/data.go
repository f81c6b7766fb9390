package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The input: one CSV record per taxi trip, as a city's open-data portal
// publishes them.
var header = []string{
	"trip_id", "vendor_id", "pickup_at", "dropoff_at", "passengers", "distance_km",
	"pickup_zone", "dropoff_zone", "payment_type", "fare", "tip", "tolls",
}

// The fields of a record, by position.
const (
	fTripID = iota
	fVendor
	fPickup
	fDropoff
	fPassengers
	fDistance
	fPickupZone
	fDropoffZone
	fPayment
	fFare
	fTip
	fTolls
	numFields
)

// timeLayout is the timestamps' format: local time without a zone, as in
// most published trip records; they are read as UTC.
const timeLayout = "2006-01-02 15:04:05"

// raw is a record as read: its fields, and its number among the data
// records (from 1).
type raw struct {
	Record int
	Fields [numFields]string
}

// trip is a record whose fields parsed.
type trip struct {
	ID                      int64
	Vendor                  int64
	Pickup, Dropoff         time.Time
	Passengers              int64
	DistanceKm              float64
	PickupZone, DropoffZone int64
	Payment                 string
	Fare, Tip, Tolls        int64 // cents
}

// checked is the output of parse: a trip, or the reason its record is
// rejected.
type checked struct {
	Raw    raw
	Trip   trip
	Reason string // empty: the trip is valid so far
	Detail string
}

// row is an enriched trip, as loaded into the database.
type row struct {
	ID             int64
	Vendor         int64
	Pickup         time.Time
	Dropoff        time.Time
	DurationS      int64
	Passengers     int64
	DistanceKm     float64
	AvgKmh         float64
	PickupBorough  string
	DropoffBorough string
	Payment        string
	TotalCents     int64
	TipPct         float64
}

// Reasons for rejecting a record, as written to the reject file.
const (
	reasonMalformed     = "malformed record"
	reasonBadNumber     = "bad number"
	reasonBadTime       = "bad timestamp"
	reasonDropoffBefore = "dropoff before pickup"
	reasonNegativeFare  = "negative fare"
	reasonUnknownPay    = "unknown payment type"
	reasonLoadFailed    = "load failed"
)

// reasons lists the reasons in the order the summary prints them.
var reasons = []string{reasonMalformed, reasonBadNumber, reasonBadTime, reasonDropoffBefore,
	reasonNegativeFare, reasonUnknownPay, reasonLoadFailed}

func knownPayment(p string) bool {
	switch p {
	case "card", "cash", "no_charge", "dispute":
		return true
	}
	return false
}

// parse turns the fields into typed values; the first field that does not
// parse is the reason for rejecting the record.
func parse(r raw) checked {
	c := checked{Raw: r}
	f := &r.Fields
	t := &c.Trip
	bad := func(reason string, field int) checked {
		c.Reason, c.Detail = reason, fmt.Sprintf("%s=%q", header[field], f[field])
		return c
	}
	var err error
	if t.ID, err = strconv.ParseInt(f[fTripID], 10, 64); err != nil {
		return bad(reasonBadNumber, fTripID)
	}
	if t.Vendor, err = strconv.ParseInt(f[fVendor], 10, 64); err != nil {
		return bad(reasonBadNumber, fVendor)
	}
	var ok bool
	if t.Pickup, ok = parseTime(f[fPickup]); !ok {
		return bad(reasonBadTime, fPickup)
	}
	if t.Dropoff, ok = parseTime(f[fDropoff]); !ok {
		return bad(reasonBadTime, fDropoff)
	}
	if t.Passengers, err = strconv.ParseInt(f[fPassengers], 10, 64); err != nil {
		return bad(reasonBadNumber, fPassengers)
	}
	if t.DistanceKm, err = strconv.ParseFloat(f[fDistance], 64); err != nil || math.IsNaN(t.DistanceKm) || math.IsInf(t.DistanceKm, 0) {
		return bad(reasonBadNumber, fDistance)
	}
	if t.PickupZone, err = strconv.ParseInt(f[fPickupZone], 10, 64); err != nil {
		return bad(reasonBadNumber, fPickupZone)
	}
	if t.DropoffZone, err = strconv.ParseInt(f[fDropoffZone], 10, 64); err != nil {
		return bad(reasonBadNumber, fDropoffZone)
	}
	t.Payment = f[fPayment]
	if t.Fare, ok = parseCents(f[fFare]); !ok {
		return bad(reasonBadNumber, fFare)
	}
	if t.Tip, ok = parseCents(f[fTip]); !ok {
		return bad(reasonBadNumber, fTip)
	}
	if t.Tolls, ok = parseCents(f[fTolls]); !ok {
		return bad(reasonBadNumber, fTolls)
	}
	return c
}

// validate applies the business rules to a parsed trip and returns the
// reason to reject it, or "".
func validate(c *checked) bool {
	if c.Reason != "" {
		return false
	}
	t := &c.Trip
	switch {
	case !t.Dropoff.After(t.Pickup):
		c.Reason, c.Detail = reasonDropoffBefore, fmt.Sprintf("pickup_at=%s dropoff_at=%s", c.Raw.Fields[fPickup], c.Raw.Fields[fDropoff])
	case t.Fare < 0:
		c.Reason, c.Detail = reasonNegativeFare, "fare="+c.Raw.Fields[fFare]
	case !knownPayment(t.Payment):
		c.Reason, c.Detail = reasonUnknownPay, fmt.Sprintf("payment_type=%q", t.Payment)
	default:
		return true
	}
	return false
}

// parseTime parses a timestamp in timeLayout, as UTC. It does what
// time.Parse(timeLayout, s) does, five times faster: the layout is fixed.
func parseTime(s string) (time.Time, bool) {
	if len(s) != len(timeLayout) || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, sec := num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if t.Day() != d { // February 30th and the like
		return time.Time{}, false
	}
	return t, true
}

// parseCents parses a money amount with at most two decimals ("12.5",
// "-3.00", "7") into cents.
func parseCents(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && (frac == "" || len(frac) > 2)) || whole[0] == '+' {
		return 0, false
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/100-1 {
		return 0, false
	}
	var c int64
	if frac != "" {
		if frac[0] == '+' || frac[0] == '-' {
			return 0, false
		}
		if c, err = strconv.ParseInt((frac + "0")[:2], 10, 64); err != nil {
			return 0, false
		}
	}
	v := w*100 + c
	if neg {
		v = -v
	}
	return v, true
}

// boroughs maps the synthetic zones 1..263 to a borough, by range.
var boroughs = []struct {
	last int64
	name string
}{{1, "EWR"}, {69, "Queens"}, {128, "Brooklyn"}, {164, "Manhattan"}, {206, "Bronx"}, {263, "Staten Island"}}

func borough(zone int64) string {
	for _, b := range boroughs {
		if zone <= b.last {
			if zone < 1 {
				break
			}
			return b.name
		}
	}
	return "Unknown"
}

// enrich derives the loaded row from a valid trip: duration, average
// speed, boroughs, total and tip rate. It is the step that runs on
// several workers: it must be goroutine-safe, and it is, as it only reads
// shared tables.
func enrich(c checked) row {
	t := &c.Trip
	d := t.Dropoff.Sub(t.Pickup)
	r := row{
		ID: t.ID, Vendor: t.Vendor, Pickup: t.Pickup, Dropoff: t.Dropoff,
		DurationS: int64(d / time.Second), Passengers: t.Passengers, DistanceKm: t.DistanceKm,
		PickupBorough: borough(t.PickupZone), DropoffBorough: borough(t.DropoffZone),
		Payment: t.Payment, TotalCents: t.Fare + t.Tip + t.Tolls,
	}
	if h := d.Hours(); h > 0 {
		r.AvgKmh = math.Round(t.DistanceKm/h*10) / 10
	}
	if t.Fare > 0 {
		r.TipPct = math.Round(float64(t.Tip)*1000/float64(t.Fare)) / 10
	}
	return r
}

// Generation.

// defect is the way a generated record is broken on purpose.
type defect int

const (
	okRecord defect = iota
	defectMissingField
	defectBadNumber
	defectDropoffBefore
	defectNegativeFare
	defectUnknownPayment
	numDefects
)

// defectReason is the reason the pipeline must give for each defect.
var defectReason = [numDefects]string{"", reasonMalformed, reasonBadNumber, reasonDropoffBefore, reasonNegativeFare, reasonUnknownPay}

// defectEvery is the mean distance between broken records: 1 in 200, or
// 0.5 %.
const defectEvery = 200

// generated describes a generated file.
type generated struct {
	Rows    int
	Bytes   int64
	Defects map[string]int   // by the reason the pipeline must give
	Broken  map[int64]string // trip id → reason, filled when track is set
	track   bool
	w       *bufio.Writer
	rng     *rand.Rand
	buf     []byte
	t0      time.Time
	counted *countingWriter
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// generate writes n synthetic trips to w as CSV with a header. About one
// record in 200 is broken, in one of five ways; the broken records are
// counted by the reason the pipeline must give, and listed by trip id when
// track is set. The output depends only on n and seed. It stops early,
// with ctx's error, when ctx is done.
func generate(ctx context.Context, w io.Writer, n int, seed uint64, track bool) (*generated, error) {
	cw := &countingWriter{w: w}
	g := &generated{
		Rows: n, Defects: map[string]int{}, track: track,
		w:   bufio.NewWriterSize(cw, 256<<10),
		rng: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		t0:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), counted: cw,
	}
	if track {
		g.Broken = map[int64]string{}
	}
	g.w.WriteString(strings.Join(header, ",") + "\n")
	for i := range n {
		if i%(1<<16) == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		g.record(int64(i + 1))
	}
	if err := g.w.Flush(); err != nil {
		return nil, err
	}
	g.Bytes = cw.n
	return g, nil
}

func (g *generated) record(id int64) {
	rng := g.rng
	d := okRecord
	if rng.IntN(defectEvery) == 0 {
		d = defect(1 + rng.IntN(int(numDefects)-1))
		g.Defects[defectReason[d]]++
		if g.track {
			g.Broken[id] = defectReason[d]
		}
	}
	// A month of trips, busier by day; 0.5 to 40 km at 8 to 45 km/h.
	pickup := g.t0.Add(time.Duration(rng.Int64N(31*24*3600)) * time.Second)
	km := 0.5 + rng.ExpFloat64()*4
	if km > 40 {
		km = 40
	}
	speed := 8 + rng.Float64()*37
	dur := time.Duration(km/speed*3600) * time.Second
	if dur < time.Minute {
		dur = time.Minute
	}
	dropoff := pickup.Add(dur)
	fare := 300 + int64(km*175) + int64(dur.Minutes()*50)
	pay := "card"
	switch x := rng.IntN(100); {
	case x < 25:
		pay = "cash"
	case x < 27:
		pay = "no_charge"
	case x < 28:
		pay = "dispute"
	}
	var tip int64
	if pay == "card" {
		tip = fare * int64(10+rng.IntN(16)) / 100
	}
	var tolls int64
	if rng.IntN(20) == 0 {
		tolls = 694
	}
	switch d {
	case defectDropoffBefore:
		dropoff = pickup.Add(-dur)
	case defectNegativeFare:
		fare = -fare
	case defectUnknownPayment:
		pay = []string{"bitcoin", "voucher", "CARD", ""}[rng.IntN(4)]
	}

	b := g.buf[:0]
	b = strconv.AppendInt(b, id, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, 1+rng.Int64N(2), 10)
	b = append(b, ',')
	b = pickup.AppendFormat(b, timeLayout)
	b = append(b, ',')
	b = dropoff.AppendFormat(b, timeLayout)
	b = append(b, ',')
	b = strconv.AppendInt(b, 1+rng.Int64N(4), 10)
	b = append(b, ',')
	if d == defectBadNumber {
		// A decimal comma (quoted, as a spreadsheet writes it), a
		// placeholder, a typo, an overflow.
		b = append(b, []string{`"3,2"`, "n/a", "12..5", "1e999"}[rng.IntN(4)]...)
	} else {
		b = strconv.AppendFloat(b, math.Round(km*100)/100, 'f', -1, 64)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, 1+rng.Int64N(263), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, 1+rng.Int64N(263), 10)
	b = append(b, ',')
	b = append(b, pay...)
	b = append(b, ',')
	b = appendCents(b, fare)
	b = append(b, ',')
	if d != defectMissingField { // the tip is missing
		b = appendCents(b, tip)
		b = append(b, ',')
	}
	b = appendCents(b, tolls)
	b = append(b, '\n')
	g.buf = b
	g.w.Write(b)
}

func appendCents(b []byte, c int64) []byte {
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	b = strconv.AppendInt(b, c/100, 10)
	b = append(b, '.')
	if c%100 < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, c%100, 10)
}

// countRecords counts the data records of a CSV file by its lines (the
// header excluded), for the progress bar's total. A file with quoted
// line breaks is over-counted; the total is only used for the ETA.
func countRecords(r io.Reader) (int, error) {
	buf := make([]byte, 1<<20)
	n, last := 0, byte('\n')
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if k > 0 {
			last = buf[k-1]
		}
		if errors.Is(err, io.EOF) {
			if last != '\n' {
				n++
			}
			return max(n-1, 0), nil
		}
		if err != nil {
			return 0, err
		}
	}
}
