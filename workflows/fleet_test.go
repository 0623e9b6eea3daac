package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
)

var start = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// fakeFleet stands in for PostgreSQL and the provisioner in workflow unit tests: it
// records what the workflow asked for. The real activities are tested against real
// PostgreSQL and real processes elsewhere.
type fakeFleet struct {
	mu          sync.Mutex
	provisioned []planning.Connector
	batches     []int // the connectors of each Provision call
	stopped     []string
	overrides   []string // "kind action"
	target      int
	ready       bool
	collectErrs int // Collect fails this many times before it answers
	bottlenecks []planning.Bottleneck
	leadTime    float64                                    // the plan's learned lead time, in seconds
	accuracy    []planning.ForecastAccuracy                // what a recorded forecast reads of the past week
	collected   []string                                   // every connector whose process Collect was asked about
	posted      map[string]time.Time                       // when each external connector last posted metrics, as the web server stores it
	moved       []contract.SitePool                        // sites of the fleet's connectors that moved to another pool
	synced      []string                                   // every connector recorded, as pool/id
	arrived     [][]string                                 // what each plan was told had arrived
	planOnly    bool                                       // plans as a worker from before did, deciding nothing
	decide      func(contract.PlanInput) planning.Decision // if set, the decision Plan returns
	lastReport  time.Time                                  // if set, when every own connector last reported
}

func (f *fakeFleet) register(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivity(&activities.Fleet{})
	env.RegisterActivityWithOptions(&activities.Connector{}, activity.RegisterOptions{SkipInvalidStructFunctions: true})
	env.OnActivity(fleetActivities.Collect, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.CollectInput) (contract.CollectResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.collectErrs > 0 {
				f.collectErrs--
				return contract.CollectResult{}, errors.New("database is restarting")
			}
			res := contract.CollectResult{Sites: []string{"ams1", "fra1"}}
			f.collected = append(f.collected, in.ConnectorIDs...)
			for _, id := range in.ConnectorIDs {
				h := contract.ConnectorHealth{ID: id, Running: true, Usage: planning.Usage{At: f.lastReport}}
				if f.ready {
					h.ReadyAt = start
				}
				res.Connectors = append(res.Connectors, h)
			}
			for _, m := range f.moved {
				if slices.Contains(in.ConnectorSites, m.Site) {
					res.Moved = append(res.Moved, m)
				}
			}
			for _, id := range in.External {
				res.Connectors = append(res.Connectors, contract.ConnectorHealth{ID: id, LastSeen: f.posted[id],
					Usage: planning.Usage{At: f.posted[id], CPUPercent: 3}})
			}
			return res, nil
		})
	env.OnActivity(fleetActivities.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.PlanInput) (planning.Decision, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.arrived = append(f.arrived, in.Arrived)
			if f.decide != nil {
				return f.decide(in), nil
			}
			plan := f.plan(in.Now)
			plan.Reasons = append(plan.Reasons, "forecast model: snaive168")
			plan.ForecastAccuracy = f.accuracy
			// The fake's plan, then the tick's decision on the fleet as the workflow
			// sent it, as planning.Tick makes it; a fake "from before" decides nothing.
			d := planning.Decision{Plan: plan}
			if in.Fleet != nil && !f.planOnly {
				size, _ := planning.SizeNamed(in.Size)
				d.Scale, d.Place = planning.Decide(plan, *in.Fleet, size, in.Now)
				d.Decided = true
			}
			return d, nil
		})
	env.OnActivity(fleetActivities.Provision, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.ProvisionInput) (contract.ProvisionResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.provisioned = append(f.provisioned, in.Connectors...)
			f.batches = append(f.batches, len(in.Connectors))
			return contract.ProvisionResult{}, nil
		})
	env.OnActivity(fleetActivities.Decommission, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.DecommissionInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, c := range in.Connectors {
				f.stopped = append(f.stopped, c.ID)
			}
			return nil
		})
	env.OnActivity(fleetActivities.SyncConnectors, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.SyncConnectorsInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, c := range in.Connectors {
				f.synced = append(f.synced, in.Pool+"/"+c.ID)
			}
			return nil
		})
	env.OnActivity(fleetActivities.RecordOverride, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.RecordOverrideInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.overrides = append(f.overrides, in.Override.Kind+" "+in.Action)
			return nil
		})
}

// plan is the plan the fake makes: f.target connectors at ams1.
func (f *fakeFleet) plan(now time.Time) planning.Plan {
	return planning.Plan{GeneratedAt: now, Targets: []planning.SiteTarget{{Site: "ams1", Connectors: f.target}, {Site: "fra1"}},
		Bottlenecks: f.bottlenecks, LeadTimeSeconds: f.leadTime}
}

