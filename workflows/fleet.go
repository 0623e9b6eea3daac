package workflows

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// fleetActivities and connectorActivities reference the activities by method (a nil
// receiver is enough); the worker registers the real structs.
var (
	fleetActivities     *activities.Fleet
	connectorActivities *activities.Connector
)

// FleetWorkflow runs one connector pool for as long as the pool exists. Every tick it
// collects connector health, forecasts demand, predicts the capacity each site needs,
// scales the fleet and assigns waiting migrations to connectors. Operators reach it
// through updates (scale, submit a migration, forecast), signals (overrides) and
// queries (connectors, plan, overrides).
func FleetWorkflow(ctx workflow.Context, in FleetInput) error {
	f, err := newFleet(ctx, in)
	if err != nil {
		return err
	}
	return f.run(ctx)
}

type fleet struct {
	in     FleetInput
	st     FleetState
	ticks  int
	logger log.Logger
	// previous is the plan before st.Plan, in this run: what an event changed is
	// measured from it when a tick saw the event before its signal came.
	previous planning.Plan
	// replanned is when the last events re-plan was made.
	replanned time.Time
}

func newFleet(ctx workflow.Context, in FleetInput) (*fleet, error) {
	in = in.withDefaults()
	if err := validation.ID("pool", in.Pool); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), validation.ApplicationErrorType, err)
	}
	f := &fleet{in: in, logger: workflow.GetLogger(ctx)}
	if in.State != nil {
		f.st = *in.State
	}
	if f.st.Policy.Mode == "" {
		f.st.Policy = planning.DefaultPolicy()
		if in.Policy != nil {
			f.st.Policy = *in.Policy
		}
	}
	f.in.Policy = nil
	f.in.State = nil
	if err := f.setup(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// setup registers queries and updates before the workflow does anything else, so that
// they answer from the first moment.
func (f *fleet) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryConnectors, func() ([]planning.Connector, error) {
		return f.st.Connectors, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryPlan, func() (planning.Plan, error) {
		return f.st.Plan, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryOverrides, func() (OverridesView, error) {
		return OverridesView{Active: f.st.Overrides, Paused: planning.Paused(f.st.Overrides), Audit: f.st.Audit}, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateScale, f.scaleUpdate,
		workflow.UpdateHandlerOptions{Validator: f.validateScale}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateForecast, f.forecastUpdate,
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r ForecastRequest) error { return invalid(r.Validate()) }}); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryPolicy, func() (planning.Policy, error) { return f.st.Policy, nil }); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryEvents, func() (EventsView, error) {
		return EventsView{Changes: f.st.EventChanges}, nil
	}); err != nil {
		return err
	}
	if err := f.setupExternal(ctx); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSimulate, f.simulateUpdate,
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r SimulateRequest) error {
			if err := r.Validate(); err != nil {
				return invalid(err)
			}
			_, err := r.Proposed(f.st.Policy)
			return invalid(err)
		}}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdatePolicy, f.policyUpdate,
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, r PolicyRequest) error {
			_, err := f.policyChange(r)
			return err
		}})
}

// policyChange is the policy in force changed by the request, which must say who
// asks and why.
func (f *fleet) policyChange(r PolicyRequest) (planning.Policy, error) {
	if err := (Control{Who: r.Who, Why: r.Why}).Validate(); err != nil {
		return f.st.Policy, invalid(err)
	}
	p, err := r.Apply(f.st.Policy)
	if err != nil {
		return f.st.Policy, invalid(err)
	}
	return p, nil
}

// policyUpdate puts a new scaling policy in force from the next tick, and audits it.
func (f *fleet) policyUpdate(ctx workflow.Context, r PolicyRequest) (planning.Policy, error) {
	p, err := f.policyChange(r)
	if err != nil {
		return f.st.Policy, err
	}
	f.st.Policy = p
	f.audit(ctx, AuditEntry{Action: "policy", Who: r.Who, Why: r.Why, Detail: p.String()})
	return p, nil
}

