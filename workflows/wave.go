package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
)

// WaveInput starts a planned wave: the migrations a POST /forecast request planned
// (its ID is the wave's), in the pool it was planned for.
type WaveInput struct {
	ID   string `json:"id"`
	Pool string `json:"pool"`
}

// WaveProgress is how far a wave is: its migrations by where they are, and the bytes
// of those that succeeded.
type WaveProgress struct {
	ID        string `json:"id"`
	Pool      string `json:"pool"`
	Started   int    `json:"started"`
	Running   int    `json:"running"`
	Succeeded int    `json:"succeeded"`
	// Failed counts those that ended otherwise: failed, cancelled or past their SLA
	// (Breached counts the last apart too).
	Failed    int   `json:"failed"`
	Breached  int   `json:"breached"`
	BytesDone int64 `json:"bytes_done"`
	// Refused are the planned migrations that could not start, each "<id>: why".
	Refused []string `json:"refused,omitempty"`
	// Done says that every migration has ended.
	Done bool `json:"done"`
}

// WavePageSize is how many planned migrations the wave reads and starts at a time.
const WavePageSize = 100

// WaveWorkflow runs a planned wave: it reads the wave's migrations from PostgreSQL a
// page at a time and starts each as a child MigrationWorkflow (the same workflow an
// ad-hoc POST /migrations starts, under the same ID), at its earliest start, so that
// the Web UI shows the wave with its migrations under it; then it waits for them all.
// Cancelling the wave cancels the migrations it started. QueryWave answers its
// progress.
func WaveWorkflow(ctx workflow.Context, in WaveInput) (WaveProgress, error) {
	p := WaveProgress{ID: in.ID, Pool: in.Pool}
	if err := workflow.SetQueryHandler(ctx, QueryWave, func() (WaveProgress, error) { return p, nil }); err != nil {
		return p, err
	}
	logger := workflow.GetLogger(ctx)
	var children []workflow.ChildWorkflowFuture
	var bytes []int64
	after := ""
	for {
		var page contract.WavePage
		err := workflow.ExecuteActivity(controlOptions(ctx, time.Minute), fleetActivities.WavePage,
			contract.WavePageInput{Wave: in.ID, After: after, Limit: WavePageSize}).Get(ctx, &page)
		if err != nil {
			return p, err
		}
		for _, id := range page.Missing {
			p.Refused = append(p.Refused, id+": its VM is no longer in the inventory")
		}
		for _, m := range page.Migrations {
			req := MigrationRequest{ID: m.Planned.ID, VMID: m.VM.ID}
			mi, err := NewMigrationInput(in.Pool, req, m.VM)
			if err == nil {
				err = CheckSource(req, m.VM)
			}
			if err != nil {
				p.Refused = append(p.Refused, fmt.Sprintf("%s: %v", m.Planned.ID, err))
				continue
			}
			mi.Planned = true
			if wait := m.Planned.EarliestStart.Sub(workflow.Now(ctx)); wait > 0 {
				if err := workflow.Sleep(ctx, wait); err != nil {
					return p, err
				}
			}
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID: MigrationWorkflowID(mi.ID), TaskQueue: TaskQueue,
				WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
				ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
				TypedSearchAttributes: migrationSearch(mi), Memo: migrationMemo(mi), StaticSummary: migrationSummary(mi),
			})
			child := workflow.ExecuteChildWorkflow(cctx, MigrationWorkflow, mi)
			if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
				p.Refused = append(p.Refused, fmt.Sprintf("%s: not started: %v", mi.ID, err))
				continue
			}
			children, bytes = append(children, child), append(bytes, mi.Bytes)
			p.Started++
			p.Running++
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	logger.Info("wave started its migrations", "wave", in.ID, "started", p.Started, "refused", len(p.Refused))
	for i, child := range children {
		var st MigrationStatus
		err := child.Get(ctx, &st)
		p.Running--
		switch {
		case err == nil && st.Outcome == OutcomeSucceeded:
			p.Succeeded++
			p.BytesDone += bytes[i]
		default:
			p.Failed++
			if st.Outcome == OutcomeSLABreached {
				p.Breached++
			}
		}
	}
	p.Done = true
	return p, nil
}
