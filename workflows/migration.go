package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// reserveResend is how often a waiting migration repeats its reservation, in case the
// fleet was restarted from scratch and lost it.
const reserveResend = 2 * time.Minute

// MigrationWorkflow moves one VM disk. It asks the fleet for a connector, pre-warms it,
// runs the transfer on the connector's own task queue while a durable timer enforces
// the SLA's maximum transfer time, records the outcome in the history that feeds the
// forecast, and gives the connector back.
func MigrationWorkflow(ctx workflow.Context, in MigrationInput) (MigrationStatus, error) {
	m, err := newMigration(ctx, in)
	if err != nil {
		return MigrationStatus{}, err
	}
	return m.run(ctx, in.Continued)
}

// waitResends is how many reservations a run re-sends while it waits before it
// continues as new (sooner if Temporal suggests it): each adds some eight events to the
// history, which would otherwise reach Temporal's limit in about a week of waiting,
// while an SLA may allow a month. A thousand is 33 hours and some 8,000 events.
var waitResends = 1000

// errContinue tells run that the migration continues as new while it waits.
var errContinue = errors.New("continue as new")

// longWait counts a re-sent reservation and reports whether the run has waited long
// enough to continue as new; runs from before it never do.
func (m *migration) longWait(ctx workflow.Context) bool {
	m.resends++
	if m.resends < waitResends && !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		return false
	}
	return workflow.GetVersion(ctx, waitContinueVersion, workflow.DefaultVersion, 1) != workflow.DefaultVersion
}

type migration struct {
	in     MigrationInput
	status MigrationStatus
	logger log.Logger
	// slaFired is set when the SLA timer fires.
	slaFired bool
	// The operator's controls, and what they asked for so far.
	cancelCh, pauseCh, resumeCh, priorityCh, approveCh workflow.ReceiveChannel
	cancelled, paused, requeue, approved               bool
	// awaitingOperator is what the wave's batch was last told (see tellBatch).
	awaitingOperator bool
	// avoid are the connectors that failed under this migration.
	avoid []string
	// sticky, when set, is the connector to use again without asking the fleet: a
	// retry after a passing failure stays where the partial copy is being written.
	sticky *planning.Assignment
	// resends counts the reservations this run re-sent while it waited.
	resends int
}

// errCancelled ends a migration that an operator cancelled while it waited.
var errCancelled = errors.New("cancelled by an operator")

func newMigration(ctx workflow.Context, in MigrationInput) (*migration, error) {
	if err := validation.ID("id", in.ID); err != nil {
		return nil, invalid(err)
	}
	if in.MaxTransfer <= 0 || in.MaxDowntime <= 0 {
		return nil, temporal.NewNonRetryableApplicationError("max transfer time and max downtime must be positive", "InvalidInput", nil)
	}
	now := workflow.Now(ctx)
	m := &migration{in: in, logger: log.With(workflow.GetLogger(ctx), "migration", in.ID, "vm", in.VMID),
		cancelCh: workflow.GetSignalChannel(ctx, SignalCancel), pauseCh: workflow.GetSignalChannel(ctx, SignalPause),
		resumeCh: workflow.GetSignalChannel(ctx, SignalResume), priorityCh: workflow.GetSignalChannel(ctx, SignalPriority),
		approveCh: workflow.GetSignalChannel(ctx, SignalApprove)}
	m.status = MigrationStatus{
		ID: in.ID, VMID: in.VMID, Site: in.Site, SLATier: in.SLATier, Phase: PhaseWaiting, Bytes: in.Bytes,
		StartedAt: now, Deadline: now.Add(in.MaxTransfer), Destination: in.Destination, Priority: in.Priority,
	}
	if c := in.Continued; c != nil {
		m.status, m.slaFired, m.paused, m.avoid = c.Status, c.SLAFired, c.Paused, c.Avoid
		m.in.Continued = nil
	}
	if err := workflow.SetQueryHandler(ctx, QueryMigration, func() (MigrationStatus, error) { return m.status, nil }); err != nil {
		return nil, err
	}
	return m, nil
}

// maxFailovers bounds how many connectors a migration may lose before it gives up.
const maxFailovers = 3

// maxRetries bounds the retries of a transfer that failed for a passing reason (an I/O
// error, a checksum mismatch) on a healthy connector.
const maxRetries = 5

