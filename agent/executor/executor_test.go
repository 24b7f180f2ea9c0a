package executor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/protocol"
)

func openDB(t *testing.T, dir string) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithMemTableSize(8 << 20).WithValueLogFileSize(16 << 20))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestExecutesEachCommandOnce(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	runs := 0
	e := New(db, nil)
	e.Handle("count", func(context.Context, *protocol.Command) (string, error) {
		runs++
		return "counted", nil
	})
	cmd := &protocol.Command{Id: "c1", Action: "count"}
	first := e.Execute(context.Background(), cmd)
	if !first.GetOk() || first.GetResult() != "counted" {
		t.Fatalf("first run: %v", first)
	}
	again := e.Execute(context.Background(), cmd)
	if runs != 1 || !again.GetOk() || again.GetResult() != "counted" {
		t.Fatalf("redelivery ran the command again (runs=%d) or lost its result: %v", runs, again)
	}
	// The journal survives a restart.
	db.Close()
	db = openDB(t, dir)
	defer db.Close()
	e = New(db, nil)
	e.Handle("count", func(context.Context, *protocol.Command) (string, error) {
		runs++
		return "counted", nil
	})
	if res := e.Execute(context.Background(), cmd); runs != 1 || res.GetResult() != "counted" {
		t.Fatalf("after a restart: runs=%d, %v", runs, res)
	}
}

func TestRefusals(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	e := New(db, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.now = func() time.Time { return now }
	ran := false
	e.Handle("x", func(context.Context, *protocol.Command) (string, error) { ran = true; return "", nil })
	e.Handle("fails", func(context.Context, *protocol.Command) (string, error) { return "", errors.New("boom") })

	tests := []struct {
		name string
		cmd  *protocol.Command
		want string
	}{
		{"no id", &protocol.Command{Action: "x"}, "no id"},
		{"expired", &protocol.Command{Id: "e", Action: "x", ExpiresUnixNano: now.Add(-time.Second).UnixNano()}, "expired"},
		{"unknown action", &protocol.Command{Id: "u", Action: "nope"}, `does not run "nope"`},
		{"handler error", &protocol.Command{Id: "f", Action: "fails"}, "boom"},
	}
	for _, tt := range tests {
		res := e.Execute(context.Background(), tt.cmd)
		if res.GetOk() || !strings.Contains(res.GetResult(), tt.want) {
			t.Errorf("%s: got %v, want a failure containing %q", tt.name, res, tt.want)
		}
	}
	if ran {
		t.Fatal("an expired command ran")
	}
}

func TestInterruptedCommandIsNotRunAgain(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	e := New(db, nil)
	cmd := &protocol.Command{Id: "c", Action: "x"}
	// The agent journaled the command and stopped before finishing it.
	if prev, err := e.claim(cmd); err != nil || prev != nil {
		t.Fatalf("claim: %v %v", prev, err)
	}
	e.Handle("x", func(context.Context, *protocol.Command) (string, error) {
		t.Fatal("an interrupted command ran a second time")
		return "", nil
	})
	if res := e.Execute(context.Background(), cmd); res.GetOk() || !strings.Contains(res.GetResult(), "not run twice") {
		t.Fatalf("got %v", res)
	}
}

// With no room on the disk a command is neither journaled nor run, and
// its result says why; once there is room again it runs. A result that
// cannot be journaled is still returned, and its redelivery is not run
// again.
func TestNoRoomFailsTheCommand(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	e := New(db, nil)
	full := errors.New("the agent's disk is full: 1.0 MiB free")
	var room error = full
	e.SetRoom(func() error { return room })
	runs := 0
	e.Handle("count", func(context.Context, *protocol.Command) (string, error) {
		runs++
		room = full // the disk fills while the command runs
		return "counted", nil
	})
	cmd := &protocol.Command{Id: "c1", Action: "count"}
	res := e.Execute(context.Background(), cmd)
	if res.GetOk() || runs != 0 || !strings.Contains(res.GetResult(), "not run") || !strings.Contains(res.GetResult(), "disk is full") {
		t.Fatalf("with the disk full: runs=%d, %v", runs, res)
	}
	if err := db.View(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(keyPrefix + "c1"))
		return err
	}); !errors.Is(err, badger.ErrKeyNotFound) {
		t.Fatalf("the refused command was journaled: %v", err)
	}

	room = nil
	res = e.Execute(context.Background(), cmd)
	if !res.GetOk() || runs != 1 || res.GetResult() != "counted" {
		t.Fatalf("with room again: runs=%d, %v", runs, res)
	}
	room = nil
	again := e.Execute(context.Background(), cmd)
	if runs != 1 || again.GetOk() || !strings.Contains(again.GetResult(), "not run twice") {
		t.Fatalf("the redelivery of a command whose result was not journaled: runs=%d, %v", runs, again)
	}
}
