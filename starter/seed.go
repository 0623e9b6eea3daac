package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/demo"
	"github.com/pmo-dev/pmo/store"
)

// defaultShape is the Azure trace, relative to the repository root where make runs.
const defaultShape = "../shared/data/traces/azure2019-vm-cpu-5min.csv"

func seedCommand(cfg *config.Config) *ffcli.Command {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	nowFlag := fs.String("now", "", "end of the history, RFC3339, truncated to the hour (default: the current hour)")
	seed := fs.Uint64("seed", 1, "random seed; the same -seed and -now give the same data")
	vms := fs.Int("vms", 600, "number of VMs in the inventory")
	disks := fs.String("disks", "", "folder for the demo disk images (default: $PMO_DATA_DIR/disks)")
	shape := fs.String("shape", defaultShape, "CPU trace whose daily and weekly shape the history's arrivals follow")
	return &ffcli.Command{
		Name:       "seed",
		ShortUsage: "starter seed [-now RFC3339] [-seed N] [-vms N] [-disks DIR] [-shape CSV]",
		ShortHelp:  "seed the demo data set and disk images into an empty database",
		LongHelp: "Seed writes three sites (in the pool PMO_POOL names), the SLA tiers, an inventory of VMs, four weeks of migration\n" +
			"history and a maintenance window, and a disk image file per VM (see docs/demo.md).\n" +
			"A database that already has sites is left as it is.",
		FlagSet: fs,
		Exec: func(ctx context.Context, _ []string) error {
			now := time.Now()
			if *nowFlag != "" {
				t, err := time.Parse(time.RFC3339, *nowFlag)
				if err != nil {
					return fmt.Errorf("-now: want an RFC3339 time such as 2026-11-24T10:00:00Z, got %q", *nowFlag)
				}
				now = t
			}
			if *vms < 1 {
				return fmt.Errorf("-vms: want at least 1 VM, got %d", *vms)
			}
			dir := *disks
			if dir == "" {
				dir = filepath.Join(cfg.DataDir, "disks")
			}
			dir, err := filepath.Abs(dir)
			if err != nil {
				return fmt.Errorf("-disks: %w", err)
			}

			s, err := store.Open(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer s.Close()
			empty, err := s.IsEmpty(ctx)
			if err != nil {
				return err
			}
			if !empty {
				fmt.Println("database already seeded; leaving it as it is")
				return nil
			}
			// The trace is read only now: a seeded database does not need it.
			sh, err := demo.LoadShape(*shape)
			if err != nil {
				return fmt.Errorf("-shape: %w", err)
			}
			data, err := demo.Generate(demo.Params{Now: now, Seed: *seed, VMs: *vms, DisksDir: dir, Pool: cfg.Pool}, sh)
			if err != nil {
				return err
			}
			// Disks first: a VM row must never point at a missing image.
			disk, err := demo.WriteDisks(ctx, data.VMs, *seed)
			if err != nil {
				return err
			}
			if err := s.Seed(ctx, data); errors.Is(err, store.ErrNotEmpty) {
				fmt.Println("database already seeded; leaving it as it is")
				return nil
			} else if err != nil {
				return err
			}
			fmt.Printf("seeded %d sites, %d VMs, %d history rows and %d system event(s); %d disk images, %.1f MiB in %s (%d written)\n",
				len(data.Sites), len(data.VMs), len(data.History), len(data.Events),
				disk.Files, float64(disk.Bytes)/(1<<20), dir, disk.Written)
			return nil
		},
	}
}
