package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// appliance is the registration of an external connector at ams1 used below.
var appliance = RegisterConnectorRequest{ID: "appliance-1", Site: "ams1", Size: "large", StaleAfter: "90s", Who: "ann", Why: "customer's appliance"}

// recordMetrics stands in for PostgreSQL's connector_metrics: it counts the samples.
func recordMetrics(env *testsuite.TestWorkflowEnvironment, stored *int) {
	env.OnActivity(fleetActivities.RecordConnectorMetrics, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.RecordConnectorMetricsInput) (contract.RecordConnectorMetricsResult, error) {
			*stored += len(in.Samples)
			return contract.RecordConnectorMetricsResult{Stored: int64(len(in.Samples))}, nil
		})
}

// postMetrics sends one sample of the appliance taken at the given offset from start.
func postMetrics(t *testing.T, env *testsuite.TestWorkflowEnvironment, at time.Duration, check func(ConnectorMetricsResult)) {
	env.UpdateWorkflow(UpdateConnectorMetrics, "", &testsuite.TestUpdateCallback{
		OnAccept: func() {}, OnReject: func(err error) { t.Errorf("metrics at %s rejected: %v", at, err) },
		OnComplete: func(v any, err error) {
			require.NoError(t, err)
			if check != nil {
				check(v.(ConnectorMetricsResult))
			}
		},
	}, ConnectorMetricsRequest{ConnectorID: appliance.ID, Samples: []planning.MetricSample{{At: start.Add(at), CPUPercent: 3, BandwidthUsedBytesSec: 1024}}})
}

// rejected expects an update to be refused with an error of the given type that
// names the field.
func rejected(t *testing.T, what, errType, field string) *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept: func() { t.Errorf("%s was accepted", what) },
		OnReject: func(err error) {
			var appErr *temporal.ApplicationError
			require.True(t, errors.As(err, &appErr), "%s: %v", what, err)
			require.Equal(t, errType, appErr.Type(), "%s: %v", what, err)
			var fe *validation.Error
			require.NoError(t, appErr.Details(&fe), what)
			require.Equal(t, field, fe.Field, "%s: %v", what, err)
		},
		OnComplete: func(any, error) {},
	}
}

func connectorNamed(t *testing.T, env *testsuite.TestWorkflowEnvironment, id string) planning.Connector {
	t.Helper()
	conns := queryConnectors(t, env)
	i := slices.IndexFunc(conns, func(c planning.Connector) bool { return c.ID == id })
	require.GreaterOrEqual(t, i, 0, "connector %s in %v", id, conns)
	return conns[i]
}

