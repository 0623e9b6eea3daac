package workflows

import (
	"cmp"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/validation"
)

// WaveInput starts a planned wave: the migrations a POST /forecast request planned
// (its ID is the wave's), in the pool it was planned for.
type WaveInput struct {
	ID   string `json:"id"`
	Pool string `json:"pool"`
	// RequireApproval makes each migration's cutover wait for an approval: the
	// wave's approve action gives it to them all.
	RequireApproval bool `json:"require_approval,omitempty"`
	// MaxRunning bounds the wave's migrations running at once (DefaultWaveMaxRunning
	// when zero): each running batch runs its share, and batches start as earlier
	// ones end.
	MaxRunning int `json:"max_running,omitempty"`
	// Attempt is 0 for the wave's first run; a run started to retry a wave that had
	// ended runs only its failed migrations, as attempt Attempt.
	Attempt int `json:"attempt,omitempty"`
	// Controls are the operators' actions so far: a retry run carries the earlier
	// runs' and the retry itself, so that its report keeps the whole audit.
	Controls []ControlEvent `json:"controls,omitempty"`
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
	// AwaitingOperator counts the running migrations that wait for an operator's
	// decision after a rolled-back cutover; the wave runs others in their place.
	AwaitingOperator int `json:"awaiting_operator"`
	// Refused are the planned migrations that could not start, each "<id>: why": the
	// first MaxWaveRefusals named, all of them counted in RefusedCount.
	Refused      []string `json:"refused,omitempty"`
	RefusedCount int      `json:"refused_count"`
	// Done says that every migration has ended.
	Done bool `json:"done"`

	// The wave's own state: a batch's progress leaves these empty.

	// Planned and BytesPlanned add up the wave's planned migrations; EarliestStart
	// and Deadline span them.
	Planned       int       `json:"planned,omitempty"`
	BytesPlanned  int64     `json:"bytes_planned,omitempty"`
	EarliestStart time.Time `json:"earliest_start,omitzero"`
	Deadline      time.Time `json:"deadline,omitzero"`
	// StartedAt is when the wave began.
	StartedAt time.Time `json:"started_at,omitzero"`
	// Attempt counts the retry passes run or running (0: the first pass).
	Attempt         int  `json:"attempt"`
	RequireApproval bool `json:"require_approval,omitempty"`
	MaxRunning      int  `json:"max_running,omitempty"`
	Paused          bool `json:"paused"`
	Approved        bool `json:"approved,omitempty"`
	Cancelled       bool `json:"cancelled"`
	RetryRequested  bool `json:"retry_requested,omitempty"`
	// Batches are the workflow IDs of the batches running now: the wave's query
	// counts the batches that ended, and each running one answers QueryWave for its
	// own share.
	Batches []string `json:"batches,omitempty"`
	// Controls are the operators' actions on the wave, oldest first.
	Controls []ControlEvent `json:"controls,omitempty"`
}

// Add counts a batch's progress into the wave's.
func (p *WaveProgress) Add(b WaveProgress) {
	p.Started += b.Started
	p.Running += b.Running
	p.AwaitingOperator += b.AwaitingOperator
	p.Succeeded += b.Succeeded
	p.Failed += b.Failed
	p.Breached += b.Breached
	p.BytesDone += b.BytesDone
	p.RefusedCount += b.RefusedCount
	p.Refused = append(p.Refused, b.Refused[:min(len(b.Refused), MaxWaveRefusals-len(p.Refused))]...)
}

// ended counts a migration that ended: succeeded (with its bytes), or failed,
// cancelled or past its SLA.
func (p *WaveProgress) ended(st MigrationStatus, err error, bytes int64) {
	if err == nil && st.Outcome == OutcomeSucceeded {
		p.Succeeded++
		p.BytesDone += bytes
		return
	}
	p.Failed++
	if st.Outcome == OutcomeSLABreached {
		p.Breached++
	}
}

