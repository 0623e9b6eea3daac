package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/testenv"
)

// The fault tests break one real component mid-migration (the web server, the Temporal
// server, PostgreSQL) and check, for every migration, what docs/reliability.md
// promises: it completes, its copy holds the source's bytes, it ran once, and the
// history holds one row for it.

// kill ends one of the system's processes with SIGKILL, as a crash would.
func (s *system) kill(name string) {
	s.t.Helper()
	for i, p := range s.procs {
		if filepath.Base(p.Path) == name {
			require.NoError(s.t, p.Process.Signal(syscall.SIGKILL))
			_ = p.Wait()
			s.procs = append(s.procs[:i], s.procs[i+1:]...)
			return
		}
	}
	s.t.Fatalf("no %s process to kill", name)
}

// temporalClient is a client of the system's Temporal server, closed when the test ends.
func (s *system) temporalClient() client.Client {
	s.t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.temporal})
	require.NoError(s.t, err)
	s.t.Cleanup(c.Close)
	return c
}

// activityCounts counts a workflow's activities by type: how many were scheduled and
// completed, and the highest attempt that started.
type activityCounts struct {
	Scheduled, Completed, LastAttempt map[string]int
}

func (s *system) activityCounts(c client.Client, workflowID string) activityCounts {
	s.t.Helper()
	n := activityCounts{Scheduled: map[string]int{}, Completed: map[string]int{}, LastAttempt: map[string]int{}}
	types := map[int64]string{}
	it := c.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(s.t, err)
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			types[ev.GetEventId()] = a.GetActivityType().GetName()
			n.Scheduled[a.GetActivityType().GetName()]++
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			name := types[a.GetScheduledEventId()]
			n.LastAttempt[name] = max(n.LastAttempt[name], int(a.GetAttempt()))
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			n.Completed[types[a.GetScheduledEventId()]]++
		}
	}
	return n
}

// ranOnce waits until the migration is done and checks that it succeeded with a copy
// that matches its source, ran as one workflow execution that completed one transfer
// and recorded its outcome once, and has one row in the history. It returns the
// migration's activity counts.
func (s *system) ranOnce(c client.Client, id, source string) activityCounts {
	s.t.Helper()
	var v migrationView
	s.eventually(3*time.Minute, id+" finishes", func() bool {
		s.call("GET", "/migrations/"+id, nil, &v)
		return v.Phase == "done"
	})
	require.Equal(s.t, "succeeded", v.Outcome, "%s: %+v", id, v)
	sum := fileSHA(s.t, source)
	require.Equal(s.t, sum, v.SHA256, id)
	require.Equal(s.t, sum, fileSHA(s.t, filepath.Join(s.dataDir, "target", v.Destination)), "%s: the copy holds the source's bytes", id)

	wid := "migration-" + id
	var runs []string
	s.eventually(30*time.Second, wid+" is listed as completed", func() bool {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", wid)})
		if err != nil || len(resp.GetExecutions()) == 0 {
			return false
		}
		runs = runs[:0]
		for _, e := range resp.GetExecutions() {
			runs = append(runs, e.GetExecution().GetRunId()+" "+e.GetStatus().String())
		}
		return resp.GetExecutions()[0].GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})
	require.Len(s.t, runs, 1, "%s ran as one workflow execution: %v", id, runs)
	n := s.activityCounts(c, wid)
	require.Equal(s.t, 1, n.Completed["Transfer"], "%s: one transfer completed: %+v", id, n)
	require.Equal(s.t, 1, n.Scheduled["RecordOutcome"], "%s: %+v", id, n)
	require.Equal(s.t, 1, n.Completed["RecordOutcome"], "%s: %+v", id, n)

	db := s.connect()
	var rows int
	var outcome string
	require.NoError(s.t, db.QueryRow(context.Background(), `SELECT count(*), min(outcome) FROM migrations WHERE id = $1`, id).Scan(&rows, &outcome))
	require.Equal(s.t, 1, rows, "%s: one history row", id)
	require.Equal(s.t, "succeeded", outcome, id)
	return n
}

// startSlowMigrations starts migrations of the two largest VMs at ams1, their IDs
// named by prefix, and slows their connectors to 1 MiB/s, so that the copies still run
// when the test breaks something. It returns the migrations' IDs, VMs and source disks.
func (s *system) startSlowMigrations(db *pgx.Conn, prefix string) (ids, vms, disks []string) {
	s.t.Helper()
	vms, disks = s.vmsBySize(db, "ams1", 2, true)
	ids = []string{prefix + "-" + s.pool, prefix + "-2-" + s.pool}
	for i, id := range ids {
		require.Equal(s.t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vms[i]}, nil))
	}
	for _, id := range ids {
		s.slowDown(s.transferring(id).ConnectorID)
	}
	return ids, vms, disks
}

