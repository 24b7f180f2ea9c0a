// Package agent wires cordon-agent's components: the process, file and
// network sensors feed the detectors through a bounded queue, findings go
// to the durable spool, the uplink drains the spool to the collector and
// brings commands back to the executor. Each component runs under one
// errgroup and stops with the context.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/cordon-edr/cordon/actions"
	"github.com/cordon-edr/cordon/actions/isolation"
	"github.com/cordon-edr/cordon/agent/compact"
	"github.com/cordon-edr/cordon/agent/executor"
	"github.com/cordon-edr/cordon/agent/history"
	"github.com/cordon-edr/cordon/agent/hunter"
	"github.com/cordon-edr/cordon/agent/identity"
	"github.com/cordon-edr/cordon/agent/localapi"
	"github.com/cordon-edr/cordon/agent/sensor"
	"github.com/cordon-edr/cordon/agent/sensor/fswatch"
	"github.com/cordon-edr/cordon/agent/sensor/netwatch"
	"github.com/cordon-edr/cordon/agent/spool"
	"github.com/cordon-edr/cordon/agent/trim"
	"github.com/cordon-edr/cordon/agent/uplink"
	"github.com/cordon-edr/cordon/agent/watchdog"
	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/detectors/stateful"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Config holds what the agent needs to run.
type Config struct {
	// StateDir holds the enrollment and the spool.
	StateDir string
	// ForcePoll makes the process sensor poll even where kernel events
	// are available.
	ForcePoll bool
	// NoEBPF keeps the process sensor from loading its eBPF exec capture.
	NoEBPF bool
	// Collector overrides the collector address stored at enrollment.
	Collector string
	// NoiseWindow, when set, reports a rule once per window per process
	// tree, with a count of the repeats (detectors.Engine.SetNoiseWindow).
	NoiseWindow time.Duration
	// Exceptions silence rules on known-good activity.
	Exceptions []detectors.Exception
	Version    string
	Logger     *slog.Logger
	// Isolation says what an isolated host may still reach.
	Isolation IsolationConfig
	// ProtectedProcesses are executables (full paths) or process names
	// that kill and suspend refuse, besides pid 1, kernel threads and the
	// agent with its ancestors.
	ProtectedProcesses []string
	// FilePaths are the paths the file sensor watches (fswatch syntax);
	// empty means fswatch.DefaultPaths. NoFiles turns the sensor off.
	FilePaths []string
	NoFiles   bool
	// FileHashMax caps the size of the files hashed; 0 means the
	// default, negative turns hashing off.
	FileHashMax int64
	// NoNetwork turns the network sensor off.
	NoNetwork bool
	// RestartWindow spreads the reconnection after a collector shutdown
	// (uplink.Config.RestartWindow).
	RestartWindow time.Duration
	// IdleTimeout and KeepAlive keep the collector connection alive and
	// notice a dead link (uplink.Config.IdleTimeout and KeepAlive).
	IdleTimeout, KeepAlive time.Duration
	// OwnFiles are the agent's binary, configuration and service unit: a
	// change to any is a finding. Their folders join the file sensor's.
	OwnFiles []string
	// Budget is the CPU and memory the agent allows itself; zero values
	// take the watchdog's defaults.
	Budget Budget
	// History bounds the local telemetry history that hunts read.
	History HistoryConfig
}

// HistoryConfig configures the local telemetry history.
type HistoryConfig struct {
	Disabled bool
	// MaxAge and MaxBytes bound it; zero means history's defaults.
	MaxAge   time.Duration
	MaxBytes int64
}

// Budget is the agent's resource budget (see watchdog.Options).
type Budget struct {
	// CPU is a share of one core averaged over Window (0.05 is 5 %).
	CPU    float64
	RSS    uint64
	Window time.Duration
}

// quietGCPercent is the Go collector's target while the agent is quiet
// (GOGC): the heap grows half as far past what is live between two
// collections as the default lets it, which costs next to nothing when
// there is little to collect and keeps the idle agent's memory about a
// megabyte lower. While busy the default applies, as collections there
// cost CPU on every event.
const quietGCPercent = 50

