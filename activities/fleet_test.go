package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/forecast"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/validation"
)

var now = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// fleetFixture is a real database with two sites, tiers, a few VMs and four weeks of
// history in which ams1 sees h%3 migrations at hour h of each week and fra1 none.
func fleetFixture(t testing.TB) (*Fleet, *store.Store) {
	t.Helper()
	s := storetest.New(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := s.Pool.Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	exec(`INSERT INTO sites (id, name, region, uplink_bytes_per_sec) VALUES ('ams1', 'Amsterdam', 'eu-west', 1e9), ('fra1', 'Frankfurt', 'eu-central', 1e9)`)
	exec(`INSERT INTO sla_tiers VALUES ('gold', 120, 10, 0.9), ('bronze', 1800, 300, 0.5)`)
	exec(`INSERT INTO vms VALUES
		('vm-1', 'db-1', 'ams1', 4, 8589934592, 68719476736, 1e6, 1e4, 'gold', '/disks/vm-1.img', 1048576),
		('vm-2', 'web-1', 'fra1', 2, 4294967296, 34359738368, 1e6, 1e4, 'bronze', '/disks/vm-2.img', 524288)`)
	// A day more than the window, so that forecasts made a few hours ago have a full one.
	start := now.Add(-HistoryWindow - 24*time.Hour)
	n := 0
	for h := range int(HistoryWindow/time.Hour) + 24 {
		for range h % 24 % 3 {
			n++
			at := start.Add(time.Duration(h)*time.Hour + 10*time.Minute)
			exec(`INSERT INTO migrations VALUES ($1, 'vm-1', 'ams1', 'c1', 'gold', 2097152, $2, $3, 1048576, 'succeeded', 2, '')`,
				fmt.Sprint("h", n), at, at.Add(2*time.Second))
		}
	}
	return &Fleet{Store: s, Logger: slog.Default()}, s
}

func TestForecastIsYesterdayPlusPlannedWork(t *testing.T) {
	a, s := fleetFixture(t)
	a.ForecastModel = "snaive"
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	planned := []planning.PlannedMigration{{ID: "p1", Site: "fra1", Bytes: 1000, EarliestStart: now.Add(90 * time.Minute)}}
	v, err := aenv.ExecuteActivity(a.Forecast, demandQuery{Pool: "default", Sites: []string{"ams1", "fra1"}, Now: now, From: now, Hours: 6, Planned: planned, Record: true})
	require.NoError(t, err)
	var res demandResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, "ams1 snaive24, fra1 snaive24", res.Models)
	require.Len(t, res.Demand, 12)
	hourOfDay := int(HistoryWindow/time.Hour) % 24 // the history starts at hour 0 of its daily pattern
	for i, d := range res.Demand[:6] {
		want := float64((hourOfDay + i) % 24 % 3)
		require.Equal(t, want, d.AdhocMean, "ams1 hour %d repeats yesterday", i)
		require.Equal(t, want, d.AdhocLo, "a perfectly daily history has no spread")
		require.Equal(t, want*2097152, d.AdhocBytesMean, "the volume forecast follows the bytes moved")
		require.Equal(t, "snaive24", d.Model)
	}
	require.Equal(t, 1.0, res.Demand[6+1].Planned, "fra1's planned migration starts in the second hour")
	require.Equal(t, 1000.0, res.Demand[6+1].PlannedBytes)
	var rows int
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM forecasts`).Scan(&rows))
	require.Equal(t, 12, rows)

	// A later horizon is forecast from the same history: hours skipped are not lost.
	v, err = aenv.ExecuteActivity(a.Forecast, demandQuery{Sites: []string{"ams1"}, Now: now, From: now.Add(25 * time.Hour), Hours: 2})
	require.NoError(t, err)
	require.NoError(t, v.Get(&res))
	require.Equal(t, float64((hourOfDay+25)%24%3), res.Demand[0].AdhocMean)
}

func TestForecastRecordsItsRealisedError(t *testing.T) {
	a, s := fleetFixture(t)
	a.ForecastModel = "snaive"
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	earlier := now.Add(-3 * time.Hour)
	in := demandQuery{Pool: "default", Sites: []string{"ams1", "fra1"}, Now: earlier, From: earlier, Hours: 6, Record: true}
	_, err := aenv.ExecuteActivity(a.Forecast, in)
	require.NoError(t, err)

	// Three hours on, the hours that have passed are scored against what started.
	in.Now, in.From = now, now
	v, err := aenv.ExecuteActivity(a.Forecast, in)
	require.NoError(t, err)
	var res demandResult
	require.NoError(t, v.Get(&res))
	require.Len(t, res.Accuracy, 2)
	ams := res.Accuracy[0]
	require.Equal(t, "ams1", ams.Site)
	require.Equal(t, 2, ams.Scored, "two whole hours passed after the hour the forecast was made in")
	require.Zero(t, ams.MAE, "a perfectly daily history is forecast exactly")
	require.Equal(t, 1.0, ams.Coverage)
	require.Equal(t, 0.1, ams.LoLevel)
	// Against the hour-of-day rate, which puts Poisson quantiles around the same
	// means: the exact forecast has all the skill there is.
	require.Equal(t, 2, ams.SkillScored)
	require.Zero(t, ams.Pinball)
	require.Positive(t, ams.BaselinePinball, "a Poisson band around the rate misses a count that is always the same")
	require.Equal(t, 1.0, ams.Skill)
	var rate, lo, hi float64
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT adhoc_mean, baseline_lo, baseline_hi FROM forecasts
		WHERE site_id = 'ams1' AND adhoc_mean = 2 LIMIT 1`).Scan(&rate, &lo, &hi))
	require.Equal(t, forecast.CountQuantile(2, 0, 0.1), lo, "the hour of day's mean, 2, as a Poisson rate")
	require.Equal(t, forecast.CountQuantile(2, 0, 0.9), hi)

	var scored int
	require.NoError(t, s.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM forecasts WHERE actual_arrivals IS NOT NULL AND site_id = 'ams1'`).Scan(&scored))
	require.Equal(t, 3, scored, "the three hours that ended are scored, even the one the forecast was made in")

	// A wrong forecast shows: a burst of migrations nobody forecast, in an hour that
	// then passes.
	_, err = s.Pool.Exec(context.Background(), `UPDATE forecasts SET actual_arrivals = NULL WHERE site_id = 'fra1'`)
	require.NoError(t, err)
	for i := range 5 {
		at := now.Add(-2*time.Hour + time.Duration(i)*time.Minute)
		_, err := s.Pool.Exec(context.Background(), `INSERT INTO migrations VALUES ($1, 'vm-2', 'fra1', 'c1', 'bronze', 10, $2, $2, 1, 'succeeded', 0, '')`, fmt.Sprint("burst", i), at)
		require.NoError(t, err)
	}
	v, err = aenv.ExecuteActivity(a.Forecast, in)
	require.NoError(t, err)
	require.NoError(t, v.Get(&res))
	fra := res.Accuracy[1]
	require.Equal(t, "fra1", fra.Site)
	require.InDelta(t, 2.5, fra.MAE, 1e-9, "5 unforecast arrivals in one of the two scored hours")
	require.InDelta(t, -2.5, fra.Bias, 1e-9)
	require.InDelta(t, 0.5, fra.Coverage, 1e-9)
	// Both bands were 0..0: the burst cost each (0.1 × 5 + 0.9 × 5) / 2 in its hour,
	// nothing in the other. No skill over the baseline.
	require.InDelta(t, 1.25, fra.Pinball, 1e-9)
	require.InDelta(t, 1.25, fra.BaselinePinball, 1e-9)
	require.Zero(t, fra.Skill)
}

func TestPredictRecordsAPlanFromProfiles(t *testing.T) {
	a, s := fleetFixture(t)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	demand := []planning.Demand{{Site: "ams1", Hour: now, AdhocMean: 2, AdhocLo: 1, AdhocHi: 3}, {Site: "fra1", Hour: now}}
	v, err := aenv.ExecuteActivity(a.Predict, worldQuery{Pool: "default", Now: now, Demand: demand, Size: "medium", LeadTime: 15 * time.Minute}, true)
	require.NoError(t, err)
	var plan planning.Plan
	require.NoError(t, v.Get(&plan))
	require.Len(t, plan.Targets, 2)
	require.Equal(t, 1, plan.Targets[0].Connectors, "ams1 expects work")
	require.Equal(t, 0, plan.Targets[1].Connectors, "fra1 expects none")
	require.Contains(t, plan.Targets[0].Reason, "p90", "ams1's gold VMs size to the 90% quantile")
	profiles, err := s.SiteProfiles(context.Background(), now.Add(-HistoryWindow))
	require.NoError(t, err)
	require.Equal(t, []string{"gold", "bronze"}, []string{profiles[0].StrictestTier, profiles[1].StrictestTier},
		"each profile names the tier that set its quantile")
	require.Equal(t, []float64{0, 1}, []float64{profiles[0].PatientShare, profiles[1].PatientShare},
		"gold's 2 minutes cannot wait for a boot, bronze's 30 can")
	var stored int
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM plans WHERE pool = 'default'`).Scan(&stored))
	require.Equal(t, 1, stored)

	_, err = aenv.ExecuteActivity(a.Predict, worldQuery{Now: now, Size: "gigantic"}, false)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.True(t, appErr.NonRetryable())
}

