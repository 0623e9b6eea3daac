package activities

import (
	"context"

	"github.com/pmo-dev/pmo/planning"
)

// FleetFixture and Now let the external tests, which may import what imports this
// package, use the real database fixture.
var (
	FleetFixture = fleetFixture
	Now          = now
)

// Forecast, Predict, Estimate and LookupVMs run the parts of Plan and ForecastBatch as
// activities, so that the tests give them their inputs in an activity's context (the
// forecast heartbeats).
func (a *Fleet) Forecast(ctx context.Context, q demandQuery) (demandResult, error) {
	return a.demand(ctx, q)
}

// Predict is Plan after its forecast, on the demand a test gives: the world read,
// the tick, and, when record is set, what it records.
func (a *Fleet) Predict(ctx context.Context, q worldQuery, record bool) (planning.Plan, error) {
	w, err := a.world(ctx, q)
	if err != nil {
		return planning.Plan{}, err
	}
	d := planning.Tick(w)
	if record {
		if err := a.record(ctx, q.Pool, q.Now, d); err != nil {
			return planning.Plan{}, err
		}
	}
	return d.Plan, nil
}

// Estimate is ForecastBatch's estimate.
func (a *Fleet) Estimate(ctx context.Context, in estimateInput) (planning.Estimate, error) {
	return a.estimate(ctx, in)
}

// LookupVMs is ForecastBatch's lookup.
func (a *Fleet) LookupVMs(ctx context.Context, ids []string) ([]planning.VM, error) {
	return a.lookupVMs(ctx, ids)
}
