package activities

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/validation"
)

// Import reads a staged file and upserts its rows in one transaction. A file with bad
// rows imports nothing and fails for good, listing them. Importing the same file
// again changes nothing, so a retry is safe; the staged file is removed once it is
// imported.
func (a *Fleet) Import(ctx context.Context, in imports.StagedFile) (imports.Counts, error) {
	if err := staged(a.Uploads, in.Path); err != nil {
		return imports.Counts{}, err
	}
	f, err := os.Open(in.Path)
	if errors.Is(err, os.ErrNotExist) {
		return imports.Counts{}, temporal.NewNonRetryableApplicationError("the staged file "+in.Path+" is gone", "StagedFileGone", err)
	}
	if err != nil {
		return imports.Counts{}, err
	}
	// The file is read a batch at a time as it is written, so that the worker holds a
	// batch, not the file.
	src := imports.NewSource(bufio.NewReaderSize(f, 1<<20), in.Kind, in.Format, in.Defaults)
	counts, err := a.Store.Import(ctx, src, func(done int) { activity.RecordHeartbeat(ctx, done) })
	f.Close()
	if badFile(err) {
		// A file that cannot be read or has bad rows fails the same way every time: it
		// is rejected for good, and not kept.
		unstage(a.Logger, in.Path)
		return imports.Counts{}, rejected(err)
	}
	if err != nil {
		return imports.Counts{}, err // the database: worth a retry
	}
	unstage(a.Logger, in.Path)
	a.Logger.Info("file imported", "kind", in.Kind, "rows", counts.Rows, "inserted", counts.Inserted, "updated", counts.Updated, "unchanged", counts.Unchanged, "kept", len(counts.Kept))
	return counts, nil
}

// badFile reports whether err is a file's own fault (bad rows, or a file that cannot
// be read as its kind), which reading it again would meet again.
func badFile(err error) bool {
	var bad imports.Errors
	return errors.As(err, &bad) || errors.Is(err, imports.ErrUnreadable)
}

// rejected is the non-retryable error of a bad file, with its bad rows as details.
func rejected(err error) error {
	var bad imports.Errors
	if errors.As(err, &bad) {
		return temporal.NewNonRetryableApplicationError(bad.Count()+"; nothing imported", validation.InvalidRowsErrorType, err, bad)
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), validation.InvalidRowsErrorType, err)
}

// ErrTypeNotStaged is the application error type of a path that is not a file staged
// in the uploads folder.
const ErrTypeNotStaged = "NotStaged"

// staged refuses, for good, a path that is not a regular file directly in the uploads
// folder: the file activities open, and delete once done, only what the web server
// staged, whatever path their input names.
func staged(uploads, path string) error {
	dir, errDir := filepath.Abs(uploads)
	p, errPath := filepath.Abs(path)
	ok := uploads != "" && errDir == nil && errPath == nil && filepath.Dir(p) == dir
	if ok {
		// A link there could point anywhere.
		info, err := os.Lstat(p)
		ok = err != nil || info.Mode().IsRegular()
	}
	if !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is not a file staged in the uploads folder %s", path, uploads), ErrTypeNotStaged, nil)
	}
	return nil
}

// unstage removes a staged file once it is imported or rejected.
func unstage(logger *slog.Logger, path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger.Warn("staged file not removed", "path", path, "error", err)
	}
}
