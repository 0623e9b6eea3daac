package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/widecsv"
)

func TestRollingSplitsEndAtTheSeriesEnd(t *testing.T) {
	s := []widecsv.Series{{ID: "a", Values: []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}, {ID: "short", Values: []float64{1, 2}}}
	got := rollingSplits(s, 3, 3, 2)
	require.Len(t, got, 3, "the short series has no origin with a training point")
	require.Equal(t, []float64{7, 8, 9}, got[0].actuals)
	require.Len(t, got[0].train, 7)
	require.Equal(t, []float64{5, 6, 7}, got[1].actuals)
	require.Equal(t, []float64{3, 4, 5}, got[2].actuals)
}

func TestBacktestScoresAgainstTheTestFile(t *testing.T) {
	dir := t.TempDir()
	train, test := filepath.Join(dir, "train.csv"), filepath.Join(dir, "test.csv")
	// A series that repeats its season exactly: seasonal naive is perfect on it.
	var b strings.Builder
	b.WriteString("id,v1\nx")
	for i := range 12 {
		fmt.Fprintf(&b, ",%d", i%4+1)
	}
	require.NoError(t, os.WriteFile(train, []byte(b.String()+"\n"), 0o644))
	require.NoError(t, os.WriteFile(test, []byte("id,v1\nx,1,2,3,4\n"), 0o644))

	out := captureStdout(t, func() {
		require.NoError(t, backtestCommand().ParseAndRun(context.Background(),
			[]string{"-in", train, "-test", test, "-horizon", "4", "-period", "4", "-models", "snaive"}))
	})
	require.Contains(t, out, "| snaive | 0.000 | 0.000 |")

	err := backtestCommand().ParseAndRun(context.Background(), []string{"-in", train, "-test", test, "-horizon", "5", "-period", "4"})
	require.ErrorContains(t, err, "-test: series x has 4 actuals, fewer than -horizon 5")
	err = backtestCommand().ParseAndRun(context.Background(), []string{"-in", train, "-horizon", "4", "-models", "nope"})
	require.ErrorContains(t, err, `-models: forecast: unknown model "nope"`)
	err = backtestCommand().ParseAndRun(context.Background(), []string{"-in", train, "-horizon", "4", "-level", "90"})
	require.ErrorContains(t, err, "-level: must be between 0 and 1")
}

// captureStdout returns what f writes to standard output.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = old }()
	f()
	require.NoError(t, w.Close())
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(out)
}
