package activities

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// Plan is a fleet's tick in one activity: it forecasts the demand with the pool's
// planned migrations from the store and records the forecast, reads the rest of the
// world, runs planning.Tick, and records the plan and the anomalies it found. The
// demand curve, the planned work and the hourly plan stay in the activity and
// PostgreSQL; only the decision, the plan's targets and its reasons go back into the
// fleet's history, whatever the pool's size.
func (a *Fleet) Plan(ctx context.Context, in contract.PlanInput) (planning.Decision, error) {
	if err := a.Store.PlannedArrived(ctx, in.Arrived, in.Now); err != nil {
		return planning.Decision{}, err
	}
	planned, err := a.Store.Planned(ctx, in.Pool, in.Now)
	if err != nil {
		return planning.Decision{}, err
	}
	fc, err := a.demand(ctx, demandQuery{Pool: in.Pool, Sites: in.Sites, Now: in.Now, From: in.Now, Hours: in.Hours,
		Planned: planned, Record: true})
	if err != nil {
		return planning.Decision{}, err
	}
	w, err := a.world(ctx, worldQuery{Pool: in.Pool, Sites: in.Sites, Now: in.Now, Size: in.Size, LeadTime: in.LeadTime,
		Tick: in.Tick, Demand: fc.Demand, Planned: planned})
	if err != nil {
		return planning.Decision{}, err
	}
	w.Models, w.Accuracy, w.Fleet = fc.Models, fc.Accuracy, in.Fleet
	d := planning.Tick(w)
	if err := a.record(ctx, in.Pool, in.Now, d); err != nil {
		return planning.Decision{}, err
	}
	// The hourly needs are stored with the plan for the dashboard; the fleet's copy,
	// which goes into its history on every tick, does without them.
	d.Hours = nil
	return d, nil
}

// ForecastBatch answers a forecast request in one activity: it looks up the VMs, sizes
// the batch against the forecast of its window, plans the what-if if asked, and records
// the batch as known work if asked. A batch of thousands of VMs thus passes through the
// fleet's history as the request and the answer only.
func (a *Fleet) ForecastBatch(ctx context.Context, in contract.ForecastBatchInput) (contract.ForecastBatchResult, error) {
	vms, err := a.lookupVMs(ctx, in.VMIDs)
	if err != nil {
		return contract.ForecastBatchResult{}, err
	}
	for i, vm := range vms {
		if !slices.Contains(in.Sites, vm.Site) {
			fe := validation.Field(fmt.Sprintf("vm_ids[%d]", i), "VM %s is at site %s, which is not in pool %s", vm.ID, vm.Site, in.Pool)
			return contract.ForecastBatchResult{}, temporal.NewNonRetryableApplicationError(fe.Error(), validation.ApplicationErrorType, nil, fe)
		}
	}
	batch := planning.PlannedBatch(in.ID, vms, in.VMs, in.SLATier, in.EarliestStart, in.Deadline)
	if in.Wave != "" {
		for i := range batch {
			batch[i].Wave = in.Wave
		}
	}
	hours := int(in.Deadline.Sub(in.EarliestStart.Truncate(time.Hour))/time.Hour) + 1
	fc, err := a.demand(ctx, demandQuery{Pool: in.Pool, Sites: in.Sites, Now: in.Now, From: in.EarliestStart, Hours: hours})
	if err != nil {
		return contract.ForecastBatchResult{}, err
	}
	var res contract.ForecastBatchResult
	if res.Estimate, err = a.estimate(ctx, estimateInput{Now: in.Now, Pool: in.Pool, Planned: batch, Demand: fc.Demand, Size: in.Size, Fleet: in.Fleet}); err != nil {
		return contract.ForecastBatchResult{}, err
	}
	if in.WhatIf != nil {
		w := *in.WhatIf
		if in.AddWave {
			w.AddWave = batch
		}
		planned, err := a.Store.Planned(ctx, in.Pool, in.Now)
		if err != nil {
			return contract.ForecastBatchResult{}, err
		}
		now, err := a.demand(ctx, demandQuery{Pool: in.Pool, Sites: in.Sites, Now: in.Now, From: in.Now, Hours: in.HorizonHours, Planned: planned})
		if err != nil {
			return contract.ForecastBatchResult{}, err
		}
		// The world is read once and planned twice: as it is, and changed.
		world, err := a.world(ctx, worldQuery{Pool: in.Pool, Sites: in.Sites, Now: in.Now, Size: in.Size, LeadTime: in.LeadTime,
			Tick: in.Tick, Demand: now.Demand, Planned: planned})
		if err != nil {
			return contract.ForecastBatchResult{}, err
		}
		today := planning.Tick(world).Plan
		world.WhatIf = &w
		then := planning.Tick(world).Plan
		today.Hours, then.Hours = nil, nil
		res.Today, res.WhatIf = &today, &then
	}
	if in.Plan {
		if err := a.Store.SavePlanned(ctx, in.Pool, batch, in.Now); err != nil {
			return contract.ForecastBatchResult{}, err
		}
		res.Planned = len(batch)
	}
	return res, nil
}
