package command

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

// recordingHook writes one key per call into the transaction, so only
// committed calls are seen.
type recordingHook struct {
	n    int
	fail error
}

func (h *recordingHook) CommandChanged(txn *badger.Txn, c *Command) error {
	if h.fail != nil {
		return h.fail
	}
	h.n++
	return txn.Set(store.Key("hooktest", fmt.Sprintf("%04d", h.n)), []byte(c.Action+" "+string(c.Status)))
}

func hookCalls(t *testing.T, db *badger.DB) []string {
	t.Helper()
	var out []string
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = store.Prefix("hooktest")
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, string(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The hook hears of a command when it is queued and when it finishes
// (with a result, or found expired), and a failing hook fails the
// change.
func TestHook(t *testing.T) {
	e := newEnv(t)
	h := &recordingHook{}
	e.q.hook = h
	ctx := context.Background()
	kill, err := e.q.Create(ctx, Request{AgentID: "a1", Action: ActionKill, Args: map[string]string{"pid": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.q.Create(ctx, Request{AgentID: "a1", Action: ActionIsolate, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := e.q.Delivered(ctx, kill.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.q.Finished(ctx, "a1", &protocol.CommandResult{Id: kill.ID, Ok: true, Result: "killed"}); err != nil {
		t.Fatal(err)
	}
	e.clock = e.clock.Add(2 * time.Minute)
	e.pendingIDs(t, "a1") // finds the isolate command expired
	want := []string{"kill pending", "isolate pending", "kill succeeded", "isolate expired"}
	if got := hookCalls(t, e.q.db); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hook calls %q, want %q", got, want)
	}

	h.fail = errors.New("outbox full")
	if _, err := e.q.Create(ctx, Request{AgentID: "a2", Action: ActionIsolate}); err == nil {
		t.Fatal("Create succeeded though the hook failed")
	}
	if ids := e.pendingIDs(t, "a2"); len(ids) != 0 {
		t.Errorf("a command was stored without its hook: %v", ids)
	}
}
