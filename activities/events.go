package activities

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/validation"
)

// EventStore is what the events activities read and write; *store.Store implements it.
type EventStore interface {
	// Sites returns every site, ordered by ID.
	Sites(ctx context.Context) ([]planning.SiteInfo, error)
	// Events returns the events that overlap [from, to), cancelled ones left out.
	Events(ctx context.Context, from, to time.Time) ([]planning.KeyedEvent, error)
	// RecordEvents records events and closes others in one transaction.
	RecordEvents(ctx context.Context, events []planning.KeyedEvent, closes []planning.EventClose) ([]planning.EventOutcome, error)
	// InsertPlanChanges records what events did to a pool's plan, once.
	InsertPlanChanges(ctx context.Context, pool string, changes []planning.EventPlanChange) error
}

// Events holds the activities that record live system events and tell the fleets.
type Events struct {
	Store EventStore
	// Temporal finds the running fleet workflows through visibility.
	Temporal client.Client
	Logger   *slog.Logger
	// Uploads is the folder where the web server stages calendar files; RecordEvents
	// opens nothing else.
	Uploads string
	// CalendarHosts are the hosts a calendar URL may name; none means any public one.
	CalendarHosts []string
}

// NewEvents returns the events activities.
func NewEvents(s EventStore, tc client.Client, cfg config.Config, logger *slog.Logger) *Events {
	return &Events{Store: s, Temporal: tc, Logger: logger, Uploads: config.UploadsDir(cfg), CalendarHosts: cfg.CalendarHosts}
}

// RecordEvents checks the batch and records it in one transaction. An event at an
// unknown site refuses the whole batch (a NotFound error naming the field) unless
// SkipUnknownSites is set. Recording the same batch again changes nothing.
func (a *Events) RecordEvents(ctx context.Context, in imports.EventBatch) (_ contract.RecordEventsResult, err error) {
	sites, err := a.Store.Sites(ctx)
	if err != nil {
		return contract.RecordEventsResult{}, err
	}
	known := planning.SiteIDs(sites)
	if c := in.Calendar; c != nil {
		if c.Path != "" {
			if err := staged(a.Uploads, c.Path); err != nil {
				return contract.RecordEventsResult{}, err
			}
			// Recorded or refused, the file has served; a retry after a lost
			// answer finds the events recorded and no file, and says so.
			defer func() {
				if err == nil || temporal.IsApplicationError(err) {
					unstage(a.Logger, c.Path)
				}
			}()
		}
		batch, err := CalendarBatch(ctx, a.Store, *c, known, a.CalendarHosts)
		if err != nil {
			return contract.RecordEventsResult{}, err
		}
		in.Events, in.Close = append(in.Events, batch.Events...), append(in.Close, batch.Close...)
	}
	if n := len(in.Events) + len(in.Close); n > planning.MaxEventBatch {
		return contract.RecordEventsResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%d events in one batch, over the %d allowed", n, planning.MaxEventBatch), validation.ApplicationErrorType, nil)
	}
	var res contract.RecordEventsResult
	events := make([]planning.KeyedEvent, 0, len(in.Events))
	for i, e := range in.Events {
		prefix := fmt.Sprintf("[%d].", i)
		if err := e.Validate(prefix); err != nil {
			return contract.RecordEventsResult{}, invalidField(validation.ApplicationErrorType, err)
		}
		if !slices.Contains(known, e.Site) {
			if in.SkipUnknownSites {
				res.Skipped = append(res.Skipped, planning.SkippedEvent{Key: e.Key, Site: e.Site, Reason: "no site " + e.Site + " in PMO's inventory"})
				continue
			}
			return contract.RecordEventsResult{}, invalidField(validation.NotFoundErrorType,
				validation.Field(prefix+"site", "no site %q; known sites: %s", e.Site, strings.Join(known, ", ")))
		}
		events = append(events, e)
	}
	if res.Outcomes, err = a.Store.RecordEvents(ctx, events, in.Close); err != nil {
		return contract.RecordEventsResult{}, err
	}
	for _, o := range res.Outcomes {
		a.Logger.Info("system event", "id", o.Key, "site", o.Site, "kind", o.Kind, "status", o.Status)
	}
	return res, nil
}

// invalidField fails an activity for good with the field and reason as details.
func invalidField(errType string, err error) error {
	fe, _ := err.(*validation.Error)
	return temporal.NewNonRetryableApplicationError(err.Error(), errType, nil, fe)
}

// RunningFleets lists the fleet workflows that run now, through Temporal's visibility.
func (a *Events) RunningFleets(ctx context.Context, in contract.RunningFleetsInput) (contract.RunningFleetsResult, error) {
	var res contract.RunningFleetsResult
	req := &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", in.WorkflowType),
	}
	for {
		page, err := a.Temporal.ListWorkflow(ctx, req)
		if err != nil {
			return contract.RunningFleetsResult{}, fmt.Errorf("list fleet workflows: %w", err)
		}
		for _, e := range page.GetExecutions() {
			res.WorkflowIDs = append(res.WorkflowIDs, e.GetExecution().GetWorkflowId())
		}
		if len(page.GetNextPageToken()) == 0 {
			break
		}
		req.NextPageToken = page.GetNextPageToken()
	}
	slices.Sort(res.WorkflowIDs)
	res.WorkflowIDs = slices.Compact(res.WorkflowIDs)
	return res, nil
}

// RecordPlanChanges writes the plan changes that events caused; a retry adds nothing.
func (a *Events) RecordPlanChanges(ctx context.Context, in contract.RecordPlanChangesInput) error {
	return a.Store.InsertPlanChanges(ctx, in.Pool, in.Changes)
}
