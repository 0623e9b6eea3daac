package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/trace"
	"github.com/pmo-dev/pmo/widecsv"
)

func genTraceCommand() *ffcli.Command {
	d := trace.DefaultParams()
	fs := flag.NewFlagSet("gen-trace", flag.ContinueOnError)
	shape := fs.String("shape", defaultShape, "CSV with a header row whose series the ad-hoc arrival rate follows, evenly spaced at -step")
	seriesID := fs.String("series", "", "with a wide CSV as -shape (one series a row, its ID first, as M4's files), the ID of the row to follow")
	column := fs.String("column", "", "the -shape column to follow (default: the first numeric one, skipping a time index named timestamp, time, ts, date or datetime in any case)")
	step := fs.Duration("step", d.Step, "time between the series' values, a whole number of seconds")
	start := fs.String("start", d.Start.Format(time.RFC3339), "when the trace starts, RFC3339")
	days := fs.Int("days", d.Days, "days the trace covers")
	seed := fs.Uint64("seed", d.Seed, "random seed; the same flags and -seed give the same file")
	rate := fs.Float64("rate", d.Rate, "mean ad-hoc migrations an hour over all sites")
	waves := fs.Int("waves", d.WavesPerWeek, "scheduled waves a week")
	vms := fs.Int("vms", d.VMs, "VMs in the inventory the requests draw from")
	out := fs.String("out", "", "the trace file to write (required)")
	return &ffcli.Command{
		Name:       "gen-trace",
		ShortUsage: "starter gen-trace [-shape CSV] [-column NAME | -series ID] [-step 5m] [-start RFC3339] [-days 28] [-seed 1] [-rate 18] [-waves 3] [-vms 3000] -out TRACE.csv",
		ShortHelp:  "generate a trace of migration requests for the simulator",
		LongHelp: "Gen-trace writes the migration requests of a simulated run: ad-hoc requests whose\n" +
			"arrival rate follows the shape of a series from -shape, and scheduled waves announced\n" +
			"a day or more ahead, for VMs of the demo's inventory (see docs/simulator.md).",
		FlagSet: fs,
		Exec: func(context.Context, []string) error {
			from, err := time.Parse(time.RFC3339, *start)
			if err != nil {
				return fmt.Errorf("-start: want an RFC3339 time such as 2026-10-26T00:00:00Z, got %q", *start)
			}
			switch {
			case *out == "":
				return errors.New("-out: name the trace file to write")
			case *days < 1:
				return fmt.Errorf("-days: want at least 1, got %d", *days)
			case *step < time.Second || *step%time.Second != 0:
				return fmt.Errorf("-step: want a whole number of seconds, at least 1s, got %s", *step)
			case !(*rate >= 0) || math.IsInf(*rate, 0):
				return fmt.Errorf("-rate: want migrations an hour, at least 0, got %v", *rate)
			case *waves < 0:
				return fmt.Errorf("-waves: want at least 0, got %d", *waves)
			case *vms < 1:
				return fmt.Errorf("-vms: want at least 1, got %d", *vms)
			}
			name, series, err := readShape(*shape, *column, *seriesID)
			if err != nil {
				return err
			}
			p := trace.Params{Start: from, Days: *days, Step: *step, Seed: *seed, Rate: *rate, WavesPerWeek: *waves, VMs: *vms}
			reqs, err := trace.Generate(series, p)
			if err != nil {
				return err
			}
			if err := writeFile(*out, func(w io.Writer) error { return trace.Write(w, reqs) }); err != nil {
				return fmt.Errorf("-out: %w", err)
			}
			fmt.Println(traceSummary(reqs, p, name, *shape, *out))
			return nil
		},
	}
}

// traceSummary is gen-trace's one line of output.
func traceSummary(reqs []trace.Request, p trace.Params, column, shape, out string) string {
	var bytes int64
	var adHoc int
	waves := map[string]bool{}
	for _, r := range reqs {
		bytes += r.Bytes
		if r.Wave == "" {
			adHoc++
		} else {
			waves[r.Wave] = true
		}
	}
	start := p.Start.UTC().Truncate(time.Second)
	end := start.Add(time.Duration(p.Days) * 24 * time.Hour)
	return fmt.Sprintf("%d requests (%d ad-hoc, %d in %d waves), %.1f TiB, %s to %s, shaped by %s of %s; wrote %s",
		len(reqs), adHoc, len(reqs)-adHoc, len(waves), float64(bytes)/(1<<40),
		start.Format(time.RFC3339), end.Format(time.RFC3339), column, shape, out)
}

// readShape reads the series a trace follows: a column of a CSV, or with seriesID, a
// row of a wide CSV (widecsv's layout). It returns the series' name and values; an
// error names the flag.
func readShape(path, column, seriesID string) (string, []float64, error) {
	if seriesID == "" {
		f, err := os.Open(path)
		if err != nil {
			return "", nil, fmt.Errorf("-shape: %w", err)
		}
		defer f.Close()
		name, series, err := trace.ReadSeries(f, column)
		if err != nil {
			return "", nil, fmt.Errorf("-shape: %s: %w", path, err)
		}
		return name, series, nil
	}
	if column != "" {
		return "", nil, errors.New("-series: a wide CSV has no columns to choose; give -column or -series, not both")
	}
	all, err := widecsv.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("-shape: %w", err)
	}
	for _, s := range all {
		if s.ID == seriesID {
			for i, v := range s.Values {
				if math.IsNaN(v) {
					return "", nil, fmt.Errorf("-series: %s has a missing value at point %d; a shape needs every point", seriesID, i+1)
				}
			}
			return seriesID, s.Values, nil
		}
	}
	return "", nil, fmt.Errorf("-series: no row of %s has the ID %q", path, seriesID)
}
