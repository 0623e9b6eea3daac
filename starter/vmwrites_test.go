package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store/storetest"
)

func TestVMWritesChangesTheDiskInPlace(t *testing.T) {
	url := storetest.NewDatabase(t)
	s := storetest.Open(t, url)
	disk := filepath.Join(t.TempDir(), "vm-1.img")
	before := bytes.Repeat([]byte{0}, 256<<10)
	require.NoError(t, os.WriteFile(disk, before, 0o644))
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO sites VALUES ('ams1', 'Amsterdam', 'eu-west', 1e9)`,
		`INSERT INTO sla_tiers VALUES ('gold', 120, 10, 0.9)`,
		`INSERT INTO vms VALUES ('vm-1', 'db', 'ams1', 2, 1, 1, 0, 0, 'gold', '` + disk + `', 262144)`,
	} {
		_, err := s.Pool.Exec(ctx, q)
		require.NoError(t, err)
	}
	cfg := config.Config{DatabaseURL: url}
	require.NoError(t, vmWritesCommand(&cfg).ParseAndRun(ctx, []string{"-vm", "vm-1", "-blocks", "2", "-every", "10ms", "-for", "30ms"}))
	after, err := os.ReadFile(disk)
	require.NoError(t, err)
	require.Len(t, after, len(before), "a disk does not change size")
	require.False(t, bytes.Equal(before, after), "the VM wrote")

	err = vmWritesCommand(&cfg).ParseAndRun(ctx, []string{"-vm", "vm-none"})
	require.ErrorContains(t, err, "-vm: vm-none")
}
