// Package activities holds PMO's side effects as Temporal activities: the fleet's
// control-plane steps on the "pmo" queue and the connector's data-plane steps on each
// connector's own queue. Every activity is idempotent, because Temporal retries.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/forecast"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/provisioner"
	"github.com/pmo-dev/pmo/validation"
)

// HistoryWindow is how much migration history the forecast and the site profiles read.
const HistoryWindow = 28 * 24 * time.Hour

// Fleet holds the control-plane activities and their dependencies.
type Fleet struct {
	Store       Store
	Provisioner provisioner.Provisioner
	// ForecastModel names the forecasting engine's model (forecast.New); empty means
	// forecast.DefaultModel.
	ForecastModel string
	Logger        *slog.Logger
	// Uploads is the folder where the web server stages imported files; Import opens
	// nothing else.
	Uploads string

	// The rate model, retrained at most every RateModelTTL.
	rateMu       sync.Mutex
	rateTraining bool
	rateModel    *planning.RateModel
	rateAcc      planning.RateAccuracy
	rateTrained  time.Time

	// forecasts are this history hour's fitted forecasts.
	forecasts forecastCache
}

// RateModelTTL is how long a trained rate model serves before it learns from the
// history again.
const RateModelTTL = time.Hour

// RateSamples is how many of the newest finished migrations the rate model learns
// from. Training is linear in them and every plan of the worker waits for it: 155,000
// took 6.4 s, so that a hundred sites' four weeks held every pool's tick for as long.
const RateSamples = 20000

// ResourceSamples is how many of the newest connector metrics samples the resource
// model is fitted on: hours of a busy pool, refitted every plan.
const ResourceSamples = 5000

// TargetSpaceAge is how old a measure of the target storage's free space may be for
// the plan to judge by it.
const TargetSpaceAge = 10 * time.Minute

// rate returns the rate model and its accuracy, training it when it is older than
// RateModelTTL; nil while the history is too short. One plan trains it while the
// others go on with the model they have (nil before the first), so that no tick waits
// for another's training; why says what a nil model means.
func (a *Fleet) rate(ctx context.Context, now time.Time) (model *planning.RateModel, acc planning.RateAccuracy, why string, err error) {
	a.rateMu.Lock()
	fresh := a.rateModel != nil && now.Sub(a.rateTrained) < RateModelTTL && !now.Before(a.rateTrained)
	if fresh || a.rateTraining {
		model, acc = a.rateModel, a.rateAcc
		a.rateMu.Unlock()
		if model == nil {
			return nil, acc, "rate model: being trained by another plan; durations assume the connector's full share", nil
		}
		return model, acc, "", nil
	}
	a.rateTraining = true
	a.rateMu.Unlock()
	defer func() {
		a.rateMu.Lock()
		a.rateTraining = false
		if model != nil {
			a.rateModel, a.rateAcc, a.rateTrained = model, acc, now
		}
		a.rateMu.Unlock()
	}()
	obs, err := a.Store.RateHistory(ctx, now.Add(-HistoryWindow), RateSamples)
	if err != nil {
		return nil, planning.RateAccuracy{}, "", err
	}
	model, acc, err = planning.TrainRateModel(obs)
	if err != nil {
		return nil, planning.RateAccuracy{}, "rate model: too little history yet; durations assume the connector's full share", nil
	}
	if a.Logger != nil {
		a.Logger.Info("rate model trained", "rows", acc.TrainingRows, "seconds", acc.TrainingSeconds, "accuracy", acc.String())
	}
	return model, acc, "", nil
}

// NewFleet returns the fleet activities with the wall clock.
func NewFleet(s Store, p provisioner.Provisioner, cfg config.Config, logger *slog.Logger) (*Fleet, error) {
	if cfg.ForecastModel != "" {
		if err := forecast.CheckName(cfg.ForecastModel); err != nil {
			return nil, fmt.Errorf("PMO_FORECAST_MODEL: %w", err)
		}
	}
	return &Fleet{Store: s, Provisioner: p, ForecastModel: cfg.ForecastModel, Logger: logger, Uploads: config.UploadsDir(cfg)}, nil
}