// simulateUpdate simulates the pool's planned migrations that start within the
// request's hours, and the ad-hoc work forecast for them, under the policy in force
// and under the proposed one. It changes nothing.
func (f *fleet) simulateUpdate(ctx workflow.Context, r SimulateRequest) (SimulateAnswer, error) {
	answer := SimulateAnswer{Current: f.st.Policy}
	var err error
	if answer.Proposed, err = r.Proposed(answer.Current); err != nil {
		return SimulateAnswer{}, invalid(err)
	}
	if err := f.awaitSites(ctx); err != nil {
		return SimulateAnswer{}, err
	}
	now := workflow.Now(ctx)
	// A week's simulation forecasts a few dozen times; it heartbeats as it goes.
	err = workflow.ExecuteActivity(controlOptions(ctx, 5*time.Minute), fleetActivities.Simulate, activities.SimulateInput{
		Pool: f.in.Pool, Sites: f.st.Sites, Now: now, Hours: r.Hours, Seed: r.Seed, Size: f.in.Size,
		LeadTime: f.in.LeadTime, Tick: f.in.Tick, HorizonHours: f.in.HorizonHours, Current: answer.Current, Proposed: answer.Proposed, Overrides: f.st.Overrides,
	}).Get(ctx, &answer.Result)
	if err != nil {
		return SimulateAnswer{}, err
	}
	return answer, nil
}

// invalid wraps a validation error as a non-retryable application error whose details
// carry the field, so that callers can say which field is wrong.
func invalid(err error) error {
	var fe *validation.Error
	if err == nil || !errors.As(err, &fe) {
		return err
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), validation.ApplicationErrorType, nil, fe)
}

func (f *fleet) run(ctx workflow.Context) error {
	reserveCh := workflow.GetSignalChannel(ctx, SignalReserve)
	releaseCh := workflow.GetSignalChannel(ctx, SignalRelease)
	overrideCh := workflow.GetSignalChannel(ctx, SignalOverride)
	breachCh := workflow.GetSignalChannel(ctx, SignalBreach)
	failedCh := workflow.GetSignalChannel(ctx, SignalConnectorFailed)
	eventsCh := workflow.GetSignalChannel(ctx, SignalEvents)
	handleSignals := func(sel workflow.Selector) {
		sel.AddReceive(eventsCh, func(c workflow.ReceiveChannel, _ bool) { f.onEvents(ctx, c) })
		sel.AddReceive(failedCh, func(c workflow.ReceiveChannel, _ bool) {
			var cf ConnectorFailure
			c.Receive(ctx, &cf)
			f.onConnectorFailed(ctx, cf)
		})
		sel.AddReceive(reserveCh, func(c workflow.ReceiveChannel, _ bool) {
			var r planning.Reservation
			c.Receive(ctx, &r)
			f.onReserve(ctx, r)
		})
		sel.AddReceive(releaseCh, func(c workflow.ReceiveChannel, _ bool) {
			var r Release
			c.Receive(ctx, &r)
			f.onRelease(ctx, r)
		})
		sel.AddReceive(overrideCh, func(c workflow.ReceiveChannel, _ bool) {
			var o planning.Override
			c.Receive(ctx, &o)
			f.onOverride(ctx, o)
		})
		sel.AddReceive(breachCh, func(c workflow.ReceiveChannel, _ bool) {
			var b Breach
			c.Receive(ctx, &b)
			f.onBreach(ctx, b)
		})
	}

	f.tick(ctx)
	for {
		interval := f.in.Tick
		if f.busy() {
			interval = min(interval, f.in.FastTick)
		}
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		fired := false
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(timerCtx, interval), func(workflow.Future) { fired = true })
		handleSignals(sel)
		for !fired {
			sel.Select(ctx)
			f.assign(ctx)
			if !fired && f.busy() && interval > f.in.FastTick {
				// Work arrived: stop waiting for the slow tick.
				break
			}
		}
		cancelTimer()
		now := workflow.Now(ctx)
		if now.Sub(f.st.LastTick) >= f.in.Tick {
			f.tick(ctx)
		} else {
			f.refresh(ctx)
		}

		if f.ticks >= f.in.MaxTicksPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			// Finish every update in flight and every signal already delivered, then
			// carry the compact state into a new run.
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			drain := workflow.NewSelector(ctx)
			handleSignals(drain)
			for drain.HasPending() {
				drain.Select(ctx)
			}
			in := f.in
			st := f.st
			in.State = &st
			f.logger.Info("continuing as new", "ticks", f.ticks, "connectors", len(f.st.Connectors))
			return workflow.NewContinueAsNewError(ctx, FleetWorkflow, in)
		}
	}
}

