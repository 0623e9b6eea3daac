package imports_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
)

// The testdata payloads are what Alertmanager v0.35.0 sends: they were made by JSON
// encoding its notify/webhook Message (template.Data with version, groupKey and
// truncatedAlerts) with fingerprints computed by prometheus/common's LabelSet.
func TestAlertmanagerFiringAlertsOpenEventsAndResolvedOnesCloseThem(t *testing.T) {
	f, err := os.Open("testdata/alertmanager-firing.json")
	require.NoError(t, err)
	defer f.Close()
	events, skipped, err := imports.ReadAlertmanager(f, "")
	require.NoError(t, err)
	starts := time.Date(2026, 11, 25, 21, 14, 7, 512000000, time.UTC)
	require.Equal(t, []planning.KeyedEvent{{Key: "alertmanager/cfb6233f59b105f3/2026-11-25T21:14:07.512Z", Event: planning.Event{
		Site: "fra1", Kind: "anomaly", Severity: "critical", Starts: starts, Source: "alertmanager",
		Detail: "SiteUplinkDegraded: Uplink at fra1 drops packets (http://prometheus.example:9090/graph?g0.expr=rate%28pmo_transfer_errors_total%5B5m%5D%29+%3E+0.1&g0.tab=1)",
	}}}, events)
	require.True(t, events[0].Open(), "a firing alert lasts until it resolves")
	require.Len(t, skipped, 1, "the alert without a site label is skipped, not an error")
	require.Contains(t, skipped[0].Reason, `no "site" label`)

	f2, err := os.Open("testdata/alertmanager-resolved.json")
	require.NoError(t, err)
	defer f2.Close()
	resolved, skipped, err := imports.ReadAlertmanager(f2, "site")
	require.NoError(t, err)
	require.Empty(t, skipped)
	require.Len(t, resolved, 1)
	require.Equal(t, events[0].Key, resolved[0].Key, "the resolved alert has the firing one's key")
	require.Equal(t, starts.Add(17*time.Minute+3*time.Second), resolved[0].Ends)
}

func TestAlertmanagerSiteLabelAndSeverities(t *testing.T) {
	body := `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A","datacenter":"ams1","severity":"page"},
		"annotations":{},"startsAt":"2026-11-25T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f1"}],"futureField":1}`
	events, skipped, err := imports.ReadAlertmanager(strings.NewReader(body), "datacenter")
	require.NoError(t, err)
	require.Empty(t, skipped)
	require.Equal(t, "ams1", events[0].Site)
	require.Equal(t, "critical", events[0].Severity)
	for label, want := range map[string]string{"warning": "warning", "Warn": "warning", "info": "info", "": "info", "none": "info", "error": "critical"} {
		require.Equal(t, want, imports.AlertSeverity(label), label)
	}
	_, _, err = imports.ReadAlertmanager(strings.NewReader(`{"version":"3"}`), "")
	require.ErrorContains(t, err, "version")
}
