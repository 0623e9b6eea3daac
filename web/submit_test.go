package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/converter"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/workflows"
)

// POST /migrations starts the migration workflow itself, against the real dev server;
// no worker polls, so what starts stays as it was started. The e2e tests run the
// migration and its retries to the end.
func TestSubmittingAMigrationStartsItsWorkflowOrNothing(t *testing.T) {
	st := storetest.New(t)
	addVM(t, st)
	ctx := context.Background()
	tc, namespace := devServer(t)
	// The VM's site is in its own pool, not the server's: a migration goes to the
	// fleet of its VM's pool.
	pool := fmt.Sprintf("submit%d", time.Now().UnixNano()%1_000_000_000)
	_, err := st.Pool.Exec(ctx, `UPDATE sites SET pool = $1`, pool)
	require.NoError(t, err)
	e := echo.New()
	(&Server{Temporal: tc, Store: st, Pool: "another-pool", Namespace: namespace, Logger: slog.New(slog.DiscardHandler),
		RateLimit: unlimited}).Routes(e)
	_, key := newKey(t, st, apikey.Operator)
	submit := func(body string) (int, Problem, map[string]json.RawMessage) {
		rec := serve(e, "Bearer "+key, "", "POST", "/migrations", body)
		var p Problem
		var ok map[string]json.RawMessage
		if rec.Code >= 400 {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
		} else {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ok))
		}
		return rec.Code, p, ok
	}
	notStarted := func(id string) {
		t.Helper()
		_, err := tc.DescribeWorkflowExecution(ctx, workflows.MigrationWorkflowID(id), "")
		var nf *serviceerror.NotFound
		require.ErrorAs(t, err, &nf, "migration %s must not have started", id)
	}

	// No fleet runs for the pool: nothing would hand the migration a connector.
	id := pool + "-a"
	code, p, _ := submit(`{"id":"` + id + `","vm_id":"vm-1"}`)
	require.Equal(t, 503, code)
	require.Contains(t, p.Detail, "starter fleet start -pool "+pool)
	notStarted(id)

	idleFleet(t, tc, pool)

	// Requests the inventory or the tier refuse start nothing.
	code, p, _ = submit(`{"id":"` + id + `","vm_id":"vm-404"}`)
	require.Equal(t, 422, code)
	require.Equal(t, "vm_id", p.Field)
	code, p, _ = submit(`{"id":"` + id + `","vm_id":"vm-1","max_transfer":"5h"}`)
	require.Equal(t, 422, code)
	require.Equal(t, "max_transfer", p.Field)
	require.Contains(t, p.Reason, "gold tier's 4h0m0s")
	// A source outside the site's sources is refused the same way, whether it exists
	// or not, and so is an inventory disk_uri outside them.
	for _, source := range []string{"/etc/passwd", "/etc/no-such-file", "/disks/../etc/passwd", "http://169.254.169.254/latest/meta-data/"} {
		code, p, _ = submit(`{"id":"` + id + `","vm_id":"vm-1","source":"` + source + `"}`)
		require.Equal(t, 422, code, source)
		require.Equal(t, "source", p.Field, source)
		require.Contains(t, p.Reason, "is not under the allowed sources (/disks/)", source)
	}
	_, err = st.Pool.Exec(ctx, `UPDATE vms SET disk_uri = '/srv/elsewhere/vm-1.img' WHERE id = 'vm-1'`)
	require.NoError(t, err)
	code, p, _ = submit(`{"id":"` + id + `","vm_id":"vm-1"}`)
	require.Equal(t, 422, code)
	require.Equal(t, "vm_id", p.Field)
	require.Contains(t, p.Reason, "add its folder to site ams1's sources")
	_, err = st.Pool.Exec(ctx, `UPDATE vms SET disk_uri = '/disks/vm-1.img' WHERE id = 'vm-1'`)
	require.NoError(t, err)
	notStarted(id)

	// A good one starts the migration, with the tier's bounds tightened as asked.
	code, _, ok := submit(`{"id":"` + id + `","vm_id":"vm-1","max_transfer":"1h","priority":7}`)
	require.Equal(t, 201, code)
	var started workflows.MigrationStarted
	require.NoError(t, json.Unmarshal(ok["migration"], &started))
	require.Equal(t, workflows.MigrationWorkflowID(id), started.WorkflowID)
	require.NotEmpty(t, started.RunID)
	require.Equal(t, "ams1", started.Site)
	require.Equal(t, "gold", started.SLATier)
	require.WithinDuration(t, time.Now().Add(time.Hour), started.Deadline, 10*time.Second)
	desc, err := tc.DescribeWorkflowExecution(ctx, started.WorkflowID, "")
	require.NoError(t, err)
	info := desc.GetWorkflowExecutionInfo()
	require.Equal(t, started.RunID, info.GetExecution().GetRunId())
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_RUNNING, info.GetStatus())
	require.Equal(t, "MigrationWorkflow", info.GetType().GetName())
	var vm, request string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(info.GetMemo().GetFields()["vm"], &vm))
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(info.GetMemo().GetFields()[workflows.MemoRequest], &request))
	require.Equal(t, "vm-1", vm)
	require.Len(t, request, 32, "a digest of the request")
	require.Contains(t, info.GetSearchAttributes().GetIndexedFields(), workflows.SearchPool.GetName())

	// Its input is what the fleet would have given it.
	hist := tc.GetWorkflowHistory(ctx, started.WorkflowID, started.RunID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	ev, err := hist.Next()
	require.NoError(t, err)
	var in workflows.MigrationInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in))
	require.Equal(t, workflows.MigrationInput{ID: id, Pool: pool, VMID: "vm-1", Site: "ams1", Source: "/disks/vm-1.img",
		Sources: []string{"/disks/"}, Destination: "vm-1/" + id + ".img",
		Bytes: 1 << 20, SLATier: "gold", MaxTransfer: time.Hour, MaxDowntime: time.Minute, Priority: 7}, in)

	// A client's retry gets the first answer, and another request under the ID the
	// migration as it is, both from what Temporal holds: no worker runs the migration
	// here, as none may have reached it yet when a retry comes.
	code, _, ok = submit(`{"id":"` + id + `","vm_id":"vm-1","max_transfer":"1h","priority":7}`)
	require.Equal(t, 201, code, "a retry")
	var retried workflows.MigrationStarted
	require.NoError(t, json.Unmarshal(ok["migration"], &retried))
	require.WithinDuration(t, started.Deadline, retried.Deadline, time.Second)
	retried.Deadline = started.Deadline
	require.Equal(t, started, retried)
	code, _, ok = submit(`{"id":"` + id + `","vm_id":"vm-1"}`)
	require.Equal(t, 200, code, "another request")
	var existing workflows.MigrationStarted
	require.NoError(t, json.Unmarshal(ok["migration"], &existing))
	require.True(t, existing.Existing)
	require.Equal(t, started.RunID, existing.RunID)

	// Once in the history, a retry still gets the run Temporal holds...
	_, err = st.Pool.Exec(ctx, `INSERT INTO migrations (id, vm_id, site_id, connector_id, sla_tier, bytes, started_at, ended_at,
		avg_bytes_per_sec, outcome, recorded_by) VALUES ($1, 'vm-1', 'ams1', 'c1', 'gold', 1, now(), now(), 1, 'succeeded', 'pmo')`, id)
	require.NoError(t, err)
	code, _, ok = submit(`{"id":"` + id + `","vm_id":"vm-1","max_transfer":"1h","priority":7}`)
	require.Equal(t, 201, code, "a retry of a recorded migration")
	require.NoError(t, json.Unmarshal(ok["migration"], &retried))
	require.Equal(t, started.RunID, retried.RunID)
	// ...but an ID whose workflow Temporal has forgotten (its retention over; here one
	// it never had) is not used again: the new outcome could not be recorded under it.
	gone := pool + "-gone"
	_, err = st.Pool.Exec(ctx, `INSERT INTO migrations (id, vm_id, site_id, connector_id, sla_tier, bytes, started_at, ended_at,
		avg_bytes_per_sec, outcome, recorded_by) VALUES ($1, 'vm-1', 'ams1', 'c1', 'gold', 1, now(), now(), 1, 'failed', 'pmo')`, gone)
	require.NoError(t, err)
	code, p, _ = submit(`{"id":"` + gone + `","vm_id":"vm-1"}`)
	require.Equal(t, 409, code)
	require.Equal(t, "id", p.Field)
	require.Contains(t, p.Reason, "is in the history (failed, ended ")
	notStarted(gone)

	// A VM has one migration at a time: another one is refused while the first runs,
	// and starts once it has ended.
	second := pool + "-b"
	code, p, _ = submit(`{"id":"` + second + `","vm_id":"vm-1"}`)
	require.Equal(t, 409, code)
	require.Equal(t, "vm_id", p.Field)
	require.Contains(t, p.Reason, "vm-1 is being migrated by migration "+id+" (running)")
	notStarted(second)
	require.NoError(t, tc.TerminateWorkflow(ctx, workflows.MigrationWorkflowID(id), "", "test: the first migration ends"))
	code, _, ok = submit(`{"id":"` + second + `","vm_id":"vm-1"}`)
	require.Equal(t, 201, code)
	require.NoError(t, json.Unmarshal(ok["migration"], &started))
	require.NoError(t, tc.TerminateWorkflow(ctx, started.WorkflowID, "", "test: the second migration ends"))

	// A request without an ID but with an Idempotency-Key names the same migration
	// when it is sent again: the retry gets the first answer, not a second migration.
	withKey := func(idempotencyKey string) (int, workflows.MigrationStarted, Problem) {
		t.Helper()
		req := httptest.NewRequest("POST", "/migrations", strings.NewReader(`{"vm_id":"vm-1"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Idempotency-Key", idempotencyKey)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		var answer struct{ Migration workflows.MigrationStarted }
		var p Problem
		if rec.Code < 300 {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &answer))
		} else {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
		}
		return rec.Code, answer.Migration, p
	}
	code, first, _ := withKey("order-42")
	require.Equal(t, 201, code)
	code, again, _ := withKey("order-42")
	require.Equal(t, 201, code, "a retry")
	require.Equal(t, first.ID, again.ID)
	require.Equal(t, first.RunID, again.RunID)
	code, _, p = withKey("order-43")
	require.Equal(t, 409, code, "another request for the VM while the first runs")
	require.Contains(t, p.Reason, "by migration "+first.ID)
	code, _, p = withKey(strings.Repeat("k", 256))
	require.Equal(t, 422, code)
	require.Equal(t, "Idempotency-Key", p.Field)
}
