package planning

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pmo-dev/pmo/validation"
)

// SourceCalendar marks events imported from a maintenance calendar, which the calendar
// may move on a later import.
const SourceCalendar = "calendar"

// Event kinds, severities and sources.
var (
	// EventKinds are the kinds of system event.
	EventKinds = []string{"maintenance", "anomaly"}
	// EventSeverities are the severities of a system event, mildest first.
	EventSeverities = []string{"info", "warning", "critical"}
	// EventSources are who may report a system event: an operator through the API, an
	// Alertmanager webhook, an imported calendar, the fleet's own anomaly detector, an
	// SLA breach, or the demo seed.
	EventSources = []string{"operator", "alertmanager", "calendar", "detector", "breach", "seed"}
)

// MaxEventBatch bounds the events one request or import records at once, so that the
// workflow that records them keeps a small history.
const MaxEventBatch = 1000

// Open reports whether the event lasts until it is closed.
func (e Event) Open() bool { return e.Ends.IsZero() }

// EndsBy is when the event ends, or limit for an open event: as far as a plan that
// looks up to limit can tell, an open event lasts to its end.
func (e Event) EndsBy(limit time.Time) time.Time {
	if e.Open() {
		return limit
	}
	return e.Ends
}

// Overlaps reports whether the event covers any of [from, to).
func (e Event) Overlaps(from, to time.Time) bool {
	return e.Starts.Before(to) && (e.Open() || e.Ends.After(from))
}

// ActiveAt reports whether the event covers the instant at.
func (e Event) ActiveAt(at time.Time) bool {
	return !e.Starts.After(at) && (e.Open() || e.Ends.After(at))
}

// Validate checks the event's fields: a known kind and severity, a site (a
// validation.Name), a start, and an end after the start, required for maintenance (an
// anomaly may be open), both within validation.Time's bounds. Fields
// are named under prefix, e.g. "[3]." for the fourth of a batch.
func (e Event) Validate(prefix string) error {
	switch {
	case e.Site == "":
		return validation.Field(prefix+"site", "is required")
	case !slices.Contains(EventKinds, e.Kind):
		return validation.Field(prefix+"kind", "must be one of %v, got %q", EventKinds, e.Kind)
	case !slices.Contains(EventSeverities, e.Severity):
		return validation.Field(prefix+"severity", "must be one of %v, got %q", EventSeverities, e.Severity)
	case e.Source != "" && !slices.Contains(EventSources, e.Source):
		return validation.Field(prefix+"source", "must be one of %v, got %q", EventSources, e.Source)
	case e.Starts.IsZero():
		return validation.Field(prefix+"starts", "is required")
	case e.Open() && e.Kind == "maintenance":
		return validation.Field(prefix+"ends", "is required for maintenance: a window has an end")
	case !e.Open() && !e.Ends.After(e.Starts):
		return validation.Field(prefix+"ends", "must be after starts (%s), got %s", e.Starts.Format(time.RFC3339), e.Ends.Format(time.RFC3339))
	}
	if err := validation.Name(prefix+"site", e.Site); err != nil {
		return err
	}
	if err := validation.Time(prefix+"starts", e.Starts); err != nil {
		return err
	}
	if !e.Open() {
		return validation.Time(prefix+"ends", e.Ends)
	}
	return nil
}

// EventAnomalies are the anomaly events active at now, as anomalies that widen their
// sites' ad-hoc demand, each naming its event. The detector's own events are left out:
// the detector reports what it sees afresh every plan, and counting its recorded
// findings again would keep an anomaly alive after it cleared. Each key counts once.
func EventAnomalies(events []KeyedEvent, now time.Time) []Anomaly {
	var out []Anomaly
	seen := map[string]bool{}
	for _, e := range events {
		if e.Kind != "anomaly" || e.Source == "detector" || !e.ActiveAt(now) || seen[e.Key] {
			continue
		}
		seen[e.Key] = true
		until := "open until closed"
		if !e.Open() {
			until = "until " + e.Ends.UTC().Format(time.RFC3339)
		}
		out = append(out, Anomaly{Site: e.Site, Detail: fmt.Sprintf("%s event %s (%s, %s): %s", e.Severity, e.Key, e.sourceName(), until, e.Detail)})
	}
	return out
}

func (e Event) sourceName() string {
	if e.Source == "" {
		return "operator"
	}
	return e.Source
}

// Events drops the keys.
func Events(keyed []KeyedEvent) []Event {
	out := make([]Event, len(keyed))
	for i, k := range keyed {
		out[i] = k.Event
	}
	return out
}

// demandEnd is the end of the last hour of demand, or fallback when there is none.
func demandEnd(demand []Demand, fallback time.Time) time.Time {
	end := fallback
	for _, d := range demand {
		if h := d.Hour.Add(time.Hour); h.After(end) {
			end = h
		}
	}
	return end
}

