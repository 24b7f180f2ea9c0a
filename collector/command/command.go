package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/collector/wake"
	"github.com/cordon-edr/cordon/protocol"
)

// Actions an agent can carry out.
const (
	ActionIsolate    = "isolate"
	ActionRelease    = "release"
	ActionKill       = "kill"
	ActionSuspend    = "suspend"
	ActionResume     = "resume"
	ActionQuarantine = "quarantine"
	ActionRestore    = "restore"
	ActionCollect    = "collect"
	ActionDrill      = "drill"
)

// Actions lists every action.
var Actions = []string{
	ActionIsolate, ActionRelease, ActionKill, ActionSuspend, ActionResume,
	ActionQuarantine, ActionRestore, ActionCollect, ActionDrill,
}

// Status of a command.
type Status string

// Statuses.
const (
	StatusPending   Status = "pending"
	StatusDelivered Status = "delivered"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusExpired   Status = "expired"
)

// Known reports whether s is a status.
func (s Status) Known() bool {
	switch s {
	case StatusPending, StatusDelivered, StatusSucceeded, StatusFailed, StatusExpired:
		return true
	}
	return false
}

func (s Status) open() bool { return s == StatusPending || s == StatusDelivered }

// Command is a queued command, as the REST API shows it.
type Command struct {
	ID          string            `json:"id"`
	AgentID     string            `json:"agent_id"`
	Action      string            `json:"action"`
	Args        map[string]string `json:"args"`
	Reason      string            `json:"reason"`
	IncidentID  string            `json:"incident_id,omitempty"`
	RequestedBy string            `json:"requested_by"`
	Status      Status            `json:"status"`
	Result      string            `json:"result"`
	CreatedAt   time.Time         `json:"created_at"`
	DeliveredAt time.Time         `json:"delivered_at,omitzero"`
	FinishedAt  time.Time         `json:"finished_at,omitzero"`
	ExpiresAt   time.Time         `json:"expires_at"`
}

// effective returns c as it is at now: expired if its time ran out while
// it was open.
func (c *Command) effective(now time.Time) *Command {
	if c.Status.open() && !now.Before(c.ExpiresAt) {
		c.Status = StatusExpired
		c.FinishedAt = c.ExpiresAt
	}
	return c
}

// Request asks for a command.
type Request struct {
	AgentID     string
	Action      string
	Args        map[string]string
	Reason      string
	IncidentID  string
	RequestedBy string
	// TTL is how long the command may wait for its agent; DefaultTTL when
	// zero.
	TTL time.Duration
}

// Limits of a Request.
const (
	DefaultTTL = time.Hour
	MaxTTL     = 7 * 24 * time.Hour
)

// Validate checks a request without looking at the agent it names.
func (r *Request) Validate() error {
	if r.AgentID == "" {
		return store.Invalid("agent_id", "missing")
	}
	switch r.Action {
	case ActionKill, ActionSuspend, ActionResume:
		pid, err := strconv.Atoi(r.Args["pid"])
		if err != nil || pid <= 0 {
			return store.Invalid("args.pid", "%s needs a positive process id", r.Action)
		}
	case ActionQuarantine:
		if r.Args["path"] == "" {
			return store.Invalid("args.path", "quarantine needs the path of the file")
		}
	case ActionRestore:
		if r.Args["path"] == "" && r.Args["id"] == "" {
			return store.Invalid("args.path", "restore needs the original path or the quarantine id (args.id)")
		}
	case ActionIsolate, ActionRelease, ActionCollect, ActionDrill:
	case "":
		return store.Invalid("action", "missing")
	default:
		return store.Invalid("action", "unknown action %q", r.Action)
	}
	if r.TTL < 0 || r.TTL > MaxTTL {
		return store.Invalid("ttl", "must be positive and at most %s", MaxTTL)
	}
	return nil
}

// Config configures a Queue.
type Config struct {
	DB *badger.DB
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// OnFinish, when set, is called with each command once its result is
	// stored (e.g. to put the outcome on its incident's timeline).
	OnFinish func(ctx context.Context, c *Command)
	// Hook is told of every command queued or finished, inside the
	// transaction storing it; optional.
	Hook Hook
}

// Hook is told of a command when it is queued (status pending) and when
// it finishes (succeeded, failed, or found expired), inside the badger
// transaction that stores it, so what it writes commits with it. It may
// be called again for the same change when the transaction is retried.
type Hook interface {
	CommandChanged(txn *badger.Txn, c *Command) error
}

