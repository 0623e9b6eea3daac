// Package imports reads the files an operator imports (VM inventory, migration
// history, SLA tiers), CSV or JSON, and checks every row, so that a bad file is
// refused whole with each bad row named. It is plain Go: the store writes the rows it
// returns.
package imports

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// RowError says which line and column of the file is wrong and why. Line 1 is the CSV
// header; in JSON a row's line is the one its object starts on.
type RowError struct {
	Line   int    `json:"line"`
	Column string `json:"column"`
	Reason string `json:"reason"`
}

// Error implements error.
func (e RowError) Error() string { return fmt.Sprintf("line %d: %s: %s", e.Line, e.Column, e.Reason) }

// Errors is every bad row of a file; one of them rejects the whole file.
type Errors []RowError

// Error implements error with the first bad row and how many there are.
func (es Errors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	return fmt.Sprintf("%s, the first %s", es.Count(), es[0].Error())
}

// Count says in words how many rows are bad.
func (es Errors) Count() string {
	if len(es) == 1 {
		return "1 bad row"
	}
	return fmt.Sprintf("%d bad rows", len(es))
}

// Format is how a file is written.
type Format string

// The formats a file may be in.
const (
	CSV  Format = "csv"
	JSON Format = "json"
)

// field is one of PMO's columns and the file headers it is read from, in order of
// preference: PMO's own name, then another tool's (RVTools vInfo's for an inventory).
// scale turns the other tool's unit into PMO's.
type field struct {
	name    string
	headers []string
	scale   float64
}

// record is one row as text, keyed by normalised header, with its line.
type record struct {
	line   int
	values map[string]string
}

// wrap names the kind of file in an error that is not a list of bad rows.
func wrap(kind string, err error) error {
	var bad Errors
	if errors.As(err, &bad) {
		return err
	}
	return fmt.Errorf("%s: %w", kind, err)
}

// readRecords reads a file of either format as rows of text keyed by normalised
// header. want checks a CSV header.
func readRecords(r io.Reader, format Format, want func(header []string) Errors) ([]record, error) {
	switch format {
	case CSV:
		return readCSV(r, want)
	case JSON:
		return readJSON(r)
	}
	return nil, fmt.Errorf("unknown format %q: want csv or json", format)
}

func normalise(header string) string {
	h := strings.ToLower(strings.TrimSpace(header))
	return strings.NewReplacer(" ", "_", "-", "_", ".", "_").Replace(h)
}

// readCSV reads a header and the rows under it. want checks the header: a required
// column with no header is one error on line 1 rather than one a row.
func readCSV(r io.Reader, want func(header []string) Errors) ([]record, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // a short row is a row error, not a failed file
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, Errors{{Line: 1, Column: "header", Reason: "the file is empty"}}
	}
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	for i := range header {
		header[i] = normalise(strings.TrimPrefix(header[i], "\ufeff")) // Excel writes a BOM
	}
	if errs := want(header); len(errs) > 0 {
		return nil, errs
	}
	var recs []record
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		values := make(map[string]string, len(header))
		for i, h := range header {
			if i < len(row) {
				values[h] = row[i]
			}
		}
		recs = append(recs, record{line: line, values: values})
	}
}

// readJSON reads an array of objects, each a row whose keys are the columns.
func readJSON(r io.Reader) ([]record, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, fmt.Errorf("json: want an array of objects")
	}
	var recs []record
	for dec.More() {
		// The offset is after the previous value; the object starts past the comma
		// and blanks that follow.
		start := int(dec.InputOffset())
		for start < len(data) && strings.IndexByte(" \t\r\n,", data[start]) >= 0 {
			start++
		}
		line := 1 + bytes.Count(data[:start], []byte("\n"))
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("json: line %d: want an object: %w", line, err)
		}
		values := make(map[string]string, len(obj))
		for k, v := range obj {
			switch v := v.(type) {
			case nil:
				values[normalise(k)] = ""
			case string:
				values[normalise(k)] = v
			case json.Number:
				values[normalise(k)] = v.String()
			default:
				values[normalise(k)] = fmt.Sprint(v) // a bool or object fails as a value below
			}
		}
		recs = append(recs, record{line: line, values: values})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return recs, nil
}

// value finds a field's text in a record: the first of its headers that is present and
// not blank, and the scale of that header.
func value(rec record, f field) (string, float64) {
	for i, h := range f.headers {
		if v := strings.TrimSpace(rec.values[h]); v != "" {
			if i == 0 {
				return v, 1 // PMO's own column is in PMO's unit
			}
			return v, f.scale
		}
	}
	return "", 1
}

// missingColumns lists, as one error on the header line each, the fields that a CSV
// header has no header for. required says which fields need one; hint, if it says
// something, is how else a field can be given.
func missingColumns(header []string, fields []field, required func(name string) bool, hint func(name string) string) Errors {
	var errs Errors
	for _, f := range fields {
		if !required(f.name) {
			continue
		}
		if !slices.ContainsFunc(f.headers, func(h string) bool { return slices.Contains(header, h) }) {
			reason := "no column for it; want a header " + strings.Join(f.headers, " or ")
			if h := hint(f.name); h != "" {
				reason += ", " + h
			}
			errs = append(errs, RowError{1, f.name, reason})
		}
	}
	return errs
}

// Counts says what an import did to each of its rows.
type Counts struct {
	Rows      int `json:"rows"`
	Inserted  int `json:"inserted"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}
