package provisioner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/fx"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/objectstore"
	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/sitenet"
)

// DefaultStopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
const DefaultStopTimeout = 10 * time.Second

// Module provides the process driver as the Provisioner, built from the configuration.
var Module = fx.Module("provisioner",
	fx.Provide(func(lc fx.Lifecycle, cfg config.Config, logger *slog.Logger) (Provisioner, error) {
		p, err := NewProcess(cfg.ConnectorBin, cfg.DataDir, nil, logger)
		if err != nil {
			return nil, err
		}
		if cfg.MetricsAddr != "" {
			p.MetricsTargets = filepath.Join(p.DataDir, "prometheus")
		}
		if cfg.ObjectStore.On() {
			if p.Objects, err = objectstore.NewAdmin(cfg.ObjectStore.Store()); err != nil {
				return nil, err
			}
		}
		if cfg.SiteLinks {
			if ok, why := sitenet.Available(); !ok {
				return nil, fmt.Errorf("PMO_SITE_LINKS: %s", why)
			}
			p.Sites = &SiteLinks{Tag: cfg.Pool, Scale: cfg.SiteUplinkScale, Logger: logger, Services: map[string]string{
				"TEMPORAL_ADDRESS": cfg.TemporalAddress, "DATABASE_URL": cfg.DatabaseURL, "PMO_S3_ENDPOINT": cfg.ObjectStore.Endpoint,
			}}
			lc.Append(fx.StopHook(p.Sites.StopRelays))
		}
		return p, nil
	}),
	fx.Invoke(ensureBucket),
)

// ensureBucket makes the object store's bucket as the worker starts, when copies go
// there, so that a store that is unreachable or refuses the worker's keys stops the
// start with a clear error rather than every copy later.
func ensureBucket(lc fx.Lifecycle, cfg config.Config, logger *slog.Logger) {
	if !cfg.ObjectStore.On() {
		return
	}
	lc.Append(fx.StartHook(func(ctx context.Context) error {
		s, err := objectstore.New(cfg.ObjectStore.Store())
		if err != nil {
			return err
		}
		if err := s.EnsureBucket(ctx); err != nil {
			return err
		}
		logger.Info("connectors copy to the object store", "endpoint", cfg.ObjectStore.Endpoint, "bucket", s.Bucket)
		return nil
	}))
}

// Process runs each connector as a local process of Bin. It keeps its state in files so
// that any worker process (or a restarted one) sees the same connectors:
//
//	<DataDir>/connectors/<id>.pid   the connector's process ID
//	<DataDir>/logs/connector-<id>.log   its stdout and stderr, appended
//
// Connectors get their own process group, so a worker that crashes or is stopped
// with Ctrl-C does not take its connectors with it.
type Process struct {
	// Bin is the connector executable.
	Bin string
	// DataDir holds pid files, logs and the connectors' target directory.
	DataDir string
	// Env is added to the worker's environment for each connector.
	Env []string
	// Logger logs starts and stops.
	Logger *slog.Logger
	// StopTimeout is the grace between SIGTERM and SIGKILL; zero means
	// DefaultStopTimeout.
	StopTimeout time.Duration
	// MetricsTargets, when set, gives each connector metrics on a free local port,
	// which it writes to a Prometheus file_sd file in this folder.
	MetricsTargets string
	// Limits holds each connector to its size's CPU and memory; nil runs them
	// unlimited.
	Limits *Limits
	// Objects, when not nil, gives each connector it starts keys of its own to the
	// object store, scoped to <pool>/<site>, in place of the worker's, and takes them
	// back when the connector stops.
	Objects *objectstore.Admin
	// Sites, when not nil, runs each connector behind its site's link.
	Sites *SiteLinks
}

var _ Provisioner = (*Process)(nil)