// Collect reads the sites and, for each connector, whether its process runs, whether it
// has reported ready, and its latest metrics.
func (a *Fleet) Collect(ctx context.Context, in contract.CollectInput) (contract.CollectResult, error) {
	sites, err := a.Store.Sites(ctx)
	if err != nil {
		return contract.CollectResult{}, err
	}
	var res contract.CollectResult
	for _, site := range sites {
		switch {
		case site.Pool == in.Pool:
			res.Sites = append(res.Sites, site.ID)
		case slices.Contains(in.ConnectorSites, site.ID):
			res.Moved = append(res.Moved, contract.SitePool{Site: site.ID, Pool: site.Pool})
		}
	}
	// One read for all: the fleet's own connectors first, then the external ones.
	health, err := a.Store.ConnectorHealth(ctx, append(slices.Clip(in.ConnectorIDs), in.External...))
	if err != nil {
		return contract.CollectResult{}, err
	}
	for i, h := range health {
		if i >= len(in.ConnectorIDs) {
			// External connectors are not the provisioner's: what they posted is all there is.
			res.Connectors = append(res.Connectors, contract.ConnectorHealth{ID: h.ID, ReadyAt: h.ReadyAt, Usage: h.Usage, LastSeen: h.LastSeen})
			continue
		}
		st, err := a.Provisioner.Status(ctx, h.ID)
		if err != nil {
			return contract.CollectResult{}, fmt.Errorf("status of connector %s: %w", h.ID, err)
		}
		res.Connectors = append(res.Connectors, contract.ConnectorHealth{ID: h.ID, Running: st.Running, ReadyAt: h.ReadyAt, Usage: h.Usage})
	}
	return res, nil
}

// demandQuery asks for the demand of the hours [From, From+Hours) at each site, as
// seen at Now: the models fit on the history before Now.
type demandQuery struct {
	Pool    string
	Sites   []string
	Now     time.Time
	From    time.Time
	Hours   int
	Planned []planning.PlannedMigration
	// Record stores the forecast, and scores the earlier ones first; an estimate or a
	// what-if leaves it out.
	Record bool
}

// demandResult is the demand per site and hour, and how past forecasts did.
type demandResult struct {
	// Models says which model answered at each site, e.g. "ams1 ets(A,N,A), fra1 snaive24".
	Models string
	Demand []planning.Demand
	// Accuracy is the realised error of the pool's recorded forecasts over the last
	// AccuracyWindow; only a recorded forecast reads it.
	Accuracy []planning.ForecastAccuracy
}

// AnomalyWindow is how far back "recent" reaches when the fleet looks for anomalies.
const AnomalyWindow = 2 * time.Hour

// AccuracyWindow is how far back the realised forecast error is summarised.
const AccuracyWindow = 7 * 24 * time.Hour

// demand builds the demand curve: known planned migrations as they are, plus a
// forecast of ad-hoc arrivals and of the bytes they bring, from the last four weeks of
// hourly history, with the forecasting engine's model (ForecastModel). A recorded
// forecast first scores the earlier forecasts whose hours have passed.
func (a *Fleet) demand(ctx context.Context, in demandQuery) (demandResult, error) {
	now := in.Now.Truncate(time.Hour)
	if in.Record {
		if _, err := a.Store.ScoreForecasts(ctx, in.Pool, in.Now); err != nil {
			return demandResult{}, err
		}
	}
	adhoc, models, err := a.adhocDemand(ctx, in)
	if err != nil {
		return demandResult{}, err
	}
	res := demandResult{Demand: planning.WithPlanned(adhoc, in.Planned)}
	res.Models = strings.Join(models, ", ")
	if in.Record {
		if err := a.Store.InsertForecast(ctx, in.Pool, now, planning.DemandQuantiles[0], planning.DemandQuantiles[1], res.Demand); err != nil {
			return demandResult{}, err
		}
		if res.Accuracy, err = a.Store.ForecastAccuracy(ctx, in.Pool, now.Add(-AccuracyWindow)); err != nil {
			return demandResult{}, err
		}
	}
	return res, nil
}

