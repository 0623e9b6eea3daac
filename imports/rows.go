// Package imports reads the files an operator imports (sites, SLA tiers, VM
// inventory, migration history), CSV or JSON, and checks every row, so that a bad file
// is refused whole with each bad row named. It is plain Go: the store writes the rows
// it returns.
package imports

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// Kind is what a file holds; docs/import.md has the columns of each.
type Kind string

// The kinds of file, in Kinds.
const (
	Sites     Kind = "sites"
	SLAs      Kind = "slas"
	Inventory Kind = "inventory"
	History   Kind = "history"
)

// Kinds are the kinds of file in the order an operator first imports them: a VM names
// a site and a tier, and a migration a site and a tier.
var Kinds = []Kind{Sites, SLAs, Inventory, History}

// File is the checked rows of one file, in the seed's data set of its kind (so that
// the store writes a file and the demo seed the same way), and the line of each row.
type File struct {
	Kind Kind
	planning.SeedData
	// Lines[i] is the line of the file that row i came from.
	Lines []int
}

// Len is how many rows the file has.
func (f File) Len() int { return len(f.Lines) }

// Read parses a whole file of a kind and checks every row. If any row is bad it
// returns no rows and Errors listing each bad one; other errors mean the file could
// not be read. def fills an inventory's blank sites and tiers.
func Read(r io.Reader, kind Kind, format Format, def Defaults) (File, error) {
	f := File{Kind: kind}
	var err error
	switch kind {
	case Sites:
		f.Sites, f.Lines, err = readRows(r, format, sitesSpec)
	case SLAs:
		f.Tiers, f.Lines, err = readRows(r, format, tiersSpec)
	case Inventory:
		f.VMs, f.Lines, err = readRows(r, format, inventorySpec(def))
	case History:
		f.History, f.Lines, err = readRows(r, format, historySpec)
	default:
		return File{}, fmt.Errorf("unknown kind of file %q: want %s", kind, kindNames())
	}
	if err != nil {
		return File{}, err
	}
	return f, nil
}

