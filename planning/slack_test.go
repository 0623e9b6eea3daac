package planning

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A medium connector's task moves 1 MiB/s, so a 60 MiB migration copies in a minute.
func TestCanWaitCountsTheCopyAgainstTheDeadline(t *testing.T) {
	size := Sizes[1]
	r := Reservation{MigrationID: "m", Site: "ams1", Bytes: 60 * mib, Deadline: t0.Add(7 * time.Minute)}
	if !r.CanWait(t0, 6*time.Minute, size) {
		t.Fatal("7 minutes to the deadline, a minute's copy: it can wait 6")
	}
	if r.CanWait(t0.Add(time.Second), 6*time.Minute, size) {
		t.Fatal("a second later it cannot wait 6 minutes and still copy in time")
	}
	if (Reservation{MigrationID: "m", Bytes: mib}).CanWait(t0, time.Second, size) {
		t.Fatal("a migration without a deadline cannot tell that it can wait")
	}
}

// With SLA slack, a migration that can wait a replacement's boot leaves the site's
// held slots to one that cannot; without it, it takes them.
func TestPlaceHoldsTheHeadroomForWorkThatCannotWait(t *testing.T) {
	now := t0
	full := conn("c1", "ams1", StateActive, 3) // one slot of four free
	patient := Reservation{MigrationID: "patient", WorkflowID: "w-patient", Site: "ams1", Bytes: 60 * mib, Deadline: now.Add(20 * time.Minute)}
	urgent := Reservation{MigrationID: "urgent", WorkflowID: "w-urgent", Site: "ams1", Bytes: 60 * mib, Deadline: now.Add(3 * time.Minute)}
	plan := Plan{Targets: []SiteTarget{{Site: "ams1", Connectors: 1, Headroom: 1}}, ReplaceSeconds: 300}
	place := func(slack bool, waiting ...Reservation) []string {
		policy := DefaultPolicy()
		policy.SLASlack = slack
		f := Fleet{Connectors: []Connector{full}, Waiting: waiting, Policy: policy, Sites: []string{"ams1"}}
		var got []string
		for _, a := range Place(f, plan, Sizes[1], nil, now).Assignments {
			got = append(got, a.MigrationID)
		}
		return got
	}
	if got := place(false, patient); !slices.Equal(got, []string{"patient"}) {
		t.Fatalf("without slack: placed %v, want the patient migration on the free slot", got)
	}
	if got := place(true, patient); len(got) != 0 {
		t.Fatalf("with slack: placed %v, want the held slot left free", got)
	}
	if got := place(true, patient, urgent); !slices.Equal(got, []string{"urgent"}) {
		t.Fatalf("with slack: placed %v, want the urgent migration on the held slot", got)
	}
	late := patient
	late.Deadline = now.Add(5*time.Minute + 59*time.Second) // less than a 5-minute boot beyond its copy
	if got := place(true, late); !slices.Equal(got, []string{"patient"}) {
		t.Fatalf("with slack: placed %v, want a migration that can no longer wait on the held slot", got)
	}
}

// With SLA slack, waiting work that can wait is scaled for only once it could not
// wait for a connector started later: twice the replacement time ahead.
func TestScaleWithSLASlackWaitsForWorkThatCanWait(t *testing.T) {
	now := t0
	policy := DefaultPolicy()
	policy.SLASlack = true
	in := ScaleInput{Now: now, Size: Sizes[1], Policy: policy, Replace: 5 * time.Minute,
		Targets:    []SiteTarget{{Site: "ams1", Connectors: 1}},
		Connectors: []Connector{conn("c1", "ams1", StateActive, 4)}}
	starts := func(deadline time.Duration) int {
		in.Waiting = []Reservation{{MigrationID: "m", Site: "ams1", Bytes: 60 * mib, Deadline: now.Add(deadline)}}
		return len(Scale(in).Start)
	}
	if got := starts(12 * time.Minute); got != 0 {
		t.Fatalf("11 minutes of slack: %d starts, want none yet", got)
	}
	if got := starts(10 * time.Minute); got != 1 {
		t.Fatalf("9 minutes of slack, under two 5-minute boots: %d starts, want 1", got)
	}
	in.Policy.SLASlack = false
	if got := starts(time.Hour); got != 1 {
		t.Fatalf("without slack: %d starts, want 1 for any waiting work", got)
	}
}

