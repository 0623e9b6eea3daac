package activities_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
)

func simulate(t *testing.T, a *activities.Fleet, in contract.SimulateInput) contract.SimulateResult {
	t.Helper()
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	v, err := aenv.ExecuteActivity(a.Simulate, in)
	require.NoError(t, err)
	var res contract.SimulateResult
	require.NoError(t, v.Get(&res))
	return res
}

func TestSimulateAPlannedWaveUnderAPoolMaximumOfOne(t *testing.T) {
	a, s := activities.FleetFixture(t)
	now := activities.Now.Add(7 * time.Minute) // off the hour, as a request comes
	// 20 migrations of 60 MiB at ams1 in two hours, due three minutes after they may
	// start: a medium connector moves four at 1 MiB/s each, a minute apiece, so five
	// connectors side by side make it and one alone, four at a time, does not.
	start := now.Add(2 * time.Hour)
	var wave []planning.PlannedMigration
	for i := range 20 {
		wave = append(wave, planning.PlannedMigration{ID: fmt.Sprintf("wave1-%d", i), Site: "ams1", Bytes: 60 << 20, SLATier: "gold",
			EarliestStart: start, Deadline: start.Add(3 * time.Minute)})
	}
	// The wave is the pool's known work in the store, beside a migration planned for
	// after the window and one another pool planned.
	later := planning.PlannedMigration{ID: "wave2-0", Site: "ams1", Bytes: 60 << 20, EarliestStart: now.Add(30 * time.Hour), Deadline: now.Add(31 * time.Hour)}
	require.NoError(t, s.SavePlanned(context.Background(), "default", append(wave, later), now))
	require.NoError(t, s.SavePlanned(context.Background(), "other", []planning.PlannedMigration{{ID: "elsewhere", Site: "ams1", Bytes: 1,
		EarliestStart: start, Deadline: start.Add(time.Hour)}}, now))
	current := planning.DefaultPolicy()
	proposed := current
	proposed.MaxConnectors = 1
	in := contract.SimulateInput{Pool: "default", Sites: []string{"ams1", "fra1"}, Now: now, Hours: 24, Seed: 1,
		Size: "medium", LeadTime: 15 * time.Minute, Tick: 30 * time.Second, HorizonHours: 48, Current: current, Proposed: proposed}
	began := time.Now()
	res := simulate(t, a, in)
	t.Logf("%.1f s: %+v", time.Since(began).Seconds(), res)

	require.Equal(t, now, res.From)
	require.Equal(t, now.Add(24*time.Hour), res.To)
	require.Equal(t, 20, res.Planned)
	// ams1 saw h%3 migrations at hour h of each day, a day's 24 hours, so about 24
	// ad-hoc ones are drawn; fra1 saw none.
	require.InDelta(t, 24, res.Adhoc, 12)
	require.Equal(t, 240.0, res.ProvisionDelaySeconds, "no boots measured yet: the simulator's default")
	require.Len(t, res.Results, 3, "current, proposed and the baseline")
	cur, prop, base := res.Results[0], res.Results[1], res.Results[2]
	require.Equal(t, "current", cur.Name)
	require.Equal(t, "proposed", prop.Name)
	require.Equal(t, 20+res.Adhoc, cur.Migrations)
	require.Equal(t, cur.Migrations, prop.Migrations)
	tiers := 0
	for _, tier := range cur.Tiers {
		tiers += tier.Migrations
	}
	require.Equal(t, cur.Migrations, tiers, "every migration is in its tier's outcomes")
	require.Greater(t, prop.SLABreaches, cur.SLABreaches, "one connector cannot move the wave in time")
	require.Greater(t, prop.WaitP95, cur.WaitP95, "the wave queues behind one connector")
	require.Len(t, res.Reasoning, 3)
	require.Contains(t, res.Reasoning[1], "proposed policy, mode active, connectors 0..1")

	// Both are measured against reactive+waves tuned on the same work: the cheapest of
	// its 216 settings that keeps the p99 wait within a minute.
	require.Equal(t, contract.Baseline{Setting: res.Baseline.Setting, Settings: 216, MaxWaitSeconds: 60}, res.Baseline)
	require.Regexp(t, `^-reactive-target [01]\.\d -reactive-headroom [0-3] -reactive-cooldown (2|5|10)m -lead-time (5|10|15)m$`, res.Baseline.Setting)
	require.Equal(t, "reactive+waves", base.Name)
	require.Equal(t, cur.Migrations, base.Migrations, "the same work")
	require.LessOrEqual(t, base.WaitP99, 60.0)
	require.InDelta(t, cur.ConnectorHours/base.ConnectorHours, cur.VersusBaseline, 1e-9)
	require.InDelta(t, prop.ConnectorHours/base.ConnectorHours, prop.VersusBaseline, 1e-9)
	require.Zero(t, base.VersusBaseline)
	require.Contains(t, res.Reasoning[2], "reactive+waves, the baseline (the cheapest of its 216 settings with a p99 wait within 1m0s on this work: "+res.Baseline.Setting+")")
	require.Contains(t, res.Reasoning[0], fmt.Sprintf("; %.2f × the baseline's connector-hours", cur.VersusBaseline))

	// The same seed gives the same answer; another draws other arrivals.
	again := simulate(t, a, in)
	for i := range again.Results {
		again.Results[i].Seconds = res.Results[i].Seconds
	}
	require.Equal(t, res, again)
	in.Seed = 2
	other := simulate(t, a, in)
	require.NotEqual(t, res.Results[0].WaitP50+float64(res.Adhoc)+res.Results[0].ConnectorHours,
		other.Results[0].WaitP50+float64(other.Adhoc)+other.Results[0].ConnectorHours)

	// It records nothing.
	for _, table := range []string{"forecasts", "plans", "connectors", "system_events"} {
		var n int
		require.NoError(t, s.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n))
		require.Zero(t, n, table)
	}
}
