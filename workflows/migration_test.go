package workflows

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
)

var migrationIn = MigrationInput{
	ID: "m1", Pool: "default", VMID: "vm-0001", Site: "ams1", Source: "/disks/vm-0001.img", Sources: []string{"/disks/"}, Destination: "vm-0001.img",
	Bytes: 4 << 20, SLATier: "gold", MaxTransfer: 2 * time.Minute, MaxDowntime: 10 * time.Second,
}

var assignment = planning.Assignment{MigrationID: "m1", WorkflowID: "migration-m1", ConnectorID: "default-ams1-1",
	TaskQueue: "pmo.connector.default-ams1-1", BandwidthBytesSec: 1 << 20}

// migrationEnv runs a migration against a fleet that assigns a connector 10 s after
// the reservation, and records what the migration reported.
type migrationEnv struct {
	env      *testsuite.TestWorkflowEnvironment
	outcome  planning.MigrationRecord
	released []Release
	breaches []Breach
	reserved int
	// priorities are the reservations' priorities, in order.
	priorities []int
	// avoided are the answered reservations' Avoid lists, in order.
	avoided [][]string
	// failed are the connector failures reported to the fleet.
	failed []ConnectorFailure
	// planned marks the fleet's assignments as planned work.
	planned bool
}

func newMigrationEnv(t *testing.T) *migrationEnv {
	return newMigrationEnvAnswering(t, 1)
}

// newMigrationEnvAnswering builds a fleet that answers only the n-th reservation, or
// every one, each with a new connector, when n is 0.
func newMigrationEnvAnswering(t *testing.T, n int) *migrationEnv {
	return newMigrationEnvFull(t, n, nil)
}

// newMigrationEnvWith lets a test register mocks that take precedence over the
// defaults.
func newMigrationEnvWith(t *testing.T, first func(*testsuite.TestWorkflowEnvironment)) *migrationEnv {
	return newMigrationEnvFull(t, 1, first)
}

func newMigrationEnvFull(t *testing.T, n int, first func(*testsuite.TestWorkflowEnvironment)) *migrationEnv {
	m := &migrationEnv{env: newEnv(t)}
	env := m.env
	env.RegisterActivity(&activities.Fleet{})
	env.RegisterActivityWithOptions(&activities.Connector{}, activity.RegisterOptions{SkipInvalidStructFunctions: true})
	if first != nil {
		first(env)
	}
	env.OnSignalExternalWorkflow(mock.Anything, "fleet-default", "", SignalReserve, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error {
			m.reserved++
			r := arg.(planning.Reservation)
			m.priorities = append(m.priorities, r.Priority)
			require.Equal(t, "ams1", r.Site)
			require.Equal(t, start.Add(2*time.Minute), r.Deadline)
			if m.reserved == n || n == 0 {
				a := assignment
				if m.reserved > 1 && n == 0 {
					// Every reservation is answered, each time with the next connector.
					a.ConnectorID = fmt.Sprintf("default-ams1-%d", m.reserved)
					a.TaskQueue = ConnectorTaskQueue(a.ConnectorID)
				}
				a.Planned = m.planned
				m.avoided = append(m.avoided, r.Avoid)
				env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalAssigned, a) }, 10*time.Second)
			}
			return nil
		})
	env.OnSignalExternalWorkflow(mock.Anything, "fleet-default", "", SignalRelease, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error { m.released = append(m.released, arg.(Release)); return nil })
	env.OnSignalExternalWorkflow(mock.Anything, "fleet-default", "", SignalConnectorFailed, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error {
			m.failed = append(m.failed, arg.(ConnectorFailure))
			return nil
		})
	env.OnSignalExternalWorkflow(mock.Anything, "fleet-default", "", SignalBreach, mock.Anything).Return(
		func(_, _, _, _ string, arg any) error { m.breaches = append(m.breaches, arg.(Breach)); return nil })
	env.OnActivity(connectorActivities.Prepare, mock.Anything, mock.Anything).Return(contract.PrepareResult{ConnectorID: "default-ams1-1", FreeStorageBytes: 1 << 30}, nil)
	env.OnActivity(fleetActivities.RecordOutcome, mock.Anything, mock.Anything).Return(
		func(_ context.Context, rec planning.MigrationRecord) error { m.outcome = rec; return nil })
	env.OnActivity(fleetActivities.RecordBreach, mock.Anything, mock.Anything).Return(nil)
	// The cutover syncs two changed blocks in a second, unless a test says otherwise.
	env.OnActivity(connectorActivities.Cutover, mock.Anything, mock.Anything).After(time.Second).Return(
		contract.CutoverResult{Blocks: 64, ChangedBlocks: 2, SHA256: "abc"}, nil).Maybe()
	return m
}

