package main

import (
	"context"
	"encoding/base64"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/fx/fxtest"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/platform"
	"github.com/pmo-dev/pmo/store/storetest"
	"github.com/pmo-dev/pmo/testenv"
	"github.com/pmo-dev/pmo/workflows"
)

// startWorker runs the worker's start-up against the real dev server and a private
// database, as fx would, and stops it when the test ends.
func startWorker(t *testing.T, tc client.Client, cfg config.Config) {
	t.Helper()
	s := storetest.New(t)
	logger := slog.New(slog.DiscardHandler)
	lc := fxtest.NewLifecycle(t)
	NewWorker(lc, cfg, tc, &activities.Fleet{Store: s, Logger: logger}, activities.NewEvents(s, tc, cfg, logger),
		activities.NewRetention(s, logger), s, logger)
	lc.RequireStart()
	t.Cleanup(lc.RequireStop)
}

// With payloads encrypted too: the schedule's stored arguments are then ciphertext,
// different on every write, and the worker must still see that they did not change.
func TestWorkerStartUpCreatesTheRetentionScheduleAndKeepsItInStep(t *testing.T) {
	addr := testenv.TemporalAddress(t)
	for _, encrypted := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[encrypted], func(t *testing.T) {
			// The worker polls the production task queue: in a namespace of its own, it
			// takes no other test's tasks.
			t.Setenv("TEMPORAL_NAMESPACE", testenv.Namespace(t, addr))
			if encrypted {
				t.Setenv("PMO_PAYLOAD_KEY", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))
			}
			retentionScheduleKeptInStep(t, encrypted)
		})
	}
}

func retentionScheduleKeptInStep(t *testing.T, encrypted bool) {
	cfg, err := config.Load()
	require.NoError(t, err)
	tc, err := platform.DialTemporal(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(tc.Close) // after the schedule's deletion below
	ctx := context.Background()
	handle := tc.ScheduleClient().GetHandle(ctx, workflows.RetentionScheduleID)

	startWorker(t, tc, cfg)
	desc, err := handle.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, []client.ScheduleIntervalSpec{{Every: time.Hour}}, desc.Schedule.Spec.Intervals, "hourly by default")
	action := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.Equal(t, "RetentionWorkflow", action.Workflow)
	require.Equal(t, workflows.TaskQueue, action.TaskQueue)

	// Listed, as the Web UI's Schedules page lists it (visibility is eventually
	// consistent).
	require.Eventually(t, func() bool {
		it, err := tc.ScheduleClient().List(ctx, client.ScheduleListOptions{})
		if err != nil {
			return false
		}
		for it.HasNext() {
			e, err := it.Next()
			if err != nil {
				return false
			}
			if e.ID == workflows.RetentionScheduleID && e.WorkflowType.Name == "RetentionWorkflow" {
				return true
			}
		}
		return false
	}, 20*time.Second, 200*time.Millisecond, "the schedule is listed")

	// A second worker with the same settings changes nothing; new settings update it.
	updated := desc.Info.LastUpdateAt
	startWorker(t, tc, cfg)
	desc, err = handle.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, updated, desc.Info.LastUpdateAt, "same settings: the schedule is left alone")

	cfg.Retention.Every, cfg.Retention.Plans = 2*time.Hour, 48*time.Hour
	startWorker(t, tc, cfg)
	desc, err = handle.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, []client.ScheduleIntervalSpec{{Every: 2 * time.Hour}}, desc.Schedule.Spec.Intervals)
	var args config.Retention
	payload := desc.Schedule.Action.(*client.ScheduleWorkflowAction).Args[0].(*commonpb.Payload)
	if encrypted {
		require.Equal(t, platform.EncodingEncrypted, string(payload.GetMetadata()[converter.MetadataEncoding]))
	}
	dc, err := platform.DataConverter(cfg)
	require.NoError(t, err)
	require.NoError(t, dc.FromPayload(payload, &args))
	require.Equal(t, cfg.Retention, args, "the runs get the new settings")
}
