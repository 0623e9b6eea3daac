package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
)

// onEvents takes every events signal that has arrived, re-plans at once (the planning
// half of a tick, without waiting for the next), and records what the events changed
// in the plan at their sites: in the fleet's state for QueryEvents, in the log, and in
// PostgreSQL.
func (f *fleet) onEvents(ctx workflow.Context, c workflow.ReceiveChannel) {
	var sig EventsSignal
	c.Receive(ctx, &sig)
	// Events posted together re-plan once.
	for {
		var more EventsSignal
		if !c.ReceiveAsync(&more) {
			break
		}
		sig.Events = append(sig.Events, more.Events...)
	}
	if len(sig.Events) == 0 || len(f.st.Sites) == 0 {
		return // nothing to plan for yet; the first tick sees the events
	}
	earlier, before := f.previous, f.st.Plan
	if before.GeneratedAt.Equal(f.replanned) {
		earlier = planning.Plan{} // the plan before is an events re-plan, not a tick that raced this signal
	}
	now := workflow.Now(ctx)
	if !f.plan(ctx, now) {
		return // the next tick tries again, and sees the events then
	}
	f.replanned = f.st.Plan.GeneratedAt
	changes := planning.EventPlanChanges(earlier, before, f.st.Plan, sig.Events, now)
	for _, ch := range changes {
		f.logger.Info("event re-planned", "event", ch.EventKey, "site", ch.Site, "before", ch.Before, "after", ch.After, "detail", ch.Detail)
	}
	f.st.EventChanges = append(f.st.EventChanges, changes...)
	if n := len(f.st.EventChanges); n > MaxEventChanges {
		f.st.EventChanges = append([]planning.EventPlanChange(nil), f.st.EventChanges[n-MaxEventChanges:]...)
	}
	err := workflow.ExecuteActivity(controlOptions(ctx, time.Minute), eventActivities.RecordPlanChanges,
		contract.RecordPlanChangesInput{Pool: f.in.Pool, Changes: changes}).Get(ctx, nil)
	if err != nil {
		f.logger.Error("record plan changes failed", "error", err)
	}
}
