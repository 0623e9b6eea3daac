package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/workflows"
)

// maintenanceCommand imports the maintenance windows of an iCalendar file or URL and
// tells the running fleets, as POST /events/calendar does.
func maintenanceCommand(cfg *config.Config) *ffcli.Command {
	fs := flag.NewFlagSet("import maintenance", flag.ContinueOnError)
	site := fs.String("site", "", "site of events that name none (X-PMO-SITE, LOCATION or CATEGORIES name one)")
	days := fs.Int("days", 90, "import the occurrences of the coming DAYS days")
	name := fs.String("calendar", imports.DefaultCalendar, "the calendar's name: a later import under the same name replaces its windows")
	return &ffcli.Command{
		Name:       "maintenance",
		ShortUsage: "starter import maintenance [-calendar NAME] [-site S] [-days 90] FILE|URL",
		ShortHelp:  "record the maintenance windows of an iCalendar (.ics) file or URL, recurrences expanded (docs/events.md)",
		LongHelp: "Every occurrence in the window becomes a maintenance event, keyed by its UID and start, so\n" +
			"importing the calendar again changes nothing, and windows it no longer holds are cancelled.\n" +
			"A bad event rejects the whole calendar, with\n" +
			"every bad event listed. The running fleets re-plan at once.",
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("name one iCalendar file or URL")
			}
			if *days < 1 || *days > 366 {
				return fmt.Errorf("-days: %d: want 1 to 366", *days)
			}
			from := time.Now().UTC().Truncate(time.Minute)
			if err := imports.CalendarName(*name); err != nil {
				return fmt.Errorf("-calendar: %w", err)
			}
			src := imports.CalendarSource{Name: *name, Site: *site, From: from, To: from.AddDate(0, 0, *days)}
			if strings.Contains(args[0], "://") {
				src.URL = args[0]
			} else {
				src.Path = args[0]
			}
			s, err := store.Open(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer s.Close()
			sites, err := s.Sites(ctx)
			if err != nil {
				return err
			}
			batch, err := activities.CalendarBatch(ctx, s, src, planning.SiteIDs(sites), cfg.CalendarHosts)
			var bad imports.Errors
			if errors.As(err, &bad) {
				for _, e := range bad {
					fmt.Fprintln(os.Stderr, e.Error())
				}
				return fmt.Errorf("%s: %d bad events; nothing imported", args[0], len(bad))
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if len(batch.Events)+len(batch.Close) == 0 {
				fmt.Printf("no maintenance windows from %s to %s\n", src.From.Format(time.RFC3339), src.To.Format(time.RFC3339))
				return nil
			}
			return withTemporal(*cfg, func(tc client.Client) error {
				answer, err := recordEvents(ctx, tc, batch)
				if err != nil {
					return err
				}
				counts := map[string]int{}
				for _, o := range answer.Events {
					counts[o.Status]++
				}
				fmt.Printf("%d maintenance windows from %s to %s: %d recorded, %d updated, %d unchanged, %d cancelled; fleets told: %s\n",
					len(batch.Events), src.From.Format(time.RFC3339), src.To.Format(time.RFC3339), counts[planning.EventRecorded],
					counts[planning.EventUpdated], counts[planning.EventUnchanged], counts[planning.EventCancelled], strings.Join(answer.Fleets, ", "))
				return nil
			})
		},
	}
}

// recordEvents runs EventsWorkflow on a batch and waits for its answer.
func recordEvents(ctx context.Context, tc client.Client, in imports.EventBatch) (workflows.EventsAnswer, error) {
	opts, err := workflows.EventsStartOptions(in)
	if err != nil {
		return workflows.EventsAnswer{}, err
	}
	run, err := tc.ExecuteWorkflow(ctx, opts, workflows.EventsWorkflow, in)
	if err != nil {
		return workflows.EventsAnswer{}, err
	}
	var answer workflows.EventsAnswer
	return answer, run.Get(ctx, &answer)
}
