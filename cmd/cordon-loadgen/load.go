package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cordon-edr/cordon/agent/identity"
	"github.com/cordon-edr/cordon/protocol"
)

// Config is one load run.
type Config struct {
	Collector   string
	API         string
	Token       string
	Agents      int
	Duration    time.Duration
	Rate        float64
	Batch       int
	Findings    int
	Heartbeat   time.Duration
	Drain       time.Duration
	Hold        time.Duration
	Commands    int
	Incidents   int
	Concurrency int
	AckedFile   string
	// Hunt runs two hunts on the whole fleet once it is connected: a
	// baseline that matches nothing, then HuntQuery; History is the
	// number of synthetic events each agent answers from.
	Hunt      bool
	HuntQuery string
	History   int
	// RestartWindow is the agent's uplink.Config.RestartWindow.
	RestartWindow time.Duration
	// Ramp spreads the agents' first connections evenly over this long
	// (0: all at once), as a fleet starting up does.
	Ramp time.Duration
	// CollectorPID, when set, is sampled for the collector's peak RSS.
	CollectorPID int
	Logger       *slog.Logger
}

// Bounds that keep a run on one machine in bounded time.
const (
	maxAgents   = 20000
	maxDuration = time.Hour
)

func (c *Config) check() error {
	switch {
	case c.Collector == "":
		return errors.New("--collector is required (the collector's UDP address on loopback)")
	case c.Token == "":
		return errors.New("--token or CORDON_TOKEN is required (an admin API key, to create the enrollment token)")
	case c.Agents < 1 || c.Agents > maxAgents:
		return fmt.Errorf("--agents: %d is not between 1 and %d", c.Agents, maxAgents)
	case c.Duration <= 0 || c.Duration > maxDuration:
		return fmt.Errorf("--duration: %s is not between 0 and %s", c.Duration, maxDuration)
	case c.Rate < 0:
		return fmt.Errorf("--rate: %g is negative", c.Rate)
	case c.Batch < 1:
		return fmt.Errorf("--batch: %d is below 1", c.Batch)
	case c.Findings < 0:
		return fmt.Errorf("--findings: %d is negative", c.Findings)
	case c.Heartbeat < 100*time.Millisecond:
		return fmt.Errorf("--heartbeat: %s is below 100ms", c.Heartbeat)
	case c.Drain < 0 || c.Hold < 0 || c.Hold > maxDuration:
		return errors.New("--drain and --hold must not be negative (and --hold at most an hour)")
	case c.Commands < 0 || c.Incidents < 0:
		return errors.New("--commands and --incidents must not be negative")
	case c.Ramp < 0 || c.Ramp > maxDuration:
		return fmt.Errorf("--ramp: %s is not between 0 and %s", c.Ramp, maxDuration)
	case c.RestartWindow <= 0:
		return fmt.Errorf("--restart-window: %s is not above 0", c.RestartWindow)
	case c.History < 0 || c.History > 100000:
		return fmt.Errorf("--history %d: want 0 to 100000 events per agent", c.History)
	case c.Hunt && c.HuntQuery == "":
		return errors.New("--hunt-query: empty")
	case c.Concurrency < 1:
		return fmt.Errorf("--concurrency: %d is below 1", c.Concurrency)
	}
	if err := loopbackHostPort(c.Collector); err != nil {
		return fmt.Errorf("--collector: %w", err)
	}
	u, err := url.Parse(c.API)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--api: %q is not a URL", c.API)
	}
	if err := loopbackHostPort(u.Host); err != nil {
		return fmt.Errorf("--api: %w", err)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// loopbackHostPort refuses any address that does not resolve only to
// loopback.
func loopbackHostPort(hp string) error {
	host, _, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT: %w", hp, err)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("resolving %q: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s resolves to %s, which is not loopback: this tool only loads the local machine", host, ip)
		}
	}
	return nil
}

// Report is what a run measured.
type Report struct {
	Agents            int            `json:"agents"`
	Enrolled          int            `json:"enrolled"`
	ConnectedPeak     int64          `json:"connected_peak"`
	ConnectedEver     int64          `json:"agents_connected_at_least_once"`
	Connected         int64          `json:"connected_at_end"`
	EnrollSeconds     float64        `json:"enroll_seconds"`
	RunSeconds        float64        `json:"run_seconds"`
	FindingsGenerated uint64         `json:"findings_generated"`
	FindingsAcked     uint64         `json:"findings_acked"`
	FindingsStored    uint64         `json:"findings_stored"`
	Duplicates        uint64         `json:"findings_duplicates"`
	FindingsUnacked   uint64         `json:"findings_unacked"`
	Throughput        float64        `json:"findings_acked_per_second"`
	BatchesAcked      uint64         `json:"batches_acked"`
	AckLatency        Percentiles    `json:"ack_latency_ms"`
	Heartbeats        uint64         `json:"heartbeats_sent"`
	Reconnects        uint64         `json:"reconnects"`
	CommandsAnswered  uint64         `json:"commands_answered"`
	CommandLatency    *Percentiles   `json:"command_latency_ms,omitempty"`
	IncidentLatency   *Percentiles   `json:"incident_latency_ms,omitempty"`
	HuntsAnswered     uint64         `json:"hunt_answers_sent"`
	HuntEmpty         *HuntReport    `json:"hunt_baseline,omitempty"`
	Hunt              *HuntReport    `json:"hunt,omitempty"`
	CollectorRSSBytes int64          `json:"collector_rss_bytes,omitempty"`
	LoadgenRSSBytes   int64          `json:"loadgen_rss_bytes,omitempty"`
	Errors            map[string]int `json:"errors"`
	// ErrorSamples holds the first message of each kind of error.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
}

