package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store/storetest"
)

func TestEventsAreRecordedOnceClosedAndCancelled(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	_, err := s.Pool.Exec(ctx, `INSERT INTO sites VALUES ('fra1', 'Frankfurt', 'eu', 1e9), ('ams1', 'Amsterdam', 'eu', 1e9)`)
	require.NoError(t, err)
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	open := planning.KeyedEvent{Key: "alertmanager/abc/" + t0.Format(time.RFC3339), Event: planning.Event{
		Site: "fra1", Kind: "anomaly", Severity: "critical", Starts: t0, Detail: "uplink drops packets", Source: "alertmanager"}}
	window := planning.KeyedEvent{Key: "ops-42", Event: planning.Event{
		Site: "ams1", Kind: "maintenance", Severity: "warning", Starts: t0.Add(24 * time.Hour), Ends: t0.Add(26 * time.Hour), Detail: "firmware"}}

	out, err := s.RecordEvents(ctx, []planning.KeyedEvent{open, window}, nil)
	require.NoError(t, err)
	require.Equal(t, []planning.EventOutcome{
		{Key: open.Key, Site: "fra1", Kind: "anomaly", Status: planning.EventRecorded},
		{Key: "ops-42", Site: "ams1", Kind: "maintenance", Status: planning.EventRecorded}}, out)
	out, err = s.RecordEvents(ctx, []planning.KeyedEvent{open, window}, nil)
	require.NoError(t, err)
	require.Equal(t, planning.EventUnchanged, out[0].Status, "the same events again change nothing")
	require.Equal(t, planning.EventUnchanged, out[1].Status)
	var n int
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM system_events`).Scan(&n))
	require.Equal(t, 2, n)

	// An open event is found however late the window, and keeps its source.
	got, err := s.Events(ctx, t0.Add(100*time.Hour), t0.Add(101*time.Hour))
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, open.Key, got[0].Key)
	require.True(t, got[0].Open())
	require.Equal(t, "alertmanager", got[0].Source)
	got, err = s.Events(ctx, t0.Add(-2*time.Hour), t0.Add(-time.Hour))
	require.NoError(t, err)
	require.Empty(t, got, "an open event starts when it starts")

	// The alert resolved: the same key with an end closes it, once.
	resolved := open
	resolved.Ends = t0.Add(17 * time.Minute)
	out, err = s.RecordEvents(ctx, []planning.KeyedEvent{resolved}, nil)
	require.NoError(t, err)
	require.Equal(t, planning.EventClosed, out[0].Status)
	out, err = s.RecordEvents(ctx, []planning.KeyedEvent{resolved}, nil)
	require.NoError(t, err)
	require.Equal(t, planning.EventUnchanged, out[0].Status)
	got, err = s.Events(ctx, t0.Add(time.Hour), t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.Empty(t, got, "a closed event no longer covers later hours")
	got, err = s.Events(ctx, t0, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, t0.Add(17*time.Minute), got[0].Ends.UTC())

	// A close never makes an event longer; a close before the start cancels it.
	out, err = s.RecordEvents(ctx, nil, []planning.EventClose{{Key: open.Key, At: t0.Add(time.Hour)}, {Key: "ops-42", At: t0}, {Key: "nope", At: t0}})
	require.NoError(t, err)
	require.Equal(t, []string{planning.EventUnchanged, planning.EventCancelled, planning.EventNotFound},
		[]string{out[0].Status, out[1].Status, out[2].Status})
	got, err = s.Events(ctx, t0.Add(24*time.Hour), t0.Add(26*time.Hour))
	require.NoError(t, err)
	require.Empty(t, got, "a cancelled window is not planned around")

	// A bad event rolls the whole batch back.
	_, err = s.RecordEvents(ctx, []planning.KeyedEvent{
		{Key: "good", Event: planning.Event{Site: "fra1", Kind: "anomaly", Severity: "info", Starts: t0}},
		{Key: "bad", Event: planning.Event{Site: "mars", Kind: "anomaly", Severity: "info", Starts: t0}}}, nil)
	require.Error(t, err)
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM system_events WHERE source_key = 'good'`).Scan(&n))
	require.Zero(t, n, "nothing of a bad batch is written")

	// Plan changes are recorded once.
	changes := []planning.EventPlanChange{{EventKey: open.Key, At: t0, Site: "fra1", Before: 1, After: 2, Detail: "fra1: connector target 1 → 2"}}
	require.NoError(t, s.InsertPlanChanges(ctx, "default", changes))
	require.NoError(t, s.InsertPlanChanges(ctx, "default", changes))
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT count(*) FROM event_plan_changes WHERE event_key = $1 AND connectors_after = 2`, open.Key).Scan(&n))
	require.Equal(t, 1, n)
}

// A calendar may move its own events; an operator's event with a known key stays as it
// was recorded.
func TestACalendarMovesItsOwnEventsOnly(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	_, err := s.Pool.Exec(ctx, `INSERT INTO sites VALUES ('fra1', 'Frankfurt', 'eu', 1e9)`)
	require.NoError(t, err)
	t0 := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	cal := planning.KeyedEvent{Key: "ics/ops/patch@example.com/" + t0.Format(time.RFC3339), Event: planning.Event{
		Site: "fra1", Kind: "maintenance", Severity: "info", Starts: t0, Ends: t0.Add(2 * time.Hour), Detail: "patching", Source: planning.SourceCalendar}}
	ops := planning.KeyedEvent{Key: "ops-1", Event: planning.Event{
		Site: "fra1", Kind: "maintenance", Severity: "info", Starts: t0, Ends: t0.Add(2 * time.Hour), Detail: "firmware"}}
	_, err = s.RecordEvents(ctx, []planning.KeyedEvent{cal, ops}, nil)
	require.NoError(t, err)

	movedCal, movedOps := cal, ops
	movedCal.Starts, movedCal.Ends = t0.Add(time.Hour), t0.Add(4*time.Hour)
	movedOps.Starts, movedOps.Ends = t0.Add(time.Hour), t0.Add(4*time.Hour)
	out, err := s.RecordEvents(ctx, []planning.KeyedEvent{movedCal, movedOps}, nil)
	require.NoError(t, err)
	require.Equal(t, planning.EventUpdated, out[0].Status)
	require.Equal(t, planning.EventUnchanged, out[1].Status, "only a calendar moves an event with a known key")
	out, err = s.RecordEvents(ctx, []planning.KeyedEvent{movedCal}, nil)
	require.NoError(t, err)
	require.Equal(t, planning.EventUnchanged, out[0].Status)

	got, err := s.Events(ctx, t0, t0.Add(5*time.Hour))
	require.NoError(t, err)
	require.Len(t, got, 2)
	for _, e := range got {
		if e.Key == cal.Key {
			require.Equal(t, movedCal.Starts, e.Starts.UTC())
			require.Equal(t, movedCal.Ends, e.Ends.UTC())
		} else {
			require.Equal(t, ops.Starts, e.Starts.UTC())
		}
	}
}
