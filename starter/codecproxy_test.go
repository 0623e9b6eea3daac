package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// codec-proxy refuses to start without a key, with a URL it cannot use, or with a bad
// payload key, each with one line naming what to fix.
func TestCodecProxyRefusesBadSettings(t *testing.T) {
	t.Setenv("PMO_API_KEY", "")
	err := run(context.Background(), []string{"codec-proxy"})
	require.EqualError(t, err, "set PMO_API_KEY to an API key (starter apikey create -role operator; make run keeps one in .data/admin.key)")

	t.Setenv("PMO_API_KEY", "pmo_0123456789ab_x")
	err = run(context.Background(), []string{"codec-proxy", "-api", "127.0.0.1:8080"})
	require.EqualError(t, err, `-api must be an http(s) URL such as http://127.0.0.1:8080, got "127.0.0.1:8080"`)

	t.Setenv("PMO_PAYLOAD_KEY", "c2hvcnQ=")
	err = run(context.Background(), []string{"codec-proxy"})
	require.EqualError(t, err, "config: PMO_PAYLOAD_KEY must be 32 bytes in base64 (openssl rand -base64 32), got 5 bytes")
}
