package workflows

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/imports"
)

// recordedHistories returns the committed histories by file name.
func recordedHistories(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "replay", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/replay")
	}
	return files
}

// historyType is the workflow type a recorded history ran.
func historyType(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
}

// Histories recorded from real runs (the e2e tests, with PMO_RECORD_HISTORIES set)
// replay against today's workflow code: a change that is not deterministic, such as a
// new activity call without a version marker, fails here before it breaks a running
// fleet or migration. Every workflow the worker registers has one.
func TestRecordedHistoriesReplay(t *testing.T) {
	recorded := map[string]bool{}
	for _, f := range recordedHistories(t) {
		recorded[historyType(t, f)] = true
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			for _, wf := range All() {
				r.RegisterWorkflow(wf)
			}
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("%s does not replay: %v", f, err)
			}
		})
	}
	for _, wf := range All() {
		name := runtime.FuncForPC(reflect.ValueOf(wf).Pointer()).Name()
		name = name[strings.LastIndex(name, ".")+1:]
		if !recorded[name] {
			t.Errorf("no recorded history of %s in testdata/replay: record one (see its README)", name)
		}
	}
}

// importWithNewStep is ImportWorkflow with a new first step, as a later change might add
// it: bare, or behind workflow.GetVersion as the house rules ask.
func importWithNewStep(versioned bool) func(workflow.Context, imports.StagedFile) (imports.Counts, error) {
	return func(ctx workflow.Context, in imports.StagedFile) (imports.Counts, error) {
		version := workflow.Version(1)
		if versioned {
			version = workflow.GetVersion(ctx, "check-file-first", workflow.DefaultVersion, 1)
		}
		if version == 1 {
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: TaskQueue, StartToCloseTimeout: time.Minute})
			if err := workflow.ExecuteActivity(actx, "CheckFile", in).Get(ctx, nil); err != nil {
				return imports.Counts{}, err
			}
		}
		return ImportWorkflow(ctx, in)
	}
}

// The guard itself: a committed history replayed against a changed workflow fails when
// the change alters the workflow's commands without workflow.GetVersion, and passes
// when the change is behind it.
func TestReplayCatchesAnUnversionedChange(t *testing.T) {
	var file string
	for _, f := range recordedHistories(t) {
		if historyType(t, f) == "ImportWorkflow" {
			file = f
		}
	}
	if file == "" {
		t.Fatal("no recorded ImportWorkflow history")
	}
	replay := func(versioned bool) error {
		r := worker.NewWorkflowReplayer()
		r.RegisterWorkflowWithOptions(importWithNewStep(versioned), workflow.RegisterOptions{Name: "ImportWorkflow"})
		return r.ReplayWorkflowHistoryFromJSONFile(nil, file)
	}
	err := replay(false)
	if err == nil || !strings.Contains(err.Error(), "nondetermin") {
		t.Fatalf("an unversioned new step replays without a nondeterminism error: %v", err)
	}
	t.Logf("unversioned: %v", err)
	if err := replay(true); err != nil {
		t.Fatalf("the same step behind workflow.GetVersion does not replay: %v", err)
	}
}
