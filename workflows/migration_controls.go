package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
)

// addControls makes sel take the operator's signals.
func (m *migration) addControls(ctx workflow.Context, sel workflow.Selector) {
	sel.AddReceive(m.cancelCh, func(c workflow.ReceiveChannel, _ bool) { m.onControl(ctx, c, SignalCancel) })
	sel.AddReceive(m.pauseCh, func(c workflow.ReceiveChannel, _ bool) { m.onControl(ctx, c, SignalPause) })
	sel.AddReceive(m.resumeCh, func(c workflow.ReceiveChannel, _ bool) { m.onControl(ctx, c, SignalResume) })
	sel.AddReceive(m.priorityCh, func(c workflow.ReceiveChannel, _ bool) { m.onControl(ctx, c, SignalPriority) })
	sel.AddReceive(m.approveCh, func(c workflow.ReceiveChannel, _ bool) { m.onControl(ctx, c, SignalApprove) })
}

// drainControls takes the signals that arrived while the workflow was busy elsewhere.
func (m *migration) drainControls(ctx workflow.Context) {
	for {
		sel := workflow.NewSelector(ctx)
		m.addControls(ctx, sel)
		if !sel.HasPending() {
			return
		}
		sel.Select(ctx)
	}
}

// onControl applies one operator signal. Signals cannot be refused, so an invalid one
// (the API validates them first) is logged and ignored.
func (m *migration) onControl(ctx workflow.Context, c workflow.ReceiveChannel, action string) {
	var p PriorityChange
	var err error
	if action == SignalPriority {
		c.Receive(ctx, &p)
		err = p.Validate()
	} else {
		c.Receive(ctx, &p.Control)
		err = p.Control.Validate()
	}
	if err != nil {
		m.logger.Warn("operator signal ignored", "action", action, "error", err)
		return
	}
	switch action {
	case SignalCancel:
		m.cancelled = true
	case SignalPause:
		m.paused = true
	case SignalResume:
		m.paused = false
	case SignalApprove:
		// An approval is for the next cutover try: one sent while a try runs (a
		// double click) would otherwise be banked and let the try after a rollback
		// go with no fresh decision. Approvals before a try are one approval.
		if m.status.Phase == PhaseCutover &&
			workflow.GetVersion(ctx, approvalPerTryVersion, workflow.DefaultVersion, 1) != workflow.DefaultVersion {
			m.status.Controls = append(m.status.Controls, ControlEvent{At: workflow.Now(ctx), Action: action, Who: p.Who, Why: p.Why,
				Ignored: "a cutover try was running; approve the next one once it awaits approval"})
			m.logger.Warn("operator approve ignored: a cutover try was running", "who", p.Who)
			return
		}
		m.approved = true
	case SignalPriority:
		m.in.Priority, m.status.Priority, m.requeue = p.Priority, p.Priority, true
	}
	m.status.Controls = append(m.status.Controls, ControlEvent{At: workflow.Now(ctx), Action: action, Who: p.Who, Why: p.Why})
	m.logger.Info("operator "+action, "who", p.Who, "why", p.Why)
}

// discard ends a cancelled migration: its copy, partial or complete, is removed and the
// connector freed.
func (m *migration) discard(ctx workflow.Context, connCtx workflow.Context) (MigrationStatus, error) {
	dctx := workflow.WithActivityOptions(connCtx, workflow.ActivityOptions{
		TaskQueue:              workflow.GetActivityOptions(connCtx).TaskQueue,
		ScheduleToCloseTimeout: time.Minute,
		StartToCloseTimeout:    30 * time.Second,
	})
	err := workflow.ExecuteActivity(dctx, connectorActivities.Discard, contract.DiscardInput{
		MigrationID: m.in.ID, Destination: m.in.Destination, Complete: true}).Get(ctx, nil)
	if err != nil {
		m.logger.Error("partial copy not discarded; remove it by hand", "connector", m.status.ConnectorID, "destination", m.in.Destination, "error", err)
	}
	return m.finish(ctx, OutcomeCancelled, nil)
}
