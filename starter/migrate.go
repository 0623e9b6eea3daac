package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/config"
	"github.com/pmo-dev/pmo/store"
)

func migrateCommand(cfg *config.Config) *ffcli.Command {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	return &ffcli.Command{
		Name:       "migrate",
		ShortUsage: "starter migrate",
		ShortHelp:  "apply the embedded schema migrations to DATABASE_URL",
		FlagSet:    fs,
		Exec: func(ctx context.Context, _ []string) error {
			s, err := store.Open(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer s.Close()
			if err := s.Migrate(ctx); err != nil {
				return err
			}
			fmt.Println("schema is up to date")
			return nil
		},
	}
}
