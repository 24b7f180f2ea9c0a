package registry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/groupcommit"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

// HeartbeatPeriod is how often agents send a heartbeat by default
// (Config.Heartbeat). An agent is online while connected and its last
// heartbeat is younger than three periods.
const HeartbeatPeriod = 15 * time.Second

// persistEvery is the longest a heartbeat's counters stay only in memory.
const persistEvery = 5 * time.Minute

// Errors of Authorize, Connected and Heartbeat. ErrUnknownAgent matches
// store.ErrNotFound and ErrRevoked store.ErrConflict.
var (
	ErrUnknownAgent error = &kindError{"unknown agent", store.ErrNotFound}
	ErrRevoked      error = &kindError{"agent revoked", store.ErrConflict}
)

type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// Agent is an enrolled agent, as the REST API shows it.
type Agent struct {
	ID           string            `json:"id"`
	Hostname     string            `json:"hostname"`
	OS           string            `json:"os"`
	Arch         string            `json:"arch"`
	Platform     string            `json:"platform"`
	Kernel       string            `json:"kernel"`
	IPs          []string          `json:"ips"`
	Version      string            `json:"version"`
	Tags         map[string]string `json:"tags"`
	Online       bool              `json:"online"`
	Isolated     bool              `json:"isolated"`
	Revoked      bool              `json:"revoked"`
	SensorModes  []string          `json:"sensor_modes"`
	SpoolPending uint64            `json:"spool_pending"`
	SpoolDropped uint64            `json:"spool_dropped"`
	// RulesVersion is the version of the pushed rule set the agent runs,
	// empty when it runs only its built-in pack; RulesError is why the
	// agent refused the last set it was sent, empty once it applied one.
	RulesVersion string `json:"rules_version"`
	RulesError   string `json:"rules_error,omitempty"`
	// IocsVersion is the version of the indicator set the agent
	// matches, empty for none; IocsError is why it refused the last set
	// it was sent.
	IocsVersion string    `json:"iocs_version"`
	IocsError   string    `json:"iocs_error,omitempty"`
	EnrolledAt  time.Time `json:"enrolled_at"`
	LastSeen    time.Time `json:"last_seen,omitzero"`
}

