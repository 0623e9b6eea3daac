package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
)

// A migration that waits long for a connector continues as new, carrying what it was
// (its start, deadline, breach, controls), instead of growing its history towards
// Temporal's limit; the next run waits on and, once assigned, copies and records the
// migration as started by the first.
func TestAMigrationThatWaitsLongContinuesAsNew(t *testing.T) {
	limit := waitResends
	waitResends = 5
	t.Cleanup(func() { waitResends = limit })

	m := newMigrationEnvAnswering(t, 1_000_000) // the fleet never answers
	env := m.env
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalPriority, PriorityChange{Control: ann, Priority: 9}) }, 3*time.Minute)
	env.ExecuteWorkflow(MigrationWorkflow, migrationIn)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "got %v", env.GetWorkflowError())
	var next MigrationInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	c := next.Continued
	require.NotNil(t, c)
	require.Equal(t, start, c.Status.StartedAt)
	require.Equal(t, start.Add(migrationIn.MaxTransfer), c.Status.Deadline)
	require.Equal(t, PhaseWaiting, c.Status.Phase)
	require.True(t, c.SLAFired, "the 2-minute SLA passed while it waited")
	require.Equal(t, 9, next.Priority)
	require.Len(t, c.Status.Controls, 1)
	require.Equal(t, 6, m.reserved, "the first and five re-sent")
	require.Len(t, m.breaches, 1)

	// The next run is answered, copies, and records the migration as the first run
	// started it, without a second breach.
	m2 := newMigrationEnv(t)
	m2.env.OnActivity(connectorActivities.Transfer, mock.Anything, mock.Anything).Return(contract.TransferResult{Bytes: 4 << 20}, nil)
	m2.env.ExecuteWorkflow(MigrationWorkflow, next)
	require.NoError(t, m2.env.GetWorkflowError())
	require.Equal(t, OutcomeSLABreached, m2.outcome.Outcome)
	require.Equal(t, start, m2.outcome.StartedAt)
	require.Empty(t, m2.breaches, "the breach was recorded by the first run")
}
