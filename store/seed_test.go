package store_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/demo"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/store/storetest"
)

var seedNow = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func demoData(t *testing.T) planning.SeedData {
	t.Helper()
	d, err := demo.Generate(demo.Params{Now: seedNow, Seed: 1, VMs: 600, DisksDir: "/disks"}, demo.FlatShape())
	require.NoError(t, err)
	return d
}

// counts returns the rows of each table that the seed writes.
func counts(t *testing.T, s *store.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"sites", "sla_tiers", "vms", "migrations", "system_events"} {
		var n int
		require.NoError(t, s.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
		out[table] = n
	}
	return out
}

func TestSeedWritesTheWholeDataSetOnce(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	d := demoData(t)

	empty, err := s.IsEmpty(ctx)
	require.NoError(t, err)
	require.True(t, empty)

	require.NoError(t, s.Seed(ctx, d))
	empty, err = s.IsEmpty(ctx)
	require.NoError(t, err)
	require.False(t, empty)
	want := map[string]int{"sites": len(d.Sites), "sla_tiers": len(d.Tiers), "vms": len(d.VMs),
		"migrations": len(d.History), "system_events": len(d.Events)}
	require.Equal(t, want, counts(t, s))

	// The rows read back through the queries the rest of PMO uses.
	sites, err := s.Sites(ctx)
	require.NoError(t, err)
	require.Equal(t, d.Sites, sites)
	tiers, err := s.SLATiers(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, d.Tiers, tiers)
	vm, err := s.VM(ctx, d.VMs[0].ID)
	require.NoError(t, err)
	wantVM := d.VMs[0].VM
	wantVM.Sources = d.Sites[0].Sources // the VM comes with its site's sources
	require.Equal(t, wantVM, vm)
	smallest, err := s.SmallestVMs(ctx, 5)
	require.NoError(t, err)
	require.Len(t, smallest, 5)
	for i, v := range smallest {
		want, err := s.VM(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, want, v)
		if i > 0 {
			require.LessOrEqual(t, smallest[i-1].DiskBytes, v.DiskBytes)
		}
	}
	for _, v := range d.VMs {
		require.GreaterOrEqual(t, v.DiskBytes, smallest[0].DiskBytes, "nothing is smaller than the first")
	}
	var cores int
	var storage int64
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT cpu_cores, storage_bytes FROM vms WHERE id = $1`, vm.ID).Scan(&cores, &storage))
	require.Equal(t, d.VMs[0].CPUCores, cores)
	require.Equal(t, d.VMs[0].StorageBytes, storage)

	h := d.History[len(d.History)/2]
	m, err := s.MigrationByID(ctx, h.ID)
	require.NoError(t, err)
	require.True(t, h.StartedAt.Equal(m.StartedAt) && h.EndedAt.Equal(m.EndedAt), "times survive the round trip")
	m.StartedAt, m.EndedAt = h.StartedAt, h.EndedAt
	require.Equal(t, h, m)

	arrivals, _, err := s.HourlyHistory(ctx, []string{"ams1", "fra1", "lon1"}, seedNow.Add(-demo.HistoryDays*24*time.Hour), demo.HistoryDays*24)
	require.NoError(t, err)
	var total float64
	for _, series := range arrivals {
		for _, n := range series {
			total += n
		}
	}
	require.Equal(t, float64(len(d.History)), total, "the forecast sees every history row in its four weeks")

	events, err := s.Events(ctx, seedNow, seedNow.Add(48*time.Hour))
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, "fra1", events[0].Site)
	require.NoError(t, s.InsertEvent(ctx, d.Events[0].Key, d.Events[0].Event), "the event's key is taken")
	require.Equal(t, want, counts(t, s), "so inserting it again adds nothing")

	// A second seed is refused and writes nothing.
	other, err := demo.Generate(demo.Params{Now: seedNow, Seed: 2, VMs: 10, DisksDir: "/elsewhere"}, demo.FlatShape())
	require.NoError(t, err)
	require.ErrorIs(t, s.Seed(ctx, other), store.ErrNotEmpty)
	require.Equal(t, want, counts(t, s))
}

func TestSeedThatFailsWritesNothing(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	d := demoData(t)
	// The last row breaks a constraint after sites, tiers and VMs have been copied.
	d.History[len(d.History)-1].Outcome = "exploded"
	require.Error(t, s.Seed(ctx, d))

	empty, err := s.IsEmpty(ctx)
	require.NoError(t, err)
	require.True(t, empty)
	require.Equal(t, map[string]int{"sites": 0, "sla_tiers": 0, "vms": 0, "migrations": 0, "system_events": 0}, counts(t, s))

	d.History[len(d.History)-1].Outcome = "succeeded"
	require.NoError(t, s.Seed(ctx, d), "a good seed still goes in afterwards")
}

func TestSeedersRacingWriteOnce(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	d := demoData(t)
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- s.Seed(ctx, d) }()
	}
	a, b := <-errs, <-errs
	if a != nil {
		a, b = b, a
	}
	require.NoError(t, a, "one seeder wins")
	require.ErrorIs(t, b, store.ErrNotEmpty, "the other finds the database seeded")
	var n int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM vms`).Scan(&n))
	require.Equal(t, len(d.VMs), n)
}

