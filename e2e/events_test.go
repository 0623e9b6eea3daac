package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/workflows"
)

// planView is what the test reads of GET /plan.
type planView struct {
	Targets []struct {
		Site       string `json:"site"`
		Connectors int    `json:"connectors"`
	} `json:"targets"`
	Bottlenecks []struct {
		Site   string `json:"site"`
		Kind   string `json:"kind"`
		Detail string `json:"detail"`
	} `json:"bottlenecks"`
	GeneratedAt time.Time `json:"generated_at"`
}

// anomalyNaming reports whether the plan has an anomaly bottleneck at site that names
// the event.
func (p planView) anomalyNaming(site, key string) bool {
	return slices.ContainsFunc(p.Bottlenecks, func(b struct {
		Site   string `json:"site"`
		Kind   string `json:"kind"`
		Detail string `json:"detail"`
	}) bool {
		return b.Site == site && b.Kind == "anomaly" && strings.Contains(b.Detail, key) && strings.Contains(b.Detail, "× 1.5")
	})
}

type eventsAnswer struct {
	Events []struct {
		ID     string `json:"id"`
		Site   string `json:"site"`
		Status string `json:"status"`
	} `json:"events"`
	Skipped []struct {
		ID     string `json:"id"`
		Reason string `json:"reason"`
	} `json:"skipped"`
	Fleets []string `json:"fleets"`
}

type planChanges struct {
	Changes []struct {
		EventID string `json:"event_id"`
		Site    string `json:"site"`
		Before  int    `json:"connectors_before"`
		After   int    `json:"connectors_after"`
		Detail  string `json:"detail"`
	} `json:"changes"`
}

// A real Alertmanager notification, posted to a running system, changes the fleet's
// plan at once: the alert's site gets the anomaly margin, and the fleet records that
// the event did it. The same notification again changes nothing; the resolved one
// closes the event and the plan goes back.
func TestAlertmanagerAlertChangesARunningFleetsPlan(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	fleet := workflows.FleetWorkflowID(s.pool)
	key := "alertmanager/cfb6233f59b105f3/2026-11-25T21:14:07.512Z"
	var plan planView
	s.eventually(30*time.Second, "the fleet has a plan", func() bool {
		return s.call("GET", "/plan", nil, &plan) == 200 && len(plan.Targets) > 0
	})
	require.False(t, plan.anomalyNaming("fra1", key))

	firing, err := os.ReadFile(filepath.Join(repoRoot(t), "imports", "testdata", "alertmanager-firing.json"))
	require.NoError(t, err)
	var answer eventsAnswer
	posted := time.Now()
	require.Equal(t, 200, s.send("POST", "/events/alertmanager", "application/json", bytes.NewReader(firing), &answer))
	require.Len(t, answer.Events, 1, "%+v", answer)
	require.Equal(t, key, answer.Events[0].ID)
	require.Equal(t, "recorded", answer.Events[0].Status)
	require.Len(t, answer.Skipped, 1, "the alert without a site label is skipped")
	require.Contains(t, answer.Fleets, fleet, "the running fleet was told")

	s.eventually(10*time.Second, "the plan names the alert at fra1", func() bool {
		return s.call("GET", "/plan", nil, &plan) == 200 && plan.anomalyNaming("fra1", key)
	})
	t.Logf("plan changed %.1f s after the alert", time.Since(posted).Seconds())
	var changes planChanges
	s.eventually(10*time.Second, "the fleet records what the alert changed", func() bool {
		s.call("GET", "/events", nil, &changes)
		return len(changes.Changes) > 0
	})
	c := changes.Changes[0]
	require.Equal(t, key, c.EventID)
	require.Equal(t, "fra1", c.Site)
	require.Contains(t, c.Detail, "new bottleneck anomaly", "%+v", c)
	db := s.connect()
	var rows int
	// The fleet answers queries from its state before its activity has written the
	// change.
	s.eventually(10*time.Second, "the plan change is in PostgreSQL", func() bool {
		require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM event_plan_changes WHERE pool = $1 AND event_key = $2 AND site_id = 'fra1'`,
			s.pool, key).Scan(&rows))
		return rows == 1
	})

	// Alertmanager repeats a notification every repeat_interval: nothing changes.
	require.Equal(t, 200, s.send("POST", "/events/alertmanager", "application/json", bytes.NewReader(firing), &answer))
	require.Equal(t, "unchanged", answer.Events[0].Status)
	require.Empty(t, answer.Fleets, "nothing changed, so no fleet is told")

	resolved, err := os.ReadFile(filepath.Join(repoRoot(t), "imports", "testdata", "alertmanager-resolved.json"))
	require.NoError(t, err)
	require.Equal(t, 200, s.send("POST", "/events/alertmanager", "application/json", bytes.NewReader(resolved), &answer))
	require.Equal(t, "closed", answer.Events[0].Status)
	require.Contains(t, answer.Fleets, fleet)
	s.eventually(10*time.Second, "the plan drops the resolved alert", func() bool {
		return s.call("GET", "/plan", nil, &plan) == 200 && !plan.anomalyNaming("fra1", key)
	})
	s.eventually(10*time.Second, "the fleet records that the close changed the plan back", func() bool {
		s.call("GET", "/events", nil, &changes)
		return len(changes.Changes) > 1
	})
	require.Equal(t, key, changes.Changes[1].EventID)
	require.Contains(t, changes.Changes[1].Detail, "closed")
	require.Contains(t, changes.Changes[1].Detail, "bottleneck gone: anomaly")

	// An operator's event through POST /events, at a site that does not exist, is
	// refused naming the field and records nothing.
	var p problem
	require.Equal(t, 422, s.call("POST", "/events", map[string]any{"site": "mars", "kind": "anomaly", "starts": time.Now().UTC().Format(time.RFC3339)}, &p))
	require.Equal(t, "site", p.Field)
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM system_events WHERE site_id = 'mars'`).Scan(&rows))
	require.Zero(t, rows)

	importsACalendar(t, s, fleet)
	s.replayHistories(map[string]string{"fleet-events": fleet,
		"events": s.newestWorkflow("WorkflowType = 'EventsWorkflow' AND ExecutionStatus = 'Completed'")})
}