// What recording an event did, in EventOutcome.Status.
const (
	// EventRecorded is a new event.
	EventRecorded = "recorded"
	// EventUnchanged is an event known already, as it was.
	EventUnchanged = "unchanged"
	// EventUpdated is a calendar's event known already, whose window or details the
	// calendar changed.
	EventUpdated = "updated"
	// EventClosed is an event that now ends.
	EventClosed = "closed"
	// EventCancelled is an event closed before it started: planning no longer sees it.
	EventCancelled = "cancelled"
	// EventNotFound is a close of an event that does not exist.
	EventNotFound = "not found"
)

// EventOutcome is what recording or closing one event did.
type EventOutcome struct {
	Key    string `json:"id"`
	Site   string `json:"site"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
}

// Changed reports whether the outcome changed what planning sees.
func (o EventOutcome) Changed() bool {
	return o.Status == EventRecorded || o.Status == EventUpdated || o.Status == EventClosed || o.Status == EventCancelled
}

// EventClose closes the event with Key at At: it ends then, or, if At is not after its
// start, it is cancelled.
type EventClose struct {
	Key string    `json:"id"`
	At  time.Time `json:"at"`
}

// EventPlanChange is what events did to a pool's plan at one site when the fleet
// re-planned on hearing of them: the site's connector target before and after, and
// what else changed (bottlenecks, anomaly margins), or that nothing did.
type EventPlanChange struct {
	EventKey string    `json:"event_id"`
	At       time.Time `json:"at"`
	Site     string    `json:"site"`
	Before   int       `json:"connectors_before"`
	After    int       `json:"connectors_after"`
	Detail   string    `json:"detail"`
}

// EventStates describes events as a plan records having seen them: "<id> open" or
// "<id> until <end>".
func EventStates(events []KeyedEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Key + " open"
		if !e.Open() {
			out[i] = e.Key + " until " + e.Ends.UTC().Format(time.RFC3339)
		}
	}
	return out
}

// eventState is how the plan saw the event with key: its EventStates entry, or empty.
func (p Plan) eventState(key string) string {
	for _, s := range p.Events {
		if strings.HasPrefix(s, key+" ") {
			return s
		}
	}
	return ""
}

// EventPlanChanges compares the plan before events were heard of with the plan made
// at once after, at each event's site, and says for each event what changed there:
// the connector target and the bottlenecks that came or went (or that nothing did).
// Several events at one site share the site's change; each names it. A regular plan
// may have seen an event before the fleet heard of it; then the plan before that one
// (earlier) is the one without the event, and the change is measured from it.
func EventPlanChanges(earlier, before, after Plan, events []EventOutcome, at time.Time) []EventPlanChange {
	out := make([]EventPlanChange, 0, len(events))
	for _, e := range events {
		before := before
		if !earlier.GeneratedAt.IsZero() && before.eventState(e.Key) != earlier.eventState(e.Key) {
			before = earlier
		}
		c := EventPlanChange{EventKey: e.Key, At: at, Site: e.Site, Before: before.target(e.Site), After: after.target(e.Site)}
		var parts []string
		if c.Before != c.After {
			parts = append(parts, fmt.Sprintf("%s: connector target %d → %d", e.Site, c.Before, c.After))
		}
		was, is := before.bottlenecksAt(e.Site), after.bottlenecksAt(e.Site)
		for _, b := range is {
			if !slices.Contains(was, b) {
				parts = append(parts, "new bottleneck "+b)
			}
		}
		for _, b := range was {
			if !slices.Contains(is, b) {
				parts = append(parts, "bottleneck gone: "+b)
			}
		}
		if len(parts) == 0 {
			parts = append(parts, fmt.Sprintf("%s: no change to the plan (connector target %d)", e.Site, c.After))
		}
		c.Detail = fmt.Sprintf("event %s %s: ", e.Key, e.Status) + strings.Join(parts, "; ")
		out = append(out, c)
	}
	return out
}

// Changed reports whether the plan changed at the site.
func (c EventPlanChange) Changed() bool {
	return c.Before != c.After || !strings.Contains(c.Detail, ": no change to the plan")
}

// target is the plan's connector target at site, zero where it has none.
func (p Plan) target(site string) int {
	for _, t := range p.Targets {
		if t.Site == site {
			return t.Connectors
		}
	}
	return 0
}

// bottlenecksAt describes the plan's bottlenecks at site by kind and detail, which
// say what limits the site; their times move with every plan.
func (p Plan) bottlenecksAt(site string) []string {
	var out []string
	for _, b := range p.Bottlenecks {
		if b.Site == site {
			out = append(out, b.Kind+" ("+b.Detail+")")
		}
	}
	return out
}

// SkippedEvent is an event, or an alert, that was not recorded, and why.
type SkippedEvent struct {
	Key    string `json:"id,omitempty"`
	Site   string `json:"site,omitempty"`
	Reason string `json:"reason"`
}
