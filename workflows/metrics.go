package workflows

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/planning"
)

// PMO's own metrics. Workflows record them through Temporal's metrics handler, which
// records nothing while a workflow replays, so each is counted once; a worker started
// with PMO_METRICS_ADDR serves them beside the Temporal SDK's (docs/operations.md,
// where their Prometheus names are).
const (
	// MetricConnectorsPlanned is a gauge {pool, site}: the connectors the plan wants.
	MetricConnectorsPlanned = "pmo_connectors_planned"
	// MetricConnectors is a gauge {pool, site, state}: the connectors there are.
	MetricConnectors = "pmo_connectors"
	// MetricForecastMAE and MetricForecastCoverage are gauges {pool, site}: the past
	// week's mean absolute error of the arrivals forecast, in migrations an hour, and
	// the share of hours whose arrivals fell in its band.
	MetricForecastMAE      = "pmo_forecast_mae"
	MetricForecastCoverage = "pmo_forecast_coverage"
	// MetricScalingDecisions is a counter {pool, site, action, rule}: connectors
	// started, drained and stopped, by what made the decision (planning.Rule...,
	// planning.Bound...).
	MetricScalingDecisions = "pmo_scaling_decisions"
	// MetricMigrationWait is a timer {pool, site}: how long a migration waited for
	// its first connector.
	MetricMigrationWait = "pmo_migration_wait"
	// MetricMigrations is a counter {pool, site, outcome}: migrations ended.
	MetricMigrations = "pmo_migrations"
	// MetricSLABreaches is a counter {pool, site, tier}: migrations past their
	// maximum transfer time.
	MetricSLABreaches = "pmo_sla_breaches"
	// MetricBytesMoved is a counter {pool, site}: the bytes of the migrations that
	// ended with their copy done.
	MetricBytesMoved = "pmo_bytes_moved"
)

// connectorStates are the states MetricConnectors reports, zero ones included, so
// that a state that empties drops to zero rather than keeping its last value.
var connectorStates = []planning.ConnectorState{planning.StateWarming, planning.StateWarm, planning.StateActive,
	planning.StateDraining, planning.StateFailed, planning.StateUnhealthy}

// recordPlanMetrics sets the fleet's gauges after a plan: per site, what it plans and
// how its forecast has done.
func (f *fleet) recordPlanMetrics(ctx workflow.Context, plan planning.Plan) {
	m := workflow.GetMetricsHandler(ctx)
	for _, site := range f.st.Sites {
		tags := map[string]string{"pool": f.in.Pool, "site": site}
		planned := 0
		for _, t := range plan.Targets {
			if t.Site == site {
				planned = t.Connectors
			}
		}
		m.WithTags(tags).Gauge(MetricConnectorsPlanned).Update(float64(planned))
		for _, a := range plan.ForecastAccuracy {
			if a.Site == site && a.Scored > 0 {
				m.WithTags(tags).Gauge(MetricForecastMAE).Update(a.MAE)
				m.WithTags(tags).Gauge(MetricForecastCoverage).Update(a.Coverage)
			}
		}
	}
}

// recordConnectorMetrics sets the connectors gauge: per site and state, how many
// there are, each time the fleet has looked at them.
func (f *fleet) recordConnectorMetrics(ctx workflow.Context) {
	m := workflow.GetMetricsHandler(ctx)
	for _, site := range f.st.Sites {
		for _, state := range connectorStates {
			n := 0
			for _, c := range f.st.Connectors {
				if c.Site == site && c.State == state {
					n++
				}
			}
			m.WithTags(map[string]string{"pool": f.in.Pool, "site": site, "state": string(state)}).Gauge(MetricConnectors).Update(float64(n))
		}
	}
}

// countDecision counts one scaling decision.
func (f *fleet) countDecision(ctx workflow.Context, site, action, rule string) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"pool": f.in.Pool, "site": site, "action": action, "rule": rule}).
		Counter(MetricScalingDecisions).Inc(1)
}

// metrics is the migration's metrics handler, tagged with its pool and site.
func (m *migration) metrics(ctx workflow.Context) client.MetricsHandler {
	return workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"pool": m.in.Pool, "site": m.in.Site})
}

// recordEnd counts an ended migration, and its bytes when its copy was done.
func (m *migration) recordEnd(ctx workflow.Context, outcome string, bytes int64) {
	h := m.metrics(ctx)
	h.WithTags(map[string]string{"outcome": outcome}).Counter(MetricMigrations).Inc(1)
	if bytes > 0 {
		h.Counter(MetricBytesMoved).Inc(bytes)
	}
}

// recordWait times how long the migration waited for its first connector.
func (m *migration) recordWait(ctx workflow.Context, waited time.Duration) {
	m.metrics(ctx).Timer(MetricMigrationWait).Record(waited)
}
