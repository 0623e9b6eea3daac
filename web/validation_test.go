package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/store/storetest"
)

// edgeServer is a server with no Temporal client at all, so that reaching Temporal
// would panic, and the key of an admin, who may call everything.
func edgeServer(t *testing.T) (*echo.Echo, string) {
	t.Helper()
	st := storetest.New(t)
	e := echo.New()
	(&Server{Pool: "default", Store: st, Logger: slog.New(slog.DiscardHandler), RateLimit: unlimited}).Routes(e)
	_, key := newKey(t, st, apikey.Admin)
	return e, key
}

// These requests are refused at the edge, before any workflow is touched.
func TestBadRequestsAreProblemsNamingTheField(t *testing.T) {
	now := time.Now().UTC()
	recent := now.Add(-time.Minute).Format(time.RFC3339)
	e, key := edgeServer(t)
	cases := []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"unknown field", "POST", "/migrations", `{"vm_id":"vm-1","colour":"red"}`, 400, "colour"},
		{"wrong type", "POST", "/migrations", `{"vm_id":"vm-1","priority":"high"}`, 400, "priority"},
		{"priority out of range", "POST", "/migrations", `{"vm_id":"vm-1","priority":1000}`, 422, "priority"},
		{"missing vm", "POST", "/migrations", `{}`, 422, "vm_id"},
		{"unsafe id", "POST", "/migrations", `{"id":"../etc","vm_id":"vm-1"}`, 422, "id"},
		{"relative source", "POST", "/migrations", `{"vm_id":"vm-1","source":"disk.img"}`, 422, "source"},
		{"empty body", "POST", "/migrations", ``, 400, ""},
		{"malformed", "POST", "/migrations", `{"vm_id":`, 400, ""},
		{"two values", "POST", "/migrations", `{"vm_id":"a"}{"vm_id":"b"}`, 400, ""},
		{"scale action", "POST", "/scale", `{"action":"explode","who":"ann","why":"test"}`, 422, "action"},
		{"scale count", "POST", "/scale", `{"action":"provision","site":"ams1","count":0,"who":"ann","why":"test"}`, 422, "count"},
		{"scale size", "POST", "/scale", `{"action":"resize","connector_id":"c1","size":"huge","who":"ann","why":"test"}`, 422, "size"},
		{"scale who", "POST", "/scale", `{"action":"drain","connector_id":"c1","why":"test"}`, 422, "who"},
		{"forecast time", "POST", "/forecast", `{"vm_ids":["vm-1"],"earliest_start":"tomorrow","deadline":"2026-11-26T00:00:00Z"}`, 422, "earliest_start"},
		{"forecast order", "POST", "/forecast", `{"vm_ids":["vm-1"],"earliest_start":"2026-11-26T00:00:00Z","deadline":"2026-11-25T00:00:00Z"}`, 422, "deadline"},
		{"forecast nothing", "POST", "/forecast", `{"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z"}`, 422, "vm_ids"},
		{"forecast spec", "POST", "/forecast", `{"vms":[{"site":"ams1","disk_bytes":-1}],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z"}`, 422, "vms[0].disk_bytes"},
		{"override expiry", "POST", "/overrides", `{"kind":"pause","who":"ann","why":"freeze"}`, 422, "expires"},
		{"override ttl", "POST", "/overrides", `{"kind":"pause","who":"ann","why":"freeze","ttl":"soon"}`, 422, "ttl"},
		{"override pin", "POST", "/overrides", `{"kind":"pin","site":"ams1","min":3,"max":1,"who":"ann","why":"x","ttl":"1h"}`, 422, "max"},
		{"override kind", "POST", "/overrides", `{"kind":"reboot","who":"ann","why":"x","ttl":"1h"}`, 422, "kind"},
		{"cancel who", "POST", "/migrations/m1/cancel", `{"why":"wrong VM"}`, 422, "who"},
		{"approve why", "POST", "/migrations/m1/approve", `{"who":"ann"}`, 422, "why"},
		{"max downtime", "POST", "/migrations", `{"vm_id":"vm-1","max_downtime":"soon"}`, 422, "max_downtime"},
		{"pause why", "POST", "/migrations/m1/pause", `{"who":"ann"}`, 422, "why"},
		{"resume unknown field", "POST", "/migrations/m1/resume", `{"who":"ann","why":"x","when":"now"}`, 400, "when"},
		{"priority range", "POST", "/migrations/m1/priority", `{"who":"ann","why":"x","priority":101}`, 422, "priority"},
		{"list state", "GET", "/migrations?state=asleep", ``, 422, "state"},
		{"list site", "GET", "/migrations?site=ams1'%20OR%20'1", ``, 422, "site"},
		{"list limit", "GET", "/migrations?limit=0", ``, 422, "limit"},
		{"audit limit", "GET", "/audit?limit=5000", ``, 422, "limit"},
		{"timeline hours", "GET", "/sites/ams1/timeline?hours=169", ``, 422, "hours"},
		{"timeline site", "GET", "/sites/a%20b/timeline", ``, 422, "site"},
		{"list page", "GET", "/migrations?page=***", ``, 422, "page"},
		{"policy who", "POST", "/policy", `{"mode":"active","why":"x"}`, 422, "who"},
		{"policy type", "POST", "/policy", `{"min_connectors":"two","who":"ann","why":"x"}`, 400, "min_connectors"},
		{"wave without plan", "POST", "/forecast", fmt.Sprintf(`{"vm_ids":["vm-1"],"earliest_start":%q,"deadline":%q,"wave":"w1"}`,
			now.Add(time.Hour).Format(time.RFC3339), now.Add(2*time.Hour).Format(time.RFC3339)), 422, "wave"},
		{"wave max running", "POST", "/waves", `{"id":"w1","max_running":-1}`, 422, "max_running"},
		{"wave action why", "POST", "/waves/w1/pause", `{"who":"ana"}`, 422, "why"},
		{"what-if and plan", "POST", "/forecast", `{"vm_ids":["vm-1"],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z","plan":true,"what_if":{"lose_link":["ams1"]}}`, 422, "plan"},
		{"what-if sla", "POST", "/forecast", `{"vm_ids":["vm-1"],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z","what_if":{"tighten_sla":[{"tier":"gold","max_transfer":"fast"}]}}`, 422, "what_if.tighten_sla[0].max_transfer"},
		{"what-if blackout", "POST", "/forecast", `{"vm_ids":["vm-1"],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z","what_if":{"blackout":[{"site":"fra1","from":"2026-11-25T02:00:00Z","to":"2026-11-25T01:00:00Z"}]}}`, 422, "what_if.blackout[0].to"},
		{"simulate no hours", "POST", "/simulate", `{"hours":0}`, 422, "hours"},
		{"simulate too many hours", "POST", "/simulate", `{"hours":500}`, 422, "hours"},
		{"simulate hours type", "POST", "/simulate", `{"hours":"a day"}`, 400, "hours"},
		{"simulate cooldown", "POST", "/simulate", `{"policy":{"scale_in_cooldown":"soon"}}`, 422, "policy.scale_in_cooldown"},
		{"simulate bounds", "POST", "/simulate", `{"policy":{"min_connectors":3,"max_connectors":1}}`, 422, "policy.max_connectors"},
		{"simulate mode", "POST", "/simulate", `{"policy":{"mode":"yolo"}}`, 422, "policy.mode"},
		{"simulate unknown field", "POST", "/simulate", `{"hours":24,"speed":"fast"}`, 400, "speed"},
		{"simulate unknown policy field", "POST", "/simulate", `{"policy":{"maximum":3}}`, 400, "maximum"},
		{"simulate seed", "POST", "/simulate", `{"seed":-1}`, 400, "seed"},
		{"event ends before starts", "POST", "/events", `{"site":"fra1","kind":"maintenance","starts":"2026-11-26T02:00:00Z","ends":"2026-11-26T01:00:00Z"}`, 422, "ends"},
		{"event kind", "POST", "/events", `{"site":"fra1","kind":"outage","starts":"2026-11-26T02:00:00Z"}`, 422, "kind"},
		{"event severity", "POST", "/events", `{"site":"fra1","kind":"anomaly","severity":"dire","starts":"2026-11-26T02:00:00Z"}`, 422, "severity"},
		{"open maintenance", "POST", "/events", `{"site":"fra1","kind":"maintenance","starts":"2026-11-26T02:00:00Z"}`, 422, "ends"},
		{"event start", "POST", "/events", `{"site":"fra1","kind":"anomaly","starts":"now"}`, 422, "starts"},
		{"event site", "POST", "/events", `{"kind":"anomaly","starts":"2026-11-26T02:00:00Z"}`, 422, "site"},
		{"event unknown field", "POST", "/events", `{"site":"fra1","kind":"anomaly","starts":"2026-11-26T02:00:00Z","colour":"red"}`, 400, "colour"},
		{"event in a batch", "POST", "/events", `[{"site":"fra1","kind":"anomaly","starts":"2026-11-26T02:00:00Z"},{"site":"fra1","kind":"anomaly"}]`, 422, "[1].starts"},
		{"event ids twice", "POST", "/events", `[{"id":"a","site":"fra1","kind":"anomaly","starts":"2026-11-26T02:00:00Z"},{"id":"a","site":"ams1","kind":"anomaly","starts":"2026-11-26T02:00:00Z"}]`, 422, "[1].id"},
		{"no events", "POST", "/events", `[]`, 422, ""},
		{"too many events", "POST", "/events", "[" + strings.Repeat(`{"site":"fra1","kind":"anomaly","starts":"2026-11-26T02:00:00Z"},`, 1000) + `{"site":"fra1","kind":"anomaly","starts":"2026-11-26T02:00:00Z"}]`, 413, ""},
		{"close without id", "POST", "/events/close", `{}`, 422, "id"},
		{"close time", "POST", "/events/close", `{"id":"a","at":"later"}`, 422, "at"},
		{"alertmanager version", "POST", "/events/alertmanager", `{"version":"3","alerts":[]}`, 422, "version"},
		{"alertmanager malformed", "POST", "/events/alertmanager", `{"version":"4","alerts":[{"startsAt":"yesterday"}]}`, 400, ""},
		{"no route", "GET", "/nowhere", ``, 404, ""},
		{"register size", "POST", "/connectors", `{"id":"app-1","site":"ams1","who":"ann","why":"x"}`, 422, "size"},
		{"register size and amounts", "POST", "/connectors", `{"id":"app-1","site":"ams1","size":"large","max_tasks":4,"who":"ann","why":"x"}`, 422, "size"},
		{"register amounts", "POST", "/connectors", `{"id":"app-1","site":"ams1","cpu_millis":1000,"ram_bytes":1,"bandwidth_bytes_per_sec":0,"storage_bytes":1,"max_tasks":1,"who":"ann","why":"x"}`, 422, "bandwidth_bytes_per_sec"},
		{"register stale after", "POST", "/connectors", `{"id":"app-1","site":"ams1","size":"small","stale_after":"forever","who":"ann","why":"x"}`, 422, "stale_after"},
		{"register id", "POST", "/connectors", `{"id":"app 1","site":"ams1","size":"small","who":"ann","why":"x"}`, 422, "id"},
		{"register why", "POST", "/connectors", `{"id":"app-1","site":"ams1","size":"small","who":"ann"}`, 422, "why"},
		{"deregister who", "POST", "/connectors/app-1/deregister", `{"why":"x"}`, 422, "who"},
		{"metrics negative", "POST", "/connectors/app-1/metrics", `{"at":"` + recent + `","ram_bytes":-1}`, 422, "ram_bytes"},
		{"metrics no time", "POST", "/connectors/app-1/metrics", `{"cpu_percent":1}`, 422, "at"},
		{"metrics future", "POST", "/connectors/app-1/metrics", `{"at":"` + now.Add(time.Hour).Format(time.RFC3339) + `"}`, 422, "at"},
		{"metrics old", "POST", "/connectors/app-1/metrics", `{"at":"` + now.Add(-8*24*time.Hour).Format(time.RFC3339) + `"}`, 422, "at"},
		{"metrics latency", "POST", "/connectors/app-1/metrics", `[{"at":"` + recent + `"},{"at":"` + recent + `","read_latency_seconds":-0.5}]`, 422, "samples[1].read_latency_seconds"},
		{"metrics throttled", "POST", "/connectors/app-1/metrics", `[{"at":"` + recent + `","cpu_throttled_percent":-1}]`, 422, "samples[0].cpu_throttled_percent"},
		{"metrics none", "POST", "/connectors/app-1/metrics", `[]`, 422, "samples"},
		{"metrics unknown field", "POST", "/connectors/app-1/metrics", `{"at":"` + recent + `","temperature":40}`, 400, "temperature"},
		{"metrics type", "POST", "/connectors/app-1/metrics", `{"at":"` + recent + `","active_tasks":"two"}`, 400, "active_tasks"},
		{"metrics too many", "POST", "/connectors/app-1/metrics", "[" + strings.Repeat(`{"at":"`+recent+`"},`, 100) + `{"at":"` + recent + `"}]`, 413, "samples"},
		{"metrics connector", "POST", "/connectors/a%20b/metrics", `{"at":"` + recent + `"}`, 422, "connector_id"},
		// Bounds: times, names, notes, counts and sizes, IDs in paths.
		{"forecast year 0", "POST", "/forecast", `{"vm_ids":["vm-1"],"earliest_start":"0000-01-01T00:00:00Z","deadline":"2026-11-26T00:00:00Z"}`, 422, "earliest_start"},
		{"forecast year 9999", "POST", "/forecast", `{"vm_ids":["vm-1"],"earliest_start":"2026-11-25T00:00:00Z","deadline":"9999-12-31T00:00:00Z"}`, 422, "deadline"},
		{"forecast tier text", "POST", "/forecast", `{"vm_ids":["vm-1"],"sla_tier":"gold\u0000","earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z"}`, 422, "sla_tier"},
		{"forecast disk size", "POST", "/forecast", `{"vms":[{"site":"ams1","disk_bytes":9000000000000000000}],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z"}`, 422, "vms[0].disk_bytes"},
		{"forecast vm id", "POST", "/forecast", `{"vm_ids":["vm 1"],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z"}`, 422, "vm_ids[0]"},
		{"what-if links", "POST", "/forecast", `{"vm_ids":["vm-1"],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z","what_if":{"lose_link":[` + strings.Repeat(`"a",`, 100) + `"a"]}}`, 422, "what_if.lose_link"},
		{"what-if sla too long", "POST", "/forecast", `{"vm_ids":["vm-1"],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z","what_if":{"tighten_sla":[{"tier":"gold","max_transfer":"1000h"}]}}`, 422, "what_if.tighten_sla[0]"},
		{"what-if blackout year", "POST", "/forecast", `{"vm_ids":["vm-1"],"earliest_start":"2026-11-25T00:00:00Z","deadline":"2026-11-26T00:00:00Z","what_if":{"blackout":[{"site":"fra1","from":"1999-12-31T00:00:00Z","to":"2026-11-25T01:00:00Z"}]}}`, 422, "what_if.blackout[0].from"},
		{"migration id too long", "POST", "/migrations", `{"id":"` + strings.Repeat("a", 65) + `","vm_id":"vm-1"}`, 422, "id"},
		{"migration cutover year", "POST", "/migrations", `{"vm_id":"vm-1","cutover_after":"9999-12-31T23:59:59Z"}`, 422, "cutover_after"},
		{"migration downtime too long", "POST", "/migrations", `{"vm_id":"vm-1","max_downtime":"721h"}`, 422, "max_downtime"},
		{"migration transfer negative", "POST", "/migrations", `{"vm_id":"vm-1","max_transfer":"-1h"}`, 422, "max_transfer"},
		{"migration source too long", "POST", "/migrations", `{"vm_id":"vm-1","source":"/` + strings.Repeat("a", 2048) + `"}`, 422, "source"},
		{"migration priority overflow", "POST", "/migrations", `{"vm_id":"vm-1","priority":1e30}`, 400, "priority"},
		{"scale who too long", "POST", "/scale", `{"action":"drain","connector_id":"c1","who":"` + strings.Repeat("a", 201) + `","why":"x"}`, 422, "who"},
		{"scale site text", "POST", "/scale", `{"action":"provision","site":"ams1\n","count":1,"who":"ann","why":"x"}`, 422, "site"},
		{"scale count too big", "POST", "/scale", `{"action":"provision","site":"ams1","count":51,"who":"ann","why":"x"}`, 422, "count"},
		{"policy min too big", "POST", "/policy", `{"min_connectors":5000,"who":"ann","why":"x"}`, 422, "min_connectors"},
		{"policy coverage", "POST", "/policy", `{"gate_min_coverage":1.5,"who":"ann","why":"x"}`, 422, "gate_min_coverage"},
		{"policy why too long", "POST", "/policy", `{"mode":"active","who":"ann","why":"` + strings.Repeat("a", 2001) + `"}`, 422, "why"},
		{"override far expiry", "POST", "/overrides", `{"kind":"pause","who":"ann","why":"x","expires":"2200-01-01T00:00:00Z"}`, 422, "expires"},
		{"override ttl too long", "POST", "/overrides", `{"kind":"pause","who":"ann","why":"x","ttl":"200h"}`, 422, "expires"},
		{"override pin too big", "POST", "/overrides", `{"kind":"pin","site":"ams1","min":5000,"who":"ann","why":"x","ttl":"1h"}`, 422, "min"},
		{"override site text", "POST", "/overrides", `{"kind":"pin","site":"ams\u001b[31m","min":1,"who":"ann","why":"x","ttl":"1h"}`, 422, "site"},
		{"control path id", "POST", "/migrations/a%20b/cancel", `{"who":"ann","why":"x"}`, 422, "id"},
		{"control who text", "POST", "/migrations/m1/pause", `{"who":"ann\u0007","why":"x"}`, 422, "who"},
		{"status path id", "GET", "/migrations/..", ``, 422, "id"},
		{"event year 0", "POST", "/events", `{"site":"fra1","kind":"anomaly","starts":"0000-01-01T00:00:00Z"}`, 422, "starts"},
		{"event ends 9999", "POST", "/events", `{"site":"fra1","kind":"maintenance","starts":"2026-11-26T02:00:00Z","ends":"9999-01-01T00:00:00Z"}`, 422, "ends"},
		{"event id text", "POST", "/events", `{"id":"a\u0000","site":"fra1","kind":"anomaly","starts":"2026-11-26T02:00:00Z"}`, 422, "id"},
		{"event id too long", "POST", "/events", `{"id":"` + strings.Repeat("a", 201) + `","site":"fra1","kind":"anomaly","starts":"2026-11-26T02:00:00Z"}`, 422, "id"},
		{"event description", "POST", "/events", `{"site":"fra1","kind":"anomaly","starts":"2026-11-26T02:00:00Z","description":"` + strings.Repeat("a", 2001) + `"}`, 422, "description"},
		{"event site too long", "POST", "/events", `[{"site":"` + strings.Repeat("a", 201) + `","kind":"anomaly","starts":"2026-11-26T02:00:00Z"}]`, 422, "[0].site"},
		{"close id too long", "POST", "/events/close", `{"id":"` + strings.Repeat("a", 201) + `"}`, 422, "id"},
		{"close at 9999", "POST", "/events/close", `{"id":"a","at":"9999-01-01T00:00:00Z"}`, 422, "at"},
		{"calendar site", "POST", "/events/calendar?site=ams%01", ``, 422, "site"},
		{"calendar days", "POST", "/events/calendar?days=367", ``, 422, "days"},
		{"inventory site", "PUT", "/inventory?site=" + strings.Repeat("a", 201), `[]`, 422, "site"},
		{"inventory tier", "PUT", "/inventory?tier=gold%0A", `[]`, 422, "tier"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := serve(e, "Bearer "+key, c.name, c.method, c.path, c.body)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("body is not a problem: %v: %s", err, rec.Body)
			}
			if p.Status != c.status || p.Title == "" || p.Detail == "" {
				t.Fatalf("incomplete problem %+v", p)
			}
			if p.Field != c.field {
				t.Fatalf("field %q, want %q (%s)", p.Field, c.field, p.Detail)
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	e, key := edgeServer(t)
	body := `{"vm_id":"` + strings.Repeat("x", maxBody) + `"}`
	rec := serve(e, "Bearer "+key, "too large", "POST", "/migrations", body)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", rec.Code)
	}
}
