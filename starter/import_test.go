package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/store/storetest"
)

func TestImportEachKindTwiceChangesNothingTheSecondTime(t *testing.T) {
	url := storetest.NewDatabase(t)
	s := storetest.Open(t, url)
	cfg := config.Config{DatabaseURL: url}
	run := func(args ...string) error {
		return importCommand(&cfg).ParseAndRun(context.Background(), args)
	}
	count := func(table string) int {
		var n int
		require.NoError(t, s.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
		return n
	}

	// An inventory names sites and tiers, which come first.
	inventory := "../imports/testdata/rvtools-vinfo.csv"
	require.EqualError(t, run("inventory", "-tier", "bronze", inventory), inventory+": 6 bad rows; nothing imported")
	for _, args := range [][]string{
		{"sites", "../imports/testdata/sites.csv"},
		{"slas", "../imports/testdata/slas.json"},
		{"inventory", "-tier", "bronze", inventory},
		{"history", "../imports/testdata/history.csv"},
	} {
		require.NoError(t, run(args...))
		require.NoError(t, run(args...))
	}
	require.Equal(t, []int{2, 3, 3, 4}, []int{count("sites"), count("sla_tiers"), count("vms"), count("migrations")})

	// Without the default tier the third VM has none, and nothing more is written. A
	// malformed file lists its bad rows; the ID it repeats is not among them, since
	// repeats are found as a file is written, once it reads cleanly.
	require.EqualError(t, run("inventory", inventory), inventory+": 1 bad row; nothing imported")
	require.EqualError(t, run("inventory", "../imports/testdata/malformed.csv"), "../imports/testdata/malformed.csv: 6 bad rows; nothing imported")
	require.EqualError(t, run("history", "../imports/testdata/history-malformed.csv"), "../imports/testdata/history-malformed.csv: 9 bad rows; nothing imported")
	require.Equal(t, 4, count("migrations"))
	require.Error(t, run("sites", "-tier", "gold", "../imports/testdata/sites.csv"), "only an inventory takes defaults")

	txt := filepath.Join(t.TempDir(), "vms.txt")
	require.NoError(t, os.WriteFile(txt, nil, 0o644))
	require.EqualError(t, run("inventory", txt), `-format: want csv or json, got "txt"`)
}

func TestALargeImportShowsItsProgress(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	for _, f := range []struct {
		kind imports.Kind
		body string
	}{
		{imports.Sites, "id,name,region,uplink_bytes_per_sec\nams1,Amsterdam,eu,1e9\n"},
		{imports.SLAs, "name,max_transfer_seconds,max_downtime_seconds\ngold,600,60\n"},
	} {
		_, _, err := importFile(ctx, s, strings.NewReader(f.body), int64(len(f.body)), f.kind, imports.CSV, imports.Defaults{}, nil)
		require.NoError(t, err)
	}
	var file bytes.Buffer
	file.WriteString("id,vm_id,site,sla_tier,bytes,started_at,ended_at,outcome\n")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const rows = 10_000
	for i := range rows {
		at := start.Add(time.Duration(i) * time.Minute)
		fmt.Fprintf(&file, "m-%d,vm-%d,ams1,gold,%d,%s,%s,succeeded\n", i, i%50, 1<<30, at.Format(time.RFC3339), at.Add(time.Minute).Format(time.RFC3339))
	}
	var progress bytes.Buffer
	require.Greater(t, file.Len(), barBytes, "a file large enough for a bar")
	counts, _, err := importFile(ctx, s, &file, int64(file.Len()), imports.History, imports.CSV, imports.Defaults{}, &progress)
	require.NoError(t, err)
	require.Equal(t, imports.Counts{Rows: rows, Inserted: rows}, counts)
	require.Contains(t, progress.String(), "importing history")
}

// A 100,000-row inventory file on disk imports whole through the command; again, it
// changes nothing; with one bad row in the middle, nothing of it is written.
func TestA100000RowInventoryImportsWholeOrNotAtAll(t *testing.T) {
	url := storetest.NewDatabase(t)
	s := storetest.Open(t, url)
	cfg := config.Config{DatabaseURL: url}
	run := func(args ...string) error { return importCommand(&cfg).ParseAndRun(context.Background(), args) }
	require.NoError(t, run("sites", "../imports/testdata/sites.csv"))
	require.NoError(t, run("slas", "../imports/testdata/slas.json"))
	var sites []string
	rows, err := s.Pool.Query(context.Background(), "SELECT id FROM sites ORDER BY id")
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		sites = append(sites, id)
	}
	require.NoError(t, rows.Err())

	write := func(name string, badLine int) string {
		var file bytes.Buffer
		file.WriteString("VM,VM UUID,CPUs,Memory,Provisioned MiB,Datacenter,SLA Tier\n")
		for i := range 100_000 {
			cpus := fmt.Sprint(1 + i%16)
			if i+2 == badLine {
				cpus = "many"
			}
			fmt.Fprintf(&file, "host-%06d,4210%04x-0000-4000-8000-%012d,%s,\"%d\",%d.5,%s,gold\n", i, i%65536, i, cpus, 1024*(1+i%64), 10240+i%500, sites[i%len(sites)])
		}
		path := filepath.Join(t.TempDir(), name)
		require.NoError(t, os.WriteFile(path, file.Bytes(), 0o644))
		return path
	}
	count := func() int {
		var n int
		require.NoError(t, s.Pool.QueryRow(context.Background(), "SELECT count(*) FROM vms").Scan(&n))
		return n
	}

	good := write("vinfo.csv", 0)
	require.NoError(t, run("inventory", good))
	require.Equal(t, 100_000, count())
	require.NoError(t, run("inventory", good))
	require.Equal(t, 100_000, count())

	bad := write("vinfo-bad.csv", 50_001)
	require.EqualError(t, run("inventory", "-tier", "gold", bad), bad+": 1 bad row; nothing imported")
	var cores int
	require.NoError(t, s.Pool.QueryRow(context.Background(), "SELECT cpu_cores FROM vms WHERE name = 'host-049999'").Scan(&cores))
	require.Equal(t, 1+49_999%16, cores, "the good file's row is untouched")
}
