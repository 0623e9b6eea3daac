package config

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pmo-dev/pmo/planning"
)

func TestRetentionDefaultsWorkAndBadSettingsNameTheirVariable(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Retention.Check(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for variable, change := range map[string]func(*Retention){
		"PMO_RETENTION_EVERY":          func(r *Retention) { r.Every = time.Second },
		"PMO_RETENTION_METRICS_BUCKET": func(r *Retention) { r.MetricsBucket = 1500 * time.Millisecond },
		"PMO_RETENTION_METRICS_RAW":    func(r *Retention) { r.MetricsRaw = 30 * time.Minute },
		"PMO_RETENTION_METRICS":        func(r *Retention) { r.Metrics = 24 * time.Hour },
		"PMO_RETENTION_EVENTS":         func(r *Retention) { r.Events = 0 },
		"PMO_RETENTION_FORECASTS":      func(r *Retention) { r.Forecasts = 6 * 24 * time.Hour },
		"PMO_RETENTION_PLANS":          func(r *Retention) { r.Plans = time.Minute },
		"PMO_RETENTION_AUDIT":          func(r *Retention) { r.Audit = time.Hour },
	} {
		r := c.Retention
		change(&r)
		err := r.Check()
		if err == nil || !strings.HasPrefix(err.Error(), variable) {
			t.Errorf("%s: got %v, want an error naming it first", variable, err)
		}
	}
	t.Setenv("PMO_RETENTION_FORECASTS", "24h")
	if _, err := Load(); err == nil {
		t.Error("Load accepted forecasts kept for a day")
	}
}

func TestRateLimitDefaultsWorkAndBadSettingsNameTheirVariable(t *testing.T) {
	d := DefaultRateLimit()
	if err := d.Check(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if d.PerKey < 20 {
		t.Errorf("the default per-key rate %g is below make load's 20 requests/s", d.PerKey)
	}
	for variable, change := range map[string]func(*RateLimit){
		"PMO_RATE_LIMIT":                 func(r *RateLimit) { r.PerKey = 0 },
		"PMO_RATE_BURST":                 func(r *RateLimit) { r.Burst = 0 },
		"PMO_RATE_LIMIT_UNAUTHENTICATED": func(r *RateLimit) { r.Unauthenticated = -1 },
		"PMO_RATE_BURST_UNAUTHENTICATED": func(r *RateLimit) { r.UnauthenticatedBurst = 0 },
	} {
		r := d
		change(&r)
		err := r.Check()
		if err == nil || !strings.HasPrefix(err.Error(), variable+" ") {
			t.Errorf("%s: got %v, want an error naming it first", variable, err)
		}
	}
	t.Setenv("PMO_RATE_LIMIT", "7.5")
	c, err := Load()
	if err != nil || c.RateLimit.PerKey != 7.5 {
		t.Errorf("PMO_RATE_LIMIT=7.5: got %g, %v", c.RateLimit.PerKey, err)
	}
	t.Setenv("PMO_RATE_LIMIT", "NaN")
	if _, err := Load(); err == nil {
		t.Error("Load accepted PMO_RATE_LIMIT=NaN")
	}
}

func TestHTTPTimeoutDefaultsWorkAndBadSettingsNameTheirVariable(t *testing.T) {
	d := DefaultHTTPTimeouts()
	if err := d.Check(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if d.Write() <= d.Read+d.Wait {
		t.Errorf("the write timeout %s leaves a call that read its body for %s and waited %s no time to answer", d.Write(), d.Read, d.Wait)
	}
	for variable, change := range map[string]func(*HTTPTimeouts){
		"PMO_HTTP_READ_HEADER_TIMEOUT": func(h *HTTPTimeouts) { h.ReadHeader = 0 },
		"PMO_HTTP_READ_TIMEOUT":        func(h *HTTPTimeouts) { h.Read = h.ReadHeader / 2 },
		"PMO_HTTP_IDLE_TIMEOUT":        func(h *HTTPTimeouts) { h.Idle = 0 },
		"PMO_HTTP_WAIT_TIMEOUT":        func(h *HTTPTimeouts) { h.Wait = -time.Second },
	} {
		h := d
		change(&h)
		err := h.Check()
		if err == nil || !strings.HasPrefix(err.Error(), variable+" ") {
			t.Errorf("%s: got %v, want an error naming it first", variable, err)
		}
	}
	t.Setenv("PMO_HTTP_READ_HEADER_TIMEOUT", "2s")
	c, err := Load()
	if err != nil || c.HTTP.ReadHeader != 2*time.Second {
		t.Errorf("PMO_HTTP_READ_HEADER_TIMEOUT=2s: got %s, %v", c.HTTP.ReadHeader, err)
	}
	t.Setenv("PMO_HTTP_WAIT_TIMEOUT", "0s")
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "PMO_HTTP_WAIT_TIMEOUT") {
		t.Errorf("Load with PMO_HTTP_WAIT_TIMEOUT=0s: got %v", err)
	}
}

// Bad TLS and payload-key settings stop Load with an error that names the variable,
// and never shows a key.
func TestTemporalTLSAndPayloadKeySettingsAreCheckedAtLoad(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString(make([]byte, 32))
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"TEMPORAL_TLS_CERT": notPEM}, "TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not"},
		{map[string]string{"TEMPORAL_TLS_KEY": notPEM}, "TEMPORAL_TLS_KEY is set but TEMPORAL_TLS_CERT is not"},
		{map[string]string{"TEMPORAL_TLS_CERT": notPEM, "TEMPORAL_TLS_KEY": notPEM}, "TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY:"},
		{map[string]string{"TEMPORAL_TLS_CA": filepath.Join(dir, "missing.pem")}, "TEMPORAL_TLS_CA: open"},
		{map[string]string{"TEMPORAL_TLS_CA": notPEM}, "TEMPORAL_TLS_CA: " + notPEM + " holds no PEM certificate"},
		{map[string]string{"PMO_PAYLOAD_KEY": "not base64!"}, "PMO_PAYLOAD_KEY must be 32 bytes in base64 (openssl rand -base64 32): it is not base64"},
		{map[string]string{"PMO_PAYLOAD_KEY": short}, "PMO_PAYLOAD_KEY must be 32 bytes in base64 (openssl rand -base64 32), got 16 bytes"},
		{map[string]string{"PMO_PAYLOAD_KEYS_OLD": key}, "PMO_PAYLOAD_KEYS_OLD is set but PMO_PAYLOAD_KEY is not"},
		{map[string]string{"PMO_PAYLOAD_KEY": key, "PMO_PAYLOAD_KEYS_OLD": key + "," + short}, "PMO_PAYLOAD_KEYS_OLD key 2 must be 32 bytes"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := Load()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), short) {
				t.Fatalf("the error shows a key: %v", err)
			}
		})
	}
}