// captureAssignment answers the fleet's assignment signals to the migration workflow
// and keeps the last one.
func captureAssignment(env *testsuite.TestWorkflowEnvironment, workflowID string) *planning.Assignment {
	var assigned planning.Assignment
	env.OnSignalExternalWorkflow(mock.Anything, workflowID, "", SignalAssigned, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error {
			assigned = arg.(planning.Assignment)
			return nil
		})
	return &assigned
}

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	env.RegisterWorkflow(FleetWorkflow)
	env.RegisterWorkflow(MigrationWorkflow)
	return env
}

func queryConnectors(t *testing.T, env *testsuite.TestWorkflowEnvironment) []planning.Connector {
	t.Helper()
	v, err := env.QueryWorkflow(QueryConnectors)
	require.NoError(t, err)
	var conns []planning.Connector
	require.NoError(t, v.Get(&conns))
	return conns
}

// continuedState decodes the state a fleet carried into its next run.
func continuedState(t *testing.T, err error) FleetState {
	t.Helper()
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "want continue-as-new, got %v", err)
	var in FleetInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
	require.NotNil(t, in.State)
	return *in.State
}

// The fleet carries out the tick's decision; a plan from a worker from before, which
// decided nothing, the fleet decides on itself with the same function, to the same end.
func TestFleetProvisionsToForecastWarmsAndContinuesAsNew(t *testing.T) {
	for _, planOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("plan only %v", planOnly), func(t *testing.T) { testFleetProvisionsToForecast(t, planOnly) })
	}
}

func testFleetProvisionsToForecast(t *testing.T, planOnly bool) {
	env := newEnv(t)
	f := &fakeFleet{target: 2, planOnly: planOnly}
	f.register(env)
	env.RegisterDelayedCallback(func() {
		conns := queryConnectors(t, env)
		require.Len(t, conns, 2)
		for _, c := range conns {
			require.Equal(t, planning.StateWarming, c.State, "not ready yet")
			require.Equal(t, "ams1", c.Site)
			require.Equal(t, ConnectorTaskQueue(c.ID), c.TaskQueue)
		}
		f.mu.Lock()
		f.ready = true
		f.mu.Unlock()
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		for _, c := range queryConnectors(t, env) {
			require.Equal(t, planning.StateWarm, c.State, "ready connectors are warm after a refresh")
		}
		v, err := env.QueryWorkflow(QueryPlan)
		require.NoError(t, err)
		var plan planning.Plan
		require.NoError(t, v.Get(&plan))
		require.Equal(t, 2, plan.Targets[0].Connectors)
		require.Contains(t, plan.Reasons, "forecast model: snaive168")
		// Demand falls: the next tick drains one idle connector and then stops it.
		f.mu.Lock()
		f.target = 1
		f.mu.Unlock()
	}, 10*time.Second)

	policy := planning.DefaultPolicy()
	policy.ScaleInCooldown = 30 * time.Second
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 3, Policy: &policy})
	require.True(t, env.IsWorkflowCompleted())
	st := continuedState(t, env.GetWorkflowError())
	require.Equal(t, policy, st.Policy, "the policy carries over")
	require.Len(t, f.provisioned, 2)
	require.Len(t, f.stopped, 1, "one idle connector drained and stopped, idle past the cooldown")
	require.Len(t, st.Connectors, 1)
	require.Equal(t, []string{"ams1", "fra1"}, st.Sites)
	require.Equal(t, 2, st.NextSeq, "connector IDs keep counting across runs")
}

// What the fleet does at a tick is the decision the Plan activity returned, carried
// out as it is: here a start at a site the plan itself does not ask for. The plan it
// shows carries the decision's reasons.
func TestFleetCarriesOutTheTicksDecision(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{}
	f.decide = func(in contract.PlanInput) planning.Decision {
		require.NotNil(t, in.Fleet, "the tick decides on the fleet as sent")
		require.Equal(t, []string{"ams1", "fra1"}, in.Fleet.Sites)
		d := planning.Decision{Plan: f.plan(in.Now), Decided: true}
		if len(in.Fleet.Connectors) == 0 {
			d.Scale = planning.ScaleDecision{Start: []planning.StartDecision{{Site: "fra1", Rule: planning.RuleForecast, Reason: "the tick says so"}},
				Reasons: []string{"fra1: wants 1"}}
		}
		return d
	}
	f.register(env)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryPlan)
		require.NoError(t, err)
		var plan planning.Plan
		require.NoError(t, v.Get(&plan))
		require.Contains(t, plan.Reasons, "fra1: wants 1", "the plan shows the decision's reasons")
	}, time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 2})
	st := continuedState(t, env.GetWorkflowError())
	require.Len(t, f.provisioned, 1)
	require.Equal(t, "fra1", f.provisioned[0].Site)
	require.Equal(t, "the tick says so", f.provisioned[0].Reason)
	require.Len(t, st.Connectors, 1, "the second tick's decision starts nothing")
}