// gcWhenQuiet returns what the watchdog tells when the agent turns quiet
// or busy: it sets the collector's target to quietGCPercent, and back to
// the one in force before. It returns nil when GOGC is set: the
// operator's choice stands.
func gcWhenQuiet() func(quiet bool) {
	if _, set := os.LookupEnv("GOGC"); set {
		return nil
	}
	var busy int // the target while busy, from the first quiet spell on
	var known bool
	return func(quiet bool) {
		switch {
		case quiet:
			if prev := debug.SetGCPercent(quietGCPercent); !known {
				busy, known = prev, true
			}
		case known:
			debug.SetGCPercent(busy)
		}
	}
}

// networkSlowdown is how many times less often the network sensor reads
// the socket table when the watchdog sheds it.
const networkSlowdown = 10

// Agent is a running cordon-agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	id     *identity.Identity
	spool  *spool.Queue
	comp   *compact.Compactor // compacts the database the spool shares
	sensor *sensor.Process
	srcs   []*source
	engine *detectors.Engine
	// rules is the Sigma rule set: the built-in pack and the set pushed
	// by the collector; sigma names its batch in the engine, and swaps
	// carries a new one to the detection goroutine.
	rules *ruleSets
	sigma detectors.BatchID
	swaps chan batchSwap
	// iocs is the pushed indicator set, matched as the batch iocBatch.
	iocs     *indicatorSets
	iocBatch detectors.BatchID
	exec     *executor.Executor
	uplink   *uplink.Client
	drills   *drillMarks
	hub      *localapi.Hub
	dog      *watchdog.Watchdog
	hist     *history.Store // nil when the history is off
	close    func() error

	isolator *isolation.Isolator
}

