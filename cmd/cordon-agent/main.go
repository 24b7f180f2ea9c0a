// Cordon-agent is Cordon's endpoint agent: it watches the host's
// processes, detects threats locally, keeps findings in a durable spool
// and streams them to the collector over QUIC with mutual TLS.
//
//	cordon-agent enroll [--config FILE] [--collector HOST:PORT --token TOKEN --ca-pin PIN] [--state DIR] [--tag k=v]...
//	cordon-agent run [--config FILE] [--state DIR] [--cpuprofile FILE]
//	cordon-agent config check [--config FILE]
//	cordon-agent service install|uninstall|start|stop|status [--config FILE]
//	cordon-agent status [--state DIR] [--json]
//	cordon-agent events [--state DIR] [--json] [--follow]
//	cordon-agent rules check PATH... [--json]
//	cordon-agent release --break-glass CODE [--state DIR]
//	cordon-agent version | --version
//
// The configuration is /etc/cordon/agent.yaml when it exists; see
// docs/configuration.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/cordon-edr/cordon/agent"
	"github.com/cordon-edr/cordon/agent/config"
	"github.com/cordon-edr/cordon/agent/identity"
	"github.com/cordon-edr/cordon/agent/slack"
	"github.com/cordon-edr/cordon/cmd/internal/buildinfo"
	"github.com/cordon-edr/cordon/packaging/service"
)

const defaultState = config.DefaultState

// version is the agent's version, reported to the collector.
var version = buildinfo.Get().Version

func main() {
	// The agent offers no heap profile (runtime/pprof is linked for
	// --cpuprofile, and with it the heap sampler): sampling would keep a
	// table of allocation sites, about 0.4 MiB of the idle agent's memory.
	runtime.MemProfileRate = 0
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: cordon-agent COMMAND [flags]

commands:
  enroll   enroll this host with a collector
  run      run the agent in the foreground
  status   health of the running agent (root only)
  events   the running agent's normalized events (root only)
  rules    check rule files: rules check PATH... [--json]
  release  lift this host's isolation locally with its break-glass code
  config   check the configuration: config check [--config FILE]
  service  install|uninstall|start|stop|status the agent's OS service
  version  print the version, commit and build date

Run 'cordon-agent COMMAND -h' for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "enroll":
		err = cmdEnroll(args[1:], stdout, stderr)
	case "run":
		err = cmdRun(args[1:], stderr)
	case "status":
		err = cmdStatus(args[1:], stdout, stderr)
	case "events":
		err = cmdEvents(args[1:], stdout, stderr)
	case "rules":
		err = cmdRules(args[1:], stdout, stderr)
	case "release":
		err = cmdRelease(args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "service":
		err = service.Command(service.Agent, config.DefaultPath, checkConfig, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, buildinfo.String("cordon-agent"))
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "cordon-agent: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.As(err, new(usageError)) || errors.As(err, new(service.UsageError)) {
		fmt.Fprintf(stderr, "cordon-agent: %v\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "cordon-agent: %v\n", err)
	return 1
}

type usageError struct{ error }

// tags collects repeated --tag k=v flags.
type tags map[string]string

func (t tags) String() string { return fmt.Sprint(map[string]string(t)) }
func (t tags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want k=v, got %q", s)
	}
	t[k] = v
	return nil
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cordon-agent "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// loadConfig reads the configuration named by --config, else the default
// file when it exists, then the environment.
func loadConfig(flagPath string) (config.Config, error) {
	return config.Load(config.Resolve(flagPath), os.Getenv)
}

func cmdEnroll(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("enroll", stderr)
	configPath := fs.String("config", "", "configuration `FILE` (default "+config.DefaultPath+" when it exists)")
	collector := fs.String("collector", "", "collector address `HOST:PORT` (default: the configuration's collector, env "+config.EnvCollector+")")
	token := fs.String("token", "", "enrollment `TOKEN` (default: enroll.token, env "+config.EnvToken+")")
	pin := fs.String("ca-pin", "", "collector CA `PIN`, sha256:<hex> (default: enroll.ca_pin, env "+config.EnvCAPin+")")
	state := fs.String("state", "", "state `DIR` (default: the configuration's state, "+defaultState+")")
	force := fs.Bool("force", false, "enroll again over an existing enrollment")
	t := tags{}
	fs.Var(t, "tag", "agent tag `k=v` (repeatable), e.g. criticality=high; added to enroll.tags and env "+config.EnvTags)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	opts := identity.Options{
		Collector: cfg.Collector, Token: cfg.Enroll.Token, CAPin: cfg.Enroll.CAPin, StateDir: cfg.State,
		Tags: map[string]string{}, Force: *force,
	}
	for k, v := range cfg.Enroll.Tags {
		opts.Tags[k] = v
	}
	for k, v := range t {
		opts.Tags[k] = v
	}
	for _, f := range []struct{ flag, to *string }{{collector, &opts.Collector}, {token, &opts.Token}, {pin, &opts.CAPin}, {state, &opts.StateDir}} {
		if *f.flag != "" {
			*f.to = *f.flag
		}
	}
	opts.Host = identity.HostFacts(version)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	id, err := identity.Enroll(ctx, opts)
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	fmt.Fprintf(stdout, "enrolled with %s as agent %s\n", id.Collector, id.AgentID)
	return nil
}

// cmdConfig is "config check": it prints ok and where the configuration
// came from, or the first mistake with its file, line and key.
func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{fmt.Errorf("config: want config check [--config FILE]")}
	}
	fs := newFlags("config check", stderr)
	configPath := fs.String("config", "", "configuration `FILE` (default "+config.DefaultPath+" when it exists)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: %s\n", cfg.Source)
	return nil
}

