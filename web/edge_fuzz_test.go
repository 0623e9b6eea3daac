package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// unreachable stands where the Temporal client goes: every call that gets this far
// is recorded and answered as if Temporal were down, so that a test sees what got
// past the edge's validation without a Temporal server. The methods the handlers do
// not call are the nil embedded interface's and panic.
type unreachable struct {
	client.Client
	mu    sync.Mutex
	calls []reached
}

// reached is one call that got past the edge: its method and its arguments.
type reached struct {
	method string
	args   []any
}

func (u *unreachable) record(method string, args ...any) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, reached{method, args})
	return serviceerror.NewUnavailable("no Temporal in this test")
}

func (u *unreachable) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	return nil, u.record("UpdateWorkflow", o.Args...)
}

func (u *unreachable) SignalWorkflow(_ context.Context, _, _, _ string, arg any) error {
	return u.record("SignalWorkflow", arg)
}

func (u *unreachable) ExecuteWorkflow(_ context.Context, _ client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	return nil, u.record("ExecuteWorkflow", args...)
}

func (u *unreachable) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return nil, u.record("DescribeWorkflowExecution", id)
}

func (u *unreachable) QueryWorkflow(_ context.Context, id, _, _ string, _ ...any) (converter.EncodedValue, error) {
	return nil, u.record("QueryWorkflow", id)
}

func (u *unreachable) ListWorkflow(_ context.Context, r *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	return nil, u.record("ListWorkflow", r.GetQuery())
}

// unreachableServer is the API on an unreachable Temporal, its uploads in a temporary
// folder, with a private database for its API keys and audit trail, and the
// Authorization header of an admin, who may call everything.
func unreachableServer(t testing.TB) (*echo.Echo, *unreachable, string) {
	u := &unreachable{}
	st := storetest.New(t)
	addVM(t, st)
	srv := &Server{Temporal: u, Store: st, Pool: "default", Logger: slog.New(slog.DiscardHandler), Uploads: t.TempDir(), RateLimit: unlimited}
	e := echo.New()
	e.Logger.SetOutput(io.Discard)
	srv.Routes(e)
	return e, u, "Bearer " + adminKey(t, st)
}

