package main

import (
	"fmt"
	"io"

	"github.com/cordon-edr/cordon/actions/isolation"
	"github.com/cordon-edr/cordon/agent/config"
)

func cmdRelease(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("release", stderr)
	state := fs.String("state", config.DefaultState, "state `DIR`")
	code := fs.String("break-glass", "", "the agent's break-glass `CODE`, which admins read on the collector (cordonctl agent break-glass ID)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *code == "" {
		return usageError{fmt.Errorf("release: --break-glass CODE is required (lifting isolation from the collector needs no code: cordonctl release AGENT)")}
	}
	res, err := isolation.New(*state, nil).BreakGlass(*code)
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	fmt.Fprintln(stdout, res)
	return nil
}
