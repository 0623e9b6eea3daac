package activities

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// A calendar staged as a file and the same calendar served over HTTP record the same
// maintenance windows; a second import changes nothing, a moved occurrence is
// updated, and the staged file is gone once recorded.
func TestRecordEventsImportsACalendarFromAFileOrAURL(t *testing.T) {
	_, s := fleetFixture(t)
	a := &Events{Store: s, Logger: slog.Default(), Uploads: t.TempDir()}
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	ics, err := os.ReadFile("../imports/testdata/maintenance.ics")
	require.NoError(t, err)
	from, to := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	want, err := imports.ReadCalendar(strings.NewReader(string(ics)), imports.CalendarOptions{Site: "fra1", From: from, To: to, Sites: []string{"ams1", "fra1"}})
	require.NoError(t, err)
	require.Greater(t, len(want), 5)

	record := func(src imports.CalendarSource) contract.RecordEventsResult {
		t.Helper()
		src.Name, src.Site, src.From, src.To = "ops", "fra1", from, to
		v, err := aenv.ExecuteActivity(a.RecordEvents, imports.EventBatch{Calendar: &src})
		require.NoError(t, err)
		var res contract.RecordEventsResult
		require.NoError(t, v.Get(&res))
		return res
	}
	statuses := func(res contract.RecordEventsResult) map[string]int {
		n := map[string]int{}
		for _, o := range res.Outcomes {
			n[o.Status]++
		}
		return n
	}

	staged := filepath.Join(a.Uploads, "calendar-1.ics")
	require.NoError(t, os.WriteFile(staged, ics, 0o644))
	require.Equal(t, map[string]int{planning.EventRecorded: len(want)}, statuses(record(imports.CalendarSource{Path: staged})))
	require.NoFileExists(t, staged, "the staged calendar is removed once recorded")
	got, err := s.Events(t.Context(), from, to)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i, e := range got {
		require.Equal(t, planning.SourceCalendar, e.Source, "event %d", i)
		require.Equal(t, "maintenance", e.Kind)
	}

	served := string(ics)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/team.ics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/calendar")
		_, _ = w.Write([]byte(served))
	}))
	defer srv.Close()
	// The test's server is on this machine: only a host named in PMO_CALENDAR_HOSTS may be.
	a.CalendarHosts = []string{strings.TrimPrefix(srv.URL, "http://")}
	require.Equal(t, map[string]int{planning.EventUnchanged: len(want)}, statuses(record(imports.CalendarSource{URL: srv.URL + "/team.ics"})),
		"the same calendar from a URL changes nothing")

	// The calendar moves the monthly Frankfurt window by an hour: its two occurrences
	// in the window get new keys, and the old ones are cancelled.
	served = strings.Replace(served, "DTSTART;TZID=Europe/Amsterdam:20260908T220000\r\nDTEND;TZID=Europe/Amsterdam:20260908T230000",
		"DTSTART;TZID=Europe/Amsterdam:20260908T230000\r\nDTEND;TZID=Europe/Amsterdam:20260909T000000", 1)
	require.NotEqual(t, string(ics), served, "the test edits the calendar")
	moved := statuses(record(imports.CalendarSource{URL: srv.URL + "/team.ics"}))
	require.Equal(t, map[string]int{planning.EventRecorded: 2, planning.EventCancelled: 2, planning.EventUnchanged: len(want) - 2}, moved)
	got, err = s.Events(t.Context(), from, to)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	amsterdam, err := time.LoadLocation("Europe/Amsterdam")
	require.NoError(t, err)
	for _, e := range got {
		require.True(t, strings.HasPrefix(e.Key, "ics/ops/"), e.Key)
		if strings.HasPrefix(e.Key, "ics/ops/7c2e9a41b0d34f5f8e6a@google.com/") {
			require.Equal(t, 23, e.Starts.In(amsterdam).Hour(), "the moved window starts at 23:00 in Amsterdam: %s", e.Starts)
		}
	}

	// A server that refuses the calendar fails for good, with its status.
	_, err = aenv.ExecuteActivity(a.RecordEvents, imports.EventBatch{Calendar: &imports.CalendarSource{Name: "ops", URL: srv.URL + "/gone.ics", From: from, To: to}})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Error(), "404")
}