// adhocDemand is the forecast of ad-hoc arrivals and bytes of the query's hours,
// fitted once per history hour: the history the models learn from is whole hours, so
// every tick of an hour would fit the same models to the same series. A migration
// recorded late in an hour that has passed is learned from at the next hour.
func (a *Fleet) adhocDemand(ctx context.Context, in demandQuery) ([]planning.Demand, []string, error) {
	hour := in.Now.Truncate(time.Hour)
	key := fmt.Sprintf("%s|%s|%s|%d|%s", a.ForecastModel, strings.Join(in.Sites, ","), in.From.Truncate(time.Hour).Format(time.RFC3339), in.Hours, hour.Format(time.RFC3339))
	if f, ok := a.forecasts.get(key, hour); ok {
		return f.demand, f.models, nil
	}
	arrivals, volume, err := a.history(ctx, in.Sites, in.Now)
	if err != nil {
		return nil, nil, err
	}
	demand, models, err := a.forecast(ctx, planning.DemandInput{
		Sites: in.Sites, Arrivals: arrivals, Bytes: volume, Now: in.Now, From: in.From, Hours: in.Hours,
	})
	if err != nil {
		return nil, nil, err
	}
	a.forecasts.put(key, hour, fittedDemand{demand: demand, models: models})
	return demand, models, nil
}

// fittedDemand is a forecast as the models made it, before known work is counted in.
type fittedDemand struct {
	demand []planning.Demand
	models []string
}

// forecastCache keeps the forecasts made from the current history hour; an entry of
// an earlier hour is never served, and goes when a later one is kept.
type forecastCache struct {
	mu      sync.Mutex
	hour    time.Time
	entries map[string]fittedDemand
}

func (c *forecastCache) get(key string, hour time.Time) (fittedDemand, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.entries[key]
	return f, ok && c.hour.Equal(hour)
}

func (c *forecastCache) put(key string, hour time.Time, f fittedDemand) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hour.Before(c.hour) {
		return // a late tick of an hour gone by
	}
	if !hour.Equal(c.hour) || c.entries == nil {
		c.hour, c.entries = hour, map[string]fittedDemand{}
	}
	c.entries[key] = f
}

// history reads each site's migrations started and bytes moved per hour over the
// HistoryWindow before now's hour, oldest first: what the forecast learns from.
func (a *Fleet) history(ctx context.Context, sites []string, now time.Time) (arrivals, volume [][]float64, err error) {
	now = now.Truncate(time.Hour)
	return a.Store.HourlyHistory(ctx, sites, now.Add(-HistoryWindow), int(HistoryWindow/time.Hour))
}

// forecast runs the planning core's demand forecast with the fleet's model,
// heartbeating as each site is done.
func (a *Fleet) forecast(ctx context.Context, in planning.DemandInput) ([]planning.Demand, []string, error) {
	in.Model = a.ForecastModel
	in.OnSite = func(site string) { activity.RecordHeartbeat(ctx, site) }
	return planning.ForecastDemand(in)
}

// worldQuery names the world a tick plans in: the pool, its sites and settings, and
// the demand forecast for it with its planned work.
type worldQuery struct {
	Pool string
	// Sites are the pool's sites; nil means every site (fleets from before pools).
	Sites []string
	Now   time.Time
	Size  string
	// LeadTime is the operator's lead time, the floor of the learned one.
	LeadTime time.Duration
	// Tick is the fleet's planning interval, which the lead time allows for.
	Tick    time.Duration
	Demand  []planning.Demand
	Planned []planning.PlannedMigration
}