func TestMigrationCopiesOnItsConnectorAndRecordsTheOutcome(t *testing.T) {
	m := newMigrationEnv(t)
	m.env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).After(30*time.Second).Return(
		contract.TransferResult{Bytes: 4 << 20, SHA256: "abc", Seconds: 30, AvgBytesPerSec: 4 << 20 / 30}, nil)
	m.env.RegisterDelayedCallback(func() {
		v, err := m.env.QueryWorkflow(QueryMigration)
		require.NoError(t, err)
		var st MigrationStatus
		require.NoError(t, v.Get(&st))
		require.Equal(t, PhaseWaiting, st.Phase)
	}, 5*time.Second)
	m.env.RegisterDelayedCallback(func() {
		v, err := m.env.QueryWorkflow(QueryMigration)
		require.NoError(t, err)
		var st MigrationStatus
		require.NoError(t, v.Get(&st))
		require.Equal(t, PhaseTransferring, st.Phase)
		require.Equal(t, "default-ams1-1", st.ConnectorID)
	}, 20*time.Second)
	m.env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	require.NoError(t, m.env.GetWorkflowError())
	var st MigrationStatus
	require.NoError(t, m.env.GetWorkflowResult(&st))
	require.Equal(t, OutcomeSucceeded, st.Outcome)
	require.False(t, st.Breached)
	require.Equal(t, "abc", st.SHA256)
	require.Equal(t, OutcomeSucceeded, m.outcome.Outcome)
	require.Equal(t, "default-ams1-1", m.outcome.ConnectorID)
	require.Equal(t, 41*time.Second, m.outcome.EndedAt.Sub(m.outcome.StartedAt), "10 s waiting + 30 s copying + 1 s cutover")
	require.Equal(t, 1.0, m.outcome.DowntimeSeconds, "the cutover is the downtime")
	require.Equal(t, 2, st.ChangedBlocks)
	require.Equal(t, []Release{{MigrationID: "m1", ConnectorID: "default-ams1-1"}}, m.released)
	require.Empty(t, m.breaches)
	require.False(t, m.outcome.Planned, "an ad-hoc migration")
}

func TestAPlannedMigrationIsRecordedAsPlanned(t *testing.T) {
	// The fleet said so in the input of the migrations it started, and says so in
	// the assignment of those the web server started.
	for _, byAssignment := range []bool{false, true} {
		t.Run(fmt.Sprintf("by assignment %v", byAssignment), func(t *testing.T) {
			m := newMigrationEnv(t)
			m.env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(contract.TransferResult{Bytes: 4 << 20, SHA256: "abc"}, nil)
			in := migrationIn
			in.Planned, m.planned = !byAssignment, byAssignment
			m.env.ExecuteWorkflow(MigrationWorkflow, in)
			require.NoError(t, m.env.GetWorkflowError())
			require.Equal(t, OutcomeSucceeded, m.outcome.Outcome)
			require.True(t, m.outcome.Planned, "the history keeps it out of the ad-hoc forecast")
		})
	}
}

