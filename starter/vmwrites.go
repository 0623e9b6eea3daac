package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store"
)

// vmWritesCommand plays a running VM for the demo: it writes into the VM's disk image
// while it is migrated, so that the cutover has changed blocks to sync.
func vmWritesCommand(cfg *config.Config) *ffcli.Command {
	fs := flag.NewFlagSet("vm-writes", flag.ContinueOnError)
	vm := fs.String("vm", "", "the VM whose disk changes (required)")
	blocks := fs.Int("blocks", 4, "64 KiB blocks written each time")
	every := fs.Duration("every", 2*time.Second, "how often the VM writes")
	total := fs.Duration("for", time.Minute, "how long it keeps writing")
	seed := fs.Uint64("seed", 1, "random seed for what and where it writes")
	return &ffcli.Command{
		Name:       "vm-writes",
		ShortUsage: "starter vm-writes -vm ID [-blocks 4] [-every 2s] [-for 1m]",
		ShortHelp:  "write into a demo VM's disk image as a running VM would, to see the cutover sync the changes",
		FlagSet:    fs,
		Exec: func(ctx context.Context, _ []string) error {
			switch {
			case *vm == "":
				return errors.New("-vm: name the VM, e.g. vm-0001")
			case *blocks < 1:
				return fmt.Errorf("-blocks: must be at least 1, got %d", *blocks)
			case *every <= 0 || *total <= 0:
				return errors.New("-every and -for: must be positive durations")
			}
			s, err := store.Open(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer s.Close()
			v, err := s.VM(ctx, *vm)
			if err != nil {
				return fmt.Errorf("-vm: %s: %w", *vm, err)
			}
			path := strings.TrimPrefix(v.DiskURI, "file://")
			if strings.Contains(path, "://") {
				return fmt.Errorf("-vm: %s's disk %s is not a local file", *vm, v.DiskURI)
			}
			r := rand.New(rand.NewPCG(*seed, 7))
			const block = 64 << 10
			nblocks := max(v.DiskBytes/block, 1)
			buf := make([]byte, 512)
			deadline := time.Now().Add(*total)
			tick := time.NewTicker(*every)
			defer tick.Stop()
			for n := 0; time.Now().Before(deadline); n++ {
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					return err
				}
				for range *blocks {
					for i := range buf {
						buf[i] = byte(r.Uint32())
					}
					off := r.Int64N(nblocks)*block + r.Int64N(block-int64(len(buf)))
					if off+int64(len(buf)) > v.DiskBytes {
						off = max(v.DiskBytes-int64(len(buf)), 0)
					}
					if _, err := f.WriteAt(buf[:min(int64(len(buf)), v.DiskBytes)], off); err != nil {
						f.Close()
						return err
					}
				}
				if err := f.Close(); err != nil {
					return err
				}
				fmt.Printf("%s: wrote %d block(s) of %s\n", time.Now().Format(time.TimeOnly), *blocks, path)
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
			}
			return nil
		},
	}
}
