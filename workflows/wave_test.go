package workflows

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
)

// waveTest is a wave of planned migrations vm-1..vm-n at ams1, all planned to start
// at begin, split into batches at bounds, whose migrations are mocked: each runs
// until its outcome's time comes or an operator cancels it, and records the signals
// it gets.
type waveTest struct {
	t        *testing.T
	env      *testsuite.TestWorkflowEnvironment
	begin    time.Time
	n        int
	bounds   []string
	started  map[string]MigrationInput
	startAt  map[string]time.Time
	signals  []string // "<migration> <signal>"
	reports  []contract.WaveReportInput
	outcome  func(id string) string
	duration time.Duration
	// gone are planned IDs whose VM left the inventory; elsewhere VMs whose disk is
	// outside the site's sources.
	gone      []string
	elsewhere map[string]bool
	// durationOf is how long a migration runs, when not duration.
	durationOf map[string]time.Duration
	// stuck migrations wait for an operator, as after a rolled-back cutover, until one
	// approves them.
	stuck map[string]bool
	// running counts the migrations running now, and peak the most at once.
	running, peak int
}

func newWaveTest(t *testing.T, n int, bounds ...string) *waveTest {
	var suite testsuite.WorkflowTestSuite
	w := &waveTest{t: t, env: suite.NewTestWorkflowEnvironment(), begin: start.Add(10 * time.Minute), n: n, bounds: bounds,
		started: map[string]MigrationInput{}, startAt: map[string]time.Time{}, duration: time.Hour,
		outcome: func(string) string { return OutcomeSucceeded }}
	env := w.env
	env.SetStartTime(start)
	env.RegisterWorkflow(WaveWorkflow)
	env.RegisterWorkflow(WaveBatchWorkflow)
	env.RegisterActivity(&activities.Fleet{})
	env.OnActivity(fleetActivities.WaveBatches, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.WaveBatchesInput) (contract.WaveBatches, error) {
			require.Equal(t, WaveBatchSize, in.Size)
			if in.Retry {
				failed := w.page(contract.WavePageInput{Retry: true})
				return contract.WaveBatches{Bounds: []string{""}, Count: len(failed.Migrations)}, nil
			}
			return contract.WaveBatches{Bounds: w.bounds, Count: n, Bytes: int64(n) << 20, EarliestStart: w.begin,
				Deadline: w.begin.Add(time.Hour)}, nil
		})
	env.OnActivity(fleetActivities.WavePage, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.WavePageInput) (contract.WavePage, error) { return w.page(in), nil })
	env.OnActivity(fleetActivities.RecordWaveReport, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.WaveReportInput) (contract.WaveReport, error) {
			w.reports = append(w.reports, in)
			return contract.WaveReport{Wave: in.Wave}, nil
		})
	// Registered under MigrationWorkflow's name rather than mocked: the test
	// environment signals only workflows it runs itself.
	env.RegisterWorkflowWithOptions(
		func(ctx workflow.Context, in MigrationInput) (MigrationStatus, error) {
			w.started[in.ID], w.startAt[in.ID] = in, workflow.Now(ctx)
			w.running++
			w.peak = max(w.peak, w.running)
			defer func() { w.running-- }()
			done := false
			outcome := w.outcome(in.ID)
			tell := func(waiting bool) {
				require.NoError(t, workflow.SignalExternalWorkflow(ctx, in.WaveBatch, "", SignalAwaitingOperator,
					AwaitingOperator{Migration: MigrationWorkflowID(in.ID), Waiting: waiting}).Get(ctx, nil))
			}
			stuck := w.stuck[in.ID]
			if stuck {
				tell(true)
			}
			sel := workflow.NewSelector(ctx)
			for _, name := range []string{SignalPause, SignalResume, SignalApprove, SignalCancel} {
				sel.AddReceive(workflow.GetSignalChannel(ctx, name), func(c workflow.ReceiveChannel, _ bool) {
					var ctl Control
					c.Receive(ctx, &ctl)
					require.NotEmpty(t, ctl.Who, "the operator is named")
					w.signals = append(w.signals, in.ID+" "+name)
					if name == SignalCancel {
						done, outcome = true, OutcomeCancelled
					}
					if name == SignalApprove && stuck {
						tell(false)
						done = true
					}
				})
			}
			if !stuck {
				sel.AddFuture(workflow.NewTimer(ctx, cmp.Or(w.durationOf[in.ID], w.duration)), func(workflow.Future) { done = true })
			}
			for !done {
				sel.Select(ctx)
			}
			return MigrationStatus{ID: in.ID, Outcome: outcome}, nil
		}, workflow.RegisterOptions{Name: "MigrationWorkflow"})
	return w
}

