package incident

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/playbook"
	"github.com/cordon-edr/cordon/collector/store"
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
	// Containment tells which containment commands succeeded for an
	// incident; optional (without it, reaching contained always needs a
	// written justification).
	Containment Containment
	// Targets are the service-level targets per priority; missing
	// priorities take DefaultTargets.
	Targets map[string]Target
	// Playbooks are the playbooks per incident type; none when nil.
	Playbooks playbook.Set
	// DryRun turns every playbook's actions into timeline entries only.
	DryRun bool
	// Responder sends the commands of playbook actions; without it they
	// are marked failed.
	Responder Responder
	// Now is the clock of API changes and service levels; time.Now when
	// nil.
	Now func() time.Time
	// Hook is told of every change, inside the transaction making it;
	// optional.
	Hook Hook
	// Changed, when set, is called after findings from the log changed
	// incidents (opened or joined), outside any transaction.
	Changed func()
}

// Containment looks up the containment commands of an incident.
type Containment interface {
	// Contained returns a description of a succeeded containment command
	// (isolate, kill, suspend or quarantine) sent for the incident, or ""
	// when there is none.
	Contained(ctx context.Context, incidentID string) (string, error)
}

// Hook is told of each durable change inside the badger transaction that
// makes it, so what it writes (an outbox entry) commits with the change
// or not at all. It may be called again for the same change when the
// transaction is retried after a conflict.
type Hook interface {
	// IncidentChanged is called after an incident was opened, changed
	// or closed; change is one of the Change* constants. cause is the
	// finding that opened or joined it (with its IncidentID set), nil
	// for a change made through the API.
	IncidentChanged(txn *badger.Txn, change string, inc *Incident, cause *ingest.Finding) error
}

// Kinds of change a Hook is told about.
const (
	ChangeOpened  = "opened"
	ChangeUpdated = "updated"
	ChangeClosed  = "closed"
)

// Defaults of Config.
const (
	DefaultWindow      = 30 * time.Minute
	DefaultMaxFindings = 1000
)

// batchSize is the most log records one transaction applies. Each
// transaction decodes and writes the incidents it touches once (touched),
// so after a burst larger transactions correlate faster: in
// BenchmarkEngineApply 128 gave 18,400 findings/s, 512 about 26,500 and
// 1,024 about 31,000. A finding adds a few small keys to the transaction
// (incident records and export events are above badger's value threshold
// and count as pointers), far from badger's limit, which apply handles
// anyway by splitting. A lone finding is still applied alone, at once.
const batchSize = 512

// Engine builds incidents from the findings log and serves them.
type Engine struct {
	db        *badger.DB
	log       ingest.Log
	findings  Findings
	agents    Agents
	window    time.Duration
	max       int
	now       func() time.Time
	logger    *slog.Logger
	contain   Containment
	targets   map[string]Target
	playbooks playbook.Set
	dryRun    bool
	responder Responder
	hook      Hook
	onChanged func()

	opened atomic.Uint64
	offset atomic.Uint64 // the next log position Run applies
}

// New returns an Engine; Run starts it.
func New(cfg Config, log *slog.Logger) *Engine {
	e := &Engine{
		db: cfg.DB, log: cfg.Log, findings: cfg.Findings, agents: cfg.Agents,
		window: cfg.Window, max: cfg.MaxFindings, now: cfg.Now, hook: cfg.Hook, onChanged: cfg.Changed, logger: log,
		contain: cfg.Containment, targets: maps.Clone(DefaultTargets),
		playbooks: cfg.Playbooks, dryRun: cfg.DryRun, responder: cfg.Responder,
	}
	maps.Copy(e.targets, cfg.Targets)
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
	// Offset is the next position of the findings log to apply (0: Run
	// has not started).
	Offset uint64
}

// Stats returns the Engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{Opened: e.opened.Load(), Offset: e.offset.Load()}
}

var offsetKey = store.Key("meta", "incident-offset")

