package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/schollz/progressbar/v3"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/sim"
	"github.com/pmo-dev/pmo/trace"
)

// policyNames are the simulator's policies, in the order results are shown.
var policyNames = []string{"reactive", "scheduled", "predictive", "oracle"}

func simulateCommand() *ffcli.Command {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	def := sim.DefaultConfig()
	tracePath := fs.String("trace", "", "trace CSV, as gen-trace writes it (required)")
	policies := fs.String("policy", strings.Join(policyNames, ","), "policies to run, comma-separated: "+strings.Join(policyNames, ", "))
	jsonOut := fs.String("json", "", "write the results here as JSON, one object per policy")
	reportOut := fs.String("report", "", "write a self-contained HTML report here")
	seed := fs.Uint64("seed", def.Seed, "random seed of the world's noise")
	delay := fs.Duration("provision-delay", def.ProvisionDelay, "median time a connector takes to become ready")
	tick := fs.Duration("tick", def.Tick, "how often policies decide")
	failures := fs.Float64("failure-rate", def.FailureRate, "share of transfers that fail part-way and resume")
	lead := fs.Duration("lead-time", 5*time.Minute, "predictive and scheduled: lead time (the predictive policy learns a longer one from boots)")
	cooldown := fs.Duration("cooldown", 2*time.Minute, "predictive: scale-in cooldown")
	minConns := fs.Int("min", 0, "predictive: the pool's minimum connectors")
	maxConns := fs.Int("max", 0, "predictive: the pool's maximum connectors (0: none)")
	quantile := fs.Float64("quantile", 0, "predictive: plan every site for this demand quantile (0: its strictest tier's)")
	model := fs.String("model", "", "predictive: forecasting model (default: the engine's default)")
	every := fs.Duration("forecast-every", 6*time.Hour, "predictive: how often it forecasts again (at least 1h)")
	noise := fs.Float64("rate-noise", def.RateNoise, "σ of the lognormal noise on each migration's transfer rate")
	target := fs.Float64("reactive-target", 0.8, "reactive: target utilisation of task slots")
	reactiveCooldown := fs.Duration("reactive-cooldown", 5*time.Minute, "reactive: scale-down stabilisation window")
	minPerSite := fs.Int("min-per-site", 1, "reactive and scheduled: connectors each site keeps")
	return &ffcli.Command{
		Name:       "simulate",
		ShortUsage: "starter simulate -trace FILE [-policy reactive,scheduled,predictive,oracle] [-json F] [-report F] [knobs]",
		ShortHelp:  "replay a trace against scaling policies on a simulated clock",
		LongHelp: "Simulate replays the trace's migration requests against a connector fleet run by each\n" +
			"policy, and prints what each cost and how long work waited (see docs/simulator.md).",
		FlagSet: fs,
		Exec: func(ctx context.Context, _ []string) error {
			if *tracePath == "" {
				return fmt.Errorf("-trace: required: a trace CSV, as gen-trace writes it")
			}
			var run []sim.Policy
			for _, name := range strings.Split(*policies, ",") {
				switch strings.TrimSpace(name) {
				case "reactive":
					run = append(run, &sim.Reactive{TargetUtilization: *target, Cooldown: *reactiveCooldown, MinPerSite: *minPerSite})
				case "scheduled":
					run = append(run, &sim.Scheduled{LeadTime: *lead, MinPerSite: *minPerSite})
				case "predictive":
					p := planning.DefaultPolicy()
					p.ScaleInCooldown, p.MinConnectors, p.MaxConnectors = *cooldown, *minConns, *maxConns
					run = append(run, &sim.Predictive{Policy: p, LeadTime: *lead, Model: *model, Horizon: 48, Quantile: *quantile,
						ForecastEvery: *every})
				case "oracle":
					run = append(run, &sim.Oracle{})
				default:
					return fmt.Errorf("-policy: unknown policy %q; want some of %s", name, strings.Join(policyNames, ", "))
				}
			}
			if *quantile < 0 || *quantile >= 1 {
				return fmt.Errorf("-quantile: %g must be in [0, 1)", *quantile)
			}
			f, err := os.Open(*tracePath)
			if err != nil {
				return fmt.Errorf("-trace: %w", err)
			}
			reqs, err := trace.Read(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", *tracePath, err)
			}
			cfg := def
			cfg.Seed, cfg.ProvisionDelay, cfg.Tick, cfg.FailureRate, cfg.RateNoise = *seed, *delay, *tick, *failures, *noise
			w, err := sim.NewWorld(reqs, cfg)
			if err != nil {
				return err
			}
			results, err := simulate(ctx, w, run)
			if err != nil {
				return err
			}
			printResults(results)
			if *jsonOut != "" {
				b, err := json.MarshalIndent(results, "", "  ")
				if err != nil {
					return err
				}
				if err := writeFile(*jsonOut, func(w io.Writer) error { _, err := w.Write(append(b, '\n')); return err }); err != nil {
					return fmt.Errorf("-json: %w", err)
				}
			}
			if *reportOut != "" {
				b, err := sim.Report(w, results)
				if err != nil {
					return err
				}
				if err := writeFile(*reportOut, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
					return fmt.Errorf("-report: %w", err)
				}
			}
			return nil
		},
	}
}

// simulate runs each policy in turn with a progress bar over the simulated hours.
func simulate(ctx context.Context, w *sim.World, policies []sim.Policy) ([]sim.Result, error) {
	first, last := w.Requests[0].Arrival, w.Requests[len(w.Requests)-1].Arrival
	hours := int64(last.Sub(first)/time.Hour) + 1
	bar := progressbar.NewOptions64(hours*int64(len(policies)), progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription("simulating"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond))
	var out []sim.Result
	for i, p := range policies {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w.Config.Progress = func(now, _ time.Time) {
			bar.Describe("simulating " + p.Name())
			_ = bar.Set64(int64(i)*hours + int64(now.Sub(first)/time.Hour))
		}
		res, err := sim.Run(w, p)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	_ = bar.Finish()
	return out, nil
}

func printResults(results []sim.Result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tmigrations\tSLA breaches\twait p50 s\tp95 s\tp99 s\tconnector-hours\tutilisation\tscale events\trun s\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.1f\t%.0f%%\t%d\t%.1f\t\n", r.Name, r.Migrations, r.SLABreaches,
			r.WaitP50, r.WaitP95, r.WaitP99, r.ConnectorHours, 100*r.Utilization, r.ScaleEvents, r.Seconds)
	}
	tw.Flush()
}