// page answers WavePage from the wave's migrations: those after in.After up to
// in.Through, or with Retry those whose first try failed.
func (w *waveTest) page(in contract.WavePageInput) contract.WavePage {
	var page contract.WavePage
	for i := 1; i <= w.n; i++ {
		vmID := fmt.Sprintf("vm-%d", i)
		id := "w1-" + vmID
		if id <= in.After || in.Through != "" && id > in.Through {
			continue
		}
		if in.Retry && (w.outcome(id) != OutcomeFailed || w.started[id].ID == "") {
			continue
		}
		if slices.Contains(w.gone, id) {
			page.Missing = append(page.Missing, id)
			continue
		}
		disk := "/disks/" + vmID + ".img"
		if w.elsewhere[vmID] {
			disk = "/elsewhere/" + vmID + ".img"
		}
		page.Migrations = append(page.Migrations, contract.WaveMigration{
			Planned: planning.PlannedMigration{ID: id, VMID: vmID, Site: "ams1", Bytes: 1 << 20, SLATier: "gold",
				EarliestStart: w.begin, Deadline: w.begin.Add(time.Hour), Wave: "w1"},
			VM: planning.VM{ID: vmID, Site: "ams1", Sources: []string{"/disks/"}, DiskURI: disk, DiskBytes: 1 << 20,
				SLATier: "gold", MaxTransfer: 2 * time.Hour, MaxDowntime: time.Minute}})
	}
	if len(page.Migrations)+len(page.Missing) > 0 {
		page.Next = fmt.Sprintf("w1-vm-%d", w.n)
	}
	return page
}

// act sends a wave action after d, and keeps its refusal, if any, in *refused.
func (w *waveTest) act(d time.Duration, action string, refused *error) {
	w.env.RegisterDelayedCallback(func() {
		w.env.UpdateWorkflow(UpdateWaveControl, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) {
				if refused != nil {
					*refused = err
				}
			},
			OnComplete: func(any, error) {},
		}, WaveControl{Action: action, Control: Control{Who: "ana", Why: "the wave's " + action}})
	}, d)
}

func (w *waveTest) run(in WaveInput) WaveProgress {
	// Under its own ID, which its batches signal.
	w.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: WaveWorkflowID(in.ID)})
	w.env.ExecuteWorkflow(WaveWorkflow, in)
	require.NoError(w.t, w.env.GetWorkflowError())
	var p WaveProgress
	require.NoError(w.t, w.env.GetWorkflowResult(&p))
	return p
}

// A wave runs its migrations in batches, each batch's migrations as its children, at
// the wave's earliest start; it names those it cannot start and why, adds up the
// batches' outcomes and writes its report.
func TestAWaveRunsItsMigrationsInBatchesAtTheirEarliestStart(t *testing.T) {
	w := newWaveTest(t, 5, "w1-vm-2", "w1-vm-4", "")
	w.outcome = func(id string) string {
		return map[string]string{"w1-vm-2": OutcomeSLABreached, "w1-vm-5": OutcomeFailed}[id] + map[bool]string{true: OutcomeSucceeded}[id != "w1-vm-2" && id != "w1-vm-5"]
	}
	p := w.run(WaveInput{ID: "w1", Pool: "pool-a"})
	require.Len(t, w.started, 5)
	for id, in := range w.started {
		require.True(t, in.Planned, "planned work")
		require.Equal(t, "w1", in.Wave, "its history row names the wave")
		require.Equal(t, "pool-a", in.Pool)
		require.False(t, w.startAt[id].Before(w.begin), "not before the wave's earliest start")
	}
	require.Equal(t, 5, p.Started)
	require.Equal(t, 3, p.Succeeded)
	require.Equal(t, 2, p.Failed)
	require.Equal(t, 1, p.Breached)
	require.Equal(t, int64(3<<20), p.BytesDone)
	require.Equal(t, 5, p.Planned)
	require.Zero(t, p.Running)
	require.True(t, p.Done)
	require.Empty(t, p.Batches, "none running at the end")
	require.Len(t, w.reports, 1)
	require.Equal(t, contract.WaveReportInput{Wave: "w1", Pool: "pool-a", StartedAt: start, EndedAt: w.begin.Add(time.Hour), Attempts: 1}, w.reports[0])
}

