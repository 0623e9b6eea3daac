package activities

import (
	"context"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/pmo-dev/pmo/contract"
)

// RetentionStore is what the retention activity deletes and downsamples through.
// *store.Store implements it on PostgreSQL; each call is one short transaction of at
// most about limit rows.
type RetentionStore interface {
	// DeleteMetricsBefore deletes connector metrics taken before a time.
	DeleteMetricsBefore(ctx context.Context, before time.Time, limit int) (int64, error)
	// DownsampleMetrics folds raw metrics samples taken before a time into one row per
	// connector and bucket; it returns the raw samples folded and the rows written.
	DownsampleMetrics(ctx context.Context, before time.Time, bucket time.Duration, limit int) (raw, rows int64, err error)
	// DeleteEventsEndedBefore deletes system events that ended before a time.
	DeleteEventsEndedBefore(ctx context.Context, before time.Time, limit int) (int64, error)
	// DeleteForecastsBefore deletes forecasts of hours before a time.
	DeleteForecastsBefore(ctx context.Context, before time.Time, limit int) (int64, error)
	// DeletePlansBefore deletes recorded plans generated before a time.
	DeletePlansBefore(ctx context.Context, before time.Time, limit int) (int64, error)
	// DeletePlanChangesBefore deletes the records of what events did to plans, made
	// before a time.
	DeletePlanChangesBefore(ctx context.Context, before time.Time, limit int) (int64, error)
	// DeleteAuditBefore deletes the API's audit entries made before a time.
	DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int64, error)
}

// Retention holds the retention activity and its dependencies.
type Retention struct {
	Store  RetentionStore
	Logger *slog.Logger
}

// NewRetention returns the retention activity.
func NewRetention(s RetentionStore, logger *slog.Logger) *Retention {
	return &Retention{Store: s, Logger: logger}
}

// RetentionBatch is how many rows one retention transaction touches by default: big
// enough to be quick, small enough not to hold locks for long.
const RetentionBatch = 5000

// ApplyRetention expires connector metrics older than Settings.Metrics, downsamples
// the rest older than Settings.MetricsRaw, and expires system events that ended more
// than Settings.Events ago, forecasts of hours more than Settings.Forecasts ago, and
// plans and the records of what events changed in them older than Settings.Plans, and
// the API's audit entries older than Settings.Audit. Migration history is never touched. It works in
// transactions of at most Batch rows and heartbeats after each, so a retry starts
// where the last attempt stopped and counts nothing twice (its counts cover only the
// attempt that returns them).
func (r *Retention) ApplyRetention(ctx context.Context, in contract.RetentionInput) (contract.RetentionResult, error) {
	set, batch := in.Settings, in.Batch
	if batch <= 0 {
		batch = RetentionBatch
	}
	var res contract.RetentionResult
	// Expire before downsampling, so that nothing is folded only to be deleted.
	steps := []struct {
		name string
		run  func() (int64, error)
		into *int64
		// whole is set where a batch ends on a bucket's edge, so it may fall short of
		// the limit with more to do; only an empty one is the last.
		whole bool
	}{
		{"metrics expired", func() (int64, error) {
			return r.Store.DeleteMetricsBefore(ctx, in.Now.Add(-set.Metrics), batch)
		}, &res.MetricsDeleted, false},
		{"metrics downsampled", func() (int64, error) {
			raw, rows, err := r.Store.DownsampleMetrics(ctx, in.Now.Add(-set.MetricsRaw), set.MetricsBucket, batch)
			res.MetricsDownsampled += rows
			return raw, err
		}, &res.MetricsFolded, true},
		{"events expired", func() (int64, error) {
			return r.Store.DeleteEventsEndedBefore(ctx, in.Now.Add(-set.Events), batch)
		}, &res.EventsDeleted, false},
		{"forecasts expired", func() (int64, error) {
			return r.Store.DeleteForecastsBefore(ctx, in.Now.Add(-set.Forecasts), batch)
		}, &res.ForecastsDeleted, false},
		{"plans expired", func() (int64, error) {
			return r.Store.DeletePlansBefore(ctx, in.Now.Add(-set.Plans), batch)
		}, &res.PlansDeleted, false},
		{"plan changes expired", func() (int64, error) {
			return r.Store.DeletePlanChangesBefore(ctx, in.Now.Add(-set.Plans), batch)
		}, &res.PlanChangesDeleted, false},
		{"audit expired", func() (int64, error) {
			if set.Audit == 0 { // kept for good
				return 0, nil
			}
			return r.Store.DeleteAuditBefore(ctx, in.Now.Add(-set.Audit), batch)
		}, &res.AuditDeleted, false},
	}
	for _, step := range steps {
		start := time.Now()
		for {
			n, err := step.run()
			if err != nil {
				return res, err
			}
			*step.into += n
			activity.RecordHeartbeat(ctx, res)
			if n == 0 || (!step.whole && n < int64(batch)) {
				break
			}
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
		r.Logger.Debug("retention step done", "step", step.name, "rows", *step.into, "seconds", time.Since(start).Seconds())
	}
	r.Logger.Info("retention applied", "metrics_expired", res.MetricsDeleted, "metrics_folded", res.MetricsFolded,
		"metrics_downsampled_rows", res.MetricsDownsampled, "events_expired", res.EventsDeleted,
		"forecasts_expired", res.ForecastsDeleted, "plans_expired", res.PlansDeleted, "plan_changes_expired", res.PlanChangesDeleted, "audit_expired", res.AuditDeleted)
	return res, nil
}