// maintenanceCalendar is a calendar of one daily maintenance window at lon1, from
// start for two hours, as a calendar program exports it; status CANCELLED cancels it.
func maintenanceCalendar(start time.Time, status string) string {
	return strings.ReplaceAll(`BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Google Inc//Google Calendar 70.9054//EN
BEGIN:VEVENT
UID:lon1-patching@example.com
DTSTART:`+start.UTC().Format("20060102T150405Z")+`
DURATION:PT2H
RRULE:FREQ=DAILY;COUNT=5
SUMMARY:lon1 storage firmware
X-PMO-SITE:lon1
STATUS:`+status+`
END:VEVENT
END:VCALENDAR
`, "\n", "\r\n")
}

// importsACalendar imports a maintenance calendar over HTTP and then with the command
// line: the fleet's plan shows the window at once, the second import changes nothing,
// and the calendar's cancel takes the window out of the plan.
func importsACalendar(t *testing.T, s *system, fleet string) {
	start := time.Now().Add(30 * time.Minute).Truncate(time.Minute)
	maintenance := func(p planView) bool {
		return slices.ContainsFunc(p.Bottlenecks, func(b struct {
			Site   string `json:"site"`
			Kind   string `json:"kind"`
			Detail string `json:"detail"`
		}) bool {
			return b.Site == "lon1" && b.Kind == "maintenance" && strings.Contains(b.Detail, "lon1 storage firmware")
		})
	}
	var answer eventsAnswer
	require.Equal(t, 200, s.send("POST", "/events/calendar?calendar=ops&days=3", "text/calendar",
		strings.NewReader(maintenanceCalendar(start, "CONFIRMED")), &answer))
	require.Len(t, answer.Events, 3, "three daily windows start within three days: %+v", answer)
	for _, e := range answer.Events {
		require.Equal(t, "recorded", e.Status)
		require.True(t, strings.HasPrefix(e.ID, "ics/ops/lon1-patching@example.com/"), e.ID)
	}
	require.Contains(t, answer.Fleets, fleet)
	var plan planView
	s.eventually(10*time.Second, "the plan shows the calendar's window at lon1", func() bool {
		return s.call("GET", "/plan", nil, &plan) == 200 && maintenance(plan)
	})
	entries, err := os.ReadDir(filepath.Join(s.dataDir, "uploads"))
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasPrefix(e.Name(), "calendar-"), "the staged calendar is removed: %s", e.Name())
	}

	file := filepath.Join(t.TempDir(), "ops.ics")
	require.NoError(t, os.WriteFile(file, []byte(maintenanceCalendar(start, "CONFIRMED")), 0o644))
	out := s.run("import", "maintenance", "-calendar", "ops", "-days", "3", file)
	require.Contains(t, out, "3 maintenance windows")
	require.Contains(t, out, "0 recorded, 0 updated, 3 unchanged, 0 cancelled")

	require.NoError(t, os.WriteFile(file, []byte(maintenanceCalendar(start, "CANCELLED")), 0o644))
	out = s.run("import", "maintenance", "-calendar", "ops", "-days", "3", file)
	require.Contains(t, out, "3 cancelled", "the calendar's cancel reaches PMO")
	s.eventually(10*time.Second, "the plan drops the cancelled window", func() bool {
		return s.call("GET", "/plan", nil, &plan) == 200 && !maintenance(plan)
	})

	// A calendar that is not one is refused naming the reason, and records nothing.
	var p problem
	require.Equal(t, 422, s.send("POST", "/events/calendar", "text/calendar", strings.NewReader("id,site\n1,lon1\n"), &p))
	require.Contains(t, p.Detail, "not an iCalendar file")
}