// world reads what a tick knows besides the demand and the fleet: the pool's site
// profiles, the SLA tiers, the events over the demand's horizon, how long connectors
// took to be ready, the sites' outcomes, what the connectors measured, and the rate
// model.
func (a *Fleet) world(ctx context.Context, q worldQuery) (planning.World, error) {
	size, ok := planning.SizeNamed(q.Size)
	if !ok {
		return planning.World{}, temporal.NewNonRetryableApplicationError("unknown connector size "+q.Size, validation.ApplicationErrorType, nil)
	}
	w := planning.World{Now: q.Now, Size: size, LeadTime: q.LeadTime, Tick: q.Tick, Demand: q.Demand, Planned: q.Planned}
	// The plan, its events and its anomalies are the pool's sites', not the other pools'.
	inPool := func(site string) bool { return q.Sites == nil || slices.Contains(q.Sites, site) }
	sites, err := a.Store.SiteProfiles(ctx, q.Now.Add(-HistoryWindow))
	if err != nil {
		return planning.World{}, err
	}
	w.Sites = slices.DeleteFunc(sites, func(s planning.Site) bool { return !inPool(s.ID) })
	if w.Tiers, err = a.Store.SLATiers(ctx); err != nil {
		return planning.World{}, err
	}
	horizonEnd := q.Now
	for _, d := range q.Demand {
		if end := d.Hour.Add(time.Hour); end.After(horizonEnd) {
			horizonEnd = end
		}
	}
	events, err := a.Store.Events(ctx, q.Now, horizonEnd)
	if err != nil {
		return planning.World{}, err
	}
	w.Events = slices.DeleteFunc(events, func(e planning.KeyedEvent) bool { return !inPool(e.Site) })
	if w.ReadyDelays, err = a.Store.ReadyDelays(ctx, q.Pool, q.Now.Add(-AccuracyWindow), 100); err != nil {
		return planning.World{}, err
	}
	outcomes, err := a.Store.SiteOutcomes(ctx, q.Now.Add(-HistoryWindow), q.Now.Add(-AnomalyWindow))
	if err != nil {
		return planning.World{}, err
	}
	w.Outcomes = slices.DeleteFunc(outcomes, func(o planning.SiteOutcomes) bool { return !inPool(o.Site) })
	if w.Resources, w.Target, err = a.measured(ctx, q.Pool, q.Now); err != nil {
		return planning.World{}, err
	}
	if w.Rate, w.RateAccuracy, w.RateWhy, err = a.rate(ctx, q.Now); err != nil {
		return planning.World{}, err
	}
	return w, nil
}

// record writes what a tick found and decided: each anomaly it detected as an event,
// once per site and hour however many ticks see it, and its plan.
func (a *Fleet) record(ctx context.Context, pool string, now time.Time, d planning.Decision) error {
	hour := now.Truncate(time.Hour)
	for _, an := range d.Detected {
		err := a.Store.InsertEvent(ctx, fmt.Sprintf("anomaly/%s/%s", an.Site, hour.Format(time.RFC3339)), planning.Event{
			Site: an.Site, Kind: "anomaly", Severity: "warning", Starts: hour, Ends: hour.Add(time.Hour), Detail: an.Detail, Source: "detector",
		})
		if err != nil {
			return err
		}
	}
	return a.Store.InsertPlan(ctx, pool, d.Plan)
}

// estimateInput is a batch of known migrations to size against the forecast, with
// the fleet's state that bounds and explains the answer.
type estimateInput struct {
	// Now is the moment the batch is sized at, the request's, so that a retry reads the
	// same windows.
	Now time.Time
	// Pool names the connectors whose metrics say what the target storage holds and
	// what a connector uses.
	Pool    string
	Planned []planning.PlannedMigration
	Demand  []planning.Demand
	Size    string
	Fleet   planning.FleetView
}

