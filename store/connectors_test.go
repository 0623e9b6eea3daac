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

// insertMetric stores one sample of connector c1.
func insertMetric(t *testing.T, s *store.Store, m planning.MetricSample) {
	t.Helper()
	_, err := s.InsertConnectorMetrics(context.Background(), "c1", []planning.MetricSample{m})
	require.NoError(t, err)
}

func TestInsertConnectorMetrics(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Microsecond)
	free, latency, throttled := int64(5<<30), 0.0125, 42.5
	m := planning.MetricSample{At: at, CPUPercent: 12.5, RAMBytes: 1 << 20,
		BandwidthUsedBytesSec: 4096, ActiveTasks: 2, BytesMoved: 1 << 30,
		StorageUsedBytes: 3 << 20, TargetFreeBytes: &free, ReadLatencySeconds: &latency, CPUThrottledPercent: &throttled}
	_, err := s.InsertConnectorMetrics(ctx, "c1", []planning.MetricSample{m})
	require.ErrorIs(t, err, store.ErrUnknownConnector, "the FK violation is reported as an unknown connector")

	addConnector(t, s, "c1")
	insertMetric(t, s, m)
	dup := m
	dup.ActiveTasks = 7
	n0, err := s.InsertConnectorMetrics(ctx, "c1", []planning.MetricSample{dup})
	require.NoError(t, err, "a repeated sample is ignored, not an error")
	require.Zero(t, n0)

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
	var gotLatency, gotThrottled *float64
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT storage_used_bytes, target_free_bytes, read_latency_seconds, cpu_throttled_percent
		FROM connector_metrics WHERE connector_id = 'c1'`).Scan(&storage, &gotFree, &gotLatency, &gotThrottled))
	require.Equal(t, int64(3<<20), storage)
	require.Equal(t, &free, gotFree)
	require.Equal(t, &latency, gotLatency)
	require.Equal(t, &throttled, gotThrottled)

	// Not measured is NULL, not a zero that would mean a full disk, instant reads or
	// a CPU limit that never bit.
	m.At = at.Add(time.Second)
	m.TargetFreeBytes, m.ReadLatencySeconds, m.CPUThrottledPercent = nil, nil, nil
	insertMetric(t, s, m)
	var nulls int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM connector_metrics
		WHERE connector_id = 'c1' AND at = $1 AND target_free_bytes IS NULL AND read_latency_seconds IS NULL
			AND cpu_throttled_percent IS NULL`, m.At).Scan(&nulls))
	require.Equal(t, 1, nulls)
}

func TestConnectorHealthReadsTheLatestMeasures(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	addConnector(t, s, "c1")
	at := time.Now().UTC().Truncate(time.Microsecond)
	free, latency, throttled := int64(7<<30), 0.004, 30.0
	older := planning.MetricSample{At: at, CPUPercent: 40, RAMBytes: 1 << 20, ActiveTasks: 1,
		StorageUsedBytes: 1 << 20, TargetFreeBytes: &free, ReadLatencySeconds: &latency, CPUThrottledPercent: &throttled}
	insertMetric(t, s, older)

	got, err := s.ConnectorHealth(ctx, []string{"c1", "nobody"})
	require.NoError(t, err)
	require.Equal(t, planning.Usage{At: at, CPUPercent: 40, RAMBytes: 1 << 20, ActiveTasks: 1,
		StorageUsedBytes: 1 << 20, TargetFreeBytes: 7 << 30, ReadLatencySeconds: 0.004, CPUThrottledPercent: 30}, got[0].Usage)
	require.Equal(t, "nobody", got[1].ID)
	require.Zero(t, got[1].Usage, "no connector, no usage")

	// The newest sample wins, and what it did not measure reads as zero.
	insertMetric(t, s, planning.MetricSample{At: at.Add(2 * time.Second), RAMBytes: 1 << 20, StorageUsedBytes: 2 << 20})
	got, err = s.ConnectorHealth(ctx, []string{"c1"})
	require.NoError(t, err)
	require.Equal(t, planning.Usage{At: at.Add(2 * time.Second), RAMBytes: 1 << 20, StorageUsedBytes: 2 << 20}, got[0].Usage)
}

