package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
)

// An events signal re-plans at once, long before the next tick, and the fleet records
// what the event changed at its site.
func TestFleetReplansAtOnceOnAnEventsSignal(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{target: 1}
	f.register(env)
	env.RegisterActivity(&activities.Events{})
	var mu sync.Mutex
	var recorded []contract.RecordPlanChangesInput
	env.OnActivity(eventActivities.RecordPlanChanges, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.RecordPlanChangesInput) error {
			mu.Lock()
			defer mu.Unlock()
			recorded = append(recorded, in)
			return nil
		})
	key := "alertmanager/cfb6233f59b105f3/2026-11-24T10:00:00Z"
	env.RegisterDelayedCallback(func() {
		// The alert widens ams1's demand: the next plan wants 3 connectors.
		f.mu.Lock()
		f.target = 3
		f.bottlenecks = []planning.Bottleneck{{Site: "ams1", Kind: "anomaly", Detail: "event " + key}}
		f.mu.Unlock()
		env.SignalWorkflow(SignalEvents, EventsSignal{Events: []planning.EventOutcome{{Key: key, Site: "ams1", Kind: "anomaly", Status: planning.EventRecorded}}})
	}, 5*time.Minute)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryPlan)
		require.NoError(t, err)
		var plan planning.Plan
		require.NoError(t, v.Get(&plan))
		require.Equal(t, 3, plan.Targets[0].Connectors, "the plan changed seconds after the event, not at the next tick")
		v, err = env.QueryWorkflow(QueryEvents)
		require.NoError(t, err)
		var ev EventsView
		require.NoError(t, v.Get(&ev))
		require.Len(t, ev.Changes, 1)
		c := ev.Changes[0]
		require.Equal(t, key, c.EventKey)
		require.Equal(t, "ams1", c.Site)
		require.Equal(t, 1, c.Before)
		require.Equal(t, 3, c.After)
		require.Contains(t, c.Detail, "connector target 1 → 3")
		require.Contains(t, c.Detail, "new bottleneck anomaly")
	}, 5*time.Minute+10*time.Second)

	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Hour, MaxTicksPerRun: 2})
	require.True(t, env.IsWorkflowCompleted())
	st := continuedState(t, env.GetWorkflowError())
	require.Len(t, st.EventChanges, 1, "the plan changes carry into the next run")
	require.Len(t, recorded, 1)
	require.Equal(t, "default", recorded[0].Pool)
	require.Equal(t, key, recorded[0].Changes[0].EventKey)
	require.Len(t, f.provisioned, 3, "the new target was acted on")
}

// EventsWorkflow records the batch, then tells every running fleet of what changed;
// a batch that changes nothing tells nobody.
func TestEventsWorkflowRecordsThenSignalsTheRunningFleets(t *testing.T) {
	for _, c := range []struct {
		status string
		told   []string
	}{{planning.EventRecorded, []string{"fleet-a", "fleet-b"}}, {planning.EventUnchanged, []string{}}} {
		t.Run(c.status, func(t *testing.T) {
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestWorkflowEnvironment()
			env.RegisterWorkflow(EventsWorkflow)
			env.RegisterActivity(&activities.Events{})
			outcome := planning.EventOutcome{Key: "k1", Site: "fra1", Kind: "anomaly", Status: c.status}
			env.OnActivity(eventActivities.RecordEvents, mock.Anything, mock.Anything).Return(contract.RecordEventsResult{
				Outcomes: []planning.EventOutcome{outcome}, Skipped: []planning.SkippedEvent{{Key: "k2", Reason: "no site"}}}, nil)
			env.OnActivity(eventActivities.RunningFleets, mock.Anything, contract.RunningFleetsInput{WorkflowType: "FleetWorkflow"}).Return(
				contract.RunningFleetsResult{WorkflowIDs: []string{"fleet-a", "fleet-b"}}, nil)
			var signalled []string
			env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalEvents, mock.Anything).Return(
				func(_, id, _, _ string, arg any) error {
					require.Equal(t, EventsSignal{Events: []planning.EventOutcome{outcome}}, arg)
					signalled = append(signalled, id)
					return nil
				})
			env.ExecuteWorkflow(EventsWorkflow, imports.EventBatch{})
			require.NoError(t, env.GetWorkflowError())
			var answer EventsAnswer
			require.NoError(t, env.GetWorkflowResult(&answer))
			require.Equal(t, c.told, answer.Fleets)
			require.Equal(t, len(c.told), len(signalled))
			require.Len(t, answer.Skipped, 1)
		})
	}
}
