package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/forecast"
	"github.com/pmo-dev/pmo/widecsv"
)

func backtestCommand() *ffcli.Command {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	in := fs.String("in", "", "series, in the M4 wide layout (required)")
	test := fs.String("test", "", "the actuals that follow each series (M4's test file): score one origin, the end of -in")
	horizon := fs.Int("horizon", 0, "steps to forecast (required)")
	period := fs.Int("period", 1, "seasonal period, e.g. 24 for hourly data")
	origins := fs.Int("origins", 3, "without -test: forecast origins per series, the last one horizon before the end")
	step := fs.Int("step", 0, "without -test: steps between origins (default: the horizon)")
	models := fs.String("models", strings.Join(forecast.ModelNames(), ","), "models to evaluate, comma-separated")
	baseline := fs.String("baseline", forecast.BaselineModel, "the model OWA is relative to")
	level := fs.Float64("level", 0.9, "central prediction interval whose coverage and MSIS are scored")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "series fitted at once")
	return &ffcli.Command{
		Name:       "backtest",
		ShortUsage: "starter backtest -in TRAIN.csv -horizon 48 -period 24 [-test TEST.csv | -origins 3 -step 48] [-models a,b] [-level 0.9]",
		ShortHelp:  "evaluate every model by rolling-origin forecasts, as M4 scored them",
		LongHelp: "Backtest forecasts every series from several origins with each model and scores the\n" +
			"forecasts against what followed: sMAPE, MASE and OWA (relative to -baseline, computed\n" +
			"on the same forecasts), and the coverage and MSIS of the -level interval. With -test,\n" +
			"the one origin is the end of each series and the actuals come from the test file.\n" +
			"It prints a Markdown table.",
		FlagSet: fs,
		Exec: func(ctx context.Context, _ []string) error {
			switch {
			case *in == "":
				return errors.New("-in: name the file to evaluate on")
			case *horizon < 1 || *horizon > maxSteps:
				return fmt.Errorf("-horizon: must be from 1 to %d, got %d", maxSteps, *horizon)
			case *period < 1 || *period > maxSteps:
				return fmt.Errorf("-period: must be from 1 to %d, got %d", maxSteps, *period)
			case *origins < 1:
				return fmt.Errorf("-origins: must be at least 1, got %d", *origins)
			case *step < 0:
				return fmt.Errorf("-step: must be at least 1, got %d", *step)
			case !(*level > 0 && *level < 1):
				return fmt.Errorf("-level: must be between 0 and 1, got %v", *level)
			case *workers < 1:
				return fmt.Errorf("-workers: must be at least 1, got %d", *workers)
			}
			names := splitList(*models)
			if len(names) == 0 {
				return errors.New("-models: name at least one model")
			}
			for _, n := range append(names, *baseline) {
				if err := forecast.CheckName(n); err != nil {
					return fmt.Errorf("-models: %w", err)
				}
			}
			series, err := widecsv.ReadFile(*in)
			if err != nil {
				return err
			}
			var splits []split
			if *test != "" {
				actuals, err := widecsv.ReadFile(*test)
				if err != nil {
					return err
				}
				if splits, err = testSplits(series, actuals, *horizon); err != nil {
					return err
				}
			} else {
				s := *step
				if s == 0 {
					s = *horizon
				}
				splits = rollingSplits(series, *horizon, *origins, s)
			}
			if len(splits) == 0 {
				return fmt.Errorf("-origins: no series is long enough for a %d-step forecast", *horizon)
			}
			fmt.Fprintf(os.Stderr, "backtest: %d forecasts of %d steps from %d series, %d model(s)\n", len(splits), *horizon, len(series), len(names))
			base, err := score(ctx, *baseline, splits, *period, *horizon, *level, *workers)
			if err != nil {
				return err
			}
			rows := []scoreRow{base}
			for _, n := range names {
				if n == *baseline {
					continue
				}
				r, err := score(ctx, n, splits, *period, *horizon, *level, *workers)
				if err != nil {
					return err
				}
				rows = append(rows, r)
			}
			printScores(os.Stdout, rows, *level)
			return nil
		},
	}
}

