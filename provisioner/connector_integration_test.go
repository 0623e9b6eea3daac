package provisioner_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/provisioner"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/testenv"
	"github.com/pmo-dev/pmo/workflows"
)

// buildConnector compiles the real connector command.
func buildConnector(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "connector")
	cmd := exec.Command("go", "build", "-o", bin, "./connector")
	cmd.Dir = filepath.Dir(wd)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./connector: %s", out)
	return bin
}

// moveThroughConnector is a test-only workflow: it pre-warms the connector and runs
// one transfer on the connector's task queue, as MigrationWorkflow does.
func moveThroughConnector(ctx workflow.Context, queue string, in contract.TransferInput) (contract.TransferResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           queue,
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	var ca *activities.Connector
	if err := workflow.ExecuteActivity(ctx, ca.Prepare, contract.PrepareInput{MigrationID: in.MigrationID, Bytes: in.ExpectedBytes}).Get(ctx, nil); err != nil {
		return contract.TransferResult{}, err
	}
	var res contract.TransferResult
	err := workflow.ExecuteActivity(ctx, ca.Transfer, in).Get(ctx, &res)
	return res, err
}

// cutOverOnConnector is a test-only workflow: the cutover's delta sync of one copy on
// the connector's task queue.
func cutOverOnConnector(ctx workflow.Context, queue string, in contract.CutoverInput) (contract.CutoverResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           queue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var ca *activities.Connector
	var res contract.CutoverResult
	err := workflow.ExecuteActivity(ctx, ca.Cutover, in).Get(ctx, &res)
	return res, err
}

// realConnector is a real connector process, started by the process driver, with
// the PostgreSQL it reports to and a Temporal worker that runs the test's workflows.
type realConnector struct {
	id, queue, dataDir, logPath string
	store                       *store.Store
	p                           *provisioner.Process
	tc                          client.Client
	// testQueue is where moveThroughConnector and cutOverOnConnector run.
	testQueue string
	st        provisioner.Status
	spec      provisioner.Spec
}

