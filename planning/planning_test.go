package planning

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmo-dev/pmo/forecast"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func medium(t *testing.T) Size {
	t.Helper()
	s, ok := SizeNamed("medium")
	if !ok {
		t.Fatal("no medium size")
	}
	return s
}

func TestPredictSizesForThroughputAndConcurrency(t *testing.T) {
	size := medium(t) // 4 MiB/s, 4 tasks: 1 MiB/s per task
	mb := float64(mib)
	cases := []struct {
		name     string
		demand   Demand
		quantile float64
		want     int
	}{
		// 3600 arrivals/h of 1 MiB: 1 MiB/s throughput, 1 s each, 1 in flight: 1 connector.
		{"light", Demand{AdhocLo: 3000, AdhocMean: 3600, AdhocHi: 4000}, 0.5, 1},
		// 36000/h of 1 MiB: 10 MiB/s, needs ⌈10/4⌉ = 3 connectors; 10 in flight needs ⌈10/4⌉ = 3.
		{"heavy", Demand{AdhocLo: 30000, AdhocMean: 36000, AdhocHi: 40000}, 0.5, 3},
		// A strict tier sizes to p90: 48000/h of 1 MiB is 13.3 MiB/s: 4 connectors.
		{"p90", Demand{AdhocLo: 30000, AdhocMean: 36000, AdhocHi: 48000}, 0.9, 4},
		// Known work counts as it is: 7200 planned migrations of 1 MiB: 2 MiB/s, 1 connector.
		{"planned", Demand{Planned: 7200, PlannedBytes: 7200 * mb}, 0.5, 1},
		{"nothing", Demand{}, 0.5, 0},
		// The volume forecast wins over arrivals × mean bytes: 3600 arrivals/h that bring
		// 36000 MiB are 10 MiB/s, 3 connectors, though 1 MiB each would need 1.
		{"volume", Demand{AdhocLo: 3000, AdhocMean: 3600, AdhocHi: 4000,
			AdhocBytesLo: 30000 * mb, AdhocBytesMean: 36000 * mb, AdhocBytesHi: 40000 * mb}, 0.5, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.demand.Site, c.demand.Hour = "ams1", t0
			plan := Predict(PredictInput{
				Now: t0, Demand: []Demand{c.demand}, Size: size, LeadTime: 30 * time.Minute,
				Sites: []Site{{ID: "ams1", MeanBytes: mb, StrictestQuantile: c.quantile}},
			})
			if len(plan.Targets) != 1 || plan.Targets[0].Connectors != c.want {
				t.Fatalf("targets %+v, want %d connectors", plan.Targets, c.want)
			}
			if plan.Targets[0].BandwidthBytesSec != float64(c.want)*size.BandwidthBytesSec {
				t.Fatalf("bandwidth %v", plan.Targets[0].BandwidthBytesSec)
			}
		})
	}
}

func TestPredictLooksAheadByLeadTime(t *testing.T) {
	size := medium(t)
	demand := []Demand{
		{Site: "ams1", Hour: t0, AdhocMean: 0},
		{Site: "ams1", Hour: t0.Add(time.Hour), AdhocMean: 36000},
		{Site: "ams1", Hour: t0.Add(5 * time.Hour), AdhocMean: 72000},
	}
	site := Site{ID: "ams1", MeanBytes: float64(mib), StrictestQuantile: 0.5}
	near := Predict(PredictInput{Now: t0.Add(50 * time.Minute), Demand: demand, Sites: []Site{site}, Size: size, LeadTime: 15 * time.Minute})
	if got := near.Targets[0].Connectors; got != 3 {
		t.Fatalf("10 minutes before the busy hour: %d connectors, want 3 warm ahead of it", got)
	}
	if near.Targets[0].PeakConnectors != 5 {
		t.Fatalf("peak %d, want 5", near.Targets[0].PeakConnectors)
	}
	// The plan ahead, hour by hour: the lead time's hours get what is provisioned now,
	// later hours what their own demand needs.
	want := []PlannedHour{{"ams1", t0, 3}, {"ams1", t0.Add(time.Hour), 3}, {"ams1", t0.Add(5 * time.Hour), 5}}
	if !slices.Equal(near.Hours, want) {
		t.Fatalf("hours %v, want %v", near.Hours, want)
	}
	far := Predict(PredictInput{Now: t0, Demand: demand[:1], Sites: []Site{site}, Size: size, LeadTime: 15 * time.Minute})
	if far.Targets[0].Connectors != 0 {
		t.Fatalf("idle hour: %d connectors", far.Targets[0].Connectors)
	}
}

func TestPredictReportsBottlenecks(t *testing.T) {
	size := medium(t)
	plan := Predict(PredictInput{
		Now:    t0,
		Demand: []Demand{{Site: "fra1", Hour: t0, AdhocMean: 36000}},
		Sites:  []Site{{ID: "fra1", MeanBytes: float64(mib), StrictestQuantile: 0.5, UplinkBytesSec: 100}},
		Events: []Event{{Site: "fra1", Kind: "maintenance", Severity: "info", Starts: t0.Add(2 * time.Hour), Ends: t0.Add(4 * time.Hour), Detail: "storage firmware"}},
		Planned: []PlannedMigration{
			{ID: "big", Site: "fra1", Bytes: 100 * mib, EarliestStart: t0, Deadline: t0.Add(10 * time.Second), SLATier: "gold"},
			{ID: "late", Site: "fra1", Bytes: mib, EarliestStart: t0.Add(3 * time.Hour), Deadline: t0.Add(5 * time.Hour)},
		},
		Tiers: []SLATier{{Name: "gold", MaxTransfer: 20 * time.Second}},
		Size:  size, LeadTime: time.Hour,
	})
	kinds := map[string]int{}
	for _, b := range plan.Bottlenecks {
		kinds[b.Kind]++
		if b.Detail == "" {
			t.Fatalf("bottleneck without a reason: %+v", b)
		}
	}
	// uplink; the maintenance event itself and the planned migration inside it; the big
	// migration misses both its window and its tier.
	if kinds["uplink"] != 1 || kinds["maintenance"] != 2 || kinds["sla"] != 2 {
		t.Fatalf("bottlenecks %v: %+v", kinds, plan.Bottlenecks)
	}
}

// A wave of a thousand migrations that all miss their tier makes one bottleneck per
// site and cause, not one per migration: the plan goes into the fleet's history.
func TestPlannedBottlenecksOfAWaveStayFew(t *testing.T) {
	size := medium(t)
	var wave []PlannedMigration
	for i := range 1000 {
		wave = append(wave, PlannedMigration{ID: fmt.Sprint("w-", i), Site: []string{"ams1", "fra1"}[i%2], Bytes: 64 << 30, SLATier: "bronze",
			EarliestStart: t0.Add(time.Duration(i) * time.Minute), Deadline: t0.Add(time.Duration(i)*time.Minute + 2*time.Hour)})
	}
	got := PlannedBottlenecks(wave, []SLATier{{Name: "bronze", MaxTransfer: 30 * time.Minute}}, size, nil)
	if len(got) != 4 {
		t.Fatalf("%d bottlenecks, want 4 (2 sites × window and tier): %+v", len(got), got)
	}
	first := got[0]
	if first.Site != "ams1" || !first.From.Equal(t0) || !first.To.Equal(t0.Add(998*time.Minute+2*time.Hour)) {
		t.Fatalf("the group spans its migrations' windows: %+v", first)
	}
	if !strings.Contains(first.Detail, "migration w-0 needs at least 4h33m4s on a whole medium connector, window is 2h0m0s") || !strings.HasSuffix(first.Detail, "and 499 more planned migration(s) at ams1 for the same reason") {
		t.Fatalf("detail: %s", first.Detail)
	}
}

func conn(id, site string, state ConnectorState, tasks int) Connector {
	c := Connector{ID: id, Site: site, State: state, Size: Sizes[1], TaskQueue: "pmo.connector." + id, CreatedAt: t0}
	for i := range tasks {
		c.Migrations = append(c.Migrations, Task{MigrationID: id + "-m" + string(rune('a'+i))})
	}
	return c
}

