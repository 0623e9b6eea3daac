package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/trace"
)

func runGenTrace(args ...string) error {
	return genTraceCommand().ParseAndRun(context.Background(), args)
}

func TestGenTraceWritesTheSameFileForASeed(t *testing.T) {
	dir := t.TempDir()
	shape := filepath.Join(dir, "shape.csv")
	require.NoError(t, os.WriteFile(shape, []byte("timestamp,load\n0,1\n3600,3\n"), 0o644))
	a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")
	for _, out := range []string{a, b} {
		require.NoError(t, runGenTrace("-shape", shape, "-step", "1h", "-days", "7", "-vms", "100", "-out", out))
	}
	fa, err := os.ReadFile(a)
	require.NoError(t, err)
	fb, err := os.ReadFile(b)
	require.NoError(t, err)
	require.Equal(t, fa, fb)

	f, err := os.Open(a)
	require.NoError(t, err)
	defer f.Close()
	reqs, err := trace.Read(f)
	require.NoError(t, err)
	require.NotEmpty(t, reqs)
}

func TestGenTraceNamesTheBadFlag(t *testing.T) {
	dir := t.TempDir()
	shape := filepath.Join(dir, "shape.csv")
	require.NoError(t, os.WriteFile(shape, []byte("timestamp,load\n0,1\n300,oops\n"), 0o644))
	wide := filepath.Join(dir, "wide.csv")
	require.NoError(t, os.WriteFile(wide, []byte("V1,V2,V3\nH1,1,2\nH2,3,NA\n"), 0o644))
	out := filepath.Join(dir, "trace.csv")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-shape", shape}, "-out: name the trace file to write"},
		{[]string{"-out", out, "-shape", wide, "-series", "H9"}, `-series: no row of ` + wide + ` has the ID "H9"`},
		{[]string{"-out", out, "-shape", wide, "-series", "H2"}, "-series: H2 has a missing value at point 2"},
		{[]string{"-out", out, "-shape", wide, "-series", "H1", "-column", "V2"}, "-series: a wide CSV has no columns to choose"},
		{[]string{"-out", out, "-days", "0"}, "-days: want at least 1, got 0"},
		{[]string{"-out", out, "-step", "90ms"}, "-step: want a whole number of seconds"},
		{[]string{"-out", out, "-start", "monday"}, `-start: want an RFC3339 time`},
		{[]string{"-out", out, "-rate", "-1"}, "-rate: want migrations an hour, at least 0, got -1"},
		{[]string{"-out", out, "-waves", "-1"}, "-waves: want at least 0, got -1"},
		{[]string{"-out", out, "-vms", "0"}, "-vms: want at least 1, got 0"},
		{[]string{"-out", out, "-shape", shape}, "-shape: " + shape + `: trace: line 3: load: "oops" is not a finite number`},
		{[]string{"-out", out, "-shape", shape, "-column", "cpu"}, `-shape: ` + shape + `: trace: column "cpu" is not in the header timestamp,load`},
	} {
		require.ErrorContains(t, runGenTrace(c.args...), c.want, "%v", c.args)
	}
	require.NoFileExists(t, out, "a failed run writes nothing")
}

// -series follows one row of a wide CSV, as M4's files hold their series.
func TestGenTraceFollowsARowOfAWideFile(t *testing.T) {
	dir := t.TempDir()
	wide := filepath.Join(dir, "wide.csv")
	require.NoError(t, os.WriteFile(wide, []byte("V1,V2,V3\nH1,0,1\nH2,1,0\n"), 0o644))
	for _, c := range []struct {
		series  string
		busyOdd bool // whether the odd hours have the arrivals
	}{{"H1", true}, {"H2", false}} {
		out := filepath.Join(dir, c.series+".csv")
		require.NoError(t, runGenTrace("-shape", wide, "-series", c.series, "-step", "1h", "-days", "2", "-waves", "0", "-out", out))
		f, err := os.Open(out)
		require.NoError(t, err)
		reqs, err := trace.Read(f)
		f.Close()
		require.NoError(t, err)
		require.NotEmpty(t, reqs)
		for _, r := range reqs {
			require.Equal(t, c.busyOdd, r.Arrival.Hour()%2 == 1, "%s: %s arrives at %s", c.series, r.ID, r.Arrival)
		}
	}
}