func TestMigrationSLATimerRecordsBreachAndEscalates(t *testing.T) {
	m := newMigrationEnv(t)
	// The copy takes 5 minutes against a 2-minute SLA: it still completes.
	m.env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).After(5*time.Minute).Return(
		contract.TransferResult{Bytes: 4 << 20, SHA256: "abc"}, nil)
	m.env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	require.NoError(t, m.env.GetWorkflowError())
	require.Equal(t, OutcomeSLABreached, m.outcome.Outcome)
	require.Equal(t, []Breach{{MigrationID: "m1", ConnectorID: "default-ams1-1", Site: "ams1"}}, m.breaches)
	require.Len(t, m.released, 1)
}

func TestMigrationFailedTransferIsRecordedAndReleased(t *testing.T) {
	m := newMigrationEnv(t)
	m.env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(
		contract.TransferResult{}, temporal.NewNonRetryableApplicationError("source checksum mismatch", "Corrupt", nil))
	m.env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	err := m.env.GetWorkflowError()
	require.ErrorContains(t, err, "source checksum mismatch")
	require.Equal(t, OutcomeFailed, m.outcome.Outcome)
	require.Contains(t, m.outcome.Detail, "source checksum mismatch")
	require.Zero(t, m.outcome.Bytes)
	require.Len(t, m.released, 1)
}

func TestMigrationResendsReservationWhileWaiting(t *testing.T) {
	// This fleet lost the first reservation and answers the repeat.
	m := newMigrationEnvAnswering(t, 2)
	env := m.env
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(contract.TransferResult{Bytes: 4 << 20}, nil)
	env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, 2, m.reserved)
	require.Equal(t, OutcomeSLABreached, m.outcome.Outcome, "it waited past its 2-minute SLA")
}

var ann = Control{Who: "ann", Why: "change window"}

// queryStatus returns the migration's status query answer.
func queryStatus(t *testing.T, env *testsuite.TestWorkflowEnvironment) MigrationStatus {
	t.Helper()
	v, err := env.QueryWorkflow(QueryMigration)
	require.NoError(t, err)
	var st MigrationStatus
	require.NoError(t, v.Get(&st))
	return st
}

func TestMigrationPauseStopsTheCopyAndResumeContinuesIt(t *testing.T) {
	m := newMigrationEnv(t)
	env := m.env
	// The first attempt would take an hour; the pause at 20 s stops it.
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).After(time.Hour).Return(contract.TransferResult{}, nil).Once()
	var resumed []contract.TransferInput
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.TransferInput) (contract.TransferResult, error) {
			resumed = append(resumed, in)
			return contract.TransferResult{Bytes: 4 << 20, SHA256: "abc"}, nil
		})
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalPause, ann) }, 20*time.Second)
	env.RegisterDelayedCallback(func() {
		st := queryStatus(t, env)
		require.Equal(t, PhasePaused, st.Phase)
		require.Equal(t, 1, st.Attempts)
		env.SignalWorkflow(SignalResume, Control{Who: "bob", Why: "window open"})
	}, 60*time.Second)
	env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	require.NoError(t, env.GetWorkflowError())
	var st MigrationStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, OutcomeSucceeded, st.Outcome)
	require.Len(t, resumed, 1)
	require.True(t, resumed[0].Resume, "the second attempt continues from the partial copy")
	require.Equal(t, 2, st.Attempts)
	require.Len(t, st.Controls, 2)
	require.Equal(t, "pause", st.Controls[0].Action)
	require.Equal(t, "bob", st.Controls[1].Who)
}