// estimate sizes a batch of known migrations with the planning core, reading the site
// profiles, SLA tiers and events of the batch's window; the fleet's view bounds the
// answer and, with the profiles, explains it.
func (a *Fleet) estimate(ctx context.Context, in estimateInput) (planning.Estimate, error) {
	size, ok := planning.SizeNamed(in.Size)
	if !ok {
		return planning.Estimate{}, temporal.NewNonRetryableApplicationError("unknown connector size "+in.Size, validation.ApplicationErrorType, nil)
	}
	if len(in.Planned) == 0 {
		return planning.Estimate{}, nil
	}
	from, to := in.Planned[0].EarliestStart, in.Planned[0].Deadline
	for _, p := range in.Planned {
		if p.EarliestStart.Before(from) {
			from = p.EarliestStart
		}
		if p.Deadline.After(to) {
			to = p.Deadline
		}
	}
	sites, err := a.Store.SiteProfiles(ctx, in.Now.Add(-HistoryWindow))
	if err != nil {
		return planning.Estimate{}, err
	}
	tiers, err := a.Store.SLATiers(ctx)
	if err != nil {
		return planning.Estimate{}, err
	}
	events, err := a.Store.Events(ctx, from, to)
	if err != nil {
		return planning.Estimate{}, err
	}
	ein := planning.EstimateInput{
		Planned: in.Planned, Demand: in.Demand, Sites: sites, Events: planning.Events(events), Tiers: tiers, Size: size, Fleet: in.Fleet,
	}
	if ein.Resources, ein.Target, err = a.measured(ctx, in.Pool, in.Now); err != nil {
		return planning.Estimate{}, err
	}
	return planning.EstimateBatch(ein), nil
}

// measured is what the pool's connectors say of themselves that planning judges by:
// the resource model fitted on their metrics (nil while there are too few) and the
// target storage's free space.
func (a *Fleet) measured(ctx context.Context, pool string, now time.Time) (*planning.ResourceModel, planning.TargetSpace, error) {
	samples, err := a.Store.ResourceSamples(ctx, pool, now.Add(-AccuracyWindow), ResourceSamples)
	if err != nil {
		return nil, planning.TargetSpace{}, err
	}
	var model *planning.ResourceModel
	if m, err := planning.FitResources(samples); err == nil {
		model = &m
	}
	target, err := a.Store.TargetSpace(ctx, pool, now.Add(-TargetSpaceAge))
	return model, target, err
}

// Provision records each connector and starts its process unless it already runs.
// Readiness is cleared only before a real start, so a retry after a successful start
// does not undo the connector's own report that it is ready.
func (a *Fleet) Provision(ctx context.Context, in contract.ProvisionInput) (contract.ProvisionResult, error) {
	var res contract.ProvisionResult
	var uplinks map[string]float64 // read once, when a connector is to start
	for _, c := range in.Connectors {
		if err := a.Store.UpsertConnector(ctx, in.Pool, c); err != nil {
			return res, err
		}
		st, err := a.Provisioner.Status(ctx, c.ID)
		if err != nil {
			return res, fmt.Errorf("status of connector %s: %w", c.ID, err)
		}
		if !st.Running {
			if err := a.Store.ResetConnectorReady(ctx, c.ID); err != nil {
				return res, err
			}
			if uplinks == nil {
				sites, err := a.Store.Sites(ctx)
				if err != nil {
					return res, err
				}
				uplinks = make(map[string]float64, len(sites))
				for _, site := range sites {
					uplinks[site.ID] = site.UplinkBytesSec
				}
			}
			st, err = a.Provisioner.Start(ctx, provisioner.Spec{ID: c.ID, Pool: in.Pool, Site: c.Site, TaskQueue: c.TaskQueue, Size: c.Size,
				UplinkBytesSec: uplinks[c.Site]})
			if err != nil {
				return res, fmt.Errorf("start connector %s: %w", c.ID, err)
			}
			a.Logger.Info("connector started", "connector", c.ID, "site", c.Site, "size", c.Size.Name, "pid", st.PID)
			if err := a.Store.SetConnectorPID(ctx, c.ID, st.PID); err != nil {
				return res, err
			}
		}
		res.PIDs = append(res.PIDs, st.PID)
		activity.RecordHeartbeat(ctx, c.ID)
	}
	return res, nil
}

