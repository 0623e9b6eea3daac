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

// DefaultBatch is how many rows Scan hands on at a time unless told.
const DefaultBatch = 10_000

// MaxListed bounds the bad rows a file's Errors list, and the kept rows its Counts
// list: past it, Scan stops reading.
const MaxListed = 1000

// Options say what Scan checks and how it hands rows on.
type Options struct {
	// Defaults fill an inventory's blank sites and tiers.
	Defaults Defaults
	// Sites and Tiers, when not nil, are the known ones: a VM or migration that names
	// another is a bad row.
	Sites, Tiers []string
	// Batch is at most how many rows each call of Scan's each gets; 0 means
	// DefaultBatch.
	Batch int
}

// Scan reads a file of one kind a row at a time and checks every row, so that the
// memory it takes does not grow with the file. The good rows go to each, in file
// order, in batches of at most opt.Batch, until a bad row is met; reading then goes on
// only to list the bad rows. It returns how many rows the file has, and Errors listing
// the bad ones (at most MaxListed, after which it stops reading). An error from each
// ends the scan with that error; each may be nil, to check a file only. Two rows with
// the same key are not found here, since that would mean holding every key: the store
// finds them as it writes.
func Scan(r io.Reader, kind Kind, format Format, opt Options, each func(File) error) (int, error) {
	if opt.Batch <= 0 {
		opt.Batch = DefaultBatch
	}
	if each == nil {
		each = func(File) error { return nil }
	}
	known := newRefs(opt.Sites, opt.Tiers)
	hand := func(f File) error { f.Kind = kind; return each(f) }
	switch kind {
	case Sites:
		return scanRows(r, format, sitesSpec, opt.Batch, func(rows []planning.SiteInfo, lines []int) error {
			return hand(File{SeedData: planning.SeedData{Sites: rows}, Lines: lines})
		})
	case SLAs:
		return scanRows(r, format, tiersSpec, opt.Batch, func(rows []planning.SLATier, lines []int) error {
			return hand(File{SeedData: planning.SeedData{Tiers: rows}, Lines: lines})
		})
	case Inventory:
		s := inventorySpec(opt.Defaults)
		s.refs = func(c *cells, vm planning.InventoryVM) { known.check(c, vm.Site, vm.SLATier) }
		return scanRows(r, format, s, opt.Batch, func(rows []planning.InventoryVM, lines []int) error {
			return hand(File{SeedData: planning.SeedData{VMs: rows}, Lines: lines})
		})
	case History:
		s := historySpec
		s.refs = func(c *cells, m planning.MigrationRecord) { known.check(c, m.Site, m.SLATier) }
		return scanRows(r, format, s, opt.Batch, func(rows []planning.MigrationRecord, lines []int) error {
			return hand(File{SeedData: planning.SeedData{History: rows}, Lines: lines})
		})
	}
	return 0, readError{fmt.Errorf("unknown kind of file %q: want %s", kind, kindNames())}
}

// Read parses a whole file of a kind and checks every row, as Scan does, holding
// every row: for tests and small files. If any row is bad it returns no rows and
// Errors listing each bad one; other errors mean the file could not be read. def
// fills an inventory's blank sites and tiers.
func Read(r io.Reader, kind Kind, format Format, def Defaults) (File, error) {
	f := File{Kind: kind}
	_, err := Scan(r, kind, format, Options{Defaults: def, Batch: math.MaxInt}, func(b File) error {
		f.Sites, f.Tiers = append(f.Sites, b.Sites...), append(f.Tiers, b.Tiers...)
		f.VMs, f.History = append(f.VMs, b.VMs...), append(f.History, b.History...)
		f.Lines = append(f.Lines, b.Lines...)
		return nil
	})
	if err != nil {
		return File{}, err
	}
	return f, nil
}

// StagedFile names a file of one kind that the web server staged where the worker can
// read it: ImportWorkflow's input. The file stays out of workflow history; only its
// path goes through.
type StagedFile struct {
	Kind   Kind
	Path   string
	Format Format
	// Defaults fill an inventory's rows that name no site or tier.
	Defaults Defaults
}

// Source is a file to import: its kind, and how to read it. The store imports from a
// Source, so that a file on disk is read a batch at a time and a file in memory (the
// tests', the seed's) is written the same way.
type Source struct {
	Kind Kind
	// Scan reads the file as the package's Scan does.
	Scan func(opt Options, each func(File) error) (int, error)
}