// busy reports whether migrations wait or connectors warm up.
func (f *fleet) busy() bool {
	if len(f.st.Waiting) > 0 {
		return true
	}
	for _, c := range f.st.Connectors {
		if c.State == planning.StateWarming {
			return true
		}
	}
	return false
}

func controlOptions(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    min(timeout, 30*time.Second),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5,
		},
	})
}

// historyOptions are the options of the activity that writes a finished migration into
// the history. The write is idempotent (one row per ID), so it retries without a count
// limit until PostgreSQL is back from an outage or a restart, for up to historyWait: a
// few attempts would give up within seconds and lose the row for good.
func historyOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              TaskQueue,
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: historyWait,
		RetryPolicy: &temporal.RetryPolicy{
			// Every 10 s at most, so that the row is written soon after the database is back.
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second,
		},
	})
}

// historyWait bounds how long a finished migration waits for PostgreSQL to record it.
const historyWait = 24 * time.Hour

// tick runs the planning loop: Collect, Forecast, Predict, Scale, Assign. A failed step
// is logged and the loop goes on with what it has; the next tick tries again.
func (f *fleet) tick(ctx workflow.Context) {
	now := workflow.Now(ctx)
	f.ticks++
	f.st.LastTick = now
	f.expire(ctx, now)
	if err := f.collect(ctx); err != nil {
		f.logger.Error("collect failed", "error", err)
	}
	f.plan(ctx, now)
	f.recordConnectorMetrics(ctx)
}

// plan runs the planning half of a tick, which events also run at once: the Plan
// activity reads the world and decides with planning.Tick on the fleet as it was
// sent, and the fleet applies the decision. It reports whether a new plan was made.
func (f *fleet) plan(ctx workflow.Context, now time.Time) bool {
	sent := f.state()
	var d planning.Decision
	err := workflow.ExecuteActivity(controlOptions(ctx, 2*time.Minute), fleetActivities.Plan, activities.PlanInput{
		Pool: f.in.Pool, Sites: f.st.Sites, Now: now, Hours: f.in.HorizonHours, Size: f.in.Size, LeadTime: f.in.LeadTime,
		Tick: f.in.Tick, Arrived: f.st.Arrived, Fleet: &sent,
	}).Get(ctx, &d)
	if err != nil {
		f.logger.Error("plan failed", "error", err)
		return false
	}
	f.st.Arrived = nil
	if !d.Decided || !reflect.DeepEqual(sent, f.state()) {
		// An update changed the fleet while the plan was made (or a worker from before
		// made the plan alone): decide on the fleet as it is now, as the tick does.
		d.Scale, d.Place = planning.Decide(d.Plan, f.state(), workflow.Now(ctx))
	}
	f.apply(ctx, d)
	return true
}

// state is what a tick's decision needs of the fleet's state, copied so that the
// fleet can tell whether it changed while the plan was made.
func (f *fleet) state() planning.Fleet {
	return planning.Fleet{Connectors: slices.Clone(f.st.Connectors), Waiting: slices.Clone(f.st.Waiting), Policy: f.st.Policy,
		Overrides: slices.Clone(f.st.Overrides), Sites: slices.Clone(f.st.Sites)}
}

// apply makes a tick's decision the fleet's: the plan becomes its plan, the scaling
// decision is carried out, and the waiting work is placed.
func (f *fleet) apply(ctx workflow.Context, d planning.Decision) {
	f.previous, f.st.Plan = f.st.Plan, d.Published()
	f.scale(ctx, d.Scale)
	f.assign(ctx)
	f.recordPlanMetrics(ctx, d.Plan)
}

// refresh is the short loop while work waits: see which connectors became ready, then
// assign.
func (f *fleet) refresh(ctx workflow.Context) {
	if err := f.collect(ctx); err != nil {
		f.logger.Error("collect failed", "error", err)
	}
	f.assign(ctx)
	f.recordConnectorMetrics(ctx)
}