// Queue is the command queue.
type Queue struct {
	db       *badger.DB
	now      func() time.Time
	log      *slog.Logger
	onFinish func(ctx context.Context, c *Command)
	hook     Hook

	waiters wake.Waiters // by agent
	lat     latencies
}

// New returns a Queue over cfg.DB.
func New(cfg Config, log *slog.Logger) *Queue {
	q := &Queue{db: cfg.DB, now: cfg.Now, log: log, onFinish: cfg.OnFinish, hook: cfg.Hook}
	if q.now == nil {
		q.now = time.Now
	}
	return q
}

func commandKey(id string) []byte { return store.Key("command", id) }
func agentIndex(agentID string) []byte {
	return store.Prefix("cmd-agent", agentID)
}
func openIndex(agentID string) []byte {
	return store.Prefix("cmd-open", agentID)
}

// Create queues a command. The caller checks that the agent exists and
// is not revoked.
func (q *Queue) Create(ctx context.Context, req Request) (*Command, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if req.TTL == 0 {
		req.TTL = DefaultTTL
	}
	u, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("minting a command id: %w", err)
	}
	now := q.now().UTC()
	args := maps.Clone(req.Args)
	if args == nil {
		args = map[string]string{}
	}
	c := &Command{
		ID: u.String(), AgentID: req.AgentID, Action: req.Action, Args: args,
		Reason: req.Reason, IncidentID: req.IncidentID, RequestedBy: req.RequestedBy,
		Status: StatusPending, CreatedAt: now, ExpiresAt: now.Add(req.TTL),
	}
	err = store.Update(ctx, q.db, func(txn *badger.Txn) error {
		if err := store.Put(txn, commandKey(c.ID), c); err != nil {
			return err
		}
		if err := txn.Set(append(agentIndex(c.AgentID), c.ID...), []byte(c.ID)); err != nil {
			return err
		}
		if err := txn.Set(append(openIndex(c.AgentID), c.ID...), []byte(c.ID)); err != nil {
			return err
		}
		if q.hook != nil {
			return q.hook.CommandChanged(txn, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queueing %s for agent %s: %w", c.Action, c.AgentID, err)
	}
	q.log.Info("command queued", "command", c.ID, "agent", c.AgentID, "action", c.Action, "by", c.RequestedBy)
	q.waiters.Wake(c.AgentID)
	return c, nil
}

// Get returns one command.
func (q *Queue) Get(ctx context.Context, id string) (*Command, error) {
	var c Command
	err := q.db.View(func(txn *badger.Txn) error { return store.Get(txn, commandKey(id), &c) })
	if err != nil {
		return nil, fmt.Errorf("command %s: %w", id, err)
	}
	return c.effective(q.now()), nil
}

// Query selects commands; empty fields match everything.
type Query struct {
	Agent  string
	Status Status
	store.Page
}

// List returns commands newest first, and the cursor of the next page.
func (q *Queue) List(ctx context.Context, qu Query) ([]*Command, string, error) {
	if qu.Status != "" && !qu.Status.Known() {
		return nil, "", store.Invalid("status", "unknown status %q", qu.Status)
	}
	now := q.now()
	prefix := store.Prefix("command")
	if qu.Agent != "" {
		prefix = agentIndex(qu.Agent)
	}
	var (
		items []*Command
		next  string
	)
	err := q.db.View(func(txn *badger.Txn) error {
		var err error
		items, next, err = store.Newest(txn, prefix, qu.Page, func(_, val []byte) (*Command, bool, error) {
			var c Command
			if qu.Agent != "" {
				if err := store.Get(txn, commandKey(string(val)), &c); err != nil {
					return nil, false, fmt.Errorf("command %s: %w", val, err)
				}
			} else if err := store.Decode(val, &c); err != nil {
				return nil, false, err
			}
			c.effective(now)
			return &c, qu.Status == "" || c.Status == qu.Status, nil
		})
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing commands: %w", err)
	}
	return items, next, nil
}

// Pending implements the gateway's Commands: the agent's open commands,
// oldest first. Commands found expired are stored so.
func (q *Queue) Pending(ctx context.Context, agentID string) ([]*protocol.Command, error) {
	now := q.now()
	var out []*protocol.Command
	err := store.Update(ctx, q.db, func(txn *badger.Txn) error {
		out = out[:0]
		var expired []*Command
		opts := badger.DefaultIteratorOptions
		opts.Prefix = openIndex(agentID)
		it := txn.NewIterator(opts)
		for it.Rewind(); it.Valid(); it.Next() {
			id, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return err
			}
			var c Command
			if err := store.Get(txn, commandKey(string(id)), &c); err != nil {
				it.Close()
				return fmt.Errorf("command %s: %w", id, err)
			}
			if c.effective(now).Status == StatusExpired {
				expired = append(expired, &c)
				continue
			}
			out = append(out, &protocol.Command{
				Id: c.ID, Action: c.Action, Args: c.Args, IncidentId: c.IncidentID,
				Reason: c.Reason, RequestedBy: c.RequestedBy, ExpiresUnixNano: c.ExpiresAt.UnixNano(),
			})
		}
		it.Close()
		for _, c := range expired {
			if err := q.finish(txn, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending commands of agent %s: %w", agentID, err)
	}
	return out, nil
}

// finish stores a command that left the open statuses.
func (q *Queue) finish(txn *badger.Txn, c *Command) error {
	if err := store.Put(txn, commandKey(c.ID), c); err != nil {
		return err
	}
	if err := txn.Delete(append(openIndex(c.AgentID), c.ID...)); err != nil {
		return fmt.Errorf("unindexing command %s: %w", c.ID, err)
	}
	if q.hook != nil {
		return q.hook.CommandChanged(txn, c)
	}
	return nil
}

// Delivered implements the gateway's Commands. Delivering again keeps the
// time of the first delivery; a finished command stays as it is.
func (q *Queue) Delivered(ctx context.Context, commandID string) error {
	now := q.now().UTC()
	err := store.Update(ctx, q.db, func(txn *badger.Txn) error {
		var c Command
		if err := store.Get(txn, commandKey(commandID), &c); err != nil {
			return err
		}
		if c.Status != StatusPending {
			return nil
		}
		c.Status, c.DeliveredAt = StatusDelivered, now
		return store.Put(txn, commandKey(c.ID), &c)
	})
	if err != nil {
		return fmt.Errorf("marking command %s delivered: %w", commandID, err)
	}
	return nil
}

// Finished implements the gateway's Commands. A result for a command of
// another agent is an error; a result for an unknown command (e.g. from
// before the collector's data was reset) is logged and dropped; a repeated
// result is ignored. A result that arrives after the command expired is
// still recorded: the agent did run it.
func (q *Queue) Finished(ctx context.Context, agentID string, res *protocol.CommandResult) error {
	now := q.now().UTC()
	var done *Command
	err := store.Update(ctx, q.db, func(txn *badger.Txn) error {
		done = nil
		var c Command
		if err := store.Get(txn, commandKey(res.GetId()), &c); err != nil {
			return err
		}
		if c.AgentID != agentID {
			return fmt.Errorf("command belongs to agent %s", c.AgentID)
		}
		if c.Status == StatusSucceeded || c.Status == StatusFailed {
			return nil
		}
		done = &c
		c.Status, c.Result, c.FinishedAt = StatusFailed, res.GetResult(), now
		if res.GetOk() {
			c.Status = StatusSucceeded
		}
		if t := res.GetFinishedUnixNano(); t > 0 {
			c.FinishedAt = time.Unix(0, t).UTC()
		}
		if c.DeliveredAt.IsZero() {
			c.DeliveredAt = c.FinishedAt
		}
		return q.finish(txn, &c)
	})
	if errors.Is(err, store.ErrNotFound) {
		q.log.Warn("result for an unknown command", "agent", agentID, "command", res.GetId())
		return nil
	}
	if err != nil {
		return fmt.Errorf("recording the result of command %s from agent %s: %w", res.GetId(), agentID, err)
	}
	if done != nil {
		q.lat.observe(done.Action, done.FinishedAt.Sub(done.CreatedAt))
	}
	q.log.Info("command finished", "command", res.GetId(), "agent", agentID, "ok", res.GetOk())
	if done != nil && q.onFinish != nil {
		q.onFinish(ctx, done)
	}
	return nil
}

// Notify implements the gateway's Commands.
func (q *Queue) Notify(agentID string, f func()) (stop func()) { return q.waiters.Notify(agentID, f) }