// migrationChild is the context that starts a wave's migration as a child, under the
// ID, search attributes and summary an ad-hoc one gets; the parent's end cancels it.
func migrationChild(ctx workflow.Context, mi MigrationInput) workflow.Context {
	return workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: MigrationWorkflowID(mi.ID), TaskQueue: TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		TypedSearchAttributes: migrationSearch(mi), Memo: migrationMemo(mi), StaticSummary: migrationSummary(mi),
	})
}

// MaxWaveRefusals bounds the refusals a wave's progress names, so that a wave whose
// every migration is refused still answers in a few kilobytes.
const MaxWaveRefusals = 100

// refuse counts a planned migration that could not start, and names it while there
// is room.
func (p *WaveProgress) refuse(format string, args ...any) {
	p.RefusedCount++
	if len(p.Refused) < MaxWaveRefusals {
		p.Refused = append(p.Refused, fmt.Sprintf(format, args...))
	}
}

// WavePageSize is how many planned migrations a batch reads and starts at a time.
const WavePageSize = 100

// WaveBatchSize is how many planned migrations one WaveBatchWorkflow runs, which
// keeps its history to a few thousand events (about nine for each child) and the
// wave's to a few hundred for 10,000 migrations.
const WaveBatchSize = 200

// waveShare is how many of a wave's migrations one batch runs at once: a quarter of
// max_running, so that four or more batches run side by side and one batch's tail, or
// a migration waiting for an operator, holds little of it.
func waveShare(maxRunning int) int {
	return max(1, min(WaveBatchSize, (maxRunning+3)/4))
}

// WaveBatchLoad is what a batch that has started all its migrations still holds of
// its wave's max_running: its running migrations but those waiting for an operator.
type WaveBatchLoad struct {
	Batch string `json:"batch"`
	Held  int    `json:"held"`
}

// AwaitingOperator tells a wave's batch that its migration (by workflow ID) waits for
// an operator's decision, or no longer does.
type AwaitingOperator struct {
	Migration string `json:"migration"`
	Waiting   bool   `json:"waiting"`
}

// DefaultWaveMaxRunning is how many of a wave's migrations run at once unless the
// wave says otherwise.
const DefaultWaveMaxRunning = 1000

// WaveRetry is the wave action that runs its failed migrations again once the
// current pass ends (SignalPause, SignalResume, SignalCancel and SignalApprove name
// the others).
const WaveRetry = "retry"

// WaveControl is an operator's action on a whole wave: pause, resume, cancel,
// approve or retry.
type WaveControl struct {
	Action string `json:"action"`
	Control
}

// WaveBatchInput runs one batch of a wave: its planned migrations after After up to
// Through (to the end when empty), or in a retry pass (Attempt > 0) those of them
// that failed, with the wave's state when the batch started.
type WaveBatchInput struct {
	Wave            string `json:"wave"`
	Pool            string `json:"pool"`
	After           string `json:"after,omitempty"`
	Through         string `json:"through,omitempty"`
	Attempt         int    `json:"attempt,omitempty"`
	RequireApproval bool   `json:"require_approval,omitempty"`
	Paused          bool   `json:"paused,omitempty"`
	// MaxRunning bounds the batch's migrations running at once: its share of the
	// wave's (0: no bound, as batches from before it ran).
	MaxRunning int `json:"max_running,omitempty"`
}

// RetryMigrationID is the ID of a planned migration's retry in pass attempt: the
// planned ID on the first pass.
func RetryMigrationID(planned string, attempt int) string {
	if attempt == 0 {
		return planned
	}
	return fmt.Sprintf("%s-r%d", planned, attempt)
}

