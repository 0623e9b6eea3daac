package activities

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/sim"
	"github.com/pmo-dev/pmo/trace"
)

// firstTick is the simulator's predictive policy, keeping the decision of its first tick.
type firstTick struct {
	*sim.Predictive
	first *planning.Decision
}

func (f *firstTick) Decide(v *sim.View) (sim.Decision, error) {
	d, err := f.Predictive.Decide(v)
	if f.first == nil {
		last := f.Predictive.Last
		f.first = &last
	}
	return d, err
}

// The same world given to the fleet's path (the Plan activity, reading PostgreSQL, on
// the fleet the workflow sends) and to the simulator's (its predictive policy at the
// first tick of a run) gives the same decision: targets, starts, drains, placement and
// bottlenecks. The world has history, a planned wave, a maintenance window and a pin.
func TestTheFleetAndTheSimulatorMakeTheSameDecision(t *testing.T) {
	a, s := fleetFixture(t)
	a.ForecastModel = "snaive"
	ctx := context.Background()
	sites := []string{"ams1", "fra1"}
	wave := make([]planning.PlannedMigration, 6)
	for i := range wave {
		wave[i] = planning.PlannedMigration{ID: "wave-" + string(rune('a'+i)), Site: "fra1", Bytes: 1 << 30, SLATier: "bronze",
			EarliestStart: now.Add(30 * time.Minute), Deadline: now.Add(90 * time.Minute)}
	}
	require.NoError(t, s.SavePlanned(ctx, "default", wave, now))
	require.NoError(t, s.InsertEvent(ctx, "maintenance/fra1", planning.Event{Site: "fra1", Kind: "maintenance", Severity: "warning",
		Starts: now.Add(3 * time.Hour), Ends: now.Add(4 * time.Hour), Detail: "switch upgrade"}))
	policy := planning.DefaultPolicy()
	pins := []planning.Override{{ID: "o1", Kind: planning.OverridePin, Site: "ams1", Min: 2, Who: "ann", Why: "wave", At: now, Expires: now.Add(time.Hour)}}
	fleet := planning.Fleet{Policy: policy, Overrides: pins, Sites: sites}

	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	v, err := aenv.ExecuteActivity(a.Plan, contract.PlanInput{Pool: "default", Sites: sites, Now: now, Hours: 48, Size: "medium",
		LeadTime: 15 * time.Minute, Tick: 30 * time.Second, Fleet: &fleet})
	require.NoError(t, err)
	var fromFleet planning.Decision
	require.NoError(t, v.Get(&fromFleet))
	require.True(t, fromFleet.Decided)

	// The simulator's world: the same history before the run, the same profiles, tiers,
	// events, pin and settings, and the wave known from the run's first instant.
	arrivals, bytes, err := s.HourlyHistory(ctx, sites, now.Add(-HistoryWindow), int(HistoryWindow/time.Hour))
	require.NoError(t, err)
	history := map[string]sim.Hourly{}
	for i, site := range sites {
		history[site] = sim.Hourly{Arrivals: arrivals[i], Bytes: bytes[i]}
	}
	profiles, err := s.SiteProfiles(ctx, now.Add(-HistoryWindow))
	require.NoError(t, err)
	tiers, err := s.SLATiers(ctx)
	require.NoError(t, err)
	events, err := s.Events(ctx, now, now.Add(48*time.Hour))
	require.NoError(t, err)
	var reqs []trace.Request
	for _, p := range wave {
		reqs = append(reqs, trace.Request{ID: p.ID, Site: p.Site, SLATier: p.SLATier, Bytes: p.Bytes, Wave: "w",
			KnownAt: now, Arrival: p.EarliestStart, Deadline: p.Deadline})
	}
	reqs = append(reqs, trace.Request{ID: "later", Site: "ams1", SLATier: "gold", Bytes: 1 << 20, KnownAt: now.Add(5 * time.Hour),
		Arrival: now.Add(5 * time.Hour), Deadline: now.Add(6 * time.Hour)})
	cfg := sim.DefaultConfig()
	cfg.Size, _ = planning.SizeNamed("medium")
	cfg.Tick, cfg.FailureRate = 30*time.Second, 0
	world, err := sim.NewWorld(reqs, cfg)
	require.NoError(t, err)
	p := &firstTick{Predictive: &sim.Predictive{Policy: policy, LeadTime: 15 * time.Minute, Model: "snaive", Horizon: 48,
		ForecastEvery: time.Hour, History: history, HistoryEnd: now, Sites: profiles, Tiers: tiers, Events: events, Overrides: pins}}
	_, err = sim.Run(world, p)
	require.NoError(t, err)
	fromSim := *p.first

	same := func(what string, fleet, simulated any) {
		t.Helper()
		f, err := json.Marshal(fleet)
		require.NoError(t, err)
		g, err := json.Marshal(simulated)
		require.NoError(t, err)
		require.JSONEq(t, string(f), string(g), what) // times compare as instants, whatever their zone
	}
	same("targets", targets(fromFleet.Targets), targets(fromSim.Targets))
	same("bottlenecks", fromFleet.Bottlenecks, fromSim.Bottlenecks)
	same("lead time", fromFleet.LeadTimeSeconds, fromSim.LeadTimeSeconds)
	same("events", fromFleet.Events, fromSim.Events)
	same("scale", fromFleet.Scale, fromSim.Scale)
	same("place", fromFleet.Place, fromSim.Place)
	// The world mattered: the pin, the wave and the window are all in the decision.
	var rules []string
	for _, st := range fromFleet.Scale.Start {
		rules = append(rules, st.Site+" "+st.Rule)
	}
	require.Equal(t, []string{"ams1 pin", "ams1 pin", "fra1 forecast", "fra1 forecast"}, rules)
	require.Contains(t, fromFleet.Scale.Start[2].Reason, "a planned wave of 6 migration(s)")
	require.Contains(t, fromFleet.Events, "maintenance/fra1 until "+now.Add(4*time.Hour).Format(time.RFC3339))
}

// targets are a plan's targets without what only the fleet's rate model adds.
func targets(ts []planning.SiteTarget) []planning.SiteTarget {
	out := make([]planning.SiteTarget, len(ts))
	for i, t := range ts {
		t.ExpectedSeconds = 0
		out[i] = t
	}
	return out
}
