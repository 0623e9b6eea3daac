package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

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
	err = workflow.ExecuteActivity(controlOptions(ctx, 5*time.Minute), fleetActivities.Simulate, contract.SimulateInput{
		Pool: f.in.Pool, Sites: f.st.Sites, Now: now, Hours: r.Hours, Seed: r.Seed, Size: f.in.Size,
		LeadTime: f.in.LeadTime, Tick: f.in.Tick, HorizonHours: f.in.HorizonHours, Current: answer.Current, Proposed: answer.Proposed, Overrides: f.st.Overrides,
	}).Get(ctx, &answer.Result)
	if err != nil {
		return SimulateAnswer{}, err
	}
	return answer, nil
}

// validateScale rejects a scale request before it enters history.
func (f *fleet) validateScale(ctx workflow.Context, r ScaleRequest) error {
	if err := r.Validate(); err != nil {
		return invalid(err)
	}
	switch r.Action {
	case ScaleProvision:
		if err := f.checkRoom("count", r.Count); err != nil {
			return err
		}
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

// checkRoom refuses n more connectors where the policy's max_connectors would be
// exceeded: the bound holds for an operator's and a customer's connectors as for the
// fleet's own. The field is the request's that asks for them.
func (f *fleet) checkRoom(field string, n int) error {
	limit := f.st.Policy.ConnectorLimit()
	live := 0
	for _, c := range f.st.Connectors {
		if c.Live() {
			live++
		}
	}
	if live+n > limit {
		return failure(validation.ConflictErrorType, field, "pool %s allows at most %d connectors (max_connectors) and has %d; %d more would exceed it: raise the policy's max_connectors first",
			f.in.Pool, limit, live, n)
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
	in := contract.ForecastBatchInput{
		Pool: f.in.Pool, Now: workflow.Now(ctx), ID: r.ID, Wave: r.Wave, VMIDs: r.VMIDs, VMs: r.VMs, SLATier: r.SLATier,
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
	var res contract.ForecastBatchResult
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
