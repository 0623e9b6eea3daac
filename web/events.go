package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// eventBody is one event of POST /events; times are strings so that a bad one is
// reported with its field.
type eventBody struct {
	ID          string `json:"id"`
	Site        string `json:"site"`
	Kind        string `json:"kind"`
	Severity    string `json:"severity"`
	Starts      string `json:"starts"`
	Ends        string `json:"ends"`
	Description string `json:"description"`
}

// event checks the body and makes the event, keyed by its ID or, without one, by a
// hash of its content. Fields are named under prefix.
func (b eventBody) event(prefix string) (planning.KeyedEvent, error) {
	e := planning.KeyedEvent{Key: b.ID, Event: planning.Event{Site: b.Site, Kind: b.Kind, Severity: cmp.Or(b.Severity, "info"),
		Detail: b.Description, Source: "operator"}}
	var err error
	if e.Starts, err = parseTime(prefix+"starts", b.Starts); err != nil {
		return e, err
	}
	if b.Ends != "" {
		if e.Ends, err = parseTime(prefix+"ends", b.Ends); err != nil {
			return e, err
		}
	}
	if err := validation.Name(prefix+"id", b.ID); err != nil {
		return e, err
	}
	if err := validation.Note(prefix+"description", b.Description); err != nil {
		return e, err
	}
	if err := e.Validate(prefix); err != nil {
		return e, err
	}
	if e.Key == "" {
		e.Key = "event/" + hashOf(e.Site, e.Kind, e.Severity, e.Starts.Format(time.RFC3339Nano), e.Ends.Format(time.RFC3339Nano), e.Detail)
	}
	return e, nil
}

// hashOf is a short hash of the parts, each ended by a NUL.
func hashOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%s\x00", p)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// postEvents records one event (a JSON object) or several (an array) and tells the
// running fleets, answering what was recorded and which fleets were told.
func (s *Server) postEvents(c echo.Context) error {
	var raw json.RawMessage
	if err := decode(c, &raw); err != nil {
		return err
	}
	var bodies []eventBody
	prefix := func(i int) string { return fmt.Sprintf("[%d].", i) }
	raw = bytes.TrimSpace(raw)
	single := len(raw) > 0 && raw[0] == '{'
	if single {
		bodies = make([]eventBody, 1)
		prefix = func(int) string { return "" }
		raw = append(append([]byte{'['}, raw...), ']')
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bodies); err != nil {
		return decodeProblem(err)
	}
	if len(bodies) == 0 {
		return problem(http.StatusUnprocessableEntity, "no events: send an event object or a non-empty array of them")
	}
	if len(bodies) > planning.MaxEventBatch {
		return problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("%d events in one request, over the %d allowed: send them in batches", len(bodies), planning.MaxEventBatch))
	}
	in := imports.EventBatch{Events: make([]planning.KeyedEvent, len(bodies))}
	seen := map[string]int{}
	for i, b := range bodies {
		e, err := b.event(prefix(i))
		if err != nil {
			return err
		}
		if j, dup := seen[e.Key]; dup {
			return validation.Field(prefix(i)+"id", "%q is the ID of event %d too; each event of a batch needs its own", e.Key, j)
		}
		seen[e.Key] = i
		in.Events[i] = e
	}
	sites, err := s.siteIDs(c.Request().Context())
	if err != nil {
		return err
	}
	for i, e := range in.Events {
		if !slices.Contains(sites, e.Site) {
			return validation.Field(prefix(i)+"site", "no site %q; known sites: %s", e.Site, strings.Join(sites, ", "))
		}
	}
	answer, err := s.recordEvents(c.Request().Context(), in)
	if err != nil {
		p := toProblem(err)
		if single { // one object: its fields are named bare
			p.Field = strings.TrimPrefix(p.Field, "[0].")
		}
		return p
	}
	return c.JSON(http.StatusOK, answer)
}

// closeBody is POST /events/close's body: the event's ID and, optionally, when it
// ends (now by default).
type closeBody struct {
	ID string `json:"id"`
	At string `json:"at"`
}

// closeEvent ends an event, or cancels it if it has not started, and tells the fleets.
func (s *Server) closeEvent(c echo.Context) error {
	var b closeBody
	if err := decode(c, &b); err != nil {
		return err
	}
	if b.ID == "" {
		return validation.Field("id", "is required: the ID that POST /events answered")
	}
	if err := validation.Name("id", b.ID); err != nil {
		return err
	}
	at := time.Now().UTC().Truncate(time.Second)
	if b.At != "" {
		var err error
		if at, err = parseTime("at", b.At); err != nil {
			return err
		}
	}
	answer, err := s.recordEvents(c.Request().Context(), imports.EventBatch{Close: []planning.EventClose{{Key: b.ID, At: at}}})
	if err != nil {
		return err
	}
	if len(answer.Events) == 1 && answer.Events[0].Status == planning.EventNotFound {
		return problem(http.StatusNotFound, fmt.Sprintf("no event %q", b.ID))
	}
	return c.JSON(http.StatusOK, answer)
}

