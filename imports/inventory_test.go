package imports

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
)

// readFile reads a file of testdata.
func readFile(t *testing.T, name string, kind Kind, def Defaults) (File, error) {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	require.NoError(t, err)
	defer f.Close()
	format := CSV
	if strings.HasSuffix(name, ".json") {
		format = JSON
	}
	return Read(f, kind, format, def)
}

// lines are a file's bad rows as the command prints them.
func lines(t *testing.T, err error) []string {
	t.Helper()
	var errs Errors
	require.ErrorAs(t, err, &errs)
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func TestReadsAnRVToolsVInfoExport(t *testing.T) {
	file, err := readFile(t, "rvtools-vinfo.csv", Inventory, Defaults{SLATier: "bronze"})
	require.NoError(t, err)
	vms := file.VMs
	require.Len(t, vms, 3)
	require.Equal(t, []int{2, 3, 4}, file.Lines)
	require.Equal(t, planning.InventoryVM{
		VM:       planning.VM{ID: "4210a8f0-1b2c-4d5e-8f90-a1b2c3d4e5f6", Name: "web-01", Site: "dc-east", SLATier: "gold", DiskBytes: 102400 << 20},
		CPUCores: 4, RAMBytes: 8192 << 20, StorageBytes: 102400 << 20}, vms[0])
	require.Equal(t, int64(1048576.5*(1<<20)), vms[1].StorageBytes)
	require.Equal(t, int64(65536<<20), vms[1].RAMBytes)
	// No UUID falls back to the VM ID, no tier to the default.
	require.Equal(t, "vm-207", vms[2].ID)
	require.Equal(t, "bronze", vms[2].SLATier)
}

func TestListsEveryBadRow(t *testing.T) {
	file, err := readFile(t, "malformed.csv", Inventory, Defaults{})
	require.Zero(t, file.Len())
	require.Equal(t, []string{
		`line 2: ram_bytes: "lots" is not a number`,
		`line 3: name: is missing`,
		`line 3: cpu_cores: 0 is not positive`,
		`line 4: storage_bytes: -5 is not positive`,
		`line 4: id: "vm-1" is also on line 2`,
		`line 5: storage_bytes: is missing`,
		`line 5: sla_tier: is missing`,
	}, lines(t, err))
}

func TestReadsJSONWithTheLineOfEachObject(t *testing.T) {
	in := `[
  {"id": "vm-1", "name": "one", "site": "s1", "cpu_cores": 2, "ram_bytes": 1024,
   "storage_bytes": 4096, "sla_tier": "gold", "disk_uri": "file:///d/vm-1.img", "disk_bytes": 1024},
  {"id": "vm-2", "name": "two", "site": "s1", "cpu_cores": "two", "ram_bytes": 1024,
   "storage_bytes": 4096, "sla_tier": "gold"}
]`
	_, err := Read(strings.NewReader(in), Inventory, JSON, Defaults{})
	require.EqualError(t, err, `line 4: cpu_cores: "two" is not a whole number`)

	file, err := Read(strings.NewReader(strings.Replace(in, `"two", "ram`, `2, "ram`, 1)), Inventory, JSON, Defaults{})
	require.NoError(t, err)
	require.Equal(t, "file:///d/vm-1.img", file.VMs[0].DiskURI)
	require.Equal(t, int64(4096), file.VMs[1].DiskBytes)
	require.Equal(t, []int{2, 4}, file.Lines)
}

func TestCheckRefsNamesTheKnownSitesAndTiers(t *testing.T) {
	vm := func(site, tier string) planning.InventoryVM {
		return planning.InventoryVM{VM: planning.VM{Site: site, SLATier: tier}}
	}
	file := File{Kind: Inventory, Lines: []int{2, 3}}
	file.VMs = []planning.InventoryVM{vm("s1", "gold"), vm("mars", "tin")}
	err := file.CheckRefs([]string{"s1", "s2"}, []string{"gold"})
	require.EqualError(t, err, `2 bad rows, the first line 3: site: "mars" is not a known site (known: s1, s2)`)
	require.Equal(t, `line 3: sla_tier: "tin" is not a known SLA tier (known: gold)`, err.(Errors)[1].Error())
}

func TestAMissingColumnIsOneErrorOnTheHeader(t *testing.T) {
	in := "VM,CPUs,Memory,Datacenter\nweb-01,2,4096,dc-east\nweb-02,2,4096,dc-east\n"
	_, err := Read(strings.NewReader(in), Inventory, CSV, Defaults{SLATier: "gold"})
	require.Equal(t, Errors{
		{Line: 1, Column: "id", Reason: "no column for it; want a header id or vm_uuid or vm_id"},
		{Line: 1, Column: "storage_bytes", Reason: "no column for it; want a header storage_bytes or provisioned_mib or provisioned_mb or in_use_mib or in_use_mb"},
	}, err)
	_, err = Read(strings.NewReader(in), Inventory, CSV, Defaults{})
	require.Contains(t, err.(Errors)[2].Reason, "or -tier for all rows")
}