func TestFleetExternalConnectorTakesWorkWhileItsMetricsAreFresh(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{ready: true}
	f.register(env)
	var stored int
	recordMetrics(env, &stored)
	assigned := captureAssignment(env, "migration-m1")
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateRegisterConnector, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				c := v.(RegisterConnectorResult).Connector
				require.True(t, c.External)
				require.Equal(t, planning.StateUnhealthy, c.State, "no metrics yet")
				require.Equal(t, ConnectorTaskQueue("appliance-1"), c.TaskQueue)
				require.Equal(t, 90*time.Second, c.StaleAfter)
			},
		}, appliance)
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		postMetrics(t, env, 2*time.Second, func(r ConnectorMetricsResult) {
			require.Equal(t, planning.StateWarm, r.State, "its first metrics make it take work")
			require.EqualValues(t, 1, r.Stored)
		})
		// The forecast now wants a connector at ams1: the healthy appliance is it.
		f.mu.Lock()
		f.target = 1
		f.mu.Unlock()
	}, 2*time.Second)
	for _, at := range []time.Duration{30 * time.Second, 60 * time.Second, 90 * time.Second} {
		env.RegisterDelayedCallback(func() { postMetrics(t, env, at, nil) }, at)
	}
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalReserve, planning.Reservation{MigrationID: "m1", WorkflowID: "migration-m1", Site: "ams1", Deadline: start.Add(time.Hour)})
	}, 100*time.Second)
	env.RegisterDelayedCallback(func() {
		require.Equal(t, "appliance-1", assigned.ConnectorID, "the migration went to the appliance")
		require.Equal(t, ConnectorTaskQueue("appliance-1"), assigned.TaskQueue)
		env.SignalWorkflow(SignalRelease, Release{MigrationID: "m1", ConnectorID: "appliance-1"})
	}, 110*time.Second)
	env.RegisterDelayedCallback(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		require.Empty(t, f.provisioned, "the healthy appliance counts toward ams1's capacity")
		require.Equal(t, planning.StateWarm, connectorNamed(t, env, "appliance-1").State)
	}, 2*time.Minute+time.Second)
	env.RegisterDelayedCallback(func() {
		c := connectorNamed(t, env, "appliance-1")
		require.Equal(t, planning.StateUnhealthy, c.State, "no metrics for more than 90s")
		require.Contains(t, c.Reason, "no metrics since")
		f.mu.Lock()
		defer f.mu.Unlock()
		require.Len(t, f.provisioned, 1, "a connector of PMO's own covers ams1 meanwhile")
		require.False(t, f.provisioned[0].External)
		postMetrics(t, env, 4*time.Minute, func(r ConnectorMetricsResult) {
			require.Equal(t, planning.StateWarm, r.State, "its metrics came back")
		})
	}, 4*time.Minute+time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 6})
	st := continuedState(t, env.GetWorkflowError())
	i := slices.IndexFunc(st.Connectors, func(c planning.Connector) bool { return c.ID == "appliance-1" })
	require.GreaterOrEqual(t, i, 0, "it is carried into the next run")
	require.Equal(t, planning.StateWarm, st.Connectors[i].State)
	require.Equal(t, 5, stored, "the samples at 2s, 30s, 60s, 90s and 4m")
	require.NotContains(t, f.collected, "appliance-1", "the provisioner is never asked about it")
	require.NotContains(t, f.stopped, "appliance-1")
	for _, c := range f.provisioned {
		require.NotEqual(t, "appliance-1", c.ID, "never started")
	}
}

