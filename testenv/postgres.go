package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// Postgres is a PostgreSQL cluster of the test's own, which it may stop and start
// again, as scripts/lib.sh makes one for make run: trust auth for the superuser "pmo",
// listening on 127.0.0.1 only. As root the cluster belongs to the unprivileged user
// "postgres", since initdb and postgres refuse to run as root.
type Postgres struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// URL is the DATABASE_URL of the cluster's "postgres" database.
	URL string
}

// StartPostgres makes and starts a cluster, removed when the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	p := &Postgres{t: t, bin: pgBin(t), port: ReservePort(t)}
	p.URL = fmt.Sprintf("postgres://pmo@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	// Not t.TempDir: its folders are closed to the postgres user.
	dir, err := os.MkdirTemp("", "pmo-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() {
		_ = p.asOwner(filepath.Join(p.bin, "pg_ctl"), "-D", p.dir, "-m", "immediate", "-w", "stop").Run()
		_ = os.RemoveAll(p.dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			Unavailable(t, "running as root needs an unprivileged 'postgres' user to own the test's PostgreSQL cluster (useradd -r postgres)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := p.asOwner(filepath.Join(p.bin, "initdb"), "-D", dir, "-U", "pmo", "--auth=trust", "--encoding=UTF8", "--no-instructions").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	p.Start()
	return p
}

// Start starts the cluster and waits until it accepts connections.
func (p *Postgres) Start() {
	p.t.Helper()
	out, err := p.asOwner(filepath.Join(p.bin, "pg_ctl"), "-D", p.dir, "-l", filepath.Join(p.dir, "server.log"), "-w", "-t", "60",
		"-o", fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", p.port), "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
		p.t.Fatalf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
}

// Stop stops the cluster (fast shutdown: sessions are disconnected) and waits until it
// is down.
func (p *Postgres) Stop() {
	p.t.Helper()
	if out, err := p.asOwner(filepath.Join(p.bin, "pg_ctl"), "-D", p.dir, "-m", "fast", "-w", "stop").CombinedOutput(); err != nil {
		p.t.Fatalf("pg_ctl stop: %v: %s", err, out)
	}
}

// Crash stops the cluster the hard way, as a power cut or a killed server would: an
// immediate shutdown, which writes no checkpoint, so that the next Start replays the
// write-ahead log (crash recovery).
func (p *Postgres) Crash() {
	p.t.Helper()
	if out, err := p.asOwner(filepath.Join(p.bin, "pg_ctl"), "-D", p.dir, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		p.t.Fatalf("pg_ctl stop -m immediate: %v: %s", err, out)
	}
}

// asOwner is the command run as the cluster's owner, from /, which that user can enter.
func (p *Postgres) asOwner(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	cmd.Dir = "/"
	return cmd
}

// pgBin finds the folder of initdb and pg_ctl: on PATH, or Debian's
// /usr/lib/postgresql/<version>/bin, newest first (as scripts/lib.sh does).
func pgBin(t testing.TB) string {
	t.Helper()
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(initdb)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgVersion(b) - pgVersion(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	Unavailable(t, "PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
	return ""
}

// pgVersion is the major version in /usr/lib/postgresql/<version>/bin.
func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}
