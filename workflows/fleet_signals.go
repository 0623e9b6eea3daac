package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

func (f *fleet) onReserve(ctx workflow.Context, r planning.Reservation) {
	if pool, ok := f.forwardedTo(r.MigrationID); ok {
		f.forward(ctx, r, pool) // sent again while it waits: it waits there
		return
	}
	// Planned work has arrived: it leaves the known demand at the next plan, and its
	// history row stays out of the ad-hoc forecast (the store knows it was planned).
	if !slices.Contains(f.st.Arrived, r.MigrationID) {
		f.st.Arrived = append(f.st.Arrived, r.MigrationID)
	}
	// A reservation sent again (the migration retried) is answered, not queued twice.
	for _, c := range f.st.Connectors {
		if slices.Contains(r.Avoid, c.ID) {
			continue
		}
		for _, t := range c.Migrations {
			if t.MigrationID == r.MigrationID {
				a := planning.Assignment{MigrationID: r.MigrationID, WorkflowID: r.WorkflowID, ConnectorID: c.ID,
					TaskQueue: c.TaskQueue, BandwidthBytesSec: t.BandwidthBytesSec}
				_ = workflow.SignalExternalWorkflow(ctx, r.WorkflowID, "", SignalAssigned, a).Get(ctx, nil)
				return
			}
		}
	}
	// A waiting reservation sent again takes the new one's place: its priority may
	// have changed.
	if i := slices.IndexFunc(f.st.Waiting, func(w planning.Reservation) bool { return w.MigrationID == r.MigrationID }); i >= 0 {
		r.Planned = r.Planned || f.st.Waiting[i].Planned
		f.st.Waiting[i] = r
		return
	}
	f.st.Waiting = append(f.st.Waiting, r)
}

// onRelease frees what a migration held: its place in the queue and its connector
// slot. A release without a connector (a migration cancelled while it waited) frees a
// slot it may have been given meanwhile, wherever it is.
func (f *fleet) onRelease(ctx workflow.Context, r Release) {
	if pool, ok := f.forwardedTo(r.MigrationID); ok {
		if err := workflow.SignalExternalWorkflow(ctx, FleetWorkflowID(pool), "", SignalRelease, r).Get(ctx, nil); err != nil {
			f.logger.Warn("could not pass a release on to the pool the migration went to", "migration", r.MigrationID, "pool", pool, "error", err)
		}
		f.st.Forwarded = slices.DeleteFunc(f.st.Forwarded, func(x Forward) bool { return x.MigrationID == r.MigrationID })
	}
	f.st.Waiting = slices.DeleteFunc(f.st.Waiting, func(w planning.Reservation) bool { return w.MigrationID == r.MigrationID })
	for i := range f.st.Connectors {
		c := &f.st.Connectors[i]
		if r.ConnectorID != "" && c.ID != r.ConnectorID {
			continue
		}
		before := len(c.Migrations)
		c.Migrations = slices.DeleteFunc(slices.Clone(c.Migrations), func(t planning.Task) bool { return t.MigrationID == r.MigrationID })
		if len(c.Migrations) == 0 && before > 0 {
			c.IdleSince = workflow.Now(ctx)
		}
		if len(c.Migrations) == 0 && c.State == planning.StateActive {
			c.State = planning.StateWarm
		}
	}
}

// onConnectorFailed takes a connector that died under a migration out of the fleet:
// its process is stopped if any is left, its migrations fail over elsewhere (each one
// finds out by its own heartbeat timeout), and the next tick provisions what the plan
// then lacks.
func (f *fleet) onConnectorFailed(ctx workflow.Context, cf ConnectorFailure) {
	i := f.connectorIndex(cf.ConnectorID)
	if i < 0 {
		return // already taken out, by an earlier report
	}
	c := &f.st.Connectors[i]
	f.logger.Warn("connector failed", "connector", c.ID, "site", c.Site, "migration", cf.MigrationID, "reason", cf.Reason)
	f.audit(ctx, AuditEntry{Action: "connector failed", Who: "pmo", Why: "migration " + cf.MigrationID + " lost it",
		Detail: fmt.Sprintf("connector %s at %s: %s", c.ID, c.Site, cf.Reason)})
	if c.External {
		// Not PMO's to stop: it takes no work until it posts metrics again.
		c.State, c.Migrations, c.LastSeen = planning.StateUnhealthy, nil, time.Time{}
		c.Reason = fmt.Sprintf("external connector: migration %s lost it (%s); it takes no work until it posts metrics again", cf.MigrationID, cf.Reason)
		f.sync(ctx, []planning.Connector{*c})
		return
	}
	c.State, c.Migrations = planning.StateFailed, nil
	f.stop(ctx, []string{c.ID})
}

