package sim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// ReactiveSetting is one setting of the reactive+waves baseline's knobs.
type ReactiveSetting struct {
	Target   float64       `json:"target"`
	Headroom int           `json:"headroom"`
	Cooldown time.Duration `json:"cooldown"`
	LeadTime time.Duration `json:"lead_time"`
}

// String is the setting as starter simulate's flags.
func (s ReactiveSetting) String() string {
	return fmt.Sprintf("-reactive-target %.1f -reactive-headroom %d -reactive-cooldown %s -lead-time %s",
		s.Target, s.Headroom, shortDuration(s.Cooldown), shortDuration(s.LeadTime))
}

// shortDuration prints whole minutes as 2m, not 2m0s.
func shortDuration(d time.Duration) string {
	if d%time.Minute == 0 && d < time.Hour {
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// ReactiveGrid is the settings a competent operator would try for reactive+waves:
// target utilisation 0.5 to 1.0 by 0.1, 0 to 3 spare task slots a site, a scale-down
// window of 2, 5 or 10 minutes and a wave lead time of 5, 10 or 15 minutes (216 in
// all), with MinPerSite as the knobs give it.
func ReactiveGrid() []ReactiveSetting {
	var out []ReactiveSetting
	for _, target := range []float64{0.5, 0.6, 0.7, 0.8, 0.9, 1.0} {
		for headroom := range 4 {
			for _, cool := range []time.Duration{2 * time.Minute, 5 * time.Minute, 10 * time.Minute} {
				for _, lead := range []time.Duration{5 * time.Minute, 10 * time.Minute, 15 * time.Minute} {
					out = append(out, ReactiveSetting{Target: target, Headroom: headroom, Cooldown: cool, LeadTime: lead})
				}
			}
		}
	}
	return out
}

// Swept is reactive+waves run at one setting.
type Swept struct {
	Setting ReactiveSetting `json:"setting"`
	Result  Result          `json:"result"`
}

// Sweep runs reactive+waves at each setting, with base's other knobs (MinPerSite),
// workers at a time (a World is only read by a run), and returns the runs in the
// settings' order. done, if set, is called after each run, from the goroutine that
// ran it.
func Sweep(w *World, base Knobs, settings []ReactiveSetting, workers int, done func()) ([]Swept, error) {
	w = new(*w)
	w.Config.Progress = nil // runs go side by side; done reports them instead
	out := make([]Swept, len(settings))
	errs := make([]error, len(settings))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				out[i].Setting = settings[i]
				out[i].Result, errs[i] = runReactive(w, base, settings[i])
				if done != nil {
					done()
				}
			}
		})
	}
	for i := range settings {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("reactive+waves %s: %w", settings[i], err)
		}
	}
	return out, nil
}

// runReactive runs reactive+waves at one setting.
func runReactive(w *World, k Knobs, s ReactiveSetting) (Result, error) {
	k.TargetUtilization, k.ReactiveHeadroom, k.ReactiveCooldown, k.LeadTime = s.Target, s.Headroom, s.Cooldown, s.LeadTime
	p, err := k.Policies([]string{"reactive+waves"})
	if err != nil {
		return Result{}, err
	}
	return Run(w, p[0])
}

// Cheapest is the swept setting with the fewest connector-hours among those whose
// p99 wait is at most maxWait (ties: fewer breaches, then the earlier setting); false
// if none is.
func Cheapest(swept []Swept, maxWait time.Duration) (Swept, bool) {
	var best Swept
	found := false
	for _, s := range swept {
		if s.Result.WaitP99 > maxWait.Seconds() {
			continue
		}
		if !found || s.Result.ConnectorHours < best.Result.ConnectorHours ||
			s.Result.ConnectorHours == best.Result.ConnectorHours && s.Result.SLABreaches < best.Result.SLABreaches {
			best, found = s, true
		}
	}
	return best, found
}

// Frontier is the swept settings that no other beats on both connector-hours and p99
// wait, cheapest first: what each cost buys in waiting at best.
func Frontier(swept []Swept) []Swept {
	sorted := slices.Clone(swept)
	slices.SortStableFunc(sorted, func(a, b Swept) int {
		return cmp.Or(cmp.Compare(a.Result.ConnectorHours, b.Result.ConnectorHours), cmp.Compare(a.Result.WaitP99, b.Result.WaitP99))
	})
	var out []Swept
	for _, s := range sorted {
		if len(out) == 0 || s.Result.WaitP99 < out[len(out)-1].Result.WaitP99 {
			out = append(out, s)
		}
	}
	return out
}

// SweepMarkdown is a sweep's frontier as docs/simulator.md's table, and under it each
// of results (the other policies run on the same world) against the cheapest setting
// whose p99 wait is at most maxWait, in connector-hours.
func SweepMarkdown(swept []Swept, results []Result, maxWait time.Duration) string {
	p := message.NewPrinter(language.English)
	var b strings.Builder
	b.WriteString("| reactive+waves setting | SLA breaches | wait p95 | wait p99 | connector-hours |\n")
	b.WriteString("|---|---:|---:|---:|---:|\n")
	for _, s := range Frontier(swept) {
		r := s.Result
		b.WriteString(p.Sprintf("| `%s` | %d | %.0f s | %.0f s | %.1f |\n", s.Setting, r.SLABreaches, r.WaitP95, r.WaitP99, r.ConnectorHours))
	}
	best, ok := Cheapest(swept, maxWait)
	if !ok {
		b.WriteString(p.Sprintf("\nNo setting of the %d keeps the p99 wait within %s.\n", len(swept), maxWait))
		return b.String()
	}
	b.WriteString(p.Sprintf("\nThe cheapest of the %d settings with a p99 wait of at most %s: `%s`, %d SLA breaches, p99 %.0f s, %.1f connector-hours.\n",
		len(swept), maxWait, best.Setting, best.Result.SLABreaches, best.Result.WaitP99, best.Result.ConnectorHours))
	if len(results) > 0 {
		b.WriteString("\n| policy | SLA breaches | wait p99 | connector-hours | × that setting |\n|---|---:|---:|---:|---:|\n")
		for _, r := range results {
			b.WriteString(p.Sprintf("| %s | %d | %.0f s | %.1f | %.2f |\n", r.Name, r.SLABreaches, r.WaitP99, r.ConnectorHours,
				r.ConnectorHours/best.Result.ConnectorHours))
		}
	}
	return b.String()
}