// A tick that starts hundreds of connectors provisions them a hundred at a time, so
// that no activity's input nears Temporal's limit for a payload.
func TestFleetProvisionsAHundredConnectorsAtATime(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{}
	f.decide = func(in contract.PlanInput) planning.Decision {
		d := planning.Decision{Plan: f.plan(in.Now), Decided: true}
		if len(in.Fleet.Connectors) == 0 {
			for range 250 {
				d.Scale.Start = append(d.Scale.Start, planning.StartDecision{Site: "ams1", Rule: planning.RuleForecast, Reason: "a big wave"})
			}
		}
		return d
	}
	f.register(env)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 1})
	st := continuedState(t, env.GetWorkflowError())
	require.Equal(t, []int{100, 100, 50}, f.batches)
	require.Len(t, st.Connectors, 250)
}

func TestFleetOverridesAreAppliedAuditedAndExpire(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{}
	f.register(env)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalOverride, planning.Override{ID: "o1", Kind: planning.OverridePin, Site: "ams1", Min: 2,
			Who: "ann", Why: "wave", At: start, Expires: start.Add(150 * time.Second)})
		env.SignalWorkflow(SignalOverride, planning.Override{ID: "o2", Kind: planning.OverrideDrain, ConnectorID: "nope",
			Who: "bob", Why: "typo", At: start, Expires: start.Add(time.Hour)})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		require.Len(t, queryConnectors(t, env), 2, "the pin raised ams1 to 2 connectors though the forecast wants 0")
		v, err := env.QueryWorkflow(QueryOverrides)
		require.NoError(t, err)
		var view OverridesView
		require.NoError(t, v.Get(&view))
		require.Len(t, view.Active, 1)
		require.Equal(t, "o1", view.Active[0].ID)
	}, 70*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 4})
	st := continuedState(t, env.GetWorkflowError())
	require.Empty(t, st.Overrides, "the pin expired")
	require.Equal(t, []string{"pin applied", "drain rejected", "pin expired"}, f.overrides)
}

func TestFleetAssignsWaitingMigrationAndFreesSlotOnRelease(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{target: 1, ready: true}
	f.register(env)
	assigned := captureAssignment(env, "migration-m1")
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalReserve, planning.Reservation{MigrationID: "m1", WorkflowID: "migration-m1", Site: "ams1", Deadline: start.Add(time.Hour)})
	}, 5*time.Second)
	env.RegisterDelayedCallback(func() {
		require.Equal(t, "m1", assigned.MigrationID)
		conns := queryConnectors(t, env)
		require.Equal(t, planning.StateActive, conns[0].State)
		require.Equal(t, "m1", conns[0].Migrations[0].MigrationID)
		env.SignalWorkflow(SignalRelease, Release{MigrationID: "m1", ConnectorID: assigned.ConnectorID})
	}, 10*time.Second)
	env.RegisterDelayedCallback(func() {
		conns := queryConnectors(t, env)
		require.Equal(t, planning.StateWarm, conns[0].State)
		require.Empty(t, conns[0].Migrations)
	}, 15*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 2})
	continuedState(t, env.GetWorkflowError())
	require.Equal(t, "default-ams1-1", assigned.ConnectorID)
	require.Equal(t, ConnectorTaskQueue("default-ams1-1"), assigned.TaskQueue)
}

func TestFleetStartsAConnectorReactivelyForWorkAtAnEmptySite(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{target: 0, ready: true}
	f.register(env)
	env.OnSignalExternalWorkflow(mock.Anything, "migration-m2", "", SignalAssigned, mock.Anything).Return(nil)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalReserve, planning.Reservation{MigrationID: "m2", WorkflowID: "migration-m2", Site: "fra1", Deadline: start.Add(time.Hour)})
	}, 5*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 2})
	st := continuedState(t, env.GetWorkflowError())
	require.Len(t, f.provisioned, 1)
	require.Equal(t, "fra1", f.provisioned[0].Site)
	require.Empty(t, st.Waiting, "the migration got the new connector once it was ready")
	require.Equal(t, "m2", st.Connectors[0].Migrations[0].MigrationID)
}

