package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runSimulate(args ...string) error {
	return simulateCommand().ParseAndRun(context.Background(), args)
}

// smallTrace writes a two-day trace of 100 VMs into a new folder, and returns both.
func smallTrace(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	shape := filepath.Join(dir, "shape.csv")
	require.NoError(t, os.WriteFile(shape, []byte("timestamp,load\n0,1\n3600,3\n"), 0o644))
	tr := filepath.Join(dir, "trace.csv")
	require.NoError(t, runGenTrace("-shape", shape, "-step", "1h", "-days", "2", "-vms", "100", "-waves", "7", "-out", tr))
	return dir, tr
}

func TestSimulateWritesOneResultPerPolicyAndAReport(t *testing.T) {
	dir, tr := smallTrace(t)
	out, report := filepath.Join(dir, "out.json"), filepath.Join(dir, "out.html")
	require.NoError(t, runSimulate("-trace", tr, "-policy", "reactive,oracle", "-json", out, "-report", report))

	b, err := os.ReadFile(out)
	require.NoError(t, err)
	var results []map[string]any
	require.NoError(t, json.Unmarshal(b, &results))
	require.Len(t, results, 2)
	for i, name := range []string{"reactive", "oracle"} {
		require.Equal(t, name, results[i]["name"])
		for _, field := range []string{"migrations", "sla_breaches", "wait_p50_s", "wait_p95_s", "wait_p99_s", "connector_hours", "utilization", "scale_events"} {
			require.Contains(t, results[i], field)
		}
		require.Positive(t, results[i]["migrations"])
	}
	html, err := os.ReadFile(report)
	require.NoError(t, err)
	require.Contains(t, string(html), "<svg")
	require.NotContains(t, string(html), "http://", "the report needs nothing from the network")
	require.NotContains(t, string(html), "https://")
	st, err := os.Stat(report)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
}

func TestSimulateNamesTheBadFlag(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("id,arrival,known_at,vm_id,site,sla_tier,bytes,deadline,wave\nm1,yesterday,,vm-1,ams1,gold,1,,\n"), 0o644))
	out := filepath.Join(dir, "out.json")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "-trace: required"},
		{[]string{"-trace", bad, "-policy", "psychic"}, `-policy: unknown policy "psychic"`},
		{[]string{"-trace", bad, "-quantile", "1.5"}, "-quantile: 1.5 must be in [0, 1)"},
		{[]string{"-trace", bad, "-oracle-spare", "-1"}, "-oracle-spare: -1 must not be negative"},
		{[]string{"-trace", filepath.Join(dir, "none.csv")}, "-trace: open"},
		{[]string{"-trace", bad, "-json", out}, "-trace: " + bad + ": trace: line 2: "},
	} {
		err := runSimulate(c.args...)
		require.Error(t, err, "%v", c.args)
		require.True(t, strings.Contains(err.Error(), c.want), "%v: %q lacks %q", c.args, err, c.want)
	}
	require.NoFileExists(t, out, "a failed run writes nothing")
}

// -sweep runs reactive+waves at every setting of the grid and sets the policies run
// against the cheapest that keeps the p99 wait within -max-wait.
func TestSimulateSweepComparesWithTheCheapestReactiveSetting(t *testing.T) {
	dir, tr := smallTrace(t)
	js, report := filepath.Join(dir, "out.json"), filepath.Join(dir, "out.html")
	var err error
	out := captureStdout(t, func() {
		err = runSimulate("-trace", tr, "-policy", "oracle", "-markdown", "-sweep", "-max-wait", "10m", "-json", js, "-report", report)
	})
	require.NoError(t, err)
	require.Contains(t, out, "| reactive+waves setting | SLA breaches | wait p95 | wait p99 | connector-hours |")
	require.Regexp(t, "The cheapest of the 216 settings with a p99 wait of at most 10m0s: `-reactive-target [01].[0-9] -reactive-headroom [0-3] -reactive-cooldown (2|5|10)m -lead-time (5|10|15)m`", out)
	require.Regexp(t, `\| oracle \| \d+ \| \d+ s \| [0-9.,]+ \| [0-9.]+ \|`, out)

	// The report and the JSON carry the tuned setting's run beside the policies.
	b, err := os.ReadFile(js)
	require.NoError(t, err)
	var results []map[string]any
	require.NoError(t, json.Unmarshal(b, &results))
	require.Len(t, results, 2)
	require.Equal(t, "reactive+waves tuned", results[1]["name"])
	html, err := os.ReadFile(report)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(html), "waves tuned</td>"), "the report's figures show the tuned setting's run")

	out = captureStdout(t, func() { err = runSimulate("-trace", tr, "-policy", "oracle", "-sweep", "-max-wait", "0s") })
	require.NoError(t, err)
	require.True(t, strings.Contains(out, "No setting of the 216 keeps the p99 wait within 0s.") || strings.Contains(out, "at most 0s:"),
		"with no wait allowed, the sweep names a setting that waits nothing or says none does:\n%s", out)
}