// New loads the identity and opens the state store. Close releases it.
func New(cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	id, tlsConf, err := identity.Load(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	// An isolated host stays isolated across restarts: the rules go back
	// before anything else here talks to the network.
	isolator := isolation.New(cfg.StateDir, cfg.Logger)
	if err := isolator.Restore(); err != nil {
		return nil, fmt.Errorf("restoring the host's isolation state: %w", err)
	}
	if cfg.Collector != "" {
		id.Collector = cfg.Collector
	}
	ruleSets, err := newRuleSets(cfg.StateDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	dbDir := filepath.Join(cfg.StateDir, "db")
	db, err := spool.OpenDB(dbDir)
	if err != nil {
		return nil, fmt.Errorf("opening agent state store: %w", err)
	}
	comp := compact.New(db, compact.Options{Name: "agent database", FreeSpace: spool.DiskFree(dbDir), Reserve: spool.DefaultHardReserve, Logger: cfg.Logger})
	q, err := spool.Open(db, spool.Options{Logger: cfg.Logger, FreeSpace: spool.DiskFree(dbDir), Compactor: comp})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening spool: %w", err)
	}
	a := &Agent{
		cfg:    cfg,
		log:    cfg.Logger.With("agent", id.AgentID),
		id:     id,
		spool:  q,
		comp:   comp,
		sensor: sensor.NewProcess(sensor.Options{ForcePoll: cfg.ForcePoll, NoEBPF: cfg.NoEBPF, Logger: cfg.Logger}),
		engine: detectors.NewEngine(append(append(detectors.Builtin(), stateful.All(time.Now)...), detectors.NewSelfTamper(cfg.OwnFiles))...),
		rules:  ruleSets,
		swaps:  make(chan batchSwap),
		iocs:   newIndicatorSets(cfg.StateDir, cfg.Logger),
		exec:   executor.New(db, cfg.Logger),
		drills: newDrillMarks(),
		hub:    localapi.NewHub(1000),
		close:  db.Close,

		isolator: isolator,
	}
	if !cfg.History.Disabled {
		// The history has its own files: they are written without syncs
		// and may grow to their size bound, and neither their load nor
		// their loss may ever touch the spool's and the journal's
		// database. Agents before them kept it in a badger database in
		// "history", read until it ages out.
		h, err := history.Open(filepath.Join(cfg.StateDir, "eventlog"), history.Options{
			MaxAge: cfg.History.MaxAge, MaxBytes: cfg.History.MaxBytes, Logger: cfg.Logger,
			FreeSpace: spool.DiskFree(filepath.Join(cfg.StateDir, "eventlog")),
			LegacyDir: filepath.Join(cfg.StateDir, "history"),
		})
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("opening the event history: %w", err)
		}
		a.hist = h
	}
	a.sigma = a.engine.AddBatch(ruleSets.initial().Batch())
	a.iocBatch = a.engine.AddBatch(a.iocs.initial())
	a.engine.SetNoiseWindow(cfg.NoiseWindow)
	a.engine.SetExceptions(cfg.Exceptions)
	a.srcs = append(a.srcs, &source{
		name: "process", run: a.sensor.Run, mode: a.sensor.Mode,
		stats: func() (uint64, uint64) { st := a.sensor.Stats(); return st.Events, st.Lost },
	})
	// The watchdog sheds the least valuable work first: the hashes of
	// changed files (the changes are still reported), then the rate at
	// which the socket table is read.
	var steps []watchdog.Step
	if !cfg.NoFiles {
		fs, err := fswatch.New(fswatch.Options{
			Paths:        withFolders(cfg.FilePaths, cfg.OwnFiles),
			Exclude:      []string{cfg.StateDir},
			HashMaxBytes: cfg.FileHashMax,
			Process:      a.sensor.Lookup,
			Lineage:      a.sensor.Lineage,
			Busy:         a.sensor.Busy,
			Logger:       cfg.Logger,
		})
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("file sensor: %w", err)
		}
		a.srcs = append(a.srcs, &source{
			name: "file", run: fs.Run, mode: fs.Mode,
			stats: func() (uint64, uint64) { st := fs.Stats(); return st.Events, st.Lost },
		})
		if cfg.FileHashMax >= 0 {
			steps = append(steps, watchdog.Step{Name: "file hashing off", Shed: func(on bool) { fs.SetHashing(!on) }})
		}
	}
	if !cfg.NoNetwork {
		ns := netwatch.New(netwatch.Options{
			Process: a.sensor.Lookup, Lineage: a.sensor.Lineage, Logger: cfg.Logger,
		})
		a.srcs = append(a.srcs, &source{
			name: "network", run: ns.Run, mode: ns.Mode,
			stats: func() (uint64, uint64) { st := ns.Stats(); return st.Events, st.Lost },
		})
		steps = append(steps, watchdog.Step{
			// The mode is known only once the sensor runs: the name
			// says what the step does in each.
			Name: fmt.Sprintf("socket table read every %s (every %s in eBPF mode)",
				networkSlowdown*netwatch.DefaultInterval, networkSlowdown*netwatch.DefaultReconcile),
			Shed: func(on bool) {
				if on {
					ns.SetSlowdown(networkSlowdown)
				} else {
					ns.SetSlowdown(1)
				}
			},
		})
	}
	a.dog = watchdog.New(watchdog.Options{
		CPU: cfg.Budget.CPU, RSS: cfg.Budget.RSS, Window: cfg.Budget.Window,
		Steps: steps, Logger: cfg.Logger, OnQuiet: gcWhenQuiet(),
	})
	// The journal shares the spool's database: under its hard reserve a
	// command fails with a clear result instead of a write badger could
	// die of.
	a.exec.SetRoom(q.Room)
	a.exec.Handle("drill", a.runDrill)
	a.exec.Handle("isolate", a.runIsolate)
	a.exec.Handle("release", a.runRelease)
	for _, action := range []string{"kill", "suspend", "resume"} {
		a.exec.Handle(action, a.runProcess)
	}
	a.exec.Handle("quarantine", a.runQuarantine)
	a.exec.Handle("restore", a.runRestore)
	a.uplink = uplink.New(uplink.Config{
		Collector: id.Collector,
		TLS:       tlsConf,
		Spool:     q,
		Executor:  a.exec,
		Hunter: hunter.New(hunter.Config{
			History: a.hist,
			HashMax: cfg.FileHashMax,
			Exclude: []string{cfg.StateDir},
			Logger:  a.log,
		}),
		Hello:      a.hello,
		Heartbeat:  a.heartbeat,
		Rules:      a.applyRules,
		Indicators: a.applyIndicators,
		Logger:     a.log,

		RestartWindow: cfg.RestartWindow,
		IdleTimeout:   cfg.IdleTimeout,
		KeepAlive:     cfg.KeepAlive,
	})
	return a, nil
}

