package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Unavailable skips the test for want of a tool, or fails it under CI, where make test
// provides every tool the tests need.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// TemporalCLI returns the Temporal CLI: TEMPORAL_CLI, which make test sets, or the
// repository's .bin/temporal that make tools builds.
func TemporalCLI(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			cli := filepath.Join(dir, ".bin", "temporal")
			if _, err := os.Stat(cli); err != nil {
				Unavailable(t, "the Temporal CLI is not in %s: run make tools, or set TEMPORAL_CLI", cli)
			}
			return cli
		}
	}
	Unavailable(t, "no go.mod above the test's folder; set TEMPORAL_CLI")
	return ""
}

// DevServer is a Temporal dev server of the test's own, kept in a SQLite file so that
// it can be killed and started again with its workflows, as a crashed server would be.
type DevServer struct {
	t      testing.TB
	cli    string
	dbFile string
	log    string
	port   int
	proc   *os.Process
	exited chan struct{}
	// Address is the server's host:port, the same across restarts.
	Address string
}

// StartDevServer starts a dev server on a free port, stopped when the test ends.
func StartDevServer(t testing.TB) *DevServer {
	t.Helper()
	dir := t.TempDir()
	d := &DevServer{t: t, cli: TemporalCLI(t), dbFile: filepath.Join(dir, "temporal.db"), log: filepath.Join(dir, "temporal.log"), port: ReservePort(t)}
	d.Address = fmt.Sprintf("127.0.0.1:%d", d.port)
	t.Cleanup(func() {
		if d.proc != nil {
			_ = d.proc.Signal(syscall.SIGTERM)
			<-d.exited
		}
	})
	d.Start()
	return d
}

// Start starts the server on its SQLite file and waits until it answers.
func (d *DevServer) Start() {
	d.t.Helper()
	log, err := os.OpenFile(d.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(d.cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", fmt.Sprint(d.port),
		"--db-filename", d.dbFile, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.proc, d.exited = cmd.Process, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(d.exited)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		select {
		case <-d.exited:
			d.proc = nil
			d.t.Fatalf("the Temporal dev server exited; see %s", d.log)
		default:
		}
		if exec.Command(d.cli, "operator", "cluster", "health", "--address", d.Address).Run() == nil {
			return
		}
	}
	d.t.Fatalf("the Temporal dev server did not answer within 60 s; see %s", d.log)
}

// Kill ends the server with SIGKILL, as a crash would, and waits until it is gone.
func (d *DevServer) Kill() {
	d.t.Helper()
	if err := d.proc.Signal(syscall.SIGKILL); err != nil {
		d.t.Fatal(err)
	}
	<-d.exited
	d.proc = nil
}