func TestScale(t *testing.T) {
	conns := []Connector{
		conn("a1", "ams1", StateWarm, 0),
		conn("a2", "ams1", StateActive, 1),
		conn("a3", "ams1", StateWarm, 0),
		conn("f1", "fra1", StateDraining, 0),
		conn("f2", "fra1", StateDraining, 1),
	}
	conns[2].CreatedAt = t0.Add(time.Minute)
	targets := []SiteTarget{{Site: "ams1", Connectors: 1}, {Site: "fra1", Connectors: 2, Reason: "fra1: 2 medium connector(s) for the next 15m0s"}}

	d := Scale(ScaleInput{Now: t0.Add(time.Hour), Targets: targets, Connectors: conns})
	if len(d.Start) != 2 || d.Start[0].Site != "fra1" ||
		d.Start[0].Reason != "fra1 has 0 live, wants 2 (forecast); plan: fra1: 2 medium connector(s) for the next 15m0s" {
		t.Fatalf("start %+v, want 2 at fra1 with the plan's reason", d.Start)
	}
	// ams1 has 3 live and wants 1; a2 is busy so only the idle a1 and a3 go, newest first.
	if strings.Join(drained(d), ",") != "a3,a1" || d.Drain[0].Reason != "idle past the 2m0s scale-in cooldown; ams1 has 3 live, wants 1 (forecast)" {
		t.Fatalf("drain %+v", d.Drain)
	}
	if strings.Join(d.Stop, ",") != "f1" {
		t.Fatalf("stop %v: only the idle draining connector stops", d.Stop)
	}
	if d.Start[0].Rule != RuleForecast || d.Drain[0].Rule != RuleScaleIn {
		t.Fatalf("rules %q and %q, want forecast and scale-in", d.Start[0].Rule, d.Drain[0].Rule)
	}

	pinned := Scale(ScaleInput{Targets: targets, Connectors: conns, Pins: []Pin{{Site: "ams1", Min: 4}, {Site: "fra1", Max: 1}}})
	if len(pinned.Start) != 2 || pinned.Start[0].Site != "ams1" || !strings.Contains(pinned.Start[0].Reason, "at least 4") || pinned.Start[0].Rule != BoundPin {
		t.Fatalf("pinned start %+v", pinned.Start)
	}
	paused := Scale(ScaleInput{Targets: targets, Connectors: conns, Paused: true})
	if len(paused.Start) != 0 || len(drained(paused)) != 0 {
		t.Fatalf("paused autoscaling changed capacity: %+v", paused)
	}
	conns[0].Manual = true
	manual := Scale(ScaleInput{Now: t0.Add(time.Hour), Targets: targets, Connectors: conns})
	if strings.Join(drained(manual), ",") != "a3" {
		t.Fatalf("manual connector drained: %v", manual.Drain)
	}
}

// An external connector counts toward its site while its metrics are fresh, is never
// scaled in, and counts for nothing once they are stale.
func TestScaleCountsButNeverDrainsExternalConnectors(t *testing.T) {
	ext := conn("appliance", "ams1", StateWarm, 0)
	ext.External, ext.StaleAfter, ext.LastSeen = true, time.Minute, t0
	targets := []SiteTarget{{Site: "ams1", Connectors: 1}}
	if d := Scale(ScaleInput{Now: t0, Targets: targets, Connectors: []Connector{ext}}); len(d.Start) != 0 {
		t.Fatalf("started %+v beside a healthy external connector", d.Start)
	}
	none := []SiteTarget{{Site: "ams1"}}
	if d := Scale(ScaleInput{Now: t0.Add(time.Hour), Targets: none, Connectors: []Connector{ext}}); len(d.Drain) != 0 || len(d.Reasons) != 2 {
		t.Fatalf("an idle external connector is drained or nothing says why it stays: %+v", d)
	}
	if ext.Stale(t0.Add(time.Minute)) || !ext.Stale(t0.Add(time.Minute+time.Second)) {
		t.Fatal("stale only past StaleAfter")
	}
	if never := (Connector{External: true, StaleAfter: time.Hour}); !never.Stale(t0) {
		t.Fatal("never reported is stale")
	}
	if own := conn("a1", "ams1", StateWarm, 0); own.Stale(t0.Add(24 * time.Hour)) {
		t.Fatal("PMO's own connectors are judged by their process, not by staleness")
	}
	ext.State = StateUnhealthy
	if d := Scale(ScaleInput{Now: t0, Targets: targets, Connectors: []Connector{ext}}); len(d.Start) != 1 {
		t.Fatalf("an unhealthy external connector counted: %+v", d.Start)
	}
}

func TestAssignEarliestDeadlineFirstWithoutOvercommit(t *testing.T) {
	conns := []Connector{conn("a1", "ams1", StateWarm, 3), conn("a2", "ams1", StateWarming, 0), conn("f1", "fra1", StateWarm, 0)}
	waiting := []Reservation{
		{MigrationID: "late", Site: "ams1", Deadline: t0.Add(time.Hour)},
		{MigrationID: "soon", Site: "ams1", Deadline: t0.Add(time.Minute)},
		{MigrationID: "urgent", Site: "ams1", Deadline: t0.Add(2 * time.Hour), Priority: 5},
		{MigrationID: "frankfurt", Site: "fra1", Deadline: t0},
		{MigrationID: "nowhere", Site: "lon1", Deadline: t0},
	}
	got, after := Assign(conns, waiting, nil)
	// a1 has one free slot (4 tasks max); a2 is still warming. The high-priority
	// migration wins the slot, the others wait.
	if len(got) != 2 || got[0].MigrationID != "frankfurt" && got[1].MigrationID != "frankfurt" {
		t.Fatalf("assignments %+v", got)
	}
	for _, a := range got {
		if a.MigrationID == "urgent" && a.ConnectorID != "a1" {
			t.Fatalf("urgent went to %s", a.ConnectorID)
		}
		if a.MigrationID == "soon" || a.MigrationID == "late" {
			t.Fatalf("%s assigned to a full connector", a.MigrationID)
		}
		if a.BandwidthBytesSec != Sizes[1].BandwidthBytesSec/4 {
			t.Fatalf("share %v", a.BandwidthBytesSec)
		}
	}
	if len(after[0].Migrations) != 4 || len(conns[0].Migrations) != 3 {
		t.Fatalf("input mutated or result wrong: %d %d", len(after[0].Migrations), len(conns[0].Migrations))
	}
	if after[2].State != StateActive {
		t.Fatalf("f1 state %s", after[2].State)
	}
}

func TestEstimateBatch(t *testing.T) {
	size := medium(t) // 4 MiB/s, 4 tasks
	var planned []PlannedMigration
	// 40 migrations of 36 MiB at ams1 in one hour: 1440 MiB/3600 s = 0.4 MiB/s of
	// bandwidth, but each needs 36 s at 1 MiB/s per task, 0.4 in flight: 1 connector.
	for i := range 40 {
		planned = append(planned, PlannedMigration{ID: fmt.Sprint("a", i), Site: "ams1", Bytes: 36 * mib,
			EarliestStart: t0, Deadline: t0.Add(time.Hour), SLATier: "silver"})
	}
	// 10 of 1440 MiB at fra1 in one hour: 4 MiB/s, but 1440 s each per task, so 4 in
	// flight; with ad-hoc demand of 3600 × 1 MiB more: 5 MiB/s: 2 connectors.
	for i := range 10 {
		planned = append(planned, PlannedMigration{ID: fmt.Sprint("f", i), Site: "fra1", Bytes: 1440 * mib,
			EarliestStart: t0, Deadline: t0.Add(time.Hour), SLATier: "silver"})
	}
	est := EstimateBatch(EstimateInput{
		Planned: planned,
		Demand:  []Demand{{Site: "fra1", Hour: t0, AdhocMean: 3600, AdhocLo: 3600, AdhocHi: 3600}},
		Sites:   []Site{{ID: "fra1", MeanBytes: float64(mib), StrictestQuantile: 0.5}},
		Tiers:   []SLATier{{Name: "silver", MaxTransfer: time.Hour}},
		Size:    size,
	})
	if len(est.Sites) != 2 {
		t.Fatalf("sites %+v", est.Sites)
	}
	ams, fra := est.Sites[0], est.Sites[1]
	if ams.Connectors != 1 || ams.Migrations != 40 || ams.Bytes != 40*36*mib {
		t.Fatalf("ams1 %+v", ams)
	}
	if fra.Connectors != 2 {
		t.Fatalf("fra1 %+v", fra)
	}
	// fra1: 14400 MiB over 8 MiB/s = 1800 s; one 1440 MiB migration at 1 MiB/s = 1440 s.
	if fra.ExpectedSeconds != 1800 || est.ExpectedSeconds != fra.ExpectedSeconds {
		t.Fatalf("duration %v / %v", fra.ExpectedSeconds, est.ExpectedSeconds)
	}
	if len(est.Reasons) != 2 || len(est.Bottlenecks) != 0 {
		t.Fatalf("reasons %v bottlenecks %+v", est.Reasons, est.Bottlenecks)
	}
}

