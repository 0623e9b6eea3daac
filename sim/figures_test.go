package sim

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pmo-dev/pmo/trace"
	"github.com/pmo-dev/pmo/widecsv"
)

// policyRuns is a world and the five policies' results on it, with starter
// simulate's defaults.
type policyRuns struct {
	w       *World
	results []Result
	err     error
}

// runPolicies draws the trace of series with p and runs the five policies on it.
func runPolicies(series []float64, p trace.Params) policyRuns {
	reqs, err := trace.Generate(series, p)
	if err != nil {
		return policyRuns{err: err}
	}
	w, err := NewWorld(reqs, DefaultConfig())
	if err != nil {
		return policyRuns{err: err}
	}
	policies, err := DefaultKnobs().Policies(PolicyNames)
	if err != nil {
		return policyRuns{err: err}
	}
	run := policyRuns{w: w}
	for _, p := range policies {
		r, err := Run(w, p)
		if err != nil {
			return policyRuns{err: err}
		}
		run.results = append(run.results, r)
	}
	return run
}

// azureOnce runs them on the 28-day Azure-shaped trace once, for the tests that read
// them.
var azureOnce = sync.OnceValue(func() policyRuns {
	series, err := azureSeries()
	if err != nil {
		return policyRuns{err: err}
	}
	return runPolicies(series, trace.DefaultParams())
})

// azureRuns are the world and the five policies' results on it.
func azureRuns(t *testing.T) (*World, []Result) {
	t.Helper()
	skipAhead(t)
	r := azureOnce()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.w, r.results
}

// The results table docs/simulator.md publishes is what the simulator gives today on
// the 28-day Azure-shaped trace with starter simulate's defaults (the table is what
// `starter simulate -trace trace.csv -markdown` prints), within 1%: a change that
// moves the figures fails here until the docs are measured again.
func TestThePublishedFiguresAreWhatTheSimulatorGives(t *testing.T) {
	_, results := azureRuns(t)
	publishedAlike(t, "## Results", Markdown(results))
}

