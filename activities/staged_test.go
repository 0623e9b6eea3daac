package activities

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/pmo-dev/pmo/imports"
)

// The import and calendar activities open, and delete once done, only files the web
// server staged in the uploads folder, whatever path their input names: not a file
// elsewhere, not one through a link, not one in a folder below.
func TestFileActivitiesOpenOnlyStagedFiles(t *testing.T) {
	_, s := fleetFixture(t)
	uploads := t.TempDir()
	fleet := &Fleet{Store: s, Logger: slog.Default(), Uploads: uploads}
	events := &Events{Store: s, Logger: slog.Default(), Uploads: uploads}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(fleet)
	env.RegisterActivity(events)

	outside := filepath.Join(t.TempDir(), "sites.csv")
	require.NoError(t, os.WriteFile(outside, []byte("id,name,region,uplink_bytes_per_sec\nams9,A,eu,1e9\n"), 0o600))
	link := filepath.Join(uploads, "sites-link.csv")
	require.NoError(t, os.Symlink(outside, link))
	require.NoError(t, os.MkdirAll(filepath.Join(uploads, "below"), 0o700))
	below := filepath.Join(uploads, "below", "sites.csv")
	require.NoError(t, os.WriteFile(below, []byte("id,name,region,uplink_bytes_per_sec\nams9,A,eu,1e9\n"), 0o600))
	for _, path := range []string{outside, link, below, filepath.Join(uploads, "..", filepath.Base(uploads)+"x", "f.csv")} {
		_, err := env.ExecuteActivity(fleet.Import, imports.StagedFile{Kind: imports.Sites, Format: imports.CSV, Path: path})
		var app *temporal.ApplicationError
		require.True(t, errors.As(err, &app), "%s: %v", path, err)
		require.Equal(t, ErrTypeNotStaged, app.Type(), path)
		require.True(t, app.NonRetryable())
		_, err = env.ExecuteActivity(events.RecordEvents, imports.EventBatch{Calendar: &imports.CalendarSource{Name: "ops", Path: path}})
		require.True(t, errors.As(err, &app), "%s: %v", path, err)
		require.Equal(t, ErrTypeNotStaged, app.Type(), path)
	}
	require.FileExists(t, outside, "nothing outside the uploads folder is deleted")
	require.FileExists(t, below)
	var n int
	require.NoError(t, s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM sites WHERE id = 'ams9'`).Scan(&n))
	require.Zero(t, n, "nothing imported")

	// A file staged there is imported, and removed.
	good := filepath.Join(uploads, "sites-1.csv")
	require.NoError(t, os.WriteFile(good, []byte("id,name,region,uplink_bytes_per_sec\nams9,A,eu,1e9\n"), 0o600))
	_, err := env.ExecuteActivity(fleet.Import, imports.StagedFile{Kind: imports.Sites, Format: imports.CSV, Path: good})
	require.NoError(t, err)
	require.NoFileExists(t, good)
}