// split is one forecast to score: the series up to an origin and what followed it.
type split struct {
	id      string
	train   []float64
	actuals []float64
}

// rollingSplits makes up to origins splits per series, the latest ending at the
// series' end and each earlier one step points before it. A split needs at least one
// training point.
func rollingSplits(series []widecsv.Series, h, origins, step int) []split {
	var out []split
	for _, s := range series {
		for k := range origins {
			end := len(s.Values) - k*step
			origin := end - h
			if origin < 1 {
				break
			}
			out = append(out, split{id: s.ID, train: s.Values[:origin], actuals: s.Values[origin:end]})
		}
	}
	return out
}

// testSplits pairs each series with its actuals from the test file, by ID.
func testSplits(train, test []widecsv.Series, h int) ([]split, error) {
	byID := make(map[string][]float64, len(test))
	for _, s := range test {
		byID[s.ID] = s.Values
	}
	out := make([]split, 0, len(train))
	for _, s := range train {
		y, ok := byID[s.ID]
		if !ok {
			return nil, fmt.Errorf("-test: no actuals for series %s", s.ID)
		}
		if len(y) < h {
			return nil, fmt.Errorf("-test: series %s has %d actuals, fewer than -horizon %d", s.ID, len(y), h)
		}
		out = append(out, split{id: s.ID, train: s.Values, actuals: y[:h]})
	}
	return out, nil
}

// scoreRow is one model's scores, averaged over every split as M4 averaged them.
type scoreRow struct {
	model     string
	smape     float64
	mase      float64
	coverage  float64
	msis      float64
	perSeries time.Duration // training, fit and forecast, mean over splits
	fallbacks int
}

func score(ctx context.Context, model string, splits []split, period, h int, level float64, workers int) (scoreRow, error) {
	lo, hi := (1-level)/2, 1-(1-level)/2
	ys := make([][]float64, len(splits))
	ids := make([]string, len(splits))
	for i, s := range splits {
		ys[i], ids[i] = s.train, s.id
	}
	start := time.Now()
	// A global model learns from every split's training part: never from what follows.
	results, training, err := forecastAll(ctx, model, ys, ids, period, h, []float64{lo, hi}, workers, false, nil)
	if err != nil {
		return scoreRow{}, fmt.Errorf("%s on %w", model, err)
	}
	wall := time.Since(start)
	r := scoreRow{model: model}
	var elapsed time.Duration
	for i, s := range splits {
		res := results[i]
		fc := res.Forecast
		r.smape += forecast.SMAPE(s.actuals, fc.Mean)
		r.mase += forecast.MASE(s.train, s.actuals, fc.Mean, period)
		r.coverage += forecast.Coverage(s.actuals, fc.Values[0], fc.Values[1])
		r.msis += forecast.MSIS(s.train, s.actuals, fc.Values[0], fc.Values[1], period, 1-level)
		elapsed += res.Elapsed
		if res.Fallback != nil {
			r.fallbacks++
		}
	}
	n := float64(len(splits))
	r.smape, r.mase, r.coverage, r.msis = r.smape/n, r.mase/n, r.coverage/n, r.msis/n
	// Global models' training is shared by every series.
	r.perSeries = (elapsed + training) / time.Duration(len(splits))
	fmt.Fprintf(os.Stderr, "backtest: %s done in %.2f s\n", model, wall.Seconds())
	return r, nil
}

// printScores prints the table; OWA is relative to the first row, the baseline.
func printScores(w io.Writer, rows []scoreRow, level float64) {
	base := rows[0]
	fmt.Fprintf(w, "| model | sMAPE | MASE | OWA vs %s | %.0f%% coverage | MSIS | ms per series | fallbacks |\n", base.model, level*100)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %.3f | %.3f | %.3f | %.1f%% | %.2f | %.2f | %d |\n", r.model, r.smape, r.mase,
			forecast.OWA(r.smape, r.mase, base.smape, base.mase), 100*r.coverage, r.msis,
			float64(r.perSeries.Microseconds())/1e3, r.fallbacks)
	}
}

// splitList splits "a, b,c" into its non-empty, trimmed parts.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
