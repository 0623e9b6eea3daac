package activities

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// PlanInput asks for one tick's plan of a pool: its demand over the horizon, forecast
// and recorded, turned into connector targets, recorded too.
type PlanInput struct {
	Pool  string
	Sites []string
	Now   time.Time
	// Hours is the forecast horizon.
	Hours    int
	Size     string
	LeadTime time.Duration
	Tick     time.Duration
	// Arrived names the migrations that reserved a connector since the last plan: the
	// planned ones among them leave the known demand first.
	Arrived []string
}

// Plan is a tick's planning in one activity: Forecast, then Predict, with the pool's
// planned migrations read from the store. The demand curve, the planned work and the
// hourly plan stay in the activity and PostgreSQL; only the plan's targets and reasons
// go back into the fleet's history, whatever the pool's size.
func (a *Fleet) Plan(ctx context.Context, in PlanInput) (planning.Plan, error) {
	if err := a.Store.PlannedArrived(ctx, in.Arrived, in.Now); err != nil {
		return planning.Plan{}, err
	}
	planned, err := a.Store.Planned(ctx, in.Pool, in.Now)
	if err != nil {
		return planning.Plan{}, err
	}
	fc, err := a.Forecast(ctx, ForecastInput{Pool: in.Pool, Sites: in.Sites, Now: in.Now, From: in.Now, Hours: in.Hours,
		Planned: planned, Record: true})
	if err != nil {
		return planning.Plan{}, err
	}
	plan, err := a.Predict(ctx, PredictInput{Pool: in.Pool, Sites: in.Sites, Now: in.Now, Demand: fc.Demand, Planned: planned, Size: in.Size,
		LeadTime: in.LeadTime, Tick: in.Tick, Record: true})
	if err != nil {
		return planning.Plan{}, err
	}
	plan.Reasons = append(plan.Reasons, "forecast model: "+fc.Model)
	if fc.Accuracy != nil {
		plan.ForecastAccuracy = fc.Accuracy
	}
	return plan, nil
}

// ForecastBatchInput is a forecast request as the fleet checked it: a batch of
// migrations, named by VM or given by site and size, to size against the pool's
// forecast, and, when asked, a what-if change or planning it as known work.
type ForecastBatchInput struct {
	Pool string
	Now  time.Time
	// ID names the batch; its migrations are ID-<vm> (VMIDs) and ID-<i> (VMs).
	ID      string
	VMIDs   []string
	VMs     []planning.VMSpec
	SLATier string
	// EarliestStart and Deadline bound every migration of the batch.
	EarliestStart time.Time
	Deadline      time.Time
	Sites         []string
	// Size, HorizonHours, LeadTime and Tick are the fleet's settings; Fleet is what
	// bounds and explains the answer.
	Size         string
	HorizonHours int
	LeadTime     time.Duration
	Tick         time.Duration
	Fleet        planning.FleetView
	// WhatIf, if set, asks for the plan as it is and as it would be after the change;
	// AddWave adds the batch itself as a wave.
	WhatIf  *planning.WhatIf
	AddWave bool
	// Plan records the batch as known work.
	Plan bool
}

// ForecastBatchResult is the estimate of a batch and, for a what-if, the two plans.
type ForecastBatchResult struct {
	Estimate planning.Estimate
	Today    *planning.Plan
	WhatIf   *planning.Plan
	// Planned counts the migrations recorded as known work.
	Planned int
}

// ForecastBatch answers a forecast request in one activity: it looks up the VMs, sizes
// the batch against the forecast of its window, plans the what-if if asked, and records
// the batch as known work if asked. A batch of thousands of VMs thus passes through the
// fleet's history as the request and the answer only.
func (a *Fleet) ForecastBatch(ctx context.Context, in ForecastBatchInput) (ForecastBatchResult, error) {
	vms, err := a.LookupVMs(ctx, LookupVMsInput{VMIDs: in.VMIDs})
	if err != nil {
		return ForecastBatchResult{}, err
	}
	for i, vm := range vms {
		if !slices.Contains(in.Sites, vm.Site) {
			fe := validation.Field(fmt.Sprintf("vm_ids[%d]", i), "VM %s is at site %s, which is not in pool %s", vm.ID, vm.Site, in.Pool)
			return ForecastBatchResult{}, temporal.NewNonRetryableApplicationError(fe.Error(), validation.ApplicationErrorType, nil, fe)
		}
	}
	batch := planning.PlannedBatch(in.ID, vms, in.VMs, in.SLATier, in.EarliestStart, in.Deadline)
	hours := int(in.Deadline.Sub(in.EarliestStart.Truncate(time.Hour))/time.Hour) + 1
	fc, err := a.Forecast(ctx, ForecastInput{Pool: in.Pool, Sites: in.Sites, Now: in.Now, From: in.EarliestStart, Hours: hours})
	if err != nil {
		return ForecastBatchResult{}, err
	}
	var res ForecastBatchResult
	if res.Estimate, err = a.Estimate(ctx, EstimateInput{Pool: in.Pool, Planned: batch, Demand: fc.Demand, Size: in.Size, Fleet: in.Fleet}); err != nil {
		return ForecastBatchResult{}, err
	}
	if in.WhatIf != nil {
		w := *in.WhatIf
		if in.AddWave {
			w.AddWave = batch
		}
		planned, err := a.Store.Planned(ctx, in.Pool, in.Now)
		if err != nil {
			return ForecastBatchResult{}, err
		}
		now, err := a.Forecast(ctx, ForecastInput{Pool: in.Pool, Sites: in.Sites, Now: in.Now, From: in.Now, Hours: in.HorizonHours, Planned: planned})
		if err != nil {
			return ForecastBatchResult{}, err
		}
		pin := PredictInput{Pool: in.Pool, Sites: in.Sites, Now: in.Now, Demand: now.Demand, Planned: planned, Size: in.Size, LeadTime: in.LeadTime, Tick: in.Tick}
		today, err := a.Predict(ctx, pin)
		if err != nil {
			return ForecastBatchResult{}, err
		}
		pin.WhatIf = &w
		then, err := a.Predict(ctx, pin)
		if err != nil {
			return ForecastBatchResult{}, err
		}
		res.Today, res.WhatIf = &today, &then
	}
	if in.Plan {
		if err := a.Store.SavePlanned(ctx, in.Pool, batch, in.Now); err != nil {
			return ForecastBatchResult{}, err
		}
		res.Planned = len(batch)
	}
	return res, nil
}
