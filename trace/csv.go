package trace

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// header is the first row of a trace file, naming its columns.
var header = []string{"id", "arrival", "known_at", "vm_id", "site", "sla_tier", "bytes", "deadline", "wave"}

// Write writes reqs as a trace file: CSV with the header
// id,arrival,known_at,vm_id,site,sla_tier,bytes,deadline,wave and a row a request, in
// the order given. Times are RFC 3339 in UTC to the second (finer parts are dropped);
// bytes is a whole number; wave is empty for ad-hoc requests.
func Write(w io.Writer, reqs []Request) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, r := range reqs {
		row := []string{
			r.ID, stamp(r.Arrival), stamp(r.KnownAt), r.VMID, r.Site, r.SLATier,
			strconv.FormatInt(r.Bytes, 10), stamp(r.Deadline), r.Wave,
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// stamp formats t for a trace file.
func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// Read reads a trace file in Write's format and checks every field: the header; an ID,
// VM, site and tier (one of Tiers) in every row, IDs unique; RFC 3339 times (returned in
// UTC), with known_at not after arrival and deadline not before it; a positive whole
// number of bytes. An error names the line and column and says why, as in
// `trace: line 12: deadline: before arrival`. It returns the requests in order of
// Arrival, then ID.
func Read(r io.Reader) ([]Request, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // parseRow says how a row is short or long
	got, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("trace: empty file; want the header %s", strings.Join(header, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if !slices.Equal(got, header) {
		return nil, fmt.Errorf("trace: line 1: header is %s; want %s", strings.Join(got, ","), strings.Join(header, ","))
	}
	var reqs []Request
	lineOf := map[string]int{} // the line each ID is on
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		line, _ := cr.FieldPos(0)
		req, err := parseRow(row)
		if err != nil {
			return nil, fmt.Errorf("trace: line %d: %w", line, err)
		}
		if prev, ok := lineOf[req.ID]; ok {
			return nil, fmt.Errorf("trace: line %d: id: %s is also on line %d", line, req.ID, prev)
		}
		lineOf[req.ID] = line
		reqs = append(reqs, req)
	}
	slices.SortFunc(reqs, func(a, b Request) int {
		return cmp.Or(a.Arrival.Compare(b.Arrival), cmp.Compare(a.ID, b.ID))
	})
	return reqs, nil
}

// parseRow parses and checks one row of a trace file; an error starts with the column.
func parseRow(row []string) (Request, error) {
	if len(row) != len(header) {
		return Request{}, fmt.Errorf("%d fields; want %d (%s)", len(row), len(header), strings.Join(header, ","))
	}
	for i, v := range row[:len(header)-1] { // only wave may be empty
		if v == "" {
			return Request{}, fmt.Errorf("%s: empty", header[i])
		}
	}
	req := Request{ID: row[0], VMID: row[3], Site: row[4], SLATier: row[5], Wave: row[8]}
	var err error
	if req.Arrival, err = parseTime(header[1], row[1]); err != nil {
		return Request{}, err
	}
	if req.KnownAt, err = parseTime(header[2], row[2]); err != nil {
		return Request{}, err
	}
	if _, ok := TierNamed(req.SLATier); !ok {
		names := make([]string, len(Tiers))
		for i, t := range Tiers {
			names[i] = t.Name
		}
		return Request{}, fmt.Errorf("sla_tier: %q is not one of %s", req.SLATier, strings.Join(names, ", "))
	}
	if req.Bytes, err = strconv.ParseInt(row[6], 10, 64); err != nil || req.Bytes <= 0 {
		return Request{}, fmt.Errorf("bytes: %q is not a positive whole number", row[6])
	}
	if req.Deadline, err = parseTime(header[7], row[7]); err != nil {
		return Request{}, err
	}
	if req.KnownAt.After(req.Arrival) {
		return Request{}, errors.New("known_at: after arrival")
	}
	if req.Deadline.Before(req.Arrival) {
		return Request{}, errors.New("deadline: before arrival")
	}
	return req, nil
}

// parseTime parses the RFC 3339 time v of column col.
func parseTime(col, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is not an RFC 3339 time such as 2026-10-26T08:00:00Z", col, v)
	}
	return t.UTC(), nil
}

// timeIndex holds the lower-case column names ReadSeries takes for a time index.
var timeIndex = []string{"timestamp", "time", "ts", "date", "datetime"}

// ReadSeries reads one column of a CSV file with a header row, such as
// ../shared/data/traces/azure2019-vm-cpu-5min.csv, for Generate. It reads the column
// named column, or if column is "", the first whose value on the first row is a number,
// skipping time indexes: columns named timestamp, time, ts, date or datetime (in any
// case). Every value of the column must be a finite number. It returns the column's name
// and values; an error names the column, and the line of a bad value.
func ReadSeries(r io.Reader, column string) (name string, values []float64, err error) {
	cr := csv.NewReader(r)
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return "", nil, errors.New("trace: empty file; want a header row naming the columns")
	}
	if err != nil {
		return "", nil, fmt.Errorf("trace: %w", err)
	}
	head[0] = strings.TrimPrefix(head[0], "\ufeff") // a byte-order mark is not part of the name
	row, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return "", nil, errors.New("trace: no rows under the header")
	}
	if err != nil {
		return "", nil, fmt.Errorf("trace: %w", err)
	}
	col := -1
	if column != "" {
		if col = slices.Index(head, column); col < 0 {
			return "", nil, fmt.Errorf("trace: column %q is not in the header %s", column, strings.Join(head, ","))
		}
	} else {
		for i, h := range head {
			if slices.Contains(timeIndex, strings.ToLower(strings.TrimSpace(h))) {
				continue
			}
			if _, err := parseValue(row[i]); err == nil {
				col = i
				break
			}
		}
		if col < 0 {
			return "", nil, fmt.Errorf("trace: no numeric column in the header %s besides a time index (%s)",
				strings.Join(head, ","), strings.Join(timeIndex, ", "))
		}
	}
	for {
		v, err := parseValue(row[col])
		if err != nil {
			line, _ := cr.FieldPos(col)
			return "", nil, fmt.Errorf("trace: line %d: %s: %w", line, head[col], err)
		}
		values = append(values, v)
		if row, err = cr.Read(); errors.Is(err, io.EOF) {
			return head[col], values, nil
		} else if err != nil {
			return "", nil, fmt.Errorf("trace: %w", err)
		}
	}
}

// parseValue parses a value of a series.
func parseValue(v string) (float64, error) {
	x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("%q is not a finite number", v)
	}
	return x, nil
}
