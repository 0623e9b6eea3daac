package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/store/storetest"
)

// retentionNow is the pinned "now" of the retention tests.
var retentionNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// seedSamples writes a raw sample of connector id every step over [from, to): CPU
// climbs 0, 1, 2, ... per sample, bytes_moved is a running total of 1000 per sample,
// and CPU throttling goes unmeasured, 10, 20, 30, unmeasured, ...
func seedSamples(t *testing.T, s *store.Store, id string, from, to time.Time, step time.Duration) int {
	t.Helper()
	tag, err := s.Pool.Exec(context.Background(), `
		INSERT INTO connector_metrics (connector_id, at, cpu_percent, ram_bytes, bandwidth_used_bytes_per_sec, active_tasks, bytes_moved,
			storage_used_bytes, cpu_throttled_percent)
		SELECT $1, at, n % 100, 1000 + n, 10 * (n % 7), n % 3, 1000 * n, 0, 10 * nullif(n % 4, 0)
		FROM (SELECT at, row_number() OVER (ORDER BY at) - 1 AS n
		      FROM generate_series($2::timestamptz, $3::timestamptz - interval '1 microsecond', $4::interval) at) g`,
		id, from, to, step)
	require.NoError(t, err)
	return int(tag.RowsAffected())
}

// downsampleAll runs DownsampleMetrics until nothing is left and returns the raw
// samples folded and the batches it took.
func downsampleAll(t *testing.T, s *store.Store, before time.Time, limit int) (raw int64, batches int) {
	t.Helper()
	for {
		n, _, err := s.DownsampleMetrics(context.Background(), before, time.Hour, limit)
		require.NoError(t, err)
		if n == 0 {
			return raw, batches
		}
		raw, batches = raw+n, batches+1
	}
}

// metricsDump is the whole connector_metrics table as text, in key order.
func metricsDump(t *testing.T, s *store.Store) []string {
	t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT row(m.*)::text FROM connector_metrics m ORDER BY connector_id, at`)
	require.NoError(t, err)
	var out []string
	for rows.Next() {
		var r string
		require.NoError(t, rows.Scan(&r))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// bucketRow is a downsampled row's measures.
type bucketRow struct {
	samples, bucket, tasks int
	cpu, cpuMax, bw, bwMax float64
	ram, ramMax, moved     int64
	throttled              float64
}

func readBucket(t *testing.T, s *store.Store, id string, at time.Time) bucketRow {
	t.Helper()
	var b bucketRow
	require.NoError(t, s.Pool.QueryRow(context.Background(), `
		SELECT samples, bucket_seconds, active_tasks, cpu_percent, cpu_percent_max, bandwidth_used_bytes_per_sec,
			bandwidth_used_max_bytes_per_sec, ram_bytes, ram_bytes_max, bytes_moved, cpu_throttled_percent
		FROM connector_metrics WHERE connector_id = $1 AND at = $2`, id, at).
		Scan(&b.samples, &b.bucket, &b.tasks, &b.cpu, &b.cpuMax, &b.bw, &b.bwMax, &b.ram, &b.ramMax, &b.moved, &b.throttled))
	return b
}

func TestDownsampleFoldsEachSampleOnceAndIsIdempotent(t *testing.T) {
	s := storetest.New(t)
	addConnector(t, s, "c1")
	addConnector(t, s, "c2")
	ctx := context.Background()
	cutoff := retentionNow.Add(-7 * 24 * time.Hour) // 2026-11-18 12:00, on an hour
	old := cutoff.Add(-3 * time.Hour)
	// c1: one sample every 10 s for 3 h before the cutoff and 1 h after it; c2 every
	// 30 s, starting on the bucket's first instant (its aggregate takes that key).
	n1 := seedSamples(t, s, "c1", old, cutoff.Add(time.Hour), 10*time.Second)
	n2 := seedSamples(t, s, "c2", old, cutoff.Add(time.Hour), 30*time.Second)

	// A small limit makes many batches: a retry stops between any two of them.
	raw, batches := downsampleAll(t, s, cutoff.Add(10*time.Minute), 500)
	require.Equal(t, int64(3*360+3*120), raw, "every sample before the cutoff's bucket is folded, none after")
	require.Greater(t, batches, 1, "a big backlog goes in batches")

	// c1's first bucket: samples n = 0..359, CPU n%100, RAM 1000+n, bandwidth 10*(n%7),
	// tasks n%3, moved 1000*n.
	b := readBucket(t, s, "c1", old)
	require.Equal(t, 360, b.samples)
	require.Equal(t, 3600, b.bucket)
	var cpuSum, bwSum, tasks float64
	var bwMax float64
	for n := range 360 {
		cpuSum += float64(n % 100)
		bwSum += float64(10 * (n % 7))
		bwMax = max(bwMax, float64(10*(n%7)))
		tasks += float64(n % 3)
	}
	require.InDelta(t, cpuSum/360, b.cpu, 1e-9)
	require.Equal(t, 99.0, b.cpuMax)
	require.InDelta(t, bwSum/360, b.bw, 1e-9)
	require.Equal(t, bwMax, b.bwMax)
	require.Equal(t, int64(1000+180), b.ram, "mean of 1000..1359, rounded")
	require.Equal(t, int64(1359), b.ramMax)
	require.Equal(t, int(tasks/360+0.5), b.tasks)
	require.Equal(t, int64(1000*359), b.moved, "the running total at the bucket's end")
	require.InDelta(t, 20, b.throttled, 1e-9, "the mean of 10, 20 and 30: unmeasured samples are left out")

	var after, folded, rows int
	require.NoError(t, s.Pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE at >= $1 AND bucket_seconds IS NULL),
			coalesce(sum(samples) FILTER (WHERE bucket_seconds IS NOT NULL), 0),
			count(*) FILTER (WHERE bucket_seconds IS NOT NULL)
		FROM connector_metrics`, cutoff).Scan(&after, &folded, &rows))
	require.Equal(t, 360+120, after, "samples of the last week stay raw")
	require.Equal(t, n1+n2-after, folded, "the aggregates stand for every folded sample")
	require.Equal(t, 6, rows, "one row per connector and hour")

	before := metricsDump(t, s)
	raw, _ = downsampleAll(t, s, cutoff.Add(10*time.Minute), 500)
	require.Zero(t, raw)
	require.Equal(t, before, metricsDump(t, s), "a second run changes nothing")
}

