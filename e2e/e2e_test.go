// Package e2e drives the whole system as a user would: the real binaries, the Temporal
// dev server and PostgreSQL that make test starts, and connector processes that move
// real bytes.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/provisioner"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/testenv"
	"github.com/pmo-dev/pmo/workflows"
)

// system is one running PMO: its own database, data folder, pool and HTTP port.
type system struct {
	t       *testing.T
	bin     string
	dataDir string
	dbURL   string
	// temporal is the Temporal server's address.
	temporal string
	// namespace is the system's own Temporal namespace: its workers poll the production
	// task queues there, out of every other system's way.
	namespace string
	pool      string
	// api is the web server's base URL, read from its log: it listens on port 0.
	api string
	// key is an admin API key, made with the real starter and sent on every call.
	key string
	// metrics is the first worker's metrics address, read from its log.
	metrics string
	env     []string
	procs   []*exec.Cmd
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	return filepath.Dir(wd)
}

// binaries is the folder of the four binaries that every system runs, built once per
// test binary: a build takes seconds of both cores, and the tests start a system each.
var binaries struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// build returns the folder of the four binaries, building them the first time.
func build(t *testing.T) string {
	t.Helper()
	binaries.once.Do(func() {
		if binaries.dir, binaries.err = os.MkdirTemp("", "pmo-e2e-bin-"); binaries.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binaries.dir+"/", "./worker", "./web", "./starter", "./connector")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binaries.err = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	require.NoError(t, binaries.err)
	return binaries.dir
}

// systems numbers the systems this test binary starts, for their pool names.
var systems atomic.Int64

// startSystem starts a system on the Temporal dev server and PostgreSQL that make test
// started, its processes given env beside the system's own settings.
func startSystem(t *testing.T, env ...string) *system {
	t.Helper()
	return startSystemOn(t, testenv.TemporalAddress(t), storetest.NewDatabase(t), env...)
}

// startSystemOn starts a system on the Temporal server at temporal and the database at
// dbURL: a test that breaks one of them brings its own.
func startSystemOn(t *testing.T, temporal, dbURL string, env ...string) *system {
	t.Helper()
	s := &system{t: t, bin: build(t), dataDir: t.TempDir(), dbURL: dbURL, temporal: temporal}
	s.pool = fmt.Sprintf("e2e%d%03d", time.Now().UnixNano()%1_000_000, systems.Add(1))
	s.namespace = testenv.Namespace(t, temporal)
	s.env = append(append(os.Environ(),
		"DATABASE_URL="+s.dbURL, "TEMPORAL_ADDRESS="+temporal, "TEMPORAL_NAMESPACE="+s.namespace, "PMO_POOL="+s.pool,
		"PMO_DATA_DIR="+s.dataDir, "PMO_CONNECTOR_BIN="+filepath.Join(s.bin, "connector"), "PMO_TICK=3s"), env...)
	t.Cleanup(s.stop)
	s.run("migrate")
	s.key = s.createKey("e2e", "admin")
	s.run("seed", "-disks", filepath.Join(s.dataDir, "disks"), "-shape", filepath.Join(repoRoot(t), "..", "shared", "data", "traces", "azure2019-vm-cpu-5min.csv"))
	s.spawn("worker")
	s.spawn("web")
	// Ready means ready: not before the fleet runs, and then every route answers.
	var ready struct{ Fleet string }
	require.Equal(t, 503, s.sendAs("", "GET", "/readyz", "", nil, &ready), "ready without a fleet")
	require.Contains(t, ready.Fleet, "starter fleet start -pool "+s.pool)
	s.run("fleet", "start", "-tick", "3s", "-lead-time", "1h")
	s.waitReady()
	require.Equal(t, 200, s.call("GET", "/connectors", nil, nil), "the fleet's routes answer once the API is ready")
	return s
}

// scraped is what a Prometheus endpoint served.
type scraped map[string]*dto.MetricFamily

// value sums the samples of the named metric (a histogram's _count too) whose labels
// include labels; 0 when there are none.
func (m scraped) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	family, suffix := name, ""
	if f, ok := strings.CutSuffix(name, "_count"); ok && m[f] != nil {
		family, suffix = f, "_count"
	}
	var sum float64
	for _, metric := range m[family].GetMetric() {
		have := map[string]string{}
		for _, l := range metric.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if !match {
			continue
		}
		switch {
		case suffix == "_count":
			sum += float64(metric.GetHistogram().GetSampleCount())
		case metric.Counter != nil:
			sum += metric.GetCounter().GetValue()
		case metric.Gauge != nil:
			sum += metric.GetGauge().GetValue()
		}
	}
	return sum
}

