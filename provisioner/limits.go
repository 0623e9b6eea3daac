package provisioner

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/pmo-dev/pmo/planning"
)

// cpuPeriod is the CFS period a connector's CPU quota is given in: 100 ms, the
// kernel's default.
const cpuPeriod = 100_000

// Limits holds each connector to its size's CPU and memory in a control group of its
// own, <Parent>/<id>: with cgroup v1, below the worker's own group in each controller
// (so that a worker run by systemd or in a container keeps its connectors inside its
// own accounting); with cgroup v2, below the hierarchy's root, since a v2 group that
// holds processes cannot share its controllers with groups below it. Where neither can
// be written (a laptop, a container without the rights) it says so once and the
// connectors run unlimited.
type Limits struct {
	// Parent is the group the connectors' groups are made in, below the hierarchy's
	// root: "pmo" by default.
	Parent string
	Logger *slog.Logger

	once sync.Once
	mode cgroups.CGMode
	// off says why limits are not enforced here; empty when they are.
	off string
}

// Limit is what a connector's group holds it to.
type Limit struct {
	// CPUQuota and CPUPeriod are in microseconds: CPUQuota/CPUPeriod cores.
	CPUQuota, CPUPeriod int64
	MemoryBytes         int64
}

// limitOf is the limit of a size: its CPU millicores and its RAM.
func limitOf(size planning.Size) Limit {
	return Limit{CPUQuota: int64(size.CPUMillis) * cpuPeriod / 1000, CPUPeriod: cpuPeriod, MemoryBytes: size.RAMBytes}
}

// resources is the limit as the cgroup library takes it; a size without CPU or RAM
// leaves that unlimited.
func (l Limit) resources() *specs.LinuxResources {
	var res specs.LinuxResources
	if quota, period := l.CPUQuota, uint64(l.CPUPeriod); quota > 0 {
		res.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if mem := l.MemoryBytes; mem > 0 {
		res.Memory = &specs.LinuxMemory{Limit: &mem}
	}
	return &res
}

// Enforced says whether connectors are limited here, and if not, why.
func (l *Limits) Enforced() (bool, string) {
	l.detect()
	return l.off == "", l.off
}

// on says whether connectors are limited: a nil Limits runs them unlimited.
func (l *Limits) on() bool {
	if l == nil {
		return false
	}
	l.detect()
	return l.off == ""
}

// detect finds the machine's cgroup hierarchy once, and whether PMO can make groups
// in it.
func (l *Limits) detect() {
	l.once.Do(func() {
		if l.Parent == "" {
			l.Parent = "pmo"
		}
		if l.Logger == nil {
			l.Logger = slog.Default()
		}
		l.mode = cgroups.Mode()
		var err error
		switch l.mode {
		case cgroups.Unavailable:
			err = errors.New("no cgroup hierarchy is mounted")
		case cgroups.Unified:
			// Each connector's group enables the cpu and memory controllers above it.
			_, err = cgroup2.NewManager("/sys/fs/cgroup", "/"+l.Parent, &cgroup2.Resources{})
		default:
			_, err = cgroup1.New(cgroup1.NestedPath(l.Parent), &specs.LinuxResources{}, cgroup1.WithHierarchy(limited))
		}
		if err != nil {
			l.off = fmt.Sprintf("cannot make control groups (%v)", err)
			l.Logger.Warn("connectors run without CPU and memory limits", "why", l.off)
			return
		}
		l.Logger.Info("connectors run with their size's CPU and memory limits", "cgroup", l.version(), "parent", l.Parent)
	})
}

func (l *Limits) version() string {
	if l.mode == cgroups.Unified {
		return "v2"
	}
	return "v1"
}

// limited is the v1 hierarchy of the controllers a connector is held by: cpu and
// memory, with cpuacct for the CPU it used.
func limited() ([]cgroup1.Subsystem, error) {
	all, err := cgroup1.Default()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(s cgroup1.Subsystem) bool {
		return !slices.Contains([]cgroup1.Name{cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Memory}, s.Name())
	}), nil
}

// group is the connector's v2 group, below the hierarchy's root.
func (l *Limits) group(id string) string { return "/" + l.Parent + "/" + id }

