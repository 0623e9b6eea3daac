package main

import (
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx/fxtest"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/provisioner"
	"github.com/pmo-dev/pmo/store/storetest"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-id", "c1", "-site", "ams1", "-bandwidth", "1048576", "-max-tasks", "2"})
	require.NoError(t, err)
	require.Equal(t, "pmo.connector.c1", o.TaskQueue, "the queue defaults to the connector's own")
	require.Equal(t, float64(1<<20), o.Bandwidth)
	require.Equal(t, 2, o.MaxTasks)
	require.Equal(t, 2*time.Second, o.MetricsInterval)
	require.Empty(t, o.ReportURL, "metrics go to PostgreSQL unless asked")
	require.Empty(t, o.Sources, "without -source the site's list alone applies")

	o, err = parseFlags([]string{"-id", "c1", "-source", "/srv/disks", "-source", "https://nas.example/ams1"})
	require.NoError(t, err)
	require.Equal(t, []string{"/srv/disks/", "https://nas.example/ams1/"}, o.Sources)

	t.Setenv("PMO_API_KEY", "")
	_, err = parseFlags([]string{"-id", "c1", "-report-url", "http://pmo.example:8080"})
	require.EqualError(t, err, "-report-url needs PMO_API_KEY set to the connector's API key (starter apikey create -role connector -connector c1)")
	t.Setenv("PMO_API_KEY", "pmo_key")
	o, err = parseFlags([]string{"-id", "c1", "-report-url", "http://pmo.example:8080"})
	require.NoError(t, err)
	require.Equal(t, "http://pmo.example:8080", o.ReportURL)
	require.Equal(t, "pmo_key", o.APIKey)
	require.Equal(t, 30*time.Second, o.ReportEvery, "an appliance posts every 30 s, several samples at a time")

	for _, args := range [][]string{
		{},
		{"-id", "c1", "-max-tasks", "0"},
		{"-id", "c1", "-bandwidth", "-5"},
		{"-id", "c1", "-metrics-interval", "1ms"},
		{"-id", "c1", "stray"},
		{"-id", "c1", "-report-url", "pmo.example:8080"},
		{"-id", "c1", "-report-url", "ftp://pmo.example"},
		{"-id", "c1", "-metrics-targets", "/tmp/targets"},
		{"-id", "c1", "-metrics-addr", "9465"},
		{"-id", "c1", "-metrics-interval", "2s", "-report-every", "1s"},
		{"-id", "c1", "-metrics-interval", "1s", "-report-every", "101s"},
		{"-id", "c1", "-source", "/"},
		{"-id", "c1", "-source", "disks"},
	} {
		_, err := parseFlags(args)
		require.Error(t, err, "%q", args)
	}
}

func TestParseStat(t *testing.T) {
	// A command name with a space and a parenthesis, as a process may choose.
	stat := "4242 (conn ector) x) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 130 0 0 20 0 12 0 9999 1000000 500 18446744073709551615"
	cpu, err := parseStat(stat)
	require.NoError(t, err)
	require.InDelta(t, 3.8, cpu, 1e-9, "(250 + 130) ticks at 100 Hz")

	_, err = parseStat("4242 (short) S 1 2")
	require.Error(t, err)

	pages, err := parseStatm("10000 2500 300 10 0 4000 0\n")
	require.NoError(t, err)
	require.Equal(t, int64(2500), pages)
}

func TestMetricIsADeltaOverTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := sample{at: t0, cpuSeconds: 10, moved: 1000}
	cur := sample{at: t0.Add(2 * time.Second), cpuSeconds: 11, moved: 5000, rssBytes: 1 << 20, active: 3}
	m := metric(prev, cur)
	require.InDelta(t, 50, m.CPUPercent, 1e-9, "1 CPU second in 2 s")
	require.InDelta(t, 2000, m.BandwidthUsedBytesSec, 1e-9, "4000 bytes in 2 s")
	require.Equal(t, int64(5000), m.BytesMoved)
	require.Equal(t, 3, m.ActiveTasks)
	require.Equal(t, int64(1<<20), m.RAMBytes)
	require.Nil(t, m.TargetFreeBytes, "not measured")
	require.Nil(t, m.ReadLatencySeconds, "nothing read")

	free := int64(9 << 30)
	cur.held, cur.targetFree, cur.readLatency = 4000, &free, 1500*time.Microsecond
	m = metric(prev, cur)
	require.Equal(t, int64(4000), m.StorageUsedBytes)
	require.Equal(t, &free, m.TargetFreeBytes)
	require.NotNil(t, m.ReadLatencySeconds)
	require.InDelta(t, 0.0015, *m.ReadLatencySeconds, 1e-12)
	require.Nil(t, m.CPUThrottledPercent, "no CPU limit")

	// Held back 0.5 s of the 2 s by its CPU limit.
	prev.cpu, cur.cpu = provisioner.CPUState{Limited: true, Throttled: time.Second}, provisioner.CPUState{Limited: true, Throttled: 1500 * time.Millisecond}
	m = metric(prev, cur)
	require.NotNil(t, m.CPUThrottledPercent)
	require.InDelta(t, 25, *m.CPUThrottledPercent, 1e-9)
	// Moved into its group between the samples: the counters are not comparable.
	prev.cpu = provisioner.CPUState{}
	require.Nil(t, metric(prev, cur).CPUThrottledPercent)
}

