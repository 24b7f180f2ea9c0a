package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cordon-edr/cordon/packaging/service"
)

// checkConfig loads the configuration the service would run with.
func checkConfig(path string) error {
	_, err := loadConfig(path)
	return err
}

// runService runs the agent until a signal or the service manager stops it.
func runService(log *slog.Logger, run func(context.Context) error) error {
	if err := service.Run(service.Agent, log, run); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	log.Info("agent stopped")
	return nil
}