// A calendar URL reaches only the hosts allowed: without PMO_CALENDAR_HOSTS, none of
// this network (the worker's neighbours: loopback here), and with it, only those
// named, redirects included. Each refusal fails for good and says why.
func TestCalendarURLsReachOnlyTheHostsAllowed(t *testing.T) {
	_, s := fleetFixture(t)
	ics, err := os.ReadFile("../imports/testdata/maintenance.ics")
	require.NoError(t, err)
	var hits atomic.Int32
	inside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write(ics)
	}))
	defer inside.Close()
	redirect := httptest.NewServer(http.RedirectHandler(inside.URL+"/ops.ics", http.StatusFound))
	defer redirect.Close()
	host := func(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var env testsuite.WorkflowTestSuite
	for _, c := range []struct {
		name   string
		hosts  []string
		url    string
		reason string
	}{
		{"loopback, no hosts named", nil, inside.URL + "/ops.ics", "is an address of this network"},
		{"localhost by name", nil, "http://localhost:" + strings.Split(host(inside), ":")[1] + "/ops.ics", "is an address of this network"},
		{"a host not named", []string{"calendar.example.com"}, inside.URL + "/ops.ics", "is not in PMO_CALENDAR_HOSTS"},
		{"a redirect to a host not named", []string{host(redirect)}, redirect.URL + "/ops.ics", "is not in PMO_CALENDAR_HOSTS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := &Events{Store: s, Logger: slog.Default(), CalendarHosts: c.hosts}
			aenv := env.NewTestActivityEnvironment()
			aenv.RegisterActivity(a)
			_, err := aenv.ExecuteActivity(a.RecordEvents, imports.EventBatch{Calendar: &imports.CalendarSource{Name: "ops", URL: c.url, Site: "fra1",
				From: from, To: from.AddDate(0, 3, 0)}})
			var appErr *temporal.ApplicationError
			require.True(t, errors.As(err, &appErr), "%v", err)
			require.True(t, appErr.NonRetryable())
			require.Contains(t, appErr.Error(), c.reason)
		})
	}
	require.Zero(t, hits.Load(), "nothing reached the server inside")

	// Named, it is reached, through the redirect too.
	a := &Events{Store: s, Logger: slog.Default(), CalendarHosts: []string{host(redirect), host(inside)}}
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	_, err = aenv.ExecuteActivity(a.RecordEvents, imports.EventBatch{Calendar: &imports.CalendarSource{Name: "ops", URL: redirect.URL + "/ops.ics", Site: "fra1",
		From: from, To: from.AddDate(0, 3, 0)}})
	require.NoError(t, err)
	require.EqualValues(t, 1, hits.Load())
}

// A calendar with bad events records nothing and lists each; a staged one is removed.
func TestRecordEventsRejectsABadCalendarWhole(t *testing.T) {
	_, s := fleetFixture(t)
	a := &Events{Store: s, Logger: slog.Default(), Uploads: t.TempDir()}
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(a)
	bad, err := os.ReadFile("../imports/testdata/malformed.ics")
	require.NoError(t, err)
	staged := filepath.Join(a.Uploads, "calendar-2.ics")
	require.NoError(t, os.WriteFile(staged, bad, 0o644))
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	_, err = aenv.ExecuteActivity(a.RecordEvents, imports.EventBatch{Calendar: &imports.CalendarSource{Name: "ops", Path: staged, Site: "fra1", From: from, To: from.AddDate(0, 3, 0)}})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, validation.InvalidRowsErrorType, appErr.Type())
	var rows imports.Errors
	require.NoError(t, appErr.Details(&rows))
	require.Greater(t, len(rows), 1, "every bad event is listed")
	require.NoFileExists(t, staged)
	got, err := s.Events(t.Context(), from, from.AddDate(0, 3, 0))
	require.NoError(t, err)
	require.Empty(t, got)
}