func (m *migration) run(ctx workflow.Context, carried *MigrationCarry) (MigrationStatus, error) {
	// A continued run times the SLA from the first run's start.
	sla := m.in.MaxTransfer
	resume, retries := false, 0
	if carried != nil {
		sla = max(m.status.Deadline.Sub(workflow.Now(ctx)), time.Second)
		resume, retries = carried.Resume, carried.Retries
	}
	slaTimer := workflow.NewTimerWithOptions(ctx, sla, workflow.TimerOptions{
		Summary: fmt.Sprintf("SLA: %s to copy %s", m.in.MaxTransfer, m.in.VMID)})
	for {
		assignment, err := m.reserve(ctx, slaTimer)
		if errors.Is(err, errContinue) {
			m.logger.Info("waiting on: continued as new", "reservations_resent", m.resends)
			in := m.in
			in.Continued = &MigrationCarry{Status: m.status, SLAFired: m.slaFired, Paused: m.paused, Avoid: m.avoid,
				Resume: resume, Retries: retries}
			return MigrationStatus{}, workflow.NewContinueAsNewError(ctx, MigrationWorkflow, in)
		}
		if errors.Is(err, errCancelled) {
			return m.finish(ctx, OutcomeCancelled, nil)
		}
		if err != nil {
			return m.finish(ctx, OutcomeFailed, err)
		}
		m.status.ConnectorID, m.status.Placement = assignment.ConnectorID, assignment.Reason
		m.in.Planned = m.in.Planned || assignment.Planned
		if m.status.WaitedSeconds == 0 {
			waited := workflow.Now(ctx).Sub(m.status.StartedAt)
			m.status.WaitedSeconds = waited.Seconds()
			m.recordWait(ctx, waited)
		}
		m.logger.Info("connector assigned", "connector", assignment.ConnectorID, "why", assignment.Reason)
		if err := workflow.UpsertTypedSearchAttributes(ctx, SearchConnector.ValueSet(assignment.ConnectorID)); err != nil {
			m.logger.Warn("search attribute not updated", "connector", assignment.ConnectorID, "error", err)
		}
		connCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:              assignment.TaskQueue,
			ScheduleToCloseTimeout: 2 * time.Minute,
			StartToCloseTimeout:    30 * time.Second,
			RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second},
		})
		m.setPhase(ctx, PhasePreparing)
		var prep contract.PrepareResult
		prepCtx := workflow.WithActivityOptions(connCtx, withSummary(connCtx, "pre-warm connector "+assignment.ConnectorID))
		err = workflow.ExecuteActivity(prepCtx, connectorActivities.Prepare, contract.PrepareInput{MigrationID: m.in.ID, Bytes: m.in.Bytes}).Get(ctx, &prep)
		if isTimeout(err) {
			if err := m.failover(ctx, assignment, err); err != nil {
				return m.finish(ctx, OutcomeFailed, err)
			}
			continue
		}
		if err != nil {
			return m.finish(ctx, OutcomeFailed, fmt.Errorf("pre-warm connector %s: %w", assignment.ConnectorID, err))
		}

		result, err := m.transfer(ctx, assignment, slaTimer, resume)
		var app *temporal.ApplicationError
		switch {
		case err == nil:
			m.status.Bytes = result.Bytes
			return m.cutover(ctx, connCtx, assignment, slaTimer)
		case m.cancelled:
			return m.discard(ctx, connCtx)
		case isTimeout(err):
			// The connector stopped heartbeating: it is gone. Another one at the site
			// continues from the partial copy, which every connector here can reach.
			if err := m.failover(ctx, assignment, err); err != nil {
				return m.finish(ctx, OutcomeFailed, err)
			}
			resume = true
		case errors.As(err, &app) && app.NonRetryable(), retries >= maxRetries:
			return m.finish(ctx, OutcomeFailed, fmt.Errorf("transfer on connector %s: %w", assignment.ConnectorID, err))
		default:
			// A passing failure on a live connector: try again there, after a pause.
			retries++
			m.logger.Warn("transfer failed; retrying", "connector", assignment.ConnectorID, "retry", retries, "error", err)
			if err := workflow.Sleep(ctx, time.Duration(retries)*5*time.Second); err != nil {
				return m.finish(ctx, OutcomeFailed, err)
			}
			m.sticky = &assignment
			resume = true
		}
	}
}

