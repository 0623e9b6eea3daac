package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/planning"
)

// overrideCommand tells the fleet better for a while, through the API (POST
// /overrides): pin a site's connector count, pause or resume autoscaling, or drain a
// connector. Every override ends: -ttl says when.
func overrideCommand(cfg *config.Config, stdout io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("override", flag.ContinueOnError)
	site := fs.String("site", "", "the site to pin")
	connector := fs.String("connector", "", "the connector to drain")
	minN := fs.Int("min", 0, "pin: at least this many connectors")
	maxN := fs.Int("max", 0, "pin: at most this many connectors")
	ttl := fs.Duration("ttl", 0, "how long the override lasts, e.g. 2h (required)")
	why := fs.String("why", "", "why, for the audit trail (required)")
	who := fs.String("who", "", "who acts (default: your user name)")
	api := apiFlag(fs)
	return &ffcli.Command{
		Name:       "override",
		ShortUsage: "starter override pin|pause|resume|drain -ttl 2h -why TEXT [-site S -min N -max N] [-connector ID]",
		LongHelp: "Examples:\n  starter override pin -site ams1 -min 2 -max 6 -ttl 4h -why 'wave 3'\n" +
			"  starter override pause -ttl 30m -why 'storage maintenance'\n  starter override drain -connector default-ams1-2 -ttl 1h -why 'host reboot'",
		ShortHelp: "pin a site's connector count, pause or resume autoscaling, or drain a connector, for a while (through the API)",
		FlagSet:   fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return usagef("override takes one kind: pin, pause, resume or drain")
			}
			// The kind comes first, its flags after it: parse them now.
			kind := args[0]
			if stray, err := parseAfter(fs, args[1:]); err != nil {
				return err
			} else if stray != "" {
				return usagef("override takes one kind, then its flags; got %q after them", stray)
			}
			switch kind {
			case planning.OverridePin, planning.OverridePause, planning.OverrideResume, planning.OverrideDrain:
			default:
				return usagef("override: unknown kind %q: want pin, pause, resume or drain", kind)
			}
			if *ttl <= 0 {
				return usagef("-ttl is required: every override ends (e.g. -ttl 2h)")
			}
			c, err := newAPIClient(cfg, *api)
			if err != nil {
				return err
			}
			body := map[string]any{"kind": kind, "site": *site, "connector_id": *connector, "min": *minN, "max": *maxN,
				"who": whoActs(*who), "why": *why, "ttl": ttl.String()}
			var o planning.Override
			if _, err := c.call(ctx, "POST", "/overrides", body, &o); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "override %s (%s) until %s\n", o.ID, kind, o.Expires.Format(time.RFC3339))
			return nil
		},
	}
}