// NewSource is a file of a kind read from r, once, as the store writes it.
func NewSource(r io.Reader, kind Kind, format Format, def Defaults) Source {
	return Source{Kind: kind, Scan: func(opt Options, each func(File) error) (int, error) {
		opt.Defaults = def
		return Scan(r, kind, format, opt, each)
	}}
}

// Source is the file's rows as a Source: each gets them at once, once the sites and
// tiers they name are checked.
func (f File) Source() Source {
	return Source{Kind: f.Kind, Scan: func(opt Options, each func(File) error) (int, error) {
		if err := f.CheckRefs(opt.Sites, opt.Tiers); err != nil {
			return f.Len(), err
		}
		if each == nil || f.Len() == 0 {
			return f.Len(), nil
		}
		return f.Len(), each(f)
	}}
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
	known := newRefs(sites, tiers)
	var errs Errors
	check := func(line int, site, tier string) {
		c := &cells{rec: record{line: line}}
		known.check(c, site, tier)
		errs = append(errs, c.errs...)
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

// refs are the known sites and tiers that a VM or a migration must name; nil checks
// nothing.
type refs struct {
	siteSet, tierSet     map[string]bool
	siteNames, tierNames string
}

func newRefs(sites, tiers []string) *refs {
	if sites == nil && tiers == nil {
		return nil
	}
	set := func(xs []string) map[string]bool {
		m := make(map[string]bool, len(xs))
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	return &refs{siteSet: set(sites), tierSet: set(tiers),
		siteNames: strings.Join(sites, ", "), tierNames: strings.Join(tiers, ", ")}
}

// check marks a row that names an unknown site or tier.
func (k *refs) check(c *cells, site, tier string) {
	if k == nil {
		return
	}
	if !k.siteSet[site] {
		c.bad("site", "%q is not a known site (known: %s)", site, k.siteNames)
	}
	if !k.tierSet[tier] {
		c.bad("sla_tier", "%q is not a known SLA tier (known: %s)", tier, k.tierNames)
	}
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
	// refs, if set, checks the sites and tiers a parsed row names.
	refs func(c *cells, row T)
}

// scanRows reads a file of one kind a record at a time and checks every row, handing
// the good rows on in batches, with their lines, until a row is bad; after that it
// only lists the bad rows, up to MaxListed. It returns how many rows it read.
func scanRows[T any](r io.Reader, format Format, s spec[T], batch int, each func(rows []T, lines []int) error) (int, error) {
	hint := s.hint
	if hint == nil {
		hint = func(string) string { return "" }
	}
	var errs Errors
	var rows []T
	var lines []int
	n := 0
	flush := func() error {
		if len(rows) == 0 || len(errs) > 0 {
			return nil
		}
		err := each(rows, lines)
		// each may keep the batch, so the next one is a new slice.
		rows, lines = nil, nil
		return err
	}
	err := readRecords(r, format, func(header []string) Errors {
		return missingColumns(header, s.fields, func(name string) bool { return !s.optional(name) }, hint)
	}, func(rec record) error {
		n++
		c := &cells{rec: rec, fields: s.fields, optional: s.optional}
		row := s.parse(c)
		if s.refs != nil && len(c.errs) == 0 {
			// A row already bad says what is wrong with it; an unknown site would
			// only repeat a missing one.
			s.refs(c, row)
		}
		if len(c.errs) > 0 {
			errs = append(errs, c.errs...)
			if len(errs) >= MaxListed {
				errs = append(errs[:MaxListed], RowError{rec.line, "file", fmt.Sprintf("%d bad rows already; reading stopped here", MaxListed)})
				return errStop
			}
			return nil
		}
		if len(errs) > 0 {
			return nil // the file is refused: only its bad rows matter now
		}
		rows, lines = append(rows, row), append(lines, rec.line)
		if len(rows) >= batch {
			return flush()
		}
		return nil
	})
	var bad Errors
	switch {
	case errors.As(err, &bad):
		return n, err
	case err != nil && !errors.Is(err, errStop):
		if _, ok := err.(readError); ok {
			return n, fmt.Errorf("%s: %w", s.kind, err)
		}
		return n, err // each's
	case len(errs) > 0:
		return n, errs
	}
	return n, flush()
}

// errStop ends reading a file early.
var errStop = errors.New("stop reading")

// ErrUnreadable is a file that cannot be read as its kind and format: it fails the
// same way every time, as opposed to an error of what a caller does with its rows.
var ErrUnreadable = errors.New("the file cannot be read")

// readError is an ErrUnreadable with its reason.
type readError struct{ error }

func (e readError) Unwrap() error { return e.error }

// Is makes a readError an ErrUnreadable.
func (readError) Is(target error) bool { return target == ErrUnreadable }

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

// readRecords reads a file of either format a row at a time as text keyed by
// normalised header, handing each to fn. want checks a CSV header. An error of the
// file's own is a readError, or Errors for a bad header; fn's error ends reading and
// is returned as it is.
func readRecords(r io.Reader, format Format, want func(header []string) Errors, fn func(record) error) error {
	switch format {
	case CSV:
		return readCSV(r, want, fn)
	case JSON:
		return readJSON(r, fn)
	}
	return readError{fmt.Errorf("unknown format %q: want csv or json", format)}
}

func normalise(header string) string {
	h := strings.ToLower(strings.TrimSpace(header))
	return strings.NewReplacer(" ", "_", "-", "_", ".", "_").Replace(h)
}

// readCSV reads a header and the rows under it. want checks the header: a required
// column with no header is one error on line 1 rather than one a row.
func readCSV(r io.Reader, want func(header []string) Errors, fn func(record) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // a short row is a row error, not a failed file
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return Errors{{Line: 1, Column: "header", Reason: "the file is empty"}}
	}
	if err != nil {
		return readError{fmt.Errorf("csv: %w", err)}
	}
	header = slices.Clone(header)
	for i := range header {
		header[i] = normalise(strings.TrimPrefix(header[i], "\ufeff")) // Excel writes a BOM
	}
	if errs := want(header); len(errs) > 0 {
		return errs
	}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return readError{fmt.Errorf("csv: %w", err)}
		}
		line, _ := cr.FieldPos(0)
		values := make(map[string]string, len(header))
		for i, h := range header {
			if i < len(row) {
				values[h] = row[i]
			}
		}
		if err := fn(record{line: line, values: values}); err != nil {
			return err
		}
	}
}

