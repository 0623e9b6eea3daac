package provisioner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
	"github.com/pmo-dev/pmo/provisioner"
)

// fakeConnector writes a shell script that stands in for the connector: it logs its
// arguments and runs until SIGTERM, or ignores SIGTERM when stubborn.
func fakeConnector(t *testing.T, stubborn bool) string {
	t.Helper()
	trap := `trap 'echo "got TERM"; exit 0' TERM`
	if stubborn {
		trap = `trap '' TERM`
	}
	script := "#!/bin/sh\necho \"fake connector $*\"\n" + trap + "\nwhile :; do sleep 0.05; done\n"
	path := filepath.Join(t.TempDir(), "connector.sh")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	return path
}

// logged waits until the fake connector has written n start lines, so that it has set
// its signal trap before the test stops it.
func logged(t *testing.T, p *provisioner.Process, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(p.DataDir, "logs", "connector-"+spec.ID+".log"))
		return strings.Count(string(b), "fake connector") >= n
	}, 5*time.Second, 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // the trap is the script's next line
}

func newProcess(t *testing.T, bin string) *provisioner.Process {
	t.Helper()
	p, err := provisioner.NewProcess(bin, t.TempDir(), []string{"PMO_TEST_MARKER=yes"}, nil)
	require.NoError(t, err)
	p.StopTimeout = 2 * time.Second
	return p
}

func cmdline(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	require.NoError(t, err)
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// gone reports whether no process (not even a zombie) has the PID any more, which
// shows the child was reaped.
func gone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return os.IsNotExist(err)
}

var spec = provisioner.Spec{
	ID: "default-ams1-1", Pool: "default", Site: "ams1", TaskQueue: "pmo.connector.default-ams1-1",
	Size: planning.Size{Name: "small", BandwidthBytesSec: 1 << 20, MaxTasks: 2},
}

func TestStartIsIdempotentAndStopEndsTheProcess(t *testing.T) {
	p := newProcess(t, fakeConnector(t, false))
	ctx := context.Background()

	st, err := p.Start(ctx, spec)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background(), spec.ID) })
	require.True(t, st.Running)
	require.Positive(t, st.PID)

	again, err := p.Start(ctx, spec)
	require.NoError(t, err)
	require.Equal(t, st.PID, again.PID, "a second Start returns the running process")

	status, err := p.Status(ctx, spec.ID)
	require.NoError(t, err)
	require.Equal(t, provisioner.Status{Running: true, PID: st.PID}, status)

	pidFile := filepath.Join(p.DataDir, "connectors", spec.ID+".pid")
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(st.PID)+"\n", string(b))

	args := strings.Join(cmdline(t, st.PID), " ")
	for _, want := range []string{
		"-id default-ams1-1", "-pool default", "-site ams1", "-task-queue pmo.connector.default-ams1-1",
		"-bandwidth 1048576", "-max-tasks 2", "-target-dir " + filepath.Join(p.DataDir, "target"),
	} {
		require.Contains(t, args, want)
	}
	pgid, err := syscall.Getpgid(st.PID)
	require.NoError(t, err)
	require.Equal(t, st.PID, pgid, "the connector leads its own process group")
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", st.PID))
	require.NoError(t, err)
	require.Contains(t, string(env), "PMO_TEST_MARKER=yes")

	logged(t, p, 1)
	require.NoError(t, p.Stop(ctx, spec.ID))
	status, err = p.Status(ctx, spec.ID)
	require.NoError(t, err)
	require.False(t, status.Running)
	require.NoFileExists(t, pidFile)
	require.Eventually(t, func() bool { return gone(st.PID) }, 2*time.Second, 20*time.Millisecond, "the child is reaped, not left a zombie")

	log, err := os.ReadFile(filepath.Join(p.DataDir, "logs", "connector-"+spec.ID+".log"))
	require.NoError(t, err)
	require.Contains(t, string(log), "fake connector -id default-ams1-1")
	require.Contains(t, string(log), "got TERM", "the connector was asked to stop gracefully")

	require.NoError(t, p.Stop(ctx, spec.ID), "stopping a stopped connector is a no-op")

	// A new start appends to the same log.
	st2, err := p.Start(ctx, spec)
	require.NoError(t, err)
	require.NotEqual(t, st.PID, st2.PID)
	logged(t, p, 2)
	require.NoError(t, p.Stop(ctx, spec.ID))
	log, err = os.ReadFile(filepath.Join(p.DataDir, "logs", "connector-"+spec.ID+".log"))
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(log), "fake connector"))
}

