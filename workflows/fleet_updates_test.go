package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

func TestFleetScaleUpdateValidatesBeforeHistory(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{}
	f.register(env)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateScale, "bad-site", &testsuite.TestUpdateCallback{
			OnAccept:   func() { t.Error("an unknown site was accepted") },
			OnReject:   func(err error) { require.ErrorContains(t, err, `unknown site "zrh9"`) },
			OnComplete: func(any, error) {},
		}, ScaleRequest{Action: ScaleProvision, Site: "zrh9", Count: 1, Who: "ann", Why: "test"})
		env.UpdateWorkflow(UpdateScale, "bad-count", &testsuite.TestUpdateCallback{
			OnAccept:   func() { t.Error("count 0 was accepted") },
			OnReject:   func(err error) { require.ErrorContains(t, err, "count") },
			OnComplete: func(any, error) {},
		}, ScaleRequest{Action: ScaleProvision, Site: "ams1", Count: 0, Who: "ann", Why: "test"})
		env.UpdateWorkflow(UpdateScale, "good", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { t.Errorf("rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				res := v.(ScaleResult)
				require.Len(t, res.Connectors, 3)
				require.True(t, res.Connectors[0].Manual)
				require.Equal(t, "large", res.Connectors[0].Size.Name)
			},
		}, ScaleRequest{Action: ScaleProvision, Site: "fra1", Count: 3, Size: "large", Who: "ann", Why: "wave at 9"})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		conns := queryConnectors(t, env)
		require.Len(t, conns, 3, "the forecast wants none, but manual connectors stay")
		env.UpdateWorkflow(UpdateScale, "drain", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				require.Equal(t, planning.StateDraining, v.(ScaleResult).Connectors[0].State)
			},
		}, ScaleRequest{Action: ScaleDrain, ConnectorID: conns[0].ID, Who: "ann", Why: "host patching"})
	}, 2*time.Minute+time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 5})
	st := continuedState(t, env.GetWorkflowError())
	require.Len(t, st.Connectors, 2, "the drained connector was stopped")
	require.Len(t, f.stopped, 1)
	require.Equal(t, "scale provision", st.Audit[0].Action)
	require.Equal(t, "ann", st.Audit[0].Who)
}

func TestFleetScaleUpdateAtStartUpWaitsForTheSites(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{collectErrs: 3} // the first Collect is retried for a few seconds
	f.register(env)
	var good, bad bool
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateScale, "early", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected before the sites were known: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				require.Len(t, v.(ScaleResult).Connectors, 1)
				good = true
			},
		}, ScaleRequest{Action: ScaleProvision, Site: "ams1", Count: 1, Who: "ann", Why: "early bird"})
		env.UpdateWorkflow(UpdateScale, "early-unknown", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected before the sites were known: %v", err) },
			OnComplete: func(v any, err error) {
				require.ErrorContains(t, err, `unknown site "zrh9"`)
				bad = true
			},
		}, ScaleRequest{Action: ScaleProvision, Site: "zrh9", Count: 1, Who: "ann", Why: "typo"})
	}, time.Millisecond)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 2})
	st := continuedState(t, env.GetWorkflowError())
	require.True(t, good && bad, "both updates completed")
	require.Len(t, st.Connectors, 1)
	require.Equal(t, "ams1", st.Connectors[0].Site)
}

func TestFleetPolicyUpdateIsValidatedAuditedAndFollowed(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{target: 2, ready: true}
	f.register(env)
	forecastOnly, wrong := planning.ModeForecastOnly, "yolo"
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdatePolicy, "bad", &testsuite.TestUpdateCallback{
			OnAccept:   func() { t.Error("a bad mode was accepted") },
			OnReject:   func(err error) { require.ErrorContains(t, err, "mode") },
			OnComplete: func(any, error) {},
		}, PolicyRequest{Mode: &wrong, Who: "ann", Why: "test"})
		env.UpdateWorkflow(UpdatePolicy, "good", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				require.Equal(t, planning.ModeForecastOnly, v.(planning.Policy).Mode)
			},
		}, PolicyRequest{Mode: &forecastOnly, Who: "ann", Why: "watch before trusting it"})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		f.mu.Lock()
		f.target = 4 // the plan now wants more
		f.mu.Unlock()
	}, 30*time.Second)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryPlan)
		require.NoError(t, err)
		var plan planning.Plan
		require.NoError(t, v.Get(&plan))
		require.True(t, slices.ContainsFunc(plan.Reasons, func(r string) bool { return strings.Contains(r, "forecast-only: the plan wants 4") }), "%v", plan.Reasons)
	}, 90*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 3})
	st := continuedState(t, env.GetWorkflowError())
	require.Len(t, f.provisioned, 2, "the first tick, before the change, started 2; forecast-only started nothing more")
	require.Equal(t, planning.ModeForecastOnly, st.Policy.Mode)
	require.Equal(t, "policy", st.Audit[len(st.Audit)-1].Action)
}