// NewProcess returns a process driver. Relative paths are made absolute now, so a
// later change of working directory does not move the connectors' files.
func NewProcess(bin, dataDir string, env []string, logger *slog.Logger) (*Process, error) {
	if bin == "" || dataDir == "" {
		return nil, errors.New("provisioner: the connector binary and the data directory are required")
	}
	// A bare name is looked up in PATH when the connector starts, like exec does.
	if strings.ContainsRune(bin, filepath.Separator) {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return nil, fmt.Errorf("provisioner: connector binary %s: %w", bin, err)
		}
		bin = abs
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("provisioner: data directory %s: %w", dataDir, err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Process{Bin: bin, DataDir: dir, Env: env, Logger: logger, Limits: &Limits{Logger: logger}}, nil
}

// Start runs the connector unless its pid file names a live process of that
// connector, in which case it returns that process.
func (p *Process) Start(ctx context.Context, spec Spec) (Status, error) {
	unlock, err := p.lock(spec.ID)
	if err != nil {
		return Status{}, err
	}
	defer unlock()
	if pid, ok := p.running(spec.ID); ok {
		return Status{Running: true, PID: pid}, nil
	}

	if err := os.MkdirAll(filepath.Join(p.DataDir, "logs"), 0o755); err != nil {
		return Status{}, fmt.Errorf("provisioner: log directory: %w", err)
	}
	logPath := p.logFile(spec.ID)
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return Status{}, fmt.Errorf("provisioner: open log of connector %s: %w", spec.ID, err)
	}
	defer log.Close() // the child has its own copy of the descriptor

	keys, err := p.objectKeys(ctx, spec)
	if err != nil {
		return Status{}, err
	}
	line, siteEnv := append([]string{p.Bin}, p.args(spec)...), []string(nil)
	if p.Sites != nil {
		if line, siteEnv, err = p.Sites.command(spec, line); err != nil {
			return Status{}, err
		}
	}
	// Not exec.CommandContext: the connector must outlive the activity that starts it.
	cmd := exec.Command(line[0], line[1:]...)
	// Later entries win: the connector's own keys replace the worker's, and at a site
	// behind a link, the relays replace the services' addresses.
	cmd.Env = append(append(append(os.Environ(), p.Env...), keys...), siteEnv...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return Status{}, fmt.Errorf("provisioner: start connector %s with %s: %w", spec.ID, p.Bin, err)
	}
	pid := cmd.Process.Pid
	// Reap the child when it exits, so that it does not linger as a zombie.
	go func() { _ = cmd.Wait() }()
	awaitArgs(pid)
	if err := p.writePID(spec.ID, pid); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return Status{}, err
	}
	// Limited from its first moments: before its first poll, it has taken no work.
	if err := p.Limits.Apply(spec.ID, pid, spec.Size); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = os.Remove(p.pidFile(spec.ID))
		return Status{}, err
	}
	p.Logger.Info("connector process started", "connector", spec.ID, "pid", pid, "log", logPath)
	return Status{Running: true, PID: pid}, nil
}

// Stop sends SIGTERM to the connector's process group, waits up to StopTimeout for it
// to exit, then sends SIGKILL, and removes the pid file. Stopping a connector that
// does not run is not an error.
func (p *Process) Stop(ctx context.Context, id string) error {
	unlock, err := p.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	pid, ok := p.running(id)
	if ok {
		grace := p.StopTimeout
		if grace <= 0 {
			grace = DefaultStopTimeout
		}
		signalGroup(pid, syscall.SIGTERM)
		if !p.waitExit(ctx, id, pid, grace) {
			p.Logger.Warn("connector did not stop in time; killing it", "connector", id, "pid", pid, "grace", grace)
			signalGroup(pid, syscall.SIGKILL)
			if !p.waitExit(context.WithoutCancel(ctx), id, pid, 5*time.Second) {
				return fmt.Errorf("provisioner: connector %s (pid %d) survived SIGKILL", id, pid)
			}
		}
		p.Logger.Info("connector process stopped", "connector", id, "pid", pid)
	}
	if err := p.Limits.Remove(id); err != nil {
		return err
	}
	if p.Objects != nil {
		if err := p.Objects.Revoke(ctx, objectUser(id)); err != nil {
			return fmt.Errorf("provisioner: revoke connector %s's object store keys: %w", id, err)
		}
	}
	if err := os.Remove(p.pidFile(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("provisioner: remove pid file of connector %s: %w", id, err)
	}
	return nil
}

// Resize holds the running connector to a new size's CPU and memory, in place: its
// process and its transfers go on. A connector that does not run has nothing to
// resize.
func (p *Process) Resize(ctx context.Context, id string, size planning.Size) error {
	unlock, err := p.lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := p.running(id); !ok {
		return nil
	}
	return p.Limits.Resize(id, size)
}

// Status reports whether the connector's process, as named by its pid file, is alive.
func (p *Process) Status(ctx context.Context, id string) (Status, error) {
	if err := validID(id); err != nil {
		return Status{}, err
	}
	if pid, ok := p.running(id); ok {
		return Status{Running: true, PID: pid}, nil
	}
	return Status{}, nil
}

// objectUser is the connector's user in the object store.
func objectUser(id string) string { return "pmo-connector-" + id }

// objectKeys gives the connector fresh keys to the object store, scoped to its pool
// and site, as the environment that tells the connector them; none without a store.
func (p *Process) objectKeys(ctx context.Context, spec Spec) ([]string, error) {
	if p.Objects == nil {
		return nil, nil
	}
	if spec.Pool == "" || spec.Site == "" {
		return nil, fmt.Errorf("provisioner: connector %s needs a pool and a site for its object store prefix", spec.ID)
	}
	prefix := spec.Pool + "/" + spec.Site
	ak, sk, err := p.Objects.Grant(ctx, objectUser(spec.ID), prefix)
	if err != nil {
		return nil, fmt.Errorf("provisioner: object store keys for connector %s: %w", spec.ID, err)
	}
	return []string{"PMO_S3_ACCESS_KEY=" + ak, "PMO_S3_SECRET_KEY=" + sk, "PMO_S3_PREFIX=" + prefix}, nil
}

// args turns a spec into the connector's flags.
func (p *Process) args(spec Spec) []string {
	args := []string{"-id", spec.ID, "-target-dir", filepath.Join(p.DataDir, "target")}
	if spec.Pool != "" {
		args = append(args, "-pool", spec.Pool)
	}
	if spec.Site != "" {
		args = append(args, "-site", spec.Site)
	}
	if spec.TaskQueue != "" {
		args = append(args, "-task-queue", spec.TaskQueue)
	}
	if spec.Size.BandwidthBytesSec > 0 {
		args = append(args, "-bandwidth", strconv.FormatFloat(spec.Size.BandwidthBytesSec, 'f', -1, 64))
	}
	if spec.Size.MaxTasks > 0 {
		args = append(args, "-max-tasks", strconv.Itoa(spec.Size.MaxTasks))
	}
	if p.MetricsTargets != "" {
		args = append(args, "-metrics-addr", "127.0.0.1:0", "-metrics-targets", p.MetricsTargets)
	}
	return args
}

// running reads the pid file and reports whether that process is alive and is this
// connector. The command-line check guards against a reused PID after a reboot or a
// long time; an exited but unreaped process has an empty command line and so counts
// as gone.
func (p *Process) running(id string) (int, bool) {
	b, err := os.ReadFile(p.pidFile(id))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, isConnector(pid, id)
}

// awaitArgs waits, up to a second, until the kernel shows the started process's
// arguments. exec returns to the parent before the new program's arguments are set
// up, and until they are, /proc/<pid>/cmdline is empty: a Start or Status in that
// window would not recognise the connector (and a second Start started another one,
// once in nine runs of make test).
func awaitArgs(pid int) {
	path := filepath.Join("/proc", strconv.Itoa(pid), "cmdline")
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if b, err := os.ReadFile(path); err != nil || len(b) > 0 {
			return // gone, or shown
		}
	}
}