// scrape reads a Prometheus endpoint, with the admin key.
func (s *system) scrape(url string) scraped {
	s.t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	require.Equal(s.t, 200, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(s.t, err)
	return families
}

// waitReady waits until the web server answers that it is ready.
func (s *system) waitReady() {
	s.t.Helper()
	s.eventually(30*time.Second, "the API is ready", func() bool {
		resp, err := http.Get(s.api + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func (s *system) run(args ...string) string {
	s.t.Helper()
	out, err := s.starter(args...)
	require.NoError(s.t, err, "starter %v: %s", args, out)
	return out
}

// starter runs a starter command and returns its output and how it ended.
func (s *system) starter(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(s.bin, "starter"), args...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// createKey makes an API key with `starter apikey create` and returns it: the only
// thing the command prints on stdout.
func (s *system) createKey(name, role string, flags ...string) string {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "starter"), append([]string{"apikey", "create", "-name", name, "-role", role}, flags...)...)
	cmd.Env = s.env
	out, err := cmd.Output()
	require.NoError(s.t, err, "starter apikey create")
	return strings.TrimSpace(string(out))
}

// spawn starts one of the system's binaries with the system's environment and env,
// logging to <name>.log. The web server and the worker listen on port 0 and log the
// address they got, which spawn reads back (s.api; s.metrics for the first worker), so
// no port is picked for them ahead of time for another process to take.
func (s *system) spawn(name string, env ...string) {
	s.t.Helper()
	path := filepath.Join(s.dataDir, name+".log")
	log, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(s.t, err)
	defer log.Close()
	offset, err := log.Seek(0, io.SeekEnd)
	require.NoError(s.t, err)
	switch name {
	case "web":
		env = append([]string{"PMO_HTTP_ADDR=127.0.0.1:0"}, env...)
	case "worker":
		env = append([]string{"PMO_METRICS_ADDR=127.0.0.1:0"}, env...)
	}
	cmd := exec.Command(filepath.Join(s.bin, name))
	cmd.Env, cmd.Stdout, cmd.Stderr = append(append([]string{}, s.env...), env...), log, log
	require.NoError(s.t, cmd.Start())
	s.procs = append(s.procs, cmd)
	switch name {
	case "web":
		addr := s.listening(cmd, path, offset, "PMO API listening")
		s.api = "http://" + addr
		s.setEnv("PMO_HTTP_ADDR", addr) // for the CLI
	case "worker":
		if addr := s.listening(cmd, path, offset, "metrics listening"); s.metrics == "" {
			s.metrics = addr
		}
	}
}

// listenAddr is the address in a "listening" log line.
var listenAddr = regexp.MustCompile(`http://(127\.0\.0\.1:[0-9]+)`)

// listening waits until the process logs msg, after offset in its log file, and
// returns the http://host:port address on that line.
func (s *system) listening(cmd *exec.Cmd, path string, offset int64, msg string) string {
	s.t.Helper()
	var addr string
	s.eventually(30*time.Second, filepath.Base(cmd.Path)+" logs "+msg, func() bool {
		b, err := os.ReadFile(path)
		require.NoError(s.t, err)
		for line := range strings.Lines(string(b[offset:])) {
			if m := listenAddr.FindStringSubmatch(line); m != nil && strings.Contains(line, msg) {
				addr = m[1]
				return true
			}
		}
		return false
	})
	return addr
}

// getenv is a variable of the system's environment, the last value given.
func (s *system) getenv(name string) string {
	for _, kv := range slices.Backward(s.env) {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// setEnv sets a variable of the system's environment.
func (s *system) setEnv(name, value string) {
	s.env = append(slices.DeleteFunc(s.env, func(kv string) bool { return strings.HasPrefix(kv, name+"=") }), name+"="+value)
}

// stop ends the processes, the connectors the worker started, and the fleet.
func (s *system) stop() {
	cmd := exec.Command(filepath.Join(s.bin, "starter"), "fleet", "stop")
	cmd.Env = s.env
	_ = cmd.Run()
	s.stopProcesses()
	if s.t.Failed() {
		for _, name := range []string{"worker", "web"} {
			if b, err := os.ReadFile(filepath.Join(s.dataDir, name+".log")); err == nil {
				s.t.Logf("--- %s log (tail) ---\n%s", name, tail(string(b), 4000))
			}
		}
	}
}

// stopProcesses does what Ctrl-C on make run does: it stops the worker, the web server
// and every connector, and leaves Temporal and PostgreSQL as they are.
func (s *system) stopProcesses() {
	for _, p := range s.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
		_ = p.Wait()
	}
	s.procs = nil
	// Their control groups go with them, as the fleet's Stop removes them; a connector
	// started again later gets its group anew.
	var limits provisioner.Limits
	for id, pid := range s.connectorPIDs() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		_ = limits.Remove(id)
	}
}

// connectorPIDs reads the provisioner's pid files.
func (s *system) connectorPIDs() map[string]int {
	out := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(s.dataDir, "connectors", "*.pid"))
	for _, f := range files {
		var pid int
		if b, err := os.ReadFile(f); err == nil && json.Unmarshal(bytes.TrimSpace(b), &pid) == nil && pid > 0 {
			out[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
		}
	}
	return out
}

// waitWarm waits until the connector with that ID reports warm.
func (s *system) waitWarm(id string) {
	s.t.Helper()
	s.eventually(60*time.Second, "connector "+id+" is warm", func() bool {
		var conns []struct{ ID, State string }
		s.call("GET", "/connectors", nil, &conns)
		for _, c := range conns {
			if c.ID == id && c.State == "warm" {
				return true
			}
		}
		return false
	})
}

// connect opens the system's database for the test's checks.
func (s *system) connect() *pgx.Conn {
	s.t.Helper()
	db, err := pgx.Connect(context.Background(), s.dbURL)
	require.NoError(s.t, err)
	s.t.Cleanup(func() { db.Close(context.Background()) })
	return db
}

// vmsBySize returns n VMs at a site and their disks, the largest first, or the
// smallest first when largest is false.
func (s *system) vmsBySize(db *pgx.Conn, site string, n int, largest bool) (ids, disks []string) {
	s.t.Helper()
	order := "disk_bytes"
	if largest {
		order += " DESC"
	}
	rows, err := db.Query(context.Background(), `SELECT id, disk_uri FROM vms WHERE site_id = $1 ORDER BY `+order+`, id LIMIT $2`, site, n)
	require.NoError(s.t, err)
	for rows.Next() {
		var id, disk string
		require.NoError(s.t, rows.Scan(&id, &disk))
		ids, disks = append(ids, id), append(disks, disk)
	}
	require.NoError(s.t, rows.Err())
	require.Len(s.t, ids, n)
	return ids, disks
}

// slowDown resizes a connector to the small size, 1 MiB/s, so that a copy on it is
// still running when the test acts on it.
func (s *system) slowDown(connectorID string) {
	s.t.Helper()
	require.Equal(s.t, 200, s.call("POST", "/scale", map[string]any{"action": "resize", "connector_id": connectorID,
		"size": "small", "who": "e2e", "why": "slow it down"}, nil))
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (s *system) eventually(timeout time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.t.Fatalf("timed out after %s waiting until %s", timeout, what)
}

// call sends a JSON request and decodes the JSON answer into out.
func (s *system) call(method, path string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(s.t, err)
		rd = bytes.NewReader(b)
	}
	return s.send(method, path, "application/json", rd, out)
}

// send makes a request with a body of the given content type, with the system's admin
// key, and decodes the JSON answer into out; it returns the status.
func (s *system) send(method, path, contentType string, body io.Reader, out any) int {
	s.t.Helper()
	return s.sendAs(s.key, method, path, contentType, body, out)
}

// sendAs is send with another key, or none when key is empty.
func (s *system) sendAs(key, method, path, contentType string, body io.Reader, out any) int {
	s.t.Helper()
	req, err := http.NewRequest(method, s.api+path, body)
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", contentType)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	if out != nil && len(raw) > 0 {
		require.NoError(s.t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
	return resp.StatusCode
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

type problem struct {
	Status int    `json:"status"`
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func TestMigrationOverHTTPCopiesTheDiskThroughAConnector(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx := context.Background()
	db := s.connect()

	var vmID, disk string
	require.NoError(t, db.QueryRow(ctx, `SELECT id, disk_uri FROM vms WHERE site_id = 'ams1' ORDER BY disk_bytes LIMIT 1`).Scan(&vmID, &disk))

	// No key, no entry; a viewer's key reads but does not change anything.
	var p problem
	require.Equal(t, 401, s.sendAs("", "GET", "/connectors", "application/json", nil, &p))
	viewer := s.createKey("e2e viewer", "viewer")
	require.Equal(t, 200, s.sendAs(viewer, "GET", "/connectors", "application/json", nil, nil))
	require.Equal(t, 403, s.sendAs(viewer, "POST", "/migrations", "application/json", strings.NewReader(`{"vm_id":"`+vmID+`"}`), &p))

	// Bad input is refused with the field named, by the edge or by the workflow.
	require.Equal(t, 422, s.call("POST", "/scale", map[string]any{"action": "provision", "site": "nowhere", "count": 1, "who": "e2e", "why": "test"}, &p))
	require.Equal(t, "site", p.Field)
	require.Equal(t, 422, s.call("POST", "/migrations", map[string]any{"vm_id": "vm-none"}, &p))
	require.Equal(t, "vm_id", p.Field)
	require.Equal(t, 404, s.call("GET", "/migrations/never-submitted", nil, &p))

	// An operator pre-provisions a connector at the VM's site.
	var scaled struct {
		Connectors []struct{ ID, Site, State string } `json:"connectors"`
	}
	require.Equal(t, 200, s.call("POST", "/scale", map[string]any{"action": "provision", "site": "ams1", "count": 1, "who": "e2e", "why": "warm ahead of the wave"}, &scaled))
	require.Len(t, scaled.Connectors, 1)
	manual := scaled.Connectors[0].ID
	s.waitWarm(manual)

	// A migration started over HTTP copies the disk through the connector.
	mid := "e2e-" + s.pool // unique on a shared dev server
	var started struct {
		Migration struct {
			ID         string `json:"id"`
			WorkflowID string `json:"workflow_id"`
			RunID      string `json:"run_id"`
			Site       string `json:"site"`
		} `json:"migration"`
	}
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": mid, "vm_id": vmID}, &started))
	require.Equal(t, "migration-"+mid, started.Migration.WorkflowID)
	var again struct {
		Migration struct {
			RunID string `json:"run_id"`
		} `json:"migration"`
	}
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": mid, "vm_id": vmID}, &again), "a retried request gets the first answer")
	require.Equal(t, started.Migration.RunID, again.Migration.RunID)
	require.Equal(t, 200, s.call("POST", "/migrations", map[string]any{"id": mid, "vm_id": vmID, "priority": 5}, &again), "another start under a used ID returns the existing migration")
	require.Equal(t, started.Migration.RunID, again.Migration.RunID, "one workflow, not two")
	// Each of these calls is in the audit trail under the key that made it.
	var audited []int
	rows, err := db.Query(ctx, `SELECT a.status FROM api_audit a JOIN api_keys k ON k.id = a.key_id
		WHERE a.route = '/migrations' AND a.method = 'POST' AND k.name = 'e2e' ORDER BY a.id`)
	require.NoError(t, err)
	for rows.Next() {
		var status int
		require.NoError(t, rows.Scan(&status))
		audited = append(audited, status)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []int{422, 201, 201, 200}, audited)
	var refused int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM api_audit a JOIN api_keys k ON k.id = a.key_id
		WHERE k.role = 'viewer' AND a.status = 403`).Scan(&refused))
	require.Equal(t, 1, refused)
	var view struct {
		Phase          string  `json:"phase"`
		Outcome        string  `json:"outcome"`
		ConnectorID    string  `json:"connector_id"`
		Placement      string  `json:"placement"`
		SHA256         string  `json:"sha256"`
		Destination    string  `json:"destination"`
		WorkflowStatus string  `json:"workflow_status"`
		Progress       float64 `json:"progress"`
	}
	s.eventually(3*time.Minute, "the migration finishes", func() bool {
		s.call("GET", "/migrations/"+mid, nil, &view)
		return view.Phase == "done"
	})
	require.Equal(t, "succeeded", view.Outcome, "%+v", view)
	require.Equal(t, 1.0, view.Progress)
	require.Equal(t, fileSHA(t, disk), view.SHA256)
	copied := filepath.Join(s.dataDir, "target", view.Destination)
	require.Equal(t, fileSHA(t, disk), fileSHA(t, copied), "the destination holds the source's bytes")

	var outcome, connector string
	var moved int64
	require.NoError(t, db.QueryRow(ctx, `SELECT outcome, connector_id, bytes FROM migrations WHERE id = $1`, mid).Scan(&outcome, &connector, &moved))
	require.Equal(t, "succeeded", outcome)
	require.Equal(t, view.ConnectorID, connector)
	require.True(t, strings.HasPrefix(view.Placement, connector+": "), "the placement says why: %q", view.Placement)
	var connectorBandwidth float64
	require.NoError(t, db.QueryRow(ctx, `SELECT connector_bandwidth_bytes_per_sec FROM migrations WHERE id = $1`, mid).Scan(&connectorBandwidth))
	require.Positive(t, connectorBandwidth, "the history keeps the connector's bandwidth for the rate model")
	st, err := os.Stat(disk)
	require.NoError(t, err)
	require.Equal(t, st.Size(), moved)
	// Samples are written every 2 s: a short copy on a busy machine can end first.
	require.Eventually(t, func() bool {
		var metrics int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM connector_metrics WHERE connector_id = $1`, connector).Scan(&metrics))
		return metrics > 0
	}, 20*time.Second, 250*time.Millisecond, "the connector reports its metrics")

	// The worker's Prometheus metrics: the Temporal SDK's and PMO's own.
	m := s.scrape("http://" + s.metrics + "/metrics")
	pool := map[string]string{"pool": s.pool}
	ams1 := map[string]string{"pool": s.pool, "site": "ams1"}
	with := func(labels map[string]string, more ...string) map[string]string {
		out := maps.Clone(labels)
		for i := 0; i+1 < len(more); i += 2 {
			out[more[i]] = more[i+1]
		}
		return out
	}
	require.Positive(t, m.value(t, "temporal_workflow_completed_total", map[string]string{"workflow_type": "MigrationWorkflow"}))
	require.Positive(t, m.value(t, "temporal_activity_execution_latency_seconds_count", map[string]string{"activity_type": "RecordOutcome"}))
	require.Positive(t, m.value(t, "go_goroutines", nil))
	require.Equal(t, 1.0, m.value(t, "pmo_migrations_total", with(ams1, "outcome", "succeeded")))
	require.Equal(t, float64(moved), m.value(t, "pmo_bytes_moved_total", ams1))
	require.Equal(t, 1.0, m.value(t, "pmo_migration_wait_seconds_count", ams1))
	require.Positive(t, m.value(t, "pmo_connectors_planned", ams1))
	require.Positive(t, m.value(t, "pmo_connectors", with(ams1, "state", "warm"))+m.value(t, "pmo_connectors", with(ams1, "state", "active")))
	require.Positive(t, m.value(t, "pmo_scaling_decisions_total", with(pool, "action", "start", "rule", "forecast")))
	// The connector's own, found as Prometheus would find it: through the file_sd
	// file it wrote when it started.
	var targets []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	body, err := os.ReadFile(filepath.Join(s.dataDir, "prometheus", "connector-"+connector+".json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(body, &targets))
	require.Len(t, targets, 1)
	require.Equal(t, map[string]string{"pool": s.pool, "site": "ams1", "connector": connector}, targets[0].Labels)
	cm := s.scrape("http://" + targets[0].Targets[0] + "/metrics")
	require.Positive(t, cm.value(t, "temporal_activity_execution_latency_seconds_count", map[string]string{"activity_type": "Transfer"}))
	// The web server's, behind a viewer key.
	require.Equal(t, 401, s.sendAs("", "GET", "/metrics", "", nil, nil))
	require.Positive(t, s.scrape(s.api+"/metrics").value(t, "temporal_request_total", map[string]string{"operation": "StartWorkflowExecution"}))

	// A planned batch gets a resource prediction, with its arithmetic, and enters the
	// fleet's plan.
	var answer struct {
		Sites []struct {
			Site       string
			Connectors int
			Arithmetic struct {
				Need struct {
					Connectors int `json:"connectors"`
					Bounded    int `json:"bounded_connectors"`
				} `json:"need"`
				LeadTime struct{ Seconds float64 } `json:"lead_time"`
				Bound    struct{ Kind string }     `json:"bound"`
				Model    struct{ Name, Error string }
			} `json:"arithmetic"`
		} `json:"sites"`
		Reasoning []string `json:"reasoning"`
		Planned   bool     `json:"planned"`
	}
	now := time.Now().UTC()
	require.Equal(t, 200, s.call("POST", "/forecast", map[string]any{
		"id": "wave1", "vm_ids": []string{vmID}, "vms": []map[string]any{{"site": "fra1", "disk_bytes": 64 << 20}},
		"earliest_start": now.Add(30 * time.Minute).Format(time.RFC3339), "deadline": now.Add(3 * time.Hour).Format(time.RFC3339), "plan": true,
	}, &answer))
	require.True(t, answer.Planned)
	require.Len(t, answer.Sites, 2)
	require.Positive(t, answer.Sites[0].Connectors)
	for _, site := range answer.Sites {
		a := site.Arithmetic
		require.Equal(t, site.Connectors, a.Need.Connectors, "%s", site.Site)
		require.Equal(t, a.Need.Connectors, a.Need.Bounded, "%s: nothing bounds it", site.Site)
		require.Equal(t, "none", a.Bound.Kind, "%s", site.Site)
		require.GreaterOrEqual(t, a.LeadTime.Seconds, 3600.0, "%s: the lead time is at least the setting", site.Site)
		require.NotContains(t, []string{"", "none"}, a.Model.Name, "%s: a model forecast it", site.Site)
		require.NotEmpty(t, a.Model.Error, "%s", site.Site)
	}
	require.Len(t, answer.Reasoning, 2, "a sentence a site")

	// The planned wave simulated under the policy in force and a pool of one connector.
	var simulated struct {
		Planned  int `json:"planned"`
		Proposed struct {
			MaxConnectors int `json:"max_connectors"`
		} `json:"proposed"`
		Results []struct {
			Name           string  `json:"name"`
			Migrations     int     `json:"migrations"`
			ConnectorHours float64 `json:"connector_hours"`
			VersusBaseline float64 `json:"vs_baseline"`
		} `json:"results"`
		Baseline struct {
			Setting  string `json:"setting"`
			Settings int    `json:"settings"`
		} `json:"baseline"`
		Reasoning []string `json:"reasoning"`
	}
	require.Equal(t, 200, s.call("POST", "/simulate", map[string]any{"policy": map[string]any{"max_connectors": 1}, "hours": 6}, &simulated))
	require.Equal(t, 2, simulated.Planned, "the wave's two migrations")
	require.Equal(t, 1, simulated.Proposed.MaxConnectors)
	require.Len(t, simulated.Results, 3, "current, proposed and the reactive+waves baseline")
	require.Len(t, simulated.Reasoning, 3)
	require.Equal(t, 216, simulated.Baseline.Settings)
	require.NotEmpty(t, simulated.Baseline.Setting, "a setting of the baseline keeps the wait within a minute")
	// docs/simulator.md quotes these.
	t.Logf("POST /simulate: %d planned; %s", simulated.Planned, strings.Join(simulated.Reasoning, "; "))
	for i, name := range []string{"current", "proposed", "reactive+waves"} {
		require.Equal(t, name, simulated.Results[i].Name)
		require.GreaterOrEqual(t, simulated.Results[i].Migrations, 2, "%s: the wave and any ad-hoc work", name)
	}
	base := simulated.Results[2]
	require.InDelta(t, simulated.Results[0].ConnectorHours/base.ConnectorHours, simulated.Results[0].VersusBaseline, 1e-6)
	require.Equal(t, 422, s.call("POST", "/simulate", map[string]any{"hours": 0}, &p))
	require.Equal(t, "hours", p.Field)
	var plan struct {
		Targets []struct{ Site string } `json:"targets"`
	}
	require.Equal(t, 200, s.call("GET", "/plan", nil, &plan))
	require.NotEmpty(t, plan.Targets)
	var ovr struct{ ID string }
	require.Equal(t, 202, s.call("POST", "/overrides", map[string]any{"kind": "pin", "site": "lon1", "min": 1, "who": "e2e", "why": "test", "ttl": "1h"}, &ovr))
	s.eventually(30*time.Second, "the override is audited", func() bool {
		var n int
		_ = db.QueryRow(ctx, `SELECT count(*) FROM override_audit WHERE override_id = $1 AND action = 'applied'`, ovr.ID).Scan(&n)
		return n == 1
	})
	require.True(t, strings.HasPrefix(manual, s.pool+"-ams1-"))

	// What if ams1 lost its link and fra1 were blacked out? The plan beside today's,
	// and nothing changes.
	var wi struct {
		Planned bool `json:"planned"`
		Today   *struct {
			Targets []struct {
				Site       string
				Connectors int
			} `json:"targets"`
		} `json:"today"`
		WhatIf *struct {
			Targets []struct {
				Site       string
				Connectors int
			} `json:"targets"`
			Bottlenecks []struct{ Site, Kind string } `json:"bottlenecks"`
		} `json:"what_if"`
		Reasoning []string `json:"reasoning"`
	}
	require.Equal(t, 200, s.call("POST", "/forecast", map[string]any{
		"id": "whatif", "vms": []map[string]any{{"site": "fra1", "disk_bytes": 64 << 20}},
		"earliest_start": now.Add(30 * time.Minute).Format(time.RFC3339), "deadline": now.Add(3 * time.Hour).Format(time.RFC3339),
		"what_if": map[string]any{"add_wave": true, "lose_link": []string{"ams1"},
			"blackout": []map[string]any{{"site": "fra1", "from": now.Add(time.Hour).Format(time.RFC3339), "to": now.Add(2 * time.Hour).Format(time.RFC3339)}}},
	}, &wi))
	require.False(t, wi.Planned)
	require.NotNil(t, wi.Today)
	require.NotNil(t, wi.WhatIf)
	for _, tg := range wi.WhatIf.Targets {
		if tg.Site == "ams1" {
			require.Zero(t, tg.Connectors, "no connectors where the link is down")
		}
	}
	require.True(t, slices.ContainsFunc(wi.WhatIf.Bottlenecks, func(b struct{ Site, Kind string }) bool { return b.Site == "ams1" && b.Kind == "uplink" }))
	require.True(t, slices.ContainsFunc(wi.Reasoning, func(r string) bool { return strings.Contains(r, "what if: ams1 loses its link") }))
	var after struct {
		Reasons []string `json:"reasons"`
	}
	require.Equal(t, 200, s.call("GET", "/plan", nil, &after))
	require.False(t, slices.ContainsFunc(after.Reasons, func(r string) bool { return strings.Contains(r, "link down") }), "the what-if changed nothing")

	// The pool's scaling policy: read it, refuse a bad one, change one field.
	var pol struct {
		Mode            string `json:"mode"`
		MaxConnectors   int    `json:"max_connectors"`
		ScaleInCooldown string `json:"scale_in_cooldown"`
	}
	require.Equal(t, 200, s.call("GET", "/policy", nil, &pol))
	require.Equal(t, "active", pol.Mode)
	require.Equal(t, "auto", pol.ScaleInCooldown, "derived from the boots the fleet measures")
	require.Equal(t, 422, s.call("POST", "/policy", map[string]any{"mode": "yolo", "who": "e2e", "why": "test"}, &p))
	require.Equal(t, "mode", p.Field)
	require.Equal(t, 200, s.call("POST", "/policy", map[string]any{"max_connectors": 50, "who": "e2e", "why": "budget"}, &pol))
	require.Equal(t, 50, pol.MaxConnectors)
	require.Equal(t, "active", pol.Mode, "the fields not given stay")

	// The histories that the live system wrote replay against today's workflow code:
	// the workflows are deterministic.
	s.replayHistories(map[string]string{"migration-succeeded": "migration-" + mid, "fleet": "fleet-" + s.pool})
}

// replayHistories fetches each workflow's history from the dev server and replays it
// against today's workflow code. With PMO_RECORD_HISTORIES set to a folder, it also
// writes each history there as <name>.json, for workflows/replay_test.go to replay on
// every test run (see workflows/testdata/replay/README.md).
func (s *system) replayHistories(named map[string]string) {
	t := s.t
	t.Helper()
	c := s.dialTemporal()
	dc, err := platform.DataConverter(s.config())
	require.NoError(t, err)
	replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DataConverter: dc})
	require.NoError(t, err)
	for _, wf := range workflows.All() {
		replayer.RegisterWorkflow(wf)
	}
	record := os.Getenv("PMO_RECORD_HISTORIES")
	if s.getenv("PMO_PAYLOAD_KEY") != "" {
		record = "" // encrypted histories are not replay fixtures
	}
	for _, name := range slices.Sorted(maps.Keys(named)) {
		id := named[name]
		hist := &historypb.History{}
		it := c.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			hist.Events = append(hist.Events, ev)
		}
		require.NotEmpty(t, hist.Events, id)
		require.NoError(t, replayer.ReplayWorkflowHistory(nil, hist), "replaying %s", id)
		if record != "" {
			b, err := protojson.MarshalOptions{Multiline: true, Indent: " "}.Marshal(hist)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(record, name+".json"), b, 0o644))
		}
	}
}