// addVM imports VM vm-1 at site ams1 in tier gold (4 h to copy, 60 s of downtime),
// so that a migration request for it gets as far as its SLA checks.
func addVM(t testing.TB, st *store.Store) {
	for _, f := range []struct {
		kind imports.Kind
		csv  string
	}{
		{imports.Sites, "id,name,region,uplink_bytes_per_sec,sources\nams1,Amsterdam,eu,1.25e9,/disks\n"},
		{imports.SLAs, "name,max_transfer_seconds,max_downtime_seconds\ngold,14400,60\n"},
		{imports.Inventory, "id,name,site,cpu_cores,ram_bytes,storage_bytes,sla_tier,disk_uri\nvm-1,one,ams1,1,1073741824,1048576,gold,/disks/vm-1.img\n"},
	} {
		file, err := imports.Read(strings.NewReader(f.csv), f.kind, imports.CSV, imports.Defaults{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Import(context.Background(), file.Source(), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// adminKey creates an admin's API key.
func adminKey(t testing.TB, st *store.Store) string {
	id, key, hash, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIKey(context.Background(), id, "fuzz admin", apikey.Admin, hash); err != nil {
		t.Fatal(err)
	}
	return key
}

// jsonRoutes are the endpoints that read a JSON body.
var jsonRoutes = []string{
	"/forecast", "/scale", "/policy", "/simulate", "/overrides", "/migrations",
	"/migrations/m1/cancel", "/migrations/m1/pause", "/migrations/m1/resume", "/migrations/m1/priority",
	"/migrations/m1/approve", "/migrations/a%20b/cancel", "/events", "/events/close", "/events/alertmanager",
	"/connectors", "/connectors/app-1/deregister", "/connectors/app-1/metrics", "/connectors/a%20b/metrics",
}

// checkPastEdge fails unless what reached Temporal is what the workflows accept and
// what Temporal's data converter can write: the edge let nothing bad through.
func checkPastEdge(t *testing.T, calls []reached) {
	t.Helper()
	for _, c := range calls {
		for _, arg := range c.args {
			if _, err := converter.GetDefaultDataConverter().ToPayload(arg); err != nil {
				t.Fatalf("%s got an argument Temporal cannot encode: %v: %+v", c.method, err, arg)
			}
			if err := validArg(arg); err != nil {
				t.Fatalf("%s got an invalid %T past the edge: %v: %+v", c.method, arg, err, arg)
			}
		}
	}
}

// validArg runs the checks that the workflows and activities run on an argument.
func validArg(arg any) error {
	switch a := arg.(type) {
	case workflows.ForecastRequest:
		return a.Validate()
	case workflows.MigrationRequest:
		return a.Validate()
	case workflows.ScaleRequest:
		return a.Validate()
	case workflows.SimulateRequest:
		return a.Validate()
	case workflows.PolicyRequest:
		if err := (workflows.Control{Who: a.Who, Why: a.Why}).Validate(); err != nil {
			return err
		}
		_, err := a.Apply(planning.DefaultPolicy())
		return err
	case planning.Override:
		if err := workflows.ValidateOverride(a); err != nil {
			return err
		}
		return workflows.CheckOverrideText(a)
	case workflows.Control:
		return a.Validate()
	case workflows.PriorityChange:
		return a.Validate()
	case imports.EventBatch:
		for i, e := range a.Events {
			if err := e.Validate(fmt.Sprintf("[%d].", i)); err != nil {
				return err
			}
		}
		for _, c := range a.Close {
			if c.Key == "" {
				return validation.Field("id", "empty")
			}
			if err := validation.Time("at", c.At); err != nil {
				return err
			}
		}
		return nil
	case workflows.RegisterConnectorRequest:
		return a.Validate()
	case workflows.DeregisterConnectorRequest:
		if err := validation.ID("id", a.ID); err != nil {
			return err
		}
		return workflows.CheckWhoWhy(a.Who, a.Why, true)
	case workflows.ConnectorMetricsRequest:
		return a.Validate(time.Now())
	case string: // a workflow ID
		return nil
	}
	return fmt.Errorf("no check for %T", arg)
}

// FuzzJSONBodies sends fuzzed bodies to every JSON endpoint. Whatever the body, the
// server does not panic and does not answer 5xx for it: a body it refuses is a 4xx
// application/problem+json, and a refused body never reaches Temporal (the client
// here records any call and answers 503, which is the only 5xx allowed, and only
// when the body was valid).
func FuzzJSONBodies(f *testing.F) {
	valid := map[string]string{
		"/forecast":                    `{"vm_ids":["vm-1"],"vms":[{"site":"ams1","disk_bytes":1024}],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z","what_if":{"lose_link":["ams1"],"tighten_sla":[{"tier":"gold","max_transfer":"1h"}],"blackout":[{"site":"fra1","from":"2026-11-25T01:00:00Z","to":"2026-11-25T02:00:00Z"}]}}`,
		"/scale":                       `{"action":"provision","site":"ams1","count":2,"size":"small","who":"ann","why":"peak"}`,
		"/policy":                      `{"mode":"forecast-only","min_connectors":1,"max_connectors":4,"scale_in_cooldown":"5m","gate_min_coverage":0.4,"gate_min_scored":12,"who":"ann","why":"x"}`,
		"/simulate":                    `{"policy":{"max_connectors":3},"hours":12,"seed":7}`,
		"/overrides":                   `{"kind":"pin","site":"ams1","min":1,"max":3,"who":"ann","why":"x","ttl":"2h"}`,
		"/migrations":                  `{"id":"m-1","vm_id":"vm-1","priority":5,"source":"/data/vm-1.img","require_approval":true,"cutover_after":"2026-11-25T10:00:00Z","max_downtime":"30s","max_transfer":"2h"}`,
		"/migrations/m1/cancel":        `{"who":"ann","why":"wrong VM"}`,
		"/migrations/m1/priority":      `{"who":"ann","why":"urgent","priority":90}`,
		"/events":                      `[{"id":"chg-1","site":"fra1","kind":"maintenance","severity":"warning","starts":"2026-11-26T01:00:00Z","ends":"2026-11-26T02:00:00Z","description":"switch"}]`,
		"/events/close":                `{"id":"chg-1","at":"2026-11-26T01:30:00Z"}`,
		"/events/alertmanager":         `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"Disk","site":"ams1","severity":"critical"},"fingerprint":"f1","startsAt":"2026-11-25T10:00:00Z"}]}`,
		"/connectors":                  `{"id":"app-1","site":"ams1","cpu_millis":1000,"ram_bytes":1024,"bandwidth_bytes_per_sec":1e6,"storage_bytes":1e9,"max_tasks":2,"stale_after":"2m","who":"ann","why":"x"}`,
		"/connectors/app-1/deregister": `{"who":"ann","why":"x"}`,
		"/connectors/app-1/metrics":    `[{"at":"` + time.Now().UTC().Add(-time.Minute).Format(time.RFC3339) + `","cpu_percent":12.5,"ram_bytes":1024,"active_tasks":1}]`,
	}
	for i, r := range jsonRoutes {
		if b, ok := valid[r]; ok {
			f.Add(uint8(i), []byte(b))
		}
	}
	f.Add(uint8(12), []byte(`{"site":"fra1","kind":"anomaly","starts":"0000-01-01T00:00:00Z"}`))
	f.Add(uint8(5), []byte(`{"vm_id":"vm-1","cutover_after":"9999-12-31T23:59:59Z"}`))
	f.Add(uint8(4), []byte(`{"kind":"pause","who":"ann","why":"x","expires":"2126-01-01T00:00:00Z"}`))
	f.Add(uint8(14), []byte(`{"version":"4","alerts":[{"status":"resolved","labels":{"site":"x"},"fingerprint":"f","startsAt":"0001-01-01T00:00:01Z","endsAt":"9999-12-31T23:59:59Z"}]}`))
	f.Add(uint8(0), []byte(`{"vm_ids":["vm-1"],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z","sla_tier":"\u0000"}`))
	// One server for every input: a fuzz worker runs its inputs one at a time.
	e, u, authorization := unreachableServer(f)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := jsonRoutes[int(route)%len(jsonRoutes)]
		u.calls = nil
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		req.Header.Set(echo.HeaderAuthorization, authorization)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)

		if len(u.calls) > 0 {
			checkPastEdge(t, u.calls)
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("POST %s reached Temporal, which is down, and answered %d: %s", path, rec.Code, rec.Body)
			}
			return
		}
		if path == "/events/alertmanager" && rec.Code == http.StatusOK {
			return // every alert skipped, each with its reason: nothing to record
		}
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("POST %s %q: status %d without reaching Temporal: %s", path, body, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get(echo.HeaderContentType); ct != "application/problem+json" {
			t.Fatalf("POST %s: content type %q", path, ct)
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("POST %s: the answer is not a problem: %v: %s", path, err, rec.Body)
		}
		if p.Status != rec.Code || p.Title == "" || p.Detail == "" || (p.Field != "" && p.Reason == "") {
			t.Fatalf("POST %s: incomplete problem %+v", path, p)
		}
	})
}
