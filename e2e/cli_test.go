package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cli runs the real starter with an API key, and returns its stdout, stderr and exit
// status.
func (s *system) cli(key string, args ...string) (stdout, stderr string, status int) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "starter"), args...)
	cmd.Env = append(append([]string{}, s.env...), "PMO_API_KEY="+key)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		status = exit.ExitCode()
	} else {
		require.NoError(s.t, err)
	}
	return out.String(), errOut.String(), status
}

// An operator at a terminal: submit a migration that waits for approval, watch it
// while approving it from another terminal, run a wave from a CSV file, override a
// site, and get exit statuses a script can trust.
func TestOperatorCLIRunsMigrationsAndWavesThroughTheAPI(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	db := s.connect()
	vms, _ := s.vmsBySize(db, "lon1", 4, false)
	operator := s.createKey("olga", "operator")
	viewer := s.createKey("vera", "viewer")

	// Used wrongly: 2, and one line saying what is wrong.
	_, errOut, status := s.cli(operator, "migration", "submit")
	require.Equal(t, 2, status)
	require.Equal(t, "starter: -vm: is required\n", errOut)
	_, errOut, status = s.cli(operator, "migration", "submit", "-vm", vms[0], "-nope")
	require.Equal(t, 2, status, errOut)
	_, errOut, status = s.cli("", "migration", "submit", "-vm", vms[0])
	require.Equal(t, 2, status)
	require.Contains(t, errOut, "set PMO_API_KEY")
	// Refused by the API: 1, with the API's words.
	_, errOut, status = s.cli(viewer, "migration", "submit", "-vm", vms[0])
	require.Equal(t, 1, status)
	require.Contains(t, errOut, "403")
	_, errOut, status = s.cli(operator, "migration", "submit", "-vm", "vm-none")
	require.Equal(t, 1, status)
	require.Contains(t, errOut, "no VM vm-none in the inventory")

	// A migration waiting for approval, watched to its end while it is approved.
	id := "cli-" + s.pool
	out, errOut, status := s.cli(operator, "migration", "submit", "-vm", vms[0], "-id", id, "-require-approval")
	require.Equal(t, 0, status, errOut)
	require.Equal(t, id+"\n", out, "stdout is the ID, for scripts")
	watch := exec.Command(filepath.Join(s.bin, "starter"), "migration", "watch", "-interval", "200ms", id)
	watch.Env = append(append([]string{}, s.env...), "PMO_API_KEY="+operator)
	var watchErr bytes.Buffer
	watch.Stderr = &watchErr
	require.NoError(t, watch.Start())
	done := make(chan error, 1)
	go func() { done <- watch.Wait() }()
	s.eventually(time.Minute, id+" awaits approval", func() bool {
		var v migrationView
		s.call("GET", "/migrations/"+id, nil, &v)
		return v.Phase == "awaiting-cutover"
	})
	select {
	case err := <-done:
		t.Fatalf("watch ended (%v) before the migration did: %s", err, watchErr.String())
	default: // it waits while the migration does
	}
	_, _, status = s.cli(operator, "migration", "approve", id)
	require.Equal(t, 2, status, "approve needs -why")
	out, errOut, status = s.cli(operator, "migration", "approve", id, "-why", "window open")
	require.Equal(t, 0, status, errOut)
	require.Equal(t, "approve: sent to migration "+id+"\n", out)
	select {
	case err := <-done:
		require.NoError(t, err, "watch exits 0 once the migration succeeded: %s", watchErr.String())
	case <-time.After(2 * time.Minute):
		_ = watch.Process.Kill()
		t.Fatalf("watch did not end: %s", watchErr.String())
	}
	require.Contains(t, watchErr.String(), "migration "+id+": succeeded")
	var who string
	require.NoError(t, db.QueryRow(context.Background(), `SELECT k.name FROM api_audit a JOIN api_keys k ON k.id = a.key_id
		WHERE a.path = $1`, "/migrations/"+id+"/approve").Scan(&who))
	require.Equal(t, "olga", who, "the CLI acts with the operator's key, audited")

	// A wave from a CSV file: a bad file is refused before anything is sent; a good
	// one submits every row and, watched, ends 0; run again, it starts nothing twice.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("vm_id,priority\n"+vms[1]+",high\n"), 0o644))
	_, errOut, status = s.cli(operator, "migration", "wave", bad)
	require.Equal(t, 2, status)
	require.Contains(t, errOut, "line 2: priority")
	wave := filepath.Join(dir, "wave-"+s.pool+".csv")
	require.NoError(t, os.WriteFile(wave, []byte("vm_id,priority\n"+vms[1]+",10\n"+vms[2]+",\n"+vms[3]+",50\n"), 0o644))
	out, errOut, status = s.cli(operator, "migration", "wave", "-watch", wave)
	require.Equal(t, 0, status, errOut)
	ids := strings.Fields(out)
	require.Equal(t, []string{"wave-" + s.pool + "-" + vms[1], "wave-" + s.pool + "-" + vms[2], "wave-" + s.pool + "-" + vms[3]}, ids)
	require.Contains(t, errOut, "3 of 3 migration(s) submitted")
	for _, mid := range ids {
		require.Contains(t, errOut, "migration "+mid+": succeeded")
	}
	_, errOut, status = s.cli(operator, "migration", "wave", wave)
	require.Equal(t, 0, status, errOut)
	var runs int
	require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM migrations WHERE id = ANY($1)`, ids).Scan(&runs))
	require.Equal(t, 3, runs, "the second run started nothing twice")

	// An override: refused without -ttl (2), applied with one.
	_, _, status = s.cli(operator, "override", "pin", "-site", "lon1", "-min", "1", "-max", "2", "-why", "wave")
	require.Equal(t, 2, status)
	out, errOut, status = s.cli(operator, "override", "pin", "-site", "lon1", "-min", "1", "-max", "2", "-ttl", "1h", "-why", "wave")
	require.Equal(t, 0, status, errOut)
	require.Contains(t, out, "(pin) until")
	var overrides struct {
		Active []struct {
			Site string `json:"site"`
			Who  string `json:"who"`
		} `json:"active"`
	}
	// The override is a signal: the fleet applies it on its next workflow task.
	s.eventually(30*time.Second, "the fleet applies the override", func() bool {
		require.Equal(t, 200, s.call("GET", "/overrides", nil, &overrides))
		return len(overrides.Active) == 1
	})
	require.Equal(t, "lon1", overrides.Active[0].Site)
}
