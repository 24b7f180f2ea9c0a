// Cordon-collector is Cordon's central server: it enrolls agents, ingests
// their findings exactly once into its badger store, correlates them into
// incidents, queues commands for agents, and serves responders through
// the REST API.
//
//	cordon-collector run [--config FILE] [--data DIR] [--listen UDP_ADDR] [--api ADDR] [--pprof LOOPBACK_ADDR]
//	cordon-collector config check [--config FILE]
//	cordon-collector service install|uninstall|start|stop|status [--config FILE]
//	cordon-collector version | --version
//
// The configuration is /etc/cordon/collector.yaml when it exists; see
// docs/configuration.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cordon-edr/cordon/cmd/internal/buildinfo"
	"github.com/cordon-edr/cordon/collector/api"
	"github.com/cordon-edr/cordon/collector/audit"
	"github.com/cordon-edr/cordon/collector/auth"
	"github.com/cordon-edr/cordon/collector/command"
	"github.com/cordon-edr/cordon/collector/config"
	"github.com/cordon-edr/cordon/collector/console"
	"github.com/cordon-edr/cordon/collector/events"
	"github.com/cordon-edr/cordon/collector/export"
	"github.com/cordon-edr/cordon/collector/gateway"
	"github.com/cordon-edr/cordon/collector/health"
	"github.com/cordon-edr/cordon/collector/hunt"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/iocset"
	"github.com/cordon-edr/cordon/collector/pki"
	"github.com/cordon-edr/cordon/collector/playbook"
	"github.com/cordon-edr/cordon/collector/registry"
	"github.com/cordon-edr/cordon/collector/ruleset"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/packaging/service"
)

var version = buildinfo.Get().Version