func TestDownsampleRetriedAfterAPartialRunDoesNotDoubleCount(t *testing.T) {
	s := storetest.New(t)
	addConnector(t, s, "c1")
	ctx := context.Background()
	cutoff := retentionNow.Add(-7 * 24 * time.Hour)
	old := cutoff.Add(-2 * time.Hour)
	n := seedSamples(t, s, "c1", old, cutoff, 10*time.Second)

	// The first attempt folds one batch and dies; the retry does the rest.
	raw, rows, err := s.DownsampleMetrics(ctx, cutoff, time.Hour, 100)
	require.NoError(t, err)
	require.Equal(t, int64(360), raw, "one whole bucket, though the limit is smaller")
	require.Equal(t, int64(1), rows)
	rest, _ := downsampleAll(t, s, cutoff, 100)
	require.Equal(t, int64(n)-raw, rest)

	// A sample that arrives late for a folded bucket joins it by weight.
	_, err = s.Pool.Exec(ctx, `
		INSERT INTO connector_metrics (connector_id, at, cpu_percent, ram_bytes, bandwidth_used_bytes_per_sec, active_tasks, bytes_moved, storage_used_bytes)
		VALUES ('c1', $1, 100, 1, 5000, 9, 1, 0)`, old.Add(5*time.Second))
	require.NoError(t, err)
	prev := readBucket(t, s, "c1", old)
	late, _ := downsampleAll(t, s, cutoff, 100)
	require.Equal(t, int64(1), late)
	b := readBucket(t, s, "c1", old)
	require.Equal(t, 361, b.samples)
	require.InDelta(t, (prev.cpu*360+100)/361, b.cpu, 1e-9)
	require.Equal(t, 100.0, b.cpuMax)
	require.Equal(t, 5000.0, b.bwMax)
	require.Equal(t, prev.moved, b.moved)

	var total int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT sum(samples) FROM connector_metrics`).Scan(&total))
	require.Equal(t, n+1, total, "every sample counted once")
}

func TestExpiryKeepsHistoryOpenEventsAndWhatIsRecent(t *testing.T) {
	s := storetest.New(t)
	addConnector(t, s, "c1")
	ctx := context.Background()
	day := 24 * time.Hour
	seedSamples(t, s, "c1", retentionNow.Add(-100*day), retentionNow.Add(-80*day), time.Hour)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := s.Pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO sla_tiers (name, max_transfer_seconds, max_downtime_seconds) VALUES ('gold', 60, 10)`)
	exec(`INSERT INTO migrations (id, vm_id, site_id, connector_id, sla_tier, bytes, started_at, ended_at, avg_bytes_per_sec, outcome)
		SELECT 'm' || i, 'vm', 'ams1', 'c1', 'gold', 1, $1::timestamptz - i * interval '1 day', $1::timestamptz - i * interval '1 day', 1, 'succeeded'
		FROM generate_series(1, 400) i`, retentionNow)
	// An open event (ends_at NULL) is an alert not resolved yet: it is never expired.
	exec(`INSERT INTO system_events (site_id, kind, starts_at, ends_at, description) VALUES
		('ams1', 'maintenance', $1::timestamptz - interval '200 days', $1::timestamptz - interval '199 days', 'old'),
		('ams1', 'anomaly', $1::timestamptz - interval '200 days', NULL, 'open'),
		('ams1', 'maintenance', $1::timestamptz - interval '200 days', $1::timestamptz - interval '10 days', 'recent')`, retentionNow)
	exec(`INSERT INTO forecasts (pool, site_id, generated_at, target_hour, model, planned, adhoc_mean, adhoc_lo, adhoc_hi)
		SELECT 'default', 'ams1', h - interval '1 hour', h, 'm', 0, 1, 0, 2
		FROM generate_series($1::timestamptz - interval '40 days', $1::timestamptz, interval '1 hour') h`, retentionNow)
	exec(`INSERT INTO plans (pool, generated_at, body)
		SELECT 'default', g, '{}' FROM generate_series($1::timestamptz - interval '40 days', $1::timestamptz, interval '1 hour') g`, retentionNow)
	exec(`INSERT INTO event_plan_changes (pool, event_key, at, site_id, connectors_before, connectors_after)
		SELECT 'default', 'e', g, 'ams1', 1, 2 FROM generate_series($1::timestamptz - interval '40 days', $1::timestamptz, interval '1 hour') g`, retentionNow)

	drain := func(f func(context.Context, time.Time, int) (int64, error), before time.Time) int64 {
		t.Helper()
		var total int64
		for {
			n, err := f(ctx, before, 50)
			require.NoError(t, err)
			require.LessOrEqual(t, n, int64(50))
			if n == 0 {
				return total
			}
			total += n
		}
	}
	require.Equal(t, int64(10*24), drain(s.DeleteMetricsBefore, retentionNow.Add(-90*day)))
	require.Equal(t, int64(1), drain(s.DeleteEventsEndedBefore, retentionNow.Add(-180*day)))
	require.Equal(t, int64(10*24), drain(s.DeleteForecastsBefore, retentionNow.Add(-30*day)))
	require.Equal(t, int64(10*24), drain(s.DeletePlansBefore, retentionNow.Add(-30*day)))
	require.Equal(t, int64(10*24), drain(s.DeletePlanChangesBefore, retentionNow.Add(-30*day)))

	var events []string
	rows, err := s.Pool.Query(ctx, `SELECT description FROM system_events ORDER BY description`)
	require.NoError(t, err)
	for rows.Next() {
		var d string
		require.NoError(t, rows.Scan(&d))
		events = append(events, d)
	}
	require.Equal(t, []string{"open", "recent"}, events)
	var history, oldestMetric int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM migrations`).Scan(&history))
	require.Equal(t, 400, history, "migration history is kept")
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM connector_metrics WHERE at < $1`, retentionNow.Add(-90*day)).Scan(&oldestMetric))
	require.Zero(t, oldestMetric)
}
