package imports

import (
	"fmt"
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

// Every bad row is listed; a repeated ID is not one of them here (line 4 repeats
// vm-1): the store finds repeats as it writes (TestImportRefusesRepeatedKeys).
func TestListsEveryBadRow(t *testing.T) {
	file, err := readFile(t, "malformed.csv", Inventory, Defaults{})
	require.Zero(t, file.Len())
	require.Equal(t, []string{
		`line 2: ram_bytes: "lots" is not a number`,
		`line 3: name: is missing`,
		`line 3: cpu_cores: 0 is not positive`,
		`line 4: storage_bytes: -5 is not positive`,
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

// Scan hands the good rows on in batches, in file order with their lines, holding no
// more than a batch; once a row is bad it hands nothing more and lists the bad rows.
func TestScanHandsRowsOnInBatches(t *testing.T) {
	var csvFile, jsonFile strings.Builder
	csvFile.WriteString("id,name,site,cpu_cores,ram_bytes,storage_bytes,sla_tier\n")
	jsonFile.WriteString("[\n")
	for i := range 25 {
		fmt.Fprintf(&csvFile, "vm-%d,n,s1,1,1,1,gold\n", i)
		if i > 0 {
			jsonFile.WriteString(",\n")
		}
		fmt.Fprintf(&jsonFile, "{\"id\": \"vm-%d\", \"name\": \"n\", \"site\": \"s1\",\n \"cpu_cores\": 1, \"ram_bytes\": 1, \"storage_bytes\": 1, \"sla_tier\": \"gold\"}", i)
	}
	jsonFile.WriteString("\n]\n")
	for _, c := range []struct {
		format Format
		text   string
		line   func(i int) int
	}{{CSV, csvFile.String(), func(i int) int { return i + 2 }}, {JSON, jsonFile.String(), func(i int) int { return 2*i + 2 }}} {
		var sizes, lines []int
		n, err := Scan(strings.NewReader(c.text), Inventory, c.format, Options{Batch: 10, Sites: []string{"s1"}, Tiers: []string{"gold"}}, func(f File) error {
			sizes = append(sizes, f.Len())
			require.Equal(t, Inventory, f.Kind)
			for i, vm := range f.VMs {
				require.Equal(t, fmt.Sprintf("vm-%d", len(lines)+i), vm.ID)
			}
			lines = append(lines, f.Lines...)
			return nil
		})
		require.NoError(t, err, c.format)
		require.Equal(t, 25, n)
		require.Equal(t, []int{10, 10, 5}, sizes, c.format)
		for i, l := range lines {
			require.Equal(t, c.line(i), l, "%s row %d", c.format, i)
		}
	}
	// A site that is not known, on the 13th row: the first batch went on, nothing
	// after it does, and the row is listed.
	bad := strings.Replace(csvFile.String(), "vm-12,n,s1", "vm-12,n,s2", 1)
	var sizes []int
	_, err := Scan(strings.NewReader(bad), Inventory, CSV, Options{Batch: 10, Sites: []string{"s1"}, Tiers: []string{"gold"}},
		func(f File) error { sizes = append(sizes, f.Len()); return nil })
	require.Equal(t, []string{`line 14: site: "s2" is not a known site (known: s1)`}, lines(t, err))
	require.Equal(t, []int{10}, sizes, "nothing is handed on after a bad row")
}

// A file with very many bad rows lists the first MaxListed and stops reading there,
// so that its answer stays small.
func TestScanListsAtMostMaxListedBadRows(t *testing.T) {
	var f strings.Builder
	f.WriteString("id,name,site,cpu_cores,ram_bytes,storage_bytes,sla_tier\n")
	for i := range 3 * MaxListed {
		fmt.Fprintf(&f, "vm-%d,n,s1,0,1,1,gold\n", i)
	}
	n, err := Scan(strings.NewReader(f.String()), Inventory, CSV, Options{}, nil)
	var bad Errors
	require.ErrorAs(t, err, &bad)
	require.Len(t, bad, MaxListed+1)
	require.Equal(t, MaxListed, n, "reading stopped at the limit")
	require.Equal(t, RowError{Line: MaxListed + 1, Column: "file", Reason: "1000 bad rows already; reading stopped here"}, bad[MaxListed])
}
