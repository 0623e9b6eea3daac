package contract

import (
	"time"

	"github.com/pmo-dev/pmo/config"
)

// RetentionInput is one retention run: the settings and the time the windows are
// measured back from, fixed for the run so that a retry cuts at the same place.
type RetentionInput struct {
	Settings config.Retention
	Now      time.Time
	// Batch is the rows per transaction; zero means RetentionBatch.
	Batch int
}

// RetentionResult counts what a run did.
type RetentionResult struct {
	MetricsDeleted     int64
	MetricsFolded      int64 // raw samples folded into downsampled rows
	MetricsDownsampled int64 // downsampled rows written for them
	EventsDeleted      int64
	ForecastsDeleted   int64
	PlansDeleted       int64
	PlanChangesDeleted int64 // what events did to plans, kept as long as the plans
	AuditDeleted       int64 // the API's audit entries
}