// The sweep of reactive+waves docs/simulator.md publishes (what `starter simulate
// -policy predictive,oracle -markdown -sweep` prints after the policies' table) is
// what the simulator gives, within 1%, and so is the setting it names the cheapest.
func TestThePublishedSweepIsWhatTheSimulatorGives(t *testing.T) {
	w, results := azureRuns(t)
	swept, err := Sweep(w, DefaultKnobs(), ReactiveGrid(), runtime.GOMAXPROCS(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	var predictive []Result
	for _, r := range results {
		if r.Name == "predictive" || r.Name == "oracle" {
			predictive = append(predictive, r)
		}
	}
	got := SweepMarkdown(swept, predictive, time.Minute)
	publishedAlike(t, "### The reactive baseline, tuned", got)
	best, _ := Cheapest(swept, time.Minute)
	if doc := docsSimulator(t); !strings.Contains(doc, "cheapest of the 216 settings with a p99 wait of at most 1m0s: `"+best.Setting.String()+"`") {
		t.Errorf("docs/simulator.md does not name %s the cheapest setting:\n%s", best.Setting, got)
	}
}

// The predictive policy's variants docs/simulator.md publishes (each row is `starter
// simulate -policy predictive -markdown` with the flags it names; the last is told
// the trace's true rates) are what the simulator gives, within 1%.
func TestThePublishedVariantsAreWhatTheSimulatorGives(t *testing.T) {
	w, _ := azureRuns(t)
	series, err := azureSeries()
	if err != nil {
		t.Fatal(err)
	}
	rates, err := trace.Intensity(series, trace.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	variants := []struct {
		name  string
		knobs func(k *Knobs)
		rates bool // told the true rates
	}{
		{"defaults", func(*Knobs) {}, false},
		{"`-quantile 0.75`", func(k *Knobs) { k.Quantile = 0.75 }, false},
		{"`-quantile 0.6`", func(k *Knobs) { k.Quantile = 0.6 }, false},
		{"`-cooldown 1m` (a quarter of a boot)", func(k *Knobs) { k.Policy.ScaleInCooldown = time.Minute }, false},
		{"`-cooldown 4m` (a whole boot)", func(k *Knobs) { k.Policy.ScaleInCooldown = 4 * time.Minute }, false},
		{"`-forecast-every 1h`", func(k *Knobs) { k.ForecastEvery = time.Hour }, false},
		{"`-model combo` (for arrivals too)", func(k *Knobs) { k.Model = "combo" }, false},
		{"the true rates (a perfect forecast)", func(*Knobs) {}, true},
	}
	results := make([]Result, len(variants))
	var wg sync.WaitGroup
	for i, v := range variants {
		wg.Go(func() {
			k := DefaultKnobs()
			v.knobs(&k)
			ps, err := k.Policies([]string{"predictive"})
			if err != nil {
				t.Error(err)
				return
			}
			p := ps[0].(*Predictive)
			if v.rates {
				p.Rates = rates
			}
			r, err := Run(w, p)
			if err != nil {
				t.Error(err)
				return
			}
			r.Name = v.name
			results[i] = r
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	publishedAlike(t, "### Against the targets", strings.Replace(Markdown(results), "| policy |", "| predictive with |", 1))
}

// The floor docs/simulator.md publishes for a policy that cannot see arrivals, the
// oracle keeping a spare slot at every site (`starter simulate -policy oracle
// -oracle-spare 1 -markdown`), is what the simulator gives, within 1%.
func TestThePublishedFloorWithoutForesightOfArrivalsIsWhatTheSimulatorGives(t *testing.T) {
	w, _ := azureRuns(t)
	r, err := Run(w, &Oracle{Spare: 1})
	if err != nil {
		t.Fatal(err)
	}
	publishedAlike(t, "### Against the targets", Markdown([]Result{r}))
}

// docsSimulator is docs/simulator.md.
func docsSimulator(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../docs/simulator.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(doc)
}

// publishedAlike checks that every markdown table in got is in docs/simulator.md,
// found by its header line from section's first line on, with the same rows and every number within 1%.
func publishedAlike(t *testing.T, section, got string) {
	t.Helper()
	doc := docsSimulator(t)
	if i := strings.Index(doc, section); i >= 0 {
		doc = doc[i:]
	} else {
		t.Fatalf("docs/simulator.md has no %q", section)
	}
	for _, table := range tablesOf(got) {
		published := tableAt(doc, table[0])
		if len(published) != len(table) {
			t.Errorf("docs/simulator.md's table %q has %d lines, the simulator gives %d:\n%s", table[0], len(published), len(table), got)
			continue
		}
		for i := 2; i < len(table); i++ {
			want, have := cells(published[i]), cells(table[i])
			if want[0] != have[0] || len(want) != len(have) {
				t.Errorf("row %d: published %q, the simulator gives %q", i, published[i], table[i])
				continue
			}
			for j := 1; j < len(want); j++ {
				a, b := number(t, want[j]), number(t, have[j])
				if math.Abs(a-b) > max(0.01*math.Abs(a), 1) && !(a < 10 && math.Abs(a-b) < 0.015) {
					t.Errorf("%s, column %d: published %s, the simulator gives %s (more than 1%% apart)\n%s", want[0], j, want[j], have[j], got)
				}
			}
		}
	}
}

// tablesOf are the markdown tables in text, each as its lines.
func tablesOf(text string) [][]string {
	var out [][]string
	var cur []string
	for _, l := range append(strings.Split(text, "\n"), "") {
		if strings.HasPrefix(l, "|") {
			cur = append(cur, strings.TrimSpace(l))
			continue
		}
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur = nil
	}
	return out
}

// tableAt is the markdown table whose header line is header.
func tableAt(doc, header string) []string {
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != header {
			continue
		}
		var table []string
		for _, row := range lines[i:] {
			if !strings.HasPrefix(row, "|") {
				break
			}
			table = append(table, strings.TrimSpace(row))
		}
		return table
	}
	return nil
}

// cells are a table row's cells, trimmed.
func cells(row string) []string {
	parts := strings.Split(strings.Trim(row, "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// number reads a cell such as "2,920.7", "18 s" or "30%".
func number(t *testing.T, cell string) float64 {
	t.Helper()
	x, err := strconv.ParseFloat(strings.NewReplacer(",", "", " s", "", "%", "").Replace(cell), 64)
	if err != nil {
		t.Fatalf("cell %q: %v", cell, err)
	}
	return x
}

// The figures docs/simulator.md publishes for a month shaped by M4's first hourly
// series (`starter gen-trace -shape Hourly-train.csv -series H1 -step 1h`), a strong
// daily cycle, are what the simulator gives, within 1%: the five policies, and the
// sweep of reactive+waves with the policies against its cheapest setting.
func TestThePublishedSecondShapeIsWhatTheSimulatorGives(t *testing.T) {
	skipAhead(t)
	run := runPolicies(h1Series(t), h1Params())
	if run.err != nil {
		t.Fatal(run.err)
	}
	w, results := run.w, run.results
	// The settings of the published frontier, not the whole grid: the frontier of any
	// settings that hold it is the same, and the Azure test sweeps the whole grid.
	doc := docsSimulator(t)
	var settings []ReactiveSetting
	for _, row := range tableAt(doc[strings.Index(doc, "### A second shape"):], "| reactive+waves setting | SLA breaches | wait p95 | wait p99 | connector-hours |") {
		var s ReactiveSetting
		var cool, lead string
		if _, err := fmt.Sscanf(row, "| `-reactive-target %g -reactive-headroom %d -reactive-cooldown %s -lead-time %s", &s.Target, &s.Headroom, &cool, &lead); err != nil {
			continue // the header
		}
		s.Cooldown, _ = time.ParseDuration(cool)
		s.LeadTime, _ = time.ParseDuration(strings.TrimSuffix(lead, "`"))
		settings = append(settings, s)
	}
	swept, err := Sweep(w, DefaultKnobs(), settings, runtime.GOMAXPROCS(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	publishedAlike(t, "### A second shape", Markdown(results)+"\n"+SweepMarkdown(swept, results, time.Minute))
}

// h1Series is M4's first hourly series, the second shape's.
func h1Series(t *testing.T) []float64 {
	t.Helper()
	all, err := widecsv.ReadFile("../../shared/data/m4-hourly/Hourly-train.csv")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(all, func(s widecsv.Series) bool { return s.ID == "H1" })
	if i < 0 {
		t.Fatal("M4's hourly training file has no H1")
	}
	return all[i].Values
}

// h1Params draw the second shape's trace: its series is hourly.
func h1Params() trace.Params {
	p := trace.DefaultParams()
	p.Step = time.Hour
	return p
}

// The figures docs/simulator.md publishes for the predictive policy spending the SLA
// slack (`starter simulate -policy predictive -sla-slack -markdown`, which prints the
// tiers' table too) on both months, and for the reactive+waves settings it names the
// cheapest with no more SLA breaches, are what the simulator gives, within 1%.
func TestThePublishedSLASlackIsWhatTheSimulatorGives(t *testing.T) {
	w, results := azureRuns(t)
	reqs, err := trace.Generate(h1Series(t), h1Params())
	if err != nil {
		t.Fatal(err)
	}
	h1, err := NewWorld(reqs, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defaults := results[slices.IndexFunc(results, func(r Result) bool { return r.Name == "predictive" })]
	slack := DefaultKnobs()
	slack.Policy.SLASlack = true
	// The cheapest reactive+waves settings of the sweep with no more breaches.
	matched := func(s ReactiveSetting) Knobs {
		k := DefaultKnobs()
		k.TargetUtilization, k.ReactiveHeadroom, k.ReactiveCooldown, k.LeadTime = s.Target, s.Headroom, s.Cooldown, s.LeadTime
		return k
	}
	runs := []struct {
		w      *World
		name   string
		policy string
		knobs  Knobs
	}{
		{w, "predictive `-sla-slack`", "predictive", slack},
		{w, "reactive+waves, as many breaches", "reactive+waves", matched(ReactiveSetting{Target: 0.9, Cooldown: 10 * time.Minute, LeadTime: 5 * time.Minute})},
		{h1, "H1: predictive `-sla-slack`", "predictive", slack},
		{h1, "H1: reactive+waves, as many breaches", "reactive+waves", matched(ReactiveSetting{Target: 0.9, Headroom: 1, Cooldown: 2 * time.Minute, LeadTime: 5 * time.Minute})},
	}
	got := make([]Result, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Go(func() {
			ps, err := r.knobs.Policies([]string{r.policy})
			if err != nil {
				t.Error(err)
				return
			}
			got[i], err = Run(r.w, ps[0])
			if err != nil {
				t.Error(err)
			}
			got[i].Name = r.name
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	defaults.Name = "predictive"
	all := append([]Result{defaults}, got...)
	publishedAlike(t, "### Spending the SLA slack", Markdown(all)+"\n"+TiersMarkdown(all[:2]))
}

// skipAhead skips a test of published figures when scripts/test-ahead.sh has moved the
// clock: the figures are of traces with fixed dates on the simulated clock, which the
// wall clock does not reach, and running them again would cost minutes.
func skipAhead(t *testing.T) {
	t.Helper()
	if os.Getenv("PMO_CLOCK_SHIFT") != "" {
		t.Skip("published figures do not read the wall clock")
	}
}
