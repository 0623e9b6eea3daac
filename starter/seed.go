package main

import (
	"context"
	"errors"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/config"
)

// seedCommand is filled in by the demo seed work.
func seedCommand(cfg *config.Config) *ffcli.Command {
	return &ffcli.Command{Name: "seed", Exec: func(context.Context, []string) error { return errors.New("seed: not built yet") }}
}