// cutover is the last step: when the window is open and an operator approved (if
// asked to), the final delta sync copies what changed during the bulk copy, raced
// against a durable timer for the maximum downtime. Too slow, it is rolled back: the
// copy stays as the bulk copy left it, the source stays authoritative, the status says
// why, and the migration waits for an operator to approve the next try (or cancel).
func (m *migration) cutover(ctx workflow.Context, connCtx workflow.Context, a planning.Assignment, slaTimer workflow.Future) (MigrationStatus, error) {
	if wait := m.in.CutoverAfter.Sub(workflow.Now(ctx)); wait > 0 {
		m.setPhase(ctx, PhaseAwaitingCutover)
		window := workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: "cutover window opens"})
		for opened := false; !opened && !m.cancelled; {
			sel := workflow.NewSelector(ctx)
			sel.AddFuture(window, func(workflow.Future) { opened = true })
			m.addControls(ctx, sel)
			m.addSLA(ctx, sel, slaTimer)
			sel.Select(ctx)
		}
	}
	needApproval := m.in.RequireApproval
	cutCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           a.TaskQueue,
		StartToCloseTimeout: max(10*m.in.MaxDowntime, 10*time.Minute),
		HeartbeatTimeout:    20 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		WaitForCancellation: true,
		Summary:             fmt.Sprintf("cutover: sync what changed in %s on %s", m.in.VMID, a.ConnectorID),
	})
	for {
		m.drainControls(ctx)
		for needApproval && !m.approved && !m.cancelled {
			m.setPhase(ctx, PhaseAwaitingCutover)
			if m.status.Rollbacks > 0 {
				m.tellBatch(ctx, true)
			}
			sel := workflow.NewSelector(ctx)
			m.addControls(ctx, sel)
			m.addSLA(ctx, sel, slaTimer)
			sel.Select(ctx)
		}
		m.tellBatch(ctx, false)
		if m.cancelled {
			return m.discard(ctx, connCtx)
		}
		m.approved = false
		m.setPhase(ctx, PhaseCutover)
		began := workflow.Now(ctx)
		syncCtx, stop := workflow.WithCancel(cutCtx)
		m.siteSources(ctx, siteSourcesCutoverVersion)
		future := workflow.ExecuteActivity(syncCtx, connectorActivities.Cutover, contract.CutoverInput{
			MigrationID: m.in.ID, Site: m.in.Site, Sources: m.in.Sources, Source: m.in.Source, Destination: m.in.Destination,
		})
		downtime := workflow.NewTimerWithOptions(syncCtx, m.in.MaxDowntime, workflow.TimerOptions{
			Summary: fmt.Sprintf("downtime SLA: %s to cut over", m.in.MaxDowntime)})
		var res contract.CutoverResult
		var err error
		done, late := false, false
		for !done && !late {
			sel := workflow.NewSelector(ctx)
			sel.AddFuture(future, func(f workflow.Future) { done, err = true, f.Get(ctx, &res) })
			sel.AddFuture(downtime, func(workflow.Future) { late = true })
			m.addSLA(ctx, sel, slaTimer)
			sel.Select(ctx)
		}
		if late && !done {
			stop()
			_ = future.Get(ctx, &res)
			err = fmt.Errorf("the delta sync did not finish within the %s downtime SLA", m.in.MaxDowntime)
		}
		stop()
		if err == nil {
			m.status.DowntimeSeconds = workflow.Now(ctx).Sub(began).Seconds()
			m.status.ChangedBlocks = res.ChangedBlocks
			m.status.SHA256 = res.SHA256
			m.status.CutoverError = ""
			outcome := OutcomeSucceeded
			if m.slaFired {
				outcome = OutcomeSLABreached
			}
			return m.finish(ctx, outcome, nil)
		}
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.NonRetryable() {
			return m.finish(ctx, OutcomeFailed, fmt.Errorf("cutover: %w", err))
		}
		m.status.Rollbacks++
		m.status.CutoverError = fmt.Sprintf("cutover rolled back, the source stays authoritative: %v", err)
		m.logger.Warn("cutover rolled back", "error", err, "rollbacks", m.status.Rollbacks)
		needApproval = true // the next try is the operator's call
	}
}

