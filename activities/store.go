package activities

import (
	"context"
	"time"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
)

// Store is what the fleet's activities read and write. *store.Store implements it on
// PostgreSQL. It is an interface so that this package, and the workflows that name its
// activities, carry no SQL.
type Store interface {
	// Sites returns every site, ordered by ID.
	Sites(ctx context.Context) ([]planning.SiteInfo, error)
	// SiteProfiles returns each site with its history since the given time.
	SiteProfiles(ctx context.Context, since time.Time) ([]planning.Site, error)
	// SLATiers returns every SLA tier.
	SLATiers(ctx context.Context) ([]planning.SLATier, error)
	// Events returns the system events that overlap [from, to), open ones included.
	Events(ctx context.Context, from, to time.Time) ([]planning.KeyedEvent, error)
	// InsertEvent records an event once per key.
	InsertEvent(ctx context.Context, key string, e planning.Event) error
	// HourlyHistory counts migration starts and their bytes per site and hour.
	HourlyHistory(ctx context.Context, sites []string, from time.Time, hours int) (arrivals, bytes [][]float64, err error)
	// InsertForecast records one hour's forecast.
	InsertForecast(ctx context.Context, pool string, generatedAt time.Time, lo, hi float64, demand []planning.Demand) error
	// ScoreForecasts records the actuals of the forecast hours that have passed.
	ScoreForecasts(ctx context.Context, pool string, now time.Time) (int64, error)
	// ForecastAccuracy summarises the scored forecasts per site.
	ForecastAccuracy(ctx context.Context, pool string, since time.Time) ([]planning.ForecastAccuracy, error)
	// InsertPlan records one tick's plan.
	InsertPlan(ctx context.Context, pool string, plan planning.Plan) error
	// UpsertConnector records a connector's desired state and size.
	UpsertConnector(ctx context.Context, pool string, c planning.Connector) error
	// ResetConnectorReady forgets a connector's readiness before it is started again.
	ResetConnectorReady(ctx context.Context, id string) error
	// SiteOutcomes sums each site's recent migrations beside its history.
	SiteOutcomes(ctx context.Context, base, recent time.Time) ([]planning.SiteOutcomes, error)
	// RateHistory returns the newest finished migrations, at most limit, with what the
	// rate model learns from.
	RateHistory(ctx context.Context, since time.Time, limit int) ([]planning.RateObservation, error)
	// ReadyDelays returns how long recent connector starts took to become ready, in
	// seconds.
	ReadyDelays(ctx context.Context, pool string, since time.Time, limit int) ([]float64, error)
	// ResourceSamples returns the pool's connector metrics since a time, newest first.
	ResourceSamples(ctx context.Context, pool string, since time.Time, limit int) ([]planning.ResourceSample, error)
	// TargetSpace returns the newest measure of the target storage's free space.
	TargetSpace(ctx context.Context, pool string, since time.Time) (planning.TargetSpace, error)
	// SetConnectorPID records the process that runs a connector.
	SetConnectorPID(ctx context.Context, id string, pid int) error
	// InsertConnectorMetrics stores a connector's samples at once, each once, and
	// says how many are new.
	InsertConnectorMetrics(ctx context.Context, id string, samples []planning.MetricSample) (int64, error)
	// ConnectorHealth returns what the given connectors last reported, in order.
	ConnectorHealth(ctx context.Context, ids []string) ([]planning.ConnectorReport, error)
	// RecordOverride writes an override and one audit entry, once per action.
	RecordOverride(ctx context.Context, pool string, o planning.Override, action, detail string, at time.Time) error
	// VM returns one VM of the inventory, or an error wrapping planning.ErrNotFound.
	VM(ctx context.Context, id string) (planning.VM, error)
	// WaveMigrations returns a page of a wave's planned migrations, by ID after after
	// and up to through (to the end when empty); with retry, only those to retry.
	WaveMigrations(ctx context.Context, wave, after, through string, limit int, retry bool) ([]planning.PlannedMigration, error)
	// WaveBatches splits a wave's planned migrations into batches by ID.
	WaveBatches(ctx context.Context, in contract.WaveBatchesInput) (contract.WaveBatches, error)
	// RecordWaveReport writes a wave's end-of-wave report and returns it.
	RecordWaveReport(ctx context.Context, in contract.WaveReportInput) (contract.WaveReport, error)
	// VMs returns the VMs of the inventory among ids, in one read, in no order.
	VMs(ctx context.Context, ids []string) ([]planning.VM, error)
	// Import writes a file's rows in one transaction; unknown sites and tiers reject
	// it with imports.Errors.
	Import(ctx context.Context, src imports.Source, progress func(done int)) (imports.Counts, error)
	// SavePlanned records a pool's planned migrations, each once per ID.
	SavePlanned(ctx context.Context, pool string, planned []planning.PlannedMigration, at time.Time) error
	// Planned returns a pool's planned migrations that have not arrived and are not
	// past their deadline.
	Planned(ctx context.Context, pool string, now time.Time) ([]planning.PlannedMigration, error)
	// PlannedArrived marks planned migrations as arrived.
	PlannedArrived(ctx context.Context, ids []string, at time.Time) error
	// InsertMigration records a finished migration once per ID; one whose ID was
	// planned is recorded as planned work.
	InsertMigration(ctx context.Context, m planning.MigrationRecord) error
}
