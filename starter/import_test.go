package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store/storetest"
)

func TestImportInventoryTwiceChangesNothingTheSecondTime(t *testing.T) {
	url := storetest.NewDatabase(t)
	s := storetest.Open(t, url)
	_, err := s.Pool.Exec(context.Background(), `
		INSERT INTO sites VALUES ('dc-east', 'East', 'eu', 1e9), ('dc-west', 'West', 'us', 1e9);
		INSERT INTO sla_tiers VALUES ('bronze', 86400, 3600, 0.5), ('gold', 14400, 600, 0.8), ('platinum', 3600, 60, 0.95)`)
	require.NoError(t, err)
	cfg := config.Config{DatabaseURL: url}
	run := func(args ...string) error {
		return importCommand(&cfg).ParseAndRun(context.Background(), append([]string{"inventory"}, args...))
	}

	file := "../imports/testdata/rvtools-vinfo.csv"
	require.NoError(t, run("-tier", "bronze", file))
	require.NoError(t, run("-tier", "bronze", file))
	var n int
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM vms`).Scan(&n))
	require.Equal(t, 3, n)

	// Without the default tier the third VM has none, and nothing more is written.
	require.EqualError(t, run(file), file+": 1 bad row; nothing imported")
	require.EqualError(t, run("../imports/testdata/malformed.csv"), "../imports/testdata/malformed.csv: 7 bad rows; nothing imported")

	txt := filepath.Join(t.TempDir(), "vms.txt")
	require.NoError(t, os.WriteFile(txt, nil, 0o644))
	require.EqualError(t, run(txt), `-format: want csv or json, got "txt"`)
}
