// Package widecsv reads and writes series in the M4 competition's wide CSV layout: a
// header row, then one series a row, its ID first and its values after it. Values may
// be quoted, and a row ends at its first empty cell, because M4 pads short series.
package widecsv

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Series is one row: an ID and its values, oldest first.
type Series struct {
	ID     string
	Values []float64
}

// Error is a problem with one cell. Row and Column count from 1, as a spreadsheet
// does; the header is row 1 and the ID is column 1.
type Error struct {
	Path   string
	Row    int
	Column int
	Reason string
}

func (e *Error) Error() string {
	where := fmt.Sprintf("row %d, column %d", e.Row, e.Column)
	if e.Column == 0 {
		where = fmt.Sprintf("row %d", e.Row)
	}
	if e.Path != "" {
		where = e.Path + ": " + where
	}
	return where + ": " + e.Reason
}

// ReadFile reads a whole file; errors name the file, row and column.
func ReadFile(path string) ([]Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	series, err := Read(f)
	var ce *Error
	if errors.As(err, &ce) {
		ce.Path = path
	}
	return series, err
}

// Read reads series from r. Every row needs an ID that no earlier row used and at
// least one value; every value must be a finite number, or NA (also NaN) for a missing
// point, which reads as NaN.
func Read(r io.Reader) ([]Series, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // M4 rows are padded to the longest, but other files need not be
	cr.ReuseRecord = true
	if _, err := cr.Read(); err != nil {
		if err == io.EOF {
			return nil, &Error{Row: 1, Reason: "the file is empty; want a header row, then one series a row"}
		}
		return nil, csvError(err)
	}
	var out []Series
	seen := map[string]int{}
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		id := strings.TrimSpace(rec[0])
		if id == "" {
			if len(rec) == 1 {
				continue // a blank line
			}
			return nil, &Error{Row: row, Column: 1, Reason: "the series ID is empty"}
		}
		if first, dup := seen[id]; dup {
			return nil, &Error{Row: row, Column: 1, Reason: fmt.Sprintf("series %q already appeared in row %d", id, first)}
		}
		seen[id] = row
		s := Series{ID: id}
		for col, cell := range rec[1:] {
			cell = strings.TrimSpace(cell)
			if cell == "" {
				break
			}
			if isMissing(cell) {
				s.Values = append(s.Values, math.NaN())
				continue
			}
			v, err := strconv.ParseFloat(cell, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, &Error{Row: row, Column: col + 2, Reason: fmt.Sprintf("%q is not a finite number or NA", cell)}
			}
			s.Values = append(s.Values, v)
		}
		if len(s.Values) == 0 {
			return nil, &Error{Row: row, Column: 2, Reason: fmt.Sprintf("series %q has no values", id)}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, &Error{Row: 2, Reason: "the file has a header but no series"}
	}
	return out, nil
}

// isMissing reports whether a cell marks a missing point, as R writes them.
func isMissing(cell string) bool {
	return cell == "NA" || strings.EqualFold(cell, "nan")
}

// csvError turns encoding/csv's parse errors into ours, keeping its position.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &Error{Row: pe.StartLine, Column: pe.Column, Reason: pe.Err.Error()}
	}
	return err
}

// Write writes series as "id,<prefix>1..<prefix>n" rows, n the longest series, in the
// order given. Numbers are written in the shortest form that reads back exactly.
func Write(w io.Writer, prefix string, series []Series) error {
	cw := csv.NewWriter(w)
	n := 0
	for _, s := range series {
		n = max(n, len(s.Values))
	}
	rec := make([]string, 0, n+1)
	rec = append(rec, "id")
	for i := range n {
		rec = append(rec, prefix+strconv.Itoa(i+1))
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for _, s := range series {
		rec = rec[:0]
		rec = append(rec, s.ID)
		for _, v := range s.Values {
			if math.IsNaN(v) {
				rec = append(rec, "NA")
				continue
			}
			rec = append(rec, strconv.FormatFloat(v, 'g', -1, 64))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
