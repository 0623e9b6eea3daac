package activities

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

func TestRecordEventsRefusesOrSkipsUnknownSites(t *testing.T) {
	_, s := fleetFixture(t)
	a := &Events{Store: s, Logger: slog.Default()}
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	good := planning.KeyedEvent{Key: "ops-1", Event: planning.Event{Site: "fra1", Kind: "anomaly", Severity: "warning", Starts: now}}
	mars := planning.KeyedEvent{Key: "ops-2", Event: planning.Event{Site: "mars", Kind: "anomaly", Severity: "warning", Starts: now}}

	_, err := aenv.ExecuteActivity(a.RecordEvents, imports.EventBatch{Events: []planning.KeyedEvent{good, mars}})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, validation.NotFoundErrorType, appErr.Type())
	require.True(t, appErr.NonRetryable())
	var fe validation.Error
	require.NoError(t, appErr.Details(&fe))
	require.Equal(t, "[1].site", fe.Field)
	require.Contains(t, fe.Reason, "ams1, fra1", "the reason names the known sites")
	got, err := s.Events(t.Context(), now, now.Add(time.Hour))
	require.NoError(t, err)
	require.Empty(t, got, "a batch with a bad event records nothing")

	v, err := aenv.ExecuteActivity(a.RecordEvents, imports.EventBatch{Events: []planning.KeyedEvent{good, mars}, SkipUnknownSites: true})
	require.NoError(t, err)
	var res contract.RecordEventsResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, []planning.EventOutcome{{Key: "ops-1", Site: "fra1", Kind: "anomaly", Status: planning.EventRecorded}}, res.Outcomes)
	require.Equal(t, []planning.SkippedEvent{{Key: "ops-2", Site: "mars", Reason: "no site mars in PMO's inventory"}}, res.Skipped)
}

// An open anomaly event widens its site's demand in the plan, and the plan says which
// event did it.
func TestPredictWidensDemandForAnOpenAnomalyEvent(t *testing.T) {
	a, s := fleetFixture(t)
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	key := "alertmanager/cfb6233f59b105f3/2026-11-24T08:00:00Z"
	_, err := s.RecordEvents(t.Context(), []planning.KeyedEvent{{Key: key, Event: planning.Event{
		Site: "ams1", Kind: "anomaly", Severity: "critical", Starts: now.Add(-2 * time.Hour), Detail: "uplink drops packets", Source: "alertmanager"}}}, nil)
	require.NoError(t, err)
	demand := []planning.Demand{{Site: "ams1", Hour: now, AdhocMean: 2, AdhocLo: 1, AdhocHi: 3}, {Site: "fra1", Hour: now}}
	v, err := aenv.ExecuteActivity(a.Predict, worldQuery{Pool: "default", Now: now, Demand: demand, Size: "medium", LeadTime: 15 * time.Minute}, false)
	require.NoError(t, err)
	var plan planning.Plan
	require.NoError(t, v.Get(&plan))
	var named bool
	for _, r := range plan.Reasons {
		named = named || (strings.Contains(r, "ams1: anomaly") && strings.Contains(r, key) && strings.Contains(r, "× 1.5"))
	}
	require.True(t, named, "a reason names the event: %q", plan.Reasons)
	var open bool
	for _, b := range plan.Bottlenecks {
		open = open || (b.Site == "ams1" && b.Kind == "anomaly" && b.To.After(now))
	}
	require.True(t, open, "the open event is a bottleneck until the horizon: %+v", plan.Bottlenecks)
}
