package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/contract"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// waveCommands are `starter wave submit|watch|pause|resume|cancel|approve|retry|report|list`:
// a planned wave as one workflow, through the API (POST /waves and /waves/{id}/...).
func waveCommands(cfg *config.Config, stdout io.Writer) *ffcli.Command {
	return &ffcli.Command{
		Name:       "wave",
		ShortUsage: "starter wave submit|watch|pause|resume|cancel|approve|retry|report|list [flags] ID",
		ShortHelp:  "run a wave planned with POST /forecast (plan: true) as one workflow, watch and steer it (through the API, with PMO_API_KEY)",
		Subcommands: []*ffcli.Command{
			waveStepCommand(cfg, stdout, "submit", "start the wave's workflow (once: again starts nothing); -watch follows it to its end"),
			waveStepCommand(cfg, stdout, "watch", "follow a wave's progress until it ends; exit 1 unless every migration succeeded"),
			controlCommand(cfg, stdout, "wave", "pause", "pause a whole wave: its running copies pause, keeping what they copied, and no more start"),
			controlCommand(cfg, stdout, "wave", "resume", "resume a paused wave"),
			controlCommand(cfg, stdout, "wave", "cancel", "cancel a whole wave: its running copies are cancelled and removed, and no more start"),
			controlCommand(cfg, stdout, "wave", "approve", "approve the cutover of every migration of a wave submitted with -require-approval"),
			controlCommand(cfg, stdout, "wave", workflows.WaveRetry, "run a wave's failed migrations again, from their partial copies"),
			waveReportCommand(cfg, stdout),
			waveListCommand(cfg, stdout),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
}

// waveState is what the commands read of POST /waves and GET /waves/{id}.
type waveState struct {
	workflows.WaveProgress
	WebUI string `json:"web_ui"`
}

// refused counts the refusals; a wave run before the count had only the list.
func (w waveState) refused() int { return max(w.RefusedCount, len(w.Refused)) }

func (w waveState) String() string {
	line := fmt.Sprintf("wave %s: %d started, %d running, %d succeeded, %d failed (%d past their SLA), %d refused, %d bytes done",
		w.ID, w.Started, w.Running, w.Succeeded, w.Failed, w.Breached, w.refused(), w.BytesDone)
	switch {
	case w.Cancelled:
		line += ", cancelled"
	case w.Paused:
		line += ", paused"
	}
	return line
}

func waveStepCommand(cfg *config.Config, stdout io.Writer, name, help string) *ffcli.Command {
	fs := flag.NewFlagSet("wave "+name, flag.ContinueOnError)
	interval := fs.Duration("interval", 2*time.Second, "how often to look")
	watch := name == "watch"
	if name == "submit" {
		fs.BoolVar(&watch, "watch", false, "follow the wave to its end")
	}
	var approval bool
	var maxRunning int
	if name == "submit" {
		fs.BoolVar(&approval, "require-approval", false, "each migration's cutover waits for `starter wave approve`")
		fs.IntVar(&maxRunning, "max-running", 0, fmt.Sprintf("the most of the wave's migrations running at once (0: %d)", workflows.DefaultWaveMaxRunning))
	}
	api := apiFlag(fs)
	return &ffcli.Command{
		Name:       name,
		ShortUsage: "starter wave " + name + " [flags] ID",
		ShortHelp:  help,
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return usagef("wave %s takes the wave's ID (its POST /forecast id)", name)
			}
			if err := validation.ID("id", args[0]); err != nil {
				return usagef("%v", err)
			}
			if *interval < 100*time.Millisecond {
				return usagef("-interval must be at least 100ms, got %s", *interval)
			}
			c, err := newAPIClient(cfg, *api)
			if err != nil {
				return err
			}
			var w waveState
			if name == "submit" {
				body := map[string]any{"id": args[0], "require_approval": approval, "max_running": maxRunning}
				if _, err := c.call(ctx, "POST", "/waves", body, &w); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "wave %s started: %s\n", args[0], w.WebUI)
			}
			if !watch {
				return nil
			}
			return watchWave(ctx, c, args[0], *interval, stdout)
		},
	}
}

