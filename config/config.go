// Package config reads PMO's settings from the environment. Every process uses it, so
// that one variable means the same thing everywhere.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/pmo-dev/pmo/objectstore"
)

// Config holds the settings shared by the worker, the web server, the connectors and the
// starter. Defaults match what `make run` starts.
type Config struct {
	// TemporalAddress is the host:port of the Temporal frontend.
	TemporalAddress string `env:"TEMPORAL_ADDRESS" envDefault:"127.0.0.1:7233"`
	// TemporalNamespace is the Temporal namespace every workflow lives in.
	TemporalNamespace string `env:"TEMPORAL_NAMESPACE" envDefault:"default"`
	// TemporalTLS says how to reach a Temporal frontend that needs TLS, a client
	// certificate or an API key (Temporal Cloud).
	TemporalTLS TemporalTLS
	// PayloadKeys, when set, encrypt every workflow payload (see docs/security.md).
	PayloadKeys PayloadKeys
	// TemporalUIURL is the Web UI's base address, used for links and printed at start;
	// its origin is the one the codec endpoint answers cross-origin calls from.
	TemporalUIURL string `env:"TEMPORAL_UI_URL" envDefault:"http://127.0.0.1:8233"`
	// DatabaseURL is the PostgreSQL connection string.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://pmo@127.0.0.1:55432/pmo?sslmode=disable"`
	// HTTPAddr is where the web server listens.
	HTTPAddr string `env:"PMO_HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	// MetricsAddr, when set, is where the worker serves its Prometheus metrics at
	// /metrics; it then starts its connectors with metrics of their own, found
	// through the files in <DataDir>/prometheus. The web server serves its metrics at
	// /metrics on HTTPAddr.
	MetricsAddr string `env:"PMO_METRICS_ADDR"`
	// Tick is how often each fleet workflow runs its planning loop.
	Tick time.Duration `env:"PMO_TICK" envDefault:"30s"`
	// Pool is the connector pool that the starter and web server address by default.
	Pool string `env:"PMO_POOL" envDefault:"default"`
	// DataDir holds connector destinations, demo disks and logs.
	DataDir string `env:"PMO_DATA_DIR" envDefault:".data"`
	// ForecastModel names the model the fleet forecasts arrivals and bytes with (see
	// starter forecast -model); empty means count for arrivals and the engine's default
	// for bytes (planning.ArrivalsModel).
	ForecastModel string `env:"PMO_FORECAST_MODEL"`
	// ConnectorBin is the connector executable that the process provisioner starts.
	ConnectorBin string `env:"PMO_CONNECTOR_BIN" envDefault:"bin/connector"`
	// Retention says how long metrics, events, forecasts and plans are kept, and how
	// often the retention schedule runs.
	Retention Retention
	// RateLimit bounds how fast each API key, and each address that fails to
	// authenticate, may call the web server.
	RateLimit RateLimit
	// HTTP bounds how long the web server gives a client and a call.
	HTTP HTTPTimeouts
	// CalendarHosts are the hosts (host or host:port) a calendar URL may name; empty
	// means any host whose addresses are public, never one of this network.
	CalendarHosts []string `env:"PMO_CALENDAR_HOSTS" envSeparator:","`
	// ObjectStore, when it names a bucket, is where connectors write their copies
	// instead of the folder <DataDir>/target (docs/connectors.md).
	ObjectStore ObjectStore
	// SiteLinks puts each site's connectors in a network namespace of the site's,
	// behind a link shaped to the site's uplink times SiteUplinkScale (package
	// sitenet; root only).
	SiteLinks       bool    `env:"PMO_SITE_LINKS"`
	SiteUplinkScale float64 `env:"PMO_SITE_UPLINK_SCALE" envDefault:"1"`
}

// ObjectStore is the S3-compatible store connectors write to. The worker holds its
// admin's keys and gives each connector it starts keys of its own, scoped to the
// connector's pool and site (PMO_S3_PREFIX, which only connectors have).
type ObjectStore struct {
	// Endpoint is the store's URL; empty means AWS's.
	Endpoint  string `env:"PMO_S3_ENDPOINT"`
	Region    string `env:"PMO_S3_REGION" envDefault:"us-east-1"`
	Bucket    string `env:"PMO_S3_BUCKET"`
	AccessKey string `env:"PMO_S3_ACCESS_KEY"`
	SecretKey string `env:"PMO_S3_SECRET_KEY"`
	// Prefix is the part of the bucket a connector writes under, <pool>/<site>.
	Prefix string `env:"PMO_S3_PREFIX"`
}

// On says whether copies go to the object store.
func (o ObjectStore) On() bool { return o.Bucket != "" }

// Store is the store's connection settings.
func (o ObjectStore) Store() objectstore.Config {
	return objectstore.Config{Endpoint: o.Endpoint, Region: o.Region, Bucket: o.Bucket, AccessKey: o.AccessKey, SecretKey: o.SecretKey}
}

// Check reports the first setting that cannot work, naming its variable.
func (o ObjectStore) Check() error {
	if !o.On() {
		return nil
	}
	switch {
	case o.AccessKey == "" || o.SecretKey == "":
		return errors.New("PMO_S3_BUCKET needs PMO_S3_ACCESS_KEY and PMO_S3_SECRET_KEY")
	case o.Prefix != "" && (strings.HasPrefix(o.Prefix, "/") || strings.HasSuffix(o.Prefix, "/") || strings.Contains(o.Prefix, "..")):
		return fmt.Errorf("PMO_S3_PREFIX must be <pool>/<site>, without a leading or trailing slash, got %q", o.Prefix)
	}
	if err := o.Store().Validate(); err != nil {
		return fmt.Errorf("PMO_S3_ENDPOINT: %w", err)
	}
	return nil
}

// HTTPTimeouts bound how long the web server holds a connection and waits on a call
// (docs/security.md, "Limits"), so that slow or idle clients cannot hold its
// connections and a call never waits on Temporal without end.
type HTTPTimeouts struct {
	// ReadHeader is how long a client has to send a request's headers; a connection
	// that has sent none, or half of them, is closed then.
	ReadHeader time.Duration `env:"PMO_HTTP_READ_HEADER_TIMEOUT" envDefault:"10s"`
	// Read is how long a client has to send a whole request, body included: an
	// import's 256 MiB need 0.5 MiB/s at the default.
	Read time.Duration `env:"PMO_HTTP_READ_TIMEOUT" envDefault:"10m"`
	// Idle is how long a kept-alive connection may wait for its next request.
	Idle time.Duration `env:"PMO_HTTP_IDLE_TIMEOUT" envDefault:"2m"`
	// Wait is how long a call waits on Temporal and PostgreSQL (a workflow's answer,
	// an update, a query) before it is answered 504; what it started goes on, and the
	// same call again finds it.
	Wait time.Duration `env:"PMO_HTTP_WAIT_TIMEOUT" envDefault:"1m"`
}

// Write is how long the server gives a call, from its headers to the end of its
// answer: a whole body's read, the wait, and a minute to write the answer.
func (h HTTPTimeouts) Write() time.Duration { return h.Read + h.Wait + time.Minute }

// Check reports the first setting that cannot work, naming its variable.
func (h HTTPTimeouts) Check() error {
	switch {
	case h.ReadHeader < 100*time.Millisecond:
		return fmt.Errorf("PMO_HTTP_READ_HEADER_TIMEOUT must be at least 100ms, got %s", h.ReadHeader)
	case h.Read < h.ReadHeader:
		return fmt.Errorf("PMO_HTTP_READ_TIMEOUT must be at least PMO_HTTP_READ_HEADER_TIMEOUT (%s), got %s", h.ReadHeader, h.Read)
	case h.Idle < time.Second:
		return fmt.Errorf("PMO_HTTP_IDLE_TIMEOUT must be at least 1s, got %s", h.Idle)
	case h.Wait < time.Second:
		return fmt.Errorf("PMO_HTTP_WAIT_TIMEOUT must be at least 1s, got %s", h.Wait)
	}
	return nil
}

// DefaultHTTPTimeouts is HTTPTimeouts with every variable unset.
func DefaultHTTPTimeouts() HTTPTimeouts {
	var h HTTPTimeouts
	if err := env.ParseWithOptions(&h, env.Options{Environment: map[string]string{}}); err != nil {
		panic(err) // the defaults above are constants
	}
	return h
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
	// Audit is how long the API's audit trail (api_audit) is kept; zero keeps it all,
	// as the settings of a schedule made before it existed do.
	Audit time.Duration `env:"PMO_RETENTION_AUDIT" envDefault:"8760h"`
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
	case r.Audit != 0 && r.Audit < 24*time.Hour:
		return fmt.Errorf("PMO_RETENTION_AUDIT must be at least 24h, or 0 to keep it all, got %s", r.Audit)
	}
	return nil
}

// TemporalTLS holds the TLS settings of the connection to Temporal. Certificates and
// keys are paths to PEM files, read when a process starts.
type TemporalTLS struct {
	// Enabled turns TLS on with the system's root CAs even when nothing else is set.
	Enabled bool `env:"TEMPORAL_TLS"`
	// Cert and Key are the client certificate and its private key, for mTLS.
	Cert string `env:"TEMPORAL_TLS_CERT"`
	Key  string `env:"TEMPORAL_TLS_KEY"`
	// CA is the CA bundle that signed the server's certificate; empty means the
	// system's roots.
	CA string `env:"TEMPORAL_TLS_CA"`
	// ServerName overrides the name the server's certificate must carry (by default
	// the host of TEMPORAL_ADDRESS).
	ServerName string `env:"TEMPORAL_TLS_SERVER_NAME"`
	// APIKey is a Temporal Cloud API key, sent as a bearer token; it needs TLS, so
	// setting it turns TLS on.
	APIKey string `env:"TEMPORAL_API_KEY"`
}

// On reports whether the connection uses TLS: asked for, or implied by a
// certificate, a CA, a server name or an API key.
func (t TemporalTLS) On() bool {
	return t.Enabled || t.Cert != "" || t.Key != "" || t.CA != "" || t.ServerName != "" || t.APIKey != ""
}

// Config reads the files and returns the TLS configuration to dial with, or nil when
// TLS is off. Errors name the variable at fault.
func (t TemporalTLS) Config() (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	c := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	switch {
	case t.Cert != "" && t.Key == "":
		return nil, fmt.Errorf("TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not: mTLS needs both the certificate and its key")
	case t.Key != "" && t.Cert == "":
		return nil, fmt.Errorf("TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is not: mTLS needs both the certificate and its key")
	case t.Cert != "":
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_CA: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TEMPORAL_TLS_CA: %s holds no PEM certificate", t.CA)
		}
	}
	return c, nil
}

// PayloadKeySize is the length of a payload key: AES-256.
const PayloadKeySize = 32

// PayloadKeys are the AES-256 keys that encrypt workflow payloads, each 32 bytes in
// standard base64 (`openssl rand -base64 32`). Payloads are encrypted with Current;
// Old keys only decrypt, so that a key can be replaced while histories written with
// the previous one are still read.
type PayloadKeys struct {
	Current string   `env:"PMO_PAYLOAD_KEY"`
	Old     []string `env:"PMO_PAYLOAD_KEYS_OLD" envSeparator:","`
}

// Decode returns the current key (nil when encryption is off) and the old ones.
// Errors name the variable at fault, never the key.
func (p PayloadKeys) Decode() (current []byte, old [][]byte, err error) {
	if p.Current == "" {
		if len(p.Old) > 0 {
			return nil, nil, fmt.Errorf("PMO_PAYLOAD_KEYS_OLD is set but PMO_PAYLOAD_KEY is not: old keys only decrypt, set the current one too")
		}
		return nil, nil, nil
	}
	if current, err = decodePayloadKey(p.Current); err != nil {
		return nil, nil, fmt.Errorf("PMO_PAYLOAD_KEY %w", err)
	}
	for i, s := range p.Old {
		k, err := decodePayloadKey(s)
		if err != nil {
			return nil, nil, fmt.Errorf("PMO_PAYLOAD_KEYS_OLD key %d %w", i+1, err)
		}
		old = append(old, k)
	}
	return current, old, nil
}

func decodePayloadKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("must be %d bytes in base64 (openssl rand -base64 %d): it is not base64", PayloadKeySize, PayloadKeySize)
	}
	if len(k) != PayloadKeySize {
		return nil, fmt.Errorf("must be %d bytes in base64 (openssl rand -base64 %d), got %d bytes", PayloadKeySize, PayloadKeySize, len(k))
	}
	return k, nil
}

// UploadsDir is where the web server stages imported files for the worker to read: a
// folder of DataDir that both processes see.
func UploadsDir(c Config) string { return filepath.Join(c.DataDir, "uploads") }

// Origin is the scheme://host[:port] of a URL, as a browser sends it in the Origin
// header; the codec endpoints allow the Web UI's (TEMPORAL_UI_URL).
func Origin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return rawURL
	}
	return u.Scheme + "://" + u.Host
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
	if _, err := c.TemporalTLS.Config(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if _, _, err := c.PayloadKeys.Decode(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := c.RateLimit.Check(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := c.HTTP.Check(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := c.ObjectStore.Check(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if c.SiteUplinkScale <= 0 {
		return Config{}, fmt.Errorf("config: PMO_SITE_UPLINK_SCALE must be above 0, got %v", c.SiteUplinkScale)
	}
	return c, nil
}
