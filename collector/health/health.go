// Package health turns an agent's health into findings, so an attacker who
// blinds the agent still opens an incident: an agent that falls silent
// without saying goodbye for longer than a grace period, and a sensor that
// stops, falls back to a weaker mode or suddenly loses many events. The
// findings go through the normal ingest path under the agent's id, so they
// correlate with the agent's other findings into its incident. Their
// severity follows the host's criticality tag.
//
// The gateway tells the Monitor of every hello (Seen), heartbeat and
// goodbye. Which agents said goodbye, and which silences were already
// reported, is stored, so a collector restart neither forgets a stopped
// agent (and reports it) nor reports the same silence twice; a restart
// starts every other agent's silence clock afresh.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/registry"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Rule ids of the health findings.
const (
	RuleSilent         = "cordon-health-silent"
	RuleSensorDegraded = "cordon-health-sensor-degraded"
	RuleSensorLoss     = "cordon-health-sensor-loss"
)

// ATT&CK (v19) ids of the health findings: Defense Impairment, Disable or
// Modify Tools (T1562.001, Impair Defenses, before v19).
const (
	tacticDefenseImpairment = "TA0112"
	techDisableTools        = "T1685"
)

// Defaults for Config.
const (
	DefaultGrace         = 90 * time.Second
	DefaultLossThreshold = 1000
	// lossEvery is the least time between two loss findings of one sensor.
	lossEvery = 10 * time.Minute
)

// Ingest stores findings durably, each id once.
type Ingest interface {
	Append(ctx context.Context, agentID string, findings []*protocol.Finding) (stored, duplicates int, err error)
}

// Agents is what the Monitor needs of the registry.
type Agents interface {
	// Get returns one agent (for its hostname, tags and revocation).
	Get(ctx context.Context, id string) (*registry.Agent, error)
	// Seen returns the unrevoked agents that ever connected.
	Seen(ctx context.Context) ([]string, error)
}

// Config configures a Monitor.
type Config struct {
	DB     *badger.DB
	Ingest Ingest
	Agents Agents
	// Grace is how long an agent may be silent (no hello, no heartbeat)
	// without having said goodbye before it is reported; DefaultGrace
	// when 0. It must be longer than the agents' heartbeat interval.
	Grace time.Duration
	// LossThreshold is how many events a sensor may lose or drop between
	// two heartbeats before it is reported; DefaultLossThreshold when 0.
	LossThreshold uint64
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
}

// Monitor watches agents' health.
type Monitor struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	agents  map[string]*agentState
	pending []pendingFinding
	wake    chan struct{}
}

type agentState struct {
	lastSeen time.Time
	// stopped: the agent said goodbye and has not been seen since.
	stopped bool
	// reported: its current silence was reported.
	reported bool
	sensors  map[string]*protocol.SensorStats
	// degraded holds the sensors reported as stopped or degraded, with
	// the mode reported, so one change is reported once.
	degraded map[string]string
	lossAt   map[string]time.Time
}

// record is what is stored of an agent's health, under health/<id>.
type record struct {
	Stopped  bool `json:"stopped,omitempty"`
	Reported bool `json:"reported,omitempty"`
}

type pendingFinding struct {
	agentID string
	f       *protocol.Finding
	// silence marks the finding of a silence, stored as reported once
	// the finding is.
	silence bool
}

