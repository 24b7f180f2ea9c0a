package incident

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Findings is the findings read model, told which incident each finding
// joined.
type Findings interface {
	// Attach records, inside txn, that a finding belongs to an incident,
	// and returns false when it already belongs to one (or is unknown).
	Attach(txn *badger.Txn, findingID, incidentID string) (bool, error)
}

// Agents tells the engine about the hosts findings come from.
type Agents interface {
	Lookup(agentID string) (hostname string, tags map[string]string, ok bool)
}

// Config configures an Engine. DB, Log and Findings are required.
type Config struct {
	DB       *badger.DB
	Log      ingest.Log
	Findings Findings
	// Agents gives hostnames and the criticality tag; optional.
	Agents Agents
	// Window is how far apart two findings of one agent may be observed
	// and still join one incident; DefaultWindow when zero.
	Window time.Duration
	// MaxFindings caps the findings of one incident; a finding beyond it
	// opens a new incident. DefaultMaxFindings when zero.
	MaxFindings int
	// Now is the clock of API changes; time.Now when nil.
	Now func() time.Time
	// Changed, when set, is called after findings from the log changed
	// incidents (opened or joined), outside any transaction.
	Changed func()
}

// Defaults of Config.
const (
	DefaultWindow      = 30 * time.Minute
	DefaultMaxFindings = 1000
)

// batchSize is how many log records one transaction applies.
const batchSize = 128

// Engine builds incidents from the findings log and serves them.
type Engine struct {
	db       *badger.DB
	log      ingest.Log
	findings Findings
	agents   Agents
	window   time.Duration
	max      int
	now      func() time.Time
	changed  func()
	logger   *slog.Logger

	opened atomic.Uint64
}

// New returns an Engine; Run starts it.
func New(cfg Config, log *slog.Logger) *Engine {
	e := &Engine{
		db: cfg.DB, log: cfg.Log, findings: cfg.Findings, agents: cfg.Agents,
		window: cfg.Window, max: cfg.MaxFindings, now: cfg.Now, changed: cfg.Changed, logger: log,
	}
	if e.window <= 0 {
		e.window = DefaultWindow
	}
	if e.max <= 0 {
		e.max = DefaultMaxFindings
	}
	if e.now == nil {
		e.now = time.Now
	}
	return e
}

// Stats counts what the Engine did since it was created.
type Stats struct {
	Opened uint64
}

// Stats returns the Engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{Opened: e.opened.Load()}
}

var offsetKey = store.Key("meta", "incident-offset")

func incidentKey(id string) []byte { return store.Key("incident", id) }
func agentIndex(agentID string) []byte {
	return store.Prefix("iagent", agentID)
}
func corrKey(agentID string, drill bool) []byte {
	d := "real"
	if drill {
		d = "drill"
	}
	return store.Key("icorr", agentID, d)
}

// Run consumes the findings log until ctx ends, from the offset it
// stored last.
func (e *Engine) Run(ctx context.Context) error {
	var offset uint64
	err := e.db.View(func(txn *badger.Txn) error {
		err := store.Get(txn, offsetKey, &offset)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("reading the incident engine's log offset: %w", err)
	}
	for {
		wake := e.log.Notify()
		recs, next, err := e.log.Read(ctx, offset, batchSize)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("incident engine: %w", err)
		}
		if len(recs) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			}
			continue
		}
		if err := e.apply(ctx, recs, next); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("incident engine: applying log records %d to %d: %w", recs[0].Seq, recs[len(recs)-1].Seq, err)
		}
		offset = next
	}
}

// apply adds the findings of recs to incidents and stores next as the
// offset, in one transaction, or in several when it is too big.
func (e *Engine) apply(ctx context.Context, recs []ingest.Record, next uint64) error {
	var opened int
	err := store.Update(ctx, e.db, func(txn *badger.Txn) error {
		opened = 0
		for _, r := range recs {
			if r.Finding == nil {
				continue
			}
			created, err := e.add(txn, r.Finding)
			if err != nil {
				return fmt.Errorf("finding %s: %w", r.Finding.ID, err)
			}
			if created {
				opened++
			}
		}
		return store.Put(txn, offsetKey, next)
	})
	if errors.Is(err, badger.ErrTxnTooBig) && len(recs) > 1 {
		h := len(recs) / 2
		if err := e.apply(ctx, recs[:h], recs[h-1].Seq+1); err != nil {
			return err
		}
		return e.apply(ctx, recs[h:], next)
	}
	if err == nil {
		e.opened.Add(uint64(opened))
		if e.changed != nil {
			e.changed()
		}
	}
	return err
}

// add puts f into its agent's open incident, or opens one. It reports
// whether it opened one.
func (e *Engine) add(txn *badger.Txn, f *ingest.Finding) (opened bool, err error) {
	var cur *record
	var openID string
	err = store.Get(txn, corrKey(f.AgentID, f.Drill), &openID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return false, err
	default:
		var r record
		if err := store.Get(txn, incidentKey(openID), &r); err != nil {
			return false, fmt.Errorf("incident %s: %w", openID, err)
		}
		if e.joins(&r, f) {
			cur = &r
		}
	}

	id := ""
	if cur != nil {
		id = cur.ID
	} else {
		u, err := uuid.NewV7()
		if err != nil {
			return false, fmt.Errorf("minting an incident id: %w", err)
		}
		id = u.String()
	}
	attached, err := e.findings.Attach(txn, f.ID, id)
	if err != nil || !attached {
		// Already in an incident: a replay.
		return false, err
	}

	opened = cur == nil
	if opened {
		cur = e.open(id, f)
		if err := txn.Set(append(agentIndex(f.AgentID), id...), []byte(id)); err != nil {
			return false, fmt.Errorf("indexing incident %s: %w", id, err)
		}
		if err := store.Put(txn, corrKey(f.AgentID, f.Drill), id); err != nil {
			return false, err
		}
	} else {
		e.join(cur, f)
	}
	return opened, store.Put(txn, incidentKey(id), cur)
}