// Each site's arithmetic on hand-checked cases: the quantile its strictest tier sets,
// the lead time, and the bound or override that applied, with a bottleneck where one
// leaves the site short.
func TestEstimateArithmetic(t *testing.T) {
	size := medium(t) // 4 MiB/s, 4 tasks: 1 MiB/s a task
	var planned []PlannedMigration
	// ams1: 4 × 900 MiB in an hour, plus the ad-hoc hour at gold's p90 (4 arrivals,
	// 14400 MiB): (3600 + 14400) MiB / 3600 s = 5 MiB/s, ⌈5/4⌉ = 2 connectors. At the
	// median (3600 MiB) it would be 2 MiB/s and 1.
	for i := range 4 {
		planned = append(planned, PlannedMigration{ID: fmt.Sprint("a", i), Site: "ams1", Bytes: 900 * mib,
			EarliestStart: t0.Add(20 * time.Minute), Deadline: t0.Add(80 * time.Minute)})
	}
	// fra1: 2 × 360 MiB, no tier in use, so the median: 1 arrival of the site's mean
	// 100 MiB (no volume forecast): 820 MiB / 3600 s, 0.2 in flight: 1 connector.
	for i := range 2 {
		planned = append(planned, PlannedMigration{ID: fmt.Sprint("f", i), Site: "fra1", Bytes: 360 * mib,
			EarliestStart: t0.Add(20 * time.Minute), Deadline: t0.Add(80 * time.Minute)})
	}
	in := EstimateInput{
		Planned: planned,
		Demand: []Demand{
			{Site: "ams1", Hour: t0, AdhocLo: 1, AdhocMean: 2, AdhocHi: 4, Model: "ets(A,N,A)",
				AdhocBytesLo: float64(1800 * mib), AdhocBytesMean: float64(3600 * mib), AdhocBytesHi: float64(14400 * mib)},
			{Site: "fra1", Hour: t0, AdhocLo: 0, AdhocMean: 1, AdhocHi: 3, Model: "snaive24", Fallback: "ets: too little history"},
		},
		Sites: []Site{{ID: "ams1", StrictestQuantile: 0.9, StrictestTier: "gold"}, {ID: "fra1", MeanBytes: float64(100 * mib), StrictestQuantile: 0.5}},
		Size:  size,
	}
	setting := 15 * time.Minute
	pin := Pin{Site: "ams1", Max: 1, Who: "ann", Why: "change freeze", Until: t0.Add(4 * time.Hour)}
	cases := []struct {
		name    string
		fleet   func(*FleetView)
		bounded [2]int // ams1, fra1
		kind    string // ams1's bound
		short   string // the connectors bottleneck's detail, if any
		reason  string // in ams1's sentence
	}{
		{name: "nothing bounds the need", bounded: [2]int{2, 1}, kind: BoundNone,
			reason: "2 connector(s), 2 after bounds (none: the pool allows 0 or more connectors, no pin at ams1)"},
		{name: "the pool maximum trims the site wanting most", fleet: func(f *FleetView) { f.Policy.MaxConnectors = 2 },
			bounded: [2]int{1, 1}, kind: BoundPoolMax, short: "the pool's maximum of 2 connectors leaves ams1 1 short of the 2 it needs"},
		{name: "a pin caps the site", fleet: func(f *FleetView) { f.Pins = []Pin{pin} },
			bounded: [2]int{1, 1}, kind: BoundPin,
			short:  "pinned to at most 1 by ann until Tue 14:00 (change freeze) leaves ams1 1 short of the 2 it needs",
			reason: "2 connector(s), 1 after bounds (pinned to at most 1 by ann"},
		{name: "a pin's minimum wins over the pool maximum", fleet: func(f *FleetView) {
			f.Policy.MaxConnectors = 2
			f.Pins = []Pin{{Site: "ams1", Min: 3}}
		}, bounded: [2]int{3, 1}, kind: BoundPin},
		{name: "forecast-only bounds nothing and starts nothing", fleet: func(f *FleetView) {
			f.Policy.Mode, f.Policy.MaxConnectors = ModeForecastOnly, 1
		}, bounded: [2]int{2, 1}, kind: BoundForecastOnly, reason: "forecast-only: the fleet plans 2 but starts none on its own"},
		{name: "the accuracy gate", fleet: func(f *FleetView) {
			f.Accuracy = []ForecastAccuracy{{Site: "ams1", Scored: 48, MAE: 1.25, Bias: -0.5, Coverage: 0.3, LoLevel: 0.1, HiLevel: 0.9}}
		}, bounded: [2]int{2, 1}, kind: BoundGate,
			reason: "forecast by ets(A,N,A): MAE 1.25 migrations/h (bias -0.50), 30% of 48 scored hours within its p10–p90 band"},
		{name: "the accuracy gate on a forecast without skill", fleet: func(f *FleetView) {
			f.Accuracy = []ForecastAccuracy{{Site: "ams1", Scored: 48, MAE: 1.25, Coverage: 0.9, LoLevel: 0.1, HiLevel: 0.9,
				SkillScored: 48, Pinball: 0.5, BaselinePinball: 0.4, Skill: -0.25}}
		}, bounded: [2]int{2, 1}, kind: BoundGate,
			reason: "90% of 48 scored hours within its p10–p90 band, skill -0.25 over the hour-of-day rate (pinball loss 0.500 against its 0.400)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := in
			in.Fleet = FleetView{Policy: DefaultPolicy(), LeadTime: setting, LeadTimeSetting: setting}
			if c.fleet != nil {
				c.fleet(&in.Fleet)
			}
			est := EstimateBatch(in)
			if len(est.Sites) != 2 || len(est.Reasons) != 2 {
				t.Fatalf("sites %+v reasons %q", est.Sites, est.Reasons)
			}
			ams, fra := est.Sites[0].Arithmetic, est.Sites[1].Arithmetic
			if got := [2]int{ams.Need.BoundedConnectors, fra.Need.BoundedConnectors}; got != c.bounded {
				t.Errorf("bounded %v, want %v", got, c.bounded)
			}
			if ams.Need.Connectors != 2 || fra.Need.Connectors != 1 || est.Sites[0].Connectors != 2 {
				t.Errorf("needs %d and %d, want 2 and 1 whatever the bounds", ams.Need.Connectors, fra.Need.Connectors)
			}
			if ams.Bound.Kind != c.kind {
				t.Errorf("bound %+v, want kind %s", ams.Bound, c.kind)
			}
			var short []string
			for _, b := range est.Bottlenecks {
				if b.Kind == "connectors" {
					short = append(short, b.Detail)
					if b.Site != "ams1" || !b.From.Equal(t0.Add(20*time.Minute)) || !b.To.Equal(t0.Add(80*time.Minute)) {
						t.Errorf("bottleneck %+v: want ams1 over the batch's window", b)
					}
				}
			}
			if got := strings.Join(short, " | "); got != c.short {
				t.Errorf("connectors bottlenecks %q, want %q", got, c.short)
			}
			if !strings.Contains(est.Reasons[0], c.reason) {
				t.Errorf("reason %q lacks %q", est.Reasons[0], c.reason)
			}
		})
	}

	t.Run("the quantile by tier, the capacity, the lead time and the model", func(t *testing.T) {
		in := in
		in.Fleet = FleetView{LeadTime: 16*time.Minute + 30*time.Second, LeadTimeSetting: setting,
			Accuracy: []ForecastAccuracy{{Site: "ams1", Scored: 120, MAE: 0.8, Bias: 0.1, Coverage: 0.82, LoLevel: 0.1, HiLevel: 0.9}}}
		est := EstimateBatch(in)
		ams, fra := est.Sites[0].Arithmetic, est.Sites[1].Arithmetic
		want := KnownWork{Migrations: 4, Bytes: 3600 * mib, From: t0.Add(20 * time.Minute), To: t0.Add(80 * time.Minute), WindowSeconds: 3600}
		if ams.Known != want {
			t.Errorf("known %+v, want %+v", ams.Known, want)
		}
		if a := ams.Adhoc; a.Quantile != 0.9 || a.Tier != "gold" || a.Migrations != 4 || a.Bytes != 14400*mib || a.Why != "gold, the strictest SLA tier at ams1" {
			t.Errorf("ams1 ad-hoc %+v: want gold's p90, 4 arrivals and 14400 MiB", a)
		}
		if a := fra.Adhoc; a.Quantile != 0.5 || a.Tier != "" || a.Migrations != 1 || a.Bytes != 100*mib || !strings.Contains(a.Why, "no SLA tier in use at fra1") {
			t.Errorf("fra1 ad-hoc %+v: want the median, 1 arrival of 100 MiB", a)
		}
		if c := ams.Capacity; c != (ConnectorCapacity{Size: "medium", BandwidthBytesSec: float64(4 * mib), MaxTasks: 4, PerTaskBytesSec: float64(mib)}) {
			t.Errorf("capacity %+v", c)
		}
		// 18000 MiB in 3600 s is 5 MiB/s; 3600 MiB at 1 MiB/s a task over 3600 s is 1 in flight.
		if n := ams.Need; math.Abs(n.BandwidthBytesSec-float64(5*mib)) > 1e-6 || math.Abs(n.InFlight-1) > 1e-9 {
			t.Errorf("need %+v", n)
		}
		// The batch starts in the 10:00 hour, so its connectors start 16m30s before it.
		if l := ams.LeadTime; l.Seconds != 990 || l.Source != "learned" || !l.StartAt.Equal(t0.Add(-990*time.Second)) {
			t.Errorf("lead time %+v", l)
		}
		if m := ams.Model; m.Name != "ets(A,N,A)" || m.Accuracy == nil || m.Accuracy.MAE != 0.8 || m.Accuracy.Coverage != 0.82 || m.Accuracy.Scored != 120 {
			t.Errorf("ams1 model %+v: want ets with its accuracy", m)
		}
		if m := fra.Model; m.Name != "snaive24" || m.Fallback == "" || m.Accuracy != nil || m.Error != "not scored yet" {
			t.Errorf("fra1 model %+v: want snaive24, its fallback, not scored yet", m)
		}
		for _, part := range []string{"4 migration(s), 3.5 GiB from Tue 10:20 to Tue 11:20", "plus 4.0 ad-hoc migration(s) (14.1 GiB) forecast at p90 (gold",
			"need 5.0 MiB/s and 1.0 in flight", "a medium connector carries 4.0 MiB/s, 4 tasks at 1.0 MiB/s each",
			"started from Tue 09:43, 16m30s ahead (learned lead time)", "MAE 0.80 migrations/h (bias +0.10), 82% of 120 scored hours"} {
			if !strings.Contains(est.Reasons[0], part) {
				t.Errorf("reason %q lacks %q", est.Reasons[0], part)
			}
		}
		if !strings.Contains(est.Reasons[1], "forecast by snaive24 (fallback: ets: too little history): not scored yet") {
			t.Errorf("fra1's reason %q", est.Reasons[1])
		}
	})
}

