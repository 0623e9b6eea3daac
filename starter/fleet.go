package main

import (
	"context"
	"errors"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/pmo-dev/pmo/config"
)

func fleetCommand(cfg *config.Config) *ffcli.Command {
	return &ffcli.Command{Name: "fleet", Exec: func(context.Context, []string) error { return errors.New("fleet: not built yet") }}
}
