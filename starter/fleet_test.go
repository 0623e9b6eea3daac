package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/testenv"
	"github.com/pmo-dev/pmo/workflows"
)

// `fleet start -all` starts one fleet per pool that has sites; no worker polls the test's
// own namespace, so each stays as it was started, and is terminated at the end.
func TestFleetStartAllStartsEveryPoolsFleetOnce(t *testing.T) {
	url := storetest.NewDatabase(t)
	s := storetest.Open(t, url)
	ctx := context.Background()
	addr := testenv.TemporalAddress(t)
	cfg := config.Config{DatabaseURL: url, TemporalAddress: addr, TemporalNamespace: testenv.Namespace(t, addr), Pool: "default"}
	run := func(args ...string) error { return fleetCommand(&cfg).ParseAndRun(ctx, args) }
	require.ErrorContains(t, run("start", "-all"), "no sites yet")

	suffix := fmt.Sprint(time.Now().UnixNano() % 1_000_000_000)
	pools := []string{"emea-" + suffix, "amer-" + suffix}
	for i, p := range pools {
		_, err := s.Pool.Exec(ctx, `INSERT INTO sites (id, name, region, uplink_bytes_per_sec, pool) VALUES ($1, $1, 'r', 1e9, $2)`, fmt.Sprint("s", i, "-", suffix), p)
		require.NoError(t, err)
	}
	require.NoError(t, run("start", "-all", "-tick", "1m"))
	tc, err := client.Dial(client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace})
	require.NoError(t, err)
	defer tc.Close()
	runs := map[string]string{}
	for _, p := range pools {
		d, err := tc.DescribeWorkflowExecution(ctx, workflows.FleetWorkflowID(p), "")
		require.NoError(t, err, "pool %s has its fleet", p)
		runs[p] = d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	}
	require.NoError(t, run("start", "-all"), "a second start leaves the running fleets alone")
	for _, p := range pools {
		d, err := tc.DescribeWorkflowExecution(ctx, workflows.FleetWorkflowID(p), "")
		require.NoError(t, err)
		require.Equal(t, runs[p], d.GetWorkflowExecutionInfo().GetExecution().GetRunId())
	}
}
