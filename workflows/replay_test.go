package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
)

// Histories recorded from real runs (the e2e tests, with PMO_RECORD_HISTORIES set)
// replay against today's workflow code: a change that is not deterministic, such as a
// new activity call without a version marker, fails here before it breaks a running
// fleet or migration.
func TestRecordedHistoriesReplay(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "replay", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/replay")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(FleetWorkflow)
			r.RegisterWorkflow(MigrationWorkflow)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("%s does not replay: %v", f, err)
			}
		})
	}
}
