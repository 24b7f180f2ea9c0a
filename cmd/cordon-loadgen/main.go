// Cordon-loadgen simulates a fleet of agents against a collector on this
// machine: each simulated agent enrolls with a real token, holds a real
// QUIC connection with its own client certificate, heartbeats, sends
// findings at a given rate (resending a batch whose acknowledgement was
// lost, as the agent does) and answers commands. It prints what it
// measured as one JSON object. With --hunt its agents also answer hunts
// from a synthetic history each, and it times a hunt over the whole
// fleet once every agent is connected.
//
//	cordon-loadgen --collector 127.0.0.1:7443 [--api URL] [--token KEY]
//	    [--agents N] [--duration D] [--rate R] [--batch B] [--findings N]
//	    [--heartbeat D] [--drain D] [--commands N] [--incidents N]
//	    [--hold D] [--collector-pid PID] [--acked FILE]
//	    [--hunt [--hunt-query Q] [--history N]]
//
// The token is an admin API key (CORDON_TOKEN); the API address comes
// from --api or CORDON_API. Only loopback addresses are accepted: this is
// a tool for measuring one machine, never for loading someone else's.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cordon-edr/cordon/agent/uplink"
	"github.com/cordon-edr/cordon/cmd/internal/buildinfo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
		fmt.Fprintln(stdout, buildinfo.String("cordon-loadgen"))
		return 0
	}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "cordon-loadgen:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if e := enc.Encode(rep); e != nil {
			fmt.Fprintln(stderr, "cordon-loadgen: writing the report:", e)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "cordon-loadgen:", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("cordon-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.Collector, "collector", "", "collector UDP address (loopback), e.g. 127.0.0.1:7443")
	fs.StringVar(&cfg.API, "api", envOr("CORDON_API", "http://127.0.0.1:7480"), "collector API URL (loopback; or CORDON_API)")
	fs.StringVar(&cfg.Token, "token", os.Getenv("CORDON_TOKEN"), "admin API key (or CORDON_TOKEN)")
	fs.IntVar(&cfg.Agents, "agents", 10, "number of simulated agents")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long agents generate findings")
	fs.Float64Var(&cfg.Rate, "rate", 1, "findings per second per agent (0: none)")
	fs.IntVar(&cfg.Batch, "batch", 100, "most findings in one batch")
	fs.IntVar(&cfg.Findings, "findings", 0, "most findings per agent (0: bounded by --duration only)")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", 30*time.Second, "heartbeat interval")
	fs.DurationVar(&cfg.Drain, "drain", 30*time.Second, "after --duration, how long to wait for outstanding acknowledgements")
	fs.DurationVar(&cfg.Hold, "hold", 0, "after draining, keep the connections open this long (for measuring the collector)")
	fs.IntVar(&cfg.Commands, "commands", 0, "commands to request through the API during the run, timing request → result")
	fs.IntVar(&cfg.Incidents, "incidents", 0, "findings whose time from sending to an incident visible in the API is measured")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "enrollments in flight at once")
	fs.IntVar(&cfg.CollectorPID, "collector-pid", 0, "report the peak resident memory of this process (the collector)")
	fs.DurationVar(&cfg.RestartWindow, "restart-window", uplink.DefaultRestartWindow, "after the collector shut down, reconnect after a random wait below this (the agent's uplink.restart_window)")
	fs.DurationVar(&cfg.Ramp, "ramp", 0, "spread the agents' first connections evenly over this long (0: all at once)")
	fs.StringVar(&cfg.AckedFile, "acked", "", "write the id of every acknowledged finding to this file, one a line")
	fs.BoolVar(&cfg.Hunt, "hunt", false, "once every agent is connected, time a hunt that matches nothing (baseline) and one with --hunt-query over the fleet")
	fs.StringVar(&cfg.HuntQuery, "hunt-query", defaultHuntQuery, "query of the measured hunt (by default the marker process every tenth agent ran)")
	fs.IntVar(&cfg.History, "history", 300, "synthetic events in each agent's history, answered from in hunts")
	verbose := fs.Bool("v", false, "log reconnects and errors to stderr")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	level := slog.LevelWarn + 4 // quiet unless -v
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return cfg, cfg.check()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