func TestFleetTakesOutAFailedConnectorAndReplacesIt(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{target: 1, ready: true}
	f.register(env)
	var failed string
	env.RegisterDelayedCallback(func() {
		conns := queryConnectors(t, env)
		require.Len(t, conns, 1)
		failed = conns[0].ID
		env.SignalWorkflow(SignalConnectorFailed, ConnectorFailure{ConnectorID: failed, MigrationID: "m1", Reason: "heartbeat timeout"})
	}, 10*time.Second)
	env.RegisterDelayedCallback(func() {
		conns := queryConnectors(t, env)
		require.Len(t, conns, 1, "the plan still wants one connector at ams1")
		require.NotEqual(t, failed, conns[0].ID, "a new connector replaced the failed one")
	}, 2*time.Minute+time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 4})
	st := continuedState(t, env.GetWorkflowError())
	require.Contains(t, f.stopped, failed, "the failed connector's process was stopped")
	require.True(t, slices.ContainsFunc(st.Audit, func(e AuditEntry) bool { return e.Action == "connector failed" }))
}

func TestFleetHoldsPlacementsDuringMaintenance(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{target: 1, ready: true, bottlenecks: []planning.Bottleneck{
		{Site: "ams1", Kind: "maintenance", From: start, To: start.Add(5 * time.Minute), Detail: "switch upgrade"}}}
	f.register(env)
	var assignedAt time.Time
	env.OnSignalExternalWorkflow(mock.Anything, "migration-m1", "", SignalAssigned, mock.Anything).Return(
		func(_, _, _, _ string, _ any) error { assignedAt = env.Now(); return nil })
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalReserve, planning.Reservation{MigrationID: "m1", WorkflowID: "migration-m1", Site: "ams1", Deadline: start.Add(time.Hour)})
	}, time.Minute)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 8})
	continuedState(t, env.GetWorkflowError())
	require.False(t, assignedAt.IsZero(), "assigned once the window ended")
	require.False(t, assignedAt.Before(start.Add(5*time.Minute)), "not during the window: assigned at %s", assignedAt)
	require.NotEmpty(t, f.provisioned)
	for _, c := range f.provisioned {
		require.False(t, c.CreatedAt.Before(start.Add(5*time.Minute)), "no connector started at a site in maintenance: %s at %s", c.ID, c.CreatedAt)
	}
}

// Migrations reach the fleet by their reservation. The planned work lives in the
// store: each plan is told which migrations arrived since the one before, once each.
func TestFleetTellsThePlanWhichMigrationsArrived(t *testing.T) {
	// With the site open the first reservation is assigned at once, and the repeated
	// one is answered again; with the site in maintenance both wait, and the second
	// takes the first's place.
	for _, maintenance := range []bool{false, true} {
		t.Run(fmt.Sprintf("maintenance %v", maintenance), func(t *testing.T) {
			env := newEnv(t)
			f := &fakeFleet{target: 1, ready: true}
			if maintenance {
				f.bottlenecks = []planning.Bottleneck{{Site: "ams1", Kind: "maintenance", From: start, To: start.Add(90 * time.Second)}}
			}
			f.register(env)
			var told []planning.Assignment
			env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalAssigned, mock.Anything).Return(
				func(_, _, _, _ string, arg any) error {
					told = append(told, arg.(planning.Assignment))
					return nil
				})
			st := FleetState{Policy: planning.DefaultPolicy()}
			env.RegisterDelayedCallback(func() {
				for _, id := range []string{"wave1-vm-1", "wave1-vm-1", "adhoc-1"} {
					env.SignalWorkflow(SignalReserve, planning.Reservation{MigrationID: id, WorkflowID: MigrationWorkflowID(id), Site: "ams1",
						Bytes: 1 << 20, Deadline: start.Add(time.Hour)})
				}
			}, 2*time.Second)
			env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 3, State: &st})
			after := continuedState(t, env.GetWorkflowError())

			for _, id := range []string{"wave1-vm-1", "adhoc-1"} {
				require.True(t, slices.ContainsFunc(told, func(a planning.Assignment) bool { return a.MigrationID == id }), "%s was assigned", id)
			}
			require.Equal(t, [][]string{nil, {"wave1-vm-1", "adhoc-1"}, nil}, f.arrived,
				"the second plan hears of each arrival once, the third of none")
			require.Empty(t, after.Arrived)
		})
	}
}