// Close releases the spool and the state store; call it after Run
// returns.
func (a *Agent) Close() error {
	err := errors.Join(a.spool.Close(), a.close())
	if a.hist != nil {
		err = errors.Join(err, a.hist.Close())
	}
	return err
}

// ID is the agent id.
func (a *Agent) ID() string { return a.id.AgentID }

// Run runs the agent until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	events := make(chan ecs.Event, 4096)
	for _, s := range a.srcs {
		g.Go(func() error {
			a.runSource(ctx, s, events)
			return nil
		})
	}
	g.Go(func() error { return a.detect(ctx, events) })
	g.Go(func() error { return a.dog.Run(ctx) })
	g.Go(func() error { return a.comp.Run(ctx) })
	g.Go(func() error { return a.runRetros(ctx) })
	g.Go(func() error { return a.guardIsolation(ctx) })
	g.Go(func() error { return a.trimBinary(ctx) })
	if a.hist != nil {
		g.Go(func() error { return a.hist.Run(ctx) })
	}
	g.Go(func() error {
		// The hello names the sensor modes: give the sensors a moment to
		// pick theirs before the first connection.
		for i := 0; i < 50; i++ {
			if a.sensorsReady() || ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return a.uplink.Run(ctx)
	})
	g.Go(func() error {
		return localapi.NewServer(SocketPath(a.cfg.StateDir), a.Status, a.hub, a.log).Run(ctx)
	})
	a.log.Info("agent running", "collector", a.id.Collector, "rules", len(a.engine.Rules()))
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// trimAfter is when start-up is over: the rules are compiled, the eBPF
// programs loaded, the first connection made (the uplink waits up to 5 s
// for the sensors before it).
const trimAfter = 10 * time.Second

// trimBinary hands back the pages of the agent's binary that start-up
// touched, once start-up is over (see package trim), and with them the
// heap that start-up left free (the rule compiler's and the eBPF
// loader's work, the kernel's BTF).
func (a *Agent) trimBinary(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(trimAfter):
	}
	debug.FreeOSMemory()
	res, err := trim.Binary()
	switch {
	case errors.Is(err, trim.ErrUnsupported):
		a.log.Info("the binary's start-up pages stay resident", "reason", err)
	case err != nil:
		a.log.Warn("handing back the binary's start-up pages", "err", err)
	case res.After*2 > res.Before:
		// The kernel leaves alone pages another process maps too.
		a.log.Info("the kernel kept most of the binary's start-up pages: another process maps the same file",
			"resident_before_mib", mib(res.Before), "resident_after_mib", mib(res.After))
	default:
		a.log.Info("handed back the binary's start-up pages", "binary_mib", mib(res.Bytes),
			"resident_before_mib", mib(res.Before), "resident_after_mib", mib(res.After))
	}
	return nil
}

// mib is n bytes in MiB, rounded down to tenths, for logs.
func mib(n uint64) float64 { return float64(n*10>>20) / 10 }

func (a *Agent) detect(ctx context.Context, events <-chan ecs.Event) error {
	for {
		select {
		case <-ctx.Done():
			// Report the repeats that noise control still holds.
			for _, f := range a.engine.Flush() {
				a.report(f)
			}
			return nil
		case sw := <-a.swaps:
			if err := a.engine.ReplaceBatch(sw.id, sw.batch); err != nil {
				return fmt.Errorf("swapping a detection batch: %w", err)
			}
			close(sw.done)
		case ev := <-events:
			a.hub.Publish(ev)
			if a.hist != nil {
				a.hist.Add(ev)
			}
			for _, f := range a.engine.Process(&ev) {
				a.report(f)
			}
		}
	}
}