func TestSampleReadsThisProcess(t *testing.T) {
	s := takeSample(&activities.ConnectorStats{})
	require.Positive(t, s.rssBytes)
	// Burn a little CPU so the counter moves.
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	s2 := takeSample(&activities.ConnectorStats{})
	require.Greater(t, s2.cpuSeconds, s.cpuSeconds, "CPU time advanced (x=%d)", x)
}

func TestReporterWaitsForItsRowThenReports(t *testing.T) {
	s := storetest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	conn := activities.NewConnector("c1", nil, t.TempDir(), 1, nil)
	r := &Reporter{ID: "c1", Sink: StoreSink{Store: s}, Stats: &conn.Stats, Interval: 100 * time.Millisecond, Logger: slog.Default()}
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Without its row the reporter logs and keeps going rather than crashing.
	time.Sleep(300 * time.Millisecond)
	_, err := s.Pool.Exec(ctx, `INSERT INTO sites (id, name, region, uplink_bytes_per_sec) VALUES ('ams1', 'A', 'eu', 1e9)`)
	require.NoError(t, err)
	_, err = s.Pool.Exec(ctx, `INSERT INTO connectors (id, pool, site_id, state, cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, task_queue)
		VALUES ('c1', 'default', 'ams1', 'warming', 1000, 1, 1, 1, 'pmo.connector.c1')`)
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		var ready bool
		var metrics int
		_ = s.Pool.QueryRow(ctx, `SELECT ready_at IS NOT NULL, (SELECT count(*) FROM connector_metrics WHERE connector_id = 'c1') FROM connectors WHERE id = 'c1'`).Scan(&ready, &metrics)
		return ready && metrics >= 2
	}, 5*time.Second, 50*time.Millisecond, "readiness and metrics are recorded once the row exists")

	var ram, free int64
	var latency *float64
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT ram_bytes, target_free_bytes, read_latency_seconds FROM connector_metrics
		WHERE connector_id = 'c1' ORDER BY at DESC LIMIT 1`).Scan(&ram, &free, &latency))
	require.Positive(t, ram)
	require.Positive(t, free, "the target directory's free space")
	require.Nil(t, latency, "an idle connector read nothing")
}

// sinkRecorder records what a reporter writes.
type sinkRecorder struct {
	mu     sync.Mutex
	writes []int
}

func (s *sinkRecorder) Ready(context.Context, string) error { return nil }
func (s *sinkRecorder) Write(_ context.Context, _ string, samples []planning.MetricSample) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, len(samples))
	return nil
}

// An appliance samples every interval but posts the samples together, every
// WriteEvery (each post is an update of the fleet's workflow), its first at once.
func TestReporterPostsSamplesTogether(t *testing.T) {
	sink := &sinkRecorder{}
	conn := activities.NewConnector("c1", nil, t.TempDir(), 1, nil)
	r := &Reporter{ID: "c1", Sink: sink, Stats: &conn.Stats, Interval: 20 * time.Millisecond, WriteEvery: 200 * time.Millisecond, Logger: slog.Default()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	require.Eventually(t, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.writes) >= 3
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.Equal(t, 1, sink.writes[0], "the first sample goes at once")
	for _, n := range sink.writes[1:3] {
		require.Greater(t, n, 1, "later ones go together: %v", sink.writes)
	}
}

// With -metrics-targets the connector tells Prometheus where its metrics are, and
// takes the file away when it stops.
func TestMetricsTargetFileFollowsTheConnector(t *testing.T) {
	dir := t.TempDir()
	opts, err := parseFlags([]string{"-id", "c9", "-pool", "p1", "-site", "ams1", "-metrics-addr", "127.0.0.1:0", "-metrics-targets", dir})
	require.NoError(t, err)
	m, err := platform.NewMetrics(slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	lc := fxtest.NewLifecycle(t)
	serveMetrics(lc, opts, m, slog.New(slog.DiscardHandler))
	lc.RequireStart()

	file := filepath.Join(dir, "connector-c9.json")
	var targets []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	body, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(body, &targets))
	require.Equal(t, map[string]string{"pool": "p1", "site": "ams1", "connector": "c9"}, targets[0].Labels)
	resp, err := http.Get("http://" + targets[0].Targets[0] + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	lc.RequireStop()
	_, err = os.Stat(file)
	require.ErrorIs(t, err, fs.ErrNotExist)
}
