package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.uber.org/fx/fxtest"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store/storetest"
)

// Every JSON endpoint refuses a body over maxBody with 413, before Temporal.
func TestJSONBodiesOverTheLimitAreRefused(t *testing.T) {
	e, u, authorization := unreachableServer(t)
	body := `{"who":"` + strings.Repeat("x", maxBody) + `"}`
	for _, path := range jsonRoutes {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		req.Header.Set(echo.HeaderAuthorization, authorization)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		// The control endpoints check the path's ID first: one of them has a bad one.
		if want := http.StatusRequestEntityTooLarge; rec.Code != want && !(strings.Contains(path, "a%20b") && rec.Code == http.StatusUnprocessableEntity) {
			t.Errorf("POST %s: status %d, want %d", path, rec.Code, want)
		}
	}
	if len(u.calls) > 0 {
		t.Fatalf("a refused body reached Temporal: %+v", u.calls)
	}
}

// The server as it runs (NewEcho's middleware included) takes an imported file over
// the JSON limit: it is staged and its import started (Temporal is down here, so
// 503), not refused as too large. Before, a 1 MiB limit on every route refused it.
func TestImportsOverOneMiBGetThrough(t *testing.T) {
	u := &unreachable{}
	st := storetest.New(t)
	srv := &Server{Temporal: u, Store: st, Pool: "default", Logger: slog.New(slog.DiscardHandler), Uploads: t.TempDir(), RateLimit: unlimited}
	e := NewEcho(fxtest.NewLifecycle(t), config.Config{}, srv, slog.New(slog.DiscardHandler))
	e.Logger.SetOutput(io.Discard)
	var b strings.Builder
	b.WriteString("id,name,region,uplink_bytes_per_sec\n")
	for i := 0; b.Len() < 3*maxBody; i++ {
		fmt.Fprintf(&b, "site-%07d,Amsterdam,eu-west,1e9\n", i)
	}
	csv := b.String()
	req := httptest.NewRequest(http.MethodPut, "/sites", strings.NewReader(csv))
	req.Header.Set(echo.HeaderContentType, "text/csv")
	req.Header.Set(echo.HeaderAuthorization, "Bearer "+adminKey(t, st))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || len(u.calls) != 1 || u.calls[0].method != "ExecuteWorkflow" {
		t.Fatalf("a %d-byte import: status %d, calls %v: %s", len(csv), rec.Code, u.calls, rec.Body)
	}
}

// A file with bad rows is refused at the edge, every bad row listed, before any
// workflow starts, and its staged copy is removed.
func TestAnImportWithBadRowsStartsNoWorkflow(t *testing.T) {
	e, u, auth := unreachableServer(t)
	body, err := os.ReadFile("../imports/testdata/malformed.csv")
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPut, "/inventory", bytes.NewReader(body))
	req.Header.Set(echo.HeaderContentType, "text/csv")
	req.Header.Set(echo.HeaderAuthorization, auth)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	// Six bad rows; the ID line 4 repeats is the worker's to find, once a file reads
	// cleanly.
	if rec.Code != http.StatusUnprocessableEntity || len(p.Errors) != 6 || p.Errors[0].Line != 2 || p.Errors[0].Column != "ram_bytes" {
		t.Fatalf("status %d, problem %+v", rec.Code, p)
	}
	if len(u.calls) != 0 {
		t.Fatalf("a bad file reached Temporal: %v", u.calls)
	}
}

// A file or an event that names a site PMO does not know is refused at the edge, the
// known sites listed, before any workflow starts.
func TestUnknownSitesStartNoWorkflow(t *testing.T) {
	e, u, auth := unreachableServer(t)
	send := func(method, path, contentType, body string) (int, Problem) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set(echo.HeaderContentType, contentType)
		req.Header.Set(echo.HeaderAuthorization, auth)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		var p Problem
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		return rec.Code, p
	}
	code, p := send(http.MethodPut, "/inventory", "text/csv",
		"id,name,site,cpu_cores,ram_bytes,storage_bytes,sla_tier\nvm-1,one,mars,1,1,1,platinum\n")
	if code != http.StatusUnprocessableEntity || len(p.Errors) != 2 || p.Errors[0].Column != "site" || p.Errors[1].Column != "sla_tier" {
		t.Fatalf("inventory: status %d, problem %+v", code, p)
	}
	code, p = send(http.MethodPost, "/events", "application/json", `{"site": "mars", "kind": "anomaly", "starts": "2026-11-25T10:00:00Z"}`)
	if code != http.StatusUnprocessableEntity || p.Field != "site" {
		t.Fatalf("event: status %d, problem %+v", code, p)
	}
	code, p = send(http.MethodPost, "/events/calendar", "text/calendar",
		"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:a@x\r\nDTSTART:20991201T000000Z\r\nDURATION:PT1H\r\nX-PMO-SITE:mars\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	if code != http.StatusUnprocessableEntity || len(p.Errors) != 1 || p.Errors[0].Column != "X-PMO-SITE" {
		t.Fatalf("calendar: status %d, problem %+v", code, p)
	}
	if len(u.calls) != 0 {
		t.Fatalf("a request naming an unknown site reached Temporal: %v", u.calls)
	}
}
