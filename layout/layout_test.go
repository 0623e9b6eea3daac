// Package layout holds no code: its test checks the import rules that keep the
// architecture as DESIGN.md draws it.
package layout

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// forbidden lists, for each package, import path prefixes it must not depend on, even
// indirectly.
var forbidden = map[string][]string{
	// forecast is pure numerics: no Temporal, no SQL.
	"github.com/pmo-dev/pmo/forecast": {"go.temporal.io/", "github.com/jackc/pgx", "github.com/pmo-dev/pmo/store"},
	// The planning core is plain Go, shared by the fleet and the simulator.
	"github.com/pmo-dev/pmo/planning": {"go.temporal.io/", "github.com/jackc/pgx", "github.com/pmo-dev/pmo/store"},
	// Inventory files are read and checked in plain Go; the store writes the rows.
	"github.com/pmo-dev/pmo/imports": {"go.temporal.io/", "github.com/jackc/pgx", "github.com/pmo-dev/pmo/store"},
	// Traces are plain Go for the simulator, and so is the demo they draw VMs from.
	"github.com/pmo-dev/pmo/trace": {"go.temporal.io/", "github.com/jackc/pgx", "github.com/pmo-dev/pmo/store"},
	"github.com/pmo-dev/pmo/demo":  {"go.temporal.io/", "github.com/jackc/pgx", "github.com/pmo-dev/pmo/store"},
	// The simulator runs the planning core on a simulated clock: no Temporal, no
	// database, no network.
	"github.com/pmo-dev/pmo/sim": {"go.temporal.io/", "github.com/jackc/pgx", "github.com/pmo-dev/pmo/store",
		"github.com/pmo-dev/pmo/activities", "github.com/labstack/echo"},
	// Activities reach the database only through their Store: the workflows import them.
	"github.com/pmo-dev/pmo/activities": {"github.com/jackc/pgx", "github.com/pmo-dev/pmo/store"},
	// Workflows know nothing of SQL or HTTP, and call activities by name with the
	// contract's types, so that they do not link the activities and what those run.
	"github.com/pmo-dev/pmo/workflows": {"github.com/jackc/pgx", "github.com/pmo-dev/pmo/store", "github.com/labstack/echo",
		"github.com/pmo-dev/pmo/activities", "github.com/pmo-dev/pmo/sim", "github.com/pmo-dev/pmo/transfer", "github.com/pmo-dev/pmo/provisioner"},
	// The contract between workflows and activities is types and names only.
	"github.com/pmo-dev/pmo/contract": {"go.temporal.io/", "github.com/jackc/pgx", "github.com/pmo-dev/pmo/store", "github.com/labstack/echo",
		"github.com/pmo-dev/pmo/activities", "github.com/pmo-dev/pmo/sim", "github.com/pmo-dev/pmo/transfer", "github.com/pmo-dev/pmo/provisioner"},
	// The web server never reaches the activities, the simulator, the copy or the
	// provisioner, not even through what it imports: a change inside them cannot change
	// the HTTP API.
	"github.com/pmo-dev/pmo/web": {"github.com/pmo-dev/pmo/activities", "github.com/pmo-dev/pmo/sim",
		"github.com/pmo-dev/pmo/transfer", "github.com/pmo-dev/pmo/provisioner"},
	// The load test drives the system through its HTTP API; it reads the inventory
	// from the store to pick VMs, and `loadtest pools` starts fleets with its own
	// settings and reads their histories back from Temporal to judge them.
	"github.com/pmo-dev/pmo/loadtest": {"github.com/labstack/echo", "github.com/pmo-dev/pmo/web"},
	// A site's sources are checked as text, by the web server and the connector alike.
	"github.com/pmo-dev/pmo/sources": {"go.temporal.io/", "github.com/jackc/pgx", "github.com/pmo-dev/pmo/store", "github.com/labstack/echo"},
	// API keys and roles are plain Go: the store keeps the hashes, the web checks them.
	"github.com/pmo-dev/pmo/apikey": {"go.temporal.io/", "github.com/jackc/pgx", "github.com/pmo-dev/pmo/store", "github.com/labstack/echo"},
}