// fleet is the shared state of all simulated agents.
type fleet struct {
	cfg Config
	log *slog.Logger

	connected, peak                          atomic.Int64
	generated, acked, stored, dups, batches  atomic.Uint64
	heartbeats, reconnects, commandsAnswered atomic.Uint64
	huntsAnswered                            atomic.Uint64
	ackLat                                   latencies
	errMu                                    sync.Mutex
	errs                                     map[string]int
	errSamples                               map[string]string
	ever                                     atomic.Int64 // agents that got at least one HelloAck
	ackedMu                                  sync.Mutex
	ackedOut                                 *bufio.Writer
	samples                                  chan sample // findings whose incident latency is measured
	sampleLeft                               atomic.Int64
	agentsByIdx                              []*simAgent
	generateEnd                              time.Time
	generateDone                             chan struct{}
	holdUntil                                time.Time
	lastAck                                  atomic.Int64 // unix nanoseconds
	// commandsDone closes when every probe command has its result, so
	// agents stay connected to answer them.
	commandsDone chan struct{}
}

type sample struct {
	id   string
	sent time.Time
}

func (f *fleet) fail(kind string, err error) {
	f.errMu.Lock()
	f.errs[kind]++
	if _, ok := f.errSamples[kind]; !ok {
		f.errSamples[kind] = err.Error()
	}
	f.errMu.Unlock()
	f.log.Info(kind, "err", err)
}

// Run enrolls the agents, runs the load and returns the report. A report
// is returned even with an error, as far as the run got.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	api := newAPIClient(cfg.API, cfg.Token)
	f := &fleet{cfg: cfg, log: cfg.Logger, errs: map[string]int{}, errSamples: map[string]string{}, samples: make(chan sample, max(cfg.Incidents, 1)), generateDone: make(chan struct{}), commandsDone: make(chan struct{})}
	f.sampleLeft.Store(int64(cfg.Incidents))
	rep := &Report{Agents: cfg.Agents, Errors: f.errs, ErrorSamples: f.errSamples}

	if cfg.AckedFile != "" {
		out, err := os.Create(cfg.AckedFile)
		if err != nil {
			return nil, fmt.Errorf("--acked: %w", err)
		}
		defer out.Close()
		f.ackedOut = bufio.NewWriter(out)
		defer func() {
			f.ackedMu.Lock()
			f.ackedOut.Flush()
			f.ackedMu.Unlock()
		}()
	}

	state, err := os.MkdirTemp("", "cordon-loadgen-")
	if err != nil {
		return nil, fmt.Errorf("creating a folder for the agents' identities: %w", err)
	}
	defer os.RemoveAll(state)

	// Enroll everyone with one token good for exactly that many uses.
	t0 := time.Now()
	token, err := api.createToken(ctx, cfg.Agents)
	if err != nil {
		return nil, err
	}
	pin, err := api.caPin(ctx)
	if err != nil {
		return nil, err
	}
	agents := make([]*simAgent, cfg.Agents)
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(cfg.Concurrency)
	for i := range agents {
		eg.Go(func() error {
			dir := filepath.Join(state, fmt.Sprint(i))
			host := &protocol.HostFacts{Hostname: fmt.Sprintf("loadgen-%05d", i), Os: runtime.GOOS, Arch: runtime.GOARCH, AgentVersion: "loadgen"}
			id, err := identity.Enroll(ectx, identity.Options{Collector: cfg.Collector, Token: token, CAPin: pin, StateDir: dir, Host: host})
			if err != nil {
				return fmt.Errorf("enrolling agent %d: %w", i, err)
			}
			_, tlsConf, err := identity.Load(dir)
			if err != nil {
				return fmt.Errorf("loading the identity of agent %d: %w", i, err)
			}
			agents[i] = &simAgent{f: f, idx: i, id: id.AgentID, host: host, tls: tlsConf}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		for _, a := range agents {
			if a != nil {
				rep.Enrolled++
			}
		}
		return rep, err
	}
	rep.Enrolled = len(agents)
	rep.EnrollSeconds = time.Since(t0).Seconds()
	f.agentsByIdx = agents

	// Generation ends after Duration; sending ends when everything is
	// acknowledged or Drain has passed after that; Hold keeps the
	// connections open a while longer.
	t1 := time.Now()
	f.generateEnd = t1.Add(cfg.Duration)
	f.holdUntil = f.generateEnd.Add(cfg.Hold)
	runCtx, cancel := context.WithDeadline(ctx, f.holdUntil.Add(cfg.Drain))
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	var agentsDone sync.WaitGroup
	for _, a := range agents {
		agentsDone.Add(1)
		g.Go(func() error {
			defer agentsDone.Done()
			a.run(gctx)
			return nil
		})
	}
	g.Go(func() error {
		select {
		case <-time.After(time.Until(f.generateEnd)):
		case <-gctx.Done():
		}
		close(f.generateDone)
		return nil
	})
	var cmdLat, incLat latencies
	g.Go(func() error {
		defer close(f.commandsDone)
		if cfg.Commands > 0 {
			f.driveCommands(gctx, api, &cmdLat)
		}
		if cfg.Hunt {
			f.driveHunts(gctx, api, rep)
		}
		return nil
	})
	if cfg.CollectorPID > 0 {
		g.Go(func() error {
			f.watchRSS(gctx, &agentsDone, &rep.CollectorRSSBytes)
			return nil
		})
	}
	// The incident watcher outlives the senders: it stops taking samples
	// when they are done and waits for those in flight.
	stopSampling := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		f.watchIncidents(runCtx, stopSampling, api, &incLat)
	}()
	_ = g.Wait()
	close(stopSampling)
	<-watched
	rep.RunSeconds = time.Since(t1).Seconds()
	rep.Connected = f.connected.Load()
	rep.ConnectedPeak = f.peak.Load()
	rep.ConnectedEver = f.ever.Load()
	rep.FindingsGenerated = f.generated.Load()
	rep.FindingsAcked = f.acked.Load()
	rep.FindingsStored = f.stored.Load()
	rep.Duplicates = f.dups.Load()
	rep.FindingsUnacked = rep.FindingsGenerated - rep.FindingsAcked
	rep.BatchesAcked = f.batches.Load()
	if last := f.lastAck.Load(); last > 0 {
		if active := time.Duration(last - t1.UnixNano()).Seconds(); active > 0 {
			rep.Throughput = float64(rep.FindingsAcked) / active
		}
	}
	rep.AckLatency = f.ackLat.percentiles()
	rep.Heartbeats = f.heartbeats.Load()
	rep.Reconnects = f.reconnects.Load()
	rep.CommandsAnswered = f.commandsAnswered.Load()
	if cfg.Commands > 0 {
		p := cmdLat.percentiles()
		rep.CommandLatency = &p
	}
	if cfg.Incidents > 0 {
		p := incLat.percentiles()
		rep.IncidentLatency = &p
	}
	rep.HuntsAnswered = f.huntsAnswered.Load()
	rep.LoadgenRSSBytes = selfRSS()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if cfg.Hunt && (rep.Hunt == nil || rep.Hunt.Status != "done") {
		return rep, errors.New("the hunt did not complete on every agent within the run (see hunt and errors)")
	}
	if rep.FindingsUnacked > 0 {
		return rep, fmt.Errorf("%d findings were not acknowledged within --drain", rep.FindingsUnacked)
	}
	return rep, nil
}