// WaveWorkflow runs a planned wave as a tree: it splits the wave's migrations into
// batches of WaveBatchSize by ID (the migrations themselves stay in PostgreSQL) and
// runs each batch as a child WaveBatchWorkflow, whose children are the migrations,
// each the MigrationWorkflow an ad-hoc POST /migrations starts, under the same ID.
// At most MaxRunning migrations' batches run at once. UpdateWaveControl pauses,
// resumes, cancels, approves or retries the whole wave, each audited; QueryWave
// answers its progress. At its end the wave writes its report to PostgreSQL.
func WaveWorkflow(ctx workflow.Context, in WaveInput) (WaveProgress, error) {
	if workflow.GetVersion(ctx, waveBatchesVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return startChildrenDirectly(ctx, in)
	}
	w := &wave{in: in, logger: workflow.GetLogger(ctx), p: WaveProgress{ID: in.ID, Pool: in.Pool, Attempt: in.Attempt,
		RequireApproval: in.RequireApproval, MaxRunning: cmp.Or(in.MaxRunning, DefaultWaveMaxRunning), StartedAt: workflow.Now(ctx),
		Controls: in.Controls}}
	if err := workflow.SetQueryHandler(ctx, QueryWave, func() (WaveProgress, error) { return w.progress(), nil }); err != nil {
		return w.p, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateWaveControl, w.control,
		workflow.UpdateHandlerOptions{Validator: w.validate}); err != nil {
		return w.p, err
	}
	if w.loads = workflow.GetVersion(ctx, waveLoadVersion, workflow.DefaultVersion, 1) == 1; w.loads {
		onEachSignal(ctx, SignalWaveBatchLoad, w.takeLoad)
	}
	for {
		if err := w.pass(ctx); err != nil {
			return w.p, err
		}
		if !w.p.RetryRequested || w.p.Cancelled {
			break
		}
		w.p.RetryRequested = false
		w.p.Attempt++
	}
	w.p.Done = true
	rctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: TaskQueue, StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{MaximumInterval: time.Minute}, ScheduleToCloseTimeout: time.Hour})
	err := workflow.ExecuteActivity(rctx, fleetActivities.RecordWaveReport, contract.WaveReportInput{
		Wave: in.ID, Pool: in.Pool, StartedAt: w.p.StartedAt, EndedAt: workflow.Now(ctx), Attempts: w.p.Attempt + 1,
		Cancelled: w.p.Cancelled, Controls: w.p.Controls}).Get(ctx, nil)
	if err != nil {
		w.logger.Error("wave report not recorded", "wave", in.ID, "error", err)
	}
	w.logger.Info("wave ended", "wave", in.ID, "started", w.p.Started, "succeeded", w.p.Succeeded, "failed", w.p.Failed,
		"cancelled", w.p.Cancelled)
	// Updates that arrived as the last batch ended finish before the run closes.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return w.p, err
	}
	return w.p, nil
}

// wave is a WaveWorkflow's state.
type wave struct {
	in      WaveInput
	logger  log.Logger
	p       WaveProgress // the batches that ended, and the wave's own state
	batches []*waveBatchRun
	// loads says that batches report what they hold (waveLoadVersion).
	loads bool
}

// waveBatchRun is a batch the wave started.
type waveBatchRun struct {
	id      string
	in      WaveBatchInput
	started bool
	done    bool
	// held is how much of max_running the batch holds: its share until it reports
	// less once it has started all its migrations.
	held int
}

// running counts the batches not yet ended.
func (w *wave) running() int {
	n := 0
	for _, b := range w.batches {
		if !b.done {
			n++
		}
	}
	return n
}

// held adds up what the running batches hold of max_running.
func (w *wave) held() int {
	n := 0
	for _, b := range w.batches {
		if !b.done {
			n += b.held
		}
	}
	return n
}

// takeLoad keeps what a batch reports it holds.
func (w *wave) takeLoad(_ workflow.Context, l WaveBatchLoad) {
	for _, b := range w.batches {
		if b.id == l.Batch {
			b.held = l.Held
		}
	}
}

// progress is the wave's query answer.
func (w *wave) progress() WaveProgress {
	p := w.p
	p.Batches = nil
	for _, b := range w.batches {
		if b.started && !b.done {
			p.Batches = append(p.Batches, b.id)
		}
	}
	return p
}