func TestStopKillsAConnectorThatIgnoresSIGTERM(t *testing.T) {
	p := newProcess(t, fakeConnector(t, true))
	p.StopTimeout = 300 * time.Millisecond
	st, err := p.Start(context.Background(), spec)
	require.NoError(t, err)
	logged(t, p, 1)
	start := time.Now()
	require.NoError(t, p.Stop(context.Background(), spec.ID))
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "SIGKILL only after the grace period")
	require.Eventually(t, func() bool { return gone(st.PID) }, 2*time.Second, 20*time.Millisecond)
}

func TestAPidFileNamingAnotherProcessIsNotTrusted(t *testing.T) {
	p := newProcess(t, fakeConnector(t, false))
	require.NoError(t, os.MkdirAll(filepath.Join(p.DataDir, "connectors"), 0o755))
	// This test's own PID is alive but is not the connector.
	pidFile := filepath.Join(p.DataDir, "connectors", spec.ID+".pid")
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644))

	status, err := p.Status(context.Background(), spec.ID)
	require.NoError(t, err)
	require.False(t, status.Running)

	st, err := p.Start(context.Background(), spec)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background(), spec.ID) })
	require.NotEqual(t, os.Getpid(), st.PID)

	// Stop never signals the stranger named by a stale pid file. Where connectors
	// run in control groups, it finds the connector by its group and stops it;
	// elsewhere the connector goes on, to be stopped by hand.
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644))
	require.NoError(t, p.Stop(context.Background(), spec.ID))
	require.NoFileExists(t, pidFile)
	if on, _ := p.Limits.Enforced(); on {
		require.Eventually(t, func() bool { return gone(st.PID) }, 5*time.Second, 10*time.Millisecond, "the connector in its group was stopped")
		return
	}
	require.NoError(t, syscall.Kill(st.PID, syscall.SIGTERM))
}

func TestStartRefusesBadIDsAndMissingBinaries(t *testing.T) {
	p := newProcess(t, filepath.Join(t.TempDir(), "no-such-connector"))
	_, err := p.Start(context.Background(), spec)
	require.ErrorContains(t, err, "no-such-connector")
	for _, id := range []string{"", "..", "a/b", "a b"} {
		bad := spec
		bad.ID = id
		_, err := p.Start(context.Background(), bad)
		require.ErrorContains(t, err, "invalid connector ID", id)
	}
}

func TestNewProcessMakesPathsAbsolute(t *testing.T) {
	p, err := provisioner.NewProcess("bin/connector", ".data", nil, nil)
	require.NoError(t, err)
	require.True(t, filepath.IsAbs(p.Bin))
	require.True(t, filepath.IsAbs(p.DataDir))
	_, err = provisioner.NewProcess("", ".data", nil, nil)
	require.Error(t, err)
}

// A connector runs in a control group of its own, held to its size's CPU and memory; a
// resize changes both in place, the process going on; its group goes when it stops.
func TestAConnectorIsHeldToItsSizeAndResizedInPlace(t *testing.T) {
	p := newProcess(t, fakeConnector(t, false))
	if on, why := p.Limits.Enforced(); !on {
		t.Skip("connectors run unlimited on this machine: " + why)
	}
	ctx := context.Background()
	small, _ := planning.SizeNamed("small")
	medium, _ := planning.SizeNamed("medium")
	s := spec
	s.ID, s.Size = fmt.Sprintf("limits-%d", os.Getpid()), small
	st, err := p.Start(ctx, s)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Stop(context.Background(), s.ID) })
	require.True(t, p.Limits.Holds(s.ID, st.PID), "the process is in its group")
	lim, err := p.Limits.Read(s.ID)
	require.NoError(t, err)
	require.Equal(t, provisioner.Limit{CPUQuota: 50_000, CPUPeriod: 100_000, MemoryBytes: 256 << 20}, lim, "half a core and 256 MiB")

	require.NoError(t, p.Resize(ctx, s.ID, medium))
	lim, err = p.Limits.Read(s.ID)
	require.NoError(t, err)
	require.Equal(t, provisioner.Limit{CPUQuota: 100_000, CPUPeriod: 100_000, MemoryBytes: 512 << 20}, lim, "a core and 512 MiB")
	now, err := p.Status(ctx, s.ID)
	require.NoError(t, err)
	require.Equal(t, st.PID, now.PID, "resized in place, not restarted")
	require.True(t, p.Limits.Holds(s.ID, st.PID))

	require.NoError(t, p.Stop(ctx, s.ID))
	_, err = p.Limits.Read(s.ID)
	require.Error(t, err, "its group is gone")
	require.NoError(t, p.Limits.Remove(s.ID), "removing it again is no error")
	require.NoError(t, p.Resize(ctx, s.ID, small), "a stopped connector has nothing to resize")
}