// forbiddenDirect lists, for each package, import paths it must not import itself,
// though what it imports may.
var forbiddenDirect = map[string][]string{
	// The web server starts, signals, updates and queries workflows. It reaches
	// PostgreSQL itself only through the store, and only for readiness, API keys and
	// the audit trail (web/auth.go says why); it writes no facts, and runs no SQL.
	// Its requests and answers are the API's own and the contract's (workflows,
	// planning, imports), never the forecasting models' (which reach it only inside
	// planning, the domain they serve); what else it must not reach is in forbidden.
	"github.com/pmo-dev/pmo/web": {"github.com/jackc/pgx", "database/sql", "github.com/pmo-dev/pmo/forecast"},
}

func TestPackagesImportOnlyWhatTheirLayerAllows(t *testing.T) {
	for pkg, bad := range forbidden {
		checkImports(t, pkg, bad, "depends on", "-deps")
	}
	for pkg, bad := range forbiddenDirect {
		checkImports(t, pkg, bad, "imports", "-f", `{{join .Imports "\n"}}`)
	}
}

// checkImports fails for each package that `go list <args> pkg` lists and that starts
// with one of bad.
func checkImports(t *testing.T, pkg string, bad []string, verb string, args ...string) {
	t.Helper()
	out, err := exec.Command("go", append(append([]string{"list"}, args...), pkg)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", pkg, err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range bad {
			if strings.HasPrefix(dep, b) {
				t.Errorf("%s %s %s", pkg, verb, dep)
			}
		}
	}
}

// The web server may call only these methods of the store: the rule above keeps SQL
// out of it, this one keeps it from growing into a second writer of facts. It reads
// the sites and tiers only to refuse a request that names an unknown one at the edge,
// a VM to start the migration a request asks for, the audit trail it writes, a site's
// timeline of forecasts, arrivals and connectors for the dashboard, a wave's report,
// and the one fact it
// writes: an external connector's metrics, which the fleet reads at Collect, so that
// thousands of appliances' posts stay out of the fleet's history.
func TestWebUsesTheStoreOnlyForReadinessKeysAuditReferencesAndMetrics(t *testing.T) {
	allowed := map[string]bool{"Ping": true, "UseAPIKey": true, "APIKeyHashes": true, "BeginAudit": true, "FinishAudit": true, "MigrationByID": true, "ClaimVM": true, "TakeVM": true, "Sites": true, "SLATiers": true, "VM": true, "RecentAudit": true, "Timeline": true,
		"RecordExternalMetrics": true, "WaveReport": true}
	call := regexp.MustCompile(`\.Store\.([A-Za-z]+)\(|\bstore\.([A-Za-z]+)\(`)
	for f, b := range sources(t, "../web") {
		for _, m := range call.FindAllStringSubmatch(string(b), -1) {
			if name := m[1] + m[2]; !allowed[name] {
				t.Errorf("%s calls the store's %s; the web uses the store only for %v", f, name, allowed)
			}
		}
	}
}

// Every workflow.GetVersion change ID is a constant in workflows/versions.go, so that
// what a worker must still replay is seen in one place (docs/versioning.md).
func TestWorkflowVersionsLiveInOneFile(t *testing.T) {
	declared := regexp.MustCompile(`(?m)^\s*(?:const\s+)?([a-z][A-Za-z]*Version)\s*=\s*"`)
	literal := regexp.MustCompile(`GetVersion\(ctx,\s*"`)
	found := 0
	for f, b := range sources(t, "../workflows") {
		if literal.Match(b) {
			t.Errorf("%s passes GetVersion a literal change ID; declare it in workflows/versions.go", f)
		}
		for _, m := range declared.FindAllSubmatch(b, -1) {
			if filepath.Base(f) != "versions.go" {
				t.Errorf("%s declares the change ID %s; it belongs in workflows/versions.go", f, m[1])
			} else {
				found++
			}
		}
	}
	if found == 0 {
		t.Error("workflows/versions.go declares no change ID")
	}
}

// sources are the Go files of a folder, tests left out, by name.
func sources(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	return out
}
