package main

import (
	"context"
	"log/slog"
	"runtime"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/fx"
)

// limitsRefresh is how often the connector re-reads its memory limit: a resize changes
// it while the connector runs. The provisioner moves a new connector into its group a
// moment after it starts, so the first read may find none.
const limitsRefresh = 2 * time.Second

// memoryShare is the part of its memory limit the Go runtime keeps the connector's heap
// within (GOMEMLIMIT), leaving the rest for stacks, buffers and the kernel's page
// cache charged to the group.
const memoryShare = 0.9

// followLimits keeps the Go runtime inside the connector's control group as it is
// resized: GOMEMLIMIT follows the group's memory limit, and GOMAXPROCS follows its CPU
// quota (the runtime does that by itself since Go 1.25, rounding up, with at least 2).
// Without a limit, as on a laptop, both keep the runtime's defaults.
func followLimits(lc fx.Lifecycle, logger *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			_, err := memlimit.Set(memlimit.WithRatio(memoryShare), memlimit.WithProvider(memlimit.FromCgroup),
				memlimit.WithLogger(logger), memlimit.WithRefreshInterval(ctx, limitsRefresh))
			if err != nil {
				// A connector without a readable limit moves bytes all the same.
				logger.Warn("GOMEMLIMIT does not follow a memory limit", "error", err)
			}
			logger.Info("connector runtime", "gomaxprocs", runtime.GOMAXPROCS(0))
			return nil
		},
		OnStop: func(context.Context) error {
			cancel()
			return nil
		},
	})
}
