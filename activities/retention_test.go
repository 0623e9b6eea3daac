package activities

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/contract"
)

func TestRetentionWindowsKeepWhatTheFleetReads(t *testing.T) {
	cfg, err := config.Load()
	require.NoError(t, err)
	require.LessOrEqual(t, AccuracyWindow, config.MinForecastRetention, "forecast accuracy reads forecasts retention must keep")
	require.LessOrEqual(t, AccuracyWindow, cfg.Retention.MetricsRaw, "the resource model reads raw samples by default")
}

func TestApplyRetentionInBatchesKeepsHistory(t *testing.T) {
	_, s := fleetFixture(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := s.Pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO connectors (id, pool, site_id, state, cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, task_queue)
		VALUES ('c1', 'default', 'ams1', 'warm', 1000, 1, 1, 1, 'q')`)
	// A sample a minute from 100 days ago to now: 10 days to expire, 83 to downsample.
	exec(`INSERT INTO connector_metrics (connector_id, at, cpu_percent, ram_bytes, bandwidth_used_bytes_per_sec, active_tasks)
		SELECT 'c1', g, 50, 1, 1, 1 FROM generate_series($1::timestamptz - interval '100 days', $1::timestamptz, interval '1 minute') g`, now)
	exec(`INSERT INTO plans (pool, generated_at, body)
		SELECT 'default', g, '{}' FROM generate_series($1::timestamptz - interval '31 days', $1::timestamptz, interval '1 day') g`, now)
	// An audit entry a week for 60 weeks: those of weeks 53 to 59 are older than a year.
	exec(`INSERT INTO api_keys (id, name, role, hash) VALUES ('k1', 'ci', 'operator', sha256('k1'))`)
	exec(`INSERT INTO api_audit (at, key_id, role, method, path, route, status)
		SELECT g, 'k1', 'operator', 'POST', '/scale', '/scale', 202
		FROM generate_series($1::timestamptz - interval '59 weeks', $1::timestamptz, interval '1 week') g`, now)
	var history int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM migrations`).Scan(&history))

	cfg, err := config.Load()
	require.NoError(t, err)
	r := NewRetention(s, slog.New(slog.DiscardHandler))
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(r)
	run := func() contract.RetentionResult {
		t.Helper()
		v, err := env.ExecuteActivity(r.ApplyRetention, contract.RetentionInput{Settings: cfg.Retention, Now: now, Batch: 2000})
		require.NoError(t, err)
		var res contract.RetentionResult
		require.NoError(t, v.Get(&res))
		return res
	}
	res := run()
	require.Equal(t, int64(10*24*60), res.MetricsDeleted)
	require.Equal(t, int64(83*24*60), res.MetricsFolded)
	require.Equal(t, int64(83*24), res.MetricsDownsampled, "one row per hour")
	require.Equal(t, int64(1), res.PlansDeleted, "the plan of 31 days ago")
	require.Equal(t, int64(7), res.AuditDeleted, "the audit entries of weeks 53 to 59")

	// Zero keeps it all, as do the settings of a schedule made before it had a
	// retention.
	old := cfg.Retention
	old.Audit = 0
	exec(`INSERT INTO api_audit (at, key_id, role, method, path, route, status) VALUES ($1::timestamptz - interval '2 years', 'k1', 'operator', 'POST', '/scale', '/scale', 202)`, now)
	v, err := env.ExecuteActivity(r.ApplyRetention, contract.RetentionInput{Settings: old, Now: now})
	require.NoError(t, err)
	var kept contract.RetentionResult
	require.NoError(t, v.Get(&kept))
	require.Zero(t, kept.AuditDeleted)
	exec(`DELETE FROM api_audit WHERE at < $1::timestamptz - interval '1 year'`, now)
	require.Equal(t, contract.RetentionResult{}, run(), "a second run finds nothing to do")

	var after, raw int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM migrations`).Scan(&after))
	require.Equal(t, history, after, "migration history is kept")
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM connector_metrics WHERE bucket_seconds IS NULL`).Scan(&raw))
	require.Equal(t, 7*24*60+1, raw, "the last week stays raw")
}