// transfer copies the disk on the assigned connector, pausing, resuming and stopping
// as the operator asks, until the copy ends or fails or the operator cancels it.
func (m *migration) transfer(ctx workflow.Context, assignment planning.Assignment, slaTimer workflow.Future, resume bool) (contract.TransferResult, error) {
	transferCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: assignment.TaskQueue,
		// The transfer may outlive its SLA: a late copy still completes and is
		// recorded as a breach. The hard limit is generous; heartbeats catch a dead
		// connector quickly.
		StartToCloseTimeout: max(10*m.in.MaxTransfer, time.Hour),
		HeartbeatTimeout:    20 * time.Second,
		// One attempt: the workflow decides what a failure means (see run), since a
		// retry on a dead connector's queue would wait for a connector that is gone.
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
		// A pause must not start the next attempt while the last one still writes.
		WaitForCancellation: true,
	})
	var result contract.TransferResult
	for {
		m.drainControls(ctx)
		for m.paused && !m.cancelled {
			m.setPhase(ctx, PhasePaused)
			sel := workflow.NewSelector(ctx)
			m.addControls(ctx, sel)
			m.addSLA(ctx, sel, slaTimer)
			sel.Select(ctx)
		}
		if m.cancelled {
			return result, errCancelled
		}
		m.setPhase(ctx, PhaseTransferring)
		m.status.Attempts++
		what := "copy "
		if resume {
			what = "resume copying "
		}
		attemptCtx, stop := workflow.WithCancel(workflow.WithActivityOptions(transferCtx,
			withSummary(transferCtx, fmt.Sprintf("%s%s (%s) on %s", what, m.in.VMID, mib(m.in.Bytes), assignment.ConnectorID))))
		m.siteSources(ctx, siteSourcesTransferVersion)
		future := workflow.ExecuteActivity(attemptCtx, connectorActivities.Transfer, contract.TransferInput{
			MigrationID: m.in.ID, Site: m.in.Site, Sources: m.in.Sources, Source: m.in.Source, Destination: m.in.Destination,
			ExpectedBytes: m.in.Bytes, Resume: resume,
			// The VM runs on during the bulk copy; the cutover makes the copy exact.
			Live: true,
		})
		var err error
		done, stopped := false, false
		for !done {
			sel := workflow.NewSelector(ctx)
			sel.AddFuture(future, func(f workflow.Future) {
				done = true
				err = f.Get(ctx, &result)
			})
			m.addControls(ctx, sel)
			m.addSLA(ctx, sel, slaTimer)
			sel.Select(ctx)
			if !done && (m.paused || m.cancelled) {
				// Stop the copy; the partial file stays for a resume or a discard.
				stop()
				err = future.Get(ctx, &result)
				done, stopped = true, true
			}
		}
		stop()
		// Stopped by a pause or a cancel before it finished: whatever the attempt
		// reports (cancelled, or lost with a dead connector), the next one resumes
		// from the partial copy or the cancel discards it.
		if stopped && err != nil {
			resume = true
			continue
		}
		return result, err
	}
}

// isTimeout reports whether an activity failed by timing out: its connector stopped
// answering.
func isTimeout(err error) bool {
	var te *temporal.TimeoutError
	return errors.As(err, &te)
}

// failover tells the fleet that the connector failed under this migration, so that it
// replaces it, and makes the next reservation avoid it.
func (m *migration) failover(ctx workflow.Context, a planning.Assignment, cause error) error {
	m.avoid = append(m.avoid, a.ConnectorID)
	if len(m.avoid) > maxFailovers {
		return fmt.Errorf("lost %d connectors (%v); last: %w", len(m.avoid), m.avoid, cause)
	}
	m.logger.Warn("connector lost; failing over", "connector", a.ConnectorID, "error", cause)
	err := workflow.SignalExternalWorkflow(ctx, FleetWorkflowID(m.in.Pool), "", SignalConnectorFailed, ConnectorFailure{
		ConnectorID: a.ConnectorID, MigrationID: m.in.ID, Reason: cause.Error(),
	}).Get(ctx, nil)
	if err != nil {
		m.logger.Error("report failed connector", "connector", a.ConnectorID, "error", err)
	}
	m.status.Failovers++
	m.status.ConnectorID = ""
	m.setPhase(ctx, PhaseWaiting)
	return nil
}