// watchWave prints the wave's progress whenever it changes until it ends, and its
// refusals; it fails unless every migration succeeded.
func watchWave(ctx context.Context, c *apiClient, id string, interval time.Duration, out io.Writer) error {
	last := ""
	for {
		var w waveState
		if _, err := c.call(ctx, "GET", "/waves/"+url.PathEscape(id), nil, &w); err != nil {
			return err
		}
		if line := w.String(); line != last {
			fmt.Fprintln(out, line)
			last = line
		}
		if w.Done {
			for _, r := range w.Refused {
				fmt.Fprintln(out, "refused: "+r)
			}
			if w.Failed > 0 || w.refused() > 0 {
				return fmt.Errorf("wave %s ended: %d of %d migrations failed, %d refused", id, w.Failed, w.Started, w.refused())
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

func waveReportCommand(cfg *config.Config, stdout io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("wave report", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	api := apiFlag(fs)
	return &ffcli.Command{
		Name:       "report",
		ShortUsage: "starter wave report [-json] ID",
		ShortHelp:  "print a wave's end-of-wave report: outcomes, bytes, time against the plan, breaches, connectors, actions",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return usagef("wave report takes the wave's ID")
			}
			if err := validation.ID("id", args[0]); err != nil {
				return usagef("%v", err)
			}
			c, err := newAPIClient(cfg, *api)
			if err != nil {
				return err
			}
			var r contract.WaveReport
			if _, err := c.call(ctx, "GET", "/waves/"+url.PathEscape(args[0])+"/report", nil, &r); err != nil {
				return err
			}
			if *asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			printWaveReport(stdout, r)
			return nil
		},
	}
}

// printWaveReport writes a report for a reader.
func printWaveReport(out io.Writer, r contract.WaveReport) {
	o := r.Outcomes
	fmt.Fprintf(out, "wave %s (pool %s): %d planned: %d succeeded, %d past their SLA, %d failed, %d cancelled, %d not run; %d retried\n",
		r.Wave, r.Pool, r.Planned, o.Succeeded, o.Breached, o.Failed, o.Cancelled, o.NotRun, r.Retried)
	fmt.Fprintf(out, "ran %s to %s (%s, %d attempt(s)); planned %s to %s",
		r.StartedAt.Format(time.RFC3339), r.EndedAt.Format(time.RFC3339), r.EndedAt.Sub(r.StartedAt).Round(time.Second), r.Attempts,
		r.PlannedStart.Format(time.RFC3339), r.PlannedDeadline.Format(time.RFC3339))
	if r.LateSeconds > 0 {
		fmt.Fprintf(out, "; ended %s past the deadline", (time.Duration(r.LateSeconds) * time.Second).Round(time.Second))
	}
	if r.Cancelled {
		fmt.Fprint(out, "; cancelled")
	}
	fmt.Fprintf(out, "\n%d bytes copied by %d connector(s)\n", r.Bytes, len(r.Connectors))
	for _, c := range r.Connectors {
		fmt.Fprintf(out, "  connector %s: %d migration(s), %d bytes\n", c.ID, c.Migrations, c.Bytes)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(out, "  failed %s (VM %s): %s\n", f.ID, f.VMID, f.Detail)
	}
	for _, c := range r.Controls {
		fmt.Fprintf(out, "  %s %s by %s: %s\n", c.At.Format(time.RFC3339), c.Action, c.Who, c.Why)
	}
}

func waveListCommand(cfg *config.Config, stdout io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("wave list", flag.ContinueOnError)
	limit := fs.Int("limit", 50, "how many, newest first")
	api := apiFlag(fs)
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "starter wave list [-limit N]",
		ShortHelp:  "list the newest waves with their progress",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 0 {
				return usagef("wave list takes no arguments, got %q", args[0])
			}
			if *limit < 1 || *limit > 500 {
				return usagef("-limit must be 1 to 500, got %d", *limit)
			}
			c, err := newAPIClient(cfg, *api)
			if err != nil {
				return err
			}
			var waves []struct {
				waveState
				Status string `json:"status"`
			}
			if _, err := c.call(ctx, "GET", fmt.Sprintf("/waves?limit=%d", *limit), nil, &waves); err != nil {
				return err
			}
			for _, w := range waves {
				fmt.Fprintf(stdout, "%s [%s]\n", w.waveState, w.Status)
			}
			return nil
		},
	}
}
