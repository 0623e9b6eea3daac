package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/schollz/progressbar/v3"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// migrationCommand submits, watches and operates migrations through the API.
func migrationCommand(cfg *config.Config, stdout, stderr io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("migration", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "migration",
		ShortUsage: "starter migration submit|wave|watch|pause|resume|cancel|approve [flags] ...",
		ShortHelp:  "submit a migration or a wave from a CSV, watch migrations, pause, resume, cancel or approve one (through the API, with PMO_API_KEY)",
		FlagSet:    fs,
		Subcommands: []*ffcli.Command{
			submitCommand(cfg, stdout, stderr), waveCommand(cfg, stdout, stderr), watchCommand(cfg, stdout, stderr),
			controlCommand(cfg, stdout, "migration", "pause", "pause a migration's copy; the partial copy stays"),
			controlCommand(cfg, stdout, "migration", "resume", "resume a paused copy from where it was"),
			controlCommand(cfg, stdout, "migration", "cancel", "cancel a migration; its partial copy is removed"),
			controlCommand(cfg, stdout, "migration", "approve", "approve a migration's cutover"),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
}

// requestFlags are the flags of one migration request.
type requestFlags struct {
	id, vm, source, maxTransfer, maxDowntime string
	priority                                 int
	requireApproval                          bool
}

func (r *requestFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.vm, "vm", "", "the VM to migrate (required)")
	fs.StringVar(&r.id, "id", "", "the migration's ID; a retry with the same ID starts nothing twice (default: the API makes one up)")
	fs.IntVar(&r.priority, "priority", 0, "priority, 0 to 100: higher goes first")
	fs.BoolVar(&r.requireApproval, "require-approval", false, "the cutover waits for `starter migration approve`")
	fs.StringVar(&r.maxTransfer, "max-transfer", "", "tighten the SLA tier's maximum copy time, e.g. 2h")
	fs.StringVar(&r.maxDowntime, "max-downtime", "", "tighten the SLA tier's maximum downtime, e.g. 30s")
	fs.StringVar(&r.source, "source", "", "the disk to copy, instead of the inventory's")
}

func (r requestFlags) request() workflows.MigrationRequest {
	return workflows.MigrationRequest{ID: r.id, VMID: r.vm, Priority: r.priority, Source: r.source,
		RequireApproval: r.requireApproval, MaxTransfer: r.maxTransfer, MaxDowntime: r.maxDowntime}
}

// requestFlagNames are the flags of a request's fields.
var requestFlagNames = map[string]string{"vm_id": "vm", "max_transfer": "max-transfer", "max_downtime": "max-downtime"}

// checkRequest checks a request as the API will, naming the flag of a bad field. The
// API makes an ID up for a request without one.
func checkRequest(req workflows.MigrationRequest) error {
	if req.ID == "" {
		req.ID = "x"
	}
	err := req.Validate()
	var fe *validation.Error
	if errors.As(err, &fe) {
		name, ok := requestFlagNames[fe.Field]
		if !ok {
			name = fe.Field
		}
		return usagef("-%s: %s", name, fe.Reason)
	}
	return err
}

func submitCommand(cfg *config.Config, stdout, stderr io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("migration submit", flag.ContinueOnError)
	var r requestFlags
	r.register(fs)
	watch := fs.Bool("watch", false, "then watch it to its end, and exit 1 unless it succeeds")
	api := apiFlag(fs)
	return &ffcli.Command{
		Name:       "submit",
		ShortUsage: "starter migration submit -vm VM [-id ID] [-priority N] [-require-approval] [-watch]",
		ShortHelp:  "start a migration now; prints its ID",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("migration submit takes no arguments, got %q", args[0])
			}
			req := r.request()
			if err := checkRequest(req); err != nil {
				return err
			}
			c, err := newAPIClient(cfg, *api)
			if err != nil {
				return err
			}
			var answer struct {
				Migration workflows.MigrationStarted `json:"migration"`
				WebUI     string                     `json:"web_ui"`
			}
			status, err := c.call(ctx, "POST", "/migrations", req, &answer)
			if err != nil {
				return err
			}
			verb := "started"
			if status == 200 {
				verb = "was started before"
			}
			fmt.Fprintln(stdout, answer.Migration.ID)
			fmt.Fprintf(stderr, "migration %s %s: VM %s at %s, %s SLA, deadline %s\n  %s\n", answer.Migration.ID, verb,
				answer.Migration.VMID, answer.Migration.Site, answer.Migration.SLATier, answer.Migration.Deadline.Format(time.RFC3339), answer.WebUI)
			if !*watch {
				return nil
			}
			return watchMigrations(ctx, c, []string{answer.Migration.ID}, time.Second, stderr)
		},
	}
}

// waveColumns are the columns a wave file may have; vm_id is required.
var waveColumns = []string{"vm_id", "id", "priority", "require_approval", "max_transfer", "max_downtime", "source"}