// The operator's policy on hand-checked cases: pool bounds, cooldown, no scale-in on a
// forecast alone, the accuracy gate, forecast-only mode, and pins over all of them.
func TestScalePolicy(t *testing.T) {
	now := t0.Add(time.Hour)
	idle := func(id, site string, createdAgo, idleFor time.Duration) Connector {
		c := conn(id, site, StateWarm, 0)
		c.CreatedAt, c.IdleSince = now.Add(-createdAgo), now.Add(-idleFor)
		return c
	}
	busy := func(id, site string, tasks int) Connector {
		c := conn(id, site, StateActive, tasks)
		c.CreatedAt = now.Add(-time.Hour)
		return c
	}
	policy := DefaultPolicy() // active, auto cooldown (2 m until boots are measured), gate at 50% over 24 h
	cases := []struct {
		name     string
		targets  []SiteTarget
		conns    []Connector
		waiting  []Reservation
		policy   func(*Policy)
		accuracy []ForecastAccuracy
		pins     []Pin
		boot     time.Duration
		start    string // sites, comma-separated
		drain    string
		reason   string // in the decision's reasons
	}{
		{name: "pool maximum trims the site wanting most",
			targets: []SiteTarget{{Site: "ams1", Connectors: 3}, {Site: "fra1", Connectors: 2}},
			policy:  func(p *Policy) { p.MaxConnectors = 3 },
			start:   "ams1,fra1,fra1", reason: "maximum of 3"}, // 3,2 → 2,2 → 1,2 (ties by site ID)
		{name: "pool minimum goes to the busiest peak",
			targets: []SiteTarget{{Site: "ams1", PeakConnectors: 1}, {Site: "fra1", PeakConnectors: 2}},
			policy:  func(p *Policy) { p.MinConnectors = 2 },
			start:   "fra1,fra1", reason: "minimum of 2"},
		{name: "idle past the cooldown is drained",
			targets: []SiteTarget{{Site: "ams1", Connectors: 0}},
			conns:   []Connector{idle("a1", "ams1", time.Hour, 20*time.Minute)},
			drain:   "a1"},
		{name: "idle within the cooldown is kept",
			targets: []SiteTarget{{Site: "ams1", Connectors: 0}},
			conns:   []Connector{idle("a1", "ams1", time.Hour, time.Minute)},
			reason:  "not been idle for the 2m0s cooldown"},
		{name: "an auto cooldown is half the measured boot",
			targets: []SiteTarget{{Site: "ams1", Connectors: 0}},
			conns:   []Connector{idle("a1", "ams1", time.Hour, 3*time.Minute)},
			boot:    8 * time.Minute,
			reason:  "not been idle for the 4m0s cooldown"},
		{name: "an operator's cooldown wins over the boots",
			targets: []SiteTarget{{Site: "ams1", Connectors: 0}},
			conns:   []Connector{idle("a1", "ams1", time.Hour, 5*time.Minute)},
			policy:  func(p *Policy) { p.ScaleInCooldown = 10 * time.Minute },
			boot:    8 * time.Minute,
			reason:  "not been idle for the 10m0s cooldown"},
		{name: "a site that just grew does not shrink",
			targets: []SiteTarget{{Site: "ams1", Connectors: 0}},
			conns:   []Connector{idle("a1", "ams1", time.Minute, time.Minute)},
			reason:  "within the 2m0s scale-in cooldown"},
		{name: "no scale-in on a forecast alone while work queues",
			targets: []SiteTarget{{Site: "ams1", Connectors: 0}},
			conns:   []Connector{idle("a1", "ams1", time.Hour, time.Hour)},
			waiting: []Reservation{{MigrationID: "m1", Site: "ams1"}},
			reason:  "the work there and 0 slot(s) of headroom need 1, more than the forecast's 0"},
		{name: "warm first, then scaled up when more work comes than forecast",
			targets: []SiteTarget{{Site: "ams1", Connectors: 1, Size: "medium"}},
			conns:   []Connector{conn("a1", "ams1", StateActive, 4)},
			waiting: []Reservation{{MigrationID: "m1", Site: "ams1"}, {MigrationID: "m2", Site: "ams1"}},
			start:   "ams1",
			reason:  "the work there and 0 slot(s) of headroom need 2, more than the forecast's 1"},
		{name: "headroom for the arrivals of one lead time",
			targets: []SiteTarget{{Site: "ams1", Connectors: 1, Size: "medium", Headroom: 2}},
			conns:   []Connector{conn("a1", "ams1", StateActive, 3)},
			start:   "ams1",
			reason:  "the work there and 2 slot(s) of headroom need 2, more than the forecast's 1"},
		{name: "accuracy gate scales on the work there is",
			targets:  []SiteTarget{{Site: "ams1", Connectors: 0, Size: "small"}},
			conns:    []Connector{busy("a1", "ams1", 2)},
			waiting:  []Reservation{{MigrationID: "m1", Site: "ams1"}, {MigrationID: "m2", Site: "ams1"}},
			accuracy: []ForecastAccuracy{{Site: "ams1", Scored: 48, Coverage: 0.3}},
			start:    "ams1", reason: "held 30% of 48 hours"},
		{name: "a forecast no better than the hour-of-day rate scales on the work there is",
			targets:  []SiteTarget{{Site: "ams1", Connectors: 2}},
			accuracy: []ForecastAccuracy{{Site: "ams1", Scored: 48, Coverage: 0.9, SkillScored: 48, Pinball: 0.61, BaselinePinball: 0.6}},
			reason:   "no better than the hour-of-day rate over 48 hours (pinball loss 0.610 against its 0.600)"},
		{name: "a forecast with skill is planned on",
			targets:  []SiteTarget{{Site: "ams1", Connectors: 2}},
			accuracy: []ForecastAccuracy{{Site: "ams1", Scored: 48, Coverage: 0.9, SkillScored: 48, Pinball: 0.5, BaselinePinball: 0.6}},
			start:    "ams1,ams1", reason: "wants 2 (forecast)"},
		{name: "skill needs enough scored hours",
			targets:  []SiteTarget{{Site: "ams1", Connectors: 1}},
			accuracy: []ForecastAccuracy{{Site: "ams1", Scored: 48, Coverage: 0.9, SkillScored: 5, Pinball: 0.9, BaselinePinball: 0.6}},
			start:    "ams1", reason: "wants 1 (forecast)"},
		{name: "the gate needs enough scored hours",
			targets:  []SiteTarget{{Site: "ams1", Connectors: 1}},
			accuracy: []ForecastAccuracy{{Site: "ams1", Scored: 5, Coverage: 0}},
			start:    "ams1", reason: "(forecast)"},
		{name: "forecast-only explains and changes nothing",
			targets: []SiteTarget{{Site: "ams1", Connectors: 2}},
			conns:   []Connector{idle("a1", "ams1", time.Hour, time.Hour)},
			policy:  func(p *Policy) { p.Mode = ModeForecastOnly },
			reason:  "forecast-only: the plan wants 2"},
		{name: "pins win over the pool maximum",
			targets: []SiteTarget{{Site: "ams1", Connectors: 1}},
			policy:  func(p *Policy) { p.MaxConnectors = 1 },
			pins:    []Pin{{Site: "ams1", Min: 3}},
			start:   "ams1,ams1,ams1", reason: "pinned to at least 3"},
		{name: "a pin says whose it is",
			targets: []SiteTarget{{Site: "ams1", Connectors: 3}},
			pins:    []Pin{{Site: "ams1", Max: 1, Who: "ann", Why: "host patching", Until: now.Add(time.Hour)}},
			start:   "ams1", reason: "wants 1 (pinned to at most 1 by ann until Tue 12:00 (host patching))"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := policy
			if c.policy != nil {
				c.policy(&p)
			}
			size, ok := SizeNamed(c.targets[0].Size)
			if !ok {
				size = Sizes[0]
			}
			d := Scale(ScaleInput{Now: now, Size: size, Targets: c.targets, Connectors: c.conns, Waiting: c.waiting, Policy: p, Accuracy: c.accuracy, Pins: c.pins, Boot: c.boot})
			var started []string
			for _, s := range d.Start {
				started = append(started, s.Site)
			}
			if got := strings.Join(started, ","); got != c.start {
				t.Errorf("start %q, want %q", got, c.start)
			}
			if got := strings.Join(drained(d), ","); got != c.drain {
				t.Errorf("drain %q, want %q", got, c.drain)
			}
			if all := strings.Join(d.Reasons, " | "); !strings.Contains(all, c.reason) {
				t.Errorf("reasons %q lack %q", all, c.reason)
			}
			if c.policy != nil && p.MaxConnectors > 0 && len(c.pins) == 0 && len(d.Bottlenecks) == 0 {
				t.Errorf("the pool's maximum cut a site short without a bottleneck")
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	cases := []struct {
		change func(*Policy)
		field  string
	}{
		{func(p *Policy) { p.Mode = "yolo" }, "mode"},
		{func(p *Policy) { p.MinConnectors = -1 }, "min_connectors"},
		{func(p *Policy) { p.MinConnectors, p.MaxConnectors = 5, 2 }, "max_connectors"},
		{func(p *Policy) { p.ScaleInCooldown = -time.Second }, "scale_in_cooldown"},
		{func(p *Policy) { p.GateMinCoverage = 1.5 }, "gate_min_coverage"},
		{func(p *Policy) { p.GateMinScored = 0 }, "gate_min_scored"},
	}
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		p := DefaultPolicy()
		c.change(&p)
		if err := p.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.field+":") {
			t.Errorf("got %v, want an error about %s", err, c.field)
		}
	}
}

func TestLeadTimeIsLearnedFromReadiness(t *testing.T) {
	cases := []struct {
		name  string
		floor time.Duration
		ready []float64
		want  time.Duration
		why   string
	}{
		{"too few starts", 15 * time.Minute, []float64{600, 700}, 15 * time.Minute, "too few"},
		{"fast connectors keep the floor", 15 * time.Minute, []float64{2, 3, 4, 5}, 15 * time.Minute, "the setting"},
		// p90 (empirical) of 10 starts of 1..10 minutes is 9 minutes; plus a 30 s tick.
		{"slow connectors push it out", 5 * time.Minute, []float64{60, 120, 180, 240, 300, 360, 420, 480, 540, 600}, 9*time.Minute + 30*time.Second, "p90 over 10 starts"},
	}
	for _, c := range cases {
		got, why := LeadTime(c.floor, 30*time.Second, c.ready)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("%s: %s (%s), want %s (%s)", c.name, got, why, c.want, c.why)
		}
	}
	// Headroom covers a boot and a tick, not the operator's floor.
	for _, c := range []struct {
		ready []float64
		want  time.Duration
	}{
		{[]float64{600, 700}, 30 * time.Second}, // unknown boots: a tick
		{[]float64{2, 3, 4, 5}, 35 * time.Second},
		{[]float64{60, 120, 180, 240, 300, 360, 420, 480, 540, 600}, 9*time.Minute + 30*time.Second},
	} {
		if got := ReplaceTime(30*time.Second, c.ready); got != c.want {
			t.Errorf("ReplaceTime(%v) = %s, want %s", c.ready, got, c.want)
		}
	}
}

