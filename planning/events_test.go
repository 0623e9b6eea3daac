package planning

import (
	"strings"
	"testing"
	"time"
)

func TestOpenEventsOverlapEverythingAfterTheirStart(t *testing.T) {
	open := Event{Site: "fra1", Kind: "anomaly", Severity: "critical", Starts: t0}
	closed := Event{Site: "fra1", Kind: "anomaly", Severity: "critical", Starts: t0, Ends: t0.Add(time.Hour)}
	for _, c := range []struct {
		e        Event
		from, to time.Time
		want     bool
	}{
		{open, t0.Add(100 * time.Hour), t0.Add(101 * time.Hour), true},
		{open, t0.Add(-time.Hour), t0, false},
		{closed, t0.Add(time.Hour), t0.Add(2 * time.Hour), false},
		{closed, t0.Add(59 * time.Minute), t0.Add(2 * time.Hour), true},
	} {
		if got := c.e.Overlaps(c.from, c.to); got != c.want {
			t.Errorf("%+v overlaps [%s, %s): %v, want %v", c.e, c.from, c.to, got, c.want)
		}
	}
	if !open.ActiveAt(t0.Add(1000*time.Hour)) || closed.ActiveAt(t0.Add(time.Hour)) || !open.EndsBy(t0.Add(5*time.Hour)).Equal(t0.Add(5*time.Hour)) {
		t.Fatal("an open event lasts; a closed one ends")
	}
	for _, c := range []struct {
		e     Event
		field string
	}{
		{Event{Site: "fra1", Kind: "maintenance", Severity: "info", Starts: t0}, "ends"},
		{Event{Site: "fra1", Kind: "anomaly", Severity: "info", Starts: t0, Ends: t0}, "ends"},
		{Event{Site: "fra1", Kind: "outage", Severity: "info", Starts: t0}, "kind"},
		{Event{Site: "fra1", Kind: "anomaly", Severity: "bad", Starts: t0}, "severity"},
		{Event{Kind: "anomaly", Severity: "info", Starts: t0}, "site"},
	} {
		err := c.e.Validate("[2].")
		if err == nil || !strings.HasPrefix(err.Error(), "[2]."+c.field+":") {
			t.Errorf("%+v: %v, want a complaint about [2].%s", c.e, err, c.field)
		}
	}
}