// An estimate explains each site from its profile (the tier that set the quantile) and
// from the fleet's view it was given (the pool's maximum here).
func TestEstimateExplainsItsSitesWithTheFleetsView(t *testing.T) {
	a, _ := fleetFixture(t)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	planned := []planning.PlannedMigration{
		{ID: "p1", Site: "ams1", Bytes: 16 << 30, SLATier: "gold", EarliestStart: now.Add(time.Hour), Deadline: now.Add(2 * time.Hour)},
		{ID: "p2", Site: "fra1", Bytes: 1 << 20, SLATier: "bronze", EarliestStart: now.Add(time.Hour), Deadline: now.Add(2 * time.Hour)},
	}
	policy := planning.DefaultPolicy()
	policy.MaxConnectors = 2
	v, err := aenv.ExecuteActivity(a.Estimate, estimateInput{Now: now, Planned: planned, Size: "medium",
		Fleet: planning.FleetView{Policy: policy, LeadTime: 15 * time.Minute, LeadTimeSetting: 15 * time.Minute}})
	require.NoError(t, err)
	var est planning.Estimate
	require.NoError(t, v.Get(&est))
	require.Len(t, est.Sites, 2)
	ams, fra := est.Sites[0].Arithmetic, est.Sites[1].Arithmetic
	require.Equal(t, "gold", ams.Adhoc.Tier)
	require.Equal(t, 0.9, ams.Adhoc.Quantile)
	require.Equal(t, "bronze", fra.Adhoc.Tier)
	// 16 GiB in an hour is 4.6 MiB/s: two medium connectors, and fra1 needs one.
	require.Equal(t, 2, ams.Need.Connectors)
	require.Equal(t, 1, ams.Need.BoundedConnectors, "the pool's maximum of 2 trims ams1")
	require.Equal(t, planning.BoundPoolMax, ams.Bound.Kind)
	require.True(t, slices.ContainsFunc(est.Bottlenecks, func(b planning.Bottleneck) bool { return b.Kind == "connectors" && b.Site == "ams1" }))
	require.Equal(t, "not scored yet", ams.Model.Error)
}