// collect updates sites and connector health, promotes ready connectors to warm and
// restarts connectors whose process is gone. External connectors are judged by their
// posted metrics alone: the provisioner knows nothing of them.
func (f *fleet) collect(ctx workflow.Context) error {
	f.checkExternal(ctx)
	ids := make([]string, 0, len(f.st.Connectors))
	for _, c := range f.st.Connectors {
		if !c.External {
			ids = append(ids, c.ID)
		}
	}
	var res activities.CollectResult
	if err := workflow.ExecuteActivity(controlOptions(ctx, time.Minute), fleetActivities.Collect, activities.CollectInput{
		Pool: f.in.Pool, ConnectorIDs: ids,
	}).Get(ctx, &res); err != nil {
		return err
	}
	f.st.Sites = res.Sites
	var restart, changed []planning.Connector
	for _, h := range res.Connectors {
		i := f.connectorIndex(h.ID)
		if i < 0 {
			continue // stopped while Collect ran
		}
		c := &f.st.Connectors[i]
		c.Usage = h.Usage
		switch {
		case !h.Running && (c.Live() || c.State == planning.StateDraining):
			f.logger.Warn("connector process is gone; restarting it", "connector", c.ID)
			if c.State != planning.StateDraining {
				c.State = planning.StateWarming
			}
			restart = append(restart, *c)
		case c.State == planning.StateWarming && h.Running && !h.ReadyAt.IsZero():
			c.State = planning.StateWarm
			if len(c.Migrations) > 0 {
				c.State = planning.StateActive
			}
			c.ReadyAt = h.ReadyAt
			changed = append(changed, *c)
		}
	}
	if len(restart) > 0 {
		f.provision(ctx, restart)
	}
	if len(changed) > 0 {
		f.sync(ctx, changed)
	}
	return nil
}

func (f *fleet) provision(ctx workflow.Context, conns []planning.Connector) {
	err := workflow.ExecuteActivity(controlOptions(ctx, 2*time.Minute), fleetActivities.Provision, activities.ProvisionInput{
		Pool: f.in.Pool, Connectors: conns,
	}).Get(ctx, nil)
	if err != nil {
		f.logger.Error("provision failed", "error", err)
	}
}

func (f *fleet) sync(ctx workflow.Context, conns []planning.Connector) {
	err := workflow.ExecuteActivity(controlOptions(ctx, time.Minute), fleetActivities.SyncConnectors, activities.SyncConnectorsInput{
		Pool: f.in.Pool, Connectors: conns,
	}).Get(ctx, nil)
	if err != nil {
		f.logger.Error("sync connectors failed", "error", err)
	}
}

// newConnector makes the next connector's identity deterministically.
func (f *fleet) newConnector(ctx workflow.Context, site string, size planning.Size, manual bool, reason string) planning.Connector {
	f.st.NextSeq++
	id := fmt.Sprintf("%s-%s-%d", f.in.Pool, site, f.st.NextSeq)
	return planning.Connector{
		ID: id, Site: site, State: planning.StateWarming, Size: size, TaskQueue: ConnectorTaskQueue(id),
		CreatedAt: workflow.Now(ctx), Manual: manual, Reason: reason,
	}
}

// scale carries out a scaling decision: it starts, drains and stops connectors.
func (f *fleet) scale(ctx workflow.Context, d planning.ScaleDecision) {
	size, _ := planning.SizeNamed(f.in.Size)
	var start []planning.Connector
	for _, s := range d.Start {
		c := f.newConnector(ctx, s.Site, size, false, s.Reason)
		f.logger.Info("scaling up", "connector", c.ID, "reason", s.Reason)
		f.countDecision(ctx, s.Site, "start", s.Rule)
		start = append(start, c)
	}
	if len(start) > 0 {
		f.st.Connectors = append(f.st.Connectors, start...)
		f.provision(ctx, start)
	}
	var drained []planning.Connector
	for _, x := range d.Drain {
		if i := f.connectorIndex(x.ID); i >= 0 {
			f.st.Connectors[i].State, f.st.Connectors[i].Reason = planning.StateDraining, x.Reason
			drained = append(drained, f.st.Connectors[i])
			f.logger.Info("scaling down: draining idle connector", "connector", x.ID, "reason", x.Reason)
			f.countDecision(ctx, f.st.Connectors[i].Site, "drain", x.Rule)
		}
	}
	if len(drained) > 0 {
		f.sync(ctx, drained)
	}
	f.stop(ctx, d.Stop)
}