// pass runs the wave's migrations, or in a retry pass its failed ones, batch after
// batch, and waits for them all.
func (w *wave) pass(ctx workflow.Context) error {
	retry := w.p.Attempt > 0
	var plan contract.WaveBatches
	err := workflow.ExecuteActivity(controlOptions(ctx, time.Minute), fleetActivities.WaveBatches,
		contract.WaveBatchesInput{Wave: w.in.ID, Size: WaveBatchSize, Retry: retry}).Get(ctx, &plan)
	if err != nil {
		return err
	}
	if !retry || w.p.Planned == 0 {
		w.p.Planned, w.p.BytesPlanned, w.p.EarliestStart, w.p.Deadline = plan.Count, plan.Bytes, plan.EarliestStart, plan.Deadline
	}
	w.logger.Info("wave pass", "wave", w.in.ID, "attempt", w.p.Attempt, "migrations", plan.Count, "batches", len(plan.Bounds))
	// A batch starts when its share of max_running is free: at first as many as fill
	// it, then as the tails of running ones shrink (or, in runs from before
	// waveLoadVersion, as they end).
	share := waveShare(w.p.MaxRunning)
	room := func() bool { return w.held()+share <= w.p.MaxRunning }
	if !w.loads {
		window := (w.p.MaxRunning + WaveBatchSize - 1) / WaveBatchSize
		share = max(1, w.p.MaxRunning/window)
		room = func() bool { return w.running() < window }
	}
	after := ""
	for i, through := range plan.Bounds {
		if err := workflow.Await(ctx, func() bool { return w.p.Cancelled || !w.p.Paused && room() }); err != nil {
			return err
		}
		if w.p.Cancelled {
			break
		}
		w.startBatch(ctx, i+1, after, through, share)
		after = through
	}
	return workflow.Await(ctx, func() bool { return w.running() == 0 })
}

// startBatch starts the batch of migrations after after up to through, and counts
// its progress in when it ends.
func (w *wave) startBatch(ctx workflow.Context, n int, after, through string, maxRunning int) {
	id := fmt.Sprintf("%s-b%d", WaveWorkflowID(w.in.ID), n)
	if w.p.Attempt > 0 {
		id = fmt.Sprintf("%s-r%d-b%d", WaveWorkflowID(w.in.ID), w.p.Attempt, n)
	}
	b := &waveBatchRun{id: id, in: WaveBatchInput{Wave: w.in.ID, Pool: w.in.Pool, After: after, Through: through,
		Attempt: w.p.Attempt, RequireApproval: w.in.RequireApproval && !w.p.Approved, Paused: w.p.Paused, MaxRunning: maxRunning},
		held: maxRunning}
	w.batches = append(w.batches, b)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: id, TaskQueue: TaskQueue,
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL})
	f := workflow.ExecuteChildWorkflow(cctx, WaveBatchWorkflow, b.in)
	// A coroutine per batch waits for it, so that the wave goes on starting others and
	// taking the operator's actions meanwhile.
	workflow.Go(ctx, func(gctx workflow.Context) {
		defer func() { b.done = true }()
		if err := f.GetChildWorkflowExecution().Get(gctx, nil); err != nil {
			w.p.refuse("%s: not started: %v", id, err)
			return
		}
		b.started = true
		w.catchUp(gctx, b)
		var res WaveProgress
		if err := f.Get(gctx, &res); err != nil {
			w.logger.Error("wave batch failed", "batch", id, "error", err)
			w.p.refuse("%s: %v", id, err)
		}
		res.Running, res.AwaitingOperator = 0, 0
		w.p.Add(res)
	})
}

// catchUp tells a batch that has just started what the wave's operators did after its
// input was made.
func (w *wave) catchUp(ctx workflow.Context, b *waveBatchRun) {
	var actions []string
	switch {
	case w.p.Cancelled:
		actions = append(actions, SignalCancel)
	case w.p.Paused != b.in.Paused && w.p.Paused:
		actions = append(actions, SignalPause)
	case w.p.Paused != b.in.Paused:
		actions = append(actions, SignalResume)
	}
	if w.p.Approved && b.in.RequireApproval {
		actions = append(actions, SignalApprove)
	}
	for _, a := range actions {
		c := w.lastControl(a)
		if err := workflow.SignalExternalWorkflow(ctx, b.id, "", SignalWaveControl, c).Get(ctx, nil); err != nil {
			w.logger.Warn("wave action not passed to a batch", "batch", b.id, "action", a, "error", err)
		}
	}
}

