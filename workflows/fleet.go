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

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// FleetWorkflow runs one connector pool for as long as the pool exists. Every tick it
// collects connector health, has the Plan activity read the world and decide with
// planning.Tick, and carries the decision out: it starts, drains and stops connectors
// and assigns waiting migrations to them. Operators reach it through updates (scale,
// forecast, policy, simulate, external connectors), signals (overrides) and queries
// (connectors, plan, overrides, policy, events).
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
	adoptCh := workflow.GetSignalChannel(ctx, SignalAdopt)
	handleSignals := func(sel workflow.Selector) {
		sel.AddReceive(adoptCh, func(c workflow.ReceiveChannel, _ bool) {
			var a Adoption
			c.Receive(ctx, &a)
			f.onAdopt(ctx, a)
		})
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
	sent := f.state().Clone()
	var d planning.Decision
	err := workflow.ExecuteActivity(controlOptions(ctx, 2*time.Minute), fleetActivities.Plan, contract.PlanInput{
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
		// Only the scaling is kept: apply places on the fleet as it is then (assign).
		d.Scale, _ = planning.Decide(d.Plan, f.state(), f.size(), workflow.Now(ctx))
	}
	f.apply(ctx, d)
	return true
}

// size is the size the fleet's new connectors get (a tick with an unknown name fails
// in the Plan activity, which refuses it).
func (f *fleet) size() planning.Size {
	size, _ := planning.SizeNamed(f.in.Size)
	return size
}

// state is what a tick's decision needs of the fleet's state: the state itself, not a
// copy (planning.Decide and Place change nothing they are given).
func (f *fleet) state() planning.Fleet {
	return planning.Fleet{Connectors: f.st.Connectors, Waiting: f.st.Waiting, Policy: f.st.Policy, Overrides: f.st.Overrides, Sites: f.st.Sites}
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
// posted metrics alone, which the web server stores: the provisioner knows nothing of
// them, and a post never touches the fleet's history.
func (f *fleet) collect(ctx workflow.Context) error {
	collected := workflow.GetVersion(ctx, externalMetricsVersion, workflow.DefaultVersion, 1) != workflow.DefaultVersion
	if !collected {
		f.checkExternal(ctx)
	}
	handover := workflow.GetVersion(ctx, siteMoveVersion, workflow.DefaultVersion, 1) != workflow.DefaultVersion
	in := contract.CollectInput{Pool: f.in.Pool, ConnectorIDs: make([]string, 0, len(f.st.Connectors))}
	for _, c := range f.st.Connectors {
		switch {
		case !c.External:
			in.ConnectorIDs = append(in.ConnectorIDs, c.ID)
		case collected:
			in.External = append(in.External, c.ID)
		}
		if handover && !slices.Contains(in.ConnectorSites, c.Site) {
			in.ConnectorSites = append(in.ConnectorSites, c.Site)
		}
	}
	for _, r := range f.st.Waiting {
		if handover && !slices.Contains(in.ConnectorSites, r.Site) {
			in.ConnectorSites = append(in.ConnectorSites, r.Site)
		}
	}
	var res contract.CollectResult
	if err := workflow.ExecuteActivity(controlOptions(ctx, time.Minute), fleetActivities.Collect, in).Get(ctx, &res); err != nil {
		return err
	}
	f.st.Sites = res.Sites
	now := workflow.Now(ctx)
	stale := func(t time.Time) bool { return !t.IsZero() && now.Sub(t) > planning.UnreachableAfter }
	var restart, changed []planning.Connector
	for _, h := range res.Connectors {
		i := f.connectorIndex(h.ID)
		if i < 0 {
			continue // stopped while Collect ran
		}
		c := &f.st.Connectors[i]
		if c.External {
			// What it posted since the last tick; an update from an older web server
			// may have told the fleet later news already.
			c.LastSeen = maxTime(c.LastSeen, h.LastSeen)
			if h.Usage.At.After(c.Usage.At) {
				c.Usage = h.Usage
			}
			continue
		}
		c.Usage = h.Usage
		if h.Usage.At.After(f.st.SiteReports[c.Site]) {
			if f.st.SiteReports == nil {
				f.st.SiteReports = map[string]time.Time{}
			}
			f.st.SiteReports[c.Site] = h.Usage.At
		}
		// Shown, not acted on: a connector that cannot report cannot be told anything
		// either, and its work waits for it (or fails over by its heartbeats). One
		// that has not reported yet, such as a replacement that cannot reach the
		// cloud to start, is as reachable as its site.
		unreachable := c.Live() && (stale(h.Usage.At) || h.Usage.At.IsZero() && stale(f.st.SiteReports[c.Site]))
		if unreachable != c.Unreachable {
			c.Unreachable = unreachable
			if unreachable {
				f.logger.Warn("connector unreachable: its process runs but it has not reported", "connector", c.ID, "site", c.Site,
					"last_report", h.Usage.At)
			} else {
				f.logger.Info("connector reachable again", "connector", c.ID, "site", c.Site)
			}
		}
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
	if collected {
		f.checkExternal(ctx)
	}
	for _, m := range res.Moved {
		f.handOver(ctx, m)
	}
	return nil
}

// maxTime is the later of two times.
func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// provisionBatch is how many connectors one Provision activity starts: its input
// stays near 100 KB however many a tick starts.
const provisionBatch = 100

// provision starts the connectors, provisionBatch at a time.
func (f *fleet) provision(ctx workflow.Context, conns []planning.Connector) {
	for batch := range slices.Chunk(conns, provisionBatch) {
		err := workflow.ExecuteActivity(controlOptions(ctx, 2*time.Minute), fleetActivities.Provision, contract.ProvisionInput{
			Pool: f.in.Pool, Connectors: batch,
		}).Get(ctx, nil)
		if err != nil {
			f.logger.Error("provision failed", "connectors", len(batch), "error", err)
		}
	}
}

func (f *fleet) sync(ctx workflow.Context, conns []planning.Connector) {
	err := workflow.ExecuteActivity(controlOptions(ctx, time.Minute), fleetActivities.SyncConnectors, contract.SyncConnectorsInput{
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
	f.start(ctx, d.Start, "scaling up")
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
	err := workflow.ExecuteActivity(controlOptions(ctx, time.Minute), fleetActivities.Decommission, contract.DecommissionInput{
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
	p := planning.Place(f.state(), f.st.Plan, f.size(), nil, workflow.Now(ctx))
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
	f.start(ctx, p.Start, "reactive scale-up: migration waits at a site with no connector")
}

// start starts a connector of the fleet's size for each decision, counts and logs each
// (with msg), and provisions them together.
func (f *fleet) start(ctx workflow.Context, starts []planning.StartDecision, msg string) {
	if len(starts) == 0 {
		return
	}
	size := f.size()
	var start []planning.Connector
	for _, s := range starts {
		c := f.newConnector(ctx, s.Site, size, false, s.Reason)
		f.logger.Info(msg, "connector", c.ID, "reason", s.Reason)
		f.countDecision(ctx, s.Site, "start", s.Rule)
		start = append(start, c)
	}
	f.st.Connectors = append(f.st.Connectors, start...)
	f.provision(ctx, start)
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

// mib prints a size in MiB, for summaries.
func mib(bytes int64) string { return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20)) }