// v1Path is the connector's v1 group in each controller, below the worker's own.
func (l *Limits) v1Path(id string) cgroup1.Path { return cgroup1.NestedPath(l.Parent + "/" + id) }

// loadV1 opens the connector's existing v1 group.
func (l *Limits) loadV1(id string) (cgroup1.Cgroup, error) {
	return cgroup1.Load(l.v1Path(id), cgroup1.WithHierarchy(limited))
}

// Apply puts the process in the connector's group, made with the size's limits; a
// group left from an earlier process of the connector is reused.
func (l *Limits) Apply(id string, pid int, size planning.Size) error {
	if !l.on() {
		return nil
	}
	res := limitOf(size).resources()
	var err error
	if l.mode == cgroups.Unified {
		var m *cgroup2.Manager
		if m, err = cgroup2.NewManager("/sys/fs/cgroup", l.group(id), cgroup2.ToResources(res)); err == nil {
			err = m.AddProc(uint64(pid))
		}
	} else {
		var cg cgroup1.Cgroup
		if cg, err = cgroup1.New(l.v1Path(id), res, cgroup1.WithHierarchy(limited)); err == nil {
			err = cg.AddProc(uint64(pid))
		}
	}
	if err != nil {
		return fmt.Errorf("provisioner: limit connector %s: %w", id, err)
	}
	return nil
}

// Resize changes the connector's limits in place: its process and its transfers go
// on, with the new CPU and memory from the next scheduling period.
func (l *Limits) Resize(id string, size planning.Size) error {
	if !l.on() {
		return nil
	}
	res := limitOf(size).resources()
	var err error
	if l.mode == cgroups.Unified {
		var m *cgroup2.Manager
		if m, err = cgroup2.Load(l.group(id)); err == nil {
			err = m.Update(cgroup2.ToResources(res))
		}
	} else {
		var cg cgroup1.Cgroup
		if cg, err = l.loadV1(id); err == nil {
			err = cg.Update(res)
		}
	}
	if err != nil {
		return fmt.Errorf("provisioner: resize the limits of connector %s: %w", id, err)
	}
	return nil
}

// Remove deletes the connector's group once its process has exited; a group that is
// gone already is not an error. Whatever still runs in the group is the connector's:
// a child of it, or the connector itself when its pid file was lost. It is killed, and
// the group deleted as soon as the kernel has let it go (within two seconds).
func (l *Limits) Remove(id string) error {
	if !l.on() {
		return nil
	}
	var err error
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err = l.remove(id); err == nil || time.Now().After(deadline) {
			return err
		}
	}
}

// remove kills what runs in the group and deletes it.
func (l *Limits) remove(id string) error {
	var err error
	if l.mode == cgroups.Unified {
		var m *cgroup2.Manager
		if m, err = cgroup2.Load(l.group(id)); err == nil {
			if err = m.Kill(); err == nil {
				err = m.Delete()
			}
		}
	} else {
		var cg cgroup1.Cgroup
		if cg, err = l.loadV1(id); err == nil {
			// A size without CPU or RAM leaves that controller's group unmade.
			for _, name := range []cgroup1.Name{cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Memory} {
				left, _ := cg.Processes(name, true)
				for _, p := range left {
					_ = syscall.Kill(p.Pid, syscall.SIGKILL)
				}
			}
			err = cg.Delete()
		}
	}
	if err != nil && !errors.Is(err, cgroup1.ErrCgroupDeleted) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("provisioner: remove the limits of connector %s: %w", id, err)
	}
	return nil
}