func waveCommand(cfg *config.Config, stdout, stderr io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("migration wave", flag.ContinueOnError)
	name := fs.String("name", "", "the wave's name: a row without an id gets <name>-<vm_id>, so running the file again starts nothing twice (default: the file's name)")
	rate := fs.Float64("rate", 10, "submissions a second")
	watch := fs.Bool("watch", false, "then watch the wave to its end, and exit 1 unless every migration succeeds")
	api := apiFlag(fs)
	return &ffcli.Command{
		Name:       "wave",
		ShortUsage: "starter migration wave [-name NAME] [-rate 10] [-watch] FILE.csv",
		ShortHelp:  "submit a migration for each row of a CSV file (columns: " + strings.Join(waveColumns, ", ") + ")",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return usagef("migration wave takes one CSV file")
			}
			if *rate <= 0 || *rate > 1000 {
				return usagef("-rate must be more than 0 and at most 1000 a second, got %v", *rate)
			}
			wave := *name
			if wave == "" {
				wave = strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0]))
			}
			if err := validation.ID("name", wave); err != nil {
				return usagef("-%s", err)
			}
			reqs, err := readWave(args[0], wave)
			if err != nil {
				return usagef("%s", err)
			}
			c, err := newAPIClient(cfg, *api)
			if err != nil {
				return err
			}
			var ids, refused []string
			tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
			defer tick.Stop()
			for i, req := range reqs {
				if i > 0 {
					select {
					case <-tick.C:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				if _, err := c.call(ctx, "POST", "/migrations", req.MigrationRequest, nil); err != nil {
					refused = append(refused, fmt.Sprintf("line %d (%s): %v", req.line, req.VMID, err))
					continue
				}
				ids = append(ids, req.ID)
				fmt.Fprintln(stdout, req.ID)
			}
			fmt.Fprintf(stderr, "wave %s: %d of %d migration(s) submitted\n", wave, len(ids), len(reqs))
			for _, r := range refused {
				fmt.Fprintln(stderr, "  refused:", r)
			}
			var werr error
			if *watch && len(ids) > 0 {
				werr = watchMigrations(ctx, c, ids, 2*time.Second, stderr)
			}
			if len(refused) > 0 {
				return errors.Join(fmt.Errorf("%d of %d row(s) refused (listed above)", len(refused), len(reqs)), werr)
			}
			return werr
		},
	}
}

// waveRow is a row of a wave file and its line.
type waveRow struct {
	workflows.MigrationRequest
	line int
}

// readWave reads a wave file whole, checking every row before anything is sent; a bad
// one is named by line and column.
func readWave(path, wave string) ([]waveRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: no header row: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(waveColumns, h) {
			return nil, fmt.Errorf("%s: line 1: unknown column %q (want %s)", path, h, strings.Join(waveColumns, ", "))
		}
		col[h] = i
	}
	if _, ok := col["vm_id"]; !ok {
		return nil, fmt.Errorf("%s: line 1: no vm_id column", path)
	}
	var rows []waveRow
	seen := map[string]int{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		row := waveRow{line: line, MigrationRequest: workflows.MigrationRequest{VMID: get("vm_id"), ID: get("id"), Source: get("source"),
			MaxTransfer: get("max_transfer"), MaxDowntime: get("max_downtime")}}
		if row.ID == "" {
			row.ID = wave + "-" + row.VMID
		}
		if v := get("priority"); v != "" {
			if row.Priority, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("%s: line %d: priority: %q is not a whole number", path, line, v)
			}
		}
		if v := get("require_approval"); v != "" {
			if row.RequireApproval, err = strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("%s: line %d: require_approval: %q is not true or false", path, line, v)
			}
		}
		if err := row.Validate(); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", path, line, err)
		}
		if first, ok := seen[row.ID]; ok {
			return nil, fmt.Errorf("%s: line %d: id %s is also on line %d", path, line, row.ID, first)
		}
		seen[row.ID] = line
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no migrations in it", path)
	}
	return rows, nil
}

func watchCommand(cfg *config.Config, _, stderr io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("migration watch", flag.ContinueOnError)
	interval := fs.Duration("interval", time.Second, "how often to look")
	api := apiFlag(fs)
	return &ffcli.Command{
		Name:       "watch",
		ShortUsage: "starter migration watch [-interval 1s] ID...",
		ShortHelp:  "show migrations' progress until they end; exit 1 unless all succeed",
		FlagSet:    fs,
		Exec: func(ctx context.Context, ids []string) error {
			if len(ids) == 0 {
				return usagef("migration watch takes one or more migration IDs")
			}
			if *interval < 100*time.Millisecond {
				return usagef("-interval must be at least 100ms, got %s", *interval)
			}
			c, err := newAPIClient(cfg, *api)
			if err != nil {
				return err
			}
			return watchMigrations(ctx, c, ids, *interval, stderr)
		},
	}
}