// newestWorkflow returns the ID of the newest workflow that the visibility query
// matches, for workflows whose ID the test does not know (an import's, named by a
// hash of the staged file).
func (s *system) newestWorkflow(query string) string {
	t := s.t
	t.Helper()
	c := s.dialTemporal()
	var id string
	require.Eventually(t, func() bool {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1})
		if err != nil || len(resp.GetExecutions()) == 0 {
			return false
		}
		id = resp.GetExecutions()[0].GetExecution().GetWorkflowId()
		return true
	}, 30*time.Second, 250*time.Millisecond, "no workflow matches %s", query)
	return id
}

// A restart of everything but Temporal and PostgreSQL, as a second make run does, keeps
// the data, the fleet workflow and its connectors.
func TestRestartKeepsTheDataTheFleetAndItsConnectors(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx := context.Background()
	db := s.connect()
	var vms, history int
	require.NoError(t, db.QueryRow(ctx, `SELECT (SELECT count(*) FROM vms), (SELECT count(*) FROM migrations)`).Scan(&vms, &history))

	var scaled struct {
		Connectors []struct{ ID string } `json:"connectors"`
	}
	require.Equal(t, 200, s.call("POST", "/scale", map[string]any{"action": "provision", "site": "lon1", "count": 1, "size": "small", "who": "e2e", "why": "restart test"}, &scaled))
	id := scaled.Connectors[0].ID
	s.waitWarm(id)
	before := s.connectorPIDs()[id]
	require.Positive(t, before)

	s.stopProcesses()
	require.Contains(t, s.run("seed"), "already seeded", "the seed leaves a seeded database alone")
	s.spawn("worker")
	s.spawn("web")
	require.Contains(t, s.run("fleet", "start"), "running", "fleet start attaches to the running fleet")

	s.eventually(60*time.Second, "the fleet starts the connector's process again", func() bool {
		after := s.connectorPIDs()[id]
		return after > 0 && after != before && syscall.Kill(after, 0) == nil
	})
	s.waitWarm(id)
	var conns []struct {
		ID     string
		Manual bool
		Size   string
	}
	s.call("GET", "/connectors", nil, &conns)
	var kept bool
	for _, c := range conns {
		if c.ID == id {
			kept = c.Manual && c.Size == "small"
		}
	}
	require.True(t, kept, "the operator's connector keeps its size and stays manual: %+v", conns)
	var vms2, history2 int
	require.NoError(t, db.QueryRow(ctx, `SELECT (SELECT count(*) FROM vms), (SELECT count(*) FROM migrations)`).Scan(&vms2, &history2))
	require.Equal(t, vms, vms2)
	require.Equal(t, history, history2)
}