// withSummary returns ctx's activity options with a summary for the event history.
func withSummary(ctx workflow.Context, summary string) workflow.ActivityOptions {
	o := workflow.GetActivityOptions(ctx)
	o.Summary = summary
	return o
}

// setPhase records the phase in the status and in the PmoPhase search attribute, so
// that the Web UI and GET /migrations can filter by it.
func (m *migration) setPhase(ctx workflow.Context, phase string) {
	if m.status.Phase == phase {
		return
	}
	m.status.Phase = phase
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchPhase.ValueSet(phase)); err != nil {
		m.logger.Warn("search attribute not updated", "phase", phase, "error", err)
	}
}

// tellBatch tells the wave's batch that started the migration whether it waits for an
// operator now, when that changed: the batch then runs another in its place. Ad-hoc
// migrations, and those started by batches from before WaveBatch, have none to tell.
func (m *migration) tellBatch(ctx workflow.Context, waiting bool) {
	if m.in.WaveBatch == "" || m.awaitingOperator == waiting {
		return
	}
	m.awaitingOperator = waiting
	err := workflow.SignalExternalWorkflow(ctx, m.in.WaveBatch, "", SignalAwaitingOperator,
		AwaitingOperator{Migration: MigrationWorkflowID(m.in.ID), Waiting: waiting}).Get(ctx, nil)
	if err != nil {
		// The batch ended: nothing is waiting for it to count this.
		m.logger.Warn("wave batch not told", "batch", m.in.WaveBatch, "waiting", waiting, "error", err)
	}
}

// addSLA makes sel wake when the SLA timer fires, until it has.
func (m *migration) addSLA(ctx workflow.Context, sel workflow.Selector, slaTimer workflow.Future) {
	if !m.slaFired {
		sel.AddFuture(slaTimer, func(workflow.Future) { m.breach(ctx) })
	}
}

// siteSources gives a run whose input has no sources its site's list from the
// inventory, so that a migration in flight across the upgrade is not refused by its
// connector. Runs started since carry the list in their input and look nothing up.
func (m *migration) siteSources(ctx workflow.Context, changeID string) {
	if m.in.Sources != nil || workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	var vm planning.VM
	err := workflow.ExecuteActivity(controlOptions(ctx, 30*time.Second), fleetActivities.LookupVM, contract.LookupVMInput{VMID: m.in.VMID}).Get(ctx, &vm)
	if err != nil {
		// The connector then refuses the copy and says why.
		workflow.GetLogger(ctx).Warn("the site's sources could not be looked up", "vm", m.in.VMID, "error", err)
		return
	}
	m.in.Sources = vm.Sources
}

// reserve asks the fleet for a connector and waits for the answer, noting an SLA
// breach if the timer fires first.
func (m *migration) reserve(ctx workflow.Context, slaTimer workflow.Future) (planning.Assignment, error) {
	if a := m.sticky; a != nil {
		m.sticky = nil
		return *a, nil
	}
	info := workflow.GetInfo(ctx)
	r := planning.Reservation{
		MigrationID: m.in.ID, WorkflowID: info.WorkflowExecution.ID, Site: m.in.Site, Bytes: m.in.Bytes,
		Deadline: m.status.Deadline, Priority: m.in.Priority, RequestedAt: m.status.StartedAt, Avoid: m.avoid,
	}
	assignedCh := workflow.GetSignalChannel(ctx, SignalAssigned)
	for {
		if err := workflow.SignalExternalWorkflow(ctx, FleetWorkflowID(m.in.Pool), "", SignalReserve, r).Get(ctx, nil); err != nil {
			return planning.Assignment{}, fmt.Errorf("ask fleet %s for a connector: %w", m.in.Pool, err)
		}
		var a planning.Assignment
		got := false
		resendCtx, cancel := workflow.WithCancel(ctx)
		resend := workflow.NewTimer(resendCtx, reserveResend)
		for !got {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(assignedCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(ctx, &a)
				got = true
			})
			expired := false
			sel.AddFuture(resend, func(workflow.Future) { expired = true })
			m.addSLA(ctx, sel, slaTimer)
			m.addControls(ctx, sel)
			sel.Select(ctx)
			if m.cancelled {
				cancel()
				return planning.Assignment{}, errCancelled
			}
			if expired || m.requeue {
				break
			}
		}
		cancel()
		if got {
			return a, nil
		}
		// Waiting long: the next run waits on, its history fresh. An assignment or a
		// control that came meanwhile is taken first; none is lost.
		if !m.requeue && m.longWait(ctx) {
			if assignedCh.ReceiveAsync(&a) {
				return a, nil
			}
			m.drainControls(ctx)
			if m.cancelled {
				return planning.Assignment{}, errCancelled
			}
			return planning.Assignment{}, errContinue
		}
		// Queue again: the resend timer fired, or the priority changed.
		m.requeue = false
		r.Priority = m.in.Priority
	}
}