func TestInsertConnectorMetricsWritesABatchOnceAndAllOrNothing(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	addConnector(t, s, "c1")
	at := time.Now().UTC().Truncate(time.Second)
	batch := []planning.MetricSample{{At: at, CPUPercent: 1}, {At: at.Add(time.Second), CPUPercent: 2}, {At: at.Add(2 * time.Second), CPUPercent: 3}}
	n, err := s.InsertConnectorMetrics(ctx, "c1", batch)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)

	// A retry of the same batch with one more sample adds only that one.
	n, err = s.InsertConnectorMetrics(ctx, "c1", append(batch, planning.MetricSample{At: at.Add(3 * time.Second)}))
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the repeated samples are ignored")

	// A bad sample rejects the batch: none of it is written.
	_, err = s.InsertConnectorMetrics(ctx, "c1", []planning.MetricSample{{At: at.Add(10 * time.Second)}, {At: at.Add(11 * time.Second), CPUPercent: -1}})
	require.Error(t, err)
	var count int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM connector_metrics WHERE connector_id = 'c1'`).Scan(&count))
	require.Equal(t, 4, count)
}

func TestExternalConnectorIsRecordedWithoutAProcess(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	addConnector(t, s, "pmo-own") // makes the site
	c := planning.Connector{ID: "appliance-1", Site: "ams1", State: planning.StateUnhealthy, Size: planning.Sizes[1],
		TaskQueue: "pmo.connector.appliance-1", CreatedAt: time.Now().UTC(), External: true}
	require.NoError(t, s.UpsertConnector(ctx, "default", c))
	var external bool
	var state string
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT external, state FROM connectors WHERE id = 'appliance-1'`).Scan(&external, &state))
	require.True(t, external)
	require.Equal(t, "unhealthy", state, "the schema knows the state")
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT external FROM connectors WHERE id = 'pmo-own'`).Scan(&external))
	require.False(t, external, "PMO's own connectors are not external")

	// No process of PMO's runs it.
	require.Error(t, s.SetConnectorPID(ctx, "appliance-1", 1234))

	c.State = planning.StateStopped
	require.NoError(t, s.UpsertConnector(ctx, "default", c))
	var stopped *time.Time
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT stopped_at FROM connectors WHERE id = 'appliance-1'`).Scan(&stopped))
	require.NotNil(t, stopped, "deregistered")
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

// An external connector's post is stored with the time it was seen, which the fleet's
// Collect reads; a connector that left, or one PMO started, is refused, and nothing of
// the post is written.
func TestRecordExternalMetrics(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	addConnector(t, s, "ext")
	addConnector(t, s, "own")
	addConnector(t, s, "gone")
	_, err := s.Pool.Exec(ctx, `UPDATE connectors SET external = true, pid = NULL, state = 'unhealthy' WHERE id IN ('ext', 'gone')`)
	require.NoError(t, err)
	_, err = s.Pool.Exec(ctx, `UPDATE connectors SET state = 'stopped' WHERE id = 'gone'`)
	require.NoError(t, err)
	sample := []planning.MetricSample{{At: time.Now().UTC().Truncate(time.Microsecond), CPUPercent: 3}}

	before := time.Now()
	r, err := s.RecordExternalMetrics(ctx, "ext", sample)
	require.NoError(t, err)
	require.Equal(t, int64(1), r.Stored)
	require.Equal(t, planning.StateUnhealthy, r.State, "the state the fleet last recorded")
	require.WithinDuration(t, before, r.LastSeen, 5*time.Second)
	again, err := s.RecordExternalMetrics(ctx, "ext", sample)
	require.NoError(t, err)
	require.Zero(t, again.Stored, "a repeated sample is stored once")
	require.False(t, again.LastSeen.Before(r.LastSeen), "and the connector is seen again")

	health, err := s.ConnectorHealth(ctx, []string{"ext"})
	require.NoError(t, err)
	require.True(t, health[0].LastSeen.Equal(again.LastSeen), "Collect reads when it was last seen")
	require.Equal(t, 3.0, health[0].Usage.CPUPercent)

	_, err = s.RecordExternalMetrics(ctx, "gone", sample)
	require.ErrorIs(t, err, store.ErrUnknownConnector, "it left the pool")
	_, err = s.RecordExternalMetrics(ctx, "own", sample)
	require.ErrorIs(t, err, store.ErrNotExternal)
	var seen *time.Time
	var n int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT last_seen, (SELECT count(*) FROM connector_metrics WHERE connector_id = 'own') FROM connectors WHERE id = 'own'`).Scan(&seen, &n))
	require.Nil(t, seen, "a refused post marks nothing")
	require.Zero(t, n, "and stores nothing")
}

// A connector recorded by another pool's fleet moves to that pool: a site that moved
// took it along.
func TestAConnectorMovesToThePoolThatRecordsItLast(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	addConnector(t, s, "default-ams1-1")
	c := planning.Connector{ID: "default-ams1-1", Site: "ams1", State: planning.StateWarm, Size: planning.Sizes[1],
		TaskQueue: "q", CreatedAt: time.Now().UTC()}
	require.NoError(t, s.UpsertConnector(ctx, "south", c))
	var pool, state string
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT pool, state FROM connectors WHERE id = 'default-ams1-1'`).Scan(&pool, &state))
	require.Equal(t, []string{"south", "warm"}, []string{pool, state})
}