func TestMigrationCancelDuringTransferDiscardsThePartialCopy(t *testing.T) {
	m := newMigrationEnv(t)
	env := m.env
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).After(time.Hour).Return(contract.TransferResult{}, nil)
	var discarded []contract.DiscardInput
	env.OnActivity(connectorActivities.Discard, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.DiscardInput) error {
			discarded = append(discarded, in)
			return nil
		})
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCancel, ann) }, 20*time.Second)
	env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	require.NoError(t, env.GetWorkflowError(), "a cancelled migration ends cleanly")
	var st MigrationStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, OutcomeCancelled, st.Outcome)
	require.Equal(t, []contract.DiscardInput{{MigrationID: "m1", Destination: "vm-0001.img", Complete: true}}, discarded)
	require.Equal(t, OutcomeCancelled, m.outcome.Outcome)
	require.Zero(t, m.outcome.Bytes)
	require.Equal(t, []Release{{MigrationID: "m1", ConnectorID: "default-ams1-1"}}, m.released)
}

func TestMigrationCancelWhileWaitingLeavesTheQueue(t *testing.T) {
	m := newMigrationEnvAnswering(t, 99) // the fleet never answers
	env := m.env
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCancel, ann) }, 30*time.Second)
	env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, OutcomeCancelled, m.outcome.Outcome)
	require.Equal(t, []Release{{MigrationID: "m1"}}, m.released, "released without a connector: the fleet drops the reservation")
}

func TestMigrationPriorityChangeRequeuesAWaitingMigration(t *testing.T) {
	m := newMigrationEnvAnswering(t, 2)
	env := m.env
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(contract.TransferResult{Bytes: 4 << 20}, nil)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalPriority, PriorityChange{Control: ann, Priority: 50})
	}, 30*time.Second)
	env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []int{0, 50}, m.priorities, "queued again at the new priority, at once")
	var st MigrationStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, 50, st.Priority)
	require.Equal(t, OutcomeSucceeded, st.Outcome)
}

func TestMigrationFailsOverWhenItsConnectorDies(t *testing.T) {
	m := newMigrationEnvAnswering(t, 0)
	env := m.env
	// The first connector stops heartbeating; the second one finishes from the partial copy.
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(
		contract.TransferResult{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil)).Once()
	var resumed []contract.TransferInput
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.TransferInput) (contract.TransferResult, error) {
			resumed = append(resumed, in)
			return contract.TransferResult{Bytes: 4 << 20, SHA256: "abc"}, nil
		})
	env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	require.NoError(t, env.GetWorkflowError())
	var st MigrationStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, OutcomeSucceeded, st.Outcome)
	require.Equal(t, "default-ams1-2", st.ConnectorID, "finished on the second connector")
	require.Equal(t, 1, st.Failovers)
	require.Len(t, m.failed, 1)
	require.Equal(t, "default-ams1-1", m.failed[0].ConnectorID, "the fleet heard which connector died")
	require.Equal(t, [][]string{nil, {"default-ams1-1"}}, m.avoided, "the second reservation avoids the dead connector")
	require.Len(t, resumed, 1)
	require.True(t, resumed[0].Resume, "the new connector continues from the partial copy")
	require.Equal(t, []Release{{MigrationID: "m1", ConnectorID: "default-ams1-2"}}, m.released)
}

func TestMigrationRetriesAPassingFailureOnTheSameConnector(t *testing.T) {
	m := newMigrationEnv(t)
	env := m.env
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(
		contract.TransferResult{}, temporal.NewApplicationError("checksum mismatch", activities.ErrTypeChecksumMismatch)).Once()
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(contract.TransferResult{Bytes: 4 << 20}, nil)
	env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	require.NoError(t, env.GetWorkflowError())
	var st MigrationStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, OutcomeSucceeded, st.Outcome)
	require.Equal(t, 1, m.reserved, "a retry stays on its connector: no new reservation")
	require.Zero(t, st.Failovers)
	require.Equal(t, 2, st.Attempts)
}