func cmdRun(args []string, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	configPath := fs.String("config", "", "configuration `FILE` (default "+config.DefaultPath+" when it exists)")
	state := fs.String("state", "", "state `DIR` (default "+defaultState+")")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to `FILE` (for measuring the agent)")
	if err := parse(fs, args); err != nil {
		return err
	}
	// First, as it may start the program again.
	slackErr := slack.Apply(slack.Default)
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if *state != "" {
		cfg.State = *state
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("run: creating the CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("run: starting the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	log, err := newLogger(stderr, cfg.LogLevel)
	if err != nil {
		return err
	}
	if slackErr != nil && !errors.Is(slackErr, slack.ErrUnsupported) {
		log.Warn("timer slack left as it was: the agent spends more CPU under load", "err", slackErr)
	}
	a, err := agent.New(agent.Config{
		StateDir:    cfg.State,
		ForcePoll:   cfg.Sensors.Process.Mode == "poll",
		NoEBPF:      cfg.Sensors.Process.Mode == "netlink",
		Collector:   cfg.Collector,
		FilePaths:   cfg.Sensors.File.Paths,
		NoFiles:     !cfg.Sensors.File.Enabled,
		FileHashMax: cfg.FileHashMax(),
		NoNetwork:   !cfg.Sensors.Network.Enabled,
		Budget: agent.Budget{
			CPU:    cfg.Budget.CPUPercent / 100,
			RSS:    cfg.Budget.MemoryMiB << 20,
			Window: cfg.Budget.Window,
		},
		History: agent.HistoryConfig{
			Disabled: !cfg.History.Enabled,
			MaxAge:   cfg.History.MaxAge,
			MaxBytes: int64(cfg.History.MaxBytes),
		},
		Version: version,
		Logger:  log,

		OwnFiles:      ownFiles(config.Resolve(*configPath)),
		RestartWindow: cfg.Uplink.RestartWindow,
		IdleTimeout:   cfg.Uplink.IdleTimeout,
		KeepAlive:     cfg.Uplink.KeepAlive,
		NoiseWindow:   cfg.Detection.NoiseWindow,
		Exceptions:    cfg.Exceptions(),
		Isolation:     cfg.IsolationAllowances(),

		ProtectedProcesses: cfg.ProtectedProcesses,
	})
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer a.Close()
	return runService(log, a.Run)
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log_level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// unitPaths are where the agent's systemd unit may be installed.
var unitPaths = []string{
	"/etc/systemd/system/cordon-agent.service",
	"/lib/systemd/system/cordon-agent.service",
	"/usr/lib/systemd/system/cordon-agent.service",
}

// ownFiles returns the agent's binary, configuration file and unit paths,
// whose changes the agent reports.
func ownFiles(configPath string) []string {
	var out []string
	if exe, err := os.Executable(); err == nil {
		if p, err := filepath.EvalSymlinks(exe); err == nil {
			exe = p
		}
		out = append(out, exe)
	}
	if configPath != "" {
		if p, err := filepath.Abs(configPath); err == nil {
			out = append(out, p)
		}
	}
	return append(out, unitPaths...)
}