// ResizeConnector holds a running connector to its new size's CPU and memory. Setting
// a limit twice sets it once, so a retry is safe.
func (a *Fleet) ResizeConnector(ctx context.Context, in contract.ResizeConnectorInput) error {
	if err := a.Provisioner.Resize(ctx, in.ID, in.Size); err != nil {
		return fmt.Errorf("resize connector %s: %w", in.ID, err)
	}
	a.Logger.Info("connector resized", "connector", in.ID, "size", in.Size.Name,
		"cpu_millis", in.Size.CPUMillis, "ram_bytes", in.Size.RAMBytes)
	return nil
}

// Decommission stops each connector's process and records it as stopped.
func (a *Fleet) Decommission(ctx context.Context, in contract.DecommissionInput) error {
	for _, c := range in.Connectors {
		if err := a.Provisioner.Stop(ctx, c.ID); err != nil {
			return fmt.Errorf("stop connector %s: %w", c.ID, err)
		}
		c.State = planning.StateStopped
		if err := a.Store.UpsertConnector(ctx, in.Pool, c); err != nil {
			return err
		}
		a.Logger.Info("connector stopped", "connector", c.ID, "site", c.Site)
		activity.RecordHeartbeat(ctx, c.ID)
	}
	return nil
}

// SyncConnectors writes each connector's state and size.
func (a *Fleet) SyncConnectors(ctx context.Context, in contract.SyncConnectorsInput) error {
	for _, c := range in.Connectors {
		if err := a.Store.UpsertConnector(ctx, in.Pool, c); err != nil {
			return err
		}
	}
	return nil
}

// RecordConnectorMetrics writes an external connector's samples where PMO's own
// connectors write theirs; samples already stored are skipped, so a retry is safe.
func (a *Fleet) RecordConnectorMetrics(ctx context.Context, in contract.RecordConnectorMetricsInput) (contract.RecordConnectorMetricsResult, error) {
	n, err := a.Store.InsertConnectorMetrics(ctx, in.ConnectorID, in.Samples)
	return contract.RecordConnectorMetricsResult{Stored: n}, err
}

// RecordOverride writes the override and its audit entry.
func (a *Fleet) RecordOverride(ctx context.Context, in contract.RecordOverrideInput) error {
	a.Logger.Info("override "+in.Action, "pool", in.Pool, "override", in.Override.ID, "kind", in.Override.Kind,
		"who", in.Override.Who, "why", in.Override.Why, "detail", in.Detail)
	return a.Store.RecordOverride(ctx, in.Pool, in.Override, in.Action, in.Detail, in.At)
}

// LookupVM returns the inventory row of a VM, or a non-retryable NotFound error.
func (a *Fleet) LookupVM(ctx context.Context, in contract.LookupVMInput) (planning.VM, error) {
	vm, err := a.Store.VM(ctx, in.VMID)
	if errors.Is(err, planning.ErrNotFound) {
		return planning.VM{}, temporal.NewNonRetryableApplicationError("no VM "+in.VMID+" in the inventory",
			validation.NotFoundErrorType, err, &validation.Error{Field: "vm_id", Reason: "no VM " + in.VMID + " in the inventory"})
	}
	return vm, err
}

// vmsByID reads the inventory rows of the VMs named, in one query, by ID; those not
// in the inventory are absent.
func (a *Fleet) vmsByID(ctx context.Context, ids []string) (map[string]planning.VM, error) {
	found, err := a.Store.VMs(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]planning.VM, len(found))
	for _, vm := range found {
		byID[vm.ID] = vm
	}
	return byID, nil
}