func TestLookupVMNotFoundNamesTheField(t *testing.T) {
	a, _ := fleetFixture(t)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	v, err := aenv.ExecuteActivity(a.LookupVM, contract.LookupVMInput{VMID: "vm-1"})
	require.NoError(t, err)
	var vm planning.VM
	require.NoError(t, v.Get(&vm))
	require.Equal(t, "ams1", vm.Site)
	require.Equal(t, 120*time.Second, vm.MaxTransfer)

	v, err = aenv.ExecuteActivity(a.LookupVMs, []string{"vm-2", "vm-1", "vm-2"})
	require.NoError(t, err)
	var vms []planning.VM
	require.NoError(t, v.Get(&vms))
	require.Equal(t, []string{"vm-2", "vm-1", "vm-2"}, []string{vms[0].ID, vms[1].ID, vms[2].ID}, "in the order asked, read at once")

	_, err = aenv.ExecuteActivity(a.LookupVMs, []string{"vm-1", "vm-9"})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.Equal(t, validation.NotFoundErrorType, appErr.Type())
	var fe validation.Error
	require.NoError(t, appErr.Details(&fe))
	require.Equal(t, "vm_ids[1]", fe.Field)
}

func TestRecordingActivitiesAreIdempotent(t *testing.T) {
	a, s := fleetFixture(t)
	ctx := context.Background()
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	count := func(sql string) int {
		var n int
		require.NoError(t, s.Pool.QueryRow(ctx, sql).Scan(&n))
		return n
	}
	rec := planning.MigrationRecord{ID: "m1", VMID: "vm-1", Site: "ams1", ConnectorID: "c1", SLATier: "gold", Bytes: 10,
		StartedAt: now, EndedAt: now.Add(time.Second), AvgBytesSec: 10, Outcome: "succeeded"}
	o := planning.Override{ID: "o1", Kind: planning.OverridePin, Site: "ams1", Min: 2, Who: "ann", Why: "wave", At: now, Expires: now.Add(time.Hour)}
	for range 2 {
		_, err := aenv.ExecuteActivity(a.RecordOutcome, rec)
		require.NoError(t, err)
		_, err = aenv.ExecuteActivity(a.RecordOverride, contract.RecordOverrideInput{Pool: "default", Override: o, Action: "applied", At: now})
		require.NoError(t, err)
		_, err = aenv.ExecuteActivity(a.RecordBreach, contract.RecordBreachInput{MigrationID: "m1", Site: "ams1", ConnectorID: "c1", Deadline: now, MaxTransfer: time.Minute})
		require.NoError(t, err)
	}
	_, err := aenv.ExecuteActivity(a.RecordOverride, contract.RecordOverrideInput{Pool: "default", Override: o, Action: "expired", At: now.Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, 1, count(`SELECT count(*) FROM migrations WHERE id = 'm1'`))
	require.Equal(t, 1, count(`SELECT count(*) FROM overrides`))
	require.Equal(t, 2, count(`SELECT count(*) FROM override_audit WHERE override_id = 'o1'`))
	require.Equal(t, 1, count(`SELECT count(*) FROM system_events WHERE kind = 'anomaly'`))
}

func TestPredictLearnsTheLeadTimeFromConnectorStarts(t *testing.T) {
	a, s := fleetFixture(t)
	ctx := context.Background()
	for i := range 4 {
		started := now.Add(-time.Duration(i+1) * time.Hour)
		_, err := s.Pool.Exec(ctx, `INSERT INTO connectors (id, pool, site_id, state, cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, task_queue, started_at, ready_at)
			VALUES ($1, 'default', 'ams1', 'warm', 1000, 1, 1, 1, 'q', $2, $3)`, fmt.Sprint("slow", i), started, started.Add(20*time.Minute))
		require.NoError(t, err)
	}
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	v, err := aenv.ExecuteActivity(a.Predict, worldQuery{Pool: "default", Now: now, Size: "medium", LeadTime: 15 * time.Minute, Tick: 30 * time.Second}, false)
	require.NoError(t, err)
	var plan planning.Plan
	require.NoError(t, v.Get(&plan))
	require.Equal(t, (20*time.Minute + 30*time.Second).Seconds(), plan.LeadTimeSeconds, "connectors took 20 minutes to be ready; a 15-minute lead would be late")
	require.True(t, slices.ContainsFunc(plan.Reasons, func(r string) bool { return strings.Contains(r, "p90 over 4 starts") }), "%v", plan.Reasons)
}

// A burst of failures at a site is an anomaly: recorded as an event once, and the plan
// widens that site's margin and says so.
func TestPredictWidensTheMarginOnAnAnomaly(t *testing.T) {
	a, s := fleetFixture(t)
	ctx := context.Background()
	for i := range 6 {
		at := now.Add(-time.Duration(i+1) * 10 * time.Minute)
		_, err := s.Pool.Exec(ctx, `INSERT INTO migrations VALUES ($1, 'vm-1', 'ams1', 'c1', 'gold', 0, $2, $2, 0, 'failed', 0, 'disk unreadable')`, fmt.Sprint("fail", i), at)
		require.NoError(t, err)
	}
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	in := worldQuery{Pool: "default", Now: now, Size: "medium", LeadTime: 15 * time.Minute}
	for range 2 { // a second tick records no second event
		v, err := aenv.ExecuteActivity(a.Predict, in, true)
		require.NoError(t, err)
		var plan planning.Plan
		require.NoError(t, v.Get(&plan))
		require.True(t, slices.ContainsFunc(plan.Bottlenecks, func(b planning.Bottleneck) bool { return b.Site == "ams1" && b.Kind == "anomaly" }), "%+v", plan.Bottlenecks)
		require.True(t, slices.ContainsFunc(plan.Reasons, func(r string) bool { return strings.Contains(r, "ams1: anomaly") }))
	}
	var events int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM system_events WHERE kind = 'anomaly' AND site_id = 'ams1'`).Scan(&events))
	require.Equal(t, 1, events)
}

// The plan says how well its rate model did on held-out history, and uses it for the
// expected duration.
func TestPredictReportsTheRateModel(t *testing.T) {
	a, _ := fleetFixture(t)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	v, err := aenv.ExecuteActivity(a.Predict, worldQuery{Pool: "default", Now: now, Size: "medium", LeadTime: 15 * time.Minute,
		Demand: []planning.Demand{{Site: "ams1", Hour: now, AdhocMean: 2, AdhocLo: 1, AdhocHi: 3}}}, false)
	require.NoError(t, err)
	var plan planning.Plan
	require.NoError(t, v.Get(&plan))
	require.True(t, slices.ContainsFunc(plan.Reasons, func(r string) bool { return strings.Contains(r, "rate model: median error") }), "%v", plan.Reasons)
	// Every history row moved 2 MiB at 1 MiB/s: the model says about 2 s.
	require.InDelta(t, 2, plan.Targets[0].ExpectedSeconds, 0.5)
}

func TestPredictJudgesByConnectorMetrics(t *testing.T) {
	a, s := fleetFixture(t)
	ctx := context.Background()
	_, err := s.Pool.Exec(ctx, `INSERT INTO connectors (id, pool, site_id, state, cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, task_queue)
		VALUES ('c-m', 'default', 'ams1', 'active', 1000, 536870912, 4194304, 8589934592, 'q')`)
	require.NoError(t, err)
	// 40 samples over the last 40 minutes: 100 millicores + 200 per MiB/s, and the
	// target has 3 MiB free.
	for i := range 40 {
		bw := float64(i%5) * (1 << 20)
		_, err := s.Pool.Exec(ctx, `INSERT INTO connector_metrics (connector_id, at, cpu_percent, ram_bytes, bandwidth_used_bytes_per_sec, active_tasks, target_free_bytes)
			VALUES ('c-m', $1, $2, 33554432, $3, $4, 3145728)`, now.Add(-time.Duration(40-i)*time.Minute), (100+200*bw/(1<<20))/10, bw, i%5)
		require.NoError(t, err)
	}
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	var demand []planning.Demand
	for h := range 3 {
		demand = append(demand, planning.Demand{Site: "ams1", Hour: now.Add(time.Duration(h) * time.Hour), AdhocMean: 2, AdhocLo: 1, AdhocHi: 3})
	}
	v, err := aenv.ExecuteActivity(a.Predict, worldQuery{Pool: "default", Now: now, Size: "medium", LeadTime: 15 * time.Minute, Demand: demand}, false)
	require.NoError(t, err)
	var plan planning.Plan
	require.NoError(t, v.Get(&plan))
	// Medium at full load, 4 MiB/s: 100 + 800 = 900 millicores.
	require.True(t, slices.ContainsFunc(plan.Reasons, func(r string) bool {
		return strings.Contains(r, "a medium connector at full load (4.0 MiB/s, 4 tasks) uses about 900 millicores")
	}), "%v", plan.Reasons)
	require.True(t, slices.ContainsFunc(plan.Bottlenecks, func(b planning.Bottleneck) bool {
		return b.Kind == "storage" && strings.Contains(b.Detail, "3.0 MiB free (c-m measured it")
	}), "%+v", plan.Bottlenecks)
}

func TestRecordConnectorMetricsStoresAnExternalConnectorsSamplesOnce(t *testing.T) {
	a, s := fleetFixture(t)
	ctx := context.Background()
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	c := planning.Connector{ID: "appliance-1", Site: "ams1", State: planning.StateUnhealthy, Size: planning.Sizes[2],
		TaskQueue: "pmo.connector.appliance-1", CreatedAt: now, External: true}
	_, err := aenv.ExecuteActivity(a.SyncConnectors, contract.SyncConnectorsInput{Pool: "default", Connectors: []planning.Connector{c}})
	require.NoError(t, err)
	in := contract.RecordConnectorMetricsInput{ConnectorID: c.ID, Samples: []planning.MetricSample{{At: now, CPUPercent: 5}, {At: now.Add(time.Second), CPUPercent: 6}}}
	for i, want := range []int64{2, 0} {
		v, err := aenv.ExecuteActivity(a.RecordConnectorMetrics, in)
		require.NoError(t, err)
		var res contract.RecordConnectorMetricsResult
		require.NoError(t, v.Get(&res))
		require.Equal(t, want, res.Stored, "run %d: a retry stores nothing twice", i)
	}
	var n int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM connector_metrics WHERE connector_id = 'appliance-1'`).Scan(&n))
	require.Equal(t, 2, n)
	// The resource model reads them as it reads any connector's.
	samples, err := s.ResourceSamples(ctx, "default", now.Add(-time.Hour), 10)
	require.NoError(t, err)
	require.Len(t, samples, 2)
}

