package spool

import (
	"errors"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/protocol"
)

// A full queue keeps the most severe findings: a new finding evicts the
// oldest of the lowest severity below its own, counted as dropped, and is
// itself dropped when nothing pending is less severe.
func TestFullQueueKeepsMostSevere(t *testing.T) {
	db := openDB(t, t.TempDir())
	defer db.Close()
	q := openQueue(t, db, Options{MaxPending: 3})
	mk := func(sev string) *protocol.Finding {
		f := newFinding(t, sev)
		f.Severity = sev
		return f
	}
	low1, medium, low2 := mk("low"), mk("medium"), mk("low")
	for _, f := range []*protocol.Finding{low1, medium, low2} {
		if err := q.Put(f); err != nil {
			t.Fatal(err)
		}
	}
	high, crit1, crit2 := mk("high"), mk("critical"), mk("critical")
	for _, step := range []struct {
		put     *protocol.Finding
		wantErr error
		want    []*protocol.Finding // pending afterwards, oldest first
	}{
		{high, nil, []*protocol.Finding{medium, low2, high}},   // evicts the oldest low
		{crit1, nil, []*protocol.Finding{medium, high, crit1}}, // then the other low
		{mk("low"), ErrFull, []*protocol.Finding{medium, high, crit1}},
		{mk("medium"), ErrFull, []*protocol.Finding{medium, high, crit1}}, // not less severe than medium
		{crit2, nil, []*protocol.Finding{high, crit1, crit2}},             // evicts the medium
	} {
		if err := q.Put(step.put); !errors.Is(err, step.wantErr) {
			t.Fatalf("put %s: %v, want %v", step.put.Severity, err, step.wantErr)
		}
		got, err := q.Peek(10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), ids(step.want)) {
			t.Fatalf("after put %s: pending %v, want %v", step.put.Severity, ids(got), ids(step.want))
		}
	}
	if st := q.Stats(); st.Pending != 3 || st.Dropped != 5 {
		t.Errorf("stats %+v, want 3 pending, 5 dropped (3 evicted, 2 refused)", st)
	}

	// Acknowledged findings leave no index entries behind, and the queue
	// takes new findings again.
	if err := q.Ack(ids([]*protocol.Finding{high, crit1, crit2})); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(sevPrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if n != 0 {
		t.Errorf("%d severity index entries left after acknowledging everything", n)
	}
	if err := q.Put(mk("low")); err != nil {
		t.Errorf("put after ack: %v", err)
	}
}
