package workflows

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
)

// A site that moves to another pool takes its connectors with it: the fleet hands each
// idle one to the other pool's fleet at its next Collect, and a busy one once its
// migration is released.
func TestASiteThatMovesTakesItsConnectorsToTheOtherPool(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{ready: true}
	f.register(env)
	captureAssignment(env, "migration-m1")
	var adopted []Adoption
	env.OnSignalExternalWorkflow(mock.Anything, "fleet-south", "", SignalAdopt, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error {
			adopted = append(adopted, arg.(Adoption))
			return nil
		})
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateScale, "two", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) }, OnComplete: func(any, error) {},
		}, ScaleRequest{Action: ScaleProvision, Site: "fra1", Count: 2, Who: "ann", Why: "wave"})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalReserve, planning.Reservation{MigrationID: "m1", WorkflowID: "migration-m1", Site: "fra1", Deadline: start.Add(time.Hour)})
	}, 70*time.Second)
	env.RegisterDelayedCallback(func() {
		f.mu.Lock()
		f.moved = []contract.SitePool{{Site: "fra1", Pool: "south"}}
		f.mu.Unlock()
	}, 90*time.Second)
	env.RegisterDelayedCallback(func() {
		require.Len(t, adopted, 1, "the idle connector went at the next Collect")
		require.Len(t, adopted[0].Connectors, 1)
		require.Equal(t, Adoption{From: "default", Site: "fra1", Connectors: adopted[0].Connectors}, adopted[0])
		conns := queryConnectors(t, env)
		require.Len(t, conns, 1, "the busy one stays until its migration is done")
		require.Len(t, conns[0].Migrations, 1)
		require.NotEqual(t, adopted[0].Connectors[0].ID, conns[0].ID)
		env.SignalWorkflow(SignalRelease, Release{MigrationID: "m1", ConnectorID: conns[0].ID})
	}, 2*time.Minute+time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 4})
	st := continuedState(t, env.GetWorkflowError())
	require.Empty(t, st.Connectors, "both went with the site")
	require.Len(t, adopted, 2)
	require.Empty(t, f.stopped, "none was stopped: they run on in the other pool")
	require.True(t, slices.ContainsFunc(st.Audit, func(e AuditEntry) bool {
		return e.Action == "hand over connectors" && e.Why == "site fra1 moved to pool south"
	}))
}

// The fleet of the pool a site moved to takes the connectors handed over, records
// them as its own, and takes each once.
func TestAFleetAdoptsTheConnectorsOfASiteThatMovedToIt(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{ready: true}
	f.register(env)
	size, _ := planning.SizeNamed("medium")
	c := planning.Connector{ID: "north-fra1-3", Site: "fra1", State: planning.StateWarm, Size: size, TaskQueue: ConnectorTaskQueue("north-fra1-3"),
		CreatedAt: start, ReadyAt: start, Reason: "provisioned by ann: wave"}
	adoption := Adoption{From: "north", Site: "fra1", Connectors: []planning.Connector{c}}
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalAdopt, adoption) }, time.Second)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalAdopt, adoption) }, 2*time.Second)
	env.RegisterDelayedCallback(func() {
		conns := queryConnectors(t, env)
		require.Len(t, conns, 1, "taken once")
		require.Equal(t, "north-fra1-3", conns[0].ID)
		require.Equal(t, "came from pool north with site fra1; provisioned by ann: wave", conns[0].Reason)
	}, 3*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 1})
	continuedState(t, env.GetWorkflowError())
	require.Contains(t, f.synced, "default/north-fra1-3", "recorded as this pool's")
}
