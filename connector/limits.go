package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
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

// cpuState is what the connector's CPU limit did to it so far.
type cpuState struct {
	// limited says that the connector's group has a CPU quota.
	limited bool
	// throttled is the time the quota held the group back since the group was made.
	throttled time.Duration
}

// readCPUState reads the CPU quota and throttled time of the connector's own control
// group; a connector outside any group with a quota reads as not limited.
func readCPUState() (cpuState, error) {
	if cgroups.Mode() == cgroups.Unified {
		group, err := cgroup2.PidGroupPath(os.Getpid())
		if err != nil {
			return cpuState{}, err
		}
		dir := filepath.Join("/sys/fs/cgroup", group)
		max, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
		if err != nil || strings.HasPrefix(string(max), "max") {
			return cpuState{}, nil // no cpu controller, or no quota
		}
		usec, err := statField(filepath.Join(dir, "cpu.stat"), "throttled_usec")
		return cpuState{limited: true, throttled: time.Duration(usec) * time.Microsecond}, err
	}
	dir, err := v1CPUGroup()
	if err != nil {
		return cpuState{}, err
	}
	quota, err := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
	if err != nil {
		return cpuState{}, err
	}
	if q, err := strconv.ParseInt(strings.TrimSpace(string(quota)), 10, 64); err != nil || q <= 0 {
		return cpuState{}, err // -1: no quota
	}
	ns, err := statField(filepath.Join(dir, "cpu.stat"), "throttled_time")
	return cpuState{limited: true, throttled: time.Duration(ns)}, err
}

// v1CPUGroup is the folder of the process's own group in the v1 cpu hierarchy.
func v1CPUGroup() (string, error) {
	subsystems, err := cgroup1.Default()
	if err != nil {
		return "", err
	}
	for _, s := range subsystems {
		cpu, ok := s.(interface{ Path(string) string })
		if !ok || s.Name() != cgroup1.Cpu {
			continue
		}
		group, err := cgroup1.PidPath(os.Getpid())(cgroup1.Cpu)
		if err != nil {
			return "", err
		}
		return cpu.Path(group), nil
	}
	return "", errors.New("no cpu hierarchy is mounted")
}

// statField reads one counter of a cgroup stat file of "name value" lines.
func statField(file, name string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && k == name {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", file, name)
}
