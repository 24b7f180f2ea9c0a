package hunt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/groupcommit"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/collector/wake"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/query"
)

// Per-agent statuses.
const (
	StatusPending  = "pending"
	StatusAnswered = "answered"
	StatusPartial  = "partial"
	StatusFailed   = "failed"
	// StatusExpired is an agent that did not answer before the hunt
	// expired.
	StatusExpired = "expired"
)

// Hunt statuses.
const (
	HuntRunning = "running"
	HuntDone    = "done"
	HuntExpired = "expired"
)

// Limits and defaults of a Request.
const (
	DefaultSince      = 24 * time.Hour
	DefaultTTL        = 24 * time.Hour
	MaxTTL            = 7 * 24 * time.Hour
	DefaultMaxMatches = 1000
	MaxMatches        = 10000
	DefaultBudget     = 30 * time.Second
	MaxBudget         = 10 * time.Minute
)

// Match is one event an agent found.
type Match struct {
	Time   time.Time       `json:"time"`
	Source string          `json:"source"`
	Event  json.RawMessage `json:"event"`
}

// Agent is one agent's part of a hunt.
type Agent struct {
	AgentID     string    `json:"agent_id"`
	Hostname    string    `json:"hostname,omitempty"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
	Scanned     uint64    `json:"scanned"`
	Matches     []Match   `json:"matches"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	AnsweredAt  time.Time `json:"answered_at,omitzero"`
}

// Counts sum up a hunt's agents.
type Counts struct {
	Agents   int `json:"agents"`
	Pending  int `json:"pending"`
	Answered int `json:"answered"`
	Partial  int `json:"partial"`
	Failed   int `json:"failed"`
	Expired  int `json:"expired"`
	// Matched counts the agents with at least one match; Matches the
	// matches of all agents.
	Matched int `json:"matched"`
	Matches int `json:"matches"`
}