func incidentKey(id string) []byte { return store.Key("incident", id) }
func agentIndex(agentID string) []byte {
	return store.Prefix("iagent", agentID)
}
func indicatorKey(ind string, drill bool) []byte {
	return store.Key("iind", kind(drill), ind)
}
func kind(drill bool) string {
	if drill {
		return "drill"
	}
	return "real"
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
	offset = max(offset, 1)
	e.offset.Store(offset)
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
			// Only empty positions (duplicates') were left: step over
			// them; the stored offset follows with the next batch.
			offset = max(offset, next)
			e.offset.Store(offset)
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
		e.offset.Store(offset)
	}
}

// apply adds the findings of recs to incidents and stores next as the
// offset, in one transaction, or in several when it is too big.
func (e *Engine) apply(ctx context.Context, recs []ingest.Record, next uint64) error {
	var opened int
	var sends []dispatch
	err := store.Update(ctx, e.db, func(txn *badger.Txn) error {
		opened, sends = 0, nil
		incs := newTouched()
		for _, r := range recs {
			if r.Finding == nil {
				continue
			}
			created, ds, err := e.add(txn, incs, r.Finding)
			if err != nil {
				return fmt.Errorf("finding %s: %w", r.Finding.ID, err)
			}
			if created {
				opened++
			}
			sends = append(sends, ds...)
		}
		if err := incs.write(txn); err != nil {
			return err
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
		e.send(ctx, sends)
		if e.onChanged != nil {
			e.onChanged()
		}
	}
	return err
}

// touched holds the incidents one transaction of apply read or changed,
// each decoded once and, if changed, encoded and written once when the
// transaction's findings are all added. An incident holds up to
// MaxFindings finding ids and their timeline entries, so decoding and
// encoding it again for every finding that joins it cost more than
// everything else the collector does for the finding.
type touched struct {
	records map[string]*record
	changed []string        // ids, in the order first changed
	dirty   map[string]bool // the ids in changed
}

func newTouched() *touched {
	return &touched{records: make(map[string]*record), dirty: make(map[string]bool)}
}

// load returns incident id, as changed so far in this transaction.
func (t *touched) load(txn *badger.Txn, id string) (*record, error) {
	if r := t.records[id]; r != nil {
		return r, nil
	}
	r := new(record)
	if err := store.Get(txn, incidentKey(id), r); err != nil {
		return nil, err
	}
	t.records[id] = r
	return r, nil
}

// change notes that r was changed (or opened) and is to be written.
func (t *touched) change(r *record) {
	if !t.dirty[r.ID] {
		t.dirty[r.ID] = true
		t.changed = append(t.changed, r.ID)
	}
	t.records[r.ID] = r
}

// write stores every changed incident into txn.
func (t *touched) write(txn *badger.Txn) error {
	for _, id := range t.changed {
		if err := store.Put(txn, incidentKey(id), t.records[id]); err != nil {
			return err
		}
	}
	return nil
}

// add puts f into the open incident of its agent, or of another agent
// that shares an indicator with it, or opens one. It reports whether it
// opened one. The incidents it reads and changes are kept in t, which
// the caller writes once the transaction's findings are all added.
func (e *Engine) add(txn *badger.Txn, t *touched, f *ingest.Finding) (opened bool, sends []dispatch, err error) {
	ff := factsOf(f.Evidence)
	inds := indicators(f, ff)
	keys := [][]byte{corrKey(f.AgentID, f.Drill)}
	for _, ind := range inds {
		keys = append(keys, indicatorKey(ind, f.Drill))
	}
	var cur *record
	for _, k := range keys {
		var openID string
		err := store.Get(txn, k, &openID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, nil, err
		}
		r, err := t.load(txn, openID)
		if err != nil {
			return false, nil, fmt.Errorf("incident %s: %w", openID, err)
		}
		if e.joins(r, f) {
			cur = r
			break
		}
	}

	id := ""
	if cur != nil {
		id = cur.ID
	} else {
		u, err := uuid.NewV7()
		if err != nil {
			return false, nil, fmt.Errorf("minting an incident id: %w", err)
		}
		id = u.String()
	}
	attached, err := e.findings.Attach(txn, f.ID, id)
	if err != nil || !attached {
		// Already in an incident: a replay.
		return false, nil, err
	}

	opened = cur == nil
	newHost := opened || !slices.Contains(cur.AffectedHosts, f.AgentID)
	if opened {
		cur = e.open(id, f, ff, inds)
	} else {
		e.join(cur, f, ff, inds)
	}
	if newHost {
		if err := txn.Set(append(agentIndex(f.AgentID), id...), []byte(id)); err != nil {
			return false, nil, fmt.Errorf("indexing incident %s: %w", id, err)
		}
	}
	for _, k := range keys {
		if err := store.Put(txn, k, id); err != nil {
			return false, nil, err
		}
	}
	sends = e.runPlaybook(cur, f.ReceivedAt)
	t.change(cur)
	if e.hook != nil {
		joined := *f
		joined.IncidentID = id
		change := ChangeUpdated
		if opened {
			change = ChangeOpened
		}
		if err := e.hook.IncidentChanged(txn, change, &cur.Incident, &joined); err != nil {
			return false, nil, err
		}
	}
	return opened, sends, nil
}

// changed tells the hook about a change of r made by an API call.
func (e *Engine) changed(txn *badger.Txn, r *record, closedBefore bool) error {
	if e.hook == nil {
		return nil
	}
	change := ChangeUpdated
	if r.Status.Terminal() && !closedBefore {
		change = ChangeClosed
	}
	return e.hook.IncidentChanged(txn, change, &r.Incident, nil)
}

// indicators returns what may correlate f with findings of other hosts:
// its rule, the file hashes and the remote addresses of its evidence
// (loopback and unspecified addresses name no shared remote).
func indicators(f *ingest.Finding, ff facts) []string {
	var out []string
	if f.Rule.ID != "" {
		out = append(out, "rule:"+f.Rule.ID)
	}
	for _, h := range ff.hashes {
		out = append(out, "sha256:"+h)
	}
	for _, s := range ff.addrs {
		if a, err := netip.ParseAddr(s); err == nil && !a.Unmap().IsLoopback() && !a.IsUnspecified() {
			out = append(out, "ip:"+a.Unmap().String())
		}
	}
	return union(nil, out)
}

// joins reports whether f belongs to the incident r.
func (e *Engine) joins(r *record, f *ingest.Finding) bool {
	if !r.Status.open() || r.Drill != f.Drill || len(r.FindingIDs) >= e.max {
		return false
	}
	d := f.ObservedAt.Sub(r.LastObserved)
	return d.Abs() <= e.window
}

func (e *Engine) open(id string, f *ingest.Finding, ff facts, inds []string) *record {
	host, criticality := e.host(f)
	r := &record{
		Incident: Incident{
			ID:            id,
			Status:        StatusNew,
			Severity:      f.Severity,
			AffectedHosts: []string{f.AgentID},
			AffectedUsers: union(nil, ff.users),
			FindingIDs:    []string{f.ID},
			Tactics:       union(nil, f.Attack.Tactics),
			Techniques:    union(nil, f.Attack.Techniques),
			Indicators:    inds,
			Overrides:     []string{},
			Timeline: []Entry{{
				At: f.ReceivedAt, Actor: ActorCordon, Action: ActionOpened,
				Detail: findingDetail(f),
			}},
			Drill:      f.Drill,
			DetectedAt: f.ObservedAt,
			OpenedAt:   f.ReceivedAt,
			UpdatedAt:  f.ReceivedAt,
		},
		LastObserved: f.ObservedAt,
		Hostname:     host,
		Criticality:  map[string]string{f.AgentID: criticality},
		Addresses:    union(nil, ff.addrs),
		Rules:        union(nil, []string{f.Rule.ID}),
	}
	r.Title = fmt.Sprintf("%s on %s", ruleName(f), host)
	if f.Drill {
		r.Title = "[drill] " + r.Title
	}
	e.classify(r, f.ReceivedAt, "")
	return r
}

func (e *Engine) join(r *record, f *ingest.Finding, ff facts, inds []string) {
	r.FindingIDs = append(r.FindingIDs, f.ID)
	r.Timeline = append(r.Timeline, Entry{
		At: f.ReceivedAt, Actor: ActorCordon, Action: ActionFindingAdded, Detail: findingDetail(f),
	})
	if !slices.Contains(r.AffectedHosts, f.AgentID) {
		host, criticality := e.host(f)
		r.AffectedHosts = append(r.AffectedHosts, f.AgentID)
		r.Criticality[f.AgentID] = criticality
		shared := slices.DeleteFunc(slices.Clone(inds), func(s string) bool { return !slices.Contains(r.Indicators, s) })
		r.Timeline = append(r.Timeline, Entry{
			At: f.ReceivedAt, Actor: ActorCordon, Action: ActionHostAdded,
			Detail: fmt.Sprintf("%s (%s, criticality %s) shares %s", host, f.AgentID, criticality, strings.Join(shared, ", ")),
		})
	}
	if len(r.AffectedHosts) > 1 {
		r.Title = fmt.Sprintf("%d detections on %d hosts", len(r.FindingIDs), len(r.AffectedHosts))
	} else {
		r.Title = fmt.Sprintf("%d detections on %s", len(r.FindingIDs), r.Hostname)
	}
	if r.Drill {
		r.Title = "[drill] " + r.Title
	}
	if level(f.Severity) < level(r.Severity) {
		r.Severity = f.Severity
	}
	r.Tactics = union(r.Tactics, f.Attack.Tactics)
	r.Techniques = union(r.Techniques, f.Attack.Techniques)
	r.Indicators = union(r.Indicators, inds)
	r.AffectedUsers = union(r.AffectedUsers, ff.users)
	r.Addresses = union(r.Addresses, ff.addrs)
	r.Rules = union(r.Rules, []string{f.Rule.ID})
	if f.ObservedAt.Before(r.DetectedAt) {
		r.DetectedAt = f.ObservedAt
	}
	if f.ObservedAt.After(r.LastObserved) {
		r.LastObserved = f.ObservedAt
	}
	r.UpdatedAt = f.ReceivedAt
	e.classify(r, f.ReceivedAt, f.Severity+" finding "+f.ID)
}

// classify sets the type, origin, asset criticality, impact, urgency and
// priority of r from its findings and hosts, keeping the impact and
// urgency a responder overrode. A change after opening (why says what
// caused it) goes on the timeline.
func (e *Engine) classify(r *record, at time.Time, why string) {
	before := r.Incident
	r.Type = typeOf(r.Tactics, r.Techniques)
	r.Origin = originOf(r.Addresses)
	r.AssetCriticality = highestCriticality(slices.Collect(maps.Values(r.Criticality)))
	if !slices.Contains(r.Overrides, "impact") {
		r.Impact = impactOf(r.Severity, r.AssetCriticality, len(r.AffectedHosts), len(r.AffectedUsers))
	}
	if !slices.Contains(r.Overrides, "urgency") {
		r.Urgency = urgencyOf(r.Tactics, r.Severity)
	}
	r.Priority = Priority(r.Impact, r.Urgency)
	if why == "" {
		return
	}
	if r.Type != before.Type {
		r.Timeline = append(r.Timeline, Entry{
			At: at, Actor: ActorCordon, Action: ActionReclassified,
			Detail: fmt.Sprintf("type %s → %s after %s", before.Type, r.Type, why),
		})
	}
	if r.Impact != before.Impact || r.Urgency != before.Urgency {
		r.Timeline = append(r.Timeline, Entry{
			At: at, Actor: ActorCordon, Action: ActionEscalated,
			Detail: fmt.Sprintf("impact %d, urgency %d, priority %s → %s after %s", r.Impact, r.Urgency, before.Priority, r.Priority, why),
		})
	}
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
