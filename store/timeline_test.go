package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store/storetest"
)

func TestTimelineSetsForecastAgainstActualAndPlanAgainstRunning(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC)
	hour := func(h int) time.Time { return now.Truncate(time.Hour).Add(time.Duration(h) * time.Hour) }
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := s.Pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO sites VALUES ('ams1', 'A', 'eu', 1e9), ('fra1', 'F', 'eu', 1e9)`)
	exec(`INSERT INTO sla_tiers VALUES ('gold', 3600, 60, 0.9)`)
	exec(`INSERT INTO connectors (id, pool, site_id, state, cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, task_queue)
		VALUES ('c1', 'default', 'ams1', 'warm', 1000, 1e9, 1e8, 1e10, 'q'), ('c2', 'default', 'ams1', 'warm', 1000, 1e9, 1e8, 1e10, 'q'),
			('c3', 'other', 'ams1', 'warm', 1000, 1e9, 1e8, 1e10, 'q')`)
	// An hour ago c1 copied and c2 idled; c3 is another pool's.
	exec(`INSERT INTO connector_metrics (connector_id, at, cpu_percent, ram_bytes, bandwidth_used_bytes_per_sec, active_tasks)
		VALUES ('c1', $1, 1, 1, 1, 2), ('c2', $1, 1, 1, 1, 0), ('c3', $1, 1, 1, 1, 1)`, hour(-1).Add(10*time.Minute))
	// Three migrations started an hour ago at ams1, one at fra1.
	exec(`INSERT INTO migrations (id, vm_id, site_id, connector_id, sla_tier, bytes, started_at, ended_at, avg_bytes_per_sec, outcome)
		SELECT 'm' || i, 'vm', CASE WHEN i < 4 THEN 'ams1' ELSE 'fra1' END, 'c1', 'gold', 1, $1, $1, 1, 'succeeded'
		FROM generate_series(1, 4) i`, hour(-1).Add(5*time.Minute))
	// The hour gone was forecast before it began (2 ± 1) and again during it (9): the
	// first counts. The hour ahead has two forecasts: the newer counts.
	forecast := func(made, target time.Time, mean float64) {
		exec(`INSERT INTO forecasts (pool, site_id, generated_at, target_hour, model, planned, adhoc_mean, adhoc_lo, adhoc_hi)
			VALUES ('default', 'ams1', $1, $2, 'm', 1, $3::float8, $3::float8 - 1, $3::float8 + 1)`, made, target, mean)
	}
	forecast(hour(-3), hour(-1), 1)
	forecast(hour(-1).Add(time.Minute), hour(-1), 8)
	forecast(hour(-1), hour(1), 4)
	forecast(hour(0), hour(1), 5)
	// Two plans: the later one's need for the hour ahead wins; the hour gone keeps the
	// plan made in it.
	require.NoError(t, s.InsertPlan(ctx, "default", planning.Plan{GeneratedAt: hour(-1).Add(20 * time.Minute),
		Hours: []planning.PlannedHour{{Site: "ams1", Hour: hour(-1), Connectors: 2}, {Site: "ams1", Hour: hour(1), Connectors: 7}}}))
	require.NoError(t, s.InsertPlan(ctx, "default", planning.Plan{GeneratedAt: hour(0).Add(20 * time.Minute),
		Hours: []planning.PlannedHour{{Site: "ams1", Hour: hour(0), Connectors: 3}, {Site: "ams1", Hour: hour(1), Connectors: 4}}}))
	// A retry of the older plan changes nothing.
	require.NoError(t, s.InsertPlan(ctx, "default", planning.Plan{GeneratedAt: hour(-1).Add(20 * time.Minute),
		Hours: []planning.PlannedHour{{Site: "ams1", Hour: hour(1), Connectors: 7}}}))

	got, err := s.Timeline(ctx, "default", "ams1", hour(-1).Add(17*time.Minute), 3, now)
	require.NoError(t, err)
	require.Len(t, got, 3)
	f := func(v float64) *float64 { return &v }
	n := func(v int) *int { return &v }
	require.Equal(t, hour(-1), got[0].Hour, "from is the hour it falls in")
	require.Equal(t, []*float64{f(2), f(1), f(3)}, []*float64{got[0].Forecast, got[0].ForecastLo, got[0].ForecastHi})
	require.Equal(t, n(3), got[0].Actual)
	require.Equal(t, n(2), got[0].PlannedConnectors)
	require.Equal(t, n(2), got[0].LiveConnectors)
	require.Equal(t, n(1), got[0].BusyConnectors)

	require.Nil(t, got[1].Forecast, "no forecast of the current hour")
	require.Equal(t, n(0), got[1].Actual, "the current hour has begun")
	require.Equal(t, n(3), got[1].PlannedConnectors)
	require.Equal(t, n(0), got[1].LiveConnectors)

	require.Equal(t, f(6), got[2].Forecast, "the newest forecast of an hour ahead")
	require.Nil(t, got[2].Actual, "an hour ahead has no actuals")
	require.Nil(t, got[2].LiveConnectors)
	require.Equal(t, n(4), got[2].PlannedConnectors)

	// The plan's body is stored without its hours.
	var body string
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT body::text FROM plans ORDER BY generated_at DESC LIMIT 1`).Scan(&body))
	require.NotContains(t, body, `"hours"`)
}