// Hunt is a hunt as the REST API shows it; Agents is filled by Get.
type Hunt struct {
	ID         string    `json:"id"`
	Query      string    `json:"query"`
	Selector   string    `json:"selector"`
	Since      time.Time `json:"since"`
	MaxMatches int       `json:"max_matches"`
	// Budget is the time each agent may spend, e.g. "30s".
	Budget     string    `json:"budget"`
	IncidentID string    `json:"incident_id,omitempty"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Status     string    `json:"status"`
	Counts     Counts    `json:"counts"`
	Agents     []*Agent  `json:"agents,omitempty"`
}

// Request asks for a hunt.
type Request struct {
	Query    string
	Selector Selector
	// Since is how far back the agents look in their history;
	// DefaultSince when zero.
	Since      time.Duration
	TTL        time.Duration
	MaxMatches int
	Budget     time.Duration
	IncidentID string
	CreatedBy  string
}

// Target is an agent a hunt goes to.
type Target struct {
	ID       string
	Hostname string
}

// Validate checks a request, parsing its query.
func (r *Request) Validate() error {
	if r.Query == "" {
		return store.Invalid("query", "missing")
	}
	if _, err := query.Parse(r.Query); err != nil {
		var qe *query.Error
		if errors.As(err, &qe) {
			return store.Invalid("query", "position %d: %s", qe.Pos, qe.Msg)
		}
		return store.Invalid("query", "%v", err)
	}
	switch {
	case r.Since < 0:
		return store.Invalid("since", "must be positive")
	case r.TTL < 0 || r.TTL > MaxTTL:
		return store.Invalid("ttl", "must be positive and at most %s", MaxTTL)
	case r.MaxMatches < 0 || r.MaxMatches > MaxMatches:
		return store.Invalid("max_matches", "must be between 1 and %d", MaxMatches)
	case r.Budget < 0 || r.Budget > MaxBudget:
		return store.Invalid("budget", "must be positive and at most %s", MaxBudget)
	}
	return nil
}

// Config configures a Store.
type Config struct {
	DB *badger.DB
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnChange, when set, is called with a hunt's id after an agent's
	// answer is stored.
	OnChange func(huntID string)
}

// Store keeps hunts and hands them to the gateway.
type Store struct {
	db       *badger.DB
	now      func() time.Time
	log      *slog.Logger
	onChange func(string)

	waiters wake.Waiters // by agent

	// Answers and deliveries are committed in groups by one writer:
	// each answer rewrites its hunt's counts, so written concurrently
	// they would conflict on that key beyond the store's retries and
	// lose answers.
	writes *groupcommit.Queue[*pendingWrite]
}

// New returns a Store over cfg.DB.
func New(cfg Config, log *slog.Logger) *Store {
	s := &Store{db: cfg.DB, now: cfg.Now, log: log, onChange: cfg.OnChange}
	if s.now == nil {
		s.now = time.Now
	}
	s.writes = groupcommit.New(s.commit, groupcommit.Limits[*pendingWrite]{
		Items: groupAnswers,
		Size:  func(w *pendingWrite) int { return w.size },
		Bytes: groupBytes,
	})
	return s
}

func huntKey(id string) []byte             { return store.Key("hunt", id) }
func agentKey(huntID, agent string) []byte { return store.Key("hunt-agent", huntID, agent) }
func agentsPrefix(huntID string) []byte    { return store.Prefix("hunt-agent", huntID) }
func openPrefix(agent string) []byte       { return store.Prefix("hunt-open", agent) }
func openKey(agent, huntID string) []byte {
	return append(openPrefix(agent), huntID...)
}

// effective returns h with its status as of now.
func (h *Hunt) effective(now time.Time) *Hunt {
	c := &h.Counts
	if !now.Before(h.ExpiresAt) && c.Pending > 0 {
		c.Expired += c.Pending
		c.Pending = 0
	}
	switch {
	case c.Pending > 0:
		h.Status = HuntRunning
	case c.Expired > 0:
		h.Status = HuntExpired
	default:
		h.Status = HuntDone
	}
	for _, a := range h.Agents {
		if a.Status == StatusPending && !now.Before(h.ExpiresAt) {
			a.Status = StatusExpired
		}
	}
	return h
}

// Create stores a hunt for targets and wakes their connections.
func (s *Store) Create(ctx context.Context, req Request, targets []Target) (*Hunt, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, store.Invalid("agents", "%s selects no agent", req.Selector.describe())
	}
	if req.Since == 0 {
		req.Since = DefaultSince
	}
	if req.TTL == 0 {
		req.TTL = DefaultTTL
	}
	if req.MaxMatches == 0 {
		req.MaxMatches = DefaultMaxMatches
	}
	if req.Budget == 0 {
		req.Budget = DefaultBudget
	}
	u, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("minting a hunt id: %w", err)
	}
	now := s.now().UTC()
	h := &Hunt{
		ID: u.String(), Query: req.Query, Selector: req.Selector.String(), Since: now.Add(-req.Since),
		MaxMatches: req.MaxMatches, Budget: req.Budget.String(), IncidentID: req.IncidentID,
		CreatedBy: req.CreatedBy, CreatedAt: now, ExpiresAt: now.Add(req.TTL),
		Counts: Counts{Agents: len(targets), Pending: len(targets)},
	}
	err = store.Update(ctx, s.db, func(txn *badger.Txn) error {
		if err := store.Put(txn, huntKey(h.ID), h); err != nil {
			return err
		}
		for _, t := range targets {
			a := &Agent{AgentID: t.ID, Hostname: t.Hostname, Status: StatusPending, Matches: []Match{}}
			if err := store.Put(txn, agentKey(h.ID, t.ID), a); err != nil {
				return err
			}
			if err := txn.Set(openKey(t.ID, h.ID), []byte(h.ID)); err != nil {
				return fmt.Errorf("indexing hunt for agent %s: %w", t.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storing hunt: %w", err)
	}
	s.log.Info("hunt created", "hunt", h.ID, "agents", len(targets), "by", h.CreatedBy, "query", h.Query)
	for _, t := range targets {
		s.waiters.Wake(t.ID)
	}
	return h.effective(now), nil
}

// Get returns a hunt with every agent's part.
func (s *Store) Get(ctx context.Context, id string) (*Hunt, error) {
	var h Hunt
	err := s.db.View(func(txn *badger.Txn) error {
		if err := store.Get(txn, huntKey(id), &h); err != nil {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: agentsPrefix(id), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var a Agent
			if err := it.Item().Value(func(v []byte) error { return store.Decode(v, &a) }); err != nil {
				return err
			}
			h.Agents = append(h.Agents, &a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hunt %s: %w", id, err)
	}
	sort.Slice(h.Agents, func(i, j int) bool {
		if (len(h.Agents[i].Matches) > 0) != (len(h.Agents[j].Matches) > 0) {
			return len(h.Agents[i].Matches) > 0
		}
		return h.Agents[i].AgentID < h.Agents[j].AgentID
	})
	return h.effective(s.now()), nil
}

// List returns hunts newest first, without their agents' parts.
func (s *Store) List(ctx context.Context, p store.Page) ([]*Hunt, string, error) {
	now := s.now()
	var (
		items []*Hunt
		next  string
	)
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		items, next, err = store.Newest(txn, store.Prefix("hunt"), p, func(_, val []byte) (*Hunt, bool, error) {
			var h Hunt
			if err := store.Decode(val, &h); err != nil {
				return nil, false, err
			}
			return h.effective(now), true, nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing hunts: %w", err)
	}
	return items, next, nil
}

// Pending implements the gateway's Hunts: the hunts the agent has not
// answered, oldest first. Hunts found expired are closed for the agent.
func (s *Store) Pending(ctx context.Context, agentID string) ([]*protocol.HuntRequest, error) {
	now := s.now()
	var out []*protocol.HuntRequest
	err := store.Update(ctx, s.db, func(txn *badger.Txn) error {
		out = out[:0]
		var expired []string
		it := txn.NewIterator(badger.IteratorOptions{Prefix: openPrefix(agentID), PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			id, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return err
			}
			var h Hunt
			if err := store.Get(txn, huntKey(string(id)), &h); err != nil {
				it.Close()
				return fmt.Errorf("hunt %s: %w", id, err)
			}
			if !now.Before(h.ExpiresAt) {
				expired = append(expired, h.ID)
				continue
			}
			budget, _ := time.ParseDuration(h.Budget)
			out = append(out, &protocol.HuntRequest{
				Id: h.ID, Query: h.Query, SinceUnixNano: h.Since.UnixNano(), ExpiresUnixNano: h.ExpiresAt.UnixNano(),
				MaxMatches: uint32(h.MaxMatches), BudgetMillis: uint32(budget.Milliseconds()),
			})
		}
		it.Close()
		for _, id := range expired {
			if err := txn.Delete(openKey(agentID, id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending hunts of agent %s: %w", agentID, err)
	}
	return out, nil
}

// Delivered implements the gateway's Hunts: it records when the hunt was
// first written to the agent's control stream. It goes through the same
// writer as the answers: both rewrite the agent's part of the hunt, so
// written apart they conflicted, and a group of answers was retried until
// a fleet's deliveries were all recorded.
func (s *Store) Delivered(ctx context.Context, agentID, huntID string) error {
	w := s.enqueue(&pendingWrite{agentID: agentID, huntID: huntID, now: s.now().UTC()})
	if w.notFound {
		return fmt.Errorf("hunt %s of agent %s: %w", huntID, agentID, store.ErrNotFound)
	}
	if w.err != nil {
		return fmt.Errorf("recording the delivery of hunt %s to agent %s: %w", huntID, agentID, w.err)
	}
	return nil
}

// enqueue queues w for the writer and returns w once it is committed.
// The commit is bounded, and the caller never leaves before it: it could
// otherwise take a stored answer for a lost one.
func (s *Store) enqueue(w *pendingWrite) *pendingWrite {
	s.writes.Do(w)
	return w
}

// Answered implements the gateway's Hunts: it stores the agent's answer
// and returns once it is committed. An answer to an unknown hunt, or a
// repeated one, is logged and dropped; an answer that arrives after the
// hunt expired is still recorded.
//
// Answers (and deliveries) are committed in groups: each waits in a queue
// that one writer drains, committing everything waiting in one synced
// transaction, so a fleet answering at once costs a few syncs instead of
// one per agent.
func (s *Store) Answered(ctx context.Context, agentID string, res *protocol.HuntResult) error {
	huntID := res.GetId()
	a := &pendingWrite{agentID: agentID, huntID: huntID, res: res, now: s.now().UTC()}
	for _, m := range res.GetMatches() {
		a.size += len(m.GetEventJson())
	}
	s.enqueue(a)
	if a.notFound {
		s.log.Warn("answer to an unknown hunt", "agent", agentID, "hunt", huntID)
		return nil
	}
	if a.err != nil {
		return fmt.Errorf("recording the answer of agent %s to hunt %s: %w", agentID, huntID, a.err)
	}
	if a.stored {
		s.log.Info("hunt answered", "hunt", huntID, "agent", agentID, "status", res.GetStatus(), "matches", len(res.GetMatches()))
		if s.onChange != nil {
			s.onChange(huntID)
		}
	}
	return nil
}

// Bounds of one group of answers committed together.
const (
	groupAnswers = 512
	groupBytes   = 2 << 20
)

// pendingWrite is an answer, or a delivery when res is nil, waiting for
// its commit; the writer fills the outcome.
type pendingWrite struct {
	agentID string
	huntID  string
	res     *protocol.HuntResult
	now     time.Time
	size    int

	stored, notFound bool
	err              error
}

// commit stores a group of writes in one transaction and records the
// outcome in each; a group too big for one transaction is split in halves.
func (s *Store) commit(group []*pendingWrite) {
	err := store.Update(context.Background(), s.db, func(txn *badger.Txn) error { return s.apply(txn, group) })
	if errors.Is(err, badger.ErrTxnTooBig) && len(group) > 1 {
		s.commit(group[:len(group)/2])
		s.commit(group[len(group)/2:])
		return
	}
	for _, a := range group {
		if err != nil {
			a.stored, a.notFound, a.err = false, false, err
		}
	}
}

// apply records a group of answers and deliveries in txn, reading and
// writing each answered hunt's counts once. It may run again when the
// transaction conflicts.
func (s *Store) apply(txn *badger.Txn, group []*pendingWrite) error {
	hunts := map[string]*Hunt{}
	for _, a := range group {
		a.stored, a.notFound = false, false
		huntID := a.huntID
		if a.res == nil {
			if err := s.applyDelivery(txn, a); err != nil {
				return err
			}
			continue
		}
		h := hunts[huntID]
		if h == nil {
			h = &Hunt{}
			if err := store.Get(txn, huntKey(huntID), h); errors.Is(err, store.ErrNotFound) {
				a.notFound = true
				continue
			} else if err != nil {
				return err
			}
			hunts[huntID] = h
		}
		ok, err := s.applyOne(txn, h, a)
		if err != nil {
			return err
		}
		a.stored = ok
	}
	for id, h := range hunts {
		if err := store.Put(txn, huntKey(id), h); err != nil {
			return err
		}
	}
	return nil
}

// applyDelivery records the first delivery of a hunt to an agent.
func (s *Store) applyDelivery(txn *badger.Txn, d *pendingWrite) error {
	var a Agent
	if err := store.Get(txn, agentKey(d.huntID, d.agentID), &a); errors.Is(err, store.ErrNotFound) {
		d.notFound = true
		return nil
	} else if err != nil {
		return err
	}
	if !a.DeliveredAt.IsZero() {
		return nil
	}
	a.DeliveredAt = d.now
	d.stored = true
	return store.Put(txn, agentKey(d.huntID, d.agentID), &a)
}

// applyOne records one answer and counts it in h; it reports whether the
// answer was new.
func (s *Store) applyOne(txn *badger.Txn, h *Hunt, ans *pendingWrite) (bool, error) {
	res, agentID, huntID := ans.res, ans.agentID, h.ID
	var a Agent
	if err := store.Get(txn, agentKey(huntID, agentID), &a); errors.Is(err, store.ErrNotFound) {
		ans.notFound = true
		return false, nil
	} else if err != nil {
		return false, err
	}
	if a.Status != StatusPending {
		return false, nil
	}
	a.Status, a.Reason, a.Scanned = res.GetStatus(), res.GetReason(), res.GetScanned()
	switch a.Status {
	case StatusAnswered, StatusPartial, StatusFailed:
	default:
		a.Status, a.Reason = StatusFailed, fmt.Sprintf("the agent answered with status %q", res.GetStatus())
	}
	a.AnsweredAt = ans.now
	if t := res.GetFinishedUnixNano(); t > 0 {
		a.AnsweredAt = time.Unix(0, t).UTC()
	}
	a.Matches = a.Matches[:0]
	for _, m := range res.GetMatches() {
		if len(a.Matches) >= h.MaxMatches {
			break
		}
		ev := json.RawMessage(m.GetEventJson())
		if !json.Valid(ev) {
			continue
		}
		a.Matches = append(a.Matches, Match{Time: time.Unix(0, m.GetTimeUnixNano()).UTC(), Source: m.GetSource(), Event: ev})
	}
	if err := store.Put(txn, agentKey(huntID, agentID), &a); err != nil {
		return false, err
	}
	if err := txn.Delete(openKey(agentID, huntID)); err != nil {
		return false, err
	}
	c := &h.Counts
	c.Pending--
	switch a.Status {
	case StatusAnswered:
		c.Answered++
	case StatusPartial:
		c.Partial++
	default:
		c.Failed++
	}
	if len(a.Matches) > 0 {
		c.Matched++
		c.Matches += len(a.Matches)
	}
	return true, nil
}

// Notify implements the gateway's Hunts.
func (s *Store) Notify(agentID string, f func()) (stop func()) { return s.waiters.Notify(agentID, f) }
