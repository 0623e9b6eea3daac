// Package config reads PMO's settings from the environment. Every process uses it, so
// that one variable means the same thing everywhere.
package config

import (
	"fmt"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config holds the settings shared by the worker, the web server, the connectors and the
// starter. Defaults match what `make run` starts.
type Config struct {
	// TemporalAddress is the host:port of the Temporal frontend.
	TemporalAddress string `env:"TEMPORAL_ADDRESS" envDefault:"127.0.0.1:7233"`
	// TemporalNamespace is the Temporal namespace every workflow lives in.
	TemporalNamespace string `env:"TEMPORAL_NAMESPACE" envDefault:"default"`
	// TemporalUIURL is the Web UI's base address, used for links and printed at start.
	TemporalUIURL string `env:"TEMPORAL_UI_URL" envDefault:"http://127.0.0.1:8233"`
	// DatabaseURL is the PostgreSQL connection string.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://pmo@127.0.0.1:55432/pmo?sslmode=disable"`
	// HTTPAddr is where the web server listens.
	HTTPAddr string `env:"PMO_HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	// Tick is how often each fleet workflow runs its planning loop.
	Tick time.Duration `env:"PMO_TICK" envDefault:"30s"`
	// Pool is the connector pool that the starter and web server address by default.
	Pool string `env:"PMO_POOL" envDefault:"default"`
	// DataDir holds connector destinations, demo disks and logs.
	DataDir string `env:"PMO_DATA_DIR" envDefault:".data"`
	// ForecastModel names the model the fleet forecasts with (see starter forecast
	// -model); empty means the engine's default.
	ForecastModel string `env:"PMO_FORECAST_MODEL"`
	// ConnectorBin is the connector executable that the process provisioner starts.
	ConnectorBin string `env:"PMO_CONNECTOR_BIN" envDefault:"bin/connector"`
	// Retention says how long metrics, events, forecasts and plans are kept, and how
	// often the retention schedule runs.
	Retention Retention
	// RateLimit bounds how fast each API key, and each address that fails to
	// authenticate, may call the web server.
	RateLimit RateLimit
}

// RateLimit holds the web server's token buckets (docs/security.md, "Rate limits").
// The defaults leave room for a busy operator and `make load`'s 20 requests/s.
type RateLimit struct {
	// PerKey is how many requests a second each API key may make, on average.
	PerKey float64 `env:"PMO_RATE_LIMIT" envDefault:"50"`
	// Burst is how many requests a key may make at once after a quiet spell.
	Burst int `env:"PMO_RATE_BURST" envDefault:"100"`
	// Unauthenticated is how many requests a second one client address may make
	// without a valid key (answered 401) before it is answered 429.
	Unauthenticated float64 `env:"PMO_RATE_LIMIT_UNAUTHENTICATED" envDefault:"5"`
	// UnauthenticatedBurst is the burst of such requests an address may make.
	UnauthenticatedBurst int `env:"PMO_RATE_BURST_UNAUTHENTICATED" envDefault:"20"`
}

// DefaultRateLimit is RateLimit with every variable unset.
func DefaultRateLimit() RateLimit {
	var r RateLimit
	if err := env.ParseWithOptions(&r, env.Options{Environment: map[string]string{}}); err != nil {
		panic(err) // the defaults above are constants
	}
	return r
}

// Check reports the first setting that cannot work, naming its variable.
func (r RateLimit) Check() error {
	switch {
	case !(r.PerKey > 0):
		return fmt.Errorf("PMO_RATE_LIMIT must be a positive number of requests a second, got %g", r.PerKey)
	case r.Burst < 1:
		return fmt.Errorf("PMO_RATE_BURST must be at least 1, got %d", r.Burst)
	case !(r.Unauthenticated > 0):
		return fmt.Errorf("PMO_RATE_LIMIT_UNAUTHENTICATED must be a positive number of requests a second, got %g", r.Unauthenticated)
	case r.UnauthenticatedBurst < 1:
		return fmt.Errorf("PMO_RATE_BURST_UNAUTHENTICATED must be at least 1, got %d", r.UnauthenticatedBurst)
	}
	return nil
}

// Retention holds the retention schedule's settings. Migration history is kept for
// good; these bound everything else. Durations are Go durations ("168h", not "7d").
type Retention struct {
	// Every is how often the pmo-retention schedule runs.
	Every time.Duration `env:"PMO_RETENTION_EVERY" envDefault:"1h"`
	// MetricsRaw is how long connector metrics are kept as sampled; older samples are
	// folded into one row per connector and MetricsBucket. The resource model reads
	// raw samples of the last week (activities.AccuracyWindow).
	MetricsRaw time.Duration `env:"PMO_RETENTION_METRICS_RAW" envDefault:"168h"`
	// MetricsBucket is the width of a downsampled metrics row.
	MetricsBucket time.Duration `env:"PMO_RETENTION_METRICS_BUCKET" envDefault:"1h"`
	// Metrics is how long connector metrics are kept at all.
	Metrics time.Duration `env:"PMO_RETENTION_METRICS" envDefault:"2160h"`
	// Events is how long a system event is kept after it ended; open events are kept.
	Events time.Duration `env:"PMO_RETENTION_EVENTS" envDefault:"4320h"`
	// Forecasts is how long a forecast is kept after the hour it forecast.
	Forecasts time.Duration `env:"PMO_RETENTION_FORECASTS" envDefault:"720h"`
	// Plans is how long the fleet's recorded plans are kept.
	Plans time.Duration `env:"PMO_RETENTION_PLANS" envDefault:"720h"`
}

// MinForecastRetention is the shortest forecast retention allowed: the fleet scores
// its forecasts of the last week (activities.AccuracyWindow, which a test holds to it).
const MinForecastRetention = 7 * 24 * time.Hour

// Check reports the first setting that cannot work, naming its variable.
func (r Retention) Check() error {
	switch {
	case r.Every < time.Minute:
		return fmt.Errorf("PMO_RETENTION_EVERY must be at least 1m, got %s", r.Every)
	case r.MetricsBucket < time.Minute || r.MetricsBucket%time.Second != 0:
		return fmt.Errorf("PMO_RETENTION_METRICS_BUCKET must be whole seconds, at least 1m, got %s", r.MetricsBucket)
	case r.MetricsRaw < r.MetricsBucket:
		return fmt.Errorf("PMO_RETENTION_METRICS_RAW must be at least PMO_RETENTION_METRICS_BUCKET (%s), got %s", r.MetricsBucket, r.MetricsRaw)
	case r.Metrics < r.MetricsRaw:
		return fmt.Errorf("PMO_RETENTION_METRICS must be at least PMO_RETENTION_METRICS_RAW (%s), got %s", r.MetricsRaw, r.Metrics)
	case r.Events < time.Hour:
		return fmt.Errorf("PMO_RETENTION_EVENTS must be at least 1h, got %s", r.Events)
	case r.Forecasts < MinForecastRetention:
		return fmt.Errorf("PMO_RETENTION_FORECASTS must be at least %s, the forecast accuracy window, got %s", MinForecastRetention, r.Forecasts)
	case r.Plans < time.Hour:
		return fmt.Errorf("PMO_RETENTION_PLANS must be at least 1h, got %s", r.Plans)
	}
	return nil
}

// Load reads the environment and checks the values that cannot be left to fail later.
func Load() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if c.Tick < time.Second {
		return Config{}, fmt.Errorf("config: PMO_TICK must be at least 1s, got %s", c.Tick)
	}
	if c.Pool == "" {
		return Config{}, fmt.Errorf("config: PMO_POOL must not be empty")
	}
	if err := c.Retention.Check(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := c.RateLimit.Check(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}
