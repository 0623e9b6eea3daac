// Package inventory reads a VM inventory file, CSV or JSON, in PMO's own columns or
// those of an RVTools vInfo export, and checks every row. It is plain Go: the store
// writes the rows it returns.
package inventory

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
)

// VM is one inventory row, with the line of the file it came from.
type VM struct {
	Line               int
	ID                 string
	Name               string
	Site               string
	CPUCores           int
	RAMBytes           int64
	StorageBytes       int64
	NetworkBytesSec    float64
	DiskChangeBytesSec float64
	SLATier            string
	DiskURI            string
	DiskBytes          int64
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

// Defaults fill a column that a file leaves out or leaves blank.
type Defaults struct {
	Site    string
	SLATier string
}

// Format is how a file is written.
type Format string

// The formats Read accepts.
const (
	CSV  Format = "csv"
	JSON Format = "json"
)

// field is one of PMO's columns and the file headers it is read from, in order of
// preference: PMO's own name, then RVTools vInfo's. scale turns the file's unit into
// PMO's.
type field struct {
	name    string
	headers []string
	scale   float64
}

const mib = 1 << 20

// fields are PMO's columns. Headers are compared lower-cased with spaces, dashes and
// dots as underscores, so "VM UUID" is vm_uuid and "Provisioned MiB" provisioned_mib.
var fields = []field{
	{"id", []string{"id", "vm_uuid", "vm_id"}, 1},
	{"name", []string{"name", "vm"}, 1},
	{"site", []string{"site", "datacenter", "cluster"}, 1},
	{"cpu_cores", []string{"cpu_cores", "cpus"}, 1},
	{"ram_bytes", []string{"ram_bytes", "memory"}, mib},
	{"storage_bytes", []string{"storage_bytes", "provisioned_mib", "provisioned_mb", "in_use_mib", "in_use_mb"}, mib},
	{"network_bytes_per_sec", []string{"network_bytes_per_sec"}, 1},
	{"disk_change_bytes_per_sec", []string{"disk_change_bytes_per_sec"}, 1},
	{"sla_tier", []string{"sla_tier", "tier"}, 1},
	{"disk_uri", []string{"disk_uri"}, 1},
	{"disk_bytes", []string{"disk_bytes"}, 1},
}

// record is one row as text, keyed by normalised header, with its line.
type record struct {
	line   int
	values map[string]string
}

// Read parses a whole file and checks every row. If any row is bad it returns no rows
// and Errors listing each bad one; other errors mean the file could not be read.
func Read(r io.Reader, format Format, def Defaults) ([]VM, error) {
	var recs []record
	var err error
	switch format {
	case CSV:
		recs, err = readCSV(r, def)
	case JSON:
		recs, err = readJSON(r)
	default:
		return nil, fmt.Errorf("inventory: unknown format %q: want csv or json", format)
	}
	if err != nil {
		return nil, err
	}
	return check(recs, def)
}

func normalise(header string) string {
	h := strings.ToLower(strings.TrimSpace(header))
	return strings.NewReplacer(" ", "_", "-", "_", ".", "_").Replace(h)
}

func readCSV(r io.Reader, def Defaults) ([]record, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // a short row is a row error, not a failed file
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, Errors{{Line: 1, Column: "header", Reason: "the file is empty"}}
	}
	if err != nil {
		return nil, fmt.Errorf("inventory: csv: %w", err)
	}
	for i := range header {
		header[i] = normalise(strings.TrimPrefix(header[i], "\ufeff")) // Excel writes a BOM
	}
	if errs := missingColumns(header, def); len(errs) > 0 {
		return nil, errs
	}
	var recs []record
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("inventory: csv: %w", err)
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

func readJSON(r io.Reader) ([]record, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("inventory: json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, fmt.Errorf("inventory: json: want an array of objects")
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
			return nil, fmt.Errorf("inventory: json: line %d: want an object: %w", line, err)
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
		return nil, fmt.Errorf("inventory: json: %w", err)
	}
	return recs, nil
}

// check turns records into VMs, collecting every bad value and duplicate ID.
func check(recs []record, def Defaults) ([]VM, error) {
	var errs Errors
	vms := make([]VM, 0, len(recs))
	seen := make(map[string]int, len(recs))
	for _, rec := range recs {
		vm, rowErrs := parse(rec, def)
		if first, ok := seen[vm.ID]; ok && vm.ID != "" {
			rowErrs = append(rowErrs, RowError{rec.line, "id", fmt.Sprintf("%q is also on line %d", vm.ID, first)})
		} else if vm.ID != "" {
			seen[vm.ID] = rec.line
		}
		errs = append(errs, rowErrs...)
		vms = append(vms, vm)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return vms, nil
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

// optional says whether a column may be left out; see docs/import.md for its default.
func optional(name string) bool {
	switch name {
	case "network_bytes_per_sec", "disk_change_bytes_per_sec", "disk_uri", "disk_bytes":
		return true
	}
	return false
}

// missingColumns lists, as one error on the header line each, the required columns that
// a CSV header has no header for and no default fills, rather than one error a row.
func missingColumns(header []string, def Defaults) Errors {
	var errs Errors
	for _, f := range fields {
		switch {
		case optional(f.name), f.name == "site" && def.Site != "", f.name == "sla_tier" && def.SLATier != "":
			continue
		}
		if !slices.ContainsFunc(f.headers, func(h string) bool { return slices.Contains(header, h) }) {
			reason := "no column for it; want a header " + strings.Join(f.headers, " or ")
			switch f.name {
			case "site":
				reason += ", or -site for all rows"
			case "sla_tier":
				reason += ", or -tier for all rows"
			}
			errs = append(errs, RowError{1, f.name, reason})
		}
	}
	return errs
}

func parse(rec record, def Defaults) (VM, []RowError) {
	vm := VM{Line: rec.line}
	var errs []RowError
	bad := func(col, format string, args ...any) {
		errs = append(errs, RowError{rec.line, col, fmt.Sprintf(format, args...)})
	}
	for _, f := range fields {
		v, scale := value(rec, f)
		if v == "" {
			switch f.name {
			case "site":
				v = def.Site
			case "sla_tier":
				v = def.SLATier
			}
		}
		if v == "" {
			if !optional(f.name) {
				bad(f.name, "is missing")
			}
			continue
		}
		switch f.name {
		case "id":
			vm.ID = v
		case "name":
			vm.Name = v
		case "site":
			vm.Site = v
		case "sla_tier":
			vm.SLATier = v
		case "disk_uri":
			vm.DiskURI = v
		case "cpu_cores":
			n, err := strconv.Atoi(v)
			switch {
			case err != nil:
				bad(f.name, "%q is not a whole number", v)
			case n <= 0:
				bad(f.name, "%d is not positive", n)
			}
			vm.CPUCores = n
		case "ram_bytes", "storage_bytes", "disk_bytes":
			n, ok := bytesValue(v, scale)
			switch {
			case !ok:
				bad(f.name, "%q is not a number", v)
			case n <= 0:
				bad(f.name, "%s is not positive", v)
			}
			switch f.name {
			case "ram_bytes":
				vm.RAMBytes = n
			case "storage_bytes":
				vm.StorageBytes = n
			default:
				vm.DiskBytes = n
			}
		case "network_bytes_per_sec", "disk_change_bytes_per_sec":
			x, err := strconv.ParseFloat(v, 64)
			switch {
			case err != nil || math.IsNaN(x) || math.IsInf(x, 0):
				bad(f.name, "%q is not a number", v)
			case x < 0:
				bad(f.name, "%s is negative", v)
			}
			if f.name == "network_bytes_per_sec" {
				vm.NetworkBytesSec = x
			} else {
				vm.DiskChangeBytesSec = x
			}
		}
	}
	if vm.DiskBytes == 0 {
		vm.DiskBytes = vm.StorageBytes // the image to move is the whole VM unless told
	}
	return vm, errs
}

// bytesValue reads a size in a unit of scale bytes: a whole number of bytes, or MiB
// that RVTools may write with decimals and, saved through Excel, thousands separators.
func bytesValue(v string, scale float64) (int64, bool) {
	if scale == 1 {
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	x, err := strconv.ParseFloat(strings.ReplaceAll(v, ",", ""), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x*scale > math.MaxInt64 {
		return 0, false
	}
	return int64(math.Round(x * scale)), true
}

// CheckRefs lists every row whose site or SLA tier is not among those known, naming
// the known ones, so that a file is refused before anything is written.
func CheckRefs(vms []VM, sites, tiers []string) error {
	var errs Errors
	for _, vm := range vms {
		if !slices.Contains(sites, vm.Site) {
			errs = append(errs, RowError{vm.Line, "site", fmt.Sprintf("%q is not a known site (known: %s)", vm.Site, strings.Join(sites, ", "))})
		}
		if !slices.Contains(tiers, vm.SLATier) {
			errs = append(errs, RowError{vm.Line, "sla_tier", fmt.Sprintf("%q is not a known SLA tier (known: %s)", vm.SLATier, strings.Join(tiers, ", "))})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Counts says what an inventory import did to each of its rows.
type Counts struct {
	Rows      int `json:"rows"`
	Inserted  int `json:"inserted"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}