// breach records that the SLA deadline passed and asks the fleet to escalate.
func (m *migration) breach(ctx workflow.Context) {
	m.slaFired = true
	m.status.Breached = true
	m.metrics(ctx).WithTags(map[string]string{"tier": m.in.SLATier}).Counter(MetricSLABreaches).Inc(1)
	m.logger.Warn("SLA breached: maximum transfer time passed", "deadline", m.status.Deadline, "phase", m.status.Phase)
	err := workflow.ExecuteActivity(controlOptions(ctx, 30*time.Second), fleetActivities.RecordBreach, contract.RecordBreachInput{
		MigrationID: m.in.ID, Site: m.in.Site, ConnectorID: m.status.ConnectorID, Deadline: m.status.Deadline, MaxTransfer: m.in.MaxTransfer,
	}).Get(ctx, nil)
	if err != nil {
		m.logger.Error("record breach failed", "error", err)
	}
	err = workflow.SignalExternalWorkflow(ctx, FleetWorkflowID(m.in.Pool), "", SignalBreach, Breach{
		MigrationID: m.in.ID, ConnectorID: m.status.ConnectorID, Site: m.in.Site,
	}).Get(ctx, nil)
	if err != nil {
		m.logger.Error("escalate breach failed", "error", err)
	}
}

// finish records the outcome, releases the connector and ends the workflow; a failed
// migration ends as a failed workflow so that it stands out in the Web UI.
func (m *migration) finish(ctx workflow.Context, outcome string, cause error) (MigrationStatus, error) {
	m.setPhase(ctx, PhaseRecording)
	m.status.Outcome = outcome
	if cause != nil {
		m.status.Error = cause.Error()
	}
	m.status.EndedAt = workflow.Now(ctx)
	connector := m.status.ConnectorID
	if connector == "" {
		connector = "none"
	}
	seconds := m.status.EndedAt.Sub(m.status.StartedAt).Seconds()
	var rate float64
	if outcome != OutcomeFailed && seconds > 0 {
		rate = float64(m.status.Bytes) / seconds
	}
	if outcome == OutcomeFailed || outcome == OutcomeCancelled {
		rate = 0
	}
	rec := planning.MigrationRecord{
		ID: m.in.ID, VMID: m.in.VMID, Site: m.in.Site, ConnectorID: connector, SLATier: m.in.SLATier,
		Bytes: m.status.Bytes, StartedAt: m.status.StartedAt, EndedAt: m.status.EndedAt, AvgBytesSec: rate,
		Outcome: outcome, Detail: m.status.Error, DowntimeSeconds: m.status.DowntimeSeconds, Planned: m.in.Planned,
		Wave: m.in.Wave,
	}
	if outcome == OutcomeFailed || outcome == OutcomeCancelled {
		rec.Bytes = 0
	}
	m.recordEnd(ctx, outcome, rec.Bytes)
	if err := workflow.ExecuteActivity(historyOptions(ctx), fleetActivities.RecordOutcome, rec).Get(ctx, nil); err != nil {
		m.logger.Error("record outcome failed", "error", err)
	}
	// Released even without a connector: the fleet drops the queued reservation.
	err := workflow.SignalExternalWorkflow(ctx, FleetWorkflowID(m.in.Pool), "", SignalRelease, Release{
		MigrationID: m.in.ID, ConnectorID: m.status.ConnectorID,
	}).Get(ctx, nil)
	if err != nil {
		m.logger.Error("release connector failed", "error", err)
	}
	m.setPhase(ctx, PhaseDone)
	m.logger.Info("migration finished", "outcome", outcome)
	if cause != nil {
		return m.status, temporal.NewNonRetryableApplicationError(cause.Error(), "MigrationFailed", cause, m.status)
	}
	return m.status, nil
}