// migrationState is what watching reads of GET /migrations/{id}.
type migrationState struct {
	ID             string  `json:"id"`
	Phase          string  `json:"phase"`
	Outcome        string  `json:"outcome"`
	Error          string  `json:"error"`
	WorkflowStatus string  `json:"workflow_status"`
	Bytes          int64   `json:"bytes"`
	BytesDone      int64   `json:"bytes_done"`
	SLASecondsLeft float64 `json:"sla_seconds_left"`
	ETASeconds     float64 `json:"eta_seconds"`
}

func (m migrationState) ended() bool { return m.WorkflowStatus != "" && m.WorkflowStatus != "Running" }

// watchMigrations shows a progress bar over the migrations' bytes until all have
// ended, then one line each; it fails unless every one succeeded.
func watchMigrations(ctx context.Context, c *apiClient, ids []string, interval time.Duration, out io.Writer) error {
	states := make([]migrationState, len(ids))
	bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(out), progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetRenderBlankState(true), progressbar.OptionClearOnFinish())
	for {
		var total, done int64
		ended := 0
		phases := map[string]int{}
		for i, id := range ids {
			if states[i].ended() {
				ended++
				total += states[i].Bytes
				done += states[i].Bytes
				continue
			}
			if _, err := c.call(ctx, "GET", "/migrations/"+id, nil, &states[i]); err != nil {
				_ = bar.Exit()
				return err
			}
			st := states[i]
			total += st.Bytes
			done += st.BytesDone
			if st.ended() {
				ended++
				done += st.Bytes - st.BytesDone
			}
			phases[st.Phase]++
		}
		bar.ChangeMax64(max(total, 1))
		_ = bar.Set64(min(done, total))
		bar.Describe(describeWatch(states, ended, phases))
		if ended == len(ids) {
			break
		}
		select {
		case <-ctx.Done():
			_ = bar.Exit()
			return ctx.Err()
		case <-time.After(interval):
		}
	}
	_ = bar.Finish()
	var failed []string
	for _, st := range states {
		fmt.Fprintf(out, "migration %s: %s", st.ID, st.Outcome)
		if st.Error != "" {
			fmt.Fprintf(out, " (%s)", st.Error)
		}
		fmt.Fprintln(out)
		if st.Outcome != workflows.OutcomeSucceeded {
			failed = append(failed, st.ID)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d migration(s) did not succeed: %s", len(failed), len(ids), strings.Join(failed, ", "))
	}
	return nil
}

// describeWatch is the bar's text: one migration's phase, ETA and SLA time left, or
// for many how many ended and the phases of the rest.
func describeWatch(states []migrationState, ended int, phases map[string]int) string {
	if len(states) == 1 {
		st := states[0]
		text := st.ID + " " + st.Phase
		if st.ETASeconds > 0 {
			text += fmt.Sprintf(", ETA %s", (time.Duration(st.ETASeconds) * time.Second).String())
		}
		if !st.ended() && st.SLASecondsLeft != 0 {
			text += fmt.Sprintf(", SLA %s left", (time.Duration(st.SLASecondsLeft) * time.Second).String())
		}
		return text
	}
	parts := []string{fmt.Sprintf("%d/%d ended", ended, len(states))}
	for _, p := range []string{workflows.PhaseWaiting, workflows.PhasePreparing, workflows.PhaseTransferring, workflows.PhasePaused,
		workflows.PhaseAwaitingCutover, workflows.PhaseCutover, workflows.PhaseRecording} {
		if phases[p] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", phases[p], p))
		}
	}
	return strings.Join(parts, ", ")
}

// controlCommand is `starter migration|wave ACTION ID`: an operator's action, with who
// and why, through POST /migrations/{id}/ACTION or POST /waves/{id}/ACTION.
func controlCommand(cfg *config.Config, stdout io.Writer, noun, action, help string) *ffcli.Command {
	fs := flag.NewFlagSet(noun+" "+action, flag.ContinueOnError)
	why := fs.String("why", "", "why, for the audit trail (required)")
	who := fs.String("who", "", "who acts (default: your user name)")
	api := apiFlag(fs)
	return &ffcli.Command{
		Name:       action,
		ShortUsage: "starter " + noun + " " + action + " ID -why TEXT [-who NAME]",
		ShortHelp:  help,
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) == 0 {
				return usagef("%s %s takes one %s ID", noun, action, noun)
			}
			// Flags may come after the ID too.
			if stray, err := parseAfter(fs, args[1:]); err != nil {
				return err
			} else if stray != "" {
				return usagef("%s %s takes one %s ID, got %q after it", noun, action, noun, stray)
			}
			ctl := workflows.Control{Who: whoActs(*who), Why: *why}
			if err := ctl.Validate(); err != nil {
				return usagef("-%s", err)
			}
			c, err := newAPIClient(cfg, *api)
			if err != nil {
				return err
			}
			if _, err := c.call(ctx, "POST", "/"+noun+"s/"+url.PathEscape(args[0])+"/"+action, ctl, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: sent to %s %s\n", action, noun, args[0])
			return nil
		},
	}
}

// whoActs is the -who flag, or the user's name.
func whoActs(flagged string) string {
	if flagged != "" {
		return flagged
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "starter"
}