// readJSON reads an array of objects, each a row whose keys are the columns, one
// object at a time.
func readJSON(r io.Reader, fn func(record) error) error {
	lc := &lineCounter{r: r}
	dec := json.NewDecoder(lc)
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return readError{fmt.Errorf("json: want an array of objects")}
	}
	for dec.More() {
		// The offset is after the previous value; the object starts past the comma
		// and blanks that follow.
		line := lc.lineAt(dec.InputOffset(), " \t\r\n,")
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			return readError{fmt.Errorf("json: line %d: want an object: %w", line, err)}
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
		if err := fn(record{line: line, values: values}); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return readError{fmt.Errorf("json: %w", err)}
	}
	return nil
}

// lineCounter tells the line of a byte offset in what it has read, keeping only the
// bytes read ahead of the last offset asked about: the JSON decoder reads ahead of
// the object it decodes, never behind it.
type lineCounter struct {
	r io.Reader
	// pending are the bytes read from base on, of which the first done are counted;
	// line is the line of pending[done].
	pending []byte
	base    int64
	done    int
	line    int
}

func (l *lineCounter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.pending = append(l.pending, p[:n]...)
	return n, err
}

// lineAt is the line of the first byte at or after offset that is not in skip.
func (l *lineCounter) lineAt(offset int64, skip string) int {
	if l.line == 0 {
		l.line = 1
	}
	i := int(offset - l.base)
	for i < len(l.pending) && strings.IndexByte(skip, l.pending[i]) >= 0 {
		i++
	}
	i = min(i, len(l.pending))
	l.line += bytes.Count(l.pending[l.done:i], []byte("\n"))
	l.done = i
	// The counted bytes are dropped only once they are half of what is kept, so that
	// each byte is moved a bounded number of times.
	if l.done > len(l.pending)/2 {
		l.pending = append(l.pending[:0], l.pending[l.done:]...)
		l.base += int64(l.done)
		l.done = 0
	}
	return l.line
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
	// itself: its outcome is what happened, and an import does not overwrite it. At
	// most MaxListed are listed; KeptMore counts the rest.
	Kept     []KeptRow `json:"kept,omitempty"`
	KeptMore int       `json:"kept_more,omitempty"`
}

// KeptRow is a row of a file that was not written, and why.
type KeptRow struct {
	Line   int    `json:"line"`
	ID     string `json:"id"`
	Reason string `json:"reason"`
}