// TestTheImportFormatsCarryEverythingTheSeedWrites writes the demo data set as files
// in the documented import columns, imports them into one database and seeds another:
// the two hold the same sites, tiers, VMs and history.
func TestTheImportFormatsCarryEverythingTheSeedWrites(t *testing.T) {
	ctx := context.Background()
	d := demoData(t)
	seeded, imported := storetest.New(t), storetest.New(t)
	require.NoError(t, seeded.Seed(ctx, d))

	num := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	files := []struct {
		kind imports.Kind
		rows [][]string
	}{{imports.Sites, [][]string{{"id", "name", "region", "uplink_bytes_per_sec", "sources"}}},
		{imports.SLAs, [][]string{{"name", "max_transfer_seconds", "max_downtime_seconds", "plan_quantile"}}},
		{imports.Inventory, [][]string{{"id", "name", "site", "cpu_cores", "ram_bytes", "storage_bytes", "network_bytes_per_sec",
			"disk_change_bytes_per_sec", "sla_tier", "disk_uri", "disk_bytes"}}},
		{imports.History, [][]string{{"id", "vm_id", "site", "connector_id", "sla_tier", "bytes", "started_at", "ended_at",
			"avg_bytes_per_sec", "outcome", "downtime_seconds", "detail", "connector_bandwidth_bytes_per_sec", "planned"}}},
	}
	for _, x := range d.Sites {
		files[0].rows = append(files[0].rows, []string{x.ID, x.Name, x.Region, num(x.UplinkBytesSec), strings.Join(x.Sources, " ")})
	}
	for _, x := range d.Tiers {
		files[1].rows = append(files[1].rows, []string{x.Name, fmt.Sprint(x.MaxTransfer.Seconds()), fmt.Sprint(x.MaxDowntime.Seconds()), num(x.PlanQuantile)})
	}
	for _, v := range d.VMs {
		files[2].rows = append(files[2].rows, []string{v.ID, v.Name, v.Site, fmt.Sprint(v.CPUCores), fmt.Sprint(v.RAMBytes), fmt.Sprint(v.StorageBytes),
			num(v.NetworkBytesSec), num(v.DiskChangeBytesSec), v.SLATier, v.DiskURI, fmt.Sprint(v.DiskBytes)})
	}
	for _, m := range d.History {
		files[3].rows = append(files[3].rows, []string{m.ID, m.VMID, m.Site, m.ConnectorID, m.SLATier, fmt.Sprint(m.Bytes),
			m.StartedAt.Format(time.RFC3339Nano), m.EndedAt.Format(time.RFC3339Nano), num(m.AvgBytesSec), m.Outcome,
			num(m.DowntimeSeconds), m.Detail, num(m.ConnectorBandwidthBytesSec), fmt.Sprint(m.Planned)})
	}
	for _, f := range files {
		var buf bytes.Buffer
		require.NoError(t, csv.NewWriter(&buf).WriteAll(f.rows))
		file, err := imports.Read(&buf, f.kind, imports.CSV, imports.Defaults{})
		require.NoError(t, err)
		got, err := imported.Import(ctx, file.Source(), nil)
		require.NoError(t, err)
		require.Equal(t, len(f.rows)-1, got.Inserted, f.kind)
	}

	for _, table := range []string{"sites", "sla_tiers", "vms", "migrations"} {
		dump := func(s *store.Store) []string {
			rows, err := s.Pool.Query(ctx, fmt.Sprintf(`SELECT t::text FROM %s t ORDER BY 1`, table))
			require.NoError(t, err)
			out, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			return out
		}
		require.Equal(t, dump(seeded), dump(imported), table)
	}
}