// startRealConnector starts a connector of the given size at site ams1 and waits until
// it is ready and reports metrics.
func startRealConnector(t *testing.T, size planning.Size) *realConnector {
	t.Helper()
	addr := testenv.TemporalAddress(t)
	namespace := testenv.Namespace(t, addr)
	dbURL := storetest.NewDatabase(t)
	ctx := context.Background()
	s, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	require.NoError(t, s.Migrate(ctx))
	bin := buildConnector(t)

	id := fmt.Sprintf("it-%d", time.Now().UnixNano()%1e12)
	queue := workflows.ConnectorTaskQueue(id)
	_, err = s.Pool.Exec(ctx, `INSERT INTO sites (id, name, region, uplink_bytes_per_sec) VALUES ('ams1', 'Amsterdam', 'eu', 1e9)`)
	require.NoError(t, err)
	_, err = s.Pool.Exec(ctx, `INSERT INTO connectors (id, pool, site_id, state, cpu_millis, ram_bytes, bandwidth_bytes_per_sec, storage_bytes, task_queue)
		VALUES ($1, 'default', 'ams1', 'warming', 500, 268435456, 1048576, 2147483648, $2)`, id, queue)
	require.NoError(t, err)

	dataDir := t.TempDir()
	p, err := provisioner.NewProcess(bin, dataDir, []string{"DATABASE_URL=" + dbURL, "TEMPORAL_ADDRESS=" + addr, "TEMPORAL_NAMESPACE=" + namespace, "PMO_DATA_DIR=" + dataDir}, nil)
	require.NoError(t, err)
	logPath := filepath.Join(dataDir, "logs", "connector-"+id+".log")
	t.Cleanup(func() {
		_ = p.Stop(context.Background(), id)
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- connector log ---\n%s", b)
		}
	})

	spec := provisioner.Spec{ID: id, Pool: "default", Site: "ams1", TaskQueue: queue, Size: size}
	st, err := p.Start(ctx, spec)
	require.NoError(t, err)
	require.True(t, st.Running)

	require.Eventually(t, func() bool {
		var ready bool
		_ = s.Pool.QueryRow(ctx, `SELECT ready_at IS NOT NULL FROM connectors WHERE id = $1`, id).Scan(&ready)
		return ready
	}, 30*time.Second, 100*time.Millisecond, "the connector records its readiness")
	require.Eventually(t, func() bool {
		var n int
		_ = s.Pool.QueryRow(ctx, `SELECT count(*) FROM connector_metrics WHERE connector_id = $1`, id).Scan(&n)
		return n > 0
	}, 15*time.Second, 100*time.Millisecond, "the connector reports metrics")

	tc, err := client.Dial(client.Options{HostPort: addr, Namespace: namespace,
		Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	testQueue := "provisioner-test-" + id
	w := worker.New(tc, testQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(moveThroughConnector, workflow.RegisterOptions{Name: "provisioner-test-move"})
	w.RegisterWorkflowWithOptions(cutOverOnConnector, workflow.RegisterOptions{Name: "provisioner-test-cutover"})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &realConnector{id: id, queue: queue, dataDir: dataDir, logPath: logPath, store: s, p: p, tc: tc,
		testQueue: testQueue, st: st, spec: spec}
}

// randomFile writes n random bytes to a file named name in a new folder.
func randomFile(t *testing.T, name string, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	src := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(src, data, 0o644))
	return src, data
}

func TestRealConnectorProcess(t *testing.T) {
	ctx := context.Background()
	c := startRealConnector(t, planning.Size{Name: "test", BandwidthBytesSec: 8 << 20, MaxTasks: 2})
	s, p, tc, id, queue, testQueue, dataDir, logPath, st := c.store, c.p, c.tc, c.id, c.queue, c.testQueue, c.dataDir, c.logPath, c.st
	again, err := p.Start(ctx, c.spec)
	require.NoError(t, err)
	require.Equal(t, st.PID, again.PID, "Start twice returns the same process")

	// One real transfer through the running process, started by a workflow.
	src, data := randomFile(t, "vm-it.img", 3<<20+77)

	// The connector serves ams1 (the provisioner starts it with -site) and reads only
	// under the site's sources: another site's transfer, or a source outside, is
	// refused at once, with nothing opened or written.
	site := []string{filepath.Dir(src)}
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("not a disk"), 0o600))
	for i, bad := range []contract.TransferInput{
		{MigrationID: "it-bad-0", Site: "fra1", Sources: site, Source: src, Destination: "vm-it/bad0.img"},
		{MigrationID: "it-bad-1", Site: "ams1", Sources: site, Source: secret, Destination: "vm-it/bad1.img", ExpectedBytes: 1 << 20},
	} {
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("provisioner-test-bad-%d-%s", i, id), TaskQueue: testQueue,
			WorkflowExecutionTimeout: 2 * time.Minute}, "provisioner-test-move", queue, bad)
		require.NoError(t, err)
		err = run.Get(ctx, nil)
		var app *temporal.ApplicationError
		require.ErrorAs(t, err, &app, bad.MigrationID)
		require.Equal(t, activities.ErrTypeBadSource, app.Type(), bad.MigrationID)
		require.NotContains(t, err.Error(), "10 bytes", "nothing is said of what lies outside")
		require.NoFileExists(t, filepath.Join(dataDir, "target", bad.Destination+".partial"))
	}

	in := contract.TransferInput{MigrationID: "it-1", Site: "ams1", Sources: site, Source: src, Destination: "vm-it/disk.img", ExpectedBytes: int64(len(data))}
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "provisioner-test-" + id, TaskQueue: testQueue,
		WorkflowExecutionTimeout: 2 * time.Minute}, "provisioner-test-move", queue, in)
	require.NoError(t, err)
	var res contract.TransferResult
	require.NoError(t, run.Get(ctx, &res))

	sum := sha256.Sum256(data)
	require.Equal(t, hex.EncodeToString(sum[:]), res.SHA256)
	require.Equal(t, int64(len(data)), res.Bytes)
	got, err := os.ReadFile(filepath.Join(dataDir, "target", "vm-it", "disk.img"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the destination holds the source's bytes")
	// 3 MiB at 8 MiB/s cannot beat the limit by much (one burst of 0.8 MiB).
	require.Less(t, res.AvgBytesPerSec, float64(16<<20), "the connector's bandwidth limit applies")
	require.Eventually(t, func() bool {
		var moved int64
		_ = s.Pool.QueryRow(ctx, `SELECT coalesce(max(bytes_moved), 0) FROM connector_metrics WHERE connector_id = $1`, id).Scan(&moved)
		return moved == int64(len(data))
	}, 10*time.Second, 100*time.Millisecond, "the metrics count the bytes moved")

	// The copy awaits cutover, so the connector holds it; its reads of the VM's disk
	// took measurable time; the target has room.
	var held, free int64
	require.Eventually(t, func() bool {
		_ = s.Pool.QueryRow(ctx, `SELECT storage_used_bytes, coalesce(target_free_bytes, 0) FROM connector_metrics
			WHERE connector_id = $1 ORDER BY at DESC LIMIT 1`, id).Scan(&held, &free)
		return held == int64(len(data))
	}, 10*time.Second, 100*time.Millisecond, "the metrics hold the copy until cutover")
	require.Positive(t, free, "the target's free space is measured")
	var latency float64
	require.NoError(t, s.Pool.QueryRow(ctx, `SELECT coalesce(max(read_latency_seconds), 0) FROM connector_metrics WHERE connector_id = $1`, id).Scan(&latency))
	require.Positive(t, latency, "a sample records the transfer's read latency")
	t.Logf("held %d bytes, target free %d bytes, read latency up to %.6f s", held, free, latency)

	cut, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "provisioner-test-cutover-" + id, TaskQueue: testQueue,
		WorkflowExecutionTimeout: 2 * time.Minute}, "provisioner-test-cutover", queue,
		contract.CutoverInput{MigrationID: "it-1", Site: "ams1", Sources: site, Source: src, Destination: "vm-it/disk.img"})
	require.NoError(t, err)
	var cres contract.CutoverResult
	require.NoError(t, cut.Get(ctx, &cres))
	require.Equal(t, hex.EncodeToString(sum[:]), cres.SHA256)
	require.Eventually(t, func() bool {
		_ = s.Pool.QueryRow(ctx, `SELECT storage_used_bytes FROM connector_metrics WHERE connector_id = $1 ORDER BY at DESC LIMIT 1`, id).Scan(&held)
		return held == 0
	}, 10*time.Second, 100*time.Millisecond, "a cut over copy is no longer held")

	require.NoError(t, p.Stop(ctx, id))
	status, err := p.Status(ctx, id)
	require.NoError(t, err)
	require.False(t, status.Running)
	require.Eventually(t, func() bool { return gone(st.PID) }, 5*time.Second, 20*time.Millisecond)
	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.Contains(t, string(log), `"msg":"connector stopped"`, "SIGTERM stopped the connector gracefully")
	require.Contains(t, string(log), `"connector":"`+id+`"`, "log lines name the connector")
}