// alertmanager receives Prometheus Alertmanager's webhook: firing alerts become open
// anomaly events at the site their label names, resolved ones close them. Alerts
// without a site, or at a site PMO does not know, are skipped and reported.
func (s *Server) alertmanager(c echo.Context) error {
	var raw json.RawMessage
	if err := decode(c, &raw); err != nil {
		return err
	}
	events, skipped, err := imports.ReadAlertmanager(bytes.NewReader(raw), c.QueryParam("site_label"))
	var fe *validation.Error
	if errors.As(err, &fe) {
		return err
	}
	if err != nil {
		return problem(http.StatusBadRequest, err.Error())
	}
	if len(events) > planning.MaxEventBatch {
		return problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("%d alerts in one notification, over the %d allowed: set max_alerts in the webhook_config", len(events), planning.MaxEventBatch))
	}
	sites, err := s.siteIDs(c.Request().Context())
	if err != nil {
		return err
	}
	known := events[:0]
	for _, e := range events {
		if slices.Contains(sites, e.Site) {
			known = append(known, e)
			continue
		}
		skipped = append(skipped, planning.SkippedEvent{Key: e.Key, Site: e.Site, Reason: "no site " + e.Site + " in PMO's inventory"})
	}
	events = known
	answer := workflows.EventsAnswer{Events: []planning.EventOutcome{}, Fleets: []string{}}
	if len(events) > 0 {
		if answer, err = s.recordEvents(c.Request().Context(), imports.EventBatch{Events: events, SkipUnknownSites: true}); err != nil {
			return err
		}
	}
	answer.Skipped = append(skipped, answer.Skipped...)
	if answer.Skipped == nil {
		answer.Skipped = []planning.SkippedEvent{}
	}
	for _, sk := range answer.Skipped {
		s.Logger.Info("alert skipped", "id", sk.Key, "site", sk.Site, "reason", sk.Reason)
	}
	return c.JSON(http.StatusOK, answer)
}

// recordEvents runs EventsWorkflow on the batch, its ID a hash of the batch, and
// waits for its answer.
func (s *Server) recordEvents(ctx context.Context, in imports.EventBatch) (workflows.EventsAnswer, error) {
	opts, err := workflows.EventsStartOptions(in)
	if err != nil {
		return workflows.EventsAnswer{}, err
	}
	run, err := s.Temporal.ExecuteWorkflow(ctx, opts, workflows.EventsWorkflow, in)
	if err != nil {
		return workflows.EventsAnswer{}, err
	}
	var answer workflows.EventsAnswer
	if err := run.Get(ctx, &answer); err != nil {
		return workflows.EventsAnswer{}, err
	}
	if answer.Skipped == nil {
		answer.Skipped = []planning.SkippedEvent{}
	}
	s.Logger.Info("events recorded", "workflow", run.GetID(), "events", len(answer.Events), "skipped", len(answer.Skipped), "fleets", answer.Fleets)
	return answer, nil
}

// events answers what recent system events did to the pool's plan.
func (s *Server) events(c echo.Context) error {
	var v workflows.EventsView
	if err := s.query(c, workflows.QueryEvents, &v); err != nil {
		return err
	}
	if v.Changes == nil {
		v.Changes = []planning.EventPlanChange{}
	}
	return c.JSON(http.StatusOK, v)
}

// Calendar imports: the window's default and longest length in days.
const (
	defaultCalendarDays = 90
	maxCalendarDays     = 366
)

// calendar imports the maintenance windows of an iCalendar file, sent as the
// text/calendar body or named by ?url=, from now for ?days= days; ?site= is the site
// of events that name none, and ?calendar= names the calendar, whose earlier windows
// the import replaces. The file is staged where the worker reads it (a URL is
// fetched by the worker), and EventsWorkflow records its occurrences and tells the
// fleets.
func (s *Server) calendar(c echo.Context) error {
	days, err := queryInt(c, "days", defaultCalendarDays, 1, maxCalendarDays)
	if err != nil {
		return err
	}
	if err := validation.Name("site", c.QueryParam("site")); err != nil {
		return err
	}
	name := cmp.Or(c.QueryParam("calendar"), imports.DefaultCalendar)
	if err := imports.CalendarName(name); err != nil {
		return validation.Field("calendar", "%s", err.Error())
	}
	from := time.Now().UTC().Truncate(time.Minute)
	src := imports.CalendarSource{Name: name, Site: c.QueryParam("site"), From: from, To: from.AddDate(0, 0, days)}
	if raw := c.QueryParam("url"); raw != "" {
		if c.Request().ContentLength > 0 {
			return problem(http.StatusBadRequest, "send the calendar as the body or name it with ?url=, not both")
		}
		u, err := imports.CalendarURL(raw)
		if err != nil {
			return validation.Field("url", "%s", err.Error())
		}
		src.URL = u
	} else {
		ct, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
		if ct != "text/calendar" {
			return problem(http.StatusUnsupportedMediaType, "send the calendar as text/calendar, or name it with ?url=")
		}
		path, _, err := s.stage(c, "calendar", "ics", imports.MaxCalendarBytes, "calendar", name, src.Site, src.From.Format(time.RFC3339))
		if err != nil {
			return err
		}
		src.Path = path
		// The worker reads it again; reading it here refuses a bad calendar, every bad
		// event listed, before any workflow starts.
		sites, err := s.siteIDs(c.Request().Context())
		if err != nil {
			os.Remove(path)
			return err
		}
		events, err := readStagedCalendar(src, sites)
		if err != nil {
			os.Remove(path)
			return rejected(err)
		}
		if len(events) > planning.MaxEventBatch {
			os.Remove(path)
			return validation.Field("days", "the calendar has %d occurrences in %d days, over the %d one import takes: import a shorter window",
				len(events), days, planning.MaxEventBatch)
		}
	}
	answer, err := s.recordEvents(c.Request().Context(), imports.EventBatch{Calendar: &src})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, answer)
}

// readStagedCalendar reads a calendar the web server staged, as the worker will.
func readStagedCalendar(src imports.CalendarSource, sites []string) ([]planning.KeyedEvent, error) {
	f, err := os.Open(src.Path)
	if err != nil {
		return nil, fmt.Errorf("read the staged calendar: %w", err)
	}
	defer f.Close()
	return src.Read(f, sites)
}