// A forecast's answer carries each site's arithmetic, bounded and explained by the
// fleet's state: the pin in force, the lead time and forecast error of its last plan.
func TestFleetForecastAnswerCarriesItsArithmetic(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{ready: true, leadTime: 990, accuracy: []planning.ForecastAccuracy{
		{Site: "ams1", Scored: 72, MAE: 0.6, Bias: 0.2, Coverage: 0.75, LoLevel: 0.1, HiLevel: 0.9}}}
	f.register(env)
	// The batch activity as it sizes a batch, on a demand without ad-hoc work.
	var view planning.FleetView
	env.OnActivity(fleetActivities.ForecastBatch, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.ForecastBatchInput) (contract.ForecastBatchResult, error) {
			view = in.Fleet
			size, _ := planning.SizeNamed(in.Size)
			var batch []planning.PlannedMigration
			for i, v := range in.VMs {
				batch = append(batch, planning.PlannedMigration{ID: fmt.Sprint(in.ID, "-", i), Site: v.Site, Bytes: v.DiskBytes,
					EarliestStart: in.EarliestStart, Deadline: in.Deadline})
			}
			demand := []planning.Demand{{Site: "ams1", Hour: in.EarliestStart, Model: "snaive168"}}
			est := planning.EstimateBatch(planning.EstimateInput{Planned: batch, Demand: demand, Size: size, Fleet: in.Fleet,
				Sites: []planning.Site{{ID: "ams1", StrictestQuantile: 0.9, StrictestTier: "gold"}}})
			return contract.ForecastBatchResult{Estimate: est}, nil
		})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalOverride, planning.Override{ID: "o1", Kind: planning.OverridePin, Site: "ams1", Max: 1,
			Who: "ann", Why: "change freeze", At: start, Expires: start.Add(4 * time.Hour)})
	}, time.Second)
	var answer ForecastAnswer
	env.RegisterDelayedCallback(func() {
		// Two 8 GiB VMs within an hour need 4.6 MiB/s: two medium connectors.
		env.UpdateWorkflow(UpdateForecast, "f1", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				answer = v.(ForecastAnswer)
			},
		}, ForecastRequest{ID: "w1", VMs: []planning.VMSpec{{Site: "ams1", DiskBytes: 8 << 30}, {Site: "ams1", DiskBytes: 8 << 30}},
			EarliestStart: start.Add(2 * time.Hour), Deadline: start.Add(3 * time.Hour)})
	}, 2*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 2})
	continuedState(t, env.GetWorkflowError())

	require.Equal(t, time.Duration(990)*time.Second, view.LeadTime, "the last plan's lead time")
	require.Equal(t, planning.DefaultLeadTime, view.LeadTimeSetting)
	require.Equal(t, []planning.Pin{{Site: "ams1", Max: 1, Who: "ann", Why: "change freeze", Until: start.Add(4 * time.Hour)}}, view.Pins)
	require.Len(t, answer.Sites, 1)
	a := answer.Sites[0].Arithmetic
	require.Equal(t, 2, a.Need.Connectors)
	require.Equal(t, 1, a.Need.BoundedConnectors, "the pin holds ams1 to one")
	require.Equal(t, planning.BoundPin, a.Bound.Kind)
	require.Equal(t, 990.0, a.LeadTime.Seconds)
	require.Equal(t, "learned", a.LeadTime.Source)
	require.Equal(t, start.Add(2*time.Hour-990*time.Second), a.LeadTime.StartAt)
	require.Equal(t, 0.9, a.Adhoc.Quantile)
	require.Equal(t, "snaive168", a.Model.Name)
	require.NotNil(t, a.Model.Accuracy)
	require.Equal(t, 72, a.Model.Accuracy.Scored)
	require.Equal(t, 0.6, a.Model.Accuracy.MAE)
	require.True(t, slices.ContainsFunc(answer.Bottlenecks, func(b planning.Bottleneck) bool {
		return b.Kind == "connectors" && b.Site == "ams1" && strings.Contains(b.Detail, "pinned to at most 1 by ann")
	}), "%+v", answer.Bottlenecks)
	require.Len(t, answer.Reasoning, 1)
	require.Contains(t, answer.Reasoning[0], "2 connector(s), 1 after bounds (pinned to at most 1 by ann")
	require.Contains(t, answer.Reasoning[0], "forecast by snaive168: MAE 0.60 migrations/h")
}

