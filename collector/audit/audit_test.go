package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
)

var quiet = slog.New(slog.DiscardHandler)

func newLog(t *testing.T, n int) (*Log, *badger.DB) {
	t.Helper()
	db, err := store.Open(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l := New(Config{DB: db}, quiet)
	for i := range n {
		status := 200
		if i%3 == 2 {
			status = 403
		}
		if _, err := l.Append(context.Background(), Entry{
			Actor: fmt.Sprintf("key-%d", i%2), Role: "admin", Action: "incident.update",
			Target: fmt.Sprintf("inc-%d", i), Source: "127.0.0.1:1234", Status: status,
		}); err != nil {
			t.Fatal(err)
		}
	}
	return l, db
}

func TestAppendChainsAndVerifies(t *testing.T) {
	l, _ := newLog(t, 5)
	v, err := l.Verify(context.Background())
	if err != nil || !v.OK || v.Entries != 5 {
		t.Fatalf("verify: %+v %v", v, err)
	}
	items, next, err := l.List(context.Background(), Query{})
	if err != nil || len(items) != 5 || next != "" {
		t.Fatalf("list: %d %q %v", len(items), next, err)
	}
	if items[0].Seq != 5 || items[4].Seq != 1 || items[4].Prev != "" || items[3].Prev != items[4].Hash {
		t.Errorf("chain: first %+v last %+v", items[4], items[0])
	}
	if items[2].Outcome != OutcomeFailure || items[0].Outcome != OutcomeSuccess {
		t.Errorf("outcomes %s %s", items[2].Outcome, items[0].Outcome)
	}
	failed, _, _ := l.List(context.Background(), Query{Outcome: OutcomeFailure})
	if len(failed) != 1 || failed[0].Seq != 3 {
		t.Errorf("failures: %v", failed)
	}
	byActor, _, _ := l.List(context.Background(), Query{Actor: "key-1", Page: store.Page{Limit: 1}})
	if len(byActor) != 1 || byActor[0].Seq != 4 {
		t.Errorf("by actor: %v", byActor)
	}
	if _, _, err := l.List(context.Background(), Query{Outcome: "maybe"}); err == nil || !strings.Contains(err.Error(), "outcome") {
		t.Errorf("bad outcome: %v", err)
	}
	empty, _ := newLog(t, 0)
	if v, err := empty.Verify(context.Background()); err != nil || !v.OK || v.Entries != 0 {
		t.Errorf("empty trail: %+v %v", v, err)
	}
}

// TestTamperingIsDetected changes the stored trail behind the Log's back
// and expects Verify to name the first entry concerned.
func TestTamperingIsDetected(t *testing.T) {
	edit := func(seq uint64, f func(*Entry)) func(*badger.Txn) error {
		return func(txn *badger.Txn) error {
			var e Entry
			if err := store.Get(txn, entryKey(seq), &e); err != nil {
				return err
			}
			f(&e)
			return store.Put(txn, entryKey(seq), &e)
		}
	}
	tests := []struct {
		name    string
		tamper  func(*badger.Txn) error
		wantSeq uint64
		reason  string
	}{
		{"edited actor", edit(2, func(e *Entry) { e.Actor = "someone-else" }), 2, "edited"},
		{"edited outcome", edit(3, func(e *Entry) { e.Status, e.Outcome = 200, OutcomeSuccess }), 3, "edited"},
		{"edited and rehashed", edit(2, func(e *Entry) { e.Target = "other"; e.Hash = digest(*e) }), 3, "does not link"},
		{"removed from the middle", func(txn *badger.Txn) error { return txn.Delete(entryKey(3)) }, 3, "missing"},
		{"removed from the end", func(txn *badger.Txn) error { return txn.Delete(entryKey(5)) }, 5, "missing"},
		{"removed first", func(txn *badger.Txn) error { return txn.Delete(entryKey(1)) }, 1, "missing"},
		{"garbage", func(txn *badger.Txn) error { return txn.Set(entryKey(4), []byte("{")) }, 4, "decoded"},
		{"appended behind the log's back", func(txn *badger.Txn) error {
			var last Entry
			if err := store.Get(txn, entryKey(5), &last); err != nil {
				return err
			}
			e := Entry{Seq: 6, Actor: "x", Action: "y", Prev: last.Hash}
			e.Hash = digest(e)
			return store.Put(txn, entryKey(6), &e)
		}, 6, "beyond"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, db := newLog(t, 5)
			if err := db.Update(tt.tamper); err != nil {
				t.Fatal(err)
			}
			v, err := l.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || v.FirstBadSeq != tt.wantSeq || !strings.Contains(v.Reason, tt.reason) {
				b, _ := json.Marshal(v)
				t.Errorf("verify: %s, want entry %d failing with %q", b, tt.wantSeq, tt.reason)
			}
		})
	}
}
