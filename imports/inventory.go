package imports

import (
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

// Defaults fill a column that a file leaves out or leaves blank.
type Defaults struct {
	Site    string
	SLATier string
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

// ReadInventory parses a whole inventory file and checks every row. If any row is bad
// it returns no rows and Errors listing each bad one; other errors mean the file could
// not be read.
func ReadInventory(r io.Reader, format Format, def Defaults) ([]VM, error) {
	recs, err := readRecords(r, format, func(header []string) Errors {
		return missingColumns(header, fields, func(name string) bool {
			return !optional(name) && !(name == "site" && def.Site != "") && !(name == "sla_tier" && def.SLATier != "")
		}, func(name string) string {
			switch name {
			case "site":
				return "or -site for all rows"
			case "sla_tier":
				return "or -tier for all rows"
			}
			return ""
		})
	})
	if err != nil {
		return nil, wrap("inventory", err)
	}
	return check(recs, def)
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

// optional says whether a column may be left out; see docs/import.md for its default.
func optional(name string) bool {
	switch name {
	case "network_bytes_per_sec", "disk_change_bytes_per_sec", "disk_uri", "disk_bytes":
		return true
	}
	return false
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

// CheckInventoryRefs lists every row whose site or SLA tier is not among those known, naming
// the known ones, so that a file is refused before anything is written.
func CheckInventoryRefs(vms []VM, sites, tiers []string) error {
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
