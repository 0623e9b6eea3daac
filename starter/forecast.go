package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/forecast"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/widecsv"
)

func forecastCommand() *ffcli.Command {
	fs := flag.NewFlagSet("forecast", flag.ContinueOnError)
	in := fs.String("in", "", "series to forecast, in the M4 wide layout (required)")
	out := fs.String("out", "-", "where to write the point forecasts, id,F1..Fh; - is standard output")
	horizon := fs.Int("horizon", 0, "steps to forecast (required)")
	period := fs.Int("period", 1, "seasonal period, e.g. 24 for hourly data")
	quantiles := fs.String("quantiles", "", "also write these quantile forecasts, e.g. 0.05,0.5,0.95, each to <out>.q<level>.csv")
	model := fs.String("model", forecast.DefaultModel, "model: "+strings.Join(forecast.ModelNames(), ", ")+
		", or "+fleetModel+" (what the fleet forecasts a site's hourly arrivals with: "+planning.ArrivalsModel+", period 24, never below zero)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "series fitted at once")
	return &ffcli.Command{
		Name:       "forecast",
		ShortUsage: "starter forecast -in TRAIN.csv -horizon 48 -period 24 [-out FC.csv] [-quantiles 0.05,0.5,0.95] [-model M|fleet] [-workers N]",
		ShortHelp:  "forecast every series of a file",
		LongHelp: "Forecast fits the model to every series of a file in the M4 wide layout (a header row,\n" +
			"then an ID and values a row) and writes the point forecasts in the same order. A series\n" +
			"too short for the model falls back to seasonal naive, then naive; the summary counts them.",
		FlagSet: fs,
		Exec: func(ctx context.Context, _ []string) error {
			if *in == "" {
				return errors.New("-in: name the file to forecast")
			}
			if *horizon < 1 || *horizon > maxSteps {
				return fmt.Errorf("-horizon: must be from 1 to %d, got %d", maxSteps, *horizon)
			}
			if *period < 1 || *period > maxSteps {
				return fmt.Errorf("-period: must be from 1 to %d, got %d", maxSteps, *period)
			}
			if *workers < 1 {
				return fmt.Errorf("-workers: must be at least 1, got %d", *workers)
			}
			levels, err := parseQuantiles(*quantiles)
			if err != nil {
				return err
			}
			name, per, counts := *model, *period, false
			if name == fleetModel {
				periodSet := false
				fs.Visit(func(f *flag.Flag) { periodSet = periodSet || f.Name == "period" })
				if periodSet && *period != planning.HourlyPeriod {
					return fmt.Errorf("-period: the fleet forecasts hourly arrivals with a daily period, %d; got %d", planning.HourlyPeriod, *period)
				}
				name, per, counts = planning.ArrivalsModel, planning.HourlyPeriod, true
			}
			if err := forecast.CheckName(name); err != nil {
				return fmt.Errorf("-model: %w", err)
			}
			if len(levels) > 0 && *out == "-" {
				return errors.New("-quantiles: needs -out, to name the quantile files after it")
			}
			series, err := widecsv.ReadFile(*in)
			if err != nil {
				return err
			}
			results, err := runBatch(ctx, series, name, per, *horizon, levels, *workers, counts)
			if err != nil {
				return err
			}
			points := make([]widecsv.Series, len(series))
			for i, s := range series {
				points[i] = widecsv.Series{ID: s.ID, Values: results[i].Forecast.Mean}
			}
			if err := writeSeries(*out, points); err != nil {
				return err
			}
			for qi, q := range levels {
				rows := make([]widecsv.Series, len(series))
				for i, s := range series {
					rows[i] = widecsv.Series{ID: s.ID, Values: results[i].Forecast.Values[qi]}
				}
				if err := writeSeries(quantileFile(*out, q), rows); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// fleetModel is the -model that forecasts as the fleet forecasts arrivals: with
// planning.ArrivalsModel, a daily period and forecasts clipped at zero, through the
// same Fallback chain.
const fleetModel = "fleet"

// maxSteps bounds -horizon and -period: far over any real season or horizon (a year
// of hours is 8784), and short of what would exhaust memory.
const maxSteps = 100_000

// runBatch forecasts every series, printing progress and, at the end, the time per
// model and the fallbacks to standard error.
func runBatch(ctx context.Context, series []widecsv.Series, model string, period, horizon int, levels []float64, workers int, counts bool) ([]forecast.Result, error) {
	ys := make([][]float64, len(series))
	ids := make([]string, len(series))
	for i, s := range series {
		ys[i], ids[i] = s.Values, s.ID
	}
	start := time.Now()
	last := start
	progress := func(done int) {
		if now := time.Now(); now.Sub(last) >= time.Second || done == len(ys) {
			last = now
			fmt.Fprintf(os.Stderr, "forecast: %d/%d series (%.0f%%), %.1f s\n", done, len(ys), 100*float64(done)/float64(len(ys)), now.Sub(start).Seconds())
		}
	}
	results, training, err := forecastAll(ctx, model, ys, ids, period, horizon, levels, workers, counts, progress)
	if err != nil {
		return nil, err
	}
	if training > time.Second {
		fmt.Fprintf(os.Stderr, "forecast: trained %s's global models on %d series in %.1f s\n", model, len(ys), training.Seconds())
	}
	reportModels(os.Stderr, series, results, time.Since(start), workers)
	return results, nil
}

// forecastAll readies the model for the series (global models train on all of them
// first) and forecasts each one in parallel, naming a failing series by its ID; with
// counts, forecasts never go below zero. It also returns how long the training took.
func forecastAll(ctx context.Context, model string, ys [][]float64, ids []string, period, h int, levels []float64,
	workers int, counts bool, progress func(done int)) ([]forecast.Result, time.Duration, error) {
	start := time.Now()
	newModel, err := forecast.Prepare(model, ys, period, h)
	if err != nil {
		return nil, 0, err
	}
	training := time.Since(start)
	jobs := make([]forecast.Job, len(ys))
	for i, y := range ys {
		jobs[i] = forecast.Job{Y: y, Period: period}
	}
	b := forecast.Batch{NewModel: newModel, Horizon: h, Quantiles: levels, Workers: workers, NonNegative: counts, Progress: progress}
	results, err := b.Run(ctx, jobs)
	var je *forecast.JobError
	if errors.As(err, &je) {
		return nil, 0, fmt.Errorf("series %s: %w", ids[je.Index], je.Err)
	}
	return results, training, err
}

// reportModels prints how long each kind of model took, which members combinations
// chose, and which series fell back.
func reportModels(w io.Writer, series []widecsv.Series, results []forecast.Result, wall time.Duration, workers int) {
	type tally struct {
		n     int
		total time.Duration
	}
	byKind := map[string]*tally{}
	members := map[string]int{}
	var fallbacks []string
	for i, r := range results {
		// "ETS(M,N,M)" and "combo(theta 0.6, …)" are kinds "ETS" and "combo".
		kind, _, _ := strings.Cut(r.Model, "(")
		t := byKind[kind]
		if t == nil {
			t = &tally{}
			byKind[kind] = t
		}
		t.n++
		t.total += r.Elapsed
		for _, m := range r.Members {
			members[m]++
		}
		if r.Fallback != nil {
			fallbacks = append(fallbacks, fmt.Sprintf("%s (%v)", series[i].ID, r.Fallback))
		}
	}
	fmt.Fprintf(w, "forecast: %d series in %.2f s on %d worker(s)\n", len(results), wall.Seconds(), workers)
	for _, k := range sortedKeys(byKind) {
		t := byKind[k]
		fmt.Fprintf(w, "  %-12s %5d series  %8.2f ms each  %7.2f s in all\n", k, t.n, float64(t.total.Microseconds())/1e3/float64(t.n), t.total.Seconds())
	}
	if len(members) > 0 {
		var parts []string
		for _, m := range sortedKeys(members) {
			parts = append(parts, fmt.Sprintf("%s %d", m, members[m]))
		}
		fmt.Fprintf(w, "  combination members chosen: %s\n", strings.Join(parts, ", "))
	}
	if len(fallbacks) > 0 {
		fmt.Fprintf(w, "  %d series fell back: %s\n", len(fallbacks), strings.Join(fallbacks[:min(len(fallbacks), 5)], "; "))
	}
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// parseQuantiles reads "0.05,0.5,0.95" into sorted, distinct levels in (0, 1).
func parseQuantiles(s string) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	var out []float64
	for _, part := range strings.Split(s, ",") {
		q, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil || !(q > 0 && q < 1) {
			return nil, fmt.Errorf("-quantiles: %q is not a level between 0 and 1", part)
		}
		out = append(out, q)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// quantileFile names the file for one quantile level after the point forecast file:
// FC.csv → FC.q0.05.csv.
func quantileFile(out string, q float64) string {
	ext := filepath.Ext(out)
	return strings.TrimSuffix(out, ext) + ".q" + strconv.FormatFloat(q, 'f', -1, 64) + ext
}

// writeSeries writes rows to path ("-" for standard output); see writeFile.
func writeSeries(path string, rows []widecsv.Series) error {
	if path == "-" {
		return widecsv.Write(os.Stdout, "F", rows)
	}
	return writeFile(path, func(w io.Writer) error { return widecsv.Write(w, "F", rows) })
}

// writeFile writes path with write through a temporary file, so that a failed run
// leaves no half-written file.
func writeFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// CreateTemp makes the file private; the output is for whoever reads the folder.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