// The models are fitted once per history hour: a tick later in the hour gets the same
// forecast without reading the history again, with the known work of its own moment
// counted in; the next hour learns from what was recorded meanwhile.
func TestForecastIsFittedOncePerHistoryHour(t *testing.T) {
	a, s := fleetFixture(t)
	a.ForecastModel = "snaive"
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	forecastAt := func(at time.Time, planned []planning.PlannedMigration) demandResult {
		t.Helper()
		v, err := aenv.ExecuteActivity(a.Forecast, demandQuery{Sites: []string{"fra1"}, Now: at, From: at, Hours: 24, Planned: planned})
		require.NoError(t, err)
		var res demandResult
		require.NoError(t, v.Get(&res))
		return res
	}
	first := forecastAt(now, nil)
	require.Zero(t, first.Demand[1].AdhocMean, "fra1 had no migrations")
	// Yesterday an hour after this one fra1 had a burst, recorded only now.
	for i := range 4 {
		at := now.Add(-23*time.Hour + time.Duration(i)*time.Minute)
		_, err := s.Pool.Exec(context.Background(), `INSERT INTO migrations VALUES ($1, 'vm-2', 'fra1', 'c1', 'bronze', 10, $2, $2, 1, 'succeeded', 0, '')`, fmt.Sprint("late", i), at)
		require.NoError(t, err)
	}
	planned := []planning.PlannedMigration{{ID: "p1", Site: "fra1", Bytes: 1000, EarliestStart: now.Add(5 * time.Minute)}}
	later := forecastAt(now.Add(20*time.Minute), planned)
	require.Zero(t, later.Demand[1].AdhocMean, "the hour's fit is served again")
	require.Equal(t, 1.0, later.Demand[0].Planned, "with the known work of the moment counted in")
	next := forecastAt(now.Add(time.Hour), nil)
	require.Equal(t, 4.0, next.Demand[0].AdhocMean, "the next hour learns from the late rows: yesterday's burst repeats today")
}