// isConnector reports whether pid is alive and was started with "-id <id>".
func isConnector(pid int, id string) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	for i, a := range args {
		s := string(a)
		if (s == "-id" || s == "--id") && i+1 < len(args) && string(args[i+1]) == id {
			return true
		}
		if s == "-id="+id || s == "--id="+id {
			return true
		}
	}
	return false
}

// waitExit polls until the process is gone or the grace runs out.
func (p *Process) waitExit(ctx context.Context, id string, pid int, grace time.Duration) bool {
	deadline := time.Now().Add(grace)
	for {
		if !isConnector(pid, id) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			// The caller gave up; escalate rather than leave a half-stopped
			// connector behind.
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// signalGroup sends sig to the connector's process group, or to the process alone if the
// group is gone.
func signalGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}

// writePID writes the pid file atomically, so a reader never sees half a number.
func (p *Process) writePID(id string, pid int) error {
	dir := filepath.Join(p.DataDir, "connectors")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("provisioner: pid directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+id+".pid-*")
	if err != nil {
		return fmt.Errorf("provisioner: pid file of connector %s: %w", id, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := fmt.Fprintf(tmp, "%d\n", pid); err != nil {
		tmp.Close()
		return fmt.Errorf("provisioner: write pid file of connector %s: %w", id, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("provisioner: write pid file of connector %s: %w", id, err)
	}
	if err := os.Rename(tmp.Name(), p.pidFile(id)); err != nil {
		return fmt.Errorf("provisioner: pid file of connector %s: %w", id, err)
	}
	return nil
}

// lock serialises Start, Stop and Resize of one connector across goroutines and
// processes, so that two retries of a Provision activity cannot both start it. It
// refuses an ID that is not one.
func (p *Process) lock(id string) (func(), error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(p.DataDir, "connectors")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("provisioner: pid directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, id+".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("provisioner: lock connector %s: %w", id, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("provisioner: lock connector %s: %w", id, err)
	}
	return func() { f.Close() }, nil
}

func (p *Process) pidFile(id string) string {
	return filepath.Join(p.DataDir, "connectors", id+".pid")
}

func (p *Process) logFile(id string) string {
	return filepath.Join(p.DataDir, "logs", "connector-"+id+".log")
}

// validID keeps connector IDs usable as file names and flag values.
func validID(id string) error {
	if id == "" || id == "." || id == ".." || len(id) > 128 {
		return fmt.Errorf("provisioner: invalid connector ID %q", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("provisioner: invalid connector ID %q: only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}