// lookupVMs returns the inventory rows of the VMs in the order given, read in one
// query, or a non-retryable NotFound error naming the first unknown one.
func (a *Fleet) lookupVMs(ctx context.Context, ids []string) ([]planning.VM, error) {
	byID, err := a.vmsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]planning.VM, 0, len(ids))
	for i, id := range ids {
		vm, ok := byID[id]
		if !ok {
			fe := &validation.Error{Field: fmt.Sprintf("vm_ids[%d]", i), Reason: "no VM " + id + " in the inventory"}
			return nil, temporal.NewNonRetryableApplicationError(fe.Error(), validation.NotFoundErrorType, planning.ErrNotFound, fe)
		}
		out = append(out, vm)
	}
	return out, nil
}

// WavePage reads a page of a wave's planned migrations with their VMs' inventory rows,
// two queries a page; a migration whose VM has left the inventory since is named
// apart.
func (a *Fleet) WavePage(ctx context.Context, in contract.WavePageInput) (contract.WavePage, error) {
	planned, err := a.Store.WaveMigrations(ctx, in.Wave, in.After, in.Through, in.Limit, in.Retry)
	if err != nil || len(planned) == 0 {
		return contract.WavePage{}, err
	}
	ids := make([]string, len(planned))
	for i, p := range planned {
		ids[i] = p.VMID
	}
	vms, err := a.vmsByID(ctx, ids)
	if err != nil {
		return contract.WavePage{}, err
	}
	page := contract.WavePage{Next: planned[len(planned)-1].ID}
	for _, p := range planned {
		if vm, ok := vms[p.VMID]; ok {
			page.Migrations = append(page.Migrations, contract.WaveMigration{Planned: p, VM: vm})
		} else {
			page.Missing = append(page.Missing, p.ID)
		}
	}
	return page, nil
}

// WaveBatches splits a wave's planned migrations (or those to retry) into batches.
func (a *Fleet) WaveBatches(ctx context.Context, in contract.WaveBatchesInput) (contract.WaveBatches, error) {
	return a.Store.WaveBatches(ctx, in)
}

// RecordWaveReport writes the end-of-wave report; written again, it is replaced.
func (a *Fleet) RecordWaveReport(ctx context.Context, in contract.WaveReportInput) (contract.WaveReport, error) {
	r, err := a.Store.RecordWaveReport(ctx, in)
	if err == nil {
		a.Logger.Info("wave report recorded", "wave", r.Wave, "planned", r.Planned, "succeeded", r.Outcomes.Succeeded,
			"failed", r.Outcomes.Failed, "breached", r.Outcomes.Breached, "bytes", r.Bytes, "connectors", len(r.Connectors))
	}
	return r, err
}

// RecordOutcome writes a finished migration into the history that feeds the forecast.
func (a *Fleet) RecordOutcome(ctx context.Context, m planning.MigrationRecord) error {
	a.Logger.Info("migration ended", "migration", m.ID, "vm", m.VMID, "site", m.Site, "connector", m.ConnectorID,
		"outcome", m.Outcome, "bytes", m.Bytes, "seconds", m.EndedAt.Sub(m.StartedAt).Seconds())
	return a.Store.InsertMigration(ctx, m)
}

// RecordBreach writes the breach as an anomaly event at the site, once.
func (a *Fleet) RecordBreach(ctx context.Context, in contract.RecordBreachInput) error {
	a.Logger.Warn("SLA breached", "migration", in.MigrationID, "site", in.Site, "connector", in.ConnectorID, "deadline", in.Deadline)
	return a.Store.InsertEvent(ctx, "sla-breach/"+in.MigrationID, planning.Event{
		Site: in.Site, Kind: "anomaly", Severity: "warning", Starts: in.Deadline, Ends: in.Deadline.Add(time.Minute), Source: "breach",
		Detail: fmt.Sprintf("migration %s on connector %s exceeded its %s maximum transfer time", in.MigrationID, in.ConnectorID, in.MaxTransfer),
	})
}
