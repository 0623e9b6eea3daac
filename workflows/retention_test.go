package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/activities"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/contract"
)

func defaultRetention(t *testing.T) config.Retention {
	t.Helper()
	cfg, err := config.Load()
	require.NoError(t, err)
	return cfg.Retention
}

func TestRetentionWorkflowCutsAtItsStartAndReturnsTheCounts(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Retention{})
	start := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	settings := defaultRetention(t)
	var got []contract.RetentionInput
	env.OnActivity(retentionActivities.ApplyRetention, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in contract.RetentionInput) (contract.RetentionResult, error) {
			got = append(got, in)
			if len(got) == 1 {
				return contract.RetentionResult{}, errors.New("database restarting")
			}
			return contract.RetentionResult{MetricsDeleted: 3, MetricsFolded: 720, MetricsDownsampled: 2, PlansDeleted: 1}, nil
		})
	env.ExecuteWorkflow(RetentionWorkflow, settings)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res contract.RetentionResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, contract.RetentionResult{MetricsDeleted: 3, MetricsFolded: 720, MetricsDownsampled: 2, PlansDeleted: 1}, res)
	require.Len(t, got, 2, "a failed attempt is retried")
	for _, in := range got {
		require.True(t, in.Now.Equal(start), "windows are measured from the run's start, on every attempt: %s", in.Now)
		require.Equal(t, settings, in.Settings)
	}
}

func TestRetentionWorkflowRejectsBadSettingsWithoutTouchingAnything(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Retention{})
	called := false
	env.OnActivity(retentionActivities.ApplyRetention, mock.Anything, mock.Anything).Return(
		func(context.Context, contract.RetentionInput) (contract.RetentionResult, error) {
			called = true
			return contract.RetentionResult{}, nil
		})
	settings := defaultRetention(t)
	settings.Forecasts = 24 * time.Hour // shorter than the forecast accuracy window
	env.ExecuteWorkflow(RetentionWorkflow, settings)
	require.True(t, env.IsWorkflowCompleted())
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	require.True(t, app.NonRetryable())
	require.Contains(t, app.Error(), "PMO_RETENTION_FORECASTS")
	require.False(t, called)
}
