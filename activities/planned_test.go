package activities

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// A tick's plan reads the pool's planned work from the store, first taking out what
// arrived; a migration that was planned is recorded as planned when it ends.
func TestPlanReadsPlannedWorkFromTheStoreWithoutWhatArrived(t *testing.T) {
	a, s := fleetFixture(t)
	ctx := context.Background()
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	at := now.Add(90 * time.Minute)
	planned := []planning.PlannedMigration{
		{ID: "w1-vm-2", VMID: "vm-2", Site: "fra1", Bytes: 1000, SLATier: "bronze", EarliestStart: at, Deadline: at.Add(time.Hour)},
		{ID: "w1-x", Site: "fra1", Bytes: 1000, EarliestStart: at, Deadline: at.Add(time.Hour)},
		{ID: "w0-x", Site: "fra1", Bytes: 1000, EarliestStart: now.Add(-3 * time.Hour), Deadline: now.Add(-time.Hour)},
	}
	require.NoError(t, s.SavePlanned(ctx, "default", planned, now))

	v, err := aenv.ExecuteActivity(a.Plan, contract.PlanInput{Pool: "default", Sites: []string{"ams1", "fra1"}, Now: now, Hours: 6,
		Size: "medium", LeadTime: 15 * time.Minute, Tick: 30 * time.Second, Arrived: []string{"w1-vm-2", "adhoc-1"}})
	require.NoError(t, err)
	var plan planning.Plan
	require.NoError(t, v.Get(&plan))
	require.Len(t, plan.Targets, 2)
	require.Empty(t, plan.Hours, "the hourly plan stays in the store")
	require.Contains(t, plan.Reasons[len(plan.Reasons)-1], "forecast model: ")

	var known float64
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT planned FROM forecasts WHERE site_id = 'fra1' AND target_hour = $1`, now.Add(time.Hour)).Scan(&known))
	require.Equal(t, 1.0, known, "one of the two migrations planned for that hour arrived; the overdue one is not counted")
	left, err := s.Planned(ctx, "default", now)
	require.NoError(t, err)
	require.Equal(t, []string{"w1-x"}, ids(left))

	for _, id := range []string{"w1-vm-2", "adhoc-1"} {
		require.NoError(t, s.InsertMigration(ctx, planning.MigrationRecord{ID: id, VMID: "vm-2", Site: "fra1", ConnectorID: "c1", SLATier: "bronze",
			Bytes: 1, StartedAt: now, EndedAt: now.Add(time.Second), Outcome: "succeeded"}))
	}
	for id, want := range map[string]bool{"w1-vm-2": true, "adhoc-1": false} {
		m, err := s.MigrationByID(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, m.Planned, id)
	}
}

// A forecast request is answered in one activity: it refuses a VM of another pool by
// its field, plans a batch once however often it is retried, and plans a what-if.
func TestForecastBatchEstimatesPlansOnceAndAnswersAWhatIf(t *testing.T) {
	a, s := fleetFixture(t)
	ctx := context.Background()
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	in := contract.ForecastBatchInput{Pool: "default", Now: now, ID: "w1", VMIDs: []string{"vm-1", "vm-2"},
		VMs:           []planning.VMSpec{{Site: "fra1", DiskBytes: 1 << 30}},
		EarliestStart: now.Add(2 * time.Hour), Deadline: now.Add(6 * time.Hour), Sites: []string{"ams1"},
		Size: "medium", HorizonHours: 12, LeadTime: 15 * time.Minute, Tick: 30 * time.Second, Plan: true}

	_, err := aenv.ExecuteActivity(a.ForecastBatch, in)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.True(t, appErr.NonRetryable())
	var fe validation.Error
	require.NoError(t, appErr.Details(&fe))
	require.Equal(t, "vm_ids[1]", fe.Field, "vm-2 is at fra1, not in the pool")
	left, err := s.Planned(ctx, "default", now)
	require.NoError(t, err)
	require.Empty(t, left, "a refused batch plans nothing")

	in.Sites = []string{"ams1", "fra1"}
	for range 2 {
		v, err := aenv.ExecuteActivity(a.ForecastBatch, in)
		require.NoError(t, err)
		var res contract.ForecastBatchResult
		require.NoError(t, v.Get(&res))
		require.Equal(t, 3, res.Planned)
		require.Len(t, res.Estimate.Sites, 2)
		require.Nil(t, res.Today)
	}
	left, err = s.Planned(ctx, "default", now)
	require.NoError(t, err)
	require.Equal(t, []string{"w1-0", "w1-vm-1", "w1-vm-2"}, ids(left), "each once, by ID")
	require.Equal(t, "gold", left[1].SLATier, "the VM's own tier")

	in.ID, in.Plan, in.WhatIf = "w2", false, &planning.WhatIf{LoseLink: []string{"ams1"}}
	v, err := aenv.ExecuteActivity(a.ForecastBatch, in)
	require.NoError(t, err)
	var res contract.ForecastBatchResult
	require.NoError(t, v.Get(&res))
	require.Zero(t, res.Planned)
	require.NotNil(t, res.Today)
	require.NotNil(t, res.WhatIf)
	left, err = s.Planned(ctx, "default", now)
	require.NoError(t, err)
	require.Len(t, left, 3, "a what-if plans nothing")
}

func ids(ps []planning.PlannedMigration) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// A fleet plans for the sites of its own pool only.
func TestCollectSeesTheSitesOfItsPool(t *testing.T) {
	a, s := fleetFixture(t)
	_, err := s.Pool.Exec(context.Background(), `INSERT INTO sites (id, name, region, uplink_bytes_per_sec, pool) VALUES ('nyc1', 'New York', 'us-east', 1e9, 'americas')`)
	require.NoError(t, err)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	for pool, want := range map[string][]string{"default": {"ams1", "fra1"}, "americas": {"nyc1"}} {
		v, err := aenv.ExecuteActivity(a.Collect, contract.CollectInput{Pool: pool})
		require.NoError(t, err)
		var res contract.CollectResult
		require.NoError(t, v.Get(&res))
		require.Equal(t, want, res.Sites, pool)
	}
}

// A pool's plan holds its own sites' events only, however many pools share the store.
func TestPlanIsOfThePoolsSitesOnly(t *testing.T) {
	a, s := fleetFixture(t)
	require.NoError(t, s.InsertEvent(context.Background(), "fra1-firmware", planning.Event{Site: "fra1", Kind: "maintenance", Severity: "info",
		Starts: now.Add(time.Hour), Ends: now.Add(2 * time.Hour), Detail: "firmware", Source: "test"}))
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	for sites, want := range map[string]bool{"ams1": false, "ams1 fra1": true} {
		v, err := aenv.ExecuteActivity(a.Plan, contract.PlanInput{Pool: "default", Sites: strings.Fields(sites), Now: now, Hours: 6,
			Size: "medium", LeadTime: 15 * time.Minute, Tick: 30 * time.Second})
		require.NoError(t, err)
		var plan planning.Plan
		require.NoError(t, v.Get(&plan))
		require.Len(t, plan.Targets, len(strings.Fields(sites)))
		require.Equal(t, want, slices.ContainsFunc(plan.Bottlenecks, func(b planning.Bottleneck) bool { return b.Site == "fra1" }), sites)
		require.Equal(t, want, len(plan.Events) == 1, sites)
	}
}