// Collect reads the pool's sites, and says which sites of the fleet's connectors now
// belong to another pool, and which.
func TestCollectSaysWhichSitesMovedToAnotherPool(t *testing.T) {
	a, s := fleetFixture(t)
	_, err := s.Pool.Exec(context.Background(), `UPDATE sites SET pool = 'south' WHERE id = 'fra1'`)
	require.NoError(t, err)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	v, err := aenv.ExecuteActivity(a.Collect, contract.CollectInput{Pool: "default", ConnectorSites: []string{"ams1", "fra1"}})
	require.NoError(t, err)
	var res contract.CollectResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, []string{"ams1"}, res.Sites)
	require.Equal(t, []contract.SitePool{{Site: "fra1", Pool: "south"}}, res.Moved)
}

// A page of a wave holds each planned migration with its VM's inventory row, names
// those whose VM has left the inventory, and says where the next page starts.
func TestWavePageReadsMigrationsWithTheirVMs(t *testing.T) {
	a, s := fleetFixture(t)
	ctx := context.Background()
	vm1, err := s.VM(ctx, "vm-1")
	require.NoError(t, err)
	planned := planning.PlannedBatch("w1", []planning.VM{vm1, {ID: "vm-9", Site: "ams1", DiskBytes: 1, SLATier: "gold"}}, nil, "", now, now.Add(time.Hour))
	require.NoError(t, s.SavePlanned(ctx, "default", planned, now))
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	v, err := aenv.ExecuteActivity(a.WavePage, contract.WavePageInput{Wave: "w1", Limit: 10})
	require.NoError(t, err)
	var page contract.WavePage
	require.NoError(t, v.Get(&page))
	require.Len(t, page.Migrations, 1)
	require.Equal(t, "w1-vm-1", page.Migrations[0].Planned.ID)
	require.Equal(t, "/disks/vm-1.img", page.Migrations[0].VM.DiskURI)
	require.Equal(t, []string{"w1-vm-9"}, page.Missing)
	require.Equal(t, "w1-vm-9", page.Next)
	v, err = aenv.ExecuteActivity(a.WavePage, contract.WavePageInput{Wave: "w1", After: page.Next, Limit: 10})
	require.NoError(t, err)
	require.NoError(t, v.Get(&page))
	require.Equal(t, contract.WavePage{}, page, "the end")
}
