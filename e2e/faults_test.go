package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/testenv"
)

// The fault tests break one real component mid-migration (the web server, the worker,
// the Temporal server, PostgreSQL, the hard way too) and check, for every migration,
// what docs/reliability.md promises: it completes, its copy holds the source's bytes,
// and nothing that could repeat did: one workflow run, one transfer completed and one
// outcome recorded in its history, one copy completed by the connectors (their logs
// say what each attempt wrote), and one file on disk.

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

// activityCounts counts a workflow's activities by type: how many were scheduled,
// completed and timed out, and the highest attempt that started.
type activityCounts struct {
	Scheduled, Completed, TimedOut, LastAttempt map[string]int
}

func (s *system) activityCounts(c client.Client, workflowID string) activityCounts {
	s.t.Helper()
	n := activityCounts{Scheduled: map[string]int{}, Completed: map[string]int{}, TimedOut: map[string]int{}, LastAttempt: map[string]int{}}
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
		if a := ev.GetActivityTaskTimedOutEventAttributes(); a != nil {
			n.TimedOut[types[a.GetScheduledEventId()]]++
		}
	}
	return n
}

// transferLog is what a connector logs when an attempt at a copy ends.
type transferLog struct {
	Msg             string `json:"msg"`
	Migration       string `json:"migration"`
	Bytes           int64  `json:"bytes"`
	Copied          int64  `json:"copied"`
	ResumedFrom     int64  `json:"resumed_from"`
	AlreadyComplete bool   `json:"already_complete"`
}

// transfersDone reads every connector's log for the copies of the migration that
// completed: an attempt that wrote the copy's last bytes, or one that found it
// complete already (a retry after the first's answer was lost).
func (s *system) transfersDone(id string) []transferLog {
	s.t.Helper()
	logs, err := filepath.Glob(filepath.Join(s.dataDir, "logs", "connector-*.log"))
	require.NoError(s.t, err)
	var done []transferLog
	for _, path := range logs {
		b, err := os.ReadFile(path)
		require.NoError(s.t, err)
		for line := range strings.Lines(string(b)) {
			var l transferLog
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "transfer done" && l.Migration == id {
				done = append(done, l)
			}
		}
	}
	return done
}

// ranOnce waits until the migration is done and checks that it succeeded with a copy
// that matches its source; that it ran as one workflow execution that completed one
// transfer and recorded its outcome once; that the connectors completed its copy once,
// the last attempt writing exactly the bytes the ones before had not; and that its
// history row says so. It returns the migration's activity counts.
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
	info, err := os.Stat(source)
	require.NoError(s.t, err)
	size := info.Size()

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

	// A second copy would show as a second attempt that wrote the end of the file.
	var wrote []transferLog
	for _, l := range s.transfersDone(id) {
		if !l.AlreadyComplete {
			wrote = append(wrote, l)
		}
	}
	require.Len(s.t, wrote, 1, "%s: the connectors completed one copy: %+v", id, s.transfersDone(id))
	require.Equal(s.t, size, wrote[0].ResumedFrom+wrote[0].Copied, "%s: the last attempt wrote what the ones before had not", id)

	db := s.connect()
	var outcome string
	var bytes int64
	require.NoError(s.t, db.QueryRow(context.Background(), `SELECT outcome, bytes FROM migrations WHERE id = $1`, id).Scan(&outcome, &bytes))
	require.Equal(s.t, "succeeded", outcome, id)
	require.Equal(s.t, size, bytes, id)
	return n
}

// onlyCopies checks that the target folder holds the completed copies of these
// migrations and nothing else: no copy twice under another name, no partial copy left.
func (s *system) onlyCopies(ids ...string) {
	s.t.Helper()
	var want []string
	for _, id := range ids {
		var v migrationView
		require.Equal(s.t, 200, s.call("GET", "/migrations/"+id, nil, &v))
		want = append(want, v.Destination)
	}
	var have []string
	dir := filepath.Join(s.dataDir, "target")
	require.NoError(s.t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			have = append(have, rel)
		}
		return err
	}))
	slices.Sort(want)
	require.Equal(s.t, want, have, "the copies on disk")
}

// startSlowMigrations starts migrations of the two largest VMs at ams1, their IDs
// named by prefix, and slows their connectors to 1 MiB/s, so that the copies still run
// when the test breaks something. It returns the migrations' IDs, VMs and source disks.
func (s *system) startSlowMigrations(db *pgx.Conn, prefix string) (ids, vms, disks []string) {
	s.t.Helper()
	vms, disks = s.vmsBySize(db, "ams1", 2, true)
	s.slowSite("ams1")
	ids = []string{prefix + "-" + s.pool, prefix + "-2-" + s.pool}
	for i, id := range ids {
		require.Equal(s.t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vms[i]}, nil))
	}
	for _, id := range ids {
		s.slowDown(s.transferring(id).ConnectorID)
	}
	return ids, vms, disks
}

