package workflows

import (
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/pmo-dev/pmo/contract"
)

// WaveBatchWorkflow runs one batch of a wave: it reads its planned migrations a page
// at a time and starts each as a child MigrationWorkflow at its earliest start, then
// waits for them all. The wave's actions (SignalWaveControl) stop or resume its
// starts and go on to its running migrations as their own signals. QueryWave answers
// the batch's share of the wave's progress.
func WaveBatchWorkflow(ctx workflow.Context, in WaveBatchInput) (WaveProgress, error) {
	b := &waveBatch{in: in, logger: workflow.GetLogger(ctx), approve: in.RequireApproval,
		p: WaveProgress{ID: in.Wave, Pool: in.Pool, Attempt: in.Attempt, Paused: in.Paused}}
	if err := workflow.SetQueryHandler(ctx, QueryWave, func() (WaveProgress, error) { return b.p, nil }); err != nil {
		return b.p, err
	}
	onEachSignal(ctx, SignalWaveControl, b.apply)
	if b.loads = workflow.GetVersion(ctx, waveLoadVersion, workflow.DefaultVersion, 1) == 1; b.loads {
		b.id, b.reported = workflow.GetInfo(ctx).WorkflowExecution.ID, -1
		onEachSignal(ctx, SignalAwaitingOperator, b.awaiting)
	}
	if err := b.start(ctx); err != nil {
		return b.p, err
	}
	b.allStarted = true
	b.report(ctx)
	if err := workflow.Await(ctx, func() bool { return b.p.Running == 0 }); err != nil {
		return b.p, err
	}
	b.p.Done = true
	return b.p, nil
}

// waveBatch is a WaveBatchWorkflow's state.
type waveBatch struct {
	in       WaveBatchInput
	logger   log.Logger
	p        WaveProgress
	approve  bool // whether migrations started from now on wait for approval
	children []*waveChild
	// loads says that the batch reports what it holds to the wave and is told of
	// migrations waiting for an operator (waveLoadVersion); id is its workflow ID.
	loads bool
	id    string
	// allStarted says that start has started every migration of the batch; reported
	// is what the batch last told the wave it holds (-1: nothing yet).
	allStarted bool
	reported   int
}

// waveChild is a migration the batch started.
type waveChild struct {
	id      string
	f       workflow.ChildWorkflowFuture
	done    bool
	waiting bool // for an operator
}

// start reads the batch's migrations page by page and starts each at its earliest
// start, waiting while the wave is paused; a cancel stops it.
func (b *waveBatch) start(ctx workflow.Context) error {
	after := b.in.After
	for !b.p.Cancelled {
		var page contract.WavePage
		err := workflow.ExecuteActivity(controlOptions(ctx, time.Minute), fleetActivities.WavePage, contract.WavePageInput{
			Wave: b.in.Wave, After: after, Through: b.in.Through, Limit: WavePageSize, Retry: b.in.Attempt > 0}).Get(ctx, &page)
		if err != nil {
			return err
		}
		for _, id := range page.Missing {
			b.p.refuse("%s: its VM is no longer in the inventory", id)
		}
		for _, m := range page.Migrations {
			if err := b.waitToStart(ctx, m.Planned.EarliestStart); err != nil || b.p.Cancelled {
				return err
			}
			b.startMigration(ctx, m)
		}
		if page.Next == "" || len(page.Migrations)+len(page.Missing) < WavePageSize {
			return nil
		}
		after = page.Next
	}
	return nil
}

// waitToStart waits until at, while the wave is paused and while the batch runs its
// share of the wave's migrations, or until it is cancelled.
func (b *waveBatch) waitToStart(ctx workflow.Context, at time.Time) error {
	for {
		if err := workflow.Await(ctx, func() bool { return b.p.Cancelled || !b.p.Paused && !b.full() }); err != nil {
			return err
		}
		wait := at.Sub(workflow.Now(ctx))
		if b.p.Cancelled || wait <= 0 {
			return nil
		}
		if _, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return b.p.Paused || b.p.Cancelled }); err != nil {
			return err
		}
	}
}

// full says that the batch runs as many migrations as it may; those waiting for an
// operator do not count.
func (b *waveBatch) full() bool {
	return b.in.MaxRunning > 0 && b.p.Running-b.p.AwaitingOperator >= b.in.MaxRunning
}

// awaiting counts a migration that waits for an operator now, or no longer does.
func (b *waveBatch) awaiting(ctx workflow.Context, a AwaitingOperator) {
	for _, c := range b.children {
		if c.id == a.Migration && !c.done && c.waiting != a.Waiting {
			c.waiting = a.Waiting
			if a.Waiting {
				b.p.AwaitingOperator++
			} else {
				b.p.AwaitingOperator--
			}
			b.logger.Info("wave migration awaiting an operator", "migration", a.Migration, "waiting", a.Waiting,
				"awaiting_operator", b.p.AwaitingOperator)
			b.report(ctx)
		}
	}
}

