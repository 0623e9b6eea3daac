package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"

	"github.com/peterbourgon/ff/v3/ffcli"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/validation"
	"github.com/pmo-dev/pmo/workflows"
)

// connectorCommand is the parent of the commands for external connectors: those PMO
// did not start, such as appliances at a customer site.
func connectorCommand(cfg *config.Config) *ffcli.Command {
	return &ffcli.Command{
		Name:        "connector",
		ShortUsage:  "starter connector <register|deregister> [flags]",
		ShortHelp:   "add an external connector (one PMO did not start) to a pool, or take it out (docs/connectors.md)",
		Subcommands: []*ffcli.Command{registerCommand(cfg), deregisterCommand(cfg)},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

func registerCommand(cfg *config.Config) *ffcli.Command {
	fs := flag.NewFlagSet("connector register", flag.ContinueOnError)
	pool := fs.String("pool", cfg.Pool, "connector pool")
	var r workflows.RegisterConnectorRequest
	fs.StringVar(&r.ID, "id", "", "connector ID, as the connector runs with -id (required)")
	fs.StringVar(&r.Site, "site", "", "site the connector serves (required)")
	fs.StringVar(&r.Size, "size", "", "a standard size: small, medium or large; or give the amounts below instead")
	fs.IntVar(&r.CPUMillis, "cpu-millis", 0, "CPU the connector has, in millicores")
	fs.Int64Var(&r.RAMBytes, "ram", 0, "RAM the connector has, in bytes")
	fs.Float64Var(&r.BandwidthBytesSec, "bandwidth", 0, "bytes per second the connector moves, shared by its transfers")
	fs.Int64Var(&r.StorageBytes, "storage", 0, "bytes the connector may hold for copies not yet cut over")
	fs.IntVar(&r.MaxTasks, "max-tasks", 0, "transfers the connector runs at once")
	fs.StringVar(&r.TaskQueue, "task-queue", "", "task queue the connector polls (default pmo.connector.<id>)")
	fs.StringVar(&r.StaleAfter, "stale-after", "", "how long it may go without posting metrics before it takes no work (default 2m)")
	auditFlags(fs, &r.Who, &r.Why)
	return &ffcli.Command{
		Name:       "register",
		ShortUsage: "starter connector register -id ID -site SITE (-size NAME | -cpu-millis N -ram B -bandwidth B/s -storage B -max-tasks N) -why WHY [flags]",
		ShortHelp:  "add an external connector to the pool through its fleet workflow; the same values again change nothing",
		LongHelp: "The fleet never starts, restarts, resizes, stops or scales in an external connector. It\n" +
			"takes work while it posts metrics to POST /connectors/{id}/metrics, and none once they\n" +
			"are older than -stale-after. Registering an ID again with other values is refused:\n" +
			"deregister it first.",
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			if err := r.Validate(); err != nil {
				return flagError(err)
			}
			var res workflows.RegisterConnectorResult
			if err := fleetUpdate(ctx, *cfg, *pool, workflows.UpdateRegisterConnector, r, &res); err != nil {
				return err
			}
			c := res.Connector
			verb := "registered"
			if res.Existing {
				verb = "already registered with these values; nothing changed:"
			}
			fmt.Printf("connector %s %s pool %s, site %s, size %s (%.0f B/s, %d tasks), task queue %s, stale after %s, state %s\n",
				c.ID, verb, *pool, c.Site, c.Size.Name, c.Size.BandwidthBytesSec, c.Size.MaxTasks, c.TaskQueue, c.StaleAfter, c.State)
			return nil
		},
	}
}

func deregisterCommand(cfg *config.Config) *ffcli.Command {
	fs := flag.NewFlagSet("connector deregister", flag.ContinueOnError)
	pool := fs.String("pool", cfg.Pool, "connector pool")
	var r workflows.DeregisterConnectorRequest
	fs.StringVar(&r.ID, "id", "", "connector ID (required)")
	auditFlags(fs, &r.Who, &r.Why)
	return &ffcli.Command{
		Name:       "deregister",
		ShortUsage: "starter connector deregister -id ID -why WHY [-pool P] [-who W]",
		ShortHelp:  "take an external connector out of the pool once its migrations are done; its process keeps running",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected arguments %q", args)
			}
			if r.ID == "" {
				return errors.New("-id is required")
			}
			if err := (workflows.Control{Who: r.Who, Why: r.Why}).Validate(); err != nil {
				return flagError(err)
			}
			var c struct {
				ID         string
				State      string
				Migrations []struct{} `json:"migrations"`
			}
			if err := fleetUpdate(ctx, *cfg, *pool, workflows.UpdateDeregisterConnector, r, &c); err != nil {
				return err
			}
			if c.State == "stopped" {
				fmt.Printf("connector %s left pool %s\n", c.ID, *pool)
			} else {
				fmt.Printf("connector %s takes no new work and leaves pool %s once its %d migration(s) are done\n", c.ID, *pool, len(c.Migrations))
			}
			return nil
		},
	}
}

// auditFlags are the -who and -why flags of a change that the fleet audits.
func auditFlags(fs *flag.FlagSet, who, why *string) {
	fs.StringVar(who, "who", operator(), "who asks, for the audit trail (default: the account's name)")
	fs.StringVar(why, "why", "", "why, for the audit trail (required)")
}

// operator is who runs the command, for the audit trail: $USER, or the account's name.
func operator() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// flagNames are the flags of the request fields whose names differ.
var flagNames = map[string]string{"cpu_millis": "cpu-millis", "ram_bytes": "ram", "bandwidth_bytes_per_sec": "bandwidth",
	"storage_bytes": "storage", "max_tasks": "max-tasks", "task_queue": "task-queue", "stale_after": "stale-after"}

// flagError names the flag of a request field that is wrong.
func flagError(err error) error {
	var fe *validation.Error
	if !errors.As(err, &fe) {
		return err
	}
	name := fe.Field
	if f, ok := flagNames[name]; ok {
		name = f
	}
	return fmt.Errorf("-%s: %s", name, fe.Reason)
}

// fleetUpdate runs an update of the pool's fleet workflow to completion; a refusal is
// one line that says what is wrong.
func fleetUpdate(ctx context.Context, cfg config.Config, pool, name string, arg, result any) error {
	return withTemporal(cfg, func(tc client.Client) error {
		h, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: workflows.FleetWorkflowID(pool), UpdateName: name, Args: []any{arg},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = h.Get(ctx, result)
		}
		var nf *serviceerror.NotFound
		var appErr *temporal.ApplicationError
		switch {
		case errors.As(err, &nf):
			return fmt.Errorf("the fleet workflow %s is not running; start it with `starter fleet start`", workflows.FleetWorkflowID(pool))
		case errors.As(err, &appErr):
			return errors.New(appErr.Message())
		}
		return err
	})
}