func TestAnomaliesAndTheirMargin(t *testing.T) {
	outcomes := []SiteOutcomes{
		{Site: "ams1", RecentN: 10, RecentFailed: 4, RecentRate: 1e6, BaseN: 1000, BaseFailed: 20, BaseRate: 1e6}, // 40% vs 2%
		{Site: "fra1", RecentN: 10, RecentFailed: 0, RecentRate: 3e5, BaseN: 1000, BaseFailed: 20, BaseRate: 1e6}, // rate fell to 30%
		{Site: "lon1", RecentN: 3, RecentFailed: 3, BaseN: 1000},                                                  // too few to say
		{Site: "par1", RecentN: 10, RecentFailed: 1, RecentRate: 9e5, BaseN: 1000, BaseFailed: 50, BaseRate: 1e6}, // normal
	}
	got := Anomalies(outcomes)
	if len(got) != 2 || got[0].Site != "ams1" || got[1].Site != "fra1" {
		t.Fatalf("anomalies %+v, want ams1 (failures) and fra1 (rate)", got)
	}
	if !strings.Contains(got[0].Detail, "40% of the last 10") || !strings.Contains(got[1].Detail, "under half") {
		t.Fatalf("details %+v", got)
	}
	// 36000 arrivals/h of 1 MiB need 10 MiB/s, 3 medium (4 MiB/s) connectors; the
	// anomaly's × 1.5 makes it 15 MiB/s: 4.
	size := medium(t)
	mb := float64(mib)
	for _, c := range []struct {
		adhoc float64
		want  int
	}{{36000, 4}} {
		plan := Predict(PredictInput{Now: t0, Size: size, LeadTime: 30 * time.Minute,
			Demand:    []Demand{{Site: "ams1", Hour: t0, AdhocLo: c.adhoc, AdhocMean: c.adhoc, AdhocHi: c.adhoc}},
			Sites:     []Site{{ID: "ams1", MeanBytes: mb, StrictestQuantile: 0.5}},
			Anomalies: got[:1]})
		if plan.Targets[0].Connectors != c.want {
			t.Fatalf("with the anomaly margin, %d connectors, want %d", plan.Targets[0].Connectors, c.want)
		}
		if len(plan.Bottlenecks) != 1 || plan.Bottlenecks[0].Kind != "anomaly" {
			t.Fatalf("bottlenecks %+v", plan.Bottlenecks)
		}
	}
}