// listedMigration is one entry of GET /migrations.
type listedMigration struct {
	ID      string `json:"id"`
	Site    string `json:"site"`
	SLATier string `json:"sla_tier"`
	Phase   string `json:"phase"`
}

// migrationView is the part of GET /migrations/{id} these tests read.
type migrationView struct {
	ID          string  `json:"id"`
	Phase       string  `json:"phase"`
	Outcome     string  `json:"outcome"`
	ConnectorID string  `json:"connector_id"`
	SHA256      string  `json:"sha256"`
	Destination string  `json:"destination"`
	Attempts    int     `json:"attempts"`
	BytesDone   int64   `json:"bytes_done"`
	Progress    float64 `json:"progress"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	ETASeconds  float64 `json:"eta_seconds"`
	// WorkflowStatus is Temporal's: Running until the migration has ended.
	WorkflowStatus string `json:"workflow_status"`
}

// transferring waits until the migration copies on a connector and returns its view.
func (s *system) transferring(id string) migrationView {
	s.t.Helper()
	var v migrationView
	s.eventually(60*time.Second, id+" is transferring", func() bool {
		s.call("GET", "/migrations/"+id, nil, &v)
		return v.Phase == "transferring" && v.ConnectorID != ""
	})
	return v
}

// slowSite waits until a connector at the site is warm and slows every warm one there
// to 1 MiB/s before work reaches it: a demo disk copies in about a second and a half on
// a medium connector, which a test polling a loaded machine can miss. A connector the
// fleet starts later is medium, so a test also slows the one its migration got.
func (s *system) slowSite(site string) {
	s.t.Helper()
	var warm []string
	s.eventually(60*time.Second, "a warm connector at "+site, func() bool {
		var conns []struct{ ID, Site, State string }
		s.call("GET", "/connectors", nil, &conns)
		warm = warm[:0]
		for _, c := range conns {
			if c.Site == site && c.State == "warm" {
				warm = append(warm, c.ID)
			}
		}
		return len(warm) > 0
	})
	for _, id := range warm {
		s.slowDown(id)
	}
}

// An operator pauses a copy mid-transfer, resumes it, and cancels another one, over
// HTTP; the bytes on disk show each step.
func TestOperatorPausesResumesAndCancelsMigrations(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx := context.Background()
	db := s.connect()
	vms, disks := s.vmsBySize(db, "lon1", 2, true)
	who := map[string]any{"who": "e2e", "why": "operator test"}

	// Pause and resume, on a connector slowed to 1 MiB/s so that the copy is still
	// running when paused.
	s.slowSite("lon1")
	first := "pause-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": first, "vm_id": vms[0]}, nil))
	v := s.transferring(first)
	s.slowDown(v.ConnectorID) // the same one, unless the fleet started another meanwhile
	require.Equal(t, 202, s.call("POST", "/migrations/"+first+"/pause", who, nil))
	s.eventually(30*time.Second, first+" is paused", func() bool {
		s.call("GET", "/migrations/"+first, nil, &v)
		return v.Phase == "paused"
	})
	partial := filepath.Join(s.dataDir, "target", v.Destination+".partial")
	st, err := os.Stat(partial)
	require.NoError(t, err, "the partial copy stays while paused")
	time.Sleep(1500 * time.Millisecond)
	st2, err := os.Stat(partial)
	require.NoError(t, err)
	require.Equal(t, st.Size(), st2.Size(), "nothing is copied while paused")
	require.Equal(t, 202, s.call("POST", "/migrations/"+first+"/resume", who, nil))
	s.eventually(3*time.Minute, first+" finishes", func() bool {
		s.call("GET", "/migrations/"+first, nil, &v)
		return v.Phase == "done"
	})
	require.Equal(t, "succeeded", v.Outcome)
	require.Equal(t, 2, v.Attempts, "the resume was a second attempt")
	require.Equal(t, fileSHA(t, disks[0]), fileSHA(t, filepath.Join(s.dataDir, "target", v.Destination)))
	var p problem
	require.Equal(t, 409, s.call("POST", "/migrations/"+first+"/pause", who, &p), "a finished migration cannot be paused")

	// Cancel mid-copy.
	s.slowSite("lon1")
	second := "cancel-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": second, "vm_id": vms[1]}, nil))
	v = s.transferring(second)
	s.slowDown(v.ConnectorID)
	require.Equal(t, 202, s.call("POST", "/migrations/"+second+"/cancel", who, nil))
	s.eventually(60*time.Second, second+" is cancelled", func() bool {
		s.call("GET", "/migrations/"+second, nil, &v)
		return v.Phase == "done"
	})
	require.Equal(t, "cancelled", v.Outcome)
	for _, f := range []string{v.Destination, v.Destination + ".partial"} {
		_, err := os.Stat(filepath.Join(s.dataDir, "target", f))
		require.True(t, os.IsNotExist(err), "%s is gone", f)
	}
	var outcome string
	require.NoError(t, db.QueryRow(ctx, `SELECT outcome FROM migrations WHERE id = $1`, second).Scan(&outcome))
	require.Equal(t, "cancelled", outcome)
	require.Equal(t, 404, s.call("POST", "/migrations/never/cancel", who, &p))

	// Both are listed by site, SLA tier and state, through their search attributes.
	var tier string
	require.NoError(t, db.QueryRow(ctx, `SELECT sla_tier FROM vms WHERE id = $1`, vms[0]).Scan(&tier))
	var list struct {
		Migrations []listedMigration `json:"migrations"`
	}
	s.eventually(30*time.Second, "GET /migrations lists both, done", func() bool {
		s.call("GET", "/migrations?site=lon1&state=done", nil, &list)
		return len(list.Migrations) == 2
	})
	require.Equal(t, "lon1", list.Migrations[0].Site)
	require.Equal(t, 200, s.call("GET", "/migrations?sla_tier="+tier+"&state=done", nil, &list))
	require.True(t, slices.ContainsFunc(list.Migrations, func(m listedMigration) bool { return m.ID == first }),
		"filtered by the first one's SLA tier: %+v", list.Migrations)
	require.Equal(t, 200, s.call("GET", "/migrations?state=transferring", nil, &list))
	require.Empty(t, list.Migrations, "nothing of this pool is still copying")

	s.replayHistories(map[string]string{"migration-paused-resumed": "migration-" + first, "migration-cancelled": "migration-" + second})
}

// A connector killed mid-copy (SIGKILL): the migration fails over to another connector
// at its site, continues from the partial copy, and the fleet replaces the dead one.
func TestMigrationSurvivesItsConnectorBeingKilled(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	db := s.connect()
	vms, disks := s.vmsBySize(db, "fra1", 1, true)
	vm, disk := vms[0], disks[0]
	s.provision("fra1", 2, "small", "spares")

	s.slowSite("fra1")
	id := "failover-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vm}, nil))
	v := s.transferring(id)
	victim := v.ConnectorID
	require.Equal(t, 200, s.call("POST", "/scale", map[string]any{"action": "resize", "connector_id": victim, "size": "small", "who": "e2e", "why": "slow it down"}, nil))
	s.eventually(30*time.Second, "some bytes are copied", func() bool {
		s.call("GET", "/migrations/"+id, nil, &v)
		return v.BytesDone > 0 && v.BytesPerSec > 0
	})
	require.Positive(t, v.ETASeconds, "a running copy says when it will be done: %+v", v)
	pid := s.connectorPIDs()[victim]
	require.Positive(t, pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	st := s.failedOver(id, victim)
	require.Equal(t, fileSHA(t, disk), fileSHA(t, filepath.Join(s.dataDir, "target", st.Destination)), "not a byte lost or corrupted")
	s.ranOnce(s.dialTemporal(), id, disk)
	s.onlyCopies(id)
	var conns []struct{ ID string }
	s.call("GET", "/connectors", nil, &conns)
	require.False(t, slices.ContainsFunc(conns, func(c struct{ ID string }) bool { return c.ID == victim }), "the dead connector is out of the fleet")
}

// failedOver waits until the migration, whose connector victim was killed, is done,
// and checks that it succeeded on another connector after one failover.
func (s *system) failedOver(id, victim string) migrationView {
	s.t.Helper()
	var st struct {
		migrationView
		Failovers int `json:"failovers"`
	}
	s.eventually(3*time.Minute, id+" finishes on another connector", func() bool {
		s.call("GET", "/migrations/"+id, nil, &st)
		return st.Phase == "done"
	})
	require.Equal(s.t, "succeeded", st.Outcome, "%+v", st)
	require.NotEqual(s.t, victim, st.ConnectorID)
	require.Equal(s.t, 1, st.Failovers)
	return st.migrationView
}

// The worker killed (SIGKILL) mid-copy and started again: the migration goes on where
// it was, with one copy, not two.
func TestMigrationSurvivesTheWorkerBeingKilled(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	db := s.connect()
	vms, disks := s.vmsBySize(db, "ams1", 1, true)
	s.slowSite("ams1")
	id := "worker-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vms[0]}, nil))
	v := s.transferring(id)
	s.slowDown(v.ConnectorID)

	s.kill("worker")
	s.spawn("worker")

	n := s.ranOnce(s.dialTemporal(), id, disks[0])
	require.Equal(t, 1, n.Scheduled["Transfer"], "the copy went on, not again: %+v", n)
	s.onlyCopies(id)
}

// The VM writes to its disk during the bulk copy; the cutover, once approved, copies
// only the changed block under the downtime timer, and the copy matches the source. A
// downtime SLA too tight for any cutover is rolled back with the reason.
func TestCutoverSyncsWhatChangedAndRollsBackWhenTooSlow(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx := context.Background()
	db := s.connect()
	vms, disks := s.vmsBySize(db, "ams1", 2, true)
	who := map[string]any{"who": "e2e", "why": "maintenance window"}

	s.slowSite("ams1")
	id := "cutover-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vms[0], "require_approval": true}, nil))
	v := s.transferring(id)
	s.slowDown(v.ConnectorID)
	s.eventually(30*time.Second, "the copy is under way", func() bool {
		s.call("GET", "/migrations/"+id, nil, &v)
		return v.BytesDone > 256<<10
	})
	// The running VM writes into its first block, which the copy has passed.
	f, err := os.OpenFile(disks[0], os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("the VM wrote this during the bulk copy"), 1000)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s.eventually(3*time.Minute, id+" waits for approval", func() bool {
		s.call("GET", "/migrations/"+id, nil, &v)
		return v.Phase == "awaiting-cutover"
	})
	require.NotEqual(t, fileSHA(t, disks[0]), fileSHA(t, filepath.Join(s.dataDir, "target", v.Destination)), "the bulk copy is behind the VM")
	require.Equal(t, 202, s.call("POST", "/migrations/"+id+"/approve", who, nil))
	var done struct {
		migrationView
		ChangedBlocks   int     `json:"changed_blocks"`
		DowntimeSeconds float64 `json:"downtime_seconds"`
	}
	s.eventually(60*time.Second, id+" cuts over", func() bool {
		s.call("GET", "/migrations/"+id, nil, &done)
		return done.Phase == "done"
	})
	require.Equal(t, "succeeded", done.Outcome, "%+v", done)
	require.Equal(t, 1, done.ChangedBlocks, "only the block the VM wrote")
	require.Positive(t, done.DowntimeSeconds)
	require.Equal(t, fileSHA(t, disks[0]), fileSHA(t, filepath.Join(s.dataDir, "target", done.Destination)))
	var downtime float64
	require.NoError(t, db.QueryRow(ctx, `SELECT downtime_seconds FROM migrations WHERE id = $1`, id).Scan(&downtime))
	require.Positive(t, downtime)

	// After the next bulk copy the VM rewrites 2 MiB: at 1 MiB/s the delta takes 2 s,
	// and this migration's downtime SLA allows 500 ms. Rolled back, the reason said;
	// then cancelled.
	tight := "tight-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": tight, "vm_id": vms[1], "max_downtime": "500ms", "require_approval": true}, nil))
	s.eventually(3*time.Minute, tight+" waits for approval", func() bool {
		s.call("GET", "/migrations/"+tight, nil, &v)
		return v.Phase == "awaiting-cutover"
	})
	s.slowDown(v.ConnectorID)
	f, err = os.OpenFile(disks[1], os.O_RDWR, 0)
	require.NoError(t, err)
	st, err := f.Stat()
	require.NoError(t, err)
	junk := make([]byte, min(st.Size(), 2<<20))
	for i := range junk {
		junk[i] = byte(i*7 + 3)
	}
	_, err = f.WriteAt(junk, 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Equal(t, 202, s.call("POST", "/migrations/"+tight+"/approve", who, nil))
	var rolled struct {
		migrationView
		Rollbacks    int    `json:"rollbacks"`
		CutoverError string `json:"cutover_error"`
	}
	s.eventually(3*time.Minute, tight+" rolls its cutover back", func() bool {
		s.call("GET", "/migrations/"+tight, nil, &rolled)
		return rolled.Rollbacks == 1 && rolled.Phase == "awaiting-cutover"
	})
	require.Contains(t, rolled.CutoverError, "did not finish within the 500ms downtime SLA")
	require.Equal(t, 202, s.call("POST", "/migrations/"+tight+"/cancel", who, nil))
	s.eventually(60*time.Second, tight+" is cancelled", func() bool {
		s.call("GET", "/migrations/"+tight, nil, &rolled)
		return rolled.Phase == "done"
	})
	require.Equal(t, "cancelled", rolled.Outcome)
	_, err = os.Stat(filepath.Join(s.dataDir, "target", rolled.Destination))
	require.True(t, os.IsNotExist(err), "a cancelled migration's copy is removed")
	var p problem
	require.Equal(t, 422, s.call("POST", "/migrations", map[string]any{"vm_id": vms[1], "max_downtime": "1h"}, &p))
	require.Equal(t, "max_downtime", p.Field, "a tier's downtime cannot be loosened")

	// A transfer SLA of 3 s passes while the migration waits for approval: the breach
	// is recorded as an anomaly and escalated, the connector grows a size.
	late := "late-" + s.pool
	small, _ := s.vmsBySize(db, "ams1", 1, false)
	lateVM := small[0]
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": late, "vm_id": lateVM, "max_transfer": "3s", "require_approval": true}, nil))
	s.eventually(60*time.Second, "the breach is recorded", func() bool {
		var n int
		_ = db.QueryRow(ctx, `SELECT count(*) FROM system_events WHERE source_key = $1 AND kind = 'anomaly'`, "sla-breach/"+late).Scan(&n)
		return n == 1
	})
	s.call("GET", "/migrations/"+late, nil, &v)
	var audit struct {
		Audit []struct{ Action, Detail string } `json:"audit"`
	}
	s.eventually(30*time.Second, "the breach is escalated", func() bool {
		s.call("GET", "/overrides", nil, &audit)
		return slices.ContainsFunc(audit.Audit, func(e struct{ Action, Detail string }) bool {
			return e.Action == "escalated" && strings.Contains(e.Detail, v.ConnectorID)
		})
	})
	require.Equal(t, 202, s.call("POST", "/migrations/"+late+"/approve", who, nil))
	s.eventually(60*time.Second, late+" finishes", func() bool {
		s.call("GET", "/migrations/"+late, nil, &v)
		return v.Phase == "done"
	})
	require.Equal(t, "sla_breached", v.Outcome)
	var outcome string
	require.NoError(t, db.QueryRow(ctx, `SELECT outcome FROM migrations WHERE id = $1`, late).Scan(&outcome))
	require.Equal(t, "sla_breached", outcome)

	s.replayHistories(map[string]string{"migration-cutover": "migration-" + id, "migration-rolled-back": "migration-" + tight})
}

// A wave planned through POST /forecast has warm connectors at its site before it
// starts, and its migrations start without waiting for one.
func TestPlannedWaveFindsWarmConnectors(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	db := s.connect()
	vms, _ := s.vmsBySize(db, "lon1", 6, false)
	start := time.Now().Add(40 * time.Second).Truncate(time.Second)
	var answer struct {
		Planned bool `json:"planned"`
	}
	wave := "wave-" + s.pool // unique on a shared dev server
	require.Equal(t, 200, s.call("POST", "/forecast", map[string]any{"id": wave, "vm_ids": vms,
		"earliest_start": start.Format(time.RFC3339), "deadline": start.Add(time.Hour).Format(time.RFC3339), "plan": true}, &answer))
	require.True(t, answer.Planned)

	// 6 migrations side by side, 4 per medium connector: 2 warm connectors before the start.
	var why []string
	s.eventually(35*time.Second, "two warm connectors at lon1 before the wave", func() bool {
		var conns []struct{ Site, State, Reason string }
		s.call("GET", "/connectors", nil, &conns)
		warm := 0
		why = nil
		for _, c := range conns {
			if c.Site == "lon1" && c.State == "warm" {
				warm++
				why = append(why, c.Reason)
			}
		}
		return warm >= 2
	})
	// The forecast may have warmed one before the wave was known; the rest are the wave's.
	require.True(t, slices.ContainsFunc(why, func(r string) bool { return strings.Contains(r, "a planned wave of 6 migration(s)") }),
		"a connector says the wave started it: %q", why)
	require.NotContains(t, why, "", "every connector says why it was started")
	require.True(t, time.Now().Before(start), "warm before the wave starts")
	time.Sleep(time.Until(start))
	for _, vm := range vms {
		require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": wave + "-" + vm, "vm_id": vm}, nil))
	}
	for _, vm := range vms {
		var v struct {
			migrationView
			WaitedSeconds float64 `json:"waited_seconds"`
		}
		s.eventually(60*time.Second, vm+" is assigned", func() bool {
			s.call("GET", "/migrations/"+wave+"-"+vm, nil, &v)
			return v.ConnectorID != ""
		})
		require.Less(t, v.WaitedSeconds, 8.0, "%s waited %.1f s for a connector", vm, v.WaitedSeconds)
	}
	// The wave's history rows are planned work, kept out of the ad-hoc forecast.
	ids := make([]string, len(vms))
	for i, vm := range vms {
		ids[i] = wave + "-" + vm
	}
	var recorded, planned int
	s.eventually(3*time.Minute, "the wave is recorded", func() bool {
		require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE planned) FROM migrations WHERE id = ANY($1)`,
			ids).Scan(&recorded, &planned))
		return recorded == len(ids)
	})
	require.Equal(t, len(ids), planned, "every migration of the wave is recorded as planned")
}