// The web server killed (SIGKILL) mid-migration, with clients' submissions in flight:
// the migration goes on without it, a restarted web server answers for it, and each
// client's retry of its submission starts nothing twice. One submission has been sent
// whole just before the kill, and may or may not have reached Temporal; the other is
// still sending its body, so it cannot have. Temporal, not the dead server, says which
// did, and each retry's answer is checked against that.
func TestMigrationSurvivesTheWebServerBeingKilled(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	c := s.dialTemporal()
	db := s.connect()
	ctx := context.Background()
	vms, disks := s.vmsBySize(db, "lon1", 3, true)
	first, sent, sending := "web-"+s.pool, "web-sent-"+s.pool, "web-sending-"+s.pool
	s.slowSite("lon1")
	require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": first, "vm_id": vms[0]}, nil))
	v := s.transferring(first)
	s.slowDown(v.ConnectorID)

	submit := func(body io.Reader, answered chan<- string) {
		req, _ := http.NewRequest("POST", s.api+"/migrations", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- err.Error()
			return
		}
		resp.Body.Close()
		answered <- resp.Status
	}
	sentAnswer, sendingAnswer := make(chan string, 1), make(chan string, 1)
	half, rest := io.Pipe()
	go submit(half, sendingAnswer)
	_, err := rest.Write([]byte(`{"id": "` + sending + `", `))
	require.NoError(t, err, "the server reads the body's first half")
	body, err := json.Marshal(map[string]any{"id": sent, "vm_id": vms[1]})
	require.NoError(t, err)
	go submit(bytes.NewReader(body), sentAnswer)
	// No condition to wait for: the kill is meant to land while the whole request is
	// handled, which takes about as long (a database read and a call to Temporal).
	time.Sleep(5 * time.Millisecond)
	s.kill("web")
	rest.CloseWithError(errors.New("the client gave up"))
	t.Logf("at the kill: the submission sent got %q, the one sending %q", <-sentAnswer, <-sendingAnswer)

	// Without a web server, the first migration finishes.
	s.eventually(2*time.Minute, first+" completes while the web server is down", func() bool {
		d, err := c.DescribeWorkflowExecution(ctx, "migration-"+first, "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	})
	runs := map[string]string{} // the run each submission started before the kill, if any
	for _, id := range []string{sent, sending} {
		d, err := c.DescribeWorkflowExecution(ctx, "migration-"+id, "")
		var notFound *serviceerror.NotFound
		if err == nil {
			runs[id] = d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
		} else {
			require.ErrorAs(t, err, &notFound)
		}
		t.Logf("%s reached Temporal before the kill: %v", id, runs[id] != "")
	}
	require.Empty(t, runs[sending], "a request whose body never arrived started nothing")

	s.spawn("web")
	s.waitReady()
	for i, id := range []string{sent, sending} {
		var retried, other struct {
			Migration struct {
				WorkflowID string `json:"workflow_id"`
				RunID      string `json:"run_id"`
				Existing   bool   `json:"existing"`
			} `json:"migration"`
		}
		// The retry is the request that started the migration, or will: its answer is
		// the first one, 201 (README: POST /migrations is idempotent).
		require.Equal(t, 201, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vms[i+1]}, &retried), id)
		require.Equal(t, "migration-"+id, retried.Migration.WorkflowID, "the migration's ID names its workflow")
		require.False(t, retried.Migration.Existing)
		if runs[id] != "" {
			require.Equal(t, runs[id], retried.Migration.RunID, "%s: the retry got the run its first try started", id)
		} else {
			d, err := c.DescribeWorkflowExecution(ctx, "migration-"+id, "")
			require.NoError(t, err)
			require.Equal(t, d.GetWorkflowExecutionInfo().GetExecution().GetRunId(), retried.Migration.RunID, "%s: the retry started it", id)
		}
		// Another request under the ID gets the migration that exists: 200.
		require.Equal(t, 200, s.call("POST", "/migrations", map[string]any{"id": id, "vm_id": vms[i+1], "priority": 9}, &other), id)
		require.True(t, other.Migration.Existing)
		require.Equal(t, retried.Migration.RunID, other.Migration.RunID, "%s: one workflow, whatever the retries", id)
	}

	for i, id := range []string{first, sent, sending} {
		s.ranOnce(c, id, disks[i])
	}
	s.onlyCopies(first, sent, sending)
}

// The Temporal server killed (SIGKILL) mid-copy and kept down for longer than the
// transfers' heartbeat timeout, then started again on its SQLite file: the workers,
// connectors and web server reconnect; the server times out the attempts that could
// not heartbeat, and the migrations fail over to other connectors, which continue
// from the partial copies while the first attempts may still be writing them.
func TestMigrationSurvivesATemporalServerOutage(t *testing.T) {
	t.Parallel()
	dev := testenv.StartDevServer(t)
	s := startSystemOn(t, dev.Address, storetest.NewDatabase(t))
	c := s.dialTemporal()
	db := s.connect()
	ids, _, disks := s.startSlowMigrations(db, "temporal")
	s.eventually(30*time.Second, "some bytes are copied", func() bool {
		var v migrationView
		s.call("GET", "/migrations/"+ids[0], nil, &v)
		return v.BytesDone > 0
	})

	dev.Kill()
	time.Sleep(30 * time.Second) // the outage: longer than the 20 s heartbeat timeout
	dev.Start()

	failedOver := 0
	for i, id := range ids {
		n := s.ranOnce(c, id, disks[i])
		if n.TimedOut["Transfer"] > 0 && n.Scheduled["Transfer"] > 1 {
			failedOver++
		}
	}
	require.Positive(t, failedOver, "a transfer timed out in the outage and its migration went on elsewhere")
	s.onlyCopies(ids...)
}

// PostgreSQL stopped mid-copy and started again, by a fast shutdown and, the hard way,
// by an immediate one (no checkpoint: a crash, recovered from the write-ahead log at
// the next start): the copies go on, the migrations that finish during the outage wait
// for the database to record them, and every row committed before the outage is still
// there after it.
func TestMigrationSurvivesPostgreSQLOutages(t *testing.T) {
	t.Parallel()
	for _, outage := range []struct {
		name string
		stop func(*testenv.Postgres)
		for_ time.Duration
	}{
		{"stopped for 30 s", (*testenv.Postgres).Stop, 30 * time.Second},
		{"crashed for 20 s", (*testenv.Postgres).Crash, 20 * time.Second},
	} {
		t.Run(outage.name, func(t *testing.T) {
			t.Parallel()
			pg := testenv.StartPostgres(t)
			s := startSystemOn(t, testenv.TemporalAddress(t), pg.URL)
			c := s.dialTemporal()
			db := s.connect()
			// The database goes as soon as both copies run: at 1 MiB/s they need
			// seconds more (the two largest disks at ams1, about 13 MiB between them),
			// so they end during the outage, and their outcomes wait for the database.
			// (Progress is no guide: a transfer's heartbeat, which carries it, is sent
			// every 16 s.)
			ids, _, disks := s.startSlowMigrations(db, "pg")
			committed := s.committedRows(db)
			outage.stop(pg)
			time.Sleep(outage.for_)
			pg.Start()

			waited := false
			var counts []activityCounts
			for i, id := range ids {
				n := s.ranOnce(c, id, disks[i])
				waited = waited || n.LastAttempt["RecordOutcome"] > 1
				counts = append(counts, n)
			}
			require.True(t, waited, "a migration finished during the outage and its outcome was recorded on a later attempt: %+v", counts)
			s.onlyCopies(ids...)
			s.stillThere(committed)
		})
	}
}

// keptRows are the tables whose rows PMO keeps once written (it may update them;
// retention deletes them after days or weeks), each with its key.
var keptRows = map[string]string{
	"migrations":        "id",
	"connector_metrics": "connector_id, at",
	"forecasts":         "pool, site_id, generated_at, target_hour",
	"plans":             "pool, generated_at",
	"site_plan_hours":   "pool, site_id, hour",
	"api_audit":         "id",
	"override_audit":    "id",
	"connectors":        "id",
	"api_keys":          "id",
}

// committedRows reads the keys of every row of the tables in keptRows.
func (s *system) committedRows(db *pgx.Conn) map[string][]string {
	s.t.Helper()
	out := map[string][]string{}
	for table, key := range keptRows {
		rows, err := db.Query(context.Background(), fmt.Sprintf(`SELECT (%s)::text FROM %s t`, rowKey(key), table))
		require.NoError(s.t, err)
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(s.t, err, table)
		out[table] = keys
	}
	require.NotEmpty(s.t, out["connector_metrics"], "the system has written metrics")
	return out
}

// stillThere checks that every row read by committedRows is still there.
func (s *system) stillThere(committed map[string][]string) {
	s.t.Helper()
	db := s.connect()
	for table, keys := range committed {
		var n int
		require.NoError(s.t, db.QueryRow(context.Background(), fmt.Sprintf(`SELECT count(*) FROM %s t WHERE (%s)::text = ANY($1)`,
			table, rowKey(keptRows[table])), keys).Scan(&n))
		require.Equal(s.t, len(keys), n, "%s: the rows committed before the outage are all there", table)
	}
}

// rowKey is the SQL of a row's key, a record of its key columns.
func rowKey(key string) string { return "ROW(" + key + ")" }
