package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/schollz/progressbar/v3"

	"github.com/pmo-dev/pmo/sim"
	"github.com/pmo-dev/pmo/trace"
)

func simulateCommand() *ffcli.Command {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	def := sim.DefaultConfig()
	tracePath := fs.String("trace", "", "trace CSV, as gen-trace writes it (required)")
	policies := fs.String("policy", strings.Join(sim.PolicyNames, ","), "policies to run, comma-separated: "+strings.Join(sim.PolicyNames, ", "))
	jsonOut := fs.String("json", "", "write the results here as JSON, one object per policy")
	reportOut := fs.String("report", "", "write a self-contained HTML report here")
	markdown := fs.Bool("markdown", false, "print the results as docs/simulator.md's table")
	sweep := fs.Bool("sweep", false, "also run reactive+waves at each of 216 settings (target, headroom, cooldown, lead time) and compare the policies with the cheapest that keeps the p99 wait within -max-wait; -json and -report add that run as \""+tunedName+"\"")
	maxWait := fs.Duration("max-wait", time.Minute, "-sweep: the p99 wait the cheapest reactive+waves setting must keep")
	seed := fs.Uint64("seed", def.Seed, "random seed of the world's noise")
	delay := fs.Duration("provision-delay", def.ProvisionDelay, "median time a connector takes to become ready")
	tick := fs.Duration("tick", def.Tick, "how often policies decide")
	failures := fs.Float64("failure-rate", def.FailureRate, "share of transfers that fail part-way and resume")
	k := sim.DefaultKnobs()
	fs.DurationVar(&k.LeadTime, "lead-time", k.LeadTime, "predictive, scheduled and reactive+waves: lead time (how early a known wave is pre-warmed; the predictive policy learns a longer one from boots)")
	fs.DurationVar(&k.Policy.ScaleInCooldown, "cooldown", k.Policy.ScaleInCooldown, "predictive: scale-in cooldown (0: auto, half the median boot it measured)")
	fs.IntVar(&k.Policy.MinConnectors, "min", k.Policy.MinConnectors, "predictive: the pool's minimum connectors")
	fs.IntVar(&k.Policy.MaxConnectors, "max", k.Policy.MaxConnectors, "predictive: the pool's maximum connectors (0: none)")
	fs.BoolVar(&k.Policy.SLASlack, "sla-slack", k.Policy.SLASlack, "predictive: spend the SLAs' slack: headroom only for migrations that cannot wait for a boot, held for them; the others wait within their grace")
	fs.Float64Var(&k.Quantile, "quantile", k.Quantile, "predictive: plan every site for this demand quantile (0: its strictest tier's)")
	fs.StringVar(&k.Model, "model", k.Model, "predictive: forecasting model for arrivals and bytes (default: the fleet's, count for arrivals and combo for bytes)")
	fs.DurationVar(&k.ForecastEvery, "forecast-every", k.ForecastEvery, "predictive: how often it forecasts again (at least 1h)")
	fs.Float64Var(&k.TargetUtilization, "reactive-target", k.TargetUtilization, "reactive and reactive+waves: target utilisation of task slots")
	fs.IntVar(&k.ReactiveHeadroom, "reactive-headroom", k.ReactiveHeadroom, "reactive and reactive+waves: spare task slots kept at each site")
	fs.DurationVar(&k.ReactiveCooldown, "reactive-cooldown", k.ReactiveCooldown, "reactive and reactive+waves: scale-down stabilisation window")
	fs.IntVar(&k.MinPerSite, "min-per-site", k.MinPerSite, "reactive, reactive+waves and scheduled: connectors each site keeps")
	fs.IntVar(&k.OracleSpare, "oracle-spare", k.OracleSpare, "oracle: task slots kept free at every site, the floor of a policy that cannot see arrivals")
	noise := fs.Float64("rate-noise", def.RateNoise, "σ of the lognormal noise on each migration's transfer rate")
	return &ffcli.Command{
		Name:       "simulate",
		ShortUsage: "starter simulate -trace FILE [-policy reactive,reactive+waves,scheduled,predictive,oracle] [-json F] [-report F] [-markdown] [-sweep [-max-wait D]] [knobs]",
		ShortHelp:  "replay a trace against scaling policies on a simulated clock",
		LongHelp: "Simulate replays the trace's migration requests against a connector fleet run by each\n" +
			"policy, and prints what each cost and how long work waited (see docs/simulator.md).",
		FlagSet: fs,
		Exec: func(ctx context.Context, _ []string) error {
			if *tracePath == "" {
				return fmt.Errorf("-trace: required: a trace CSV, as gen-trace writes it")
			}
			var names []string
			for _, n := range strings.Split(*policies, ",") {
				names = append(names, strings.TrimSpace(n))
			}
			run, err := k.Policies(names)
			if err != nil {
				return fmt.Errorf("-policy: %w", err)
			}
			if k.Quantile < 0 || k.Quantile >= 1 {
				return fmt.Errorf("-quantile: %g must be in [0, 1)", k.Quantile)
			}
			if k.OracleSpare < 0 {
				return fmt.Errorf("-oracle-spare: %d must not be negative", k.OracleSpare)
			}
			f, err := os.Open(*tracePath)
			if err != nil {
				return fmt.Errorf("-trace: %w", err)
			}
			reqs, err := trace.Read(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("-trace: %s: %w", *tracePath, err)
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
			if *markdown {
				fmt.Print(sim.Markdown(results))
			} else {
				printResults(results)
			}
			fmt.Print("\n" + sim.TiersMarkdown(results))
			if *sweep {
				swept, err := sweepReactive(ctx, w, k)
				if err != nil {
					return err
				}
				fmt.Print("\n" + sim.SweepMarkdown(swept, results, *maxWait))
				// The report and the JSON show the baseline the policies were measured
				// against beside them.
				if best, ok := sim.Cheapest(swept, *maxWait); ok {
					best.Result.Name = tunedName
					results = append(results, best.Result)
				}
			}
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

// tunedName is the cheapest reactive+waves setting of a sweep in -json and -report.
const tunedName = "reactive+waves tuned"

// simulate runs each policy in turn with a progress bar over the simulated hours.
func simulate(ctx context.Context, w *sim.World, policies []sim.Policy) ([]sim.Result, error) {
	first, last := w.Requests[0].Arrival, w.Requests[len(w.Requests)-1].Arrival
	hours := int64(last.Sub(first)/time.Hour) + 1
	bar := countBar(hours*int64(len(policies)), "simulating")
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

// sweepReactive runs reactive+waves at every setting of sim.ReactiveGrid, with the
// other knobs of k, a run per CPU at a time, with a progress bar over the runs.
func sweepReactive(ctx context.Context, w *sim.World, k sim.Knobs) ([]sim.Swept, error) {
	grid := sim.ReactiveGrid()
	bar := countBar(int64(len(grid)), "sweeping reactive+waves")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	swept, err := sim.Sweep(w, k, grid, runtime.GOMAXPROCS(0), func() { _ = bar.Add(1) })
	_ = bar.Finish()
	return swept, err
}

// countBar is a progress bar on stderr over n steps, counted, cleared when done.
func countBar(n int64, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(n, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond))
}

func printResults(results []sim.Result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tmigrations\tSLA breaches\twait p50 s\tp95 s\tp99 s\twave breaches\twave p99 s\tad-hoc breaches\tad-hoc p99 s\tconnector-hours\tutilisation\tscale events\trun s\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%d\t%.0f\t%d\t%.0f\t%.1f\t%.0f%%\t%d\t%.1f\t\n", r.Name, r.Migrations, r.SLABreaches,
			r.WaitP50, r.WaitP95, r.WaitP99, r.Wave.SLABreaches, r.Wave.WaitP99, r.Adhoc.SLABreaches, r.Adhoc.WaitP99,
			r.ConnectorHours, 100*r.Utilization, r.ScaleEvents, r.Seconds)
	}
	tw.Flush()
}