func TestMaintenanceMovesPlannedWorkAndBlocksPlacement(t *testing.T) {
	window := Event{Site: "fra1", Kind: "maintenance", Starts: t0.Add(time.Hour), Ends: t0.Add(3*time.Hour + 30*time.Minute)}
	demand := []Demand{
		{Site: "fra1", Hour: t0, Planned: 1, PlannedBytes: 10},
		{Site: "fra1", Hour: t0.Add(time.Hour), Planned: 2, PlannedBytes: 20},
		{Site: "fra1", Hour: t0.Add(2 * time.Hour), Planned: 3, PlannedBytes: 30},
		{Site: "fra1", Hour: t0.Add(3 * time.Hour), Planned: 4, PlannedBytes: 40},
		{Site: "fra1", Hour: t0.Add(4 * time.Hour), Planned: 1, PlannedBytes: 5},
		{Site: "ams1", Hour: t0.Add(2 * time.Hour), Planned: 7, PlannedBytes: 70},
	}
	got, why := shiftPlanned(demand, []Event{window})
	want := []float64{1, 0, 0, 0, 10, 7} // hours 1..3 overlap the window; 4 is the first hour after it
	for i, d := range got {
		if d.Planned != want[i] {
			t.Fatalf("hour %d at %s: %v planned, want %v", i, d.Site, d.Planned, want[i])
		}
	}
	if got[4].PlannedBytes != 95 || len(why) != 1 || !strings.Contains(why[0], "9 planned migration(s) moved") {
		t.Fatalf("bytes %v, reasons %v", got[4].PlannedBytes, why)
	}
	if demand[1].Planned != 2 {
		t.Fatal("shiftPlanned changed its input")
	}

	b := []Bottleneck{{Site: "fra1", Kind: "maintenance", From: window.Starts, To: window.Ends}}
	for _, c := range []struct {
		at   time.Time
		site string
		in   bool
	}{{t0.Add(30 * time.Minute), "fra1", false}, {t0.Add(time.Hour), "fra1", true}, {t0.Add(2 * time.Hour), "ams1", false}, {window.Ends, "fra1", false}} {
		if _, in := UnderMaintenance(b, c.site, c.at); in != c.in {
			t.Errorf("%s at %s: in maintenance %v, want %v", c.site, c.at, in, c.in)
		}
	}
	d := Scale(ScaleInput{Now: t0.Add(2 * time.Hour), Targets: []SiteTarget{{Site: "fra1", Connectors: 2}}, Bottlenecks: b, Policy: DefaultPolicy()})
	if len(d.Start) != 0 || !strings.Contains(strings.Join(d.Reasons, " "), "in maintenance until") {
		t.Fatalf("started %v during maintenance; reasons %v", d.Start, d.Reasons)
	}
}

// A what-if changes the plan's input, not the input it was given.
func TestWhatIfChangesThePlanNotTheWorld(t *testing.T) {
	size := medium(t)
	mb := float64(mib)
	base := PredictInput{Now: t0, Size: size, LeadTime: 30 * time.Minute,
		Demand: []Demand{{Site: "ams1", Hour: t0, AdhocMean: 3600, AdhocLo: 3600, AdhocHi: 3600}, {Site: "fra1", Hour: t0}},
		Sites:  []Site{{ID: "ams1", MeanBytes: mb, StrictestQuantile: 0.5, MaxTransfer: time.Hour}, {ID: "fra1", MeanBytes: mb, StrictestQuantile: 0.5}},
	}
	today := Predict(base)
	wave := make([]PlannedMigration, 0, 8)
	for i := range 8 {
		wave = append(wave, PlannedMigration{ID: fmt.Sprint(i), Site: "fra1", Bytes: mib, EarliestStart: t0.Add(10 * time.Minute)})
	}
	w := WhatIf{AddWave: wave, LoseLink: []string{"ams1"},
		Blackout: []Event{{Site: "fra1", Kind: "maintenance", Starts: t0.Add(5 * time.Hour), Ends: t0.Add(6 * time.Hour)}}}
	then := Predict(w.Apply(base))
	if today.Targets[0].Connectors != 1 || today.Targets[1].Connectors != 0 {
		t.Fatalf("today %+v", today.Targets)
	}
	if then.Targets[0].Connectors != 0 || then.Targets[1].Connectors != 2 {
		t.Fatalf("what-if targets %+v: ams1 lost its link, fra1 has a wave of 8 (2 connectors of 4)", then.Targets)
	}
	kinds := map[string]bool{}
	for _, b := range then.Bottlenecks {
		kinds[b.Site+"/"+b.Kind] = true
	}
	if !kinds["ams1/uplink"] || !kinds["fra1/maintenance"] {
		t.Fatalf("what-if bottlenecks %+v", then.Bottlenecks)
	}
	if len(base.Demand) != 2 || base.Demand[1].Planned != 0 || len(base.Events) != 0 {
		t.Fatal("the what-if changed its input")
	}
	if len(w.Describe()) != 3 {
		t.Fatalf("describe %v", w.Describe())
	}
}

func TestPlannedWaveIsSizedForItsBurst(t *testing.T) {
	size := medium(t) // 4 MiB/s, 4 tasks
	var wave []PlannedMigration
	for i := range 10 {
		wave = append(wave, PlannedMigration{ID: fmt.Sprint(i), Site: "lon1", Bytes: mib, EarliestStart: t0.Add(10 * time.Minute)})
	}
	site := Site{ID: "lon1", MeanBytes: float64(mib), StrictestQuantile: 0.5, MaxTransfer: 2 * time.Minute}
	demand := []Demand{{Site: "lon1", Hour: t0, Planned: 10, PlannedBytes: 10 * float64(mib)}}
	plan := Predict(PredictInput{Now: t0, Size: size, LeadTime: 30 * time.Minute, Demand: demand, Sites: []Site{site}, Planned: wave})
	// 10 migrations at once, 4 per connector: 3. The hour's average alone says 1.
	if plan.Targets[0].Connectors != 3 {
		t.Fatalf("%d connectors, want 3: %v", plan.Targets[0].Connectors, plan.Reasons)
	}
	if !strings.Contains(strings.Join(plan.Reasons, " "), "a planned wave of 10 migration(s)") {
		t.Fatalf("reasons %v", plan.Reasons)
	}
	// A wave beyond the lead time is not provisioned for yet.
	later := Predict(PredictInput{Now: t0.Add(-2 * time.Hour), Size: size, LeadTime: 30 * time.Minute, Sites: []Site{site}, Planned: wave})
	if later.Targets[0].Connectors != 0 {
		t.Fatalf("a wave 2 h away got %d connectors already", later.Targets[0].Connectors)
	}
}