func kindNames() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// CheckRefs lists every VM or migration of the file whose site or SLA tier is not
// among those known, naming the known ones, so that a file is refused before anything
// is written. Sites and tiers name nothing.
func (f File) CheckRefs(sites, tiers []string) error {
	var errs Errors
	check := func(line int, site, tier string) {
		if !slices.Contains(sites, site) {
			errs = append(errs, RowError{line, "site", fmt.Sprintf("%q is not a known site (known: %s)", site, strings.Join(sites, ", "))})
		}
		if !slices.Contains(tiers, tier) {
			errs = append(errs, RowError{line, "sla_tier", fmt.Sprintf("%q is not a known SLA tier (known: %s)", tier, strings.Join(tiers, ", "))})
		}
	}
	for i, vm := range f.VMs {
		check(f.Lines[i], vm.Site, vm.SLATier)
	}
	for i, m := range f.History {
		check(f.Lines[i], m.Site, m.SLATier)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

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

// spec is how one kind of file is read: its columns, and how a row is checked.
type spec[T any] struct {
	kind   Kind
	fields []field
	// optional says whether a column may be left out; hint, if it says something, is
	// how else a required one can be given.
	optional func(name string) bool
	hint     func(name string) string
	// parse reads one row; its cells collect what is wrong with it.
	parse func(c *cells) T
	// key is the row's identity, which must be unique in the file.
	key func(T) (column, value string)
}

// readRows reads a file of one kind and checks every row, and each row's line. Any bad
// row means no rows and Errors listing each bad one.
func readRows[T any](r io.Reader, format Format, s spec[T]) ([]T, []int, error) {
	hint := s.hint
	if hint == nil {
		hint = func(string) string { return "" }
	}
	recs, err := readRecords(r, format, func(header []string) Errors {
		return missingColumns(header, s.fields, func(name string) bool { return !s.optional(name) }, hint)
	})
	var bad Errors
	if errors.As(err, &bad) {
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.kind, err)
	}
	var errs Errors
	rows, lines := make([]T, 0, len(recs)), make([]int, 0, len(recs))
	seen := make(map[string]int, len(recs))
	for _, rec := range recs {
		c := &cells{rec: rec, fields: s.fields, optional: s.optional}
		row := s.parse(c)
		if col, id := s.key(row); id != "" {
			if first, ok := seen[id]; ok {
				c.bad(col, "%q is also on line %d", id, first)
			} else {
				seen[id] = rec.line
			}
		}
		errs = append(errs, c.errs...)
		rows, lines = append(rows, row), append(lines, rec.line)
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	return rows, lines, nil
}

// cells reads the values of one record, collecting what is wrong with them.
type cells struct {
	rec      record
	fields   []field
	optional func(name string) bool
	errs     []RowError
}

func (c *cells) bad(col, format string, args ...any) {
	c.errs = append(c.errs, RowError{c.rec.line, col, fmt.Sprintf(format, args...)})
}

// get is a column's text and the scale of the header it came from; fallback fills a
// blank, and a required column left blank is missing.
func (c *cells) get(name, fallback string) (string, float64) {
	i := slices.IndexFunc(c.fields, func(f field) bool { return f.name == name })
	v, scale := value(c.rec, c.fields[i])
	if v == "" {
		v = fallback
	}
	if v == "" && !c.optional(name) {
		c.bad(name, "is missing")
	}
	var fe *validation.Error
	if errors.As(validation.Note(name, v), &fe) { // too long, or not text
		c.bad(name, "%s", fe.Reason)
		v = ""
	}
	return v, scale
}

// text is a column's text, or fallback where it is blank.
func (c *cells) text(name, fallback string) string {
	v, _ := c.get(name, fallback)
	return v
}

// id is a column's ID, or fallback where it is blank: an ID names workflows, task
// queues and files (validation.ID), so one that could not is a bad row here rather
// than a site that can never get a connector.
func (c *cells) id(name, fallback string) string {
	v := c.text(name, fallback)
	var fe *validation.Error
	if v != "" && errors.As(validation.ID(name, v), &fe) {
		c.bad(name, "%s", fe.Reason)
	}
	return v
}

// whole is a column's whole number, which must be positive or, if not, at least 0;
// 0 where it is blank.
func (c *cells) whole(name string, positive bool) int64 {
	v, _ := c.get(name, "")
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		c.bad(name, "%q is not a whole number", v)
	} else {
		c.bound(name, v, float64(n), positive)
	}
	return n
}

// bound checks that a number v read as x is positive or, if not, at least 0.
func (c *cells) bound(name, v string, x float64, positive bool) {
	switch {
	case positive && x <= 0:
		c.bad(name, "%s is not positive", v)
	case x < 0:
		c.bad(name, "%s is negative", v)
	}
}

// number is a column's number, which must be positive or, if not, at least 0;
// fallback where it is blank.
func (c *cells) number(name string, positive bool, fallback float64) float64 {
	v, _ := c.get(name, "")
	if v == "" {
		return fallback
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		c.bad(name, "%q is not a number", v)
	} else {
		c.bound(name, v, x, positive)
	}
	return x
}

// time is a column's RFC 3339 time.
func (c *cells) time(name string) time.Time {
	v, _ := c.get(name, "")
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		c.bad(name, "%q is not an RFC 3339 time such as 2026-11-24T10:00:00Z", v)
	} else if err := validation.Time(name, t); err != nil {
		c.bad(name, "%s", err.(*validation.Error).Reason)
	}
	return t
}

// boolean is a column's true or false; false where it is blank.
func (c *cells) boolean(name string) bool {
	v, _ := c.get(name, "")
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		c.bad(name, "%q is not true or false", v)
	}
	return b
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
			case []any:
				// A list of words, such as a site's sources, is a cell of words
				// separated by spaces; anything else in it fails as a value below.
				words := make([]string, len(v))
				for i, w := range v {
					words[i] = fmt.Sprint(w)
				}
				values[normalise(k)] = strings.Join(words, " ")
			default:
				values[normalise(k)] = fmt.Sprint(v) // a bool reads as true or false; an object fails as a value below
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
	// Kept are the history rows not written because PMO recorded that migration
	// itself: its outcome is what happened, and an import does not overwrite it.
	Kept []KeptRow `json:"kept,omitempty"`
}

// KeptRow is a row of a file that was not written, and why.
type KeptRow struct {
	Line   int    `json:"line"`
	ID     string `json:"id"`
	Reason string `json:"reason"`
}
