package spool

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/agent/compact"
)

// fill puts n findings of about size bytes each, and fails the test when
// the writes stall (badger blocks writes once level 0 holds
// NumLevelZeroTablesStall tables, which without compaction it soon does).
func fill(t *testing.T, q *Queue, n, size int) []string {
	t.Helper()
	var stop atomic.Bool
	done := make(chan error, 1)
	var ids []string
	go func() {
		pad := strings.Repeat("x", size)
		for i := 0; i < n && !stop.Load(); i++ {
			f := newFinding(t, pad)
			f.Summary = pad[:size-i%7]
			if err := q.Put(f); err != nil {
				done <- err
				return
			}
			ids = append(ids, f.GetId())
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		return ids
	case <-time.After(2 * time.Minute):
	}
	// Unstick the writer so that the database can close, then fail.
	t.Errorf("writes stalled: level 0 holds %d tables", level0(q.db))
	stop.Store(true)
	for {
		select {
		case <-done:
			t.FailNow()
		default:
			if err := q.db.Flatten(1); err != nil {
				t.Log(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func level0(db *badger.DB) int { return db.Levels()[0].NumTables }

// A database opened by OpenDB runs no badger compactor: its Compactor,
// kicked by the queue's writes, keeps level 0 short, so that writes
// never stall, and merges the deletes of delivered findings with them.
func TestCompactorKeepsWritesGoing(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	defer db.Close()
	comp := compact.New(db, compact.Options{Logger: slog.New(slog.DiscardHandler)})
	q := openQueue(t, db, Options{Compactor: comp})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { comp.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	// About 24 MiB through 1 MiB memtables: three times the stall bound.
	ids := fill(t, q, 1500, 16<<10)
	if comp.Stats().Runs == 0 {
		t.Fatal("the compactor never ran")
	}
	if err := q.Ack(ids[:1250]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for level0(db) > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("level 0 still holds %d tables a minute after the writes", level0(db))
		}
		comp.Kick()
		time.Sleep(50 * time.Millisecond)
	}
	got, err := q.Peek(2000, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 || got[0].GetId() != ids[1250] || got[249].GetId() != ids[1499] {
		t.Fatalf("after compaction the queue holds %d findings, want the last 250 of %d", len(got), len(ids))
	}
}