// Rates depend on the site and fall with the load on the connector; the model learns
// both, so it beats the site's median rate on the newest, held-out migrations.
func TestRateModelBeatsTheSiteMedianOnHeldOutHistory(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 1))
	var obs []RateObservation
	for i := range 1500 {
		site := []string{"ams1", "fra1"}[i%2]
		base := map[string]float64{"ams1": 2 << 20, "fra1": 1 << 20}[site]
		conc := r.IntN(4)
		obs = append(obs, RateObservation{Site: site, Tier: "gold", Bytes: int64(1+r.IntN(32)) << 20,
			StartedAt: t0.Add(time.Duration(i) * 10 * time.Minute), Concurrent: conc,
			RateBytesSec: base / float64(1+conc) * math.Exp(0.2*r.NormFloat64())})
	}
	m, acc, err := TrainRateModel(obs)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Held != 300 || acc.TrainingRows != 1500 {
		t.Fatalf("held %d, trained on %d", acc.Held, acc.TrainingRows)
	}
	if acc.MedianError >= acc.BaselineError/2 {
		t.Fatalf("median error %.3f, baseline %.3f: the load should make the model far better", acc.MedianError, acc.BaselineError)
	}
	if math.Abs(acc.BandCoverage-0.8) > 0.1 {
		t.Fatalf("the 10–90%% band held %.2f of held-out rates", acc.BandCoverage)
	}
	lo, mid, hi := m.Predict(RateObservation{Site: "ams1", Tier: "gold", Bytes: 8 << 20, StartedAt: t0, Concurrent: 0})
	if !(lo < mid && mid < hi) || math.Abs(mid-2<<20)/(2<<20) > 0.15 {
		t.Fatalf("ams1 idle: %.0f %.0f %.0f, want about 2 MiB/s in the middle", lo, mid, hi)
	}
	if !strings.Contains(acc.String(), "held-out migrations") {
		t.Fatal(acc.String())
	}
	if _, _, err := TrainRateModel(obs[:10]); err == nil {
		t.Fatal("10 migrations trained a model")
	}
}

func TestRecentRatesCountOnlyMigrationsThatHadEnded(t *testing.T) {
	// Each moves 100 bytes: a ends at 10 s; b starts at 5 s and ends at 25 s; c starts
	// at 20 s and ends at 22 s.
	obs := []RateObservation{
		{Site: "ams1", Bytes: 100, StartedAt: t0, RateBytesSec: 10},
		{Site: "ams1", Bytes: 100, StartedAt: t0.Add(5 * time.Second), RateBytesSec: 5},
		{Site: "ams1", Bytes: 100, StartedAt: t0.Add(20 * time.Second), RateBytesSec: 50},
		{Site: "fra1", Bytes: 100, StartedAt: t0.Add(30 * time.Second), RateBytesSec: 1},
	}
	latest := withRecentRates(obs)
	got := []float64{obs[0].RecentRateBytesSec, obs[1].RecentRateBytesSec, obs[2].RecentRateBytesSec, obs[3].RecentRateBytesSec}
	if !slices.Equal(got, []float64{0, 0, 10, 0}) {
		t.Fatalf("recent rates %v: c sees only a, which had ended; fra1 sees nothing of ams1", got)
	}
	if !slices.Equal(latest["ams1"], []float64{10, 50, 5}) || !slices.Equal(latest["fra1"], []float64{1}) {
		t.Fatalf("latest %v", latest)
	}
}

func TestRateModelLearnsTheConnectorAndTheSitesRecentRates(t *testing.T) {
	// The rate is the connector's per-task share, and the site's link halves for the
	// second half of the history: only the connector's bandwidth and the recent rates
	// tell the model either.
	r := rand.New(rand.NewPCG(5, 1))
	var obs []RateObservation
	bws := []float64{1 << 20, 4 << 20, 16 << 20}
	for i := range 1500 {
		bw := bws[r.IntN(3)]
		slow := 1.0
		if i >= 750 {
			slow = 0.5
		}
		obs = append(obs, RateObservation{Site: "ams1", Tier: "gold", Bytes: 4 << 20,
			StartedAt: t0.Add(time.Duration(i) * 10 * time.Minute), ConnectorBandwidthBytesSec: bw,
			RateBytesSec: bw / 4 * slow * math.Exp(0.1*r.NormFloat64())})
	}
	m, acc, err := TrainRateModel(obs)
	if err != nil {
		t.Fatal(err)
	}
	if acc.MedianError > 0.2 || acc.MedianError >= acc.BaselineError/2 {
		t.Fatalf("median error %.3f, baseline %.3f", acc.MedianError, acc.BaselineError)
	}
	// Now, after the slowdown, a large connector's migration runs at about 2 MiB/s.
	_, mid, _ := m.Predict(RateObservation{Site: "ams1", Tier: "gold", Bytes: 4 << 20, StartedAt: t0.Add(1500 * 10 * time.Minute),
		ConnectorBandwidthBytesSec: 16 << 20})
	if math.Abs(mid-2<<20)/(2<<20) > 0.2 {
		t.Fatalf("large connector after the slowdown: %.0f B/s, want about 2 MiB/s", mid)
	}
}

// drained lists the IDs a decision drains.
func drained(d ScaleDecision) []string {
	var ids []string
	for _, x := range d.Drain {
		ids = append(ids, x.ID)
	}
	return ids
}

func TestPoissonQuantile(t *testing.T) {
	cases := []struct {
		l, q float64
		want int
	}{
		{0, 0.9, 0},
		{0.05, 0.9, 0},  // P(N = 0) = 0.95
		{1, 0.5, 1},     // P(N ≤ 1) = 0.74
		{1, 0.9, 2},     // P(N ≤ 1) = 0.74, P(N ≤ 2) = 0.92
		{2.2, 0.9, 4},   // P(N ≤ 3) = 0.82, P(N ≤ 4) = 0.93
		{10, 0.5, 10},   // the median of Poisson(10) is 10
		{400, 0.9, 426}, // about 400 + 1.2816 · 20 = 425.6
	}
	for _, c := range cases {
		if got := poissonQuantile(c.l, c.q); got != c.want {
			t.Errorf("poissonQuantile(%v, %v) = %d, want %d", c.l, c.q, got, c.want)
		}
	}
}

func TestThePoolsMaximumGoesToWorkAndStrandedStartsRespectIt(t *testing.T) {
	p := DefaultPolicy()
	p.MaxConnectors = 1
	targets := []SiteTarget{{Site: "ams1", Connectors: 1}, {Site: "fra1", Connectors: 1}, {Site: "lon1", Connectors: 1}}
	waiting := []Reservation{{MigrationID: "m1", Site: "fra1"}}
	d := Scale(ScaleInput{Now: t0, Targets: targets, Waiting: waiting, Policy: p})
	if len(d.Start) != 1 || d.Start[0].Site != "fra1" {
		t.Fatalf("start %+v: the one connector goes where work waits", d.Start)
	}
	anywhere := func(string) bool { return true }
	if got := Stranded(nil, d.Start, waiting, p, anywhere); len(got) != 0 {
		t.Fatalf("stranded %+v: fra1 has a start pending", got)
	}
	waiting = append(waiting, Reservation{MigrationID: "m2", Site: "lon1"})
	if got := Stranded(nil, d.Start, waiting, p, anywhere); len(got) != 0 {
		t.Fatalf("stranded %+v: the pool is at its maximum", got)
	}
	p.MaxConnectors = 0
	got := Stranded([]Connector{conn("f1", "fra1", StateWarm, 1)}, nil, waiting, p, func(site string) bool { return site != "ams1" })
	if len(got) != 1 || got[0].Site != "lon1" || !strings.Contains(got[0].Reason, "migration m2 waited at lon1") {
		t.Fatalf("stranded %+v: lon1 has none live", got)
	}
}