// Without TLS settings there is no TLS; an API key alone turns it on with the system's
// roots; the payload keys decode to the bytes they encode.
func TestTemporalTLSIsOnWhenASettingNeedsIt(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if tc, err := c.TemporalTLS.Config(); err != nil || tc != nil {
		t.Fatalf("defaults: TLS config %v, %v; want none", tc, err)
	}
	t.Setenv("TEMPORAL_API_KEY", "cloud-key")
	t.Setenv("TEMPORAL_TLS_SERVER_NAME", "ns.acct.tmprl.cloud")
	k1, k2 := make([]byte, 32), make([]byte, 32)
	k1[0], k2[0] = 1, 2
	t.Setenv("PMO_PAYLOAD_KEY", base64.StdEncoding.EncodeToString(k1))
	t.Setenv("PMO_PAYLOAD_KEYS_OLD", base64.StdEncoding.EncodeToString(k2))
	if c, err = Load(); err != nil {
		t.Fatal(err)
	}
	tc, err := c.TemporalTLS.Config()
	if err != nil || tc == nil || tc.RootCAs != nil || tc.ServerName != "ns.acct.tmprl.cloud" || len(tc.Certificates) != 0 {
		t.Fatalf("API key: TLS config %+v, %v; want TLS with the system roots and the server name", tc, err)
	}
	current, old, err := c.PayloadKeys.Decode()
	if err != nil || !bytes.Equal(current, k1) || len(old) != 1 || !bytes.Equal(old[0], k2) {
		t.Fatalf("payload keys: %v %v %v", current, old, err)
	}
}

// The fleet's planning interval by default is the one the simulator and the
// workflow's own defaults share.
func TestTheDefaultTickIsPlanningsDefault(t *testing.T) {
	t.Setenv("PMO_TICK", "")
	os.Unsetenv("PMO_TICK")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.Tick != planning.DefaultTick {
		t.Fatalf("PMO_TICK defaults to %s, planning.DefaultTick is %s", c.Tick, planning.DefaultTick)
	}
}
