package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
	}
	for _, c := range cases {
		require.ErrorContains(t, runForecast(t, c.args...), c.want, "%v", c.args)
	}
	_, err := os.Stat(out)
	require.True(t, os.IsNotExist(err), "a failed run writes no file")
}
