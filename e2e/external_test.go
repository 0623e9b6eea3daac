package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
)

// externalView is what the test reads of a connector in GET /connectors.
type externalView struct {
	ID       string    `json:"id"`
	State    string    `json:"state"`
	External bool      `json:"external"`
	Reason   string    `json:"reason"`
	LastSeen time.Time `json:"last_seen"`
}

// connectorView returns the connector with that ID, and whether the fleet has it.
func (s *system) connectorView(id string) (externalView, bool) {
	s.t.Helper()
	var conns []externalView
	s.call("GET", "/connectors", nil, &conns)
	for _, c := range conns {
		if c.ID == id {
			return c, true
		}
	}
	return externalView{}, false
}

// runFails runs a starter command that must fail and returns its output.
func (s *system) runFails(args ...string) string {
	s.t.Helper()
	out, err := s.starter(args...)
	require.Error(s.t, err, "starter %v should fail: %s", args, out)
	return out
}

// An appliance at a customer site: a connector process that PMO did not start and
// that cannot reach PostgreSQL, registered with the CLI. Its metrics arrive over HTTP,
// it copies a migration's disk, the fleet never stops it, and when its metrics stop it
// is marked unhealthy.
func TestExternalConnectorReportsOverHTTPAndMovesADisk(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx := context.Background()
	db := s.connect()
	// The plan changes nothing from now on, so that the appliance is ams1's connector.
	require.Equal(t, 200, s.call("POST", "/policy", map[string]any{"mode": "forecast-only", "who": "e2e", "why": "the appliance serves ams1"}, nil))

	id := "appliance-" + s.pool // its task queue is unique on a shared dev server
	register := []string{"connector", "register", "-id", id, "-site", "ams1", "-cpu-millis", "2000", "-ram", "1073741824",
		"-bandwidth", "33554432", "-storage", "34359738368", "-max-tasks", "4", "-stale-after", "8s", "-why", "the customer's appliance"}
	require.Contains(t, s.run(register...), "connector "+id+" registered")
	require.Contains(t, s.run(register...), "already registered with these values; nothing changed")
	out := s.runFails(append(register[:len(register):len(register)], "-site", "fra1")...)
	require.Contains(t, out, "deregister it first")
	require.Equal(t, 1, strings.Count(strings.TrimSpace(out), "\n")+1, "one line: %q", out)
	require.Contains(t, s.runFails("connector", "register", "-id", "x1", "-site", "ams1", "-why", "no size"), "-size:")

	// The appliance runs the connector binary with its metrics going to the API; the
	// database it is given does not exist.
	var env []string
	for _, kv := range s.env {
		if !strings.HasPrefix(kv, "DATABASE_URL=") {
			env = append(env, kv)
		}
	}
	// The appliance reaches PMO only through the API, with a connector key of its own,
	// which may post its metrics and nothing else.
	key := s.createKey("appliance", "connector", "-connector", id)
	env = append(env, "DATABASE_URL=postgres://nobody@127.0.0.1:1/none?sslmode=disable", "PMO_API_KEY="+key)
	log, err := os.Create(filepath.Join(s.dataDir, "appliance.log"))
	require.NoError(t, err)
	defer log.Close()
	appliance := exec.Command(filepath.Join(s.bin, "connector"), "-id", id, "-site", "ams1", "-bandwidth", "33554432", "-max-tasks", "4",
		"-metrics-interval", "1s", "-report-every", "2s", "-report-url", s.api, "-target-dir", filepath.Join(s.dataDir, "target"),
		// An appliance reads only where its own site keeps disks, whatever a migration says.
		"-source", filepath.Join(s.dataDir, "disks"))
	appliance.Env, appliance.Stdout, appliance.Stderr = env, log, log
	require.NoError(t, appliance.Start())
	exited := make(chan error, 1)
	go func() { exited <- appliance.Wait() }()
	t.Cleanup(func() {
		_ = appliance.Process.Signal(syscall.SIGTERM)
		if t.Failed() {
			if b, err := os.ReadFile(log.Name()); err == nil {
				t.Logf("--- appliance log (tail) ---\n%s", tail(string(b), 3000))
			}
		}
	})

	// Its metrics arrive over HTTP and make it take work.
	s.eventually(20*time.Second, "the appliance's metrics arrive", func() bool {
		c, ok := s.connectorView(id)
		return ok && c.External && c.State == "warm" && !c.LastSeen.IsZero()
	})
	var samples int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM connector_metrics WHERE connector_id = $1`, id).Scan(&samples))
	require.Positive(t, samples, "stored where PMO's own connectors' metrics are")
	// The web server stored them: none of the posts entered the fleet's history.
	tc, err := client.Dial(client.Options{HostPort: s.temporal, Namespace: s.namespace})
	require.NoError(t, err)
	defer tc.Close()
	n := s.activityCounts(tc, "fleet-"+s.pool)
	require.Zero(t, n.Scheduled["RecordConnectorMetrics"], "%+v", n)
	require.Positive(t, n.Scheduled["Collect"], "the fleet reads them at its ticks: %+v", n)

	// Bad metrics are refused with the field named; unknown connectors are 404.
	var p problem
	now := time.Now().UTC()
	require.Equal(t, 422, s.call("POST", "/connectors/"+id+"/metrics", map[string]any{"at": now, "cpu_percent": -1}, &p))
	require.Equal(t, "cpu_percent", p.Field)
	require.Equal(t, 422, s.call("POST", "/connectors/"+id+"/metrics", []map[string]any{{"at": now}, {"at": now.Add(time.Hour)}}, &p))
	require.Equal(t, "samples[1].at", p.Field)
	require.Equal(t, 404, s.call("POST", "/connectors/nobody/metrics", map[string]any{"at": now}, &p))
	require.Equal(t, "connector_id", p.Field)
	// The appliance's key posts its own metrics and does nothing else.
	sample := strings.NewReader(`{"at": "` + now.Format(time.RFC3339Nano) + `"}`)
	require.Equal(t, 403, s.sendAs(key, "POST", "/connectors/other-appliance/metrics", "application/json", sample, nil))
	require.Equal(t, 403, s.sendAs(key, "GET", "/migrations", "application/json", nil, nil))
	require.Equal(t, 403, s.sendAs(key, "POST", "/connectors/"+id+"/deregister", "application/json", strings.NewReader(`{"who":"x","why":"y"}`), nil))

	// A migration at its site is assigned to it and copies the disk.
	vms, disks := s.vmsBySize(db, "ams1", 1, false)
	mid := "ext-" + s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": mid, "vm_id": vms[0]}, nil))
	var v migrationView
	s.eventually(40*time.Second, "the migration finishes", func() bool {
		s.call("GET", "/migrations/"+mid, nil, &v)
		return v.Phase == "done"
	})
	require.Equal(t, "succeeded", v.Outcome, "%+v", v)
	require.Equal(t, id, v.ConnectorID, "the appliance moved it")
	require.Equal(t, fileSHA(t, disks[0]), v.SHA256)
	require.Equal(t, fileSHA(t, disks[0]), fileSHA(t, filepath.Join(s.dataDir, "target", v.Destination)))

	// The fleet never started or stopped it: no process of PMO's, no stop recorded,
	// and it still runs.
	var external bool
	var pid *int
	var stoppedAt *time.Time
	require.NoError(t, db.QueryRow(ctx, `SELECT external, pid, stopped_at FROM connectors WHERE id = $1`, id).Scan(&external, &pid, &stoppedAt))
	require.True(t, external)
	require.Nil(t, pid)
	require.Nil(t, stoppedAt)
	require.NotContains(t, s.connectorPIDs(), id, "the provisioner never started it")
	require.NoError(t, appliance.Process.Signal(syscall.Signal(0)), "still running")

	// Its metrics stop: it is unhealthy, and says why.
	require.NoError(t, appliance.Process.Signal(syscall.SIGTERM))
	<-exited
	s.eventually(30*time.Second, "the silent appliance is unhealthy", func() bool {
		c, _ := s.connectorView(id)
		return c.State == "unhealthy" && strings.Contains(c.Reason, "no metrics since")
	})

	require.Contains(t, s.run("connector", "deregister", "-id", id, "-why", "contract ended"), "left pool")
	_, ok := s.connectorView(id)
	require.False(t, ok, "deregistered")
	s.replayHistories(map[string]string{"fleet-external": "fleet-" + s.pool})
}
