package sim

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var reportTemplate string

// waitBuckets are the upper bounds, in seconds, of the wait histogram's bars; the last
// bar holds the rest.
var waitBuckets = []float64{0, 30, 60, 120, 300, 600, 1800}

// chart is one policy's demand and capacity over time, as SVG polylines.
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
	maxY := 1
	for _, r := range results {
		for _, p := range r.Series {
			maxY = max(maxY, p.Demand, p.Capacity, p.Connectors*w.Config.Size.MaxTasks)
		}
	}
	data := struct {
		Generated              string
		Requests, Waves, Sites int
		From, To               string
		Config                 Config
		Size                   string
		Results                []Result
		Charts                 []chart
		Waits                  []waitChart
	}{
		Requests: len(w.Requests), Waves: len(waveNames), Sites: len(w.Sites),
		From: first.Format("Mon 2 Jan 2006 15:04 MST"), To: last.Format("Mon 2 Jan 2006 15:04 MST"),
		Config: w.Config, Results: results,
		Size: fmt.Sprintf("%s: %.0f MiB/s over %d tasks", w.Config.Size.Name, w.Config.Size.BandwidthBytesSec/mib, w.Config.Size.MaxTasks),
	}
	for _, r := range results {
		data.Charts = append(data.Charts, seriesChart(r, w.Config.Size.MaxTasks, maxY))
		data.Waits = append(data.Waits, waitHistogram(r))
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// seriesChart draws a policy's demand (tasks running and waiting), the task slots of
// its ready connectors, and the slots it paid for, on a shared y scale.
func seriesChart(r Result, tasks, maxY int) chart {
	const width, height = 900, 160
	c := chart{Name: r.Name, Width: width, Height: height, MaxY: maxY}
	if len(r.Series) < 2 {
		return c
	}
	from, to := r.Series[0].At, r.Series[len(r.Series)-1].At
	span := to.Sub(from).Seconds()
	x := func(t time.Time) float64 { return float64(width) * t.Sub(from).Seconds() / span }
	y := func(v int) float64 { return float64(height) * (1 - float64(v)/float64(maxY)) }
	var d, cp, paid strings.Builder
	for _, p := range r.Series {
		fmt.Fprintf(&d, "%.1f,%.1f ", x(p.At), y(p.Demand))
		fmt.Fprintf(&cp, "%.1f,%.1f ", x(p.At), y(p.Capacity))
		fmt.Fprintf(&paid, "%.1f,%.1f ", x(p.At), y(p.Connectors*tasks))
		c.PeakDemand, c.PeakCapacity = max(c.PeakDemand, p.Demand), max(c.PeakCapacity, p.Capacity)
	}
	c.Demand, c.Capacity, c.Paid = d.String(), cp.String(), paid.String()
	for day := from.Truncate(24 * time.Hour).Add(24 * time.Hour); !day.After(to); day = day.Add(7 * 24 * time.Hour) {
		c.Ticks = append(c.Ticks, axisTick{X: x(day), Label: day.Format("Mon 2 Jan")})
	}
	return c
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