func TestFilesImportOverHTTPThroughAWorkflow(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	db := s.connect()
	ctx := context.Background()
	file := "id,name,site,cpu_cores,ram_bytes,storage_bytes,sla_tier\n" +
		"imp-" + s.pool + "-1,db-1,ams1,4,8589934592,68719476736,gold\n" +
		"imp-" + s.pool + "-2,web-1,fra1,2,4294967296,34359738368,\n"
	var counts struct{ Rows, Inserted, Updated, Unchanged int }
	require.Equal(t, 200, s.send("PUT", "/inventory?tier=bronze", "text/csv", strings.NewReader(file), &counts))
	require.Equal(t, 2, counts.Inserted, "%+v", counts)
	var tier string
	require.NoError(t, db.QueryRow(ctx, `SELECT sla_tier FROM vms WHERE id = $1`, "imp-"+s.pool+"-2").Scan(&tier))
	require.Equal(t, "bronze", tier, "the query's tier fills the blank")
	require.Equal(t, 200, s.send("PUT", "/inventory?tier=bronze", "text/csv", strings.NewReader(file), &counts))
	require.Equal(t, 2, counts.Unchanged, "the same file again changes nothing: %+v", counts)

	var bad struct {
		Status int
		Errors []struct {
			Line   int
			Column string
			Reason string
		}
	}
	badFile := "id,name,site,cpu_cores,ram_bytes,storage_bytes,sla_tier\n" +
		"imp-" + s.pool + "-3,x,ams1,lots,1,1,gold\n" +
		"imp-" + s.pool + "-4,y,ams1,1,lots,1,gold\n"
	require.Equal(t, 422, s.send("PUT", "/inventory", "text/csv", strings.NewReader(badFile), &bad))
	require.Len(t, bad.Errors, 2, "every bad row is listed: %+v", bad)
	require.Equal(t, 2, bad.Errors[0].Line)
	require.Equal(t, "cpu_cores", bad.Errors[0].Column)
	require.Equal(t, 3, bad.Errors[1].Line)
	require.Equal(t, "ram_bytes", bad.Errors[1].Column)
	unknownSite := "id,name,site,cpu_cores,ram_bytes,storage_bytes,sla_tier\n" + "imp-" + s.pool + "-5,z,mars,1,1,1,gold\n"
	require.Equal(t, 422, s.send("PUT", "/inventory", "text/csv", strings.NewReader(unknownSite), &bad))
	require.Len(t, bad.Errors, 1, "%+v", bad)
	require.Equal(t, "site", bad.Errors[0].Column)
	// A repeated ID is found by the worker as it writes, and answered the same way.
	repeated := "id,name,site,cpu_cores,ram_bytes,storage_bytes,sla_tier\n" +
		"imp-" + s.pool + "-6,a,ams1,1,1,1,gold\n" + "imp-" + s.pool + "-6,b,ams1,1,1,1,gold\n"
	require.Equal(t, 422, s.send("PUT", "/inventory", "text/csv", strings.NewReader(repeated), &bad))
	require.Len(t, bad.Errors, 1, "%+v", bad)
	require.Equal(t, 3, bad.Errors[0].Line)
	require.Equal(t, "id", bad.Errors[0].Column)
	require.Contains(t, bad.Errors[0].Reason, "is also on line 2")
	var n int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM vms WHERE id IN ($1, $2)`, "imp-"+s.pool+"-3", "imp-"+s.pool+"-6").Scan(&n))
	require.Zero(t, n, "nothing of a bad file is written")
	require.Equal(t, 415, s.send("PUT", "/inventory", "application/xml", strings.NewReader("<vms/>"), nil))

	// A new site and tier, and history that names them, through the same workflow.
	require.Equal(t, 200, s.send("PUT", "/sites", "text/csv",
		strings.NewReader("id,name,region,uplink_bytes_per_sec,sources\nedge1,Edge,eu-north,1.25e8,/srv/edge1 https://nas.edge1.example/disks\n"), &counts))
	require.Equal(t, 1, counts.Inserted, "%+v", counts)
	var edgeSources []string
	require.NoError(t, db.QueryRow(ctx, `SELECT sources FROM sites WHERE id = 'edge1'`).Scan(&edgeSources))
	require.Equal(t, []string{"/srv/edge1/", "https://nas.edge1.example/disks/"}, edgeSources, "a site's sources, in normal form")
	slas := `[{"name": "tin", "max_transfer_seconds": 7200, "max_downtime_seconds": 900}]`
	require.Equal(t, 200, s.send("PUT", "/slas", "application/json", strings.NewReader(slas), &counts))
	require.Equal(t, 1, counts.Inserted, "%+v", counts)
	var quantile float64
	require.NoError(t, db.QueryRow(ctx, `SELECT plan_quantile FROM sla_tiers WHERE name = 'tin'`).Scan(&quantile))
	require.Equal(t, 0.5, quantile, "the default quantile")
	// Older than every retention window (PMO_RETENTION_EVENTS, 180 days, is the longest),
	// so that the retention run below would delete it if it touched migration history.
	started := time.Now().UTC().AddDate(0, 0, -200).Truncate(time.Hour)
	at := func(d time.Duration) string { return started.Add(d).Format(time.RFC3339) }
	history := "id,vm_id,site,sla_tier,bytes,started_at,ended_at,outcome,planned\n" +
		"hist-imp-1,vm-9001,edge1,tin,3600000," + at(0) + "," + at(time.Hour) + ",succeeded,\n" +
		"hist-imp-2,vm-9002,ams1,gold,0," + at(0) + "," + at(5*time.Minute) + ",failed,true\n"
	require.Equal(t, 200, s.send("POST", "/history", "text/csv", strings.NewReader(history), &counts))
	require.Equal(t, 2, counts.Inserted, "%+v", counts)
	require.Equal(t, 200, s.send("POST", "/history", "text/csv", strings.NewReader(history), &counts))
	require.Equal(t, 2, counts.Unchanged, "the same file again changes nothing: %+v", counts)
	var rate float64
	var connector string
	require.NoError(t, db.QueryRow(ctx, `SELECT avg_bytes_per_sec, connector_id FROM migrations WHERE id = 'hist-imp-1'`).Scan(&rate, &connector))
	require.Equal(t, 1000.0, rate, "the bytes over the hour")
	require.Equal(t, "external", connector)
	badHistory := "id,vm_id,site,sla_tier,bytes,started_at,ended_at,outcome\n" +
		"hist-imp-3,vm-1,ams1,gold,1,2026-11-02T10:00:00Z,2026-11-02T09:00:00Z,succeeded\n" +
		"hist-imp-3,vm-1,ams1,gold,1,2026-11-02T09:00:00Z,2026-11-02T10:00:00Z,exploded\n"
	require.Equal(t, 422, s.send("POST", "/history", "text/csv", strings.NewReader(badHistory), &bad))
	require.Len(t, bad.Errors, 2, "every bad row is listed (the repeated ID once the file reads cleanly): %+v", bad)
	require.Equal(t, []string{"ended_at", "outcome"}, []string{bad.Errors[0].Column, bad.Errors[1].Column})
	require.Equal(t, 422, s.send("POST", "/history", "text/csv", strings.NewReader(strings.Replace(history, "edge1", "mars", 1)), &bad))
	require.Equal(t, "site", bad.Errors[0].Column, "%+v", bad)
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM migrations WHERE id LIKE 'hist-imp-%'`).Scan(&n))
	require.Equal(t, 2, n, "nothing of a bad file is written")

	entries, err := os.ReadDir(filepath.Join(s.dataDir, "uploads"))
	require.NoError(t, err)
	for _, e := range entries {
		require.True(t, strings.HasPrefix(e.Name(), "."), "an imported file is removed once imported: %s", e.Name())
	}

	// An operator's retention run keeps the history that was just imported.
	require.Contains(t, s.run("retention"), "retention done")
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM migrations WHERE id LIKE 'hist-imp-%'`).Scan(&n))
	require.Equal(t, 2, n, "retention keeps the migration history")

	s.replayHistories(map[string]string{
		"import":    s.newestWorkflow("WorkflowType = 'ImportWorkflow' AND ExecutionStatus = 'Completed'"),
		"retention": workflows.RetentionWorkflowID + "-now",
	})
}

// A planned wave runs as a workflow: POST /waves starts it, its migrations are its
// child workflows (the Web UI's API lists them under it), each at the wave's start,
// and GET /waves/{id} follows it to its end.
func TestAPlannedWaveRunsAsAWorkflowOfItsMigrations(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	db := s.connect()
	vms, _ := s.vmsBySize(db, "lon1", 3, false)
	start := time.Now().Add(15 * time.Second).Truncate(time.Second)
	wave := "w" + s.pool
	// Planned in two requests, the second joining the first's wave, as a wave of more
	// than one request's 2,000 VMs is.
	ids := map[string]string{}
	for _, part := range []struct {
		id, wave string
		vms      []string
	}{{wave, "", vms[:2]}, {wave + "-more", wave, vms[2:]}} {
		require.Equal(t, 200, s.call("POST", "/forecast", map[string]any{"id": part.id, "wave": part.wave, "vm_ids": part.vms,
			"earliest_start": start.Format(time.RFC3339), "deadline": start.Add(time.Hour).Format(time.RFC3339), "plan": true}, nil))
		for _, vm := range part.vms {
			ids[vm] = part.id + "-" + vm
		}
	}
	type waveView struct {
		Started, Running, Succeeded, Failed int
		Refused                             []string
		Done                                bool
		WorkflowID                          string `json:"workflow_id"`
		WebUI                               string `json:"web_ui"`
	}
	var v waveView
	require.Equal(t, 202, s.call("POST", "/waves", map[string]any{"id": wave}, &v))
	require.Equal(t, "wave-"+wave, v.WorkflowID)
	require.Contains(t, v.WebUI, "/workflows/wave-"+wave)
	var p problem
	require.Equal(t, 404, s.call("GET", "/waves/nowave", nil, &p))
	require.Equal(t, "id", p.Field)

	// The CLI submits it again, which starts nothing, and follows it to its end.
	operator := s.createKey("wendy", "operator")
	_, errOut, status := s.cli(operator, "wave", "watch", "no wave")
	require.Equal(t, 2, status, errOut)
	out, errOut, status := s.cli(operator, "wave", "submit", "-watch", "-interval", "500ms", wave)
	require.Equal(t, 0, status, errOut)
	require.Contains(t, out, "wave "+wave+" started: ")
	require.Contains(t, out, "wave "+wave+": 3 started, 0 running, 3 succeeded, 0 failed (0 past their SLA), 0 refused")
	require.Equal(t, 200, s.call("GET", "/waves/"+wave, nil, &v))
	require.Equal(t, waveView{Started: 3, Succeeded: 3, Done: true, WorkflowID: v.WorkflowID, WebUI: v.WebUI}, v)
	for _, vm := range vms {
		var m struct {
			migrationView
			StartedAt time.Time `json:"started_at"`
		}
		require.Equal(t, 200, s.call("GET", "/migrations/"+ids[vm], nil, &m))
		require.Equal(t, "succeeded", m.Outcome)
		require.Equal(t, fileSHA(t, filepath.Join(s.dataDir, "target", m.Destination)), m.SHA256, "copied whole")
		require.False(t, m.StartedAt.Before(start), "%s started at %s, before the wave's %s", vm, m.StartedAt, start)
	}
	tc, err := client.Dial(client.Options{HostPort: s.temporal, Namespace: s.namespace})
	require.NoError(t, err)
	defer tc.Close()
	s.eventually(30*time.Second, "the Web UI's API lists the wave's batch, and the batch's migrations", func() bool {
		batches, err := tc.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: "ParentWorkflowId = 'wave-" + wave + "'"})
		if err != nil || len(batches.GetExecutions()) != 1 {
			return false
		}
		migrations, err := tc.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: "ParentWorkflowId = 'wave-" + wave + "-b1'"})
		return err == nil && len(migrations.GetExecutions()) == 3
	})
	s.replayHistories(map[string]string{"wave-tree": "wave-" + wave, "wave-batch": "wave-" + wave + "-b1"})
}

// An operator steers a whole wave: pauses it mid-copy (nothing is copied while
// paused), resumes it (the copies go on and match their sources), reads its report,
// and cancels a second wave mid-copy, which removes its own copies and no others.
func TestAnOperatorPausesResumesAndCancelsAWholeWave(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	db := s.connect()
	vms, disks := s.vmsBySize(db, "lon1", 4, true)
	operator := s.createKey("wanda", "operator")
	plan := func(wave string, vms []string) {
		start := time.Now().Truncate(time.Second)
		require.Equal(t, 200, s.call("POST", "/forecast", map[string]any{"id": wave, "vm_ids": vms,
			"earliest_start": start.Format(time.RFC3339), "deadline": start.Add(time.Hour).Format(time.RFC3339), "plan": true}, nil))
	}
	type waveView struct {
		Started, Running, Succeeded, Failed int
		Paused, Cancelled, Done             bool
		Controls                            []struct{ Action, Who, Why string }
		MaxRunning                          int `json:"max_running"`
	}
	// Both of a wave's copies are running on connectors slowed to 1 MiB/s.
	copying := func(wave string, vms []string) []migrationView {
		var vs []migrationView
		for _, vm := range vms {
			v := s.transferring(wave + "-" + vm)
			s.slowDown(v.ConnectorID)
			vs = append(vs, v)
		}
		return vs
	}

	// One connector at lon1, slowed to 1 MiB/s: the fleet starts no faster one for the
	// waves, so their copies are still running when the test acts on them.
	require.Equal(t, 202, s.call("POST", "/overrides", map[string]any{"kind": "pin", "site": "lon1", "min": 1, "max": 1, "ttl": "1h",
		"who": "e2e", "why": "one slow connector"}, nil))
	s.slowSite("lon1")
	// The pool may run 3 connectors: a wave submitted without max_running runs at most
	// what they can (3 medium connectors' 4 tasks each).
	require.Equal(t, 200, s.call("POST", "/policy", map[string]any{"max_connectors": 3, "who": "e2e", "why": "a small pool"}, nil))
	first := "wp" + s.pool
	plan(first, vms[:2])
	_, errOut, status := s.cli(operator, "wave", "submit", first)
	require.Equal(t, 0, status, errOut)
	vs := copying(first, vms[:2])
	out, errOut, status := s.cli(operator, "wave", "pause", first, "-why", "change freeze", "-who", "wanda")
	require.Equal(t, 0, status, errOut)
	require.Contains(t, out, "pause: sent to wave "+first)
	var partials []int64
	for i, v := range vs {
		s.eventually(30*time.Second, v.ID+" is paused", func() bool {
			s.call("GET", "/migrations/"+v.ID, nil, &vs[i])
			return vs[i].Phase == "paused"
		})
		st, err := os.Stat(filepath.Join(s.dataDir, "target", vs[i].Destination+".partial"))
		require.NoError(t, err, "the partial copy stays while paused")
		partials = append(partials, st.Size())
	}
	var w waveView
	require.Equal(t, 200, s.call("GET", "/waves/"+first, nil, &w))
	require.True(t, w.Paused)
	require.Equal(t, 12, w.MaxRunning, "what the pool's connectors can run at once")
	require.Equal(t, 2, w.Running)
	require.Equal(t, "pause", w.Controls[0].Action)
	require.Equal(t, "wanda", w.Controls[0].Who, "audited with who")
	var p problem
	require.Equal(t, 409, s.call("POST", "/waves/"+first+"/pause", map[string]any{"who": "e2e", "why": "again"}, &p))
	require.Contains(t, p.Detail, "paused already")
	time.Sleep(1500 * time.Millisecond)
	for i, v := range vs {
		st, err := os.Stat(filepath.Join(s.dataDir, "target", v.Destination+".partial"))
		require.NoError(t, err)
		require.Equal(t, partials[i], st.Size(), "nothing is copied while paused")
	}
	require.Equal(t, 200, s.call("POST", "/waves/"+first+"/resume", map[string]any{"who": "e2e", "why": "freeze over"}, &w))
	require.False(t, w.Paused)
	out, errOut, status = s.cli(operator, "wave", "watch", "-interval", "500ms", first)
	require.Equal(t, 0, status, errOut)
	require.Contains(t, out, "2 succeeded, 0 failed")
	for i, v := range vs {
		require.Equal(t, 200, s.call("GET", "/migrations/"+v.ID, nil, &v))
		require.Equal(t, "succeeded", v.Outcome)
		require.Equal(t, 2, v.Attempts, "resumed once, from the partial copy")
		require.Equal(t, fileSHA(t, disks[i]), fileSHA(t, filepath.Join(s.dataDir, "target", v.Destination)))
		st, err := os.Stat(disks[i])
		require.NoError(t, err)
		done := s.transfersDone(v.ID)
		require.Len(t, done, 1, "%s: one attempt completed the copy", v.ID)
		require.Equal(t, partials[i], done[0].ResumedFrom, "%s: resumed where the pause left it", v.ID)
		require.Equal(t, st.Size(), done[0].ResumedFrom+done[0].Copied, "%s: nothing copied twice", v.ID)
	}
	var r contract.WaveReport
	s.eventually(30*time.Second, "the wave's report", func() bool { return s.call("GET", "/waves/"+first+"/report", nil, &r) == 200 })
	require.Equal(t, 2, r.Planned)
	require.Equal(t, contract.WaveOutcomes{Succeeded: 2}, r.Outcomes)
	require.NotEmpty(t, r.Connectors, "the connectors that served it")
	require.Equal(t, []string{"pause", "resume"}, []string{r.Controls[0].Action, r.Controls[1].Action})
	out, errOut, status = s.cli(operator, "wave", "report", first)
	require.Equal(t, 0, status, errOut)
	require.Contains(t, out, "2 planned: 2 succeeded")
	require.Contains(t, out, "pause by wanda: change freeze")
	require.Equal(t, 409, s.call("POST", "/waves/"+first+"/retry", map[string]any{"who": "e2e", "why": "none failed"}, &p))
	require.Contains(t, p.Detail, "no failed migrations")

	second := "wc" + s.pool
	plan(second, vms[2:])
	require.Equal(t, 202, s.call("POST", "/waves", map[string]any{"id": second}, nil))
	cancelled := copying(second, vms[2:])
	require.Equal(t, 200, s.call("POST", "/waves/"+second+"/cancel", map[string]any{"who": "e2e", "why": "wrong VMs"}, &w))
	require.True(t, w.Cancelled)
	s.eventually(60*time.Second, "the second wave ends", func() bool {
		return s.call("GET", "/waves/"+second, nil, &w) == 200 && w.Done
	})
	for _, v := range cancelled {
		require.Equal(t, 200, s.call("GET", "/migrations/"+v.ID, nil, &v))
		require.Equal(t, "cancelled", v.Outcome)
		for _, f := range []string{v.Destination, v.Destination + ".partial"} {
			_, err := os.Stat(filepath.Join(s.dataDir, "target", f))
			require.True(t, os.IsNotExist(err), "%s is gone", f)
		}
	}
	for i, v := range vs {
		require.Equal(t, fileSHA(t, disks[i]), fileSHA(t, filepath.Join(s.dataDir, "target", v.Destination)), "the first wave's copies stay")
	}
	s.eventually(30*time.Second, "the cancelled wave's report", func() bool { return s.call("GET", "/waves/"+second+"/report", nil, &r) == 200 })
	require.True(t, r.Cancelled)
	require.Equal(t, contract.WaveOutcomes{Cancelled: 2}, r.Outcomes)
	var list []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	require.Equal(t, 200, s.call("GET", "/waves", nil, &list))
	ids := map[string]string{}
	for _, l := range list {
		ids[l.ID] = l.Status
	}
	require.Equal(t, "Completed", ids[first])
	require.Equal(t, "Completed", ids[second])
}
