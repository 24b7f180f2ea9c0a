package compact

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// openDB opens a database as the agent does, without compactors, with
// small memtables so that level 0 fills fast.
func openDB(t *testing.T) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil).
		WithMemTableSize(1 << 20).WithValueThreshold(64 << 10).WithNumLevelZeroTables(2).WithNumLevelZeroTablesStall(8).
		WithNumCompactors(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// write puts about mib MiB in time-ordered keys, in batches.
func write(t *testing.T, db *badger.DB, from, mib int) {
	t.Helper()
	val := make([]byte, 16<<10)
	rng := rand.NewChaCha8([32]byte{byte(from)})
	for i := from; i < from+mib*64; i++ {
		rng.Read(val) // incompressible
		if err := db.Update(func(txn *badger.Txn) error {
			return txn.Set(fmt.Appendf(nil, "k/%012d", i), val)
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func level0(db *badger.DB) int { return db.Levels()[0].NumTables }

// waitLevel0 kicks c until level 0 holds at most max tables.
func waitLevel0(t *testing.T, c *Compactor, db *badger.DB, max int, why string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for level0(db) > max {
		if time.Now().After(deadline) {
			t.Fatalf("%s: level 0 still holds %d tables", why, level0(db))
		}
		c.Kick()
		time.Sleep(20 * time.Millisecond)
	}
}

func run(t *testing.T, c *Compactor) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// Without room on disk for its output, the compactor waits, logging once,
// and compacts once room comes back.
func TestWaitsForSpace(t *testing.T) {
	db := openDB(t)
	var free atomic.Uint64
	free.Store(1 << 20)
	var logs bytes.Buffer
	var mu sync.Mutex
	c := New(db, Options{
		Name:      "test db",
		FreeSpace: func() (uint64, error) { return free.Load(), nil },
		Logger:    slog.New(slog.NewTextHandler(syncWriter{&mu, &logs}, nil)),
	})
	run(t, c)
	// About 5 MiB through 1 MiB memtables: level 0 gathers tables but
	// stays under the stall.
	write(t, db, 0, 5)
	deadline := time.Now().Add(time.Minute)
	for level0(db) <= 2 || c.Stats().Skipped == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("level 0 holds %d tables, %d looks skipped; want more than 2 and some", level0(db), c.Stats().Skipped)
		}
		c.Kick()
		time.Sleep(20 * time.Millisecond)
	}
	if st := c.Stats(); st.Runs != 0 || !st.Waiting {
		t.Fatalf("with 1 MiB free: %+v, want no compaction and waiting", st)
	}
	free.Store(1 << 30)
	waitLevel0(t, c, db, 2, "with room back")
	if st := c.Stats(); st.Waiting {
		t.Errorf("still waiting with room back: %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "test db: compaction waits for disk space"); n != 1 {
		t.Errorf("logged the wait %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "test db: compacting again") {
		t.Errorf("no log says compaction resumed:\n%s", logs.String())
	}
}

// Deletes meet what they delete: after the oldest half is deleted and
// compacted, the tree is smaller than before, although more was written
// since.
func TestDeletesReclaim(t *testing.T) {
	db := openDB(t)
	c := New(db, Options{Logger: slog.New(slog.DiscardHandler)})
	run(t, c)
	write(t, db, 0, 8)
	if err := db.DropPrefix([]byte("none/")); err != nil { // flushes the memtable
		t.Fatal(err)
	}
	waitLevel0(t, c, db, 0, "after the writes")
	before := lsmSize(db)
	wb := db.NewWriteBatch()
	for i := range 4 * 64 {
		if err := wb.Delete(fmt.Appendf(nil, "k/%012d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	write(t, db, 1<<20, 3) // pushes the deletes out of the memtable
	waitLevel0(t, c, db, 2, "after the deletes")
	if err := c.Compact(); err != nil {
		t.Fatal(err)
	}
	if after := lsmSize(db); after >= before {
		t.Errorf("the tree holds %d bytes after deleting half of %d and adding 3 MiB", after, before)
	}
	if c.Stats().Runs == 0 {
		t.Error("no compaction counted")
	}
}

func lsmSize(db *badger.DB) int64 {
	var n int64
	for _, l := range db.Levels() {
		n += l.Size
	}
	return n
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