// A planned migration whose VM left the inventory, or whose disk lies outside its
// site's sources, is refused and named with why; the others run.
func TestAWaveNamesTheMigrationsItCannotStart(t *testing.T) {
	w := newWaveTest(t, 4, "w1-vm-2", "")
	w.gone, w.elsewhere = []string{"w1-vm-1"}, map[string]bool{"vm-3": true}
	p := w.run(WaveInput{ID: "w1", Pool: "pool-a"})
	require.Equal(t, 2, p.Succeeded)
	require.Equal(t, 2, p.RefusedCount)
	slices.Sort(p.Refused) // batches end in any order
	require.Equal(t, "w1-vm-1: its VM is no longer in the inventory", p.Refused[0])
	require.Contains(t, p.Refused[1], "w1-vm-3: ")
}

// At most MaxRunning of a wave's migrations run at once, a quarter of it in each
// batch: the third batch starts once one of the first two has ended.
func TestAWaveRunsAtMostMaxRunningMigrationsAtOnce(t *testing.T) {
	w := newWaveTest(t, 8, "w1-vm-2", "w1-vm-4", "w1-vm-6", "")
	p := w.run(WaveInput{ID: "w1", Pool: "pool-a", MaxRunning: 2})
	require.Equal(t, 8, p.Succeeded)
	require.Equal(t, 2, w.peak)
	require.Equal(t, w.begin, w.startAt["w1-vm-3"], "two batches of one at a time")
	require.Equal(t, w.begin.Add(time.Hour), w.startAt["w1-vm-2"])
	require.Equal(t, w.begin.Add(2*time.Hour), w.startAt["w1-vm-5"], "the third batch waited for the first")
}

// The next batch starts as soon as the tails of the running ones leave its share
// free, not when one of them ends.
func TestAWaveStartsTheNextBatchAsTheRunningOnesTailsShrink(t *testing.T) {
	w := newWaveTest(t, 9, "w1-vm-2", "w1-vm-4", "w1-vm-6", "w1-vm-8", "")
	w.durationOf = map[string]time.Duration{"w1-vm-1": 10 * time.Minute, "w1-vm-3": 10 * time.Minute}
	p := w.run(WaveInput{ID: "w1", Pool: "pool-a", MaxRunning: 8})
	require.Equal(t, 9, p.Succeeded)
	require.Equal(t, 8, w.peak, "four batches of two at once, then never more")
	require.Equal(t, w.begin.Add(10*time.Minute), w.startAt["w1-vm-9"],
		"started once the first two batches held one each, an hour before either ended")
}

// A migration waiting for an operator, as after a rolled-back cutover, holds nothing
// of MaxRunning: its batch starts the next in its place, and the wave the next batch
// once the rest of that batch has ended.
func TestAWaveRunsOthersInPlaceOfAMigrationWaitingForAnOperator(t *testing.T) {
	w := newWaveTest(t, 7, "w1-vm-3", "w1-vm-6", "")
	w.stuck = map[string]bool{"w1-vm-1": true}
	w.env.RegisterDelayedCallback(func() {
		w.env.SignalWorkflowByID(MigrationWorkflowID("w1-vm-1"), SignalApprove, Control{Who: "ana", Why: "try again"})
	}, 10*time.Hour)
	p := w.run(WaveInput{ID: "w1", Pool: "pool-a", MaxRunning: 2})
	require.Equal(t, 7, p.Started)
	require.Equal(t, w.begin, w.startAt["w1-vm-2"], "in place of the one waiting")
	require.Equal(t, w.begin.Add(2*time.Hour), w.startAt["w1-vm-7"],
		"the third batch started when the first held nothing but the waiting one, not when it ended")
	require.Equal(t, 3, w.peak, "two at once beside the one waiting")
	require.Zero(t, p.AwaitingOperator)
}

// A batch runs at most its share of the wave's max_running: the rest start as the
// first end.
func TestABatchRunsAtMostItsShareOfTheWavesMigrations(t *testing.T) {
	w := newWaveTest(t, 5, "")
	p := w.run(WaveInput{ID: "w1", Pool: "pool-a", MaxRunning: 12})
	require.Equal(t, 5, p.Succeeded)
	for _, id := range []string{"w1-vm-1", "w1-vm-2", "w1-vm-3"} {
		require.Equal(t, w.begin, w.startAt[id], id)
	}
	for _, id := range []string{"w1-vm-4", "w1-vm-5"} {
		require.Equal(t, w.begin.Add(time.Hour), w.startAt[id], "%s waited for a running one to end", id)
	}
}

