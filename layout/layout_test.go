// Package layout holds no code: its test checks the import rules that keep the
// architecture as DESIGN.md draws it.
package layout

import (
	"os/exec"
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
	// Workflows know nothing of SQL or HTTP.
	"github.com/pmo-dev/pmo/workflows": {"github.com/jackc/pgx", "github.com/pmo-dev/pmo/store", "github.com/labstack/echo"},
}

func TestPackagesImportOnlyWhatTheirLayerAllows(t *testing.T) {
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
