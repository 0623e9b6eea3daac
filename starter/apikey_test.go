package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store/storetest"
)

func TestAPIKeysAreCreatedListedAndRevoked(t *testing.T) {
	url := storetest.NewDatabase(t)
	s := storetest.Open(t, url)
	ctx := context.Background()
	cfg := config.Config{DatabaseURL: url}
	run := func(args ...string) (string, string, error) {
		var out, msgs bytes.Buffer
		err := apikeyCommand(&cfg, &out, &msgs).ParseAndRun(ctx, args)
		return out.String(), msgs.String(), err
	}

	out, msgs, err := run("create", "-name", "ann", "-role", "operator")
	require.NoError(t, err)
	key := strings.TrimSpace(out)
	id := apikey.IDOf(key)
	require.NotEmpty(t, id, "the only output is the key: %q", out)
	require.Contains(t, msgs, "created API key "+id+" (operator")
	k, err := s.UseAPIKey(ctx, apikey.Hash(key))
	require.NoError(t, err)
	require.Equal(t, apikey.Operator, k.Role)

	// -first creates nothing once there is a key.
	out, msgs, err = run("create", "-name", "make run", "-role", "admin", "-first")
	require.NoError(t, err)
	require.Empty(t, out)
	require.Contains(t, msgs, "none created")

	connectorKey, _, err := run("create", "-name", "appliance", "-role", "connector", "-connector", "appliance-1")
	require.NoError(t, err)
	out, _, err = run("list")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^ID\s+PREFIX\s+ROLE\s+CONNECTOR\s+NAME`, lines[0])
	require.Regexp(t, `^`+id+`\s+pmo_`+id+`_…\s+operator\s+-\s+ann\s+\S+Z\s+\S+Z\s+-$`, lines[1])
	connectorID := apikey.IDOf(strings.TrimSpace(connectorKey))
	require.Regexp(t, `^`+connectorID+`\s+pmo_`+connectorID+`_…\s+connector\s+appliance-1\s+appliance\s`, lines[2], "a connector's key names its connector")
	require.NotContains(t, out, key)

	out, _, err = run("revoke", id)
	require.NoError(t, err)
	require.Equal(t, "revoked API key "+id+" (operator, \"ann\")\n", out)
	out, _, err = run("revoke", key) // the key itself names its ID
	require.NoError(t, err)
	require.Contains(t, out, "was revoked already")
	k, err = s.UseAPIKey(ctx, apikey.Hash(key))
	require.NoError(t, err)
	require.True(t, k.Revoked())

	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"create", "-role", "admin"}, "-name is required, at most 100 characters: who or what uses the key"},
		{[]string{"create", "-name", "bob", "-role", "root"}, `-role: unknown role "root": want viewer, operator, admin or connector`},
		{[]string{"create", "-name", "bob"}, `-role: unknown role "": want viewer, operator, admin or connector`},
		{[]string{"revoke", "nosuchkey"}, `no API key "nosuchkey" (starter apikey list shows them)`},
		{[]string{"revoke"}, "apikey revoke takes one key ID (starter apikey list shows them)"},
	} {
		_, _, err := run(c.args...)
		require.EqualError(t, err, c.err, "%v", c.args)
	}
	keys, err := s.APIKeys(ctx)
	require.NoError(t, err)
	require.Len(t, keys, 2, "failed commands write nothing")
}

// The real binary exits 0 with the key alone on stdout, and 1 with one line on
// stderr when the input is bad.
func TestAPIKeyCommandExitCodes(t *testing.T) {
	url := storetest.NewDatabase(t)
	storetest.Open(t, url)
	bin := filepath.Join(t.TempDir(), "starter")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	starter := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return stdout.String(), stderr.String(), exit.ExitCode()
		}
		require.NoError(t, err)
		return stdout.String(), stderr.String(), 0
	}

	stdout, _, code := starter("apikey", "create", "-name", "ci", "-role", "viewer")
	require.Equal(t, 0, code)
	require.Regexp(t, `^pmo_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\n$`, stdout)

	_, stderr, code := starter("apikey", "create", "-name", "ci", "-role", "superuser")
	require.Equal(t, 1, code)
	require.Equal(t, "starter: -role: unknown role \"superuser\": want viewer, operator, admin or connector\n", stderr)

	// A connector's key names its connector, and only a connector's key does.
	_, stderr, code = starter("apikey", "create", "-name", "appliance", "-role", "connector")
	require.Equal(t, 1, code)
	require.Equal(t, "starter: -connector is required with -role connector: the ID of the connector the key posts metrics for\n", stderr)
	_, stderr, code = starter("apikey", "create", "-name", "ci", "-role", "operator", "-connector", "appliance-1")
	require.Equal(t, 1, code)
	require.Equal(t, "starter: -connector goes with -role connector only\n", stderr)
	_, stderr, code = starter("apikey", "create", "-name", "appliance", "-role", "connector", "-connector", "ams 1")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "starter: -connector: may hold only letters")
	stdout, _, code = starter("apikey", "create", "-name", "appliance", "-role", "connector", "-connector", "appliance-1")
	require.Equal(t, 0, code)
	require.Regexp(t, `^pmo_[0-9a-f]{12}_`, stdout)

	_, stderr, code = starter("apikey", "revoke", "0123456789ab")
	require.Equal(t, 1, code)
	require.Equal(t, "starter: no API key \"0123456789ab\" (starter apikey list shows them)\n", stderr)
}