func TestActiveAnomalyEventsWidenDemandNamingTheEvent(t *testing.T) {
	events := []KeyedEvent{
		{Key: "alertmanager/cfb6/1", Event: Event{Site: "ams1", Kind: "anomaly", Severity: "critical", Starts: t0.Add(-time.Hour), Detail: "uplink drops packets", Source: "alertmanager"}},
		{Key: "alertmanager/cfb6/1", Event: Event{Site: "ams1", Kind: "anomaly", Severity: "critical", Starts: t0.Add(-time.Hour), Source: "alertmanager"}},
		{Key: "anomaly/ams1/x", Event: Event{Site: "ams1", Kind: "anomaly", Starts: t0, Ends: t0.Add(time.Hour), Source: "detector"}},
		{Key: "later", Event: Event{Site: "ams1", Kind: "anomaly", Starts: t0.Add(time.Hour)}},
		{Key: "window", Event: Event{Site: "ams1", Kind: "maintenance", Starts: t0, Ends: t0.Add(time.Hour)}},
	}
	got := EventAnomalies(events, t0)
	if len(got) != 1 || got[0].Site != "ams1" || !strings.Contains(got[0].Detail, "alertmanager/cfb6/1") || !strings.Contains(got[0].Detail, "open until closed") {
		t.Fatalf("anomalies %+v: only the open alert counts, once, by its key", got)
	}
	// 36000 arrivals/h of 1 MiB need 3 medium connectors; × 1.5, 4 (as in
	// TestAnomaliesAndTheirMargin).
	in := PredictInput{Now: t0, Size: medium(t), LeadTime: 30 * time.Minute,
		Demand: []Demand{{Site: "ams1", Hour: t0, AdhocLo: 36000, AdhocMean: 36000, AdhocHi: 36000}},
		Sites:  []Site{{ID: "ams1", MeanBytes: float64(mib), StrictestQuantile: 0.5}},
		Events: Events(events[:1])}
	before := Predict(in)
	in.Anomalies = got
	after := Predict(in)
	if before.Targets[0].Connectors != 3 || after.Targets[0].Connectors != 4 {
		t.Fatalf("targets %d then %d, want 3 then 4", before.Targets[0].Connectors, after.Targets[0].Connectors)
	}
	changes := EventPlanChanges(Plan{}, before, after, []EventOutcome{{Key: "alertmanager/cfb6/1", Site: "ams1", Kind: "anomaly", Status: EventRecorded}}, t0)
	if len(changes) != 1 || changes[0].Before != 3 || changes[0].After != 4 || !changes[0].Changed() ||
		!strings.Contains(changes[0].Detail, "connector target 3 → 4") || !strings.Contains(changes[0].Detail, "new bottleneck anomaly") {
		t.Fatalf("changes %+v", changes)
	}
	// The open event's own bottleneck lasts to the end of the demand horizon.
	for _, b := range after.Bottlenecks {
		if b.To.IsZero() {
			t.Fatalf("bottleneck without an end: %+v", b)
		}
	}
	same := EventPlanChanges(Plan{}, after, after, []EventOutcome{{Key: "k", Site: "ams1", Status: EventUnchanged}}, t0)
	if same[0].Changed() || !strings.Contains(same[0].Detail, "no change to the plan") {
		t.Fatalf("no change: %+v", same)
	}
}

func TestOpenMaintenanceHoldsPlannedWorkToTheHorizon(t *testing.T) {
	window := Event{Site: "fra1", Kind: "maintenance", Starts: t0.Add(time.Hour)}
	demand := []Demand{{Site: "fra1", Hour: t0, Planned: 1}, {Site: "fra1", Hour: t0.Add(time.Hour), Planned: 2}, {Site: "fra1", Hour: t0.Add(2 * time.Hour), Planned: 3}}
	got, why := shiftPlanned(demand, []Event{window})
	if got[0].Planned != 1 || got[1].Planned != 0 || got[2].Planned != 0 || len(why) != 1 {
		t.Fatalf("demand %+v, reasons %v", got, why)
	}
}

// A tick that saw the event before the fleet heard of it does not hide the change: it
// is measured from the plan before that tick.
func TestEventPlanChangesLookPastATickThatSawTheEventFirst(t *testing.T) {
	key := "ops-1"
	ev := []KeyedEvent{{Key: key, Event: Event{Site: "ams1", Kind: "anomaly", Starts: t0}}}
	earlier := Plan{GeneratedAt: t0, Targets: []SiteTarget{{Site: "ams1", Connectors: 1}}}
	tick := Plan{GeneratedAt: t0.Add(time.Second), Targets: []SiteTarget{{Site: "ams1", Connectors: 2}}, Events: EventStates(ev)}
	after := tick
	after.GeneratedAt = t0.Add(2 * time.Second)
	got := EventPlanChanges(earlier, tick, after, []EventOutcome{{Key: key, Site: "ams1", Status: EventRecorded}}, t0)
	if got[0].Before != 1 || got[0].After != 2 {
		t.Fatalf("change %+v, want 1 → 2", got[0])
	}
	// Without the race, the plan just before is the base.
	got = EventPlanChanges(earlier, earlier, after, []EventOutcome{{Key: key, Site: "ams1", Status: EventRecorded}}, t0)
	if got[0].Before != 1 {
		t.Fatalf("change %+v", got[0])
	}
	if tick.Events[0] != "ops-1 open" {
		t.Fatalf("states %v", tick.Events)
	}
}