// With SLA slack, the headroom is held for the arrivals that cannot wait: the
// quantile of the others within the window and one for the arrival itself.
func TestSLASlackKeepsHeadroomForTheUrgentShare(t *testing.T) {
	// 6 an hour over a 6-minute replacement: 0.6 expected, 2 slots at p90. With 85%
	// patient, 0.09 urgent: its p90 is 0, and one for the arrival.
	in := PredictInput{Now: t0, Size: medium(t), LeadTime: 5 * time.Minute, ReplaceTime: 6 * time.Minute,
		Demand: []Demand{{Site: "ams1", Hour: t0, AdhocLo: 2, AdhocMean: 6, AdhocHi: 12}},
		Sites:  []Site{{ID: "ams1", MeanBytes: float64(mib), StrictestQuantile: 0.9, PatientShare: 0.85}}}
	if got := Predict(in).Targets[0].Headroom; got != 2 {
		t.Fatalf("without slack: headroom %d, want 2", got)
	}
	in.SLASlack = true
	target := Predict(in).Targets[0]
	if target.Headroom != 1 || !strings.Contains(target.Reason, "1 task slot(s) held beyond the work for the arrivals of a 6m0s boot that cannot wait for one (85% of the site's can)") {
		t.Fatalf("with slack: headroom %d, want 1: %s", target.Headroom, target.Reason)
	}
	in.Sites[0].PatientShare = 1
	if got := Predict(in).Targets[0].Headroom; got != 0 {
		t.Fatalf("every migration can wait: headroom %d, want 0", got)
	}
}

// How long a migration must be able to wait is the measured replacement time (a p90
// boot and a tick), and the lead time until three boots are measured.
func TestThePlansReplacementTimeIsTheLeadTimeUntilBootsAreMeasured(t *testing.T) {
	w := World{Now: t0, Size: medium(t), LeadTime: 5 * time.Minute, Tick: 30 * time.Second, Sites: []Site{{ID: "ams1", StrictestQuantile: 0.9}}}
	if got := Tick(w).ReplaceSeconds; got != 300 {
		t.Fatalf("no boots measured: replace %v s, want the lead time's 300", got)
	}
	w.ReadyDelays = []float64{60, 60, 60}
	if got := Tick(w).ReplaceSeconds; got != 90 {
		t.Fatalf("boots of a minute: replace %v s, want 90 (a boot and a tick)", got)
	}
}

// A pool whose policy sets no maximum still runs at most MaxPoolConnectors: a wave of
// thousands planned at once asks for more than one fleet's history can carry.
func TestAPoolWithoutAMaximumStopsAtTheHardLimit(t *testing.T) {
	if got := (Policy{}).ConnectorLimit(); got != MaxPoolConnectors {
		t.Errorf("no maximum: limit %d, want %d", got, MaxPoolConnectors)
	}
	if got := (Policy{MaxConnectors: 40}).ConnectorLimit(); got != 40 {
		t.Errorf("a maximum of 40: limit %d", got)
	}
	sites := []siteWant{{site: "ams1", want: 700, work: 3000}, {site: "lon1", want: 600, work: 2000}}
	boundPool(sites, Policy{}, false)
	if total := sites[0].want + sites[1].want; total != MaxPoolConnectors {
		t.Errorf("bound to %d connectors, want %d", total, MaxPoolConnectors)
	}
	if sites[0].bound != BoundPoolMax || !strings.Contains(sites[0].why, "maximum of 1000 connectors") {
		t.Errorf("the bound is not named: %q, %q", sites[0].bound, sites[0].why)
	}
}
