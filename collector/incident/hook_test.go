package incident

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/ingest"
	"github.com/cordon-edr/cordon/collector/store"
)

// recordingHook writes one key per call into the transaction it is
// given, so a test sees only the calls whose transaction committed.
type recordingHook struct {
	n    int
	fail error
}

func (h *recordingHook) IncidentChanged(txn *badger.Txn, change string, inc *Incident, cause *ingest.Finding) error {
	if h.fail != nil {
		return h.fail
	}
	h.n++
	c := "-"
	if cause != nil {
		c = cause.ID + "@" + cause.IncidentID
	}
	return txn.Set(store.Key("hooktest", fmt.Sprintf("%04d", h.n)), []byte(change+" "+inc.ID+" "+string(inc.Status)+" "+c))
}

func (h *recordingHook) calls(t *testing.T, db *badger.DB) []string {
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

// The hook hears of every change, inside its transaction: opened and
// updated with the causing finding, API updates without one, closed
// once when the status becomes final.
func TestHook(t *testing.T) {
	e := newEnv(t)
	h := &recordingHook{}
	e.engine.hook = h
	ids := e.add(t, spec{agent: "a1", minute: 0}, spec{agent: "a1", minute: 1})
	e.process(t)
	incs, _, err := e.engine.List(context.Background(), Query{})
	if err != nil || len(incs) != 1 {
		t.Fatalf("incidents %v, %v", incs, err)
	}
	id := incs[0].ID
	who := "alice"
	if _, err := e.engine.Update(context.Background(), id, Change{Assignee: &who}, "k"); err != nil {
		t.Fatal(err)
	}
	fp := StatusFalsePositive
	if _, err := e.engine.Update(context.Background(), id, Change{Status: &fp}, "k"); err != nil {
		t.Fatal(err)
	}
	note := "after the fact"
	if _, err := e.engine.Update(context.Background(), id, Change{Comment: &note}, "k"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"opened " + id + " new " + ids[0] + "@" + id,
		"updated " + id + " new " + ids[1] + "@" + id,
		"updated " + id + " new -",
		"closed " + id + " false_positive -",
		"updated " + id + " false_positive -",
	}
	if got := h.calls(t, e.db); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hook calls\n%q\nwant\n%q", got, want)
	}

	// A failing hook fails the change: nothing is stored without its
	// outbox entry.
	h.fail = errors.New("outbox full")
	if _, err := e.engine.Update(context.Background(), id, Change{Comment: &note}, "k"); err == nil {
		t.Fatal("Update succeeded though the hook failed")
	}
	inc, err := e.engine.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(inc.Timeline); inc.Timeline[n-1].Detail != note || inc.Timeline[n-2].Detail == note {
		t.Errorf("the failed change was stored: %+v", inc.Timeline[n-2:])
	}
}
