package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/validation"
)

var now = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// fleetFixture is a real database with two sites, tiers, a few VMs and four weeks of
// history in which ams1 sees h%3 migrations at hour h of each week and fra1 none.
func fleetFixture(t *testing.T) (*Fleet, *store.Store) {
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
	start := now.Add(-HistoryWindow)
	n := 0
	for h := range int(HistoryWindow / time.Hour) {
		for range h % 168 % 3 {
			n++
			at := start.Add(time.Duration(h)*time.Hour + 10*time.Minute)
			exec(`INSERT INTO migrations VALUES ($1, 'vm-1', 'ams1', 'c1', 'gold', 2097152, $2, $3, 1048576, 'succeeded', 2, '')`,
				fmt.Sprint("h", n), at, at.Add(2*time.Second))
		}
	}
	return &Fleet{Store: s, Logger: slog.Default(), Now: func() time.Time { return now }}, s
}

func TestForecastIsLastWeekPlusPlannedWork(t *testing.T) {
	a, s := fleetFixture(t)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	planned := []planning.PlannedMigration{{ID: "p1", Site: "fra1", Bytes: 1000, EarliestStart: now.Add(90 * time.Minute)}}
	v, err := aenv.ExecuteActivity(a.Forecast, ForecastInput{Pool: "default", Sites: []string{"ams1", "fra1"}, Now: now, From: now, Hours: 6, Planned: planned, Record: true})
	require.NoError(t, err)
	var res ForecastResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, "snaive168", res.Model)
	require.Len(t, res.Demand, 12)
	hourOfWeek := int(HistoryWindow/time.Hour) % 168 // the history starts at hour 0 of its weekly pattern
	for i, d := range res.Demand[:6] {
		want := float64((hourOfWeek + i) % 168 % 3)
		require.Equal(t, want, d.AdhocMean, "ams1 hour %d repeats last week", i)
		require.Equal(t, want, d.AdhocLo, "a perfectly weekly history has no spread")
	}
	require.Equal(t, 1.0, res.Demand[6+1].Planned, "fra1's planned migration starts in the second hour")
	require.Equal(t, 1000.0, res.Demand[6+1].PlannedBytes)
	var rows int
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM forecasts`).Scan(&rows))
	require.Equal(t, 12, rows)

	// A later horizon is forecast from the same history: hours skipped are not lost.
	v, err = aenv.ExecuteActivity(a.Forecast, ForecastInput{Sites: []string{"ams1"}, Now: now, From: now.Add(24 * time.Hour), Hours: 2})
	require.NoError(t, err)
	require.NoError(t, v.Get(&res))
	require.Equal(t, float64((hourOfWeek+24)%168%3), res.Demand[0].AdhocMean)
}

func TestPredictRecordsAPlanFromProfiles(t *testing.T) {
	a, s := fleetFixture(t)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	demand := []planning.Demand{{Site: "ams1", Hour: now, AdhocMean: 2, AdhocLo: 1, AdhocHi: 3}, {Site: "fra1", Hour: now}}
	v, err := aenv.ExecuteActivity(a.Predict, PredictInput{Pool: "default", Now: now, Demand: demand, Size: "medium", LeadTime: 15 * time.Minute, Record: true})
	require.NoError(t, err)
	var plan planning.Plan
	require.NoError(t, v.Get(&plan))
	require.Len(t, plan.Targets, 2)
	require.Equal(t, 1, plan.Targets[0].Connectors, "ams1 expects work")
	require.Equal(t, 0, plan.Targets[1].Connectors, "fra1 expects none")
	require.Contains(t, plan.Targets[0].Reason, "p90", "ams1's gold VMs size to the 90% quantile")
	var stored int
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT count(*) FROM plans WHERE pool = 'default'`).Scan(&stored))
	require.Equal(t, 1, stored)

	_, err = aenv.ExecuteActivity(a.Predict, PredictInput{Now: now, Size: "gigantic"})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.True(t, appErr.NonRetryable())
}

func TestLookupVMNotFoundNamesTheField(t *testing.T) {
	a, _ := fleetFixture(t)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	v, err := aenv.ExecuteActivity(a.LookupVM, LookupVMInput{VMID: "vm-1"})
	require.NoError(t, err)
	var vm planning.VM
	require.NoError(t, v.Get(&vm))
	require.Equal(t, "ams1", vm.Site)
	require.Equal(t, 120*time.Second, vm.MaxTransfer)

	_, err = aenv.ExecuteActivity(a.LookupVMs, LookupVMsInput{VMIDs: []string{"vm-1", "vm-9"}})
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
		_, err = aenv.ExecuteActivity(a.RecordOverride, RecordOverrideInput{Pool: "default", Override: o, Action: "applied", At: now})
		require.NoError(t, err)
		_, err = aenv.ExecuteActivity(a.RecordBreach, RecordBreachInput{MigrationID: "m1", Site: "ams1", ConnectorID: "c1", Deadline: now, MaxTransfer: time.Minute})
		require.NoError(t, err)
	}
	_, err := aenv.ExecuteActivity(a.RecordOverride, RecordOverrideInput{Pool: "default", Override: o, Action: "expired", At: now.Add(time.Hour)})
	require.NoError(t, err)
	require.Equal(t, 1, count(`SELECT count(*) FROM migrations WHERE id = 'm1'`))
	require.Equal(t, 1, count(`SELECT count(*) FROM overrides`))
	require.Equal(t, 2, count(`SELECT count(*) FROM override_audit WHERE override_id = 'o1'`))
	require.Equal(t, 1, count(`SELECT count(*) FROM system_events WHERE kind = 'anomaly'`))
}