// report tells the wave what the batch holds of max_running once it has started all
// its migrations: first, then each time that falls by a quarter of its share (or to
// nothing) or rises, so that the wave hears of it a handful of times per batch.
func (b *waveBatch) report(ctx workflow.Context) {
	if !b.loads || !b.allStarted || b.p.Running == 0 {
		return // the wave counts a batch's end itself
	}
	held := b.p.Running - b.p.AwaitingOperator
	fell := held <= b.reported-max(1, b.in.MaxRunning/4) || held == 0 && b.reported > 0
	if b.reported >= 0 && held <= b.reported && !fell {
		return
	}
	b.reported = held
	err := workflow.SignalExternalWorkflow(ctx, WaveWorkflowID(b.in.Wave), "", SignalWaveBatchLoad,
		WaveBatchLoad{Batch: b.id, Held: held}).Get(ctx, nil)
	if err != nil {
		b.logger.Warn("wave not told what the batch holds", "held", held, "error", err)
	}
}

// onEachSignal handles every signal of that name, in order, in a coroutine of its own
// that lasts as long as the workflow.
func onEachSignal[T any](ctx workflow.Context, name string, handle func(workflow.Context, T)) {
	ch := workflow.GetSignalChannel(ctx, name)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			var v T
			ch.Receive(gctx, &v)
			handle(gctx, v)
		}
	})
}

// startMigration starts one planned migration as a child and counts it when it ends.
func (b *waveBatch) startMigration(ctx workflow.Context, m contract.WaveMigration) {
	req := MigrationRequest{ID: RetryMigrationID(m.Planned.ID, b.in.Attempt), VMID: m.VM.ID, RequireApproval: b.approve}
	mi, err := NewMigrationInput(b.in.Pool, req, m.VM)
	if err == nil {
		err = CheckSource(req, m.VM)
	}
	if err != nil {
		b.p.refuse("%s: %v", req.ID, err)
		return
	}
	// A retry writes where the planned migration wrote, so that it resumes from what
	// the failed try copied.
	mi.Planned, mi.Wave, mi.WaveBatch, mi.Destination = true, b.in.Wave, b.id, Destination(m.VM.ID, m.Planned.ID)
	f := workflow.ExecuteChildWorkflow(migrationChild(ctx, mi), MigrationWorkflow, mi)
	c := &waveChild{id: MigrationWorkflowID(mi.ID), f: f}
	b.children = append(b.children, c)
	b.p.Started++
	b.p.Running++
	// Not waited for here: the migrations due together start in one workflow task.
	workflow.Go(ctx, func(gctx workflow.Context) {
		if err := f.GetChildWorkflowExecution().Get(gctx, nil); err != nil {
			b.p.Started--
			b.p.refuse("%s: not started: %v", mi.ID, err)
		} else {
			var st MigrationStatus
			err := f.Get(gctx, &st)
			b.p.ended(st, err, mi.Bytes)
		}
		c.done = true
		b.p.Running--
		if c.waiting {
			b.p.AwaitingOperator--
		}
		b.report(gctx)
	})
}

// apply takes one of the wave's actions and passes it on to the running migrations
// as their own signal; one the batch is in already changes nothing.
func (b *waveBatch) apply(ctx workflow.Context, c WaveControl) {
	switch c.Action {
	case SignalPause:
		if b.p.Paused {
			return
		}
		b.p.Paused = true
	case SignalResume:
		if !b.p.Paused {
			return
		}
		b.p.Paused = false
	case SignalCancel:
		if b.p.Cancelled {
			return
		}
		b.p.Cancelled = true
	case SignalApprove:
		if b.p.Approved {
			return
		}
		b.p.Approved, b.approve = true, false
	default:
		b.logger.Warn("wave action ignored", "action", c.Action)
		return
	}
	b.logger.Info("wave "+c.Action+" passed to the batch's migrations", "wave", b.in.Wave, "who", c.Who)
	var sent []workflow.Future
	// SignalChildWorkflow waits for a child still starting.
	for _, child := range b.children {
		if !child.done {
			sent = append(sent, child.f.SignalChildWorkflow(ctx, c.Action, c.Control))
		}
	}
	for _, f := range sent {
		if err := f.Get(ctx, nil); err != nil {
			// The migration ended meanwhile.
			b.logger.Warn("wave action not passed to a migration", "action", c.Action, "error", err)
		}
	}
}