// stop decommissions draining connectors with no work and drops them from the state;
// external ones leave the pool without being stopped.
func (f *fleet) stop(ctx workflow.Context, ids []string) {
	ids = f.removeExternal(ctx, ids)
	var stop []planning.Connector
	for _, id := range ids {
		if i := f.connectorIndex(id); i >= 0 {
			stop = append(stop, f.st.Connectors[i])
		}
	}
	if len(stop) == 0 {
		return
	}
	err := workflow.ExecuteActivity(controlOptions(ctx, time.Minute), fleetActivities.Decommission, activities.DecommissionInput{
		Pool: f.in.Pool, Connectors: stop,
	}).Get(ctx, nil)
	if err != nil {
		f.logger.Error("decommission failed", "error", err)
		return
	}
	f.st.Connectors = slices.DeleteFunc(f.st.Connectors, func(c planning.Connector) bool {
		return slices.Contains(ids, c.ID) && len(c.Migrations) == 0
	})
}

func (f *fleet) connectorIndex(id string) int {
	return slices.IndexFunc(f.st.Connectors, func(c planning.Connector) bool { return c.ID == id })
}

// assign places the waiting migrations on the fleet as it is now (planning.Place,
// as the tick does): it tells each one its connector, and starts a connector at once
// where work waits at a site with none, within the pool's maximum. It runs on every
// reservation, between ticks too, and after a tick's scaling has been carried out.
func (f *fleet) assign(ctx workflow.Context) {
	if len(f.st.Waiting) == 0 {
		return
	}
	p := planning.Place(f.state(), f.st.Plan.Bottlenecks, nil, workflow.Now(ctx))
	f.st.Connectors = p.Connectors
	// The signals go out together and are waited for together: one after the other,
	// each cost a workflow task, and a burst of 200 submissions queued behind them.
	signals := make([]workflow.Future, len(p.Assignments))
	for i, a := range p.Assignments {
		f.st.Waiting = slices.DeleteFunc(f.st.Waiting, func(r planning.Reservation) bool { return r.MigrationID == a.MigrationID })
		signals[i] = workflow.SignalExternalWorkflow(ctx, a.WorkflowID, "", SignalAssigned, a)
	}
	for i, a := range p.Assignments {
		f.told(ctx, a, signals[i].Get(ctx, nil))
	}
	size, _ := planning.SizeNamed(f.in.Size)
	var start []planning.Connector
	for _, s := range p.Start {
		f.countDecision(ctx, s.Site, "start", s.Rule)
		c := f.newConnector(ctx, s.Site, size, false, s.Reason)
		f.logger.Info("reactive scale-up: migration waits at a site with no connector", "connector", c.ID, "reason", s.Reason)
		start = append(start, c)
	}
	if len(start) > 0 {
		f.st.Connectors = append(f.st.Connectors, start...)
		f.provision(ctx, start)
	}
}

// told logs a migration told its connector, or frees the slot of one that could not
// be told: it is gone (cancelled or terminated).
func (f *fleet) told(ctx workflow.Context, a planning.Assignment, err error) {
	if err != nil {
		f.logger.Warn("could not tell migration its connector; freeing the slot", "migration", a.MigrationID, "error", err)
		f.onRelease(ctx, Release{MigrationID: a.MigrationID, ConnectorID: a.ConnectorID})
		return
	}
	f.logger.Info("migration assigned", "migration", a.MigrationID, "connector", a.ConnectorID, "why", a.Reason)
}

