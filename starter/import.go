package main

import (
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

// barRows is the file size from which the import shows a progress bar; a small file
// is done before a bar would draw.
const barRows = 10_000

// importCommand is the parent of the imports of operator files into the database.
func importCommand(cfg *config.Config) *ffcli.Command {
	return &ffcli.Command{
		Name:        "import",
		ShortUsage:  "starter import <what> FILE [flags]",
		ShortHelp:   "import operator files into the database: inventory",
		Subcommands: []*ffcli.Command{importInventoryCommand(cfg)},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func importInventoryCommand(cfg *config.Config) *ffcli.Command {
	fs := flag.NewFlagSet("import inventory", flag.ContinueOnError)
	format := fs.String("format", "", "csv or json (default: by the file's extension)")
	tier := fs.String("tier", "", "SLA tier of a row that names none")
	site := fs.String("site", "", "site of a row that names none")
	return &ffcli.Command{
		Name:       "inventory",
		ShortUsage: "starter import inventory [-format csv|json] [-tier DEFAULT] [-site DEFAULT] FILE",
		ShortHelp:  "upsert the VMs of a CSV or JSON file, PMO's columns or an RVTools vInfo export (docs/import.md)",
		LongHelp: "The whole file is imported in one transaction: any bad row rejects it, and every bad\n" +
			"row is listed by line, column and reason. Importing the same file again changes nothing.",
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("name one inventory file")
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
			s, err := store.Open(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer s.Close()
			counts, took, err := importInventory(ctx, s, file, f, imports.Defaults{Site: *site, SLATier: *tier}, os.Stderr)
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
			fmt.Printf("%d rows: %d inserted, %d updated, %d unchanged in %.2f s\n",
				counts.Rows, counts.Inserted, counts.Updated, counts.Unchanged, took.Seconds())
			return nil
		},
	}
}

// importInventory reads and writes one file, with a progress bar on progress for a
// large one, and says how long it took.
func importInventory(ctx context.Context, s *store.Store, r io.Reader, f imports.Format, def imports.Defaults, progress io.Writer) (imports.Counts, time.Duration, error) {
	start := time.Now()
	vms, err := imports.ReadInventory(r, f, def)
	if err != nil {
		return imports.Counts{}, 0, err
	}
	var report func(int)
	if len(vms) >= barRows {
		bar := progressbar.NewOptions(len(vms), progressbar.OptionSetWriter(progress),
			progressbar.OptionSetDescription("importing"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond))
		defer bar.Finish()
		report = func(done int) { _ = bar.Set(done) }
	}
	counts, err := s.UpsertInventory(ctx, vms, report)
	return counts, time.Since(start), err
}