// isolationCheckEvery is how often an isolated agent checks that its
// firewall rules are still in place.
const isolationCheckEvery = 5 * time.Second

// guardIsolation checks the isolation rules of an isolated host every
// isolationCheckEvery, re-applies them when they were removed or changed
// and reports that as a finding.
func (a *Agent) guardIsolation(ctx context.Context) error {
	tick := time.NewTicker(isolationCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		problem, err := a.isolator.Verify()
		if err != nil {
			a.log.Error("checking the isolation rules", "err", err)
		}
		if problem != "" {
			a.report(detectors.IsolationTampered(problem, err, time.Now()))
		}
	}
}

// report spools a finding for the collector.
func (a *Agent) report(f detectors.Finding) {
	pf, err := a.finding(f)
	if err != nil {
		a.log.Error("encoding finding", "rule", f.Rule.ID, "err", err)
		return
	}
	if err := a.spool.Put(pf); errors.Is(err, spool.ErrFull) || errors.Is(err, spool.ErrDiskFull) {
		return // counted, and logged at a bounded rate, by the spool
	} else if err != nil {
		a.log.Error("spooling finding", "rule", f.Rule.ID, "finding", pf.GetId(), "err", err)
		return
	}
	a.log.Info("finding", "rule", f.Rule.Name, "severity", f.Severity, "finding", pf.GetId(), "drill", pf.GetDrill(), "summary", f.Summary)
}

// finding turns a detection into the wire finding, minting its id: the
// id is the idempotency key from here to the collector's store.
func (a *Agent) finding(f detectors.Finding) (*protocol.Finding, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("minting finding id: %w", err)
	}
	pf, err := f.Proto(id.String())
	if err != nil {
		return nil, err
	}
	pf.Drill = a.drills.match(f.Evidence)
	return pf, nil
}

// SocketPath is where the agent with state in dir serves its local socket.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, localapi.SocketName) }

// Status reports the agent's health for the local socket.
func (a *Agent) Status() localapi.Status {
	up := a.uplink.Status()
	sp := a.spool.Stats()
	cs := a.comp.Stats()
	rulesVersion, _, rulesError := a.rules.state()
	iocsVersion, indicators, iocsError, retro := a.iocs.state()
	return localapi.Status{
		AgentID:        a.id.AgentID,
		Version:        a.cfg.Version,
		Collector:      a.id.Collector,
		Connected:      up.Connected,
		ConnectedSince: connectedSince(up),
		LastError:      up.LastError,
		FindingsSent:   up.Sent,
		Spool: localapi.Spool{
			Pending: int64(sp.Pending), Dropped: int64(sp.Dropped), DroppedBySeverity: sp.DroppedBySeverity,
			Full: sp.Full, FreeBytes: sp.FreeBytes,
			Compactions: cs.Runs, CompactionWaiting: cs.Waiting,
		},
		Sensors:       a.sensorStatus(),
		Rules:         len(a.engine.Rules()),
		RulesVersion:  rulesVersion,
		RulesError:    rulesError,
		IocsVersion:   iocsVersion,
		Indicators:    indicators,
		IocsError:     iocsError,
		Retro:         retro,
		EventsDropped: a.hub.Dropped(),
		Isolated:      a.isolator.Isolated(),
		History:       a.historyStatus(),
		Self:          a.selfStatus(),
	}
}

// selfStatus is the watchdog's view for the local status.
func (a *Agent) selfStatus() localapi.Self {
	st := a.dog.Status()
	return localapi.Self{
		CPUPercent:       100 * st.CPU,
		RSSBytes:         st.RSS,
		BudgetCPUPercent: 100 * st.BudgetCPU,
		BudgetRSSBytes:   st.BudgetRSS,
		Window:           st.Window.String(),
		OverBudget:       st.Over,
		Shed:             st.Shed,
		Error:            st.Err,
	}
}

