// Package fleetsim runs the simulator (package sim) for the fleet's Simulate activity:
// it turns the activity's workload into a simulated world and runs the fleet's own
// planning, sim.Predictive, in it once per policy. It stands apart from activities
// because sim links pgx (traces draw VMs with store's types), which the workflows,
// and so the activities they name, must not.
package fleetsim

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/sim"
	"github.com/pmo-dev/pmo/trace"
)

// Simulator is the activities.Simulator that the worker wires.
type Simulator struct{}

var _ activities.Simulator = Simulator{}

// Simulate runs every policy on one world, so that each meets the same migrations with
// the same noise. Transfers do not fail. Inside an activity it heartbeats about once a
// simulated hour. A run that fails fails the same way every time, so its error is not
// retried.
func (Simulator) Simulate(ctx context.Context, w activities.Workload) ([]activities.SimulatedRun, error) {
	cfg := sim.DefaultConfig()
	cfg.Size, cfg.ProvisionDelay, cfg.Tick, cfg.Seed, cfg.FailureRate = w.Size, w.ProvisionDelay, w.Tick, w.Seed, 0
	// The series is not reported; a sample per tick at most is the simulator's rule.
	cfg.Sample = max(cfg.Sample, w.Tick)
	if activity.IsActivity(ctx) {
		cfg.Progress = func(now, _ time.Time) { activity.RecordHeartbeat(ctx, now) }
	}
	reqs := make([]trace.Request, len(w.Requests))
	for i, r := range w.Requests {
		reqs[i] = trace.Request{ID: r.ID, Arrival: r.Arrival, KnownAt: r.KnownAt, Site: r.Site, SLATier: r.SLATier,
			Bytes: r.Bytes, Deadline: r.Deadline, Wave: r.Wave}
	}
	world, err := sim.NewWorld(reqs, cfg)
	if err != nil {
		return nil, failed(err)
	}
	history := map[string]sim.Hourly{}
	for i, site := range w.Sites {
		history[site] = sim.Hourly{Arrivals: w.Arrivals[i], Bytes: w.Bytes[i]}
	}
	var out []activities.SimulatedRun
	for _, p := range w.Policies {
		res, err := sim.Run(world, &sim.Predictive{Policy: p.Policy, LeadTime: w.LeadTime, Model: w.Model, Horizon: w.HorizonHours,
			ForecastEvery: sim.DefaultKnobs().ForecastEvery, History: history, HistoryEnd: w.HistoryEnd})
		if err != nil {
			return nil, failed(err)
		}
		out = append(out, activities.SimulatedRun{Name: p.Name, Migrations: res.Migrations, SLABreaches: res.SLABreaches,
			WaitP50: res.WaitP50, WaitP95: res.WaitP95, WaitP99: res.WaitP99, ConnectorHours: res.ConnectorHours,
			Utilization: res.Utilization, ScaleEvents: res.ScaleEvents, Seconds: res.Seconds})
	}
	return out, nil
}

func failed(err error) error {
	return temporal.NewNonRetryableApplicationError("simulation: "+err.Error(), "SimulationFailed", err)
}