const usage = `usage: cordon-collector COMMAND [flags]

commands:
  run      run the collector in the foreground
  config   check the configuration: config check [--config FILE]
  service  install|uninstall|start|stop|status the collector's OS service
  version  print the version, commit and build date

Run 'cordon-collector COMMAND -h' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "service":
		err = service.Command(service.Collector, config.DefaultPath, checkConfig, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, buildinfo.String("cordon-collector"))
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "cordon-collector: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)), errors.As(err, new(service.UsageError)):
		fmt.Fprintf(stderr, "cordon-collector: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "cordon-collector: %v\n", err)
		return 1
	}
}

type usageError struct{ error }

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cordon-collector "+name, flag.ContinueOnError)
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

const configUsage = "configuration `FILE` (default " + config.DefaultPath + " when it exists)"

// loadConfig reads the configuration named by --config, else the default
// file when it exists, then the environment.
func loadConfig(flagPath string) (config.Config, error) {
	return config.Load(config.Resolve(flagPath), os.Getenv)
}

// cmdConfig is "config check": it prints ok and where the configuration
// came from, or the first mistake with its file, line and key.
func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{fmt.Errorf("config: want config check [--config FILE]")}
	}
	fs := newFlags("config check", stderr)
	configPath := fs.String("config", "", configUsage)
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

// checkConfig loads the configuration the service would run with.
func checkConfig(path string) error {
	_, err := loadConfig(path)
	return err
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	configPath := fs.String("config", "", configUsage)
	data := fs.String("data", "", "data `DIR` (default ./cordon-data)")
	listen := fs.String("listen", "", "UDP `ADDR` agents connect to (default :7443)")
	apiAddr := fs.String("api", "", "`ADDR` of the REST API (default 127.0.0.1:7480)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiles (net/http/pprof) on this loopback `ADDR`, e.g. 127.0.0.1:6060 (default off)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *pprofAddr != "" {
		if err := checkLoopback(*pprofAddr); err != nil {
			return usageError{fmt.Errorf("--pprof: %w", err)}
		}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if *data != "" {
		cfg.Data = *data
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *apiAddr != "" {
		cfg.API.Listen = *apiAddr
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("log_level %q: want debug, info, warn or error", cfg.LogLevel)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	if err := config.CheckAPIListen(cfg.API.Listen, cfg.API.TLSCert != ""); err != nil {
		return fmt.Errorf("api listen address: %w", err)
	}
	return service.Run(service.Collector, log, func(ctx context.Context) error {
		if *pprofAddr == "" {
			return serve(ctx, cfg, stdout, log)
		}
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error { return servePprof(ctx, *pprofAddr, log) })
		g.Go(func() error { return serve(ctx, cfg, stdout, log) })
		return g.Wait()
	})
}

func serve(ctx context.Context, cfg config.Config, stdout io.Writer, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("creating data folder: %w", err)
	}
	ca, err := pki.LoadOrCreate(filepath.Join(cfg.Data, "pki"))
	if err != nil {
		return fmt.Errorf("loading the CA: %w", err)
	}
	db, err := store.Open(filepath.Join(cfg.Data, "db"), log)
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer db.Close()

	reg := registry.New(registry.Config{DB: db, Heartbeat: cfg.Health.Heartbeat}, log)
	ruleSets := ruleset.New(db, nil, log)
	iocSets := iocset.New(db, nil, log)
	findings, err := ingest.New(ingest.Config{DB: db, Agents: reg}, log)
	if err != nil {
		return fmt.Errorf("opening the findings log: %w", err)
	}
	hub := &events.Hub{}
	targets := cfg.Targets()
	playbooks, err := playbook.Load(cfg.Incidents.Playbooks, incident.Types())
	if err != nil {
		return fmt.Errorf("loading playbooks: %w", err)
	}
	outbox, err := export.New(export.Config{DB: db, Sinks: cfg.Exports, Agents: reg}, log)
	if err != nil {
		return fmt.Errorf("opening the export outbox: %w", err)
	}
	var incidents *incident.Engine
	cmds := command.New(command.Config{DB: db, Hook: outbox, OnFinish: func(ctx context.Context, c *command.Command) {
		if c.IncidentID == "" {
			return
		}
		detail := fmt.Sprintf("%s command %s on agent %s %s: %s", c.Action, c.ID, c.AgentID, c.Status, c.Result)
		if err := incidents.Note(ctx, c.IncidentID, incident.ActorCordon, incident.ActionCommandFinished, detail); err != nil {
			log.Warn("noting a command result on its incident", "command", c.ID, "incident", c.IncidentID, "err", err)
		}
	}}, log)
	incidents = incident.New(incident.Config{
		DB: db, Log: findings, Findings: findings, Agents: reg, Containment: cmds,
		Window: cfg.Incidents.Window, Targets: targets,
		Playbooks: playbooks, DryRun: cfg.Incidents.PlaybookDryRun, Responder: cmds,
		Hook: outbox, Changed: func() { hub.Publish(events.KindIncident, "") },
	}, log)
	keys := auth.New(auth.Config{DB: db}, log)
	secret, err := keys.EnsureAdmin(ctx, cfg.Data)
	if err != nil {
		return fmt.Errorf("creating the admin API key: %w", err)
	}
	if secret != "" {
		fmt.Fprintf(stdout, "First run: created the admin API key (shown once; also in %s, mode 0600):\n%s\n",
			filepath.Join(cfg.Data, "admin.token"), secret)
	}

	monitor := health.New(health.Config{
		DB: db, Ingest: findings, Agents: reg, Logger: log,
		Grace: cfg.Health.SilenceGrace, LossThreshold: cfg.Health.SensorLossThreshold,
	})
	hunts := hunt.New(hunt.Config{DB: db}, log)
	gw, err := gateway.New(gateway.Config{
		Listen:     cfg.Listen,
		CA:         ca,
		Registry:   liveRegistry{reg, hub},
		Enroller:   reg,
		Ingest:     findings,
		Commands:   liveCommands{cmds, hub},
		Rules:      liveRules{ruleSets, reg, hub},
		Indicators: liveIndicators{iocSets, reg, hub},
		Health:     monitor,
		Hunts:      hunts,
		Logger:     log,
		Heartbeat:  cfg.Health.Heartbeat,

		IdleTimeout: cfg.Gateway.IdleTimeout,
		KeepAlive:   cfg.Gateway.KeepAlive,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("listening for the API on %s: %w", cfg.API.Listen, err)
	}
	// Requests' contexts end when the server shuts down, which ends the
	// long-lived event streams that Shutdown would otherwise wait for.
	reqCtx, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	conns := api.NewConnWatch(log)
	srv := &http.Server{
		Handler: api.New(api.Config{
			Agents: reg, Findings: findings, Incidents: incidents, Commands: cmds, Keys: keys, Rules: ruleSets, Indicators: iocSets, Hunts: hunts,
			Audit: audit.New(audit.Config{DB: db}, log), Events: hub, Console: console.Handler(),
			CAPEM: ca.PEM(), CAPin: ca.Pin(), BreakGlass: ca.BreakGlassCode, Logger: log, Exports: outbox,
			Refusals: func() map[string]uint64 {
				m := gw.Refusals()
				m["api_connection"] = conns.Unserved()
				return m
			},
		}),
		BaseContext: func(net.Listener) context.Context { return reqCtx },
		// A slow or idle client cannot hold a connection for long: the
		// headers must arrive in 10 s, the whole request in a minute, and
		// an idle keep-alive connection is closed after two. (Event
		// streams are not cut: the server clears the read deadline once a
		// request has been read.)
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	conns.Install(srv)
	log.Info("collector running", "version", version, "data", cfg.Data, "agents", gw.Addr().String(),
		"api", apiURL(ln.Addr().String(), cfg.API.TLSCert != ""), "ca_pin", ca.Pin())

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gw.Run(ctx) })
	g.Go(func() error { return incidents.Run(ctx) })
	g.Go(func() error { return monitor.Run(ctx) })
	g.Go(func() error { return outbox.Run(ctx) })
	g.Go(func() error { return store.RunGC(ctx, db, log) })
	g.Go(func() error {
		var err error
		if cfg.API.TLSCert != "" {
			err = srv.ServeTLS(ln, cfg.API.TLSCert, cfg.API.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serving the API: %w", err)
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.RegisterOnShutdown(endRequests)
		return srv.Shutdown(sctx)
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("collector stopped")
	return err
}

func apiURL(addr string, tls bool) string {
	if tls {
		return "https://" + addr
	}
	return "http://" + addr
}