func TestFleetSimulateUpdateRunsThePlannedWorkOfTheWindowAndChangesNothing(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{target: 1, ready: true}
	f.register(env)
	var got contract.SimulateInput
	env.OnActivity(fleetActivities.Simulate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.SimulateInput) (contract.SimulateResult, error) {
			got = in
			return contract.SimulateResult{Results: []contract.PolicyRun{{Name: "current"}, {Name: "proposed"}}}, nil
		})
	policy := planning.DefaultPolicy()
	policy.MinConnectors = 2
	st := FleetState{Policy: policy}
	one, five, cooldown := 1, 5, "2m"
	var answer SimulateAnswer
	var rejected []string
	reject := func(field string) *testsuite.TestUpdateCallback {
		return &testsuite.TestUpdateCallback{
			OnAccept: func() { t.Errorf("accepted a bad %s", field) }, OnComplete: func(any, error) {},
			OnReject: func(err error) {
				require.ErrorContains(t, err, field+":")
				rejected = append(rejected, field)
			},
		}
	}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateSimulate, "hours", reject("hours"), SimulateRequest{Hours: 0})
		// Below the minimum in force: only the fleet can tell.
		env.UpdateWorkflow(UpdateSimulate, "max", reject("policy.max_connectors"),
			SimulateRequest{Policy: PolicyRequest{MaxConnectors: &one}, Hours: 24})
		env.UpdateWorkflow(UpdateSimulate, "good", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				answer = v.(SimulateAnswer)
			},
		}, SimulateRequest{Policy: PolicyRequest{MaxConnectors: &five, ScaleInCooldown: &cooldown}, Hours: 24, Seed: 7})
	}, 2*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 2, State: &st})
	after := continuedState(t, env.GetWorkflowError())

	require.Equal(t, []string{"hours", "policy.max_connectors"}, rejected)
	require.Equal(t, 24, got.Hours)
	require.Equal(t, uint64(7), got.Seed)
	require.Equal(t, []string{"ams1", "fra1"}, got.Sites)
	require.Equal(t, "medium", got.Size)
	require.Equal(t, time.Minute, got.Tick)
	require.Equal(t, planning.DefaultLeadTime, got.LeadTime)
	require.Equal(t, policy, got.Current)
	want := policy
	want.MaxConnectors, want.ScaleInCooldown = 5, 2*time.Minute
	require.Equal(t, want, got.Proposed, "the change on the policy in force")
	require.Equal(t, policy, answer.Current)
	require.Equal(t, want, answer.Proposed)
	require.Equal(t, policy, after.Policy, "the policy in force is unchanged")
	require.Empty(t, after.Audit, "nothing to audit")
}

// A policy change takes "auto" for the scale-in cooldown (derived from the boots, the
// default) as well as a duration, and names the field when it is neither.
func TestAPolicyRequestTakesAnAutomaticCooldown(t *testing.T) {
	fixed := planning.DefaultPolicy()
	fixed.ScaleInCooldown = 10 * time.Minute
	auto, twenty, soon := "auto", "20m", "soon"
	p, err := PolicyRequest{ScaleInCooldown: &auto}.Apply(fixed)
	require.NoError(t, err)
	require.Zero(t, p.ScaleInCooldown, "auto is the zero cooldown, which Policy.Cooldown derives")
	p, err = PolicyRequest{ScaleInCooldown: &twenty}.Apply(p)
	require.NoError(t, err)
	require.Equal(t, 20*time.Minute, p.ScaleInCooldown)
	_, err = PolicyRequest{ScaleInCooldown: &soon}.Apply(p)
	require.ErrorContains(t, err, "scale_in_cooldown")
	require.ErrorContains(t, err, `"auto" or a duration`)
}

// A policy change turns the SLA slack on and off; a request without it leaves it as it is.
func TestAPolicyRequestTurnsTheSLASlackOnAndOff(t *testing.T) {
	on, off, two := true, false, 2
	p, err := PolicyRequest{SLASlack: &on}.Apply(planning.DefaultPolicy())
	require.NoError(t, err)
	require.True(t, p.SLASlack)
	p, err = PolicyRequest{MaxConnectors: &two}.Apply(p)
	require.NoError(t, err)
	require.True(t, p.SLASlack, "a request that does not name it keeps it")
	require.Contains(t, p.String(), "SLA slack used")
	p, err = PolicyRequest{SLASlack: &off}.Apply(p)
	require.NoError(t, err)
	require.False(t, p.SLASlack)
}