// watchRSS samples the collector's resident memory every 250ms while
// agents are running and keeps the peak.
func (f *fleet) watchRSS(ctx context.Context, agents *sync.WaitGroup, peak *int64) {
	done := make(chan struct{})
	go func() { agents.Wait(); close(done) }()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		if rss := procRSS(f.cfg.CollectorPID); rss > *peak {
			*peak = rss
		}
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-t.C:
		}
	}
}

// driveCommands requests Commands commands, one at a time, each to a
// random connected agent, and times request → result in the API.
func (f *fleet) driveCommands(ctx context.Context, api *apiClient, lat *latencies) {
	// Commands are timed with the whole fleet connected: wait for every
	// agent to have connected,
	// then spread them over what is left of the generation window.
	// Agents refused in a connection burst may come back after the
	// generation window; they stay connected until the commands are done.
	for f.ever.Load() < int64(len(f.agentsByIdx)) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	every := max(time.Until(f.generateEnd)/time.Duration(f.cfg.Commands+1), 50*time.Millisecond)
	for i := 0; i < f.cfg.Commands; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		a := f.agentsByIdx[rand.N(len(f.agentsByIdx))]
		start := time.Now()
		id, err := api.createCommand(ctx, a.id)
		if err != nil {
			f.fail("command_request", err)
			continue
		}
		if err := api.waitCommand(ctx, id); err != nil {
			f.fail("command_result", err)
			continue
		}
		lat.add(time.Since(start))
	}
}

// watchIncidents polls the API for each sampled finding until it names
// its incident.
func (f *fleet) watchIncidents(ctx context.Context, stop <-chan struct{}, api *apiClient, lat *latencies) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case s := <-f.samples:
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := api.waitIncident(ctx, s.id); err != nil {
					f.fail("incident_wait", err)
					return
				}
				lat.add(time.Since(s.sent))
			}()
		}
	}
}

func (f *fleet) recordAcked(ids []string) {
	if f.ackedOut == nil {
		return
	}
	f.ackedMu.Lock()
	defer f.ackedMu.Unlock()
	for _, id := range ids {
		f.ackedOut.WriteString(id)
		f.ackedOut.WriteByte('\n')
	}
	f.ackedOut.Flush()
}
