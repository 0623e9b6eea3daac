package imports

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Values out of bounds are row errors that name the line and column, like any other.
func TestValuesOutOfBoundsAreRowErrors(t *testing.T) {
	for _, c := range []struct {
		name, file string
		kind       Kind
		column     string
		reason     string
	}{
		{"time in year 0", "id,vm_id,site,sla_tier,bytes,started_at,ended_at,outcome\nm1,vm-1,a,gold,1,0000-01-01T00:00:00Z,2026-11-02T10:00:00Z,succeeded\n",
			History, "started_at", "must be between 2000-01-01 and 2100-01-01"},
		{"time in 9999", "id,vm_id,site,sla_tier,bytes,started_at,ended_at,outcome\nm1,vm-1,a,gold,1,2026-11-02T10:00:00Z,9999-01-01T00:00:00Z,succeeded\n",
			History, "ended_at", "must be between 2000-01-01 and 2100-01-01"},
		{"tier over a year", "name,max_transfer_seconds,max_downtime_seconds\ngold,9223372036854775807,60\n",
			SLAs, "max_transfer_seconds", "is over 31622400 seconds"},
		{"control character", "id,name,region,uplink_bytes_per_sec\nams\x01,Amsterdam,eu,1e9\n",
			Sites, "id", "must not hold the control character U+0001"},
		// IDs name workflows, task queues and files: a site "ams 1" could never get a
		// connector, so it is a bad row.
		{"site ID with a space", "id,name,region,uplink_bytes_per_sec\nams 1,Amsterdam,eu,1e9\n",
			Sites, "id", "may hold only letters, digits, '-', '_' and '.'"},
		{"pool with a space", "id,name,region,uplink_bytes_per_sec,pool\nams1,Amsterdam,eu,1e9,blue pool\n",
			Sites, "pool", "may hold only letters"},
		{"VM's site with a space", "id,name,site,cpu_cores,ram_bytes,storage_bytes,sla_tier\nvm-1,one,ams 1,1,1,1,gold\n",
			Inventory, "site", "may hold only letters"},
		{"history's VM with a slash", "id,vm_id,site,sla_tier,bytes,started_at,ended_at,outcome\nm1,vm/1,a,gold,1,2026-11-02T09:00:00Z,2026-11-02T10:00:00Z,succeeded\n",
			History, "vm_id", "may hold only letters"},
		{"source in the root folder", "id,name,region,uplink_bytes_per_sec,sources\nams1,Amsterdam,eu,1e9,/srv/disks /\n",
			Sites, "sources", "is the root folder"},
		{"source with a query", "id,name,region,uplink_bytes_per_sec,sources\nams1,Amsterdam,eu,1e9,https://nas/x?sig=1\n",
			Sites, "sources", "no user, query or fragment"},
		{"cell too long", "id,name,region,uplink_bytes_per_sec\nams," + strings.Repeat("x", 2001) + ",eu,1e9\n",
			Sites, "name", "must be at most 2000 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(c.file), c.kind, CSV, Defaults{})
			var rows Errors
			if !errors.As(err, &rows) {
				t.Fatalf("want row errors, got %v", err)
			}
			if rows[0].Line != 2 || rows[0].Column != c.column || !strings.Contains(rows[0].Reason, c.reason) {
				t.Fatalf("got %+v, want line 2, %s: %s", rows, c.column, c.reason)
			}
		})
	}
}

// A site's sources are a list of words in CSV and an array in JSON, both read in
// normal form; a blank cell or a file without the column says nothing (nil), which
// keeps what the site has.
func TestSiteSources(t *testing.T) {
	csv := "id,name,region,uplink_bytes_per_sec,sources\nams1,Amsterdam,eu,1e9,/srv/disks/ams1  https://NAS.example/ams1\nfra1,Frankfurt,eu,1e9,\n"
	f, err := Read(strings.NewReader(csv), Sites, CSV, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/srv/disks/ams1/", "https://nas.example/ams1/"}
	if got := f.Sites[0].Sources; !slices.Equal(got, want) {
		t.Fatalf("csv: got %q, want %q", got, want)
	}
	if f.Sites[1].Sources != nil {
		t.Fatalf("a blank cell keeps the site's list, got %q", f.Sites[1].Sources)
	}
	js := `[{"id":"ams1","name":"Amsterdam","region":"eu","uplink_bytes_per_sec":1e9,"sources":["/srv/disks/ams1","https://nas.example/ams1/"]},
	{"id":"fra1","name":"Frankfurt","region":"eu","uplink_bytes_per_sec":1e9}]`
	f, err = Read(strings.NewReader(js), Sites, JSON, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Sites[0].Sources; !slices.Equal(got, want) {
		t.Fatalf("json: got %q, want %q", got, want)
	}
	if f.Sites[1].Sources != nil {
		t.Fatalf("a row without sources keeps the site's list, got %q", f.Sites[1].Sources)
	}
}
