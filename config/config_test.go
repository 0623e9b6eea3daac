package config

import (
	"strings"
	"testing"
	"time"
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