// Read returns the limits the connector's group holds now, from the kernel's files.
func (l *Limits) Read(id string) (Limit, error) {
	if !l.on() {
		return Limit{}, errors.New("provisioner: connectors are not limited here")
	}
	var lim Limit
	if l.mode == cgroups.Unified {
		dir := filepath.Join("/sys/fs/cgroup", l.group(id))
		cpu, err := readFields(filepath.Join(dir, "cpu.max"))
		if err != nil || len(cpu) != 2 {
			return Limit{}, fmt.Errorf("provisioner: cpu.max of connector %s: %v", id, err)
		}
		mem, err := readFields(filepath.Join(dir, "memory.max"))
		if err != nil || len(mem) != 1 {
			return Limit{}, fmt.Errorf("provisioner: memory.max of connector %s: %v", id, err)
		}
		lim.CPUQuota, _ = strconv.ParseInt(cpu[0], 10, 64)
		lim.CPUPeriod, _ = strconv.ParseInt(cpu[1], 10, 64)
		lim.MemoryBytes, _ = strconv.ParseInt(mem[0], 10, 64)
		return lim, nil
	}
	dir := func(name cgroup1.Name) string {
		d, _ := v1Dir(l.v1Path(id), name) // an empty folder fails the read below
		return d
	}
	for _, f := range []struct {
		path string
		v    *int64
	}{
		{filepath.Join(dir(cgroup1.Cpu), "cpu.cfs_quota_us"), &lim.CPUQuota},
		{filepath.Join(dir(cgroup1.Cpu), "cpu.cfs_period_us"), &lim.CPUPeriod},
		{filepath.Join(dir(cgroup1.Memory), "memory.limit_in_bytes"), &lim.MemoryBytes},
	} {
		v, err := readFields(f.path)
		if err != nil || len(v) != 1 {
			return Limit{}, fmt.Errorf("provisioner: %s: %v", f.path, err)
		}
		if *f.v, err = strconv.ParseInt(v[0], 10, 64); err != nil {
			return Limit{}, fmt.Errorf("provisioner: %s: %w", f.path, err)
		}
	}
	return lim, nil
}

// Holds says whether the process is in the connector's group.
func (l *Limits) Holds(id string, pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasSuffix(line, l.group(id)) {
			return true
		}
	}
	return false
}

func readFields(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// v1Dir is the folder of a v1 group (path, as the library names groups) in one
// controller's hierarchy.
func v1Dir(path cgroup1.Path, name cgroup1.Name) (string, error) {
	subsystems, err := cgroup1.Default()
	if err != nil {
		return "", err
	}
	for _, s := range subsystems {
		if p, ok := s.(interface{ Path(string) string }); ok && s.Name() == name {
			rel, err := path(name)
			if err != nil {
				return "", err
			}
			return p.Path(rel), nil
		}
	}
	return "", fmt.Errorf("provisioner: no %s hierarchy is mounted", name)
}

// CPUState is what a process's CPU limit has done to it so far.
type CPUState struct {
	// Limited says that the process's group has a CPU quota.
	Limited bool
	// Throttled is the time the quota held the group back since the group was made.
	Throttled time.Duration
}

// CPUStateOf reads the CPU quota and throttled time of the control group the process
// is in: a connector asks about itself. A process in no group with a quota reads as
// not limited.
func CPUStateOf(pid int) (CPUState, error) {
	var dir, quota, counter string
	var unit time.Duration
	if cgroups.Mode() == cgroups.Unified {
		group, err := cgroup2.PidGroupPath(pid)
		if err != nil {
			return CPUState{}, err
		}
		dir, quota, counter, unit = filepath.Join("/sys/fs/cgroup", group), "cpu.max", "throttled_usec", time.Microsecond
	} else {
		var err error
		if dir, err = v1Dir(cgroup1.PidPath(pid), cgroup1.Cpu); err != nil {
			return CPUState{}, err
		}
		quota, counter, unit = "cpu.cfs_quota_us", "throttled_time", time.Nanosecond
	}
	// v2 says "max" where there is no quota, v1 "-1"; v2 without a cpu controller has
	// no such file at all.
	q, err := readFields(filepath.Join(dir, quota))
	if err != nil || len(q) == 0 || q[0] == "max" || strings.HasPrefix(q[0], "-") {
		return CPUState{}, nil
	}
	stat, err := readFields(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return CPUState{}, err
	}
	for i := 0; i+1 < len(stat); i += 2 {
		if stat[i] == counter {
			n, err := strconv.ParseInt(stat[i+1], 10, 64)
			return CPUState{Limited: true, Throttled: time.Duration(n) * unit}, err
		}
	}
	return CPUState{}, fmt.Errorf("provisioner: %s has no %s", filepath.Join(dir, "cpu.stat"), counter)
}
