// Package executor runs the commands an agent receives, each command id
// at most once: the collector delivers at least once, so the executor
// records a command durably before running it and answers a repeated
// delivery with the stored result instead of running it again, even
// across agent restarts.
package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/protocol"
)

// Handler performs one action and returns a short human result.
type Handler func(ctx context.Context, c *protocol.Command) (string, error)

const keyPrefix = "cmd/"

// journal is what the executor keeps per command id.
type journal struct {
	Action   string    `json:"action"`
	Started  time.Time `json:"started"`
	Done     bool      `json:"done"`
	OK       bool      `json:"ok"`
	Result   string    `json:"result"`
	Finished time.Time `json:"finished,omitzero"`
}

// Executor dispatches commands to handlers by action.
type Executor struct {
	db  *badger.DB
	log *slog.Logger
	now func() time.Time

	// room, when set, is asked before each journal write; an error means
	// the disk has no room left for the journal.
	room func() error

	mu       sync.Mutex
	handlers map[string]Handler
}

// New returns an executor that journals in db under the "cmd/" prefix.
func New(db *badger.DB, log *slog.Logger) *Executor {
	if log == nil {
		log = slog.Default()
	}
	return &Executor{db: db, log: log, now: time.Now, handlers: map[string]Handler{}}
}

// SetRoom makes the executor ask room before each journal write. A full
// disk can crash the database (badger writes through memory-mapped files,
// and the kernel answers a write into a mapping with no disk behind it
// with SIGBUS rather than an error), so when room fails a command is not
// journaled and not run, and its result says why; a result that cannot be
// journaled is still returned, and a redelivery of that command is then
// answered as interrupted, never run twice.
func (e *Executor) SetRoom(room func() error) { e.room = room }

// Handle registers the handler for an action.
func (e *Executor) Handle(action string, h Handler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handlers[action] = h
}

// Actions lists the actions this agent can run.
func (e *Executor) Actions() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.handlers))
	for a := range e.handlers {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Execute runs c unless it ran before, and returns its result.
func (e *Executor) Execute(ctx context.Context, c *protocol.Command) *protocol.CommandResult {
	res := func(ok bool, text string) *protocol.CommandResult {
		return &protocol.CommandResult{Id: c.GetId(), Ok: ok, Result: text, FinishedUnixNano: e.now().UnixNano()}
	}
	if c.GetId() == "" {
		return res(false, "command has no id")
	}
	if e.room != nil {
		if err := e.room(); err != nil {
			e.log.Error("command refused: no room to journal it", "command", c.GetId(), "action", c.GetAction(), "err", err)
			return res(false, fmt.Sprintf("not run: the agent could not journal the command: %v", err))
		}
	}
	prev, err := e.claim(c)
	if err != nil {
		e.log.Error("journaling command", "command", c.GetId(), "err", err)
		return res(false, fmt.Sprintf("agent could not journal the command, so it did not run it: %v", err))
	}
	if prev != nil {
		if prev.Done {
			e.log.Info("command delivered again; returning its stored result", "command", c.GetId())
			return &protocol.CommandResult{Id: c.GetId(), Ok: prev.OK, Result: prev.Result, FinishedUnixNano: prev.Finished.UnixNano()}
		}
		return res(false, "the agent stopped while running this command; it is not run twice")
	}

	j := journal{Started: e.now()}
	switch {
	case c.GetExpiresUnixNano() != 0 && e.now().UnixNano() > c.GetExpiresUnixNano():
		j.OK, j.Result = false, "expired before it reached the agent; not run"
	default:
		e.mu.Lock()
		h, ok := e.handlers[c.GetAction()]
		e.mu.Unlock()
		if !ok {
			j.OK, j.Result = false, fmt.Sprintf("this agent does not run %q (it runs: %s)", c.GetAction(), strings.Join(e.Actions(), ", "))
			break
		}
		text, err := h(ctx, c)
		if err != nil {
			j.OK, j.Result = false, err.Error()
		} else {
			j.OK, j.Result = true, text
		}
	}
	j.Done, j.Finished = true, e.now()
	e.log.Info("command finished", "command", c.GetId(), "action", c.GetAction(), "ok", j.OK, "result", j.Result)
	if e.room != nil {
		if err := e.room(); err != nil {
			e.log.Error("command result not journaled: no room", "command", c.GetId(), "err", err)
			return res(j.OK, j.Result)
		}
	}
	if err := e.record(c, j); err != nil {
		e.log.Error("journaling command result", "command", c.GetId(), "err", err)
	}
	return res(j.OK, j.Result)
}

// claim returns the journal of a command seen before, or records c as
// started (durably) and returns nil.
func (e *Executor) claim(c *protocol.Command) (*journal, error) {
	key := []byte(keyPrefix + c.GetId())
	var prev *journal
	err := e.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err == nil {
			return item.Value(func(v []byte) error {
				prev = new(journal)
				return json.Unmarshal(v, prev)
			})
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		b, _ := json.Marshal(journal{Action: c.GetAction(), Started: e.now()})
		return txn.Set(key, b)
	})
	if err != nil {
		return nil, err
	}
	if prev == nil {
		// The journal entry must be on disk before the action runs.
		if err := e.db.Sync(); err != nil {
			return nil, fmt.Errorf("syncing command journal: %w", err)
		}
	}
	return prev, nil
}

func (e *Executor) record(c *protocol.Command, j journal) error {
	j.Action = c.GetAction()
	b, _ := json.Marshal(j)
	if err := e.db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(keyPrefix+c.GetId()), b)
	}); err != nil {
		return err
	}
	return e.db.Sync()
}