// joins reports whether f belongs to the incident r.
func (e *Engine) joins(r *record, f *ingest.Finding) bool {
	if !r.Status.open() || r.Drill != f.Drill || len(r.FindingIDs) >= e.max {
		return false
	}
	d := f.ObservedAt.Sub(r.LastObserved)
	return d.Abs() <= e.window
}

func (e *Engine) open(id string, f *ingest.Finding) *record {
	host, criticality := e.host(f)
	lvl := level(f.Severity)
	title := fmt.Sprintf("%s on %s", ruleName(f), host)
	if f.Drill {
		title = "[drill] " + title
	}
	return &record{
		Incident: Incident{
			ID:               id,
			Title:            title,
			Status:           StatusNew,
			Type:             typeOf(f.Attack.Tactics),
			Impact:           lvl,
			Urgency:          lvl,
			Priority:         Priority(lvl, lvl),
			AssetCriticality: criticality,
			Origin:           OriginUnknown,
			AffectedHosts:    []string{f.AgentID},
			AffectedUsers:    users(nil, f.Evidence),
			FindingIDs:       []string{f.ID},
			Timeline: []Entry{{
				At: f.ReceivedAt, Actor: ActorCordon, Action: ActionOpened,
				Detail: findingDetail(f),
			}},
			Drill:      f.Drill,
			DetectedAt: f.ObservedAt,
			UpdatedAt:  f.ReceivedAt,
		},
		Tactics:      union(nil, f.Attack.Tactics),
		LastObserved: f.ObservedAt,
		Hostname:     host,
	}
}

func (e *Engine) join(r *record, f *ingest.Finding) {
	r.FindingIDs = append(r.FindingIDs, f.ID)
	r.Timeline = append(r.Timeline, Entry{
		At: f.ReceivedAt, Actor: ActorCordon, Action: ActionFindingAdded, Detail: findingDetail(f),
	})
	r.Title = fmt.Sprintf("%d detections on %s", len(r.FindingIDs), r.Hostname)
	if r.Drill {
		r.Title = "[drill] " + r.Title
	}
	r.Tactics = union(r.Tactics, f.Attack.Tactics)
	r.Type = typeOf(r.Tactics)
	r.AffectedUsers = users(r.AffectedUsers, f.Evidence)
	if lvl := level(f.Severity); lvl < r.Impact || lvl < r.Urgency {
		before := r.Priority
		r.Impact, r.Urgency = min(r.Impact, lvl), min(r.Urgency, lvl)
		r.Priority = Priority(r.Impact, r.Urgency)
		r.Timeline = append(r.Timeline, Entry{
			At: f.ReceivedAt, Actor: ActorCordon, Action: ActionEscalated,
			Detail: fmt.Sprintf("impact %d, urgency %d, priority %s → %s after a %s finding", r.Impact, r.Urgency, before, r.Priority, f.Severity),
		})
	}
	if f.ObservedAt.Before(r.DetectedAt) {
		r.DetectedAt = f.ObservedAt
	}
	if f.ObservedAt.After(r.LastObserved) {
		r.LastObserved = f.ObservedAt
	}
	r.UpdatedAt = f.ReceivedAt
}

// host returns the hostname and the asset criticality of f's agent.
func (e *Engine) host(f *ingest.Finding) (hostname, criticality string) {
	hostname, criticality = f.Hostname, "unknown"
	if e.agents != nil {
		h, tags, ok := e.agents.Lookup(f.AgentID)
		if ok {
			if hostname == "" {
				hostname = h
			}
			if c := strings.ToLower(strings.TrimSpace(tags["criticality"])); c != "" {
				criticality = c
			}
		}
	}
	if hostname == "" {
		hostname = f.AgentID
	}
	return hostname, criticality
}

func ruleName(f *ingest.Finding) string {
	switch {
	case f.Rule.Name != "":
		return f.Rule.Name
	case f.Rule.ID != "":
		return f.Rule.ID
	}
	return "Detection"
}

func findingDetail(f *ingest.Finding) string {
	return fmt.Sprintf("%s finding %s: %s", f.Severity, f.ID, ruleName(f))
}

// users adds the process.user.name values of evidence to have.
func users(have []string, evidence json.RawMessage) []string {
	var events []ecs.Event
	if have == nil {
		have = []string{}
	}
	if err := json.Unmarshal(evidence, &events); err != nil {
		return have
	}
	var names []string
	for _, ev := range events {
		if ev.Process != nil && ev.Process.User.Name != "" {
			names = append(names, ev.Process.User.Name)
		}
	}
	return union(have, names)
}

// union returns a sorted, duplicate-free a ∪ b.
func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}
