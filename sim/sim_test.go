package sim

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/trace"
)

var t0 = time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC)

// exact is a world without noise: one-task connectors of 1 MiB/s that take a minute to
// boot, a decision every minute.
func exact() Config {
	return Config{Size: planning.Size{Name: "one", BandwidthBytesSec: mib, MaxTasks: 1},
		ProvisionDelay: time.Minute, Tick: time.Minute, Sample: time.Minute, Seed: 1, GiveUpAfter: 7 * 24 * time.Hour}
}

func req(id string, at time.Duration, mibs int64, deadline time.Duration) trace.Request {
	return trace.Request{ID: id, Arrival: t0.Add(at), KnownAt: t0.Add(at), VMID: "vm-" + id, Site: "ams1", SLATier: "silver",
		Bytes: mibs * mib, Deadline: t0.Add(deadline)}
}

// fixed keeps n connectors per site from the first tick.
type fixed struct{ n int }

func (p fixed) Name() string       { return fmt.Sprintf("fixed-%d", p.n) }
func (p fixed) Reset(*World) error { return nil }
func (p fixed) Decide(v *View) (Decision, error) {
	var d Decision
	for _, site := range v.world.Sites {
		scaleTo(&d, v.Connectors, site, p.n, func() string { return "fixed" })
	}
	return d, nil
}

// spread is n ad-hoc migrations of mibs MiB each, due in 12 hours, one every every
// from ten minutes into the run, at the sites in turn.
func spread(n int, every time.Duration, mibs int64, sites ...string) []trace.Request {
	var reqs []trace.Request
	for i := range n {
		r := req(fmt.Sprintf("a%02d", i), 10*time.Minute+time.Duration(i)*every, mibs, 12*time.Hour)
		r.Site = sites[i%len(sites)]
		reqs = append(reqs, r)
	}
	return reqs
}

