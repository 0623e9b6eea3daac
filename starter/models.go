package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/store"
)

// modelsCommand measures the planner's learned models on the database's history, as
// the fleet does before it uses them, and prints what it found.
func modelsCommand(cfg *config.Config) *ffcli.Command {
	fs := flag.NewFlagSet("models", flag.ContinueOnError)
	pool := fs.String("pool", cfg.Pool, "connector pool whose connector metrics fit the resource model")
	at := fs.String("now", "", "measure as of this RFC 3339 time (default: now)")
	return &ffcli.Command{
		Name:       "models",
		ShortUsage: "starter models [-pool P] [-now T]",
		ShortHelp:  "train and measure the rate and resource models on DATABASE_URL's history",
		FlagSet:    fs,
		Exec: func(ctx context.Context, _ []string) error {
			now := time.Now().UTC()
			if *at != "" {
				t, err := time.Parse(time.RFC3339, *at)
				if err != nil {
					return fmt.Errorf("-now: must be an RFC 3339 time such as 2026-11-25T08:00:00Z, got %q", *at)
				}
				now = t.UTC()
			}
			s, err := store.Open(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer s.Close()
			obs, err := s.RateHistory(ctx, now.Add(-activities.HistoryWindow), activities.RateSamples)
			if err != nil {
				return err
			}
			if _, acc, err := planning.TrainRateModel(obs); err != nil {
				fmt.Println(err)
			} else {
				fmt.Printf("%s; trained on %d migrations in %.2f s\n", acc, acc.TrainingRows, acc.TrainingSeconds)
			}
			samples, err := s.ResourceSamples(ctx, *pool, now.Add(-activities.AccuracyWindow), activities.ResourceSamples)
			if err != nil {
				return err
			}
			m, err := planning.FitResources(samples)
			if err != nil {
				fmt.Println(err)
				return nil
			}
			fmt.Printf("resource model on %d samples of pool %s (%d held out):\n", m.Samples, *pool, m.Held)
			fmt.Printf("  CPU     = %.0f + %.1f per MiB/s + %.1f per task millicores (held-out median error %.0f)\n",
				m.CPUMillis.Base, m.CPUMillis.PerMiBs, m.CPUMillis.PerTask, m.CPUMillis.MedianAbsError)
			mb := func(v float64) float64 { return v / (1 << 20) }
			fmt.Printf("  RAM     = %.1f + %.2f per MiB/s + %.2f per task MiB (held-out median error %.2f)\n",
				mb(m.RAMBytes.Base), mb(m.RAMBytes.PerMiBs), mb(m.RAMBytes.PerTask), mb(m.RAMBytes.MedianAbsError))
			fmt.Printf("  storage = %.1f + %.2f per MiB/s + %.2f per task MiB (held-out median error %.2f)\n",
				mb(m.StorageBytes.Base), mb(m.StorageBytes.PerMiBs), mb(m.StorageBytes.PerTask), mb(m.StorageBytes.MedianAbsError))
			for _, size := range planning.Sizes {
				cpu, ram, storage := m.Need(size)
				fmt.Printf("  %-6s at full load: %.0f of %d millicores, %.0f of %d MiB RAM, %.0f of %d MiB storage\n", size.Name,
					cpu, size.CPUMillis, mb(ram), size.RAMBytes>>20, mb(storage), size.StorageBytes>>20)
			}
			return nil
		},
	}
}
