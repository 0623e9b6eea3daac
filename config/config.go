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
	return c, nil
}
