package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/store/storetest"
)

// addConnector records a site and a warming connector the way the fleet would.
func addConnector(t *testing.T, s *store.Store, id string) {
	t.Helper()
	ctx := context.Background()
	_, err := s.Pool.Exec(ctx, `INSERT INTO sites (id, name, region, uplink_bytes_per_sec) VALUES ('ams1', 'Amsterdam', 'eu', 1e9) ON CONFLICT DO NOTHING`)
	require.NoError(t, err)
	_, err = s.Pool.Exec(ctx, `INSERT INTO connectors (id, pool, site_id, state, cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, task_queue)
		VALUES ($1, 'default', 'ams1', 'warming', 1000, 1, 1, 1, 'q')`, id)
	require.NoError(t, err)
}

func TestMarkConnectorReadyKeepsTheFirstTime(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	require.ErrorIs(t, s.MarkConnectorReady(ctx, "c1"), store.ErrUnknownConnector)

	addConnector(t, s, "c1")
	require.NoError(t, s.MarkConnectorReady(ctx, "c1"))
	var first time.Time
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT ready_at FROM connectors WHERE id = 'c1'`).Scan(&first))

	time.Sleep(10 * time.Millisecond)
	require.NoError(t, s.MarkConnectorReady(ctx, "c1"), "an already ready connector is known")
	var second time.Time
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT ready_at FROM connectors WHERE id = 'c1'`).Scan(&second))
	require.True(t, first.Equal(second), "readiness moved from %s to %s", first, second)
}

func TestInsertConnectorMetric(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Microsecond)
	free, latency := int64(5<<30), 0.0125
	m := store.ConnectorMetric{ConnectorID: "c1", At: at, CPUPercent: 12.5, RAMBytes: 1 << 20,
		BandwidthUsedBytesSec: 4096, ActiveTasks: 2, BytesMoved: 1 << 30,
		StorageUsedBytes: 3 << 20, TargetFreeBytes: &free, ReadLatencySeconds: &latency}
	require.ErrorIs(t, s.InsertConnectorMetric(ctx, m), store.ErrUnknownConnector, "the FK violation is reported as an unknown connector")

	addConnector(t, s, "c1")
	require.NoError(t, s.InsertConnectorMetric(ctx, m))
	dup := m
	dup.ActiveTasks = 7
	require.NoError(t, s.InsertConnectorMetric(ctx, dup), "a repeated sample is ignored, not an error")

	var n, tasks int
	var cpu, bw float64
	var ram, moved int64
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*), max(active_tasks), max(cpu_percent), max(ram_bytes), max(bandwidth_used_bytes_per_sec), max(bytes_moved)
		FROM connector_metrics WHERE connector_id = 'c1'`).Scan(&n, &tasks, &cpu, &ram, &bw, &moved))
	require.Equal(t, 1, n)
	require.Equal(t, 2, tasks)
	require.Equal(t, 12.5, cpu)
	require.Equal(t, int64(1<<20), ram)
	require.Equal(t, 4096.0, bw)
	require.Equal(t, int64(1<<30), moved)

	var storage int64
	var gotFree *int64
	var gotLatency *float64
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT storage_used_bytes, target_free_bytes, read_latency_seconds
		FROM connector_metrics WHERE connector_id = 'c1'`).Scan(&storage, &gotFree, &gotLatency))
	require.Equal(t, int64(3<<20), storage)
	require.Equal(t, &free, gotFree)
	require.Equal(t, &latency, gotLatency)

	// Not measured is NULL, not a zero that would mean a full disk or instant reads.
	m.At = at.Add(time.Second)
	m.TargetFreeBytes, m.ReadLatencySeconds = nil, nil
	require.NoError(t, s.InsertConnectorMetric(ctx, m))
	var nulls int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM connector_metrics
		WHERE connector_id = 'c1' AND at = $1 AND target_free_bytes IS NULL AND read_latency_seconds IS NULL`, m.At).Scan(&nulls))
	require.Equal(t, 1, nulls)
}

func TestConnectorHealthReadsTheLatestMeasures(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	addConnector(t, s, "c1")
	at := time.Now().UTC().Truncate(time.Microsecond)
	free, latency := int64(7<<30), 0.004
	older := store.ConnectorMetric{ConnectorID: "c1", At: at, CPUPercent: 40, RAMBytes: 1 << 20, ActiveTasks: 1,
		StorageUsedBytes: 1 << 20, TargetFreeBytes: &free, ReadLatencySeconds: &latency}
	require.NoError(t, s.InsertConnectorMetric(ctx, older))

	got, err := s.ConnectorHealth(ctx, []string{"c1", "nobody"})
	require.NoError(t, err)
	require.Equal(t, planning.Usage{At: at, CPUPercent: 40, RAMBytes: 1 << 20, ActiveTasks: 1,
		StorageUsedBytes: 1 << 20, TargetFreeBytes: 7 << 30, ReadLatencySeconds: 0.004}, got[0].Usage)
	require.Equal(t, "nobody", got[1].ID)
	require.Zero(t, got[1].Usage, "no connector, no usage")

	// The newest sample wins, and what it did not measure reads as zero.
	newer := store.ConnectorMetric{ConnectorID: "c1", At: at.Add(2 * time.Second), RAMBytes: 1 << 20, StorageUsedBytes: 2 << 20}
	require.NoError(t, s.InsertConnectorMetric(ctx, newer))
	got, err = s.ConnectorHealth(ctx, []string{"c1"})
	require.NoError(t, err)
	require.Equal(t, planning.Usage{At: at.Add(2 * time.Second), RAMBytes: 1 << 20, StorageUsedBytes: 2 << 20}, got[0].Usage)
}

func TestInsertMigrationKeepsItsConnectorsBandwidth(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	addConnector(t, s, "c1") // bandwidth 1 B/s
	_, err := s.Pool.Exec(ctx, `INSERT INTO sla_tiers (name, max_transfer_seconds, max_downtime_seconds) VALUES ('gold', 60, 10)`)
	require.NoError(t, err)
	at := time.Now().UTC().Truncate(time.Second)
	m := planning.MigrationRecord{ID: "m1", VMID: "vm1", Site: "ams1", ConnectorID: "c1", SLATier: "gold", Bytes: 10,
		StartedAt: at, EndedAt: at.Add(10 * time.Second), AvgBytesSec: 1, Outcome: "succeeded"}
	require.NoError(t, s.InsertMigration(ctx, m))
	got, err := s.MigrationByID(ctx, "m1")
	require.NoError(t, err)
	require.Equal(t, 1.0, got.ConnectorBandwidthBytesSec, "taken from the connector's record")

	m.ID, m.ConnectorID, m.ConnectorBandwidthBytesSec = "m2", "gone", 4096
	require.NoError(t, s.InsertMigration(ctx, m))
	got, err = s.MigrationByID(ctx, "m2")
	require.NoError(t, err)
	require.Equal(t, 4096.0, got.ConnectorBandwidthBytesSec, "the record's own value wins")

	m.ID, m.ConnectorBandwidthBytesSec = "m3", 0
	require.NoError(t, s.InsertMigration(ctx, m))
	got, err = s.MigrationByID(ctx, "m3")
	require.NoError(t, err)
	require.Zero(t, got.ConnectorBandwidthBytesSec, "unknown stays unknown")
}