// Scale counts the work there is in connectors of the size new ones get, whatever its
// name (a simulator's one-task connector is not a two-task "small"), and never drains
// a connector that is still booting, however long it takes.
func TestScaleUsesTheConnectorSizeAndLeavesBootingConnectors(t *testing.T) {
	one := Size{Name: "one", BandwidthBytesSec: 1 << 20, MaxTasks: 1}
	waiting := []Reservation{{MigrationID: "m1", Site: "ams1"}, {MigrationID: "m2", Site: "ams1"}, {MigrationID: "m3", Site: "ams1"}}
	d := Scale(ScaleInput{Now: t0, Size: one, Targets: []SiteTarget{{Site: "ams1"}}, Waiting: waiting, Policy: DefaultPolicy()})
	if len(d.Start) != 3 {
		t.Fatalf("started %d for 3 waiting migrations on one-task connectors, want 3: %v", len(d.Start), d.Reasons)
	}
	p := DefaultPolicy()
	p.ScaleInCooldown = 2 * time.Minute
	booting := conn("b1", "ams1", StateWarming, 0)
	booting.CreatedAt = t0.Add(-5 * time.Minute)
	d = Scale(ScaleInput{Now: t0, Size: one, Targets: []SiteTarget{{Site: "ams1"}}, Connectors: []Connector{booting}, Policy: p})
	if len(d.Drain) != 0 || !strings.Contains(strings.Join(d.Reasons, " "), "still booting") {
		t.Fatalf("drained %v, reasons %v; want none drained while it boots, and said so", d.Drain, d.Reasons)
	}
}

// A wave's connectors start a wave lead time ahead, the 99th percentile of the boots
// and a tick: at 09:54, with boots of up to 6 minutes, a wave at 10:00 is provisioned
// for now, though the plain lead time (the p90 boot, 4m40s, and a tick) ends before it.
func TestAWaveIsPreWarmedAHighBootAhead(t *testing.T) {
	boots := []float64{200, 210, 220, 230, 240, 250, 260, 270, 280, 360}
	lead, _ := LeadTime(time.Minute, 30*time.Second, boots)
	wave := WaveLeadTime(lead, 30*time.Second, boots)
	if wave <= lead || wave != 6*time.Minute+30*time.Second {
		t.Fatalf("wave lead %s, lead %s; want the 99th percentile of the boots and a tick", wave, lead)
	}
	if got := WaveLeadTime(lead, time.Minute, boots[:2]); got != lead {
		t.Fatalf("with two boots measured: %s, want the lead time %s", got, lead)
	}
	now := time.Date(2026, 11, 2, 9, 54, 0, 0, time.UTC)
	size, _ := SizeNamed("medium")
	var planned []PlannedMigration
	for i := range 8 {
		planned = append(planned, PlannedMigration{ID: fmt.Sprint("w-", i), Site: "ams1", Bytes: 1 << 30,
			EarliestStart: now.Add(6 * time.Minute), Deadline: now.Add(6 * time.Hour)})
	}
	in := PredictInput{Now: now, Sites: []Site{{ID: "ams1", StrictestQuantile: 0.5}}, Planned: planned, Size: size, LeadTime: lead}
	if got := Predict(in).Targets[0].Connectors; got != 0 {
		t.Fatalf("without a wave lead: %d connectors; the test shows nothing", got)
	}
	in.WaveLeadTime = wave
	if got := Predict(in).Targets[0].Connectors; got != 2 {
		t.Fatalf("with the wave lead: %d connectors, want 2 for 8 migrations at 4 each", got)
	}
}

// Headroom is the Poisson quantile of the arrivals expected within a replacement
// time: the forecast's mean, not its quantile, or the quantile counts twice.
func TestHeadroomIsTheQuantileOfTheExpectedArrivals(t *testing.T) {
	// 6 an hour expected (12 at p90) over a 6-minute replacement: Poisson(0.6), whose
	// 90% quantile is 2 (P(N ≤ 1) = 0.878); Poisson(1.2), from the p90 rate, would say 3.
	plan := Predict(PredictInput{Now: t0, Size: medium(t), LeadTime: 5 * time.Minute, ReplaceTime: 6 * time.Minute,
		Demand: []Demand{{Site: "ams1", Hour: t0, AdhocLo: 2, AdhocMean: 6, AdhocHi: 12}},
		Sites:  []Site{{ID: "ams1", MeanBytes: float64(mib), StrictestQuantile: 0.9}}})
	if got := plan.Targets[0].Headroom; got != 2 {
		t.Fatalf("headroom %d slots, want 2: %s", got, plan.Targets[0].Reason)
	}
	if got := poissonQuantile(1.2, 0.9); got != 3 {
		t.Fatalf("the p90 rate's headroom would be %d, want 3: the test no longer tells them apart", got)
	}
}

// Near the end of a quiet hour before a busy one, the replacement window reaches into
// the busy hour, and the headroom counts its share: three minutes of 40 an hour are 2
// expected, whose 90% quantile is 4; the quiet hour alone would keep none.
func TestHeadroomCountsARiseTheReplacementWindowReaches(t *testing.T) {
	now := t0.Add(57 * time.Minute)
	in := PredictInput{Now: now, Size: medium(t), LeadTime: 5 * time.Minute, ReplaceTime: 6 * time.Minute,
		Demand: []Demand{{Site: "ams1", Hour: t0}, {Site: "ams1", Hour: t0.Add(time.Hour), AdhocMean: 40, AdhocHi: 48}},
		Sites:  []Site{{ID: "ams1", MeanBytes: float64(mib), StrictestQuantile: 0.9}}}
	if got, want := Predict(in).Targets[0].Headroom, poissonQuantile(2, 0.9); got != want || want != 4 {
		t.Fatalf("headroom %d slots, want %d for the 2 arrivals the next hour brings within the window", got, want)
	}
	in.Now = t0.Add(30 * time.Minute) // the window ends within the quiet hour
	if got := Predict(in).Targets[0].Headroom; got != 0 {
		t.Fatalf("headroom %d slots half an hour before the rise, want 0", got)
	}
}

func TestTheAutoCooldownFollowsTheBoots(t *testing.T) {
	auto := DefaultPolicy()
	cases := []struct {
		name   string
		policy Policy
		boot   time.Duration
		want   time.Duration
	}{
		{"no boots measured yet", auto, 0, DefaultScaleInCooldown},
		{"half the median boot", auto, 4 * time.Minute, 2 * time.Minute},
		{"a boot of seconds keeps the floor", auto, 3 * time.Second, MinScaleInCooldown},
		{"the operator's setting", Policy{ScaleInCooldown: 20 * time.Minute}, 4 * time.Minute, 20 * time.Minute},
	}
	for _, c := range cases {
		if got := c.policy.Cooldown(c.boot); got != c.want {
			t.Errorf("%s: cooldown %s, want %s", c.name, got, c.want)
		}
	}
	if got := BootTime([]float64{200, 1000, 240}); got != 240*time.Second {
		t.Errorf("boot time %s, want the median, 4m0s", got)
	}
	if got := BootTime([]float64{200, 240}); got != 0 {
		t.Errorf("boot time %s from two starts, want 0 (too few)", got)
	}
	if !strings.Contains(auto.String(), "scale-in cooldown auto") {
		t.Errorf("policy %q does not say its cooldown is automatic", auto)
	}
}

// Each hour's demand carries the baseline its forecast is scored against: the hour of
// day's mean over the last four weeks, as a Poisson rate, at the planning quantiles.
// Older history does not count.
func TestDemandCarriesTheHourOfDayBaseline(t *testing.T) {
	now := t0.Truncate(24 * time.Hour).Add(5 * 24 * time.Hour) // a midnight
	arrivals := make([]float64, 6*7*24)                        // six weeks, ending at now
	for k := range arrivals {
		hod := now.Add(time.Duration(k-len(arrivals)) * time.Hour).Hour()
		arrivals[k] = float64(hod % 4)
		if k < 2*7*24 {
			arrivals[k] = 50 // the two weeks before the last four: left out
		}
	}
	demand, _, err := ForecastDemand(DemandInput{Sites: []string{"ams1"}, Arrivals: [][]float64{arrivals}, Bytes: [][]float64{arrivals},
		Now: now, From: now, Hours: 24})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range demand {
		rate := float64(d.Hour.Hour() % 4)
		if lo, hi := forecast.CountQuantile(rate, 0, 0.1), forecast.CountQuantile(rate, 0, 0.9); d.BaselineLo != lo || d.BaselineHi != hi {
			t.Fatalf("%s: baseline %v..%v, want the Poisson quantiles of %v: %v..%v", d.Hour.Format("15:04"), d.BaselineLo, d.BaselineHi, rate, lo, hi)
		}
	}
	if demand[3].BaselineHi == 0 {
		t.Fatal("03:00 had three arrivals a day; its baseline is not zero")
	}
}
