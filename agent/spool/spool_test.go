package spool

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/cordon-edr/cordon/protocol"
)

func openDB(t *testing.T, dir string) *badger.DB {
	t.Helper()
	db, err := OpenDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func openQueue(t *testing.T, db *badger.DB, opts Options) *Queue {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	q, err := Open(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func newFinding(t testing.TB, summary string) *protocol.Finding {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return &protocol.Finding{
		Id:               id.String(),
		Rule:             &protocol.Rule{Id: "0746f174-f4eb-4be4-89de-6584d275b502", Name: "test rule", Version: "1"},
		Severity:         "high",
		Techniques:       []string{"T1059.004"},
		Summary:          summary,
		EvidenceJson:     []byte(`[{"event":{"category":"process","type":"start"}}]`),
		DetectedUnixNano: time.Now().UnixNano(),
	}
}

func ids(fs []*protocol.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.GetId())
	}
	return out
}

// The queue's order relies on UUIDv7 text sorting by creation time, even
// for ids minted within the same millisecond.
func TestUUIDv7TextSortsByTime(t *testing.T) {
	var prev string
	for i := range 20000 {
		u, err := uuid.NewV7()
		if err != nil {
			t.Fatal(err)
		}
		s := u.String()
		if s <= prev {
			t.Fatalf("id %d %s does not sort after %s", i, s, prev)
		}
		prev = s
	}
}

func TestPutPeekAck(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	q := openQueue(t, db, Options{})

	var put []*protocol.Finding
	for i := range 5 {
		f := newFinding(t, fmt.Sprintf("finding %d", i))
		if err := q.Put(f); err != nil {
			t.Fatal(err)
		}
		select {
		case <-q.Notify():
		default:
			t.Fatal("no notification after Put")
		}
		put = append(put, f)
	}
	if got := q.Stats(); got.Pending != 5 || got.Dropped != 0 {
		t.Errorf("stats = %+v, want 5 pending", got)
	}

	all, err := q.Peek(10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(all), ids(put)) {
		t.Fatalf("peek = %v, want %v", ids(all), ids(put))
	}
	for i := range all {
		if !proto.Equal(all[i], put[i]) {
			t.Errorf("finding %d changed in the queue: %v, want %v", i, all[i], put[i])
		}
	}
	if got, _ := q.Peek(2, 0); !slices.Equal(ids(got), ids(put[:2])) {
		t.Errorf("peek(2) = %v", ids(got))
	}
	size := proto.Size(put[0])
	if got, _ := q.Peek(10, 2*size+size/2); len(got) != 2 {
		t.Errorf("peek with room for 2.5 findings returned %d", len(got))
	}
	if got, _ := q.Peek(10, 1); !slices.Equal(ids(got), ids(put[:1])) {
		t.Errorf("peek with a tiny byte limit = %v, want the oldest finding", ids(got))
	}
	if _, err := q.Peek(0, 0); err == nil {
		t.Error("peek(0) succeeded")
	}

	// Putting a queued id again changes nothing.
	if err := q.Put(put[0]); err != nil {
		t.Fatal(err)
	}
	if got := q.Stats().Pending; got != 5 {
		t.Errorf("pending after duplicate put = %d, want 5", got)
	}

	unknown := newFinding(t, "never queued").GetId()
	if err := q.Ack([]string{put[0].Id, put[1].Id, unknown, "not-a-uuid", put[0].Id}); err != nil {
		t.Fatal(err)
	}
	got, _ := q.Peek(10, 0)
	if !slices.Equal(ids(got), ids(put[2:])) {
		t.Errorf("after ack, peek = %v, want %v", ids(got), ids(put[2:]))
	}
	st := q.Stats()
	if st.Pending != 3 {
		t.Errorf("pending after ack = %d, want 3", st.Pending)
	}
	oldest, _ := uuid.Parse(put[2].Id)
	sec, nsec := oldest.Time().UnixTime()
	if want := time.Unix(sec, nsec); !st.Oldest.Equal(want) || time.Since(st.Oldest) > time.Minute {
		t.Errorf("oldest = %v, want %v", st.Oldest, want)
	}

	if err := q.Ack(ids(put)); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Pending != 0 || !st.Oldest.IsZero() {
		t.Errorf("stats of an empty queue = %+v", st)
	}
	if got, _ := q.Peek(10, 0); len(got) != 0 {
		t.Errorf("empty queue peeked %d findings", len(got))
	}
}

func TestPutInvalid(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	q := openQueue(t, db, Options{})
	v4 := newFinding(t, "v4")
	v4.Id = uuid.NewString()
	empty := newFinding(t, "empty")
	empty.Id = ""
	for _, f := range []*protocol.Finding{nil, v4, empty} {
		if err := q.Put(f); !errors.Is(err, ErrInvalid) {
			t.Errorf("Put(%v) = %v, want ErrInvalid", f, err)
		}
	}
	if st := q.Stats(); st.Pending != 0 || st.Dropped != 0 {
		t.Errorf("invalid findings counted: %+v", st)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	q := openQueue(t, db, Options{MaxPending: 3})
	var put []*protocol.Finding
	for i := range 5 {
		f := newFinding(t, fmt.Sprintf("finding %d", i))
		err := q.Put(f)
		switch {
		case i < 3 && err != nil:
			t.Fatal(err)
		case i >= 3 && !errors.Is(err, ErrFull):
			t.Fatalf("put %d into a full queue: %v, want ErrFull", i, err)
		}
		put = append(put, f)
	}
	if err := q.Ack([]string{put[0].Id}); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, dir)
	defer db.Close()
	q = openQueue(t, db, Options{MaxPending: 3})
	st := q.Stats()
	if st.Pending != 2 || st.Dropped != 2 {
		t.Errorf("after restart stats = %+v, want 2 pending, 2 dropped", st)
	}
	got, err := q.Peek(10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(put[1:3])) {
		t.Errorf("after restart peek = %v, want %v", ids(got), ids(put[1:3]))
	}
	for i := range got {
		if !proto.Equal(got[i], put[i+1]) {
			t.Errorf("finding %d changed across restart", i)
		}
	}
}

// The drop counter is saved as findings are dropped, so it survives even
// a restart without Close.
func TestDroppedSurvivesWithoutClose(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	q := openQueue(t, db, Options{MaxPending: 1})
	if err := q.Put(newFinding(t, "kept")); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(newFinding(t, "dropped")); !errors.Is(err, ErrFull) {
		t.Fatalf("put = %v, want ErrFull", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	if st := openQueue(t, db, Options{}).Stats(); st.Dropped != 1 || st.Pending != 1 {
		t.Errorf("stats = %+v, want 1 pending, 1 dropped", st)
	}
}

func TestFullDropsNewAndLogsRateLimited(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	var logs bytes.Buffer
	q := openQueue(t, db, Options{MaxPending: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	q.now = func() time.Time { return now }

	kept := []*protocol.Finding{newFinding(t, "a"), newFinding(t, "b")}
	for _, f := range kept {
		if err := q.Put(f); err != nil {
			t.Fatal(err)
		}
	}
	<-q.Notify()
	first := newFinding(t, "first dropped")
	for i := range 50 {
		f := first
		if i > 0 {
			f = newFinding(t, "dropped")
		}
		if err := q.Put(f); !errors.Is(err, ErrFull) {
			t.Fatalf("put into a full queue = %v, want ErrFull", err)
		}
	}
	select {
	case <-q.Notify():
		t.Error("a dropped finding notified")
	default:
	}
	if st := q.Stats(); st.Pending != 2 || st.Dropped != 50 {
		t.Errorf("stats = %+v, want 2 pending, 50 dropped", st)
	}
	if got, _ := q.Peek(10, 0); !slices.Equal(ids(got), ids(kept)) {
		t.Errorf("queue holds %v, want the oldest %v", ids(got), ids(kept))
	}
	out := logs.String()
	if n := strings.Count(out, "queue full"); n != 1 {
		t.Errorf("logged %d drop reports, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "finding_id="+first.Id) || !strings.Contains(out, "rule_id="+first.Rule.Id) {
		t.Errorf("drop report lacks the finding and rule ids:\n%s", out)
	}

	now = now.Add(dropLogEvery)
	last := newFinding(t, "later")
	if err := q.Put(last); !errors.Is(err, ErrFull) {
		t.Fatalf("put = %v, want ErrFull", err)
	}
	out = logs.String()
	if n := strings.Count(out, "queue full"); n != 2 || !strings.Contains(out, "dropped_since_last_report=50") ||
		!strings.Contains(out, "finding_id="+last.Id) {
		t.Errorf("second drop report wrong:\n%s", out)
	}

	// Room again after an Ack.
	if err := q.Ack([]string{kept[0].Id}); err != nil {
		t.Fatal(err)
	}
	if err := q.Put(newFinding(t, "fits")); err != nil {
		t.Errorf("put after ack = %v", err)
	}
}

func TestUndecodableEntryIsRemoved(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	bad, good := newFinding(t, "bad"), newFinding(t, "good")
	if err := db.Update(func(txn *badger.Txn) error {
		return txn.Set([]byte(findingPrefix+bad.Id), []byte{0xff, 0xff, 0xff})
	}); err != nil {
		t.Fatal(err)
	}
	q := openQueue(t, db, Options{})
	if err := q.Put(good); err != nil {
		t.Fatal(err)
	}
	got, err := q.Peek(10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), []string{good.Id}) {
		t.Errorf("peek = %v, want only %s", ids(got), good.Id)
	}
	if st := q.Stats(); st.Pending != 1 {
		t.Errorf("pending = %d, want 1", st.Pending)
	}
}

// The queue shares the agent's database: it never counts, returns or
// deletes keys outside its prefix.
func TestSharedDatabase(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	other := map[string]string{"identity/agent_id": "a1", "spool": "x", "spoolx/f/1": "y", "commands/done/c1": "z"}
	if err := db.Update(func(txn *badger.Txn) error {
		for k, v := range other {
			if err := txn.Set([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	q := openQueue(t, db, Options{})
	f := newFinding(t, "mine")
	if err := q.Put(f); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Pending != 1 {
		t.Errorf("pending = %d, want 1", st.Pending)
	}
	if err := q.Ack([]string{f.Id}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	_ = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, string(it.Item().Key()))
		}
		return nil
	})
	for k := range other {
		if !slices.Contains(keys, k) {
			t.Errorf("key %s was removed", k)
		}
	}
	for _, k := range keys {
		if _, ok := other[k]; !ok && !strings.HasPrefix(k, prefix) {
			t.Errorf("queue wrote key %s outside %s", k, prefix)
		}
	}
}

// A database opened without synced writes still gets a durable Put.
func TestUnsyncedDatabase(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).
		WithMemTableSize(8 << 20).WithValueLogFileSize(16 << 20).WithBlockCacheSize(8 << 20))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := openQueue(t, db, Options{})
	if err := q.Put(newFinding(t, "x")); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.Peek(1, 0); len(got) != 1 {
		t.Errorf("peek = %d findings, want 1", len(got))
	}
}

func TestOpenNilDB(t *testing.T) {
	if _, err := Open(nil, Options{}); err == nil {
		t.Error("Open(nil) succeeded")
	}
}

// Concurrent producers and an uplink-like consumer; run with -race.
func TestConcurrentPutAck(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	q := openQueue(t, db, Options{MaxPending: 10000})
	const producers, each = 4, 50
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if err := q.Put(newFinding(t, fmt.Sprintf("p%d-%d", p, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	acked := map[string]bool{}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	deadline := time.After(time.Minute)
	for finished := false; ; {
		select {
		case <-q.Notify():
		case <-done:
			finished = true
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("timed out")
		}
		batch, err := q.Peek(16, 4096)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(batch); i++ {
			if batch[i].Id <= batch[i-1].Id {
				t.Fatalf("batch out of order: %v", ids(batch))
			}
		}
		for _, f := range batch {
			if acked[f.Id] {
				t.Fatalf("finding %s returned after its ack", f.Id)
			}
			acked[f.Id] = true
		}
		if err := q.Ack(ids(batch)); err != nil {
			t.Fatal(err)
		}
		_ = q.Stats()
		if finished && len(batch) == 0 {
			break
		}
	}
	if len(acked) != producers*each {
		t.Errorf("acked %d findings, want %d", len(acked), producers*each)
	}
	if st := q.Stats(); st.Pending != 0 || st.Dropped != 0 {
		t.Errorf("final stats = %+v", st)
	}
}