// onBreach escalates: the connector carrying the late migration grows one size, so the
// transfer gets more bandwidth now.
func (f *fleet) onBreach(ctx workflow.Context, b Breach) {
	f.audit(ctx, AuditEntry{Action: "sla-breach", Who: "pmo", Why: "migration " + b.MigrationID + " passed its deadline",
		Detail: "site " + b.Site + ", connector " + b.ConnectorID})
	i := f.connectorIndex(b.ConnectorID)
	if i < 0 || f.st.Connectors[i].External {
		return // an external connector's size is the customer's
	}
	cur := slices.IndexFunc(planning.Sizes, func(s planning.Size) bool { return s.Name == f.st.Connectors[i].Size.Name })
	if cur < 0 || cur+1 >= len(planning.Sizes) {
		return
	}
	next := planning.Sizes[cur+1]
	if err := f.resize(ctx, i, next); err != nil {
		f.logger.Error("escalation resize failed", "connector", b.ConnectorID, "error", err)
		return
	}
	f.audit(ctx, AuditEntry{Action: "escalated", Who: "pmo", Why: "SLA breach of " + b.MigrationID,
		Detail: fmt.Sprintf("connector %s resized to %s", b.ConnectorID, next.Name)})
}

// resize changes a connector's size in the state and the store: its driver holds the
// running connector to the size's CPU and memory, then the connector takes its new
// bandwidth limit. Neither restarts it or its transfers.
func (f *fleet) resize(ctx workflow.Context, i int, size planning.Size) error {
	c := f.st.Connectors[i]
	if workflow.GetVersion(ctx, connectorLimitsVersion, workflow.DefaultVersion, 1) == 1 {
		err := workflow.ExecuteActivity(controlOptions(ctx, 30*time.Second), fleetActivities.ResizeConnector,
			contract.ResizeConnectorInput{ID: c.ID, Size: size}).Get(ctx, nil)
		if err != nil {
			return err
		}
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              c.TaskQueue,
		ScheduleToCloseTimeout: 30 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	if err := workflow.ExecuteActivity(actx, connectorActivities.ApplySize, contract.ApplySizeInput{BandwidthBytesSec: size.BandwidthBytesSec}).Get(ctx, nil); err != nil {
		return err
	}
	f.st.Connectors[i].Size = size
	f.sync(ctx, []planning.Connector{f.st.Connectors[i]})
	return nil
}

// onOverride applies an operator's override, or records why it could not.
func (f *fleet) onOverride(ctx workflow.Context, o planning.Override) {
	now := workflow.Now(ctx)
	if o.At.IsZero() {
		o.At = now
	}
	err := ValidateOverride(o)
	if err == nil && !o.Expires.After(now) {
		err = validation.Field("expires", "is already past")
	}
	if err == nil && o.Kind == planning.OverridePin && len(f.st.Sites) > 0 && !slices.Contains(f.st.Sites, o.Site) {
		err = validation.Field("site", "unknown site %q", o.Site)
	}
	if err == nil && o.Kind == planning.OverrideDrain && f.connectorIndex(o.ConnectorID) < 0 {
		err = validation.Field("connector_id", "unknown connector %q", o.ConnectorID)
	}
	if err != nil {
		f.recordOverride(ctx, o, "rejected", err.Error())
		return
	}
	switch o.Kind {
	case planning.OverridePin:
		f.st.Overrides = slices.DeleteFunc(f.st.Overrides, func(x planning.Override) bool {
			return x.Kind == planning.OverridePin && x.Site == o.Site
		})
		f.st.Overrides = append(f.st.Overrides, o)
	case planning.OverridePause:
		f.st.Overrides = append(f.st.Overrides, o)
	case planning.OverrideResume:
		f.st.Overrides = slices.DeleteFunc(f.st.Overrides, func(x planning.Override) bool { return x.Kind == planning.OverridePause })
	case planning.OverrideDrain:
		i := f.connectorIndex(o.ConnectorID)
		f.st.Connectors[i].State = planning.StateDraining
		f.st.Connectors[i].Reason = fmt.Sprintf("drained by override %s of %s: %s", o.ID, o.Who, o.Why)
		f.sync(ctx, []planning.Connector{f.st.Connectors[i]})
	}
	f.recordOverride(ctx, o, "applied", "")
}

// expire removes overrides whose time is up.
func (f *fleet) expire(ctx workflow.Context, now time.Time) {
	var kept []planning.Override
	for _, o := range f.st.Overrides {
		if o.Expires.After(now) {
			kept = append(kept, o)
			continue
		}
		f.recordOverride(ctx, o, "expired", "")
	}
	f.st.Overrides = kept
}

func (f *fleet) recordOverride(ctx workflow.Context, o planning.Override, action, detail string) {
	now := workflow.Now(ctx)
	f.audit(ctx, AuditEntry{At: now, Action: o.Kind + " " + action, Who: o.Who, Why: o.Why, Detail: detail})
	err := workflow.ExecuteActivity(controlOptions(ctx, 30*time.Second), fleetActivities.RecordOverride, contract.RecordOverrideInput{
		Pool: f.in.Pool, Override: o, Action: action, Detail: detail, At: now,
	}).Get(ctx, nil)
	if err != nil {
		f.logger.Error("record override failed", "override", o.ID, "error", err)
	}
}

func (f *fleet) audit(ctx workflow.Context, e AuditEntry) {
	if e.At.IsZero() {
		e.At = workflow.Now(ctx)
	}
	f.st.Audit = append(f.st.Audit, e)
	if len(f.st.Audit) > maxAudit {
		f.st.Audit = slices.Clone(f.st.Audit[len(f.st.Audit)-maxAudit:])
	}
}

// Adoption hands a fleet connectors of a site that moved to its pool.
type Adoption struct {
	From       string               `json:"from"` // the pool the site left
	Site       string               `json:"site"`
	Connectors []planning.Connector `json:"connectors"`
}

// handOver gives the connectors at a site that moved to another pool to that pool's
// fleet, each once it runs no migration (a running one's release comes here), so that
// the site takes its capacity with it: PMO's own, live, and external ones in any state
// (their posts find them wherever they are). The migrations waiting for a connector
// there go along (forward). Until the other fleet takes them (it may not run yet) they
// stay here, and the next Collect tries again.
func (f *fleet) handOver(ctx workflow.Context, m contract.SitePool) {
	for _, r := range slices.Clone(f.st.Waiting) {
		if r.Site == m.Site {
			f.forward(ctx, r, m.Pool)
		}
	}
	a := Adoption{From: f.in.Pool, Site: m.Site}
	for _, c := range f.st.Connectors {
		if c.Site == m.Site && (c.External || c.Live()) && len(c.Migrations) == 0 {
			a.Connectors = append(a.Connectors, c)
		}
	}
	if len(a.Connectors) == 0 {
		return
	}
	if err := workflow.SignalExternalWorkflow(ctx, FleetWorkflowID(m.Pool), "", SignalAdopt, a).Get(ctx, nil); err != nil {
		f.logger.Warn("site moved to another pool; its fleet did not take the connectors yet", "site", m.Site, "pool", m.Pool, "error", err)
		return
	}
	ids := make([]string, len(a.Connectors))
	for i, c := range a.Connectors {
		ids[i] = c.ID
	}
	f.st.Connectors = slices.DeleteFunc(f.st.Connectors, func(c planning.Connector) bool { return slices.Contains(ids, c.ID) })
	f.audit(ctx, AuditEntry{Action: "hand over connectors", Who: "pmo", Why: fmt.Sprintf("site %s moved to pool %s", m.Site, m.Pool),
		Detail: fmt.Sprintf("%d connector(s) to fleet %s: %v", len(ids), FleetWorkflowID(m.Pool), ids)})
	f.logger.Info("site moved to another pool; its connectors went with it", "site", m.Site, "pool", m.Pool, "connectors", ids)
}

// onAdopt takes the connectors another pool's fleet handed over with a site that moved
// here, and records them as this pool's.
func (f *fleet) onAdopt(ctx workflow.Context, a Adoption) {
	var took []planning.Connector
	for _, c := range a.Connectors {
		if f.connectorIndex(c.ID) >= 0 {
			continue // handed over before; the first handover stands
		}
		c.Reason = fmt.Sprintf("came from pool %s with site %s; %s", a.From, a.Site, c.Reason)
		f.st.Connectors = append(f.st.Connectors, c)
		took = append(took, c)
	}
	if len(took) == 0 {
		return
	}
	f.sync(ctx, took)
	f.audit(ctx, AuditEntry{Action: "adopt connectors", Who: "pmo", Why: fmt.Sprintf("site %s moved here from pool %s", a.Site, a.From),
		Detail: fmt.Sprintf("%d connector(s)", len(took))})
	f.logger.Info("adopted connectors of a site that moved here", "site", a.Site, "from", a.From, "connectors", len(took))
}

// forward sends a waiting migration's reservation to the fleet of the pool its site
// moved to, and remembers where it went: the migration still reserves and releases
// here, its own pool's fleet, and both are passed on.
func (f *fleet) forward(ctx workflow.Context, r planning.Reservation, pool string) {
	if err := workflow.SignalExternalWorkflow(ctx, FleetWorkflowID(pool), "", SignalReserve, r).Get(ctx, nil); err != nil {
		f.logger.Warn("site moved to another pool; its fleet did not take a waiting migration yet", "migration", r.MigrationID, "pool", pool, "error", err)
		return
	}
	f.st.Waiting = slices.DeleteFunc(f.st.Waiting, func(w planning.Reservation) bool { return w.MigrationID == r.MigrationID })
	if !slices.ContainsFunc(f.st.Forwarded, func(x Forward) bool { return x.MigrationID == r.MigrationID }) {
		f.st.Forwarded = append(f.st.Forwarded, Forward{MigrationID: r.MigrationID, Pool: pool})
	}
	f.logger.Info("waiting migration forwarded with its site", "migration", r.MigrationID, "pool", pool)
}

// forwardedTo is the pool a migration's reservation was forwarded to, if any.
func (f *fleet) forwardedTo(migrationID string) (string, bool) {
	i := slices.IndexFunc(f.st.Forwarded, func(x Forward) bool { return x.MigrationID == migrationID })
	if i < 0 {
		return "", false
	}
	return f.st.Forwarded[i].Pool, true
}
