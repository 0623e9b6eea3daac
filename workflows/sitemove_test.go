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
// idle one to the other pool's fleet at its next Collect (a customer's appliance too),
// and a busy one once its migration is released.
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
		fra := appliance
		fra.ID, fra.Site = "appliance-fra1", "fra1"
		env.UpdateWorkflow(UpdateRegisterConnector, "appliance", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) }, OnComplete: func(any, error) {},
		}, fra)
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
		require.Len(t, adopted, 1, "the idle connector and the appliance went at the next Collect")
		require.Len(t, adopted[0].Connectors, 2)
		require.True(t, slices.ContainsFunc(adopted[0].Connectors, func(c planning.Connector) bool { return c.ID == "appliance-fra1" && c.External }))
		require.Equal(t, Adoption{From: "default", Site: "fra1", Connectors: adopted[0].Connectors}, adopted[0])
		conns := queryConnectors(t, env)
		require.Len(t, conns, 1, "the busy one stays until its migration is done")
		require.Len(t, conns[0].Migrations, 1)
		require.False(t, slices.ContainsFunc(adopted[0].Connectors, func(c planning.Connector) bool { return c.ID == conns[0].ID }))
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

// A migration waiting for a connector at a site that moved goes with it: its
// reservation is passed to the other pool's fleet, and so are the reservation it
// sends again and its release, which still come here.
func TestAWaitingMigrationGoesWithItsSite(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{ready: true, moved: []contract.SitePool{{Site: "fra1", Pool: "south"}}}
	f.register(env)
	var sent []string
	record := func(signal string) func(_, _, _, _ string, arg any) error {
		return func(_, _, _, _ string, arg any) error {
			switch v := arg.(type) {
			case planning.Reservation:
				sent = append(sent, signal+" "+v.MigrationID)
			case Release:
				sent = append(sent, signal+" "+v.MigrationID)
			}
			return nil
		}
	}
	env.OnSignalExternalWorkflow(mock.Anything, "fleet-south", "", SignalReserve, mock.Anything).Return(record(SignalReserve))
	env.OnSignalExternalWorkflow(mock.Anything, "fleet-south", "", SignalRelease, mock.Anything).Return(record(SignalRelease))
	// Autoscaling is paused, so that nothing starts for the waiting migration here.
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalOverride, planning.Override{ID: "o1", Kind: planning.OverridePause, Who: "ann", Why: "site move",
			Expires: start.Add(time.Hour)})
		env.SignalWorkflow(SignalReserve, planning.Reservation{MigrationID: "m2", WorkflowID: "migration-m2", Site: "fra1", Deadline: start.Add(time.Hour)})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		require.Equal(t, []string{"reserve m2"}, sent, "forwarded at the Collect after it queued")
		env.SignalWorkflow(SignalReserve, planning.Reservation{MigrationID: "m2", WorkflowID: "migration-m2", Site: "fra1", Deadline: start.Add(time.Hour)})
		env.SignalWorkflow(SignalRelease, Release{MigrationID: "m2", ConnectorID: "south-fra1-1"})
	}, 61*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 2})
	st := continuedState(t, env.GetWorkflowError())
	require.Equal(t, []string{"reserve m2", "reserve m2", "release m2"}, sent)
	require.Empty(t, st.Waiting, "nothing waits here for the site that left")
	require.Empty(t, st.Forwarded, "released: nothing more to pass on")
}