func mustRun(t *testing.T, cfg Config, reqs []trace.Request, p Policy) Result {
	t.Helper()
	w, err := NewWorld(reqs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(w, p)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestEventLoopOnAHandCheckedTrace(t *testing.T) {
	// Two 2 MiB migrations at 0 s on one connector that is ready at 60 s: b, due
	// first, runs 60–62 s, past its 61 s deadline; a runs 62–64 s.
	reqs := []trace.Request{req("a", 0, 2, time.Hour), req("b", 0, 2, 61*time.Second)}
	res := mustRun(t, exact(), reqs, fixed{1})
	if !reflect.DeepEqual(res.Waits, []float64{62, 60}) {
		t.Fatalf("waits %v, want [62 60]: earliest deadline first", res.Waits)
	}
	if res.SLABreaches != 1 || res.ScaleEvents != 1 || res.Migrations != 2 {
		t.Fatalf("breaches %d, scale events %d, migrations %d", res.SLABreaches, res.ScaleEvents, res.Migrations)
	}
	// Paid from 0 s to the last migration's end at 64 s; busy 4 task-seconds.
	if math.Abs(res.ConnectorHours-64.0/3600) > 1e-9 || math.Abs(res.Utilization-4.0/64) > 1e-9 {
		t.Fatalf("connector-hours %.6f, utilisation %.4f", res.ConnectorHours, res.Utilization)
	}
	if res.WaitP50 != 60 || res.WaitP99 != 62 {
		t.Fatalf("wait quantiles %v %v", res.WaitP50, res.WaitP99)
	}
	if len(res.Series) == 0 || res.Series[0].Demand != 2 || res.Series[0].Connectors != 1 || res.Series[0].Capacity != 0 {
		t.Fatalf("series %+v", res.Series)
	}
}

func TestFailedTransfersResume(t *testing.T) {
	cfg := exact()
	cfg.FailureRate = 0.999999 // every first transfer fails part-way
	reqs := []trace.Request{req("a", 0, 4, time.Hour), req("b", 0, 4, time.Hour)}
	res := mustRun(t, cfg, reqs, fixed{2})
	if res.Failures != 2 || res.SLABreaches != 0 {
		t.Fatalf("failures %d, breaches %d", res.Failures, res.SLABreaches)
	}
	// Resumed from where they stopped: 8 MiB moved in all at 1 MiB/s.
	paidTaskSeconds := res.ConnectorHours * 3600
	if got := res.Utilization * paidTaskSeconds; math.Abs(got-8) > 1e-6 {
		t.Fatalf("busy %.3f task-seconds, want 8", got)
	}
}

// A policy that starts no connector leaves its migrations unserved: the run says so
// and counts them past their SLA, rather than failing (POST /simulate answered 500
// for a proposed policy that starved its work).
func TestAPolicyThatStarvesItsWorkLeavesItUnserved(t *testing.T) {
	reqs := []trace.Request{req("a", 0, 1, time.Hour), req("b", time.Minute, 1, time.Hour)}
	res := mustRun(t, exact(), reqs, fixed{0})
	if res.Unserved != 2 || res.SLABreaches != 2 || res.ConnectorHours != 0 {
		t.Fatalf("unserved %d, breaches %d, connector-hours %v; want 2, 2, 0", res.Unserved, res.SLABreaches, res.ConnectorHours)
	}
	if res.Waits[1] < exact().GiveUpAfter.Seconds() {
		t.Fatalf("b waited %v s, less than the week the run waited for it", res.Waits[1])
	}
	// A run told to give up sooner does.
	soon := exact()
	soon.GiveUpAfter = 2 * time.Hour
	if res := mustRun(t, soon, reqs, fixed{0}); res.Unserved != 2 || res.Waits[1] > 3*3600 {
		t.Fatalf("unserved %d after a wait of %v s; want 2 within 3 hours", res.Unserved, res.Waits[1])
	}
	// Served work is not unserved.
	if res := mustRun(t, exact(), reqs, fixed{1}); res.Unserved != 0 {
		t.Fatalf("unserved %d with a connector", res.Unserved)
	}
}

func TestReactiveWaitsOneProvisioningDelay(t *testing.T) {
	// A request at 30 s: the tick at 60 s starts a connector, ready at 120 s.
	reqs := []trace.Request{req("a", 30*time.Second, 1, time.Hour)}
	res := mustRun(t, exact(), reqs, &Reactive{TargetUtilization: 1, Cooldown: 5 * time.Minute})
	if res.Waits[0] != 90 {
		t.Fatalf("waited %v s, want 90", res.Waits[0])
	}
}

// Reactive's headroom keeps spare slots warm: with two spare slots on one-task
// connectors, an arrival finds one ready, and the next one after it too.
func TestReactiveHeadroomKeepsSpareSlots(t *testing.T) {
	reqs := []trace.Request{req("a", 0, 1, time.Hour), req("b", 10*time.Minute, 60, time.Hour), req("c", 11*time.Minute, 1, time.Hour)}
	res := mustRun(t, exact(), reqs, &Reactive{TargetUtilization: 1, Cooldown: 5 * time.Minute, Headroom: 2})
	if res.Waits[1] != 0 || res.Waits[2] != 0 {
		t.Fatalf("waits %v; want none after the first: two slots are kept spare", res.Waits)
	}
	if res := mustRun(t, exact(), reqs, &Reactive{TargetUtilization: 1, Cooldown: 5 * time.Minute}); res.Waits[1] == 0 {
		t.Fatalf("without headroom the second waited nothing (%v): the test shows nothing", res.Waits)
	}
	if err := (&Reactive{TargetUtilization: 1, Headroom: -1}).Reset(nil); err == nil || !strings.Contains(err.Error(), "headroom") {
		t.Fatalf("a negative headroom: %v", err)
	}
}

func TestReactiveHoldsCapacityThroughItsCooldown(t *testing.T) {
	// Two bursts 3 minutes apart: within the 5-minute window the connectors stay.
	reqs := []trace.Request{req("a", 0, 30, time.Hour), req("b", 0, 30, time.Hour),
		req("c", 4*time.Minute, 30, time.Hour), req("d", 4*time.Minute, 30, time.Hour)}
	res := mustRun(t, exact(), reqs, &Reactive{TargetUtilization: 1, Cooldown: 5 * time.Minute})
	if res.ScaleEvents != 2 || res.Waits[2] != 0 || res.Waits[3] != 0 {
		t.Fatalf("scale events %d, waits %v: the second burst should find the first burst's connectors", res.ScaleEvents, res.Waits)
	}
	res = mustRun(t, exact(), reqs, &Reactive{TargetUtilization: 1, Cooldown: 0})
	if res.Waits[2] == 0 {
		t.Fatalf("without a cooldown the connectors went and the second burst should wait: %v", res.Waits)
	}
}

func TestOracleNeverWaits(t *testing.T) {
	reqs := []trace.Request{req("a", 10*time.Minute, 30, time.Hour), req("b", 10*time.Minute, 30, time.Hour),
		req("c", 50*time.Minute, 30, time.Hour)}
	res := mustRun(t, exact(), reqs, &Oracle{})
	if res.WaitP99 != 0 {
		t.Fatalf("oracle waited: %v", res.Waits)
	}
	// Two connectors for 30 s each, started at 8 min (two ticks early: boot and a
	// tick of slack); one for c from 48 min: far under keeping two all along.
	if res.ConnectorHours > 0.2 {
		t.Fatalf("oracle paid %.3f connector-hours", res.ConnectorHours)
	}
}

// With boots that vary (σ 0.25 around 4 minutes) and a wave of 40 migrations beside
// ad-hoc work at three sites, the oracle still makes nothing wait (from ten minutes
// into the run, time enough for a first boot): it knows each start's boot, and starts
// each connector within it.
func TestOracleNeverWaitsWhateverTheBoots(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FailureRate = 0
	reqs := spread(60, 11*time.Minute, 8<<10, "ams1", "fra1", "lon1")
	for i := range 40 {
		r := req(fmt.Sprintf("w%02d", i), 3*time.Hour, 8<<10, 12*time.Hour)
		r.KnownAt, r.Wave = t0, "w01"
		reqs = append(reqs, r)
	}
	slices.SortStableFunc(reqs, func(a, b trace.Request) int { return a.Arrival.Compare(b.Arrival) })
	if res := mustRun(t, cfg, reqs, &Oracle{}); slices.Max(res.Waits) != 0 {
		t.Fatalf("oracle waited: %v", res.Waits)
	}
	// And it is the floor: one migration's connector starts the last tick before the
	// migration arrives that still leaves it its own boot, and stops when it is done.
	one := []trace.Request{req("x", 2*time.Hour, 8<<10, 12*time.Hour)}
	one[0].KnownAt = t0 // the run starts two hours before it
	w, err := NewWorld(one, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(w, &Oracle{})
	if err != nil {
		t.Fatal(err)
	}
	paid := res.ConnectorHours * 3600
	floor := w.bootDelay("ams1", 0).Seconds() + w.Duration(0).Seconds()
	if res.Waits[0] != 0 || paid < floor || paid > floor+cfg.Tick.Seconds() {
		t.Fatalf("waited %v s and paid %.0f s; want no wait for %.0f s to %.0f s", res.Waits[0], paid, floor, floor+cfg.Tick.Seconds())
	}
}

// freeSlots records, at every tick, the fewest free task slots of ready connectors
// at any site.
type freeSlots struct {
	Policy
	fewest []int
}

func (p *freeSlots) Decide(v *View) (Decision, error) {
	fewest := math.MaxInt
	for _, site := range v.world.Sites {
		free := 0
		for _, c := range live(v.Connectors, site) {
			if c.State == planning.StateWarm || c.State == planning.StateActive {
				free += c.Size.MaxTasks - len(c.Migrations)
			}
		}
		fewest = min(fewest, free)
	}
	p.fewest = append(p.fewest, fewest)
	return p.Policy.Decide(v)
}

// The oracle with a spare slot has one free at every site at every tick once its first
// connectors are up, so a migration nobody announced would start at once; the plain
// oracle keeps none beside its work, and pays less.
func TestTheOracleWithASpareKeepsASlotFreeEverywhere(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FailureRate = 0
	reqs := spread(40, 7*time.Minute, 64<<10, "ams1", "fra1")
	spare, plain := &freeSlots{Policy: &Oracle{Spare: 1}}, &freeSlots{Policy: &Oracle{}}
	withSpare, without := mustRun(t, cfg, reqs, spare), mustRun(t, cfg, reqs, plain)
	first := int(10 * time.Minute / cfg.Tick) // time for the first boots
	if got := slices.Min(spare.fewest[first:]); got < 1 {
		t.Fatalf("a site had %d free slots at a tick; the spare keeps one: %v", got, spare.fewest)
	}
	if got := slices.Min(plain.fewest[first:]); got != 0 {
		t.Fatalf("without a spare, every site always had %d free slots", got)
	}
	if withSpare.ConnectorHours <= without.ConnectorHours || slices.Max(withSpare.Waits) != 0 {
		t.Fatalf("with a spare: %.2f connector-hours, waits up to %.0f s; without: %.2f", withSpare.ConnectorHours, slices.Max(withSpare.Waits), without.ConnectorHours)
	}
	w, err := NewWorld(reqs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(w, &Oracle{Spare: -1}); err == nil || !strings.Contains(err.Error(), "spare") {
		t.Fatalf("a negative spare ran: %v", err)
	}
}

func TestScheduledAndPredictiveAreReadyForAKnownWave(t *testing.T) {
	var reqs []trace.Request
	for i := range 3 {
		r := req(fmt.Sprint("w", i), 2*time.Hour, 10, 3*time.Hour)
		r.KnownAt, r.Wave = t0, "w01"
		reqs = append(reqs, r)
	}
	for _, p := range []Policy{&Scheduled{LeadTime: 5 * time.Minute},
		&Reactive{TargetUtilization: 1, Cooldown: 5 * time.Minute, Waves: &Scheduled{LeadTime: 5 * time.Minute}},
		&Predictive{Policy: planning.DefaultPolicy(), LeadTime: 5 * time.Minute, Horizon: 48, Model: "snaive", ForecastEvery: time.Hour}} {
		res := mustRun(t, exact(), reqs, p)
		if res.WaitP99 != 0 {
			t.Errorf("%s: waits %v for a wave it knew of", p.Name(), res.Waits)
		}
	}
	res := mustRun(t, exact(), reqs, &Reactive{TargetUtilization: 1, Cooldown: 5 * time.Minute})
	if res.WaitP50 < 60 {
		t.Errorf("reactive waited %v for a wave it could not know of", res.Waits)
	}
}

func TestASeededRunIsDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	var reqs []trace.Request
	for i := range 200 {
		r := req(fmt.Sprintf("m%03d", i), time.Duration(i)*97*time.Second, int64(1+(i*37)%64)<<10, 6*time.Hour)
		r.Site = []string{"ams1", "fra1", "lon1"}[i%3]
		reqs = append(reqs, r)
	}
	cfg.FailureRate = 0.1
	for _, p := range []func() Policy{
		func() Policy { return &Reactive{TargetUtilization: 0.8, Cooldown: 5 * time.Minute} },
		func() Policy {
			return &Predictive{Policy: planning.DefaultPolicy(), LeadTime: 5 * time.Minute, Horizon: 24, Model: "snaive", ForecastEvery: time.Hour}
		},
	} {
		a, b := mustRun(t, cfg, reqs, p()), mustRun(t, cfg, reqs, p())
		a.Seconds, b.Seconds = 0, 0
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: two runs differ", a.Name)
		}
		cfg2 := cfg
		cfg2.Seed = 2
		c := mustRun(t, cfg2, reqs, p())
		if c.ConnectorHours == a.ConnectorHours && reflect.DeepEqual(c.Waits, a.Waits) {
			t.Fatalf("%s: another seed gave the same run", a.Name)
		}
	}
}

func TestPredictiveForecastsFromTheHistoryBeforeTheRun(t *testing.T) {
	// Ad-hoc work at 10 and 40 minutes, at a site that saw three migrations an hour
	// for the two days before: the history has a connector warm from the first tick,
	// while without it the first arrival waits for a boot.
	reqs := []trace.Request{req("a", 10*time.Minute, 10, time.Hour), req("b", 40*time.Minute, 10, time.Hour)}
	history := Hourly{}
	for range 48 {
		history.Arrivals = append(history.Arrivals, 3)
		history.Bytes = append(history.Bytes, 30*mib)
	}
	policy := func(h map[string]Hourly) *Predictive {
		return &Predictive{Policy: planning.DefaultPolicy(), LeadTime: 5 * time.Minute, Horizon: 24, Model: "snaive",
			ForecastEvery: time.Hour, History: h, HistoryEnd: t0}
	}
	if res := mustRun(t, exact(), reqs, policy(map[string]Hourly{"ams1": history})); res.WaitP99 != 0 {
		t.Errorf("with the history: waits %v", res.Waits)
	}
	if res := mustRun(t, exact(), reqs, policy(nil)); res.Waits[0] == 0 {
		t.Errorf("without the history the first arrival should wait: %v", res.Waits)
	}

	// A history that ends after the run starts is refused.
	w, err := NewWorld(reqs, exact())
	if err != nil {
		t.Fatal(err)
	}
	late := policy(map[string]Hourly{"ams1": history})
	late.HistoryEnd = t0.Add(time.Hour)
	if _, err := Run(w, late); err == nil || !strings.Contains(err.Error(), "after the run starts") {
		t.Fatalf("got %v", err)
	}
}

func TestPredictiveLeavesNoWorkStranded(t *testing.T) {
	// Work at three sites under a pool maximum of one connector, and in forecast-only
	// mode: as the fleet does, a site where work waits with no live connector starts
	// one, so everything is done.
	var reqs []trace.Request
	for i := range 30 {
		r := req(fmt.Sprintf("m%03d", i), time.Duration(i)*7*time.Minute, 2, 10*time.Hour)
		r.Site = []string{"ams1", "fra1", "lon1"}[i%3]
		reqs = append(reqs, r)
	}
	capped := planning.DefaultPolicy()
	capped.MaxConnectors = 1
	watching := planning.DefaultPolicy()
	watching.Mode = planning.ModeForecastOnly
	for _, policy := range []planning.Policy{capped, watching} {
		res := mustRun(t, exact(), reqs, &Predictive{Policy: policy, LeadTime: 5 * time.Minute, Horizon: 24, Model: "snaive", ForecastEvery: time.Hour})
		if res.SLABreaches != 0 || res.WaitP99 > 60 {
			t.Errorf("%s, at most %d: breaches %d, waits %v", policy.Mode, policy.MaxConnectors, res.SLABreaches, res.Waits)
		}
	}
}

// The predictive policy keeps the operators' overrides as the fleet does, until they
// expire: work that arrives in a pause waits for its end, and then gets a connector.
func TestPredictiveKeepsAPauseUntilItExpires(t *testing.T) {
	reqs := []trace.Request{req("a", 0, 1, 10*time.Hour)}
	pause := planning.Override{ID: "o1", Kind: planning.OverridePause, Who: "ann", Why: "freeze", At: t0, Expires: t0.Add(time.Hour)}
	res := mustRun(t, exact(), reqs, &Predictive{Policy: planning.DefaultPolicy(), LeadTime: 5 * time.Minute, Horizon: 24, Model: "snaive",
		ForecastEvery: time.Hour, Overrides: []planning.Override{pause}})
	if res.Unserved != 0 || res.Waits[0] < 3600 || res.Waits[0] > 3600+3*60 {
		t.Fatalf("unserved %d, waited %v s; want served within a boot and a tick of the pause's end (3600 s)", res.Unserved, res.Waits[0])
	}
}

// A migration whose transfer fails waits again for a connector, and its waits add up;
// waits and breaches are also told apart for wave and ad-hoc migrations.
func TestWaitsAfterAFailedTransferCountAndWavesAreToldApart(t *testing.T) {
	cfg := exact()
	cfg.FailureRate = 0.999999 // every first transfer fails part-way
	// One one-task connector, ready at 60 s. The wave's migration has the earlier
	// deadline and goes first; when its transfer fails, c (arrived meanwhile, due
	// sooner still) takes the connector, and the wave's migration waits again.
	a := req("a", 0, 4, time.Hour)
	b := req("b", 0, 4, 30*time.Minute)
	b.Wave = "w01"
	c := req("c", 60*time.Second+100*time.Millisecond, 4, 20*time.Minute)
	res := mustRun(t, cfg, []trace.Request{a, b, c}, fixed{1})
	if res.Waits[1] <= 61 {
		t.Fatalf("waits %v: b waited 60 s for the boot, then again behind c after its failed transfer", res.Waits)
	}
	if res.Wave.Migrations != 1 || res.Adhoc.Migrations != 2 || res.Wave.WaitP50 != res.Waits[1] {
		t.Fatalf("wave %+v, ad hoc %+v, waits %v", res.Wave, res.Adhoc, res.Waits)
	}
}

// The predictive policy sizes a site's migrations as the fleet's profiles do: from the
// history of the last four weeks where there is one, and from the inventory (the
// trace's VMs, each once) before.
func TestPredictiveLearnsMigrationSizesFromHistory(t *testing.T) {
	reqs := []trace.Request{req("a", 2*time.Hour, 1, 10*time.Hour), req("b", 3*time.Hour, 1, 10*time.Hour)}
	reqs[1].VMID = reqs[0].VMID // the same VM twice: the inventory counts it once
	fresh := &Predictive{Policy: planning.DefaultPolicy(), LeadTime: 5 * time.Minute, Horizon: 24, Model: "snaive", ForecastEvery: time.Hour}
	w, err := NewWorld(reqs, exact())
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.Reset(w); err != nil {
		t.Fatal(err)
	}
	if got := fresh.sites[0].MeanBytes; got != float64(mib) {
		t.Fatalf("before any history: mean %v bytes, want the inventory's %v", got, mib)
	}
	hist := Hourly{Arrivals: make([]float64, 48), Bytes: make([]float64, 48)}
	hist.Arrivals[40], hist.Bytes[40] = 10, 10<<30 // ten 1 GiB migrations the day before
	p := &Predictive{Policy: planning.DefaultPolicy(), LeadTime: 5 * time.Minute, Horizon: 24, Model: "snaive", ForecastEvery: time.Hour,
		History: map[string]Hourly{"ams1": hist}, HistoryEnd: t0}
	mustRun(t, exact(), reqs, p)
	if got := p.sites[0].MeanBytes; got < 512<<20 {
		t.Fatalf("mean %v bytes, want about 1 GiB, the history's", got)
	}
}

// The frontier keeps the settings no other beats on both cost and p99 wait, cheapest
// first; the cheapest within a wait is the cheapest of those that keep it.
func TestSweepFrontierAndCheapest(t *testing.T) {
	run := func(ch, p99 float64, breaches int) Swept {
		return Swept{Setting: ReactiveSetting{Target: ch / 1000}, Result: Result{ConnectorHours: ch, Outcomes: Outcomes{WaitP99: p99, SLABreaches: breaches}}}
	}
	swept := []Swept{run(300, 10, 3), run(100, 200, 9), run(200, 50, 5), run(250, 60, 4), run(200, 40, 6), run(400, 0, 1)}
	var got []float64
	for _, s := range Frontier(swept) {
		got = append(got, s.Result.ConnectorHours, s.Result.WaitP99)
	}
	if want := []float64{100, 200, 200, 40, 300, 10, 400, 0}; !slices.Equal(got, want) {
		t.Errorf("frontier %v, want %v", got, want)
	}
	if best, ok := Cheapest(swept, time.Minute); !ok || best.Result.ConnectorHours != 200 || best.Result.WaitP99 != 50 {
		t.Errorf("cheapest within a minute: %+v, want the first at 200 connector-hours", best.Result)
	}
	if _, ok := Cheapest(swept, -time.Second); ok {
		t.Error("a wait no setting keeps found one")
	}
	if got := (ReactiveSetting{Target: 1, Headroom: 2, Cooldown: 2 * time.Minute, LeadTime: 10 * time.Minute}).String(); got != "-reactive-target 1.0 -reactive-headroom 2 -reactive-cooldown 2m -lead-time 10m" {
		t.Errorf("setting %q", got)
	}
	if n := len(ReactiveGrid()); n != 216 {
		t.Errorf("the grid has %d settings, want 216", n)
	}
}