// The web server killed (SIGKILL) mid-migration, with a client's submission in flight:
// the migration goes on without it, a restarted web server answers for it, and the
// client's retry of its submission starts nothing twice.
func TestMigrationSurvivesTheWebServerBeingKilled(t *testing.T) {
	s := startSystem(t)
	c := s.temporalClient()
	db := s.connect()
	vms, disks := s.vmsBySize(db, "lon1", 2, true)
	first, second := "web-"+s.pool, "web-retry-"+s.pool
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": first, "vm_id": vms[0]}, nil))
	v := s.transferring(first)
	s.slowDown(v.ConnectorID)

	// The client submits the second migration as the web server dies: it may or may not
	// get an answer, so it retries once the server is back.
	body, err := json.Marshal(map[string]any{"id": second, "vm_id": vms[1]})
	require.NoError(t, err)
	answered := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("POST", s.api+"/migrations", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- err.Error()
			return
		}
		resp.Body.Close()
		answered <- resp.Status
	}()
	time.Sleep(20 * time.Millisecond)
	s.kill("web")
	t.Logf("the submission in flight at the kill: %s", <-answered)

	// Without a web server, the first migration finishes.
	s.eventually(2*time.Minute, first+" completes while the web server is down", func() bool {
		d, err := c.DescribeWorkflowExecution(context.Background(), "migration-"+first, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})

	s.spawn("web")
	s.waitReady()
	var retried struct {
		Migration struct {
			WorkflowID string `json:"workflow_id"`
			RunID      string `json:"run_id"`
		} `json:"migration"`
	}
	code := s.call("POST", "/migrations", map[string]any{"id": second, "vm_id": vms[1]}, &retried)
	require.Contains(t, []int{200, 201}, code, "the retry is answered")
	require.Equal(t, "migration-"+second, retried.Migration.WorkflowID, "the migration's ID names its workflow")
	var again struct {
		Migration struct {
			RunID string `json:"run_id"`
		} `json:"migration"`
	}
	require.Contains(t, []int{200, 201}, s.call("POST", "/migrations", map[string]any{"id": second, "vm_id": vms[1]}, &again))
	require.Equal(t, retried.Migration.RunID, again.Migration.RunID, "one workflow, whatever the retries")

	s.ranOnce(c, first, disks[0])
	s.ranOnce(c, second, disks[1])
}

// The Temporal server killed (SIGKILL) mid-copy and started again on its SQLite file:
// the workers, connectors and web server reconnect, and the migrations complete from
// where their workflows were.
func TestMigrationSurvivesATemporalServerRestart(t *testing.T) {
	dev := testenv.StartDevServer(t)
	s := startSystemOn(t, dev.Address, storetest.NewDatabase(t))
	c := s.temporalClient()
	db := s.connect()
	ids, _, disks := s.startSlowMigrations(db, "temporal")
	s.eventually(30*time.Second, "some bytes are copied", func() bool {
		var v migrationView
		s.call("GET", "/migrations/"+ids[0], nil, &v)
		return v.BytesDone > 0
	})

	dev.Kill()
	time.Sleep(3 * time.Second) // the copies go on; their heartbeats find no server
	dev.Start()

	for i, id := range ids {
		s.ranOnce(c, id, disks[i])
	}
}

// PostgreSQL stopped for 30 s mid-copy and started again: the copies go on, the
// migrations that finish during the outage wait for the database to record them, and
// every history row is written once.
func TestMigrationSurvivesPostgreSQLStoppedFor30Seconds(t *testing.T) {
	pg := testenv.StartPostgres(t)
	s := startSystemOn(t, testenv.TemporalAddress(t), pg.URL)
	c := s.temporalClient()
	db := s.connect()
	ids, vms, disks := s.startSlowMigrations(db, "pg")
	var total int64
	require.NoError(t, db.QueryRow(context.Background(), `SELECT sum(disk_bytes) FROM vms WHERE id = ANY($1)`, vms).Scan(&total))
	// Stop the database when at most 8 MiB are left to copy, at 1 MiB/s per connector:
	// the copies end during the outage, and their outcomes wait for the database.
	s.eventually(60*time.Second, "the copies are well under way", func() bool {
		var done int64
		for _, id := range ids {
			var v migrationView
			s.call("GET", "/migrations/"+id, nil, &v)
			done += v.BytesDone
		}
		return total-done <= 8<<20
	})
	pg.Stop()
	time.Sleep(30 * time.Second)
	pg.Start()

	waited := false
	for i, id := range ids {
		n := s.ranOnce(c, id, disks[i])
		waited = waited || n.LastAttempt["RecordOutcome"] > 1
	}
	require.True(t, waited, "a migration finished during the outage and its outcome was recorded on a later attempt")
}