func TestMigrationCutoverWaitsForApproval(t *testing.T) {
	m := newMigrationEnv(t)
	env := m.env
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(contract.TransferResult{Bytes: 4 << 20}, nil)
	in := migrationIn
	in.RequireApproval = true
	env.RegisterDelayedCallback(func() {
		require.Equal(t, PhaseAwaitingCutover, queryStatus(t, env).Phase, "the copy is done; the cutover waits")
		env.SignalWorkflow(SignalApprove, ann)
	}, time.Minute)
	env.ExecuteWorkflow(MigrationWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	var st MigrationStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, OutcomeSucceeded, st.Outcome)
	require.Equal(t, "approve", st.Controls[0].Action)
	require.Equal(t, 61*time.Second, m.outcome.EndedAt.Sub(m.outcome.StartedAt), "approved at 60 s, cut over in 1 s")
}

// A cutover slower than the downtime SLA is rolled back, says why, and waits for the
// operator; approved again (a quieter moment), it cuts over.
func TestMigrationCutoverTooSlowIsRolledBack(t *testing.T) {
	m := newMigrationEnvWith(t, func(env *testsuite.TestWorkflowEnvironment) {
		env.OnActivity(connectorActivities.Cutover, mock.Anything, mock.Anything).After(time.Minute).Return(contract.CutoverResult{}, nil).Once()
	})
	env := m.env
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(contract.TransferResult{Bytes: 4 << 20}, nil)
	env.RegisterDelayedCallback(func() {
		st := queryStatus(t, env)
		require.Equal(t, PhaseAwaitingCutover, st.Phase)
		require.Equal(t, 1, st.Rollbacks)
		require.Contains(t, st.CutoverError, "did not finish within the 10s downtime SLA")
		env.SignalWorkflow(SignalApprove, ann)
	}, 5*time.Minute)
	env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	require.NoError(t, env.GetWorkflowError())
	var st MigrationStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, OutcomeSLABreached, st.Outcome, "it waited for the operator past its transfer SLA")
	require.Equal(t, 1, st.Rollbacks)
	require.Empty(t, st.CutoverError)
	require.Equal(t, 1.0, st.DowntimeSeconds)
}

// A wave's migration whose cutover was rolled back tells its batch that it waits for
// an operator, and that it no longer does once approved, so that the wave runs another
// in its place meanwhile.
func TestAWaveMigrationTellsItsBatchWhileItWaitsForAnOperator(t *testing.T) {
	var told []AwaitingOperator
	m := newMigrationEnvWith(t, func(env *testsuite.TestWorkflowEnvironment) {
		env.OnActivity(connectorActivities.Cutover, mock.Anything, mock.Anything).After(time.Minute).Return(contract.CutoverResult{}, nil).Once()
		env.OnSignalExternalWorkflow(mock.Anything, "wave-w1-b1", "", SignalAwaitingOperator, mock.Anything).Return(
			func(_, _, _, _ string, arg any) error {
				told = append(told, arg.(AwaitingOperator))
				return nil
			})
	})
	env := m.env
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(contract.TransferResult{Bytes: 4 << 20}, nil)
	env.RegisterDelayedCallback(func() {
		require.Equal(t, []AwaitingOperator{{Migration: "migration-m1", Waiting: true}}, told, "told once, on the rollback")
		env.SignalWorkflow(SignalApprove, ann)
	}, 5*time.Minute)
	in := migrationIn
	in.Wave, in.WaveBatch = "w1", "wave-w1-b1"
	env.ExecuteWorkflow(MigrationWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []AwaitingOperator{{Migration: "migration-m1", Waiting: true}, {Migration: "migration-m1"}}, told)
}