// New returns a Monitor; Run watches.
func New(cfg Config) *Monitor {
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.LossThreshold == 0 {
		cfg.LossThreshold = DefaultLossThreshold
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Monitor{cfg: cfg, log: cfg.Logger, agents: map[string]*agentState{}, wake: make(chan struct{}, 1)}
}

func key(agentID string) []byte { return store.Key("health", agentID) }

// load starts watching every agent that ever connected, with the silence
// clock starting now.
func (m *Monitor) load(ctx context.Context) error {
	ids, err := m.cfg.Agents.Seen(ctx)
	if err != nil {
		return fmt.Errorf("listing agents to watch: %w", err)
	}
	now := m.cfg.Now()
	recs := make(map[string]record, len(ids))
	err = m.cfg.DB.View(func(txn *badger.Txn) error {
		for _, id := range ids {
			var r record
			if err := store.Get(txn, key(id), &r); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			recs[id] = r
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading agents' health: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if _, ok := m.agents[id]; ok {
			continue // seen since Run started
		}
		r := recs[id]
		m.agents[id] = &agentState{lastSeen: now, stopped: r.Stopped, reported: r.Reported}
	}
	return nil
}

func (m *Monitor) state(agentID string) *agentState {
	st := m.agents[agentID]
	if st == nil {
		st = &agentState{}
		m.agents[agentID] = st
	}
	return st
}

// Seen records a hello: the agent is back, any goodbye or reported
// silence is over.
func (m *Monitor) Seen(agentID string) {
	m.mu.Lock()
	st := m.state(agentID)
	st.lastSeen = m.cfg.Now()
	clear := st.stopped || st.reported
	st.stopped, st.reported = false, false
	m.mu.Unlock()
	if clear {
		m.save(agentID, record{})
	}
}

// Goodbye records a clean stop: the silence that follows is expected.
func (m *Monitor) Goodbye(agentID, reason string) {
	m.mu.Lock()
	st := m.state(agentID)
	st.lastSeen = m.cfg.Now()
	st.stopped = true
	m.mu.Unlock()
	m.save(agentID, record{Stopped: true})
}

func (m *Monitor) save(agentID string, r record) {
	err := store.Update(context.Background(), m.cfg.DB, func(txn *badger.Txn) error {
		if r == (record{}) {
			return txn.Delete(key(agentID))
		}
		return store.Put(txn, key(agentID), r)
	})
	if err != nil {
		m.log.Warn("storing an agent's health", "agent", agentID, "err", err)
	}
}

// Heartbeat records a sign of life and compares the sensors with the
// previous heartbeat's.
func (m *Monitor) Heartbeat(agentID string, hb *protocol.Heartbeat) {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state(agentID)
	st.lastSeen = now
	if st.sensors == nil {
		st.sensors, st.degraded, st.lossAt = map[string]*protocol.SensorStats{}, map[string]string{}, map[string]time.Time{}
	}
	cur := map[string]*protocol.SensorStats{}
	for _, s := range hb.GetSensors() {
		cur[s.GetName()] = s
	}
	for _, name := range sortedKeys(st.sensors) {
		if _, ok := cur[name]; !ok && st.degraded[name] != modeAbsent {
			st.degraded[name] = modeAbsent
			m.queue(agentID, m.sensorFinding(agentID, name, st.sensors[name].GetMode(), modeAbsent, now), false)
		}
	}
	for _, name := range sortedKeys(cur) {
		s := cur[name]
		prev := st.sensors[name]
		prevMode := ""
		if prev != nil {
			prevMode = prev.GetMode()
		}
		switch {
		case degraded(prevMode, s.GetMode(), prev != nil) && st.degraded[name] != s.GetMode():
			st.degraded[name] = s.GetMode()
			m.queue(agentID, m.sensorFinding(agentID, name, prevMode, s.GetMode(), now), false)
		case rank(s.GetMode()) > rank(st.degraded[name]):
			delete(st.degraded, name) // recovered: a new degradation is news
		}
		if prev != nil {
			was, is := prev.GetLost()+prev.GetDropped(), s.GetLost()+s.GetDropped()
			// Counters restart with the agent: a smaller value is a restart.
			if is >= was && is-was >= m.cfg.LossThreshold && now.Sub(st.lossAt[name]) >= lossEvery {
				st.lossAt[name] = now
				m.queue(agentID, m.lossFinding(agentID, name, s.GetMode(), is-was, now), false)
			}
		}
		st.sensors[name] = s
	}
}

// modeAbsent stands for a sensor missing from a heartbeat.
const modeAbsent = "absent"

// rank orders sensor modes from stopped to fullest.
func rank(mode string) int {
	switch mode {
	case "", "failed", modeAbsent:
		return 0
	case "poll":
		return 1
	case "ebpf", "netlink+ebpf": // netlink+ebpf: agents before 2026-12
		return 3
	}
	return 2
}

// degraded reports whether a sensor going from mode was to is lost
// capability; a sensor seen for the first time counts only when failed.
func degraded(was, is string, known bool) bool {
	if !known {
		return is == "failed"
	}
	return rank(is) < rank(was)
}

func (m *Monitor) queue(agentID string, f *protocol.Finding, silence bool) {
	if f == nil {
		return
	}
	m.pending = append(m.pending, pendingFinding{agentID: agentID, f: f, silence: silence})
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run watches for silent agents and stores the findings until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	if err := m.load(ctx); err != nil {
		return err
	}
	every := min(max(m.cfg.Grace/4, 100*time.Millisecond), 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		m.scan()
		m.flush(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-m.wake:
		}
	}
}

// scan queues a finding for each agent silent past the grace period.
func (m *Monitor) scan() {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range sortedKeys(m.agents) {
		st := m.agents[id]
		if st.stopped || st.reported || now.Sub(st.lastSeen) <= m.cfg.Grace {
			continue
		}
		st.reported = true
		m.queue(id, m.silenceFinding(id, st.lastSeen, now), true)
	}
}

// flush stores the queued findings; one that fails to store is tried
// again at the next round.
func (m *Monitor) flush(ctx context.Context) {
	m.mu.Lock()
	todo := m.pending
	m.pending = nil
	m.mu.Unlock()
	var failed []pendingFinding
	for i, p := range todo {
		if ctx.Err() != nil {
			failed = append(failed, todo[i:]...)
			break
		}
		if _, _, err := m.cfg.Ingest.Append(ctx, p.agentID, []*protocol.Finding{p.f}); err != nil {
			m.log.Warn("storing a health finding; will retry", "agent", p.agentID, "rule", p.f.GetRule().GetId(), "err", err)
			failed = append(failed, p)
			continue
		}
		m.log.Warn("agent health finding", "agent", p.agentID, "rule", p.f.GetRule().GetId(), "severity", p.f.GetSeverity(), "summary", p.f.GetSummary())
		if p.silence {
			m.save(p.agentID, record{Reported: true})
		}
	}
	if len(failed) > 0 {
		m.mu.Lock()
		m.pending = append(failed, m.pending...)
		m.mu.Unlock()
	}
}

// hostOf returns the agent's hostname and criticality tag; ok is false
// for a revoked or unknown agent, which is not reported.
func (m *Monitor) hostOf(agentID string) (hostname, criticality string, ok bool) {
	a, err := m.cfg.Agents.Get(context.Background(), agentID)
	if err != nil || a.Revoked {
		return "", "", false
	}
	return a.Hostname, a.Tags["criticality"], true
}

func (m *Monitor) silenceFinding(agentID string, last, now time.Time) *protocol.Finding {
	host, crit, ok := m.hostOf(agentID)
	if !ok {
		return nil
	}
	return m.finding(agentID, host, &protocol.Rule{Id: RuleSilent, Name: "Agent silent without a clean shutdown"},
		severity("medium", crit), last, now, "agent-silent",
		fmt.Sprintf("The agent on %s has been silent for %s (last seen %s) without saying it was stopping: it may have been killed, blocked from the network, or the host may be down.",
			hostLabel(host, agentID), now.Sub(last).Round(time.Second), last.UTC().Format(time.RFC3339)))
}

func (m *Monitor) sensorFinding(agentID, sensor, was, is string, now time.Time) *protocol.Finding {
	host, crit, ok := m.hostOf(agentID)
	if !ok {
		return nil
	}
	var summary string
	switch {
	case is == modeAbsent:
		summary = fmt.Sprintf("The %s sensor of the agent on %s stopped reporting (it ran in %s mode).", sensor, hostLabel(host, agentID), was)
	case was == "":
		summary = fmt.Sprintf("The %s sensor of the agent on %s failed.", sensor, hostLabel(host, agentID))
	default:
		summary = fmt.Sprintf("The %s sensor of the agent on %s degraded from %s to %s mode.", sensor, hostLabel(host, agentID), was, is)
	}
	return m.finding(agentID, host, &protocol.Rule{Id: RuleSensorDegraded, Name: "Agent sensor stopped or degraded"},
		severity("medium", crit), now, now, "sensor-degraded", summary)
}

func (m *Monitor) lossFinding(agentID, sensor, mode string, lost uint64, now time.Time) *protocol.Finding {
	host, crit, ok := m.hostOf(agentID)
	if !ok {
		return nil
	}
	return m.finding(agentID, host, &protocol.Rule{Id: RuleSensorLoss, Name: "Agent sensor losing events"},
		severity("low", crit), now, now, "sensor-loss",
		fmt.Sprintf("The %s sensor (%s mode) of the agent on %s lost or dropped %d events between two heartbeats: activity may be hidden in a flood.", sensor, mode, hostLabel(host, agentID), lost))
}

func (m *Monitor) finding(agentID, host string, rule *protocol.Rule, sev string, observed, now time.Time, action, summary string) *protocol.Finding {
	id, err := uuid.NewV7()
	if err != nil {
		m.log.Error("minting a health finding id", "err", err)
		return nil
	}
	rule.Version, rule.Author, rule.License = "1", "Cordon", "DRL-1.1"
	ev, _ := json.Marshal([]ecs.Event{{
		Timestamp: observed.UTC(),
		Event:     ecs.Meta{Category: "host", Type: "info", Action: action, Module: "cordon-collector"},
		Host:      &ecs.Host{Hostname: host, ID: agentID},
	}})
	return &protocol.Finding{
		Id:               id.String(),
		Rule:             rule,
		Severity:         sev,
		Tactics:          []string{tacticDefenseImpairment},
		Techniques:       []string{techDisableTools},
		Summary:          summary,
		EvidenceJson:     ev,
		ObservedUnixNano: observed.UnixNano(),
		DetectedUnixNano: now.UnixNano(),
	}
}

var severities = []string{"low", "medium", "high", "critical"}

// criticalityShift raises (or lowers) a health finding's severity by the
// host's criticality tag, as the incident engine does its impact.
var criticalityShift = map[string]int{"critical": 2, "high": 1, "medium": 0, "low": -1}

func severity(base, criticality string) string {
	i := slices.Index(severities, base) + criticalityShift[criticality]
	return severities[min(max(i, 0), len(severities)-1)]
}

func hostLabel(host, agentID string) string {
	if host == "" {
		return "agent " + agentID
	}
	return host
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