func TestFleetExternalConnectorUpdatesAreValidatedAndItIsNeverStoppedOrResized(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{ready: true}
	f.register(env)
	var stored int
	recordMetrics(env, &stored)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateRegisterConnector, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) },
			OnComplete: func(v any, err error) { require.NoError(t, err) },
		}, appliance)
		// PMO's own connector, to be refused where only external ones are meant.
		env.UpdateWorkflow(UpdateScale, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) }, OnComplete: func(any, error) {},
		}, ScaleRequest{Action: ScaleProvision, Site: "fra1", Count: 1, Who: "ann", Why: "test"})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateRegisterConnector, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("the same registration again was rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				require.True(t, v.(RegisterConnectorResult).Existing, "the same values again change nothing")
			},
		}, appliance)
		moved := appliance
		moved.Site = "fra1"
		env.UpdateWorkflow(UpdateRegisterConnector, "", rejected(t, "the same ID at another site", validation.ConflictErrorType, "site"), moved)
		bigger := appliance
		bigger.Size = ""
		bigger.CPUMillis, bigger.RAMBytes, bigger.BandwidthBytesSec, bigger.StorageBytes, bigger.MaxTasks = 4000, 1<<30, 1<<26, 1<<40, 16
		env.UpdateWorkflow(UpdateRegisterConnector, "", rejected(t, "the same ID with another size", validation.ConflictErrorType, "size"), bigger)
		own := appliance
		own.ID = "default-fra1-1"
		env.UpdateWorkflow(UpdateRegisterConnector, "", rejected(t, "an ID of PMO's own", validation.ApplicationErrorType, "id"), own)
		nowhere := appliance
		nowhere.ID, nowhere.Site = "appliance-2", "zrh9"
		env.UpdateWorkflow(UpdateRegisterConnector, "", rejected(t, "an unknown site", validation.ApplicationErrorType, "site"), nowhere)
		both := appliance
		both.ID, both.MaxTasks = "appliance-3", 4
		env.UpdateWorkflow(UpdateRegisterConnector, "", rejected(t, "a size and amounts", validation.ApplicationErrorType, "size"), both)
		// A task queue of PMO's or of another connector would send work to the wrong
		// poller: the worker, or another site's connector.
		for _, c := range []struct {
			name, queue, errType string
		}{
			{"the worker's task queue", TaskQueue, validation.ApplicationErrorType},
			{"PMO's connector's task queue", ConnectorTaskQueue("default-fra1-1"), validation.ApplicationErrorType},
			{"another appliance's task queue", ConnectorTaskQueue(appliance.ID), validation.ApplicationErrorType},
		} {
			thief := appliance
			thief.ID, thief.TaskQueue = "appliance-4", c.queue
			env.UpdateWorkflow(UpdateRegisterConnector, "", rejected(t, c.name, c.errType, "task_queue"), thief)
		}

		sample := planning.MetricSample{At: start.Add(5 * time.Second), CPUPercent: 1}
		env.UpdateWorkflow(UpdateConnectorMetrics, "", rejected(t, "metrics of an unknown connector", validation.NotFoundErrorType, "connector_id"),
			ConnectorMetricsRequest{ConnectorID: "nobody", Samples: []planning.MetricSample{sample}})
		env.UpdateWorkflow(UpdateConnectorMetrics, "", rejected(t, "metrics of PMO's own connector", validation.ConflictErrorType, "connector_id"),
			ConnectorMetricsRequest{ConnectorID: "default-fra1-1", Samples: []planning.MetricSample{sample}})
		negative := sample
		negative.BandwidthUsedBytesSec = -1
		env.UpdateWorkflow(UpdateConnectorMetrics, "", rejected(t, "a negative bandwidth", validation.ApplicationErrorType, "samples[1].bandwidth_used_bytes_per_sec"),
			ConnectorMetricsRequest{ConnectorID: appliance.ID, Samples: []planning.MetricSample{sample, negative}})
		future := sample
		future.At = start.Add(time.Hour)
		env.UpdateWorkflow(UpdateConnectorMetrics, "", rejected(t, "a sample from the future", validation.ApplicationErrorType, "samples[0].at"),
			ConnectorMetricsRequest{ConnectorID: appliance.ID, Samples: []planning.MetricSample{future}})
		many := make([]planning.MetricSample, MaxMetricSamples+1)
		for i := range many {
			many[i] = planning.MetricSample{At: start.Add(time.Duration(i) * time.Millisecond)}
		}
		env.UpdateWorkflow(UpdateConnectorMetrics, "", rejected(t, "too many samples", validation.ApplicationErrorType, "samples"),
			ConnectorMetricsRequest{ConnectorID: appliance.ID, Samples: many})
		postMetrics(t, env, 5*time.Second, nil)
	}, 5*time.Second)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateScale, "", rejected(t, "a resize of the appliance", validation.ConflictErrorType, "connector_id"),
			ScaleRequest{Action: ScaleResize, ConnectorID: appliance.ID, Size: "small", Who: "ann", Why: "test"})
		// An SLA breach on it escalates nothing: its size is the customer's.
		env.SignalWorkflow(SignalBreach, Breach{MigrationID: "m9", ConnectorID: appliance.ID, Site: "ams1"})
		env.UpdateWorkflow(UpdateDeregisterConnector, "", rejected(t, "deregistering PMO's own connector", validation.ConflictErrorType, "id"),
			DeregisterConnectorRequest{ID: "default-fra1-1", Who: "ann", Why: "test"})
		env.UpdateWorkflow(UpdateDeregisterConnector, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				require.Equal(t, planning.StateStopped, v.(planning.Connector).State, "idle: it leaves at once")
			},
		}, DeregisterConnectorRequest{ID: appliance.ID, Who: "ann", Why: "contract ended"})
	}, 10*time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 2})
	st := continuedState(t, env.GetWorkflowError())
	require.False(t, slices.ContainsFunc(st.Connectors, func(c planning.Connector) bool { return c.ID == appliance.ID }), "it left the pool")
	require.NotContains(t, f.stopped, appliance.ID, "its process was never stopped")
	require.Equal(t, 1, stored, "only the good sample was stored")
	var actions []string
	for _, e := range st.Audit {
		actions = append(actions, e.Action)
	}
	require.Contains(t, actions, "register connector")
	require.Contains(t, actions, "deregister connector")
	require.Contains(t, actions, "sla-breach")
	require.False(t, slices.ContainsFunc(actions, func(a string) bool { return strings.HasPrefix(a, "escalated") }), "%v", actions)
}