// An approval counts once, for the cutover it was given for: a second one sent while
// that try runs (a double click) is not banked for the next try after a rollback,
// which waits for a fresh decision.
func TestMigrationApprovalIsNotBankedForTheNextTry(t *testing.T) {
	m := newMigrationEnvWith(t, func(env *testsuite.TestWorkflowEnvironment) {
		env.OnActivity(connectorActivities.Cutover, mock.Anything, mock.Anything).After(time.Minute).Return(contract.CutoverResult{}, nil).Once()
	})
	env := m.env
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(contract.TransferResult{Bytes: 4 << 20}, nil)
	in := migrationIn
	in.RequireApproval = true
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalApprove, ann) }, time.Minute)
	env.RegisterDelayedCallback(func() {
		require.Equal(t, PhaseCutover, queryStatus(t, env).Phase)
		env.SignalWorkflow(SignalApprove, ann)
	}, time.Minute+5*time.Second)
	env.RegisterDelayedCallback(func() {
		st := queryStatus(t, env)
		require.Equal(t, PhaseAwaitingCutover, st.Phase, "rolled back, the next try waits for a fresh approval")
		require.Equal(t, 1, st.Rollbacks)
		env.SignalWorkflow(SignalApprove, ann)
	}, 5*time.Minute)
	env.ExecuteWorkflow(MigrationWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	var st MigrationStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, 1, st.Rollbacks)
	require.Equal(t, start.Add(5*time.Minute+time.Second), m.outcome.EndedAt, "cut over after the third approval, in 1 s")
	require.Len(t, st.Controls, 3)
	require.Empty(t, st.Controls[0].Ignored)
	require.Equal(t, "a cutover try was running; approve the next one once it awaits approval", st.Controls[1].Ignored)
	require.Empty(t, st.Controls[2].Ignored)
}

func TestMigrationCutoverWaitsForItsWindow(t *testing.T) {
	m := newMigrationEnv(t)
	env := m.env
	env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(contract.TransferResult{Bytes: 4 << 20}, nil)
	in := migrationIn
	in.CutoverAfter = start.Add(10 * time.Minute)
	env.RegisterDelayedCallback(func() {
		require.Equal(t, PhaseAwaitingCutover, queryStatus(t, env).Phase)
	}, 5*time.Minute)
	env.ExecuteWorkflow(MigrationWorkflow, in)
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, OutcomeSLABreached, m.outcome.Outcome, "a window past the 2-minute transfer SLA breaches it")
	require.Equal(t, start.Add(10*time.Minute+time.Second), m.outcome.EndedAt, "cut over when the window opened, in 1 s")
}

// The connector reads only under the site's sources, which the migration hands it
// with the site; a run started before migrations carried them looks them up once for
// its copy and once for its cutover.
func TestMigrationHandsItsConnectorTheSiteSources(t *testing.T) {
	for _, carried := range []bool{true, false} {
		t.Run(fmt.Sprintf("carried=%v", carried), func(t *testing.T) {
			var lookups int
			var copyIn contract.TransferInput
			var cutIn contract.CutoverInput
			m := newMigrationEnvWith(t, func(env *testsuite.TestWorkflowEnvironment) {
				env.OnActivity(fleetActivities.LookupVM, mock.Anything, mock.Anything).Return(
					func(context.Context, contract.LookupVMInput) (planning.VM, error) {
						lookups++
						return planning.VM{ID: "vm-0001", Site: "ams1", Sources: []string{"/looked/up/"}}, nil
					}).Maybe()
				env.OnActivity(connectorActivities.Cutover, mock.Anything, mock.Anything).Return(
					func(_ context.Context, in contract.CutoverInput) (contract.CutoverResult, error) {
						cutIn = in
						return contract.CutoverResult{Blocks: 1}, nil
					})
			})
			m.env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in contract.TransferInput) (contract.TransferResult, error) {
					copyIn = in
					return contract.TransferResult{Bytes: 4 << 20}, nil
				})
			in := migrationIn
			want, wantLookups := []string{"/disks/"}, 0
			if !carried {
				in.Sources, want, wantLookups = nil, []string{"/looked/up/"}, 1
			}
			m.env.ExecuteWorkflow(MigrationWorkflow, in)
			require.NoError(t, m.env.GetWorkflowError())
			require.Equal(t, wantLookups, lookups, "looked up only when the input has none, and then once")
			require.Equal(t, "ams1", copyIn.Site)
			require.Equal(t, want, copyIn.Sources)
			require.Equal(t, "ams1", cutIn.Site)
			require.Equal(t, want, cutIn.Sources)
		})
	}
}
