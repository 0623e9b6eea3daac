package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store/storetest"
)

// A wave's planned migrations of inventory VMs come back page by page, by ID, with
// the wave they were planned in; those of VMs given only by size are not migrations
// a wave can start.
func TestWaveMigrationsPageThroughAWave(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	_, err := s.Pool.Exec(ctx, `INSERT INTO sites (id, name, region, uplink_bytes_per_sec) VALUES ('ams1', 'Amsterdam', 'eu', 1e9)`)
	require.NoError(t, err)
	start := time.Now().UTC().Truncate(time.Second).Add(time.Hour)
	var vms []planning.VM
	for _, id := range []string{"vm-3", "vm-1", "vm-2"} {
		vms = append(vms, planning.VM{ID: id, Site: "ams1", DiskBytes: 1 << 20, SLATier: "gold"})
	}
	batch := planning.PlannedBatch("w1", vms, []planning.VMSpec{{Site: "ams1", DiskBytes: 1 << 20}}, "", start, start.Add(time.Hour))
	other := planning.PlannedBatch("w2", vms[:1], nil, "", start, start.Add(time.Hour))
	require.NoError(t, s.SavePlanned(ctx, "default", append(batch, other...), start.Add(-time.Hour)))

	page, err := s.WaveMigrations(ctx, "w1", "", 2)
	require.NoError(t, err)
	require.Len(t, page, 2)
	require.Equal(t, []string{"w1-vm-1", "w1-vm-2"}, []string{page[0].ID, page[1].ID}, "by ID")
	require.Equal(t, planning.PlannedMigration{ID: "w1-vm-1", VMID: "vm-1", Site: "ams1", Bytes: 1 << 20, SLATier: "gold",
		EarliestStart: start, Deadline: start.Add(time.Hour), Wave: "w1"}, page[0])
	page, err = s.WaveMigrations(ctx, "w1", page[1].ID, 2)
	require.NoError(t, err)
	require.Len(t, page, 1, "the VM given by size is not a migration to start")
	require.Equal(t, "w1-vm-3", page[0].ID)
	page, err = s.WaveMigrations(ctx, "w1", "w1-vm-3", 2)
	require.NoError(t, err)
	require.Empty(t, page)
}
