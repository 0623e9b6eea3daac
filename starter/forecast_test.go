package main

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/widecsv"
)

func runForecast(t *testing.T, args ...string) error {
	t.Helper()
	cmd := forecastCommand()
	return cmd.ParseAndRun(context.Background(), args)
}

func TestForecastCommandWritesPointsAndQuantilesInOrder(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "train.csv")
	// b is too short for period 4 and falls back; a repeats its season exactly.
	require.NoError(t, os.WriteFile(in, []byte("\"V1\",\"V2\",\"V3\",\"V4\",\"V5\",\"V6\",\"V7\",\"V8\",\"V9\"\n"+
		"\"b\",\"5\",\"6\",\"7\",\"\",\"\",\"\",\"\",\"\"\n"+
		"\"a\",\"1\",\"2\",\"3\",\"4\",\"1\",\"2\",\"3\",\"4\"\n"), 0o644))
	out := filepath.Join(dir, "fc.csv")
	require.NoError(t, runForecast(t, "-in", in, "-out", out, "-horizon", "6", "-period", "4", "-quantiles", "0.95,0.05", "-workers", "2", "-model", "snaive"))

	got, err := widecsv.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, []widecsv.Series{
		{ID: "b", Values: []float64{7, 7, 7, 7, 7, 7}},
		{ID: "a", Values: []float64{1, 2, 3, 4, 1, 2}},
	}, got)
	for _, q := range []string{"0.05", "0.95"} {
		rows, err := widecsv.ReadFile(filepath.Join(dir, "fc.q"+q+".csv"))
		require.NoError(t, err)
		require.Equal(t, "b", rows[0].ID)
		require.Len(t, rows[1].Values, 6)
	}
	head, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(head), "id,F1,F2,F3,F4,F5,F6\n"))
}

func TestForecastCommandRefusesBadInputNamingIt(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("id,a,b\nx,1,2\ny,3,z\n"), 0o644))
	good := filepath.Join(dir, "good.csv")
	require.NoError(t, os.WriteFile(good, []byte("id,a,b\nx,1,2\n"), 0o644))
	out := filepath.Join(dir, "fc.csv")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-in", good, "-horizon", "0"}, "-horizon: must be from 1 to 100000, got 0"},
		{[]string{"-in", good, "-horizon", "100001"}, "-horizon: must be from 1 to 100000, got 100001"},
		{[]string{"-in", good, "-horizon", "3", "-period", "1000000"}, "-period: must be from 1 to 100000"},
		{[]string{"-horizon", "3"}, "-in: name the file"},
		{[]string{"-in", filepath.Join(dir, "missing.csv"), "-horizon", "3"}, "no such file"},
		{[]string{"-in", bad, "-horizon", "3", "-out", out}, `bad.csv: row 3, column 3: "z" is not a finite number`},
		{[]string{"-in", good, "-horizon", "3", "-model", "crystal-ball"}, `-model: forecast: unknown model "crystal-ball"`},
		{[]string{"-in", good, "-horizon", "3", "-quantiles", "0.5,1.5", "-out", out}, `-quantiles: "1.5" is not a level`},
		{[]string{"-in", good, "-horizon", "3", "-period", "0"}, "-period: must be from 1 to 100000, got 0"},
		{[]string{"-in", good, "-horizon", "3", "-model", "fleet", "-period", "168"}, "-period: the fleet forecasts hourly arrivals with a daily period, 24; got 168"},
	}
	for _, c := range cases {
		require.ErrorContains(t, runForecast(t, c.args...), c.want, "%v", c.args)
	}
	_, err := os.Stat(out)
	require.True(t, os.IsNotExist(err), "a failed run writes no file")
}

// -model fleet forecasts a file as the fleet forecasts each site's arrivals: the same
// means and 10% and 90% quantiles as planning.ForecastDemand gives for the same
// hourly series, one of them too short for the count model (it falls back, never
// below zero).
func TestForecastFleetIsTheFleetsArrivalsForecast(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	long := make([]float64, 28*24)
	for i := range long {
		long[i] = float64(rng.IntN(3 + 3*(i%24)/23))
	}
	short := []float64{0, 2, 1, 0, 0, 3}
	dir := t.TempDir()
	in := filepath.Join(dir, "arrivals.csv")
	require.NoError(t, writeSeries(in, []widecsv.Series{{ID: "ams1", Values: long}, {ID: "fra1", Values: short}}))
	out := filepath.Join(dir, "fc.csv")
	require.NoError(t, runForecast(t, "-in", in, "-out", out, "-horizon", "48", "-quantiles", "0.1,0.9", "-model", "fleet"))

	now := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	demand, _, err := planning.ForecastDemand(planning.DemandInput{Sites: []string{"ams1", "fra1"}, Arrivals: [][]float64{long, short},
		Bytes: [][]float64{long, short}, Now: now, From: now, Hours: 48})
	require.NoError(t, err)
	mean, err := widecsv.ReadFile(out)
	require.NoError(t, err)
	lo, err := widecsv.ReadFile(filepath.Join(dir, "fc.q0.1.csv"))
	require.NoError(t, err)
	hi, err := widecsv.ReadFile(filepath.Join(dir, "fc.q0.9.csv"))
	require.NoError(t, err)
	for _, d := range demand {
		i, h := slices.Index([]string{"ams1", "fra1"}, d.Site), int(d.Hour.Sub(now)/time.Hour)
		require.InDelta(t, d.AdhocMean, mean[i].Values[h], 1e-9, "%s hour %d mean", d.Site, h)
		require.InDelta(t, d.AdhocLo, lo[i].Values[h], 1e-9, "%s hour %d 10%%", d.Site, h)
		require.InDelta(t, d.AdhocHi, hi[i].Values[h], 1e-9, "%s hour %d 90%%", d.Site, h)
		require.GreaterOrEqual(t, lo[i].Values[h], 0.0)
	}
	require.Contains(t, demand[0].Model, "count", "the fleet forecasts arrivals with the count model")
}
