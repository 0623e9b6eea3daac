package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SiteHour is one hour of a site's timeline. A nil field has no value for the hour:
// no forecast was made of it, it has not begun, or nothing ran.
type SiteHour struct {
	Hour time.Time `json:"hour"`
	// Forecast is the arrivals forecast for the hour (planned and the ad-hoc mean),
	// ForecastLo and ForecastHi its band: for an hour gone, the last forecast made
	// before it began; for the current hour and those ahead, the newest.
	Forecast   *float64 `json:"forecast,omitempty"`
	ForecastLo *float64 `json:"forecast_lo,omitempty"`
	ForecastHi *float64 `json:"forecast_hi,omitempty"`
	// Actual is how many migrations started at the site in the hour and have ended.
	Actual *int `json:"actual,omitempty"`
	// PlannedConnectors is what the plan wanted for the hour (site_plan_hours).
	PlannedConnectors *int `json:"planned_connectors,omitempty"`
	// LiveConnectors reported metrics in the hour; BusyConnectors were copying.
	LiveConnectors *int `json:"live_connectors,omitempty"`
	BusyConnectors *int `json:"busy_connectors,omitempty"`
}

// Timeline returns a site's hours from from, for hours hours: forecast against
// actual arrivals, and planned against running connectors. now separates the hours
// gone from those ahead. It is one statement with one index probe per hour and table.
func (s *Store) Timeline(ctx context.Context, pool, site string, from time.Time, hours int, now time.Time) ([]SiteHour, error) {
	from = from.Truncate(time.Hour)
	rows, err := s.Pool.Query(ctx, `
		SELECT h.hour, f.total, f.lo, f.hi,
			CASE WHEN h.hour <= $5 THEN a.n END,
			p.connectors,
			CASE WHEN h.hour <= $5 THEN u.live END, CASE WHEN h.hour <= $5 THEN u.busy END
		FROM generate_series($3::timestamptz, $3::timestamptz + ($4 - 1) * interval '1 hour', interval '1 hour') AS h (hour)
		LEFT JOIN LATERAL (
			SELECT planned + adhoc_mean AS total, planned + adhoc_lo AS lo, planned + adhoc_hi AS hi
			FROM forecasts
			WHERE pool = $1 AND site_id = $2 AND target_hour = h.hour
				AND (generated_at < h.hour OR h.hour >= date_trunc('hour', $5::timestamptz))
			ORDER BY generated_at DESC LIMIT 1) f ON true
		LEFT JOIN LATERAL (
			SELECT count(*)::int AS n FROM migrations m
			WHERE m.site_id = $2 AND m.started_at >= h.hour AND m.started_at < h.hour + interval '1 hour') a ON true
		LEFT JOIN site_plan_hours p ON p.pool = $1 AND p.site_id = $2 AND p.hour = h.hour
		LEFT JOIN LATERAL (
			SELECT count(DISTINCT m.connector_id)::int AS live,
				count(DISTINCT m.connector_id) FILTER (WHERE m.active_tasks > 0)::int AS busy
			FROM connectors c JOIN connector_metrics m ON m.connector_id = c.id
			WHERE c.pool = $1 AND c.site_id = $2 AND m.at >= h.hour AND m.at < h.hour + interval '1 hour') u ON true
		ORDER BY h.hour`, pool, site, from, hours, now)
	if err != nil {
		return nil, fmt.Errorf("store: timeline of %s: %w", site, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SiteHour, error) {
		var h SiteHour
		err := r.Scan(&h.Hour, &h.Forecast, &h.ForecastLo, &h.ForecastHi, &h.Actual, &h.PlannedConnectors, &h.LiveConnectors, &h.BusyConnectors)
		h.Hour = h.Hour.UTC()
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: timeline of %s: %w", site, err)
	}
	return out, nil
}
