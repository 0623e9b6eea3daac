package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pmo-dev/pmo/planning"
)

func TestConnectorViewShowsTheMeasuresItHas(t *testing.T) {
	c := planning.Connector{ID: "c1", Usage: planning.Usage{StorageUsedBytes: 3 << 20, TargetFreeBytes: 5 << 30, ReadLatencySeconds: 0.002,
		CPUThrottledPercent: 25}}
	b, err := json.Marshal(viewConnector(c))
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, 0.002, got["read_latency_seconds"])
	require.Equal(t, float64(5<<30), got["target_free_bytes"])
	require.Equal(t, float64(3<<20), got["used"].(map[string]any)["storage_bytes"])
	require.Equal(t, 25.0, got["cpu_throttled_percent"])
	require.Equal(t, "cpu", got["bound"], "held back a quarter of the time by its CPU limit")

	// Unmeasured is left out rather than shown as a full disk or instant reads.
	b, err = json.Marshal(viewConnector(planning.Connector{ID: "c2"}))
	require.NoError(t, err)
	got = map[string]any{}
	require.NoError(t, json.Unmarshal(b, &got))
	require.NotContains(t, got, "read_latency_seconds")
	require.NotContains(t, got, "target_free_bytes")
	require.NotContains(t, got, "cpu_throttled_percent")
	require.NotContains(t, got, "bound")
}
