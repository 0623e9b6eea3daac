package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// waveCommands are `starter wave submit|watch`: a planned wave as one workflow,
// through the API (POST /waves, GET /waves/{id}).
func waveCommands(cfg *config.Config, stdout io.Writer) *ffcli.Command {
	return &ffcli.Command{
		Name:       "wave",
		ShortUsage: "starter wave submit|watch [flags] ID",
		ShortHelp:  "run a wave planned with POST /forecast (plan: true) as one workflow, and watch it (through the API, with PMO_API_KEY)",
		Subcommands: []*ffcli.Command{
			waveStepCommand(cfg, stdout, "submit", "start the wave's workflow (once: again starts nothing); -watch follows it to its end"),
			waveStepCommand(cfg, stdout, "watch", "follow a wave's progress until it ends; exit 1 unless every migration succeeded"),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
}

// waveState is what the commands read of POST /waves and GET /waves/{id}.
type waveState struct {
	workflows.WaveProgress
	WebUI string `json:"web_ui"`
}

func (w waveState) String() string {
	return fmt.Sprintf("wave %s: %d started, %d running, %d succeeded, %d failed (%d past their SLA), %d refused, %d bytes done",
		w.ID, w.Started, w.Running, w.Succeeded, w.Failed, w.Breached, len(w.Refused), w.BytesDone)
}

func waveStepCommand(cfg *config.Config, stdout io.Writer, name, help string) *ffcli.Command {
	fs := flag.NewFlagSet("wave "+name, flag.ContinueOnError)
	interval := fs.Duration("interval", 2*time.Second, "how often to look")
	watch := name == "watch"
	if name == "submit" {
		fs.BoolVar(&watch, "watch", false, "follow the wave to its end")
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
				if _, err := c.call(ctx, "POST", "/waves", map[string]string{"id": args[0]}, &w); err != nil {
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
			if w.Failed > 0 || len(w.Refused) > 0 {
				return fmt.Errorf("wave %s ended: %d of %d migrations failed, %d refused", id, w.Failed, w.Started, len(w.Refused))
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
