package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/schollz/progressbar/v3"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/imports"
	"github.com/pmo-dev/pmo/store"
)

// barBytes is the file size from which the import shows a progress bar; a small file
// is done before a bar would draw.
const barBytes = 512 << 10

// importHelp says what each kind of file holds.
var importHelp = map[imports.Kind]string{
	imports.Sites:     "upsert the sites of a CSV or JSON file: id, name, region, uplink_bytes_per_sec, pool, sources (docs/import.md)",
	imports.SLAs:      "upsert the SLA tiers of a CSV or JSON file: name, max_transfer_seconds, max_downtime_seconds, plan_quantile",
	imports.Inventory: "upsert the VMs of a CSV or JSON file, PMO's columns or an RVTools vInfo export (docs/import.md)",
	imports.History:   "upsert the finished migrations of a CSV or JSON file, the columns of the history (docs/import.md)",
}

// importCommand is the parent of the imports of operator files into the database.
func importCommand(cfg *config.Config) *ffcli.Command {
	var subs []*ffcli.Command
	for _, kind := range imports.Kinds {
		subs = append(subs, importFileCommand(cfg, kind))
	}
	subs = append(subs, maintenanceCommand(cfg))
	return &ffcli.Command{
		Name:        "import",
		ShortUsage:  "starter import sites|slas|inventory|history|maintenance FILE [flags]",
		ShortHelp:   "import operator files: sites, SLA tiers, inventory, history, maintenance calendars",
		Subcommands: subs,
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

// importFileCommand imports a file of one kind; an inventory's rows may take their
// site and tier from flags.
func importFileCommand(cfg *config.Config, kind imports.Kind) *ffcli.Command {
	fs := flag.NewFlagSet("import "+string(kind), flag.ContinueOnError)
	format := fs.String("format", "", "csv or json (default: by the file's extension)")
	var def imports.Defaults
	usage := "starter import " + string(kind) + " [-format csv|json] FILE"
	if kind == imports.Inventory {
		fs.StringVar(&def.SLATier, "tier", "", "SLA tier of a row that names none")
		fs.StringVar(&def.Site, "site", "", "site of a row that names none")
		usage = "starter import inventory [-format csv|json] [-tier DEFAULT] [-site DEFAULT] FILE"
	}
	return &ffcli.Command{
		Name:       string(kind),
		ShortUsage: usage,
		ShortHelp:  importHelp[kind],
		LongHelp: "The whole file is imported in one transaction: any bad row rejects it, and every bad\n" +
			"row is listed by line, column and reason. Importing the same file again changes nothing.",
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("name one %s file", kind)
			}
			path := args[0]
			f := imports.Format(*format)
			if f == "" {
				f = imports.Format(strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), "."))
			}
			if f != imports.CSV && f != imports.JSON {
				return fmt.Errorf("-format: want csv or json, got %q", f)
			}
			file, err := os.Open(path)
			if err != nil {
				return err
			}
			defer file.Close()
			info, err := file.Stat()
			if err != nil {
				return err
			}
			s, err := store.Open(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer s.Close()
			counts, took, err := importFile(ctx, s, file, info.Size(), kind, f, def, os.Stderr)
			var bad imports.Errors
			if errors.As(err, &bad) {
				for _, e := range bad {
					fmt.Fprintln(os.Stderr, e.Error())
				}
				return fmt.Errorf("%s: %s; nothing imported", path, bad.Count())
			}
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			for _, k := range counts.Kept {
				fmt.Fprintf(os.Stderr, "line %d: %s kept: %s\n", k.Line, k.ID, k.Reason)
			}
			if counts.KeptMore > 0 {
				fmt.Fprintf(os.Stderr, "and %d more rows kept\n", counts.KeptMore)
			}
			fmt.Printf("%d rows: %d inserted, %d updated, %d unchanged, %d kept in %.2f s\n",
				counts.Rows, counts.Inserted, counts.Updated, counts.Unchanged, len(counts.Kept)+counts.KeptMore, took.Seconds())
			return nil
		},
	}
}

// importFile reads and writes one file of size bytes, a batch at a time, with a
// progress bar of the bytes read on progress for a large one, and says how long it
// took.
func importFile(ctx context.Context, s *store.Store, r io.Reader, size int64, kind imports.Kind, f imports.Format, def imports.Defaults, progress io.Writer) (imports.Counts, time.Duration, error) {
	start := time.Now()
	if size >= barBytes && progress != nil {
		bar := progressbar.NewOptions64(size, progressbar.OptionSetWriter(progress),
			progressbar.OptionSetDescription("importing "+string(kind)), progressbar.OptionShowBytes(true), progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetRenderBlankState(true))
		defer bar.Finish()
		r = io.TeeReader(r, bar)
	}
	counts, err := s.Import(ctx, imports.NewSource(bufio.NewReaderSize(r, 1<<20), kind, f, def), nil)
	return counts, time.Since(start), err
}
