package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"

	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// maxImportBody bounds an imported file: 100,000 VMs in PMO's columns are some
// 10 MiB, and an RVTools export has many more columns.
const maxImportBody = 256 << 20

// importFile answers PUT /inventory, PUT /sites, PUT /slas and POST /history: it
// stages a CSV or JSON file of the kind where the worker reads it and runs
// ImportWorkflow on it, answering its counts. For an inventory, the query's site and
// tier fill rows that name none. The file never goes through workflow history; the
// workflow's ID is the hash of the file and its defaults, so a file sent twice at
// once is imported once.
func (s *Server) importFile(kind imports.Kind) echo.HandlerFunc {
	return func(c echo.Context) error {
		ct, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
		in := imports.StagedFile{Kind: kind}
		switch ct {
		case "text/csv":
			in.Format = imports.CSV
		case echo.MIMEApplicationJSON:
			in.Format = imports.JSON
		default:
			return problem(http.StatusUnsupportedMediaType, "send the file as text/csv or application/json")
		}
		if kind == imports.Inventory {
			in.Defaults = imports.Defaults{Site: c.QueryParam("site"), SLATier: c.QueryParam("tier")}
			if err := validation.Name("site", in.Defaults.Site); err != nil {
				return err
			}
			if err := validation.Name("tier", in.Defaults.SLATier); err != nil {
				return err
			}
		}
		return s.runImport(c, in)
	}
}

// checkFile reads a staged file as the worker will, a row at a time, and checks the
// sites and tiers it names, so that a file with bad rows is refused at the edge,
// listing them, and starts no workflow. It holds no rows: a key repeated in the file
// is found by the worker as it writes, and refused the same way.
func (s *Server) checkFile(ctx context.Context, in imports.StagedFile) error {
	sites, err := s.siteIDs(ctx)
	if err != nil {
		return err
	}
	tiers, err := s.tierNames(ctx)
	if err != nil {
		return err
	}
	f, err := os.Open(in.Path)
	if err != nil {
		return fmt.Errorf("read the staged file: %w", err)
	}
	defer f.Close()
	opt := imports.Options{Defaults: in.Defaults, Sites: sites, Tiers: tiers}
	if _, err := imports.Scan(bufio.NewReaderSize(f, 1<<20), in.Kind, in.Format, opt, nil); err != nil {
		return rejected(err)
	}
	return nil
}

// rejected is the 422 of a file that cannot be imported, listing its bad rows.
func rejected(err error) *Problem {
	var bad imports.Errors
	if errors.As(err, &bad) {
		p := problem(http.StatusUnprocessableEntity, bad.Count()+"; nothing imported")
		p.Errors = bad
		return p
	}
	return problem(http.StatusUnprocessableEntity, err.Error()+"; nothing imported")
}

// runImport stages the body, checks it, and imports it through ImportWorkflow.
func (s *Server) runImport(c echo.Context, in imports.StagedFile) error {
	path, id, err := s.stage(c, string(in.Kind), string(in.Format), maxImportBody,
		string(in.Kind), string(in.Format), in.Defaults.Site, in.Defaults.SLATier)
	if err != nil {
		return err
	}
	in.Path = path
	if err := s.checkFile(c.Request().Context(), in); err != nil {
		os.Remove(path)
		return err
	}
	ctx := c.Request().Context()
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.ImportWorkflowID(in.Kind, id), TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.ImportWorkflow, in)
	if err != nil {
		return err
	}
	var counts imports.Counts
	if err := run.Get(ctx, &counts); err != nil {
		return err // bad rows: toProblem lists them
	}
	s.Logger.Info("file imported", "kind", in.Kind, "workflow", run.GetID(), "rows", counts.Rows, "inserted", counts.Inserted, "updated", counts.Updated, "kept", len(counts.Kept))
	return c.JSON(http.StatusOK, counts)
}

// stage writes the body, at most limit bytes, to the upload folder as name-<hash>.ext,
// through a temporary file so that the worker never reads half a file. The hash is of
// the body and of parts, which say what the file is for; it is returned with the path.
func (s *Server) stage(c echo.Context, name, ext string, limit int64, parts ...string) (path, id string, err error) {
	if err := os.MkdirAll(s.Uploads, 0o755); err != nil {
		return "", "", fmt.Errorf("upload folder: %w", err)
	}
	tmp, err := os.CreateTemp(s.Uploads, ".upload-*")
	if err != nil {
		return "", "", fmt.Errorf("upload folder: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%s\x00", p)
	}
	body := http.MaxBytesReader(c.Response(), c.Request().Body, limit)
	_, err = io.Copy(io.MultiWriter(tmp, h), body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return "", "", problem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the file is larger than %d bytes", limit))
	}
	if err != nil {
		return "", "", fmt.Errorf("stage the file: %w", err)
	}
	id = hex.EncodeToString(h.Sum(nil))[:32]
	path = filepath.Join(s.Uploads, name+"-"+id+"."+ext)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", "", fmt.Errorf("stage the file: %w", err)
	}
	return path, id, nil
}
