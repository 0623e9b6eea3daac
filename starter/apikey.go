package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/apikey"
	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store"
	"github.com/pmo-dev/pmo/validation"
)

// maxKeyName bounds a key's name, which is shown in lists and problems.
const maxKeyName = 100

// apikeyCommand manages the HTTP API's keys. It works on the database directly: the
// first key can only be made that way, and whoever can reach DATABASE_URL could write
// the table anyway. Keys go to out; what is said about them to msgs.
func apikeyCommand(cfg *config.Config, out, msgs io.Writer) *ffcli.Command {
	createFlags := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	name := createFlags.String("name", "", "who or what uses the key, e.g. ann or alertmanager (required)")
	role := createFlags.String("role", "", "viewer (reads), operator (runs migrations and the fleet), admin (also the policy), or connector (posts one connector's metrics) (required)")
	connectorID := createFlags.String("connector", "", "the external connector a key of the connector role belongs to (required with -role connector)")
	first := createFlags.Bool("first", false, "create the key only if the database holds no key yet; otherwise create nothing")
	create := &ffcli.Command{
		Name:       "create",
		ShortUsage: "starter apikey create -name NAME -role viewer|operator|admin|connector [-connector ID] [-first]",
		ShortHelp:  "make an API key and print it, once: only its hash is stored",
		FlagSet:    createFlags,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("apikey create takes no arguments, got %q", args[0])
			}
			if *name == "" || len(*name) > maxKeyName {
				return fmt.Errorf("-name is required, at most %d characters: who or what uses the key", maxKeyName)
			}
			r, err := apikey.ParseRole(*role)
			if err != nil {
				return fmt.Errorf("-role: %w", err)
			}
			switch {
			case r == apikey.Connector && *connectorID == "":
				return errors.New("-connector is required with -role connector: the ID of the connector the key posts metrics for")
			case r != apikey.Connector && *connectorID != "":
				return errors.New("-connector goes with -role connector only")
			case r == apikey.Connector && *first:
				return errors.New("-first makes an admin's first key, not a connector's")
			}
			if *connectorID != "" {
				if err := validation.ID("connector", *connectorID); err != nil {
					return fmt.Errorf("-%w", err)
				}
			}
			return withStore(ctx, *cfg, func(s *store.Store) error {
				id, key, hash, err := apikey.New()
				if err != nil {
					return err
				}
				if *first {
					created, err := s.CreateFirstAPIKey(ctx, id, *name, r, hash)
					if err != nil {
						return err
					}
					if !created {
						fmt.Fprintln(msgs, "the database has API keys already; none created (starter apikey list shows them)")
						return nil
					}
				} else if r == apikey.Connector {
					if err := s.CreateConnectorAPIKey(ctx, id, *name, *connectorID, hash); err != nil {
						return err
					}
				} else if err := s.CreateAPIKey(ctx, id, *name, r, hash); err != nil {
					return err
				}
				fmt.Fprintln(out, key)
				fmt.Fprintf(msgs, "created API key %s (%s, %q); it is shown this once: send it as Authorization: Bearer <key>\n", id, r, *name)
				return nil
			})
		},
	}
	list := &ffcli.Command{
		Name:       "list",
		ShortUsage: "starter apikey list",
		ShortHelp:  "list the API keys, revoked ones too (never the keys themselves)",
		FlagSet:    flag.NewFlagSet("apikey list", flag.ContinueOnError),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("apikey list takes no arguments, got %q", args[0])
			}
			return withStore(ctx, *cfg, func(s *store.Store) error {
				keys, err := s.APIKeys(ctx)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tPREFIX\tROLE\tCONNECTOR\tNAME\tCREATED\tLAST USED\tREVOKED")
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, apikey.Display(k.ID), k.Role, cmp.Or(k.ConnectorID, "-"), k.Name,
						when(k.CreatedAt), when(k.LastUsedAt), when(k.RevokedAt))
				}
				return tw.Flush()
			})
		},
	}
	revoke := &ffcli.Command{
		Name:       "revoke",
		ShortUsage: "starter apikey revoke ID",
		ShortHelp:  "revoke an API key (by its ID, or the key itself); web servers refuse it within 10 s",
		FlagSet:    flag.NewFlagSet("apikey revoke", flag.ContinueOnError),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("apikey revoke takes one key ID (starter apikey list shows them)")
			}
			id := args[0]
			if claimed := apikey.IDOf(id); claimed != "" {
				id = claimed
			}
			return withStore(ctx, *cfg, func(s *store.Store) error {
				k, now, err := s.RevokeAPIKey(ctx, id)
				if errors.Is(err, store.ErrUnknownAPIKey) {
					return fmt.Errorf("no API key %q (starter apikey list shows them)", id)
				}
				if err != nil {
					return err
				}
				if !now {
					fmt.Fprintf(out, "API key %s (%s, %q) was revoked already, at %s\n", k.ID, k.Role, k.Name, when(k.RevokedAt))
					return nil
				}
				fmt.Fprintf(out, "revoked API key %s (%s, %q)\n", k.ID, k.Role, k.Name)
				return nil
			})
		},
	}
	return &ffcli.Command{
		Name:        "apikey",
		ShortUsage:  "starter apikey <create|list|revoke> [flags]",
		ShortHelp:   "manage the HTTP API's keys (docs/security.md)",
		Subcommands: []*ffcli.Command{create, list, revoke},
		Exec:        func(context.Context, []string) error { return flag.ErrHelp },
	}
}

// when shows a time in lists, "-" for none.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// withStore opens the database, runs f and closes it.
func withStore(ctx context.Context, cfg config.Config, f func(*store.Store) error) error {
	s, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer s.Close()
	return f(s)
}