// lastControl is the latest operator action of that kind on the wave.
func (w *wave) lastControl(action string) WaveControl {
	for i := len(w.p.Controls) - 1; i >= 0; i-- {
		if c := w.p.Controls[i]; c.Action == action {
			return WaveControl{Action: action, Control: Control{Who: c.Who, Why: c.Why}}
		}
	}
	return WaveControl{Action: action}
}

// validate refuses an action the wave cannot take now, saying why.
func (w *wave) validate(c WaveControl) error {
	if err := c.Validate(); err != nil {
		return err
	}
	conflict := func(format string) error {
		return failure(validation.ConflictErrorType, "action", format, w.in.ID)
	}
	switch {
	case w.p.Done:
		return conflict("wave %s has ended")
	case w.p.Cancelled:
		return conflict("wave %s was cancelled")
	case c.Action == SignalPause && w.p.Paused:
		return conflict("wave %s is paused already")
	case c.Action == SignalResume && !w.p.Paused:
		return conflict("wave %s is not paused")
	case c.Action == SignalApprove && !w.in.RequireApproval:
		return conflict("wave %s does not wait for approval")
	case c.Action == SignalApprove && w.p.Approved:
		return conflict("wave %s is approved already")
	case c.Action == WaveRetry && w.p.RetryRequested:
		return conflict("wave %s will retry its failed migrations already once this pass ends")
	}
	return nil
}

// control takes an operator's action: recorded, then passed to every running batch,
// which passes it to its running migrations (a retry waits for the pass to end).
func (w *wave) control(ctx workflow.Context, c WaveControl) (WaveProgress, error) {
	switch c.Action {
	case SignalPause:
		w.p.Paused = true
	case SignalResume:
		w.p.Paused = false
	case SignalCancel:
		w.p.Cancelled = true
	case SignalApprove:
		w.p.Approved = true
	case WaveRetry:
		w.p.RetryRequested = true
	}
	w.p.Controls = append(w.p.Controls, ControlEvent{At: workflow.Now(ctx), Action: c.Action, Who: c.Who, Why: c.Why})
	w.logger.Info("wave "+c.Action, "wave", w.in.ID, "who", c.Who, "why", c.Why)
	if c.Action == WaveRetry {
		return w.progress(), nil
	}
	var sent []workflow.Future
	for _, b := range w.batches {
		if b.started && !b.done {
			sent = append(sent, workflow.SignalExternalWorkflow(ctx, b.id, "", SignalWaveControl, c))
		}
	}
	for _, f := range sent {
		if err := f.Get(ctx, nil); err != nil {
			// The batch ended meanwhile.
			w.logger.Warn("wave action not passed to a batch", "action", c.Action, "error", err)
		}
	}
	return w.progress(), nil
}

// Validate checks the action and that the operator said who and why.
func (c WaveControl) Validate() error {
	switch c.Action {
	case SignalPause, SignalResume, SignalCancel, SignalApprove, WaveRetry:
	default:
		return validation.Field("action", "must be pause, resume, cancel, approve or retry, got %q", c.Action)
	}
	return c.Control.Validate()
}

// startChildrenDirectly is how waves ran before waveBatchesVersion: the wave itself
// started every migration as its child. Kept for the runs that began so.
func startChildrenDirectly(ctx workflow.Context, in WaveInput) (WaveProgress, error) {
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
			child := workflow.ExecuteChildWorkflow(migrationChild(ctx, mi), MigrationWorkflow, mi)
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
		p.ended(st, err, bytes[i])
	}
	p.Done = true
	return p, nil
}