func TestRegisterConnectorRequestNamesTheBadField(t *testing.T) {
	for _, c := range []struct {
		change func(*RegisterConnectorRequest)
		field  string
	}{
		{func(r *RegisterConnectorRequest) { r.ID = "a b" }, "id"},
		{func(r *RegisterConnectorRequest) { r.Site = "" }, "site"},
		{func(r *RegisterConnectorRequest) { r.Size = "huge" }, "size"},
		{func(r *RegisterConnectorRequest) { r.Size = "" }, "size"},
		{func(r *RegisterConnectorRequest) { r.Size, r.CPUMillis = "", 100 }, "ram_bytes"},
		{func(r *RegisterConnectorRequest) {
			r.Size, r.CPUMillis, r.RAMBytes, r.BandwidthBytesSec, r.StorageBytes, r.MaxTasks = "", 100, 1, 1, 1, 0
		}, "max_tasks"},
		{func(r *RegisterConnectorRequest) { r.StaleAfter = "soon" }, "stale_after"},
		{func(r *RegisterConnectorRequest) { r.StaleAfter = "100ms" }, "stale_after"},
		{func(r *RegisterConnectorRequest) { r.TaskQueue = "a queue" }, "task_queue"},
		{func(r *RegisterConnectorRequest) { r.Why = " " }, "why"},
	} {
		r := appliance
		c.change(&r)
		var fe *validation.Error
		require.True(t, errors.As(r.Validate(), &fe), "%+v", r)
		require.Equal(t, c.field, fe.Field, "%+v: %v", r, fe)
	}
	require.NoError(t, appliance.Validate())
}

// Two external connectors cannot share a task queue of their own choosing.
func TestExternalConnectorsDoNotShareATaskQueue(t *testing.T) {
	f := &fleet{in: FleetInput{Pool: "default"}, st: FleetState{Connectors: []planning.Connector{
		{ID: "appliance-1", Site: "ams1", External: true, TaskQueue: "ams-appliances"}}}}
	other := appliance
	other.ID, other.TaskQueue = "appliance-2", "ams-appliances"
	err := f.checkTaskQueue(other)
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	require.Equal(t, validation.ConflictErrorType, app.Type())
	require.Contains(t, app.Error(), `connector "appliance-1" polls "ams-appliances"`)
	// Its own registration again is not a collision with itself.
	again := appliance
	again.TaskQueue = "ams-appliances"
	require.NoError(t, f.checkTaskQueue(again))
}

// An external connector's posts reach the fleet through Collect, which reads what the
// web server stored: at the next tick it takes work, and once its posts stop for
// longer than its stale_after it is unhealthy. No post enters the fleet's history.
func TestFleetLearnsAnExternalConnectorsMetricsAtCollect(t *testing.T) {
	env := newEnv(t)
	f := &fakeFleet{ready: true, posted: map[string]time.Time{}}
	f.register(env)
	post := func(at time.Duration) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.posted[appliance.ID] = start.Add(at)
	}
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateRegisterConnector, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("rejected: %v", err) }, OnComplete: func(any, error) {},
		}, appliance)
	}, time.Second)
	env.RegisterDelayedCallback(func() { post(2 * time.Second) }, 2*time.Second)
	env.RegisterDelayedCallback(func() {
		c := connectorNamed(t, env, appliance.ID)
		require.Equal(t, planning.StateWarm, c.State, "the tick after its first post")
		require.Equal(t, start.Add(2*time.Second), c.LastSeen)
		require.Equal(t, 3.0, c.Usage.CPUPercent)
	}, time.Minute+time.Second)
	env.RegisterDelayedCallback(func() {
		c := connectorNamed(t, env, appliance.ID)
		require.Equal(t, planning.StateUnhealthy, c.State, "no post for more than 90s")
		require.Contains(t, c.Reason, "no metrics since")
		post(3 * time.Minute)
	}, 3*time.Minute+time.Second)
	env.RegisterDelayedCallback(func() {
		require.Equal(t, planning.StateWarm, connectorNamed(t, env, appliance.ID).State, "its posts came back")
	}, 4*time.Minute+time.Second)
	env.ExecuteWorkflow(FleetWorkflow, FleetInput{Pool: "default", Tick: time.Minute, MaxTicksPerRun: 5})
	continuedState(t, env.GetWorkflowError())
	require.NotContains(t, f.collected, appliance.ID, "the provisioner is never asked about it")
}