// agentRecord is an Agent as stored.
type agentRecord struct {
	Agent
	BootID string `json:"boot_id,omitempty"`
	// CertSHA256 is the hex SHA-256 of the certificate issued at
	// enrollment.
	CertSHA256 string    `json:"cert_sha256,omitempty"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// live is what the registry knows of a connected agent beyond what is
// stored.
type live struct {
	connected bool
	lastBeat  time.Time
	pending   uint64
	dropped   uint64
	isolated  bool
	revoked   bool
	rules     string
	iocs      string // version of the indicator set matched
	persisted time.Time
}

func (l *live) online(now time.Time, beat time.Duration) bool {
	return l.connected && now.Sub(l.lastBeat) < 3*beat
}

// Config configures a Registry.
type Config struct {
	DB *badger.DB
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Heartbeat is the agents' heartbeat interval; HeartbeatPeriod when 0.
	Heartbeat time.Duration
}

// Registry is the agent registry and enrollment-token store.
type Registry struct {
	db   *badger.DB
	now  func() time.Time
	log  *slog.Logger
	beat time.Duration

	mu   sync.Mutex
	live map[string]*live

	// writes commits the changes of connected agents (hellos,
	// heartbeats, results, disconnections) in groups: a fleet
	// reconnecting at once costs a few synced commits, not one each.
	writes *groupcommit.Queue[*pendingWrite]

	// redeemMu serializes enrollments: many agents enrolling at once
	// with one token would otherwise conflict on its use count until
	// the retries ran out, and be refused.
	redeemMu sync.Mutex
}

// New returns a Registry over cfg.DB.
func New(cfg Config, log *slog.Logger) *Registry {
	r := &Registry{db: cfg.DB, now: cfg.Now, log: log, beat: cfg.Heartbeat, live: make(map[string]*live)}
	if r.now == nil {
		r.now = time.Now
	}
	if r.beat <= 0 {
		r.beat = HeartbeatPeriod
	}
	r.writes = groupcommit.New(r.commit, groupcommit.Limits[*pendingWrite]{Items: groupWrites})
	return r
}

func agentKey(id string) []byte { return store.Key("agent", id) }

func (r *Registry) load(txn *badger.Txn, id string) (*agentRecord, error) {
	var a agentRecord
	err := store.Get(txn, agentKey(id), &a)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("agent %s: %w", id, ErrUnknownAgent)
	}
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", id, err)
	}
	return &a, nil
}

// Authorize refuses unknown and revoked agents; the gateway calls it
// during the TLS handshake.
func (r *Registry) Authorize(agentID string, cert *x509.Certificate) error {
	var a *agentRecord
	err := r.db.View(func(txn *badger.Txn) error {
		var err error
		a, err = r.load(txn, agentID)
		return err
	})
	if err != nil {
		return fmt.Errorf("authorizing: %w", err)
	}
	if a.Revoked {
		return fmt.Errorf("authorizing agent %s: %w", agentID, ErrRevoked)
	}
	return nil
}

// Connected records a hello: the host facts it carries and a new
// connection. It returns once the hello is committed, together with the
// others waiting. A hello that changes nothing stored but the time the
// agent was last seen is not written: that time is kept live and
// written with the agent's next change, periodic heartbeat or
// disconnection.
//
// ctx is not used, by design: the hello is committed in a group with
// other agents' writes, under context.Background, and Connected waits for
// that commit even when ctx is done. A group shared by many connections
// cannot be cancelled by one of them, and a caller that left before the
// commit could not tell a stored hello from a lost one.
func (r *Registry) Connected(ctx context.Context, agentID string, hello *protocol.Hello, remote string) error {
	now := r.now().UTC()
	err := r.write(agentID, func(a *agentRecord) (bool, error) {
		if a.Revoked {
			return false, fmt.Errorf("agent %s: %w", agentID, ErrRevoked)
		}
		before := *a
		if h := hello.GetHost(); h != nil {
			setFacts(a, h)
		}
		a.SensorModes = nonNil(hello.GetSensorModes())
		a.Isolated = hello.GetIsolated()
		a.RulesVersion = hello.GetRulesVersion()
		a.IocsVersion = hello.GetIocsVersion()
		a.LastSeen = now
		if before.LastSeen.IsZero() {
			return true, nil // the first hello: Seen lists the agent from now on
		}
		before.LastSeen = now
		return !reflect.DeepEqual(&before, a), nil
	})
	if err != nil {
		return fmt.Errorf("recording the hello of agent %s: %w", agentID, err)
	}
	r.mu.Lock()
	l := r.liveOf(agentID)
	l.connected = true
	l.lastBeat, l.persisted, l.isolated, l.rules = now, now, hello.GetIsolated(), hello.GetRulesVersion()
	l.iocs = hello.GetIocsVersion()
	r.mu.Unlock()
	r.log.Info("agent connected", "agent", agentID, "hostname", hello.GetHost().GetHostname(), "remote", remote)
	return nil
}

func setFacts(a *agentRecord, h *protocol.HostFacts) {
	a.Hostname = h.GetHostname()
	a.OS = h.GetOs()
	a.Arch = h.GetArch()
	a.Platform = h.GetPlatform()
	a.Kernel = h.GetKernel()
	a.IPs = nonNil(h.GetIps())
	a.Version = h.GetAgentVersion()
	a.BootID = h.GetBootId()
}

// liveOf returns the live state of an agent, creating it. r.mu is held.
func (r *Registry) liveOf(agentID string) *live {
	l := r.live[agentID]
	if l == nil {
		l = &live{}
		r.live[agentID] = l
	}
	return l
}

// Heartbeat records a heartbeat, which also shows the agent connected. It
// returns ErrRevoked once the agent is revoked, so that the caller ends
// the connection.
func (r *Registry) Heartbeat(ctx context.Context, agentID string, hb *protocol.Heartbeat) error {
	now := r.now().UTC()
	r.mu.Lock()
	l := r.liveOf(agentID)
	l.connected = true
	if l.revoked {
		r.mu.Unlock()
		return fmt.Errorf("heartbeat of agent %s: %w", agentID, ErrRevoked)
	}
	changed := l.isolated != hb.GetIsolated() || l.rules != hb.GetRulesVersion() || l.iocs != hb.GetIocsVersion()
	l.lastBeat, l.pending, l.dropped, l.isolated, l.rules = now, hb.GetSpoolPending(), hb.GetSpoolDropped(), hb.GetIsolated(), hb.GetRulesVersion()
	l.iocs = hb.GetIocsVersion()
	persist := changed || now.Sub(l.persisted) >= persistEvery
	if persist {
		l.persisted = now
	}
	r.mu.Unlock()
	if !persist {
		return nil
	}
	return r.persist(ctx, agentID, func(a *agentRecord) {
		a.LastSeen, a.SpoolPending, a.SpoolDropped, a.Isolated = now, hb.GetSpoolPending(), hb.GetSpoolDropped(), hb.GetIsolated()
		if a.RulesVersion != hb.GetRulesVersion() {
			a.RulesVersion, a.RulesError = hb.GetRulesVersion(), ""
		}
		if a.IocsVersion != hb.GetIocsVersion() {
			a.IocsVersion, a.IocsError = hb.GetIocsVersion(), ""
		}
	})
}

// IocsResult records an agent's answer to a pushed indicator set: the
// version it now matches, or why it refused the set.
func (r *Registry) IocsResult(ctx context.Context, agentID string, res *protocol.IndicatorSetResult) error {
	if res.GetOk() {
		r.mu.Lock()
		r.liveOf(agentID).iocs = res.GetVersion()
		r.mu.Unlock()
	}
	return r.persist(ctx, agentID, func(a *agentRecord) {
		if res.GetOk() {
			a.IocsVersion, a.IocsError = res.GetVersion(), ""
			return
		}
		a.IocsError = fmt.Sprintf("refused indicator set %s: %s", res.GetVersion(), res.GetError())
	})
}

// RulesResult records an agent's answer to a pushed rule set: the
// version it now runs, or why it refused the set.
func (r *Registry) RulesResult(ctx context.Context, agentID string, res *protocol.RuleSetResult) error {
	if res.GetOk() {
		r.mu.Lock()
		r.liveOf(agentID).rules = res.GetVersion()
		r.mu.Unlock()
	}
	return r.persist(ctx, agentID, func(a *agentRecord) {
		if res.GetOk() {
			a.RulesVersion, a.RulesError = res.GetVersion(), ""
			return
		}
		a.RulesError = fmt.Sprintf("refused rule set %s: %s", res.GetVersion(), res.GetError())
	})
}

// Disconnected records the end of the agent's connection. A reconnect
// may be recorded (Connected) before the end of the connection it
// replaces; the caller reports only the end of the agent's current
// connection, and a later heartbeat shows the agent connected again in
// any case.
func (r *Registry) Disconnected(agentID string) {
	r.mu.Lock()
	l := r.live[agentID]
	if l == nil {
		r.mu.Unlock()
		return
	}
	l.connected = false
	snap := *l
	r.mu.Unlock()
	err := r.persist(context.Background(), agentID, func(a *agentRecord) {
		a.LastSeen, a.SpoolPending, a.SpoolDropped, a.Isolated = snap.lastBeat, snap.pending, snap.dropped, snap.isolated
		a.RulesVersion, a.IocsVersion = snap.rules, snap.iocs
	})
	if err != nil {
		r.log.Warn("recording a disconnection", "agent", agentID, "err", err)
	}
	r.log.Info("agent disconnected", "agent", agentID)
}

func (r *Registry) persist(ctx context.Context, agentID string, set func(*agentRecord)) error {
	err := r.write(agentID, func(a *agentRecord) (bool, error) {
		set(a)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("storing the state of agent %s: %w", agentID, err)
	}
	return nil
}

// groupWrites bounds one group of agent writes committed together (an
// agent record is well under 1 KiB).
const groupWrites = 1024

// pendingWrite is a change to a stored agent waiting for its commit.
// set changes the record and reports whether it must be stored; an error
// refuses this change alone, and set must leave the record untouched
// then.
type pendingWrite struct {
	agentID string
	set     func(*agentRecord) (bool, error)
	err     error
}

// write changes a stored agent through the group writer and returns once
// the change is committed.
func (r *Registry) write(agentID string, set func(*agentRecord) (bool, error)) error {
	w := &pendingWrite{agentID: agentID, set: set}
	r.writes.Do(w)
	return w.err
}

// commit stores a group of agent changes in one transaction, reading and
// writing each agent once, and records each change's outcome; a group too
// big for one transaction is split in halves.
func (r *Registry) commit(group []*pendingWrite) {
	err := store.Update(context.Background(), r.db, func(txn *badger.Txn) error { return r.apply(txn, group) })
	if errors.Is(err, badger.ErrTxnTooBig) && len(group) > 1 {
		r.commit(group[:len(group)/2])
		r.commit(group[len(group)/2:])
		return
	}
	if err != nil {
		for _, w := range group {
			w.err = err
		}
	}
}

// apply applies a group of changes in txn. It may run again when the
// transaction conflicts.
func (r *Registry) apply(txn *badger.Txn, group []*pendingWrite) error {
	records := map[string]*agentRecord{}
	dirty := map[string]bool{}
	for _, w := range group {
		w.err = nil
		a := records[w.agentID]
		if a == nil {
			var err error
			a, err = r.load(txn, w.agentID)
			if errors.Is(err, ErrUnknownAgent) {
				w.err = err
				continue
			}
			if err != nil {
				return err
			}
			records[w.agentID] = a
		}
		changed, err := w.set(a)
		if err != nil {
			w.err = err
			continue
		}
		if changed {
			dirty[w.agentID] = true
		}
	}
	for id := range dirty {
		if err := store.Put(txn, agentKey(id), records[id]); err != nil {
			return err
		}
	}
	return nil
}

// view returns a stored agent with what is known live.
func (r *Registry) view(a *agentRecord, now time.Time) *Agent {
	v := a.Agent
	v.Tags = nonNilMap(v.Tags)
	v.IPs = nonNil(v.IPs)
	v.SensorModes = nonNil(v.SensorModes)
	r.mu.Lock()
	if l := r.live[a.ID]; l != nil {
		v.Online = l.online(now, r.beat) && !v.Revoked
		v.SpoolPending, v.SpoolDropped, v.Isolated = l.pending, l.dropped, l.isolated
		if l.connected {
			v.RulesVersion, v.IocsVersion = l.rules, l.iocs
		}
		if l.lastBeat.After(v.LastSeen) {
			v.LastSeen = l.lastBeat
		}
	}
	r.mu.Unlock()
	return &v
}

// Get returns one agent.
func (r *Registry) Get(ctx context.Context, id string) (*Agent, error) {
	var a *agentRecord
	err := r.db.View(func(txn *badger.Txn) error {
		var err error
		a, err = r.load(txn, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return r.view(a, r.now()), nil
}

// List returns agents newest enrolled first, and the cursor of the next
// page.
func (r *Registry) List(ctx context.Context, p store.Page) ([]*Agent, string, error) {
	now := r.now()
	var (
		items []*Agent
		next  string
	)
	err := r.db.View(func(txn *badger.Txn) error {
		var err error
		items, next, err = store.Newest(txn, store.Prefix("agent"), p, func(_, val []byte) (*Agent, bool, error) {
			var a agentRecord
			if err := store.Decode(val, &a); err != nil {
				return nil, false, err
			}
			return r.view(&a, now), true, nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing agents: %w", err)
	}
	return items, next, nil
}

// Lookup returns an agent's hostname and tags.
func (r *Registry) Lookup(agentID string) (hostname string, tags map[string]string, ok bool) {
	var a *agentRecord
	err := r.db.View(func(txn *badger.Txn) error {
		var err error
		a, err = r.load(txn, agentID)
		return err
	})
	if err != nil {
		if !errors.Is(err, ErrUnknownAgent) {
			r.log.Warn("looking up an agent", "agent", agentID, "err", err)
		}
		return "", nil, false
	}
	return a.Hostname, a.Tags, true
}

// Revoke marks an agent revoked: it is refused at its next handshake, and
// its current connection ends at its next heartbeat.
func (r *Registry) Revoke(ctx context.Context, id string) (*Agent, error) {
	now := r.now().UTC()
	var a *agentRecord
	err := store.Update(ctx, r.db, func(txn *badger.Txn) error {
		var err error
		a, err = r.load(txn, id)
		if err != nil || a.Revoked {
			return err
		}
		a.Revoked, a.RevokedAt = true, now
		return store.Put(txn, agentKey(id), a)
	})
	if err != nil {
		return nil, fmt.Errorf("revoking: %w", err)
	}
	r.mu.Lock()
	if l := r.live[id]; l != nil {
		l.revoked = true
	}
	r.mu.Unlock()
	r.log.Info("agent revoked", "agent", id)
	return r.view(a, now), nil
}

// Online returns how many agents are online.
func (r *Registry) Online() int {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.live {
		if l.online(now, r.beat) && !l.revoked {
			n++
		}
	}
	return n
}

var tagKey = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// CheckTags validates tags: keys of lowercase letters, digits and _.-
// (up to 64), values up to 256 bytes.
func CheckTags(tags map[string]string) error {
	for k, v := range tags {
		if !tagKey.MatchString(k) {
			return store.Invalid("tags", "tag key %q: want up to 64 lowercase letters, digits, '_', '.', '-'", k)
		}
		if len(v) > 256 {
			return store.Invalid("tags", "tag %q: value longer than 256 bytes", k)
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string(nil), s...)
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Seen returns the ids of the unrevoked agents that connected at least
// once, for watching their health.
func (r *Registry) Seen(ctx context.Context) ([]string, error) {
	var ids []string
	err := r.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = store.Prefix("agent")
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var a agentRecord
			if err := it.Item().Value(func(val []byte) error { return store.Decode(val, &a) }); err != nil {
				return err
			}
			if !a.Revoked && !a.LastSeen.IsZero() {
				ids = append(ids, a.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing agents seen: %w", err)
	}
	return ids, nil
}
