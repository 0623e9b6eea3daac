package imports

import (
	"math"
	"strconv"
	"strings"

	"github.com/pmo-dev/pmo/planning"
)

// Defaults fill a column that an inventory file leaves out or leaves blank.
type Defaults struct {
	Site    string
	SLATier string
}

const mib = 1 << 20

// inventoryFields are PMO's columns of a VM. Headers are compared lower-cased with
// spaces, dashes and dots as underscores, so "VM UUID" is vm_uuid and "Provisioned
// MiB" provisioned_mib.
var inventoryFields = []field{
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

// inventorySpec reads VMs; def fills blank sites and tiers, and a CSV file needs no
// column for what def fills.
func inventorySpec(def Defaults) spec[planning.InventoryVM] {
	return spec[planning.InventoryVM]{
		kind:   Inventory,
		fields: inventoryFields,
		optional: func(name string) bool {
			switch name {
			case "network_bytes_per_sec", "disk_change_bytes_per_sec", "disk_uri", "disk_bytes":
				return true
			case "site":
				return def.Site != ""
			case "sla_tier":
				return def.SLATier != ""
			}
			return false
		},
		hint: func(name string) string {
			switch name {
			case "site":
				return "or -site for all rows"
			case "sla_tier":
				return "or -tier for all rows"
			}
			return ""
		},
		parse: func(c *cells) planning.InventoryVM {
			var vm planning.InventoryVM
			vm.ID = c.id("id", "")
			vm.Name = c.text("name", "")
			vm.Site = c.id("site", def.Site)
			vm.CPUCores = int(c.whole("cpu_cores", true))
			vm.RAMBytes = c.bytes("ram_bytes")
			vm.StorageBytes = c.bytes("storage_bytes")
			vm.NetworkBytesSec = c.number("network_bytes_per_sec", false, 0)
			vm.DiskChangeBytesSec = c.number("disk_change_bytes_per_sec", false, 0)
			vm.SLATier = c.text("sla_tier", def.SLATier)
			vm.DiskURI = c.text("disk_uri", "")
			vm.DiskBytes = c.bytes("disk_bytes")
			if vm.DiskBytes == 0 {
				vm.DiskBytes = vm.StorageBytes // the image to move is the whole VM unless told
			}
			return vm
		},
	}
}

// bytes is a column's positive size: a whole number of bytes, or, under another
// tool's header, MiB that RVTools may write with decimals and, saved through Excel,
// thousands separators. 0 where it is blank.
func (c *cells) bytes(name string) int64 {
	v, scale := c.get(name, "")
	if v == "" {
		return 0
	}
	var n int64
	ok := true
	if scale == 1 {
		var err error
		n, err = strconv.ParseInt(v, 10, 64)
		ok = err == nil
	} else {
		x, err := strconv.ParseFloat(strings.ReplaceAll(v, ",", ""), 64)
		ok = err == nil && !math.IsNaN(x) && !math.IsInf(x, 0) && x*scale <= math.MaxInt64
		n = int64(math.Round(x * scale))
	}
	if !ok {
		c.bad(name, "%q is not a number", v)
	} else {
		c.bound(name, v, float64(n), true)
	}
	return n
}