func (f *fleet) onReserve(ctx workflow.Context, r planning.Reservation) {
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

// resize changes a connector's size in the state and the store, and tells the running
// connector its new bandwidth limit.
func (f *fleet) resize(ctx workflow.Context, i int, size planning.Size) error {
	c := f.st.Connectors[i]
	c.Size = size
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              c.TaskQueue,
		ScheduleToCloseTimeout: 30 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	if err := workflow.ExecuteActivity(actx, connectorActivities.ApplySize, activities.ApplySizeInput{BandwidthBytesSec: size.BandwidthBytesSec}).Get(ctx, nil); err != nil {
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
	err := workflow.ExecuteActivity(controlOptions(ctx, 30*time.Second), fleetActivities.RecordOverride, activities.RecordOverrideInput{
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

// validateScale rejects a scale request before it enters history.
func (f *fleet) validateScale(ctx workflow.Context, r ScaleRequest) error {
	if err := r.Validate(); err != nil {
		return invalid(err)
	}
	switch r.Action {
	case ScaleProvision:
		// Before the first Collect the sites are unknown; the handler checks then.
		if len(f.st.Sites) > 0 {
			return f.checkSite("site", r.Site)
		}
	case ScaleResize, ScaleDrain:
		i := f.connectorIndex(r.ConnectorID)
		if i < 0 {
			return invalid(validation.Field("connector_id", "unknown connector %q", r.ConnectorID))
		}
		if !f.st.Connectors[i].Live() {
			return invalid(validation.Field("connector_id", "connector %q is %s", r.ConnectorID, f.st.Connectors[i].State))
		}
		if r.Action == ScaleResize && f.st.Connectors[i].External {
			return failure(validation.ConflictErrorType, "connector_id", "connector %q is external: its size is the customer's; deregister it and register it again to change it", r.ConnectorID)
		}
	}
	return nil
}

// checkSite refuses a site the inventory does not know.
func (f *fleet) checkSite(field, site string) error {
	if !slices.Contains(f.st.Sites, site) {
		return invalid(validation.Field(field, "unknown site %q; known sites: %v", site, f.st.Sites))
	}
	return nil
}

// awaitSites blocks until the first Collect has read the sites, so that a request that
// arrives at start-up is checked against them rather than refused.
func (f *fleet) awaitSites(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return len(f.st.Sites) > 0 })
}

func (f *fleet) scaleUpdate(ctx workflow.Context, r ScaleRequest) (ScaleResult, error) {
	res := ScaleResult{Action: r.Action}
	switch r.Action {
	case ScaleProvision:
		if err := f.awaitSites(ctx); err != nil {
			return res, err
		}
		if err := f.checkSite("site", r.Site); err != nil {
			return res, err
		}
		name := r.Size
		if name == "" {
			name = f.in.Size
		}
		size, _ := planning.SizeNamed(name)
		var start []planning.Connector
		for range r.Count {
			start = append(start, f.newConnector(ctx, r.Site, size, true, fmt.Sprintf("provisioned by %s: %s", r.Who, r.Why)))
		}
		f.st.Connectors = append(f.st.Connectors, start...)
		f.provision(ctx, start)
		res.Connectors = start
	case ScaleResize:
		i := f.connectorIndex(r.ConnectorID)
		size, _ := planning.SizeNamed(r.Size)
		if err := f.resize(ctx, i, size); err != nil {
			return res, fmt.Errorf("resize %s: %w", r.ConnectorID, err)
		}
		res.Connectors = []planning.Connector{f.st.Connectors[f.connectorIndex(r.ConnectorID)]}
	case ScaleDrain:
		i := f.connectorIndex(r.ConnectorID)
		f.st.Connectors[i].State, f.st.Connectors[i].Reason = planning.StateDraining, fmt.Sprintf("drained by %s: %s", r.Who, r.Why)
		f.sync(ctx, []planning.Connector{f.st.Connectors[i]})
		res.Connectors = []planning.Connector{f.st.Connectors[i]}
	}
	f.audit(ctx, AuditEntry{Action: "scale " + r.Action, Who: r.Who, Why: r.Why,
		Detail: fmt.Sprintf("site %s, connector %s, count %d, size %s", r.Site, r.ConnectorID, r.Count, r.Size)})
	return res, nil
}

// forecastUpdate predicts what a batch of migrations needs; with Plan set it also
// registers the batch as known work, so that provisioning starts ahead of it.
func (f *fleet) forecastUpdate(ctx workflow.Context, r ForecastRequest) (ForecastAnswer, error) {
	if err := f.checkSpecs(ctx, r); err != nil {
		return ForecastAnswer{}, err
	}
	in := activities.ForecastBatchInput{
		Pool: f.in.Pool, Now: workflow.Now(ctx), ID: r.ID, VMIDs: r.VMIDs, VMs: r.VMs, SLATier: r.SLATier,
		EarliestStart: r.EarliestStart, Deadline: r.Deadline, Sites: f.st.Sites, Size: f.in.Size,
		HorizonHours: f.in.HorizonHours, LeadTime: f.in.LeadTime, Tick: f.in.Tick, Fleet: f.view(), Plan: r.Plan,
	}
	if r.WhatIf != nil {
		w, err := f.whatIfChange(r)
		if err != nil {
			return ForecastAnswer{}, err
		}
		in.WhatIf, in.AddWave = &w, r.WhatIf.AddWave
	}
	var res activities.ForecastBatchResult
	if err := workflow.ExecuteActivity(controlOptions(ctx, 2*time.Minute), fleetActivities.ForecastBatch, in).Get(ctx, &res); err != nil {
		return ForecastAnswer{}, err
	}
	answer := ForecastAnswer{ID: r.ID, Sites: res.Estimate.Sites, ExpectedSeconds: res.Estimate.ExpectedSeconds,
		Bottlenecks: res.Estimate.Bottlenecks, Reasoning: res.Estimate.Reasons, Today: res.Today, WhatIf: res.WhatIf}
	if in.WhatIf != nil {
		answer.Reasoning = append(answer.Reasoning, in.WhatIf.Describe()...)
	}
	if r.Plan {
		answer.Planned = true
		f.auditPlanned(ctx, r, res.Planned)
	}
	return answer, nil
}

// checkSpecs waits for the pool's sites and checks that each VM given by site and size
// is at one of them.
func (f *fleet) checkSpecs(ctx workflow.Context, r ForecastRequest) error {
	if err := f.awaitSites(ctx); err != nil {
		return err
	}
	for i, spec := range r.VMs {
		if err := f.checkSite(fmt.Sprintf("vms[%d].site", i), spec.Site); err != nil {
			return err
		}
	}
	return nil
}

// auditPlanned records that a forecast request planned n migrations.
func (f *fleet) auditPlanned(ctx workflow.Context, r ForecastRequest, n int) {
	f.audit(ctx, AuditEntry{Action: "plan", Who: "api", Why: "forecast " + r.ID,
		Detail: fmt.Sprintf("%d migration(s) planned from %s to %s", n, r.EarliestStart.Format(time.RFC3339), r.Deadline.Format(time.RFC3339))})
}

// view is what an estimate needs to know of the fleet: its policy and overrides, and
// from its last plan the lead time learned (the setting before there is one) and each
// site's recent forecast error.
func (f *fleet) view() planning.FleetView {
	lead := f.in.LeadTime
	if f.st.Plan.LeadTimeSeconds > 0 {
		lead = time.Duration(f.st.Plan.LeadTimeSeconds * float64(time.Second))
	}
	return planning.FleetView{Policy: f.st.Policy, Paused: planning.Paused(f.st.Overrides), Pins: planning.Pins(f.st.Overrides), LeadTime: lead,
		LeadTimeSetting: f.in.LeadTime, Accuracy: f.st.Plan.ForecastAccuracy}
}

// whatIfChange is the change a what-if request asks for, its sites checked; the wave
// it may add is the batch, which the caller knows.
func (f *fleet) whatIfChange(r ForecastRequest) (planning.WhatIf, error) {
	w := planning.WhatIf{LoseLink: r.WhatIf.LoseLink, TightenSLA: r.WhatIf.TightenSLA}
	for i, site := range w.LoseLink {
		if err := f.checkSite(fmt.Sprintf("what_if.lose_link[%d]", i), site); err != nil {
			return w, err
		}
	}
	for i, b := range r.WhatIf.Blackout {
		if err := f.checkSite(fmt.Sprintf("what_if.blackout[%d].site", i), b.Site); err != nil {
			return w, err
		}
		b.Kind, b.Severity = "maintenance", "warning"
		w.Blackout = append(w.Blackout, b)
	}
	return w, nil
}

// mib prints a size in MiB, for summaries.
func mib(bytes int64) string { return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20)) }