// The policy's max_connectors bounds an operator's provisioning and a customer's
// registration as it bounds the fleet's own starts: past it they are refused, naming
// the field and the limit, before they enter history.
func TestThePoolsConnectorLimitHoldsForOperatorsAndAppliances(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{ready: true}
	f.register(env)
	two := 2
	refused := func(what, field string) *testsuite.TestUpdateCallback {
		cb := rejected(t, what, validation.ConflictErrorType, field)
		onReject := cb.OnReject
		cb.OnReject = func(err error) {
			onReject(err)
			require.ErrorContains(t, err, "allows at most 2 connectors (max_connectors) and has 2", what)
		}
		return cb
	}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdatePolicy, "max", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) }, OnComplete: func(any, error) {},
		}, PolicyRequest{MaxConnectors: &two, Who: "ann", Why: "budget"})
		env.UpdateWorkflow(UpdateScale, "two", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) }, OnComplete: func(any, error) {},
		}, ScaleRequest{Action: ScaleProvision, Site: "ams1", Count: 2, Who: "ann", Why: "wave"})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateScale, "third", refused("a third connector", "count"),
			ScaleRequest{Action: ScaleProvision, Site: "fra1", Count: 1, Who: "ann", Why: "one more"})
		env.UpdateWorkflow(UpdateRegisterConnector, "appliance", refused("an appliance", "id"), appliance)
	}, 2*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 2})
	st := continuedState(t, env.GetWorkflowError())
	require.Len(t, st.Connectors, 2, "nothing past the limit was started or registered")
}

// A resize holds the running connector to the new size's CPU and memory, through its
// driver, before the connector takes the new bandwidth; an SLA breach escalates the
// same way.
func TestFleetResizeLimitsTheConnectorBeforeItsBandwidth(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{target: 1, ready: true}
	f.register(env)
	var calls []string
	env.OnActivity(fleetActivities.ResizeConnector, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.ResizeConnectorInput) error {
			calls = append(calls, fmt.Sprintf("limits %s %s %d", in.ID, in.Size.Name, in.Size.CPUMillis))
			return nil
		})
	env.OnActivity(connectorActivities.ApplySize, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.ApplySizeInput) (contract.ApplySizeResult, error) {
			calls = append(calls, fmt.Sprintf("bandwidth %.0f", in.BandwidthBytesSec))
			return contract.ApplySizeResult(in), nil
		})
	var id string
	env.RegisterDelayedCallback(func() {
		conns := queryConnectors(t, env)
		require.Len(t, conns, 1)
		id = conns[0].ID
		env.UpdateWorkflow(UpdateScale, "resize", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) },
			OnComplete: func(v any, err error) { require.NoError(t, err) },
		}, ScaleRequest{Action: ScaleResize, ConnectorID: id, Size: "small", Who: "ann", Why: "test"})
	}, 30*time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalBreach, Breach{MigrationID: "m1", ConnectorID: id, Site: "ams1"})
	}, 90*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 3})
	st := continuedState(t, env.GetWorkflowError())
	small, medium := planning.Sizes[0], planning.Sizes[1]
	require.Equal(t, []string{
		fmt.Sprintf("limits %s small %d", id, small.CPUMillis), fmt.Sprintf("bandwidth %.0f", small.BandwidthBytesSec),
		fmt.Sprintf("limits %s medium %d", id, medium.CPUMillis), fmt.Sprintf("bandwidth %.0f", medium.BandwidthBytesSec),
	}, calls)
	require.Equal(t, "medium", st.Connectors[0].Size.Name, "escalated one size up from small")
}

// A connector whose process runs but whose reports stopped is shown unreachable, and
// reachable again once they return; the fleet neither restarts nor replaces it.
func TestFleetShowsAConnectorThatStoppedReportingAsUnreachable(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{target: 1, ready: true, lastReport: start}
	f.register(env)
	env.RegisterDelayedCallback(func() {
		conns := queryConnectors(t, env)
		require.Len(t, conns, 1)
		require.False(t, conns[0].Unreachable, "it has just reported")
	}, 30*time.Second)
	env.RegisterDelayedCallback(func() {
		conns := queryConnectors(t, env)
		require.True(t, conns[0].Unreachable, "no report for a minute")
		require.Equal(t, planning.StateWarm, conns[0].State, "it keeps its state")
		f.mu.Lock()
		f.lastReport = start.Add(100 * time.Second)
		f.mu.Unlock()
	}, 90*time.Second)
	env.RegisterDelayedCallback(func() {
		require.False(t, queryConnectors(t, env)[0].Unreachable, "reporting again")
	}, 150*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 4})
	continuedState(t, env.GetWorkflowError())
	require.Len(t, f.provisioned, 1, "never restarted nor replaced")
	require.Empty(t, f.stopped)
}