// Pausing a wave pauses its running migrations and starts no more until it resumes;
// cancelling it cancels its running migrations and starts no more; each action is
// audited with who and why, and an action the wave cannot take is refused, saying why.
func TestAnOperatorPausesResumesAndCancelsAWholeWave(t *testing.T) {
	w := newWaveTest(t, 4, "w1-vm-2", "")
	var twice, approve, bad error
	w.act(20*time.Minute, SignalPause, nil)
	w.act(21*time.Minute, SignalPause, &twice)
	w.act(22*time.Minute, SignalApprove, &approve)
	w.env.RegisterDelayedCallback(func() {
		w.env.UpdateWorkflow(UpdateWaveControl, "", &testsuite.TestUpdateCallback{OnAccept: func() {}, OnComplete: func(any, error) {},
			OnReject: func(err error) { bad = err }}, WaveControl{Action: "stop", Control: Control{Who: "ana", Why: "x"}})
	}, 23*time.Minute)
	w.act(30*time.Minute, SignalResume, nil)
	w.act(40*time.Minute, SignalCancel, nil)
	p := w.run(WaveInput{ID: "w1", Pool: "pool-a", MaxRunning: 2})

	require.ErrorContains(t, twice, "paused already")
	require.ErrorContains(t, approve, "does not wait for approval")
	require.ErrorContains(t, bad, "action")
	require.Equal(t, []string{
		"w1-vm-1 pause", "w1-vm-3 pause", "w1-vm-1 resume", "w1-vm-3 resume", "w1-vm-1 cancel", "w1-vm-3 cancel",
	}, w.signals, "every running migration, batch by batch")
	require.Len(t, w.started, 2, "the batches' second migrations never started")
	require.True(t, p.Cancelled)
	require.Equal(t, 2, p.Failed)
	require.True(t, p.Done)
	var actions []string
	for _, c := range p.Controls {
		require.Equal(t, "ana", c.Who)
		actions = append(actions, c.Action)
	}
	require.Equal(t, []string{SignalPause, SignalResume, SignalCancel}, actions, "only the actions taken are audited")
	require.True(t, w.reports[0].Cancelled)
	require.Equal(t, p.Controls, w.reports[0].Controls, "the report keeps the audit")
}

// A paused wave's batches start nothing, even once the earliest start has come.
func TestAPausedWaveStartsNothingUntilItResumes(t *testing.T) {
	w := newWaveTest(t, 2, "")
	w.act(time.Minute, SignalPause, nil)
	w.act(3*time.Hour, SignalResume, nil)
	p := w.run(WaveInput{ID: "w1", Pool: "pool-a"})
	require.Equal(t, 2, p.Succeeded)
	require.Equal(t, start.Add(3*time.Hour), w.startAt["w1-vm-1"], "started on resume, not at the earliest start")
	require.Empty(t, w.signals, "nothing was running to pause")
}

// A wave that waits for approval passes the approval to its running migrations, and
// the migrations it starts afterwards do not wait for one.
func TestApprovingAWaveApprovesItsMigrations(t *testing.T) {
	w := newWaveTest(t, 4, "w1-vm-2", "")
	w.act(30*time.Minute, SignalApprove, nil)
	p := w.run(WaveInput{ID: "w1", Pool: "pool-a", RequireApproval: true, MaxRunning: 1})
	require.Equal(t, 4, p.Succeeded)
	require.True(t, w.started["w1-vm-1"].RequireApproval)
	require.False(t, w.started["w1-vm-2"].RequireApproval, "started after the approval")
	require.False(t, w.started["w1-vm-3"].RequireApproval, "in a batch started after the approval")
	require.Equal(t, []string{"w1-vm-1 approve"}, w.signals)
}

// A retry asked while the wave runs runs its failed migrations again once the pass
// ends, each under a new ID, writing where the failed try wrote.
func TestAWaveRetriesItsFailedMigrations(t *testing.T) {
	w := newWaveTest(t, 3, "")
	w.outcome = func(id string) string {
		if id == "w1-vm-2" {
			return OutcomeFailed
		}
		return OutcomeSucceeded
	}
	w.act(30*time.Minute, WaveRetry, nil)
	p := w.run(WaveInput{ID: "w1", Pool: "pool-a"})
	retry, ok := w.started["w1-vm-2-r1"]
	require.True(t, ok, "the failed migration ran again")
	require.Equal(t, w.started["w1-vm-2"].Destination, retry.Destination, "it resumes what the failed try copied")
	require.Len(t, w.started, 4, "only the failed one")
	require.Equal(t, 1, p.Attempt)
	require.Equal(t, 4, p.Started)
	require.Equal(t, 3, p.Succeeded)
	require.Equal(t, 2, w.reports[0].Attempts)
	require.True(t, slices.ContainsFunc(p.Controls, func(c ControlEvent) bool { return c.Action == WaveRetry }))
}
