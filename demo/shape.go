package demo

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"time"
)

// HoursPerWeek is the number of hour-of-week buckets in a Shape.
const HoursPerWeek = 7 * 24

// Shape is the relative arrival rate for each hour of the week, indexed by HourOfWeek
// (Monday 00:00 UTC is bucket 0). A shape from LoadShape or ReadShape has mean 1, so
// base rate × shape keeps the base rate as the weekly mean.
type Shape [HoursPerWeek]float64

// FlatShape is the shape with no daily or weekly pattern.
func FlatShape() Shape {
	var s Shape
	for i := range s {
		s[i] = 1
	}
	return s
}

// HourOfWeek returns the hour of the week of t in UTC, from 0 (Monday 00:00-01:00) to
// 167 (Sunday 23:00-24:00).
func HourOfWeek(t time.Time) int {
	t = t.UTC()
	day := (int(t.Weekday()) + 6) % 7 // Monday 0 … Sunday 6
	return day*24 + t.Hour()
}

// TraceStart is the hour of the week at which the trace's timestamp 0 falls. The trace
// does not say what day it starts on, but its data do: of its 30 days, days 1–2, 8–9,
// 15–16, 22–23 and 29 are the quiet ones (mean CPU about 9% under the other days), so
// those are weekends and day 0 is a Friday. Midnight UTC is assumed; the trace's daily
// peak (13:00–19:00) fits that.
const TraceStart = 4 * 24

// ErrBadShape means the trace file cannot give a weekly shape.
var ErrBadShape = errors.New("demo: bad shape trace")

// LoadShape reads a trace file; see ReadShape.
func LoadShape(path string) (Shape, error) {
	f, err := os.Open(path)
	if err != nil {
		return Shape{}, err
	}
	defer f.Close()
	s, err := ReadShape(f)
	if err != nil {
		return Shape{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ReadShape computes the weekly shape of a CPU trace in the format of the Azure 2019
// trace (../shared/data/traces/azure2019-vm-cpu-5min.csv): a CSV with a header and the
// columns `timestamp` (seconds from the start of the trace) and `cpu_usage`
// (data-centre-wide CPU use; other columns are ignored).
//
// Each row goes to bucket (TraceStart + ⌊timestamp / 3600⌋) mod 168. The shape is
// the mean cpu_usage of each bucket divided by the mean of the 168 bucket means, so
// that it averages 1. Taking the mean per bucket first means that hours seen five
// times in a 30-day trace weigh no more than hours seen four times.
//
// CPU use stands in for how busy the tenants are: migration waves are scheduled by
// the same people, on the same working days and hours. The trace must cover every hour
// of the week at least once, with finite, non-negative values.
func ReadShape(r io.Reader) (Shape, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return Shape{}, fmt.Errorf("%w: read header: %v", ErrBadShape, err)
	}
	ts, cpu := slices.Index(header, "timestamp"), slices.Index(header, "cpu_usage")
	if ts < 0 || cpu < 0 {
		return Shape{}, fmt.Errorf("%w: header %v lacks the timestamp and cpu_usage columns", ErrBadShape, header)
	}
	var sum Shape
	var n [HoursPerWeek]int
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Shape{}, fmt.Errorf("%w: %v", ErrBadShape, err)
		}
		sec, err := strconv.ParseFloat(rec[ts], 64)
		if err != nil || sec < 0 || math.IsInf(sec, 0) || math.IsNaN(sec) {
			return Shape{}, fmt.Errorf("%w: line %d: timestamp %q is not a non-negative number of seconds", ErrBadShape, line, rec[ts])
		}
		v, err := strconv.ParseFloat(rec[cpu], 64)
		if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return Shape{}, fmt.Errorf("%w: line %d: cpu_usage %q is not a non-negative number", ErrBadShape, line, rec[cpu])
		}
		b := (TraceStart + int(sec/3600)) % HoursPerWeek
		sum[b] += v
		n[b]++
	}
	var total float64
	for b := range sum {
		if n[b] == 0 {
			return Shape{}, fmt.Errorf("%w: no samples for hour %d of the week; the trace must cover a whole week", ErrBadShape, b)
		}
		sum[b] /= float64(n[b])
		total += sum[b]
	}
	mean := total / HoursPerWeek
	if mean <= 0 {
		return Shape{}, fmt.Errorf("%w: cpu_usage is zero throughout", ErrBadShape)
	}
	for b := range sum {
		sum[b] /= mean
	}
	return sum, nil
}
