package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
)

// A wave starts each of its planned migrations as a child MigrationWorkflow at the
// wave's earliest start, page after page, names those it cannot start and why, and
// ends with their outcomes.
func TestAWaveStartsItsMigrationsAsChildrenAtTheirEarliestStart(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	env.RegisterWorkflow(WaveWorkflow)
	env.RegisterWorkflow(MigrationWorkflow)
	env.RegisterActivity(&activities.Fleet{})
	begin := start.Add(10 * time.Minute)
	vm := func(id, uri string) planning.VM {
		return planning.VM{ID: id, Site: "ams1", Sources: []string{"/disks/"}, DiskURI: uri, DiskBytes: 1 << 20, SLATier: "gold",
			MaxTransfer: time.Hour, MaxDowntime: time.Minute}
	}
	planned := func(vmID string) planning.PlannedMigration {
		return planning.PlannedMigration{ID: "w1-" + vmID, VMID: vmID, Site: "ams1", Bytes: 1 << 20, SLATier: "gold",
			EarliestStart: begin, Deadline: begin.Add(time.Hour), Wave: "w1"}
	}
	var afters []string
	env.OnActivity(fleetActivities.WavePage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.WavePageInput) (contract.WavePage, error) {
			afters = append(afters, in.After)
			if in.After != "" {
				return contract.WavePage{}, nil
			}
			return contract.WavePage{Next: "w1-vm-3", Missing: []string{"w1-vm-gone"}, Migrations: []contract.WaveMigration{
				{Planned: planned("vm-1"), VM: vm("vm-1", "/disks/vm-1.img")},
				{Planned: planned("vm-2"), VM: vm("vm-2", "/disks/vm-2.img")},
				{Planned: planned("vm-3"), VM: vm("vm-3", "/elsewhere/vm-3.img")},
			}}, nil
		})
	var startedAt []time.Time
	env.OnWorkflow(MigrationWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in MigrationInput) (MigrationStatus, error) {
			startedAt = append(startedAt, workflow.Now(ctx))
			require.True(t, in.Planned, "planned work")
			require.Equal(t, "pool-a", in.Pool)
			if in.ID == "w1-vm-2" {
				return MigrationStatus{ID: in.ID, Outcome: OutcomeSLABreached}, nil
			}
			return MigrationStatus{ID: in.ID, Outcome: OutcomeSucceeded}, nil
		})
	env.ExecuteWorkflow(WaveWorkflow, WaveInput{ID: "w1", Pool: "pool-a"})
	require.NoError(t, env.GetWorkflowError())
	var p WaveProgress
	require.NoError(t, env.GetWorkflowResult(&p))
	require.Equal(t, []string{"", "w1-vm-3"}, afters, "page after page, to the end")
	require.Len(t, startedAt, 2)
	for _, at := range startedAt {
		require.False(t, at.Before(begin), "not before the wave's earliest start")
	}
	require.Equal(t, 2, p.Started)
	require.Equal(t, 1, p.Succeeded)
	require.Equal(t, 1, p.Failed)
	require.Equal(t, 1, p.Breached)
	require.Equal(t, int64(1<<20), p.BytesDone)
	require.Zero(t, p.Running)
	require.True(t, p.Done)
	require.Len(t, p.Refused, 2)
	require.Equal(t, "w1-vm-gone: its VM is no longer in the inventory", p.Refused[0])
	require.Contains(t, p.Refused[1], "w1-vm-3: ")
}
