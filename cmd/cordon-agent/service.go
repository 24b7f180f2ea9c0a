package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/cordon-edr/cordon/agent/config"
	"github.com/cordon-edr/cordon/packaging/service"
)

// cmdService installs, removes, starts, stops or reports the agent's OS
// service.
func cmdService(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || !slices.Contains(service.Actions, args[0]) {
		return usageError{fmt.Errorf("service: want one of %s", strings.Join(service.Actions, ", "))}
	}
	action := args[0]
	fs := newFlags("service "+action, stderr)
	configPath := fs.String("config", "", "configuration `FILE` the service runs with (install; default "+config.DefaultPath+" when it exists)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if action == "install" {
		// A service that cannot start is worse than a refused install.
		if _, err := loadConfig(*configPath); err != nil {
			return err
		}
	}
	runArgs, err := service.Args(*configPath)
	if err != nil {
		return err
	}
	msg, err := service.Control(service.Agent, action, runArgs)
	if err != nil {
		return fmt.Errorf("service %s: %w", action, err)
	}
	fmt.Fprintln(stdout, msg)
	return nil
}

// runService runs the agent until a signal or the service manager stops it.
func runService(log *slog.Logger, run func(context.Context) error) error {
	if err := service.Run(service.Agent, log, run); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	log.Info("agent stopped")
	return nil
}