func (a *Agent) historyStatus() *localapi.History {
	if a.hist == nil {
		return nil
	}
	st := a.hist.Stats()
	return &localapi.History{
		Events: st.Events, Bytes: st.Bytes, DiskBytes: st.DiskBytes, Segments: st.Segments,
		Oldest: st.Oldest, Newest: st.Newest, Dropped: st.Dropped,
		SkippedDiskFull: st.SkippedDiskFull, FreeBytes: st.FreeBytes, DiskLow: st.DiskLow,
		MaxAge: st.MaxAge.String(), MaxBytes: st.MaxBytes,
	}
}

func (a *Agent) hello() *protocol.Hello {
	return &protocol.Hello{
		Version:      protocol.CurrentVersion(),
		Host:         identity.HostFacts(a.cfg.Version),
		SensorModes:  a.sensorModes(),
		Isolated:     a.isolator.Isolated(),
		RulesVersion: a.rulesVersion(),
		IocsVersion:  a.iocs.current().Version(),
	}
}

func (a *Agent) heartbeat() *protocol.Heartbeat {
	st := a.spool.Stats()
	return &protocol.Heartbeat{
		SentUnixNano: time.Now().UnixNano(),
		SpoolPending: uint64(st.Pending),
		SpoolDropped: uint64(st.Dropped),
		Isolated:     a.isolator.Isolated(),
		Sensors:      a.sensorStats(),
		RulesVersion: a.rulesVersion(),
		IocsVersion:  a.iocs.current().Version(),
		Self:         a.selfUsage(),
	}
}

func (a *Agent) selfUsage() *protocol.SelfUsage {
	st := a.dog.Status()
	return &protocol.SelfUsage{
		CpuPercent:       100 * st.CPU,
		RssBytes:         st.RSS,
		BudgetCpuPercent: 100 * st.BudgetCPU,
		BudgetRssBytes:   st.BudgetRSS,
		OverBudget:       st.Over,
		Shed:             st.Shed,
	}
}

func (a *Agent) rulesVersion() string {
	v, _, _ := a.rules.state()
	return v
}

// runDrill runs a drill scenario; the findings it causes are marked as
// drill findings, so the incident they open is marked as a drill too.
func (a *Agent) runDrill(ctx context.Context, c *protocol.Command) (string, error) {
	marker := "cordon-drill-" + strings.ReplaceAll(c.GetId(), "-", "")
	if len(marker) > 32 {
		marker = marker[:32]
	}
	a.drills.add(marker, 10*time.Minute)
	scenario := c.GetArgs()["scenario"]
	if scenario == "" {
		scenario = "tmp-exec"
	}
	return actions.Drill(ctx, scenario, marker)
}

// drillMarks remembers the markers of recent drills.
type drillMarks struct {
	mu    sync.Mutex
	marks map[string]time.Time // marker → expiry
}

func newDrillMarks() *drillMarks { return &drillMarks{marks: map[string]time.Time{}} }

func (d *drillMarks) add(marker string, ttl time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	for m, exp := range d.marks {
		if now.After(exp) {
			delete(d.marks, m)
		}
	}
	d.marks[marker] = now.Add(ttl)
}

// match reports whether any process in the evidence carries a live
// drill marker in its executable or command line.
func (d *drillMarks) match(evidence []ecs.Event) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.marks) == 0 {
		return false
	}
	now := time.Now()
	for _, ev := range evidence {
		p := ev.Process
		if p == nil {
			continue
		}
		for m, exp := range d.marks {
			if now.After(exp) {
				continue
			}
			if strings.Contains(p.Executable, m) || strings.Contains(p.CommandLine, m) {
				return true
			}
		}
	}
	return false
}

func connectedSince(s uplink.Status) time.Time {
	if !s.Connected {
		return time.Time{}
	}
	return s.Since
}

// withFolders returns the file sensor's paths (the defaults when none
// are configured) with the folders of files added, each once.
func withFolders(paths, files []string) []string {
	if len(files) == 0 {
		return paths
	}
	if len(paths) == 0 {
		paths = fswatch.DefaultPaths()
	}
	out := slices.Clone(paths)
	for _, f := range files {
		if d := filepath.Dir(f); f != "" && filepath.IsAbs(f) && !slices.Contains(out, d) && !slices.Contains(out, d+"/...") {
			out = append(out, d)
		}
	}
	return out
}
