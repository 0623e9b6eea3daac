package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/contract"
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

	page, err := s.WaveMigrations(ctx, "w1", "", "", 2, false)
	require.NoError(t, err)
	require.Len(t, page, 2)
	require.Equal(t, []string{"w1-vm-1", "w1-vm-2"}, []string{page[0].ID, page[1].ID}, "by ID")
	require.Equal(t, planning.PlannedMigration{ID: "w1-vm-1", VMID: "vm-1", Site: "ams1", Bytes: 1 << 20, SLATier: "gold",
		EarliestStart: start, Deadline: start.Add(time.Hour), Wave: "w1"}, page[0])
	page, err = s.WaveMigrations(ctx, "w1", page[1].ID, "", 2, false)
	require.NoError(t, err)
	require.Len(t, page, 1, "the VM given by size is not a migration to start")
	require.Equal(t, "w1-vm-3", page[0].ID)
	page, err = s.WaveMigrations(ctx, "w1", "w1-vm-3", "", 2, false)
	require.NoError(t, err)
	require.Empty(t, page)
}

// A wave splits into batches by ID; a retry pass finds only the planned migrations
// whose every try failed; the report counts each planned migration by its last try,
// names the connectors that served the wave and the failures, and is kept.
func TestAWaveSplitsIntoBatchesRetriesItsFailuresAndReportsItsEnd(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	_, err := s.Pool.Exec(ctx, `INSERT INTO sites (id, name, region, uplink_bytes_per_sec) VALUES ('ams1', 'Amsterdam', 'eu', 1e9)`)
	require.NoError(t, err)
	_, err = s.Pool.Exec(ctx, `INSERT INTO sla_tiers (name, max_transfer_seconds, max_downtime_seconds) VALUES ('gold', 3600, 60)`)
	require.NoError(t, err)
	start := time.Now().UTC().Truncate(time.Second).Add(-2 * time.Hour)
	var vms []planning.VM
	for _, id := range []string{"vm-1", "vm-2", "vm-3", "vm-4", "vm-5"} {
		vms = append(vms, planning.VM{ID: id, Site: "ams1", DiskBytes: 1 << 20, SLATier: "gold"})
	}
	require.NoError(t, s.SavePlanned(ctx, "default", planning.PlannedBatch("w1", vms, nil, "", start, start.Add(time.Hour)), start))
	require.NoError(t, s.SavePlanned(ctx, "default", planning.PlannedBatch("w2", vms[1:2], nil, "", start, start.Add(time.Hour)), start))

	b, err := s.WaveBatches(ctx, contract.WaveBatchesInput{Wave: "w1", Size: 2})
	require.NoError(t, err)
	require.Equal(t, contract.WaveBatches{Bounds: []string{"w1-vm-2", "w1-vm-4", ""}, Count: 5, Bytes: 5 << 20,
		EarliestStart: start, Deadline: start.Add(time.Hour)}, b)
	page, err := s.WaveMigrations(ctx, "w1", "w1-vm-2", "w1-vm-4", 100, false)
	require.NoError(t, err)
	require.Equal(t, []string{"w1-vm-3", "w1-vm-4"}, plannedIDs(page), "one batch: after its lower bound, up to its own")
	b, err = s.WaveBatches(ctx, contract.WaveBatchesInput{Wave: "w1", Size: 5})
	require.NoError(t, err)
	require.Equal(t, []string{""}, b.Bounds, "a wave of one batch size is one batch")

	try := func(id, vm, connector, outcome, wave string, at time.Time, bytes int64) {
		t.Helper()
		require.NoError(t, s.InsertMigration(ctx, planning.MigrationRecord{ID: id, VMID: vm, Site: "ams1", ConnectorID: connector,
			SLATier: "gold", Bytes: bytes, StartedAt: at, EndedAt: at.Add(time.Minute), Outcome: outcome, Planned: true, Wave: wave,
			Detail: map[bool]string{true: "source unreadable"}[outcome == "failed"]}))
	}
	try("w1-vm-1", "vm-1", "c1", "succeeded", "w1", start, 1<<20)
	try("w1-vm-2", "vm-2", "c1", "failed", "w1", start, 0)
	try("w1-vm-3", "vm-3", "c2", "failed", "w1", start, 0)
	try("w2-vm-2", "vm-2", "c2", "succeeded", "w2", start, 1<<20) // another wave's
	try("w1-vm-4", "vm-4", "none", "cancelled", "w1", start, 0)

	b, err = s.WaveBatches(ctx, contract.WaveBatchesInput{Wave: "w1", Size: 200, Retry: true})
	require.NoError(t, err)
	require.Equal(t, 2, b.Count, "vm-2 and vm-3 failed; another wave's success is not this wave's")
	page, err = s.WaveMigrations(ctx, "w1", "", "", 100, true)
	require.NoError(t, err)
	require.Equal(t, []string{"w1-vm-2", "w1-vm-3"}, plannedIDs(page))

	try("w1-vm-3-r1", "vm-3", "c2", "succeeded", "w1", start.Add(10*time.Minute), 1<<20)
	page, err = s.WaveMigrations(ctx, "w1", "", "", 100, true)
	require.NoError(t, err)
	require.Equal(t, []string{"w1-vm-2"}, plannedIDs(page), "a retry that succeeded is not retried again")

	_, err = s.WaveReport(ctx, "w1")
	require.ErrorIs(t, err, planning.ErrNotFound, "no report before the wave ends")
	ended := start.Add(90 * time.Minute)
	in := contract.WaveReportInput{Wave: "w1", Pool: "default", StartedAt: start, EndedAt: ended, Attempts: 2,
		Controls: []contract.ControlEvent{{At: start.Add(time.Minute), Action: "pause", Who: "ana", Why: "change freeze"}}}
	r, err := s.RecordWaveReport(ctx, in)
	require.NoError(t, err)
	require.Equal(t, contract.WaveReport{Wave: "w1", Pool: "default", StartedAt: start, EndedAt: ended, Attempts: 2, Controls: in.Controls,
		PlannedStart: start, PlannedDeadline: start.Add(time.Hour), LateSeconds: 1800, Planned: 5,
		Outcomes: contract.WaveOutcomes{Succeeded: 2, Failed: 1, Cancelled: 1, NotRun: 1}, Retried: 1, Bytes: 2 << 20,
		Connectors: []contract.WaveConnector{{ID: "c1", Migrations: 2, Bytes: 1 << 20}, {ID: "c2", Migrations: 2, Bytes: 1 << 20}},
		Failures:   []contract.WaveFailure{{ID: "w1-vm-2", VMID: "vm-2", Detail: "source unreadable"}}}, r)
	again, err := s.RecordWaveReport(ctx, in)
	require.NoError(t, err)
	require.Equal(t, r, again, "written again, the same")
	kept, err := s.WaveReport(ctx, "w1")
	require.NoError(t, err)
	require.Equal(t, r.Outcomes, kept.Outcomes)
	require.True(t, kept.EndedAt.Equal(ended))
	_, err = s.WaveReport(ctx, "w2")
	require.ErrorIs(t, err, planning.ErrNotFound, "w2 has not ended")
}

func plannedIDs(ps []planning.PlannedMigration) []string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids
}
