package sim

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/pmo-dev/pmo/trace"
)

//go:embed report.html.tmpl
var reportTemplate string

// waitBuckets are the upper bounds, in seconds, of the wait histogram's bars; the last
// bar holds the rest.
var waitBuckets = []float64{0, 30, 60, 120, 300, 600, 1800}

// chart is one policy's demand and capacity over a span, as SVG polylines.
type chart struct {
	Name                     string
	Demand, Capacity, Paid   string // points attributes
	Width, Height            int
	MaxY                     int
	Ticks                    []axisTick
	PeakDemand, PeakCapacity int
}

type axisTick struct {
	X     float64
	Label string
}

// view is a span of the run that the report draws for every policy.
type view struct {
	Title, Note string
	Charts      []chart
}

// bar is one bucket of one policy's waits.
type bar struct {
	Label   string
	Share   float64 // of the policy's migrations
	Width   float64 // in pixels
	Percent string
}

type waitChart struct {
	Name string
	Bars []bar
}

// Report renders the results as one self-contained HTML page: the figures, each
// policy's demand against its capacity over time, and the distribution of waits. It
// needs nothing from the network.
func Report(w *World, results []Result) ([]byte, error) {
	t, err := template.New("report").Funcs(template.FuncMap{
		"f1": func(v float64) string { return fmt.Sprintf("%.1f", v) },
		"f0": func(v float64) string { return fmt.Sprintf("%.0f", v) },
		"pct": func(v float64) string {
			return fmt.Sprintf("%.0f%%", 100*v)
		},
	}).Parse(reportTemplate)
	if err != nil {
		return nil, err
	}
	first, last := w.Requests[0].Arrival, w.Requests[len(w.Requests)-1].Arrival
	waves := map[string]bool{}
	var waveNames []string
	for _, r := range w.Requests {
		if r.Wave != "" && !waves[r.Wave] {
			waves[r.Wave] = true
			waveNames = append(waveNames, r.Wave)
		}
	}
	data := struct {
		Requests, Waves, Sites int
		From, To               string
		Config                 Config
		Size                   string
		Results                []Result
		Views                  []view
		Waits                  []waitChart
	}{
		Requests: len(w.Requests), Waves: len(waveNames), Sites: len(w.Sites),
		From: first.Format("Mon 2 Jan 2006 15:04 MST"), To: last.Format("Mon 2 Jan 2006 15:04 MST"),
		Config: w.Config, Results: results,
		Size: fmt.Sprintf("%s: %.0f MiB/s over %d tasks", w.Config.Size.Name, w.Config.Size.BandwidthBytesSec/mib, w.Config.Size.MaxTasks),
	}
	end := first
	for _, r := range results {
		if len(r.Series) > 0 {
			end = r.Series[len(r.Series)-1].At
		}
	}
	data.Views = append(data.Views, drawView(results, w.Config.Size.MaxTasks, "The whole run",
		"Each point is the most of its hour, so a wave's spike shows however short it was.", first.Truncate(time.Hour), end, time.Hour, 24*7*time.Hour))
	if at, n := biggestWave(w); n > 0 {
		data.Views = append(data.Views, drawView(results, w.Config.Size.MaxTasks, fmt.Sprintf("The biggest wave: %d migrations at %s", n, at.Format("Mon 2 Jan 15:04")),
			"Minute by minute, from an hour before its start to three hours after.", at.Add(-time.Hour), at.Add(3*time.Hour), time.Minute, 30*time.Minute))
	}
	day := first.Truncate(24 * time.Hour).Add(24 * time.Hour)
	for day.Weekday() != time.Tuesday || hasWave(w, day) {
		day = day.Add(24 * time.Hour)
	}
	data.Views = append(data.Views, drawView(results, w.Config.Size.MaxTasks, "An ordinary day: "+day.Format("Mon 2 Jan"),
		"Minute by minute over a weekday without a wave: ad-hoc work only.", day, day.Add(24*time.Hour), time.Minute, 3*time.Hour))
	for _, r := range results {
		data.Waits = append(data.Waits, waitHistogram(r))
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// drawView draws every policy over [from, to): each point the most of its step, on a
// y scale shared by the policies, with a labelled line every tick.
func drawView(results []Result, tasks int, title, note string, from, to time.Time, step, tick time.Duration) view {
	v := view{Title: title, Note: note}
	type bucket struct{ demand, capacity, paid int }
	all := make([][]bucket, len(results))
	maxY := 1
	for i, r := range results {
		all[i] = make([]bucket, int((to.Sub(from)+step-1)/step))
		for _, p := range r.Series {
			if p.At.Before(from) || !p.At.Before(to) {
				continue
			}
			b := &all[i][int(p.At.Sub(from)/step)]
			b.demand, b.capacity, b.paid = max(b.demand, p.Demand), max(b.capacity, p.Capacity), max(b.paid, p.Connectors*tasks)
			maxY = max(maxY, b.demand, b.capacity, b.paid)
		}
	}
	const width, height = 900, 150
	n := float64(len(all[0]))
	x := func(i int) float64 { return float64(width) * float64(i) / n }
	y := func(v int) float64 { return float64(height) * (1 - float64(v)/float64(maxY)) }
	for i, r := range results {
		c := chart{Name: r.Name, Width: width, Height: height, MaxY: maxY}
		var d, cp, paid strings.Builder
		for j, b := range all[i] {
			fmt.Fprintf(&d, "%.1f,%.1f ", x(j), y(b.demand))
			fmt.Fprintf(&cp, "%.1f,%.1f ", x(j), y(b.capacity))
			fmt.Fprintf(&paid, "%.1f,%.1f ", x(j), y(b.paid))
			c.PeakDemand, c.PeakCapacity = max(c.PeakDemand, b.demand), max(c.PeakCapacity, b.capacity)
		}
		c.Demand, c.Capacity, c.Paid = d.String(), cp.String(), paid.String()
		for t := from.Truncate(tick).Add(tick); t.Before(to); t = t.Add(tick) {
			label := t.Format("15:04")
			if tick >= 24*time.Hour {
				label = t.Format("Mon 2 Jan")
			}
			c.Ticks = append(c.Ticks, axisTick{X: float64(width) * t.Sub(from).Seconds() / to.Sub(from).Seconds(), Label: label})
		}
		v.Charts = append(v.Charts, c)
	}
	return v
}

// biggestWave is when the wave with the most requests starts, and how many it has.
func biggestWave(w *World) (time.Time, int) {
	count := map[string]int{}
	start := map[string]time.Time{}
	var at time.Time
	best := 0
	for _, r := range w.Requests {
		if r.Wave == "" {
			continue
		}
		count[r.Wave]++
		start[r.Wave] = r.Arrival
		if count[r.Wave] > best {
			best, at = count[r.Wave], start[r.Wave]
		}
	}
	return at, best
}

// hasWave reports whether a wave starts on the day that begins at day.
func hasWave(w *World, day time.Time) bool {
	return slices.ContainsFunc(w.Requests, func(r trace.Request) bool {
		return r.Wave != "" && !r.Arrival.Before(day) && r.Arrival.Before(day.Add(24*time.Hour))
	})
}

// waitHistogram buckets a policy's waits.
func waitHistogram(r Result) waitChart {
	wc := waitChart{Name: r.Name}
	counts := make([]int, len(waitBuckets)+1)
	for _, v := range r.Waits {
		i, _ := slices.BinarySearch(waitBuckets, v)
		counts[i]++
	}
	for i, n := range counts {
		var label string
		switch {
		case i == 0:
			label = "none"
		case i == len(waitBuckets):
			label = fmt.Sprintf("> %s", seconds(waitBuckets[i-1]))
		default:
			label = fmt.Sprintf("≤ %s", seconds(waitBuckets[i]))
		}
		share := 0.0
		if len(r.Waits) > 0 {
			share = float64(n) / float64(len(r.Waits))
		}
		wc.Bars = append(wc.Bars, bar{Label: label, Share: share, Width: 400 * share, Percent: fmt.Sprintf("%.1f%%", 100*share)})
	}
	return wc
}

// Markdown is the results as docs/simulator.md's table: one row a policy, seconds
// and connector-hours rounded as the docs print them, thousands grouped.
func Markdown(results []Result) string {
	p := message.NewPrinter(language.English)
	var b strings.Builder
	b.WriteString("| policy | SLA breaches | wait p50 | wait p95 | wait p99 | wave p99 | ad-hoc p99 | connector-hours | utilisation | scale events |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		b.WriteString(p.Sprintf("| %s | %d | %.0f s | %.0f s | %.0f s | %.0f s | %.0f s | %.1f | %.0f%% | %d |\n", r.Name, r.SLABreaches,
			r.WaitP50, r.WaitP95, r.WaitP99, r.Wave.WaitP99, r.Adhoc.WaitP99, r.ConnectorHours, 100*r.Utilization, r.ScaleEvents))
	}
	return b.String()
}

// TiersMarkdown is each policy's outcomes by SLA tier, strictest first, as
// docs/simulator.md's table: a tier whose migrations may wait within their grace
// shows it here, where the overall wait quantiles mix the tiers.
func TiersMarkdown(results []Result) string {
	p := message.NewPrinter(language.English)
	var b strings.Builder
	b.WriteString("| policy: tier | migrations | SLA breaches | wait p50 | wait p95 | wait p99 |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		for _, t := range r.Tiers {
			b.WriteString(p.Sprintf("| %s: %s | %d | %d | %.0f s | %.0f s | %.0f s |\n", r.Name, t.Tier, t.Migrations, t.SLABreaches, t.WaitP50, t.WaitP95, t.WaitP99))
		}
	}
	return b.String()
}