// A connector whose CPU limit, not its bandwidth, holds it back says so in its
// metrics, and a resize in place frees it: the same process goes on with the same
// transfer, faster, and the Go runtime's memory limit follows the group's.
func TestACPULimitedConnectorIsThrottledUntilResizedInPlace(t *testing.T) {
	if on, why := (&provisioner.Limits{}).Enforced(); !on {
		t.Skip("connectors run unlimited on this machine: " + why)
	}
	ctx := context.Background()
	// No bandwidth limit: a fortieth of a core is all that holds the copy back.
	starved := planning.Size{Name: "starved", CPUMillis: 25, RAMBytes: 256 << 20, MaxTasks: 1}
	roomy := planning.Size{Name: "roomy", CPUMillis: 2000, RAMBytes: 1 << 30, MaxTasks: 1}
	c := startRealConnector(t, starved)
	// 0.9 of the group's memory, once the connector finds itself in its group.
	waitLogged(t, c.logPath, fmt.Sprintf(`"GOMEMLIMIT":%d`, int64(float64(starved.RAMBytes)*0.9)))

	src, data := randomFile(t, "vm-cpu.img", 256<<20)
	in := contract.TransferInput{MigrationID: "it-cpu", Site: "ams1", Sources: []string{filepath.Dir(src)}, Source: src,
		Destination: "vm-cpu/disk.img", ExpectedBytes: int64(len(data))}
	started := time.Now()
	run, err := c.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "provisioner-test-cpu-" + c.id, TaskQueue: c.testQueue,
		WorkflowExecutionTimeout: 5 * time.Minute}, "provisioner-test-move", c.queue, in)
	require.NoError(t, err)

	// A sample mid-copy: held back by its CPU limit (on each core it ran on, so often
	// over 100%), so CPU-bound. The first may have begun before the copy did.
	var throttled, rate float64
	var moved int64
	require.Eventually(t, func() bool {
		_ = c.store.Pool.QueryRow(ctx, `SELECT coalesce(cpu_throttled_percent, 0), bandwidth_used_bytes_per_sec, bytes_moved
			FROM connector_metrics WHERE connector_id = $1 AND active_tasks > 0 ORDER BY at DESC LIMIT 1`, c.id).Scan(&throttled, &rate, &moved)
		return rate > 0 && throttled >= planning.CPUBoundPercent
	}, time.Minute, 100*time.Millisecond, "a sample of the copy held back by the CPU limit")
	conn := planning.Connector{Size: starved, Usage: planning.Usage{CPUThrottledPercent: throttled, BandwidthUsedBytesSec: rate}}
	require.Equal(t, planning.BoundCPU, conn.Bound())
	require.Less(t, moved, int64(len(data))/2, "the copy is far from done")
	t.Logf("at %d millicores: %.1f MiB/s in the last sample, held back %.0f%% of the time", starved.CPUMillis, rate/(1<<20), throttled)

	resized := time.Now()
	require.NoError(t, c.p.Resize(ctx, c.id, roomy))
	// The copy's own pace so far: a sample's rate swings with where the quota's periods
	// fell.
	rate = float64(moved) / resized.Sub(started).Seconds()
	var res contract.TransferResult
	require.NoError(t, run.Get(ctx, &res))
	took := time.Since(resized)
	atOldRate := time.Duration(float64(int64(len(data))-moved) / rate * float64(time.Second))
	t.Logf("the rest took %s after the resize, %s at the old rate", took.Round(time.Millisecond), atOldRate.Round(time.Millisecond))
	require.Less(t, took, atOldRate/2, "the resize freed the copy")
	sum := sha256.Sum256(data)
	require.Equal(t, hex.EncodeToString(sum[:]), res.SHA256)

	// Resized in place: the same process, and the transfer was never restarted.
	st, err := c.p.Status(ctx, c.id)
	require.NoError(t, err)
	require.Equal(t, c.st.PID, st.PID)
	iter := c.tc.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, 0)
	for iter.HasNext() {
		e, err := iter.Next()
		require.NoError(t, err)
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil {
			require.EqualValues(t, 1, a.GetAttempt(), "no activity was retried")
		}
	}
	waitLogged(t, c.logPath, fmt.Sprintf(`"GOMEMLIMIT":%d`, int64(float64(roomy.RAMBytes)*0.9)))
}

// waitLogged waits until the connector's log holds want.
func waitLogged(t *testing.T, logPath, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(logPath)
		return bytes.Contains(b, []byte(want))
	}, 15*time.Second, 100*time.Millisecond, "the connector logs %s", want)
}
