package ruleset

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/detectors/rules"
)

const good = `title: Marker
id: 3d6c1a52-2c55-4b7c-9d0e-6a1f54c1e001
logsource:
    category: process_creation
    product: linux
detection:
    selection:
        CommandLine|contains: cordon-marker
    condition: selection
level: high
`

func open(t *testing.T) (*Store, *badger.DB) {
	t.Helper()
	db, err := store.Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(db, nil, nil), db
}

func TestPushRefusesABrokenSetWithFileAndLine(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	if _, err := s.Push(ctx, []File{{"a.yml", []byte(good)}}, "alice"); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Info(ctx)
	broken := strings.Replace(good, "condition: selection", "condition: selection and nosuchsearch", 1)
	_, err := s.Push(ctx, []File{{"a.yml", []byte(good)}, {"rules/b.yml", []byte(broken)}}, "bob")
	var se *rules.SetError
	if !errors.As(err, &se) {
		t.Fatalf("Push of a broken set = %v, want a *rules.SetError", err)
	}
	if p := se.Problems[0]; p.File != "rules/b.yml" || p.Line != 9 || !strings.Contains(p.Error(), "nosuchsearch") {
		t.Errorf("problem %q at %s:%d, want nosuchsearch at rules/b.yml:9", p.Error(), p.File, p.Line)
	}
	after, _ := s.Info(ctx)
	if after.Version != before.Version || after.PushedBy != "alice" {
		t.Errorf("a refused push changed the current set: %+v, was %+v", after, before)
	}
}

// The versioning itself (numbering, waking, the cache) is tested in
// collector/pushset; these are the rule set's own parts.
func TestPushVersions(t *testing.T) {
	s, db := open(t)
	ctx := context.Background()
	if _, err := s.Info(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Info before any push = %v, want not found", err)
	}
	if cur, err := s.Current(ctx); err != nil || cur != nil {
		t.Fatalf("Current before any push = %v, %v", cur, err)
	}
	first, err := s.Push(ctx, []File{{"a.yml", []byte(good)}}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.Version, "1-") || first.Rules != 1 || first.PushedBy != "alice" || len(first.Files) != 1 {
		t.Errorf("first push = %+v", first)
	}
	again, err := s.Push(ctx, []File{{"a.yml", []byte(good)}}, "bob")
	if err != nil || again.Version != first.Version {
		t.Errorf("pushing the same files again = %+v, %v; want version %s unchanged", again, err, first.Version)
	}
	second, err := s.Push(ctx, []File{{"a.yml", []byte(good)}, {"b.yaml", []byte(strings.Replace(good, "e001", "e002", 1))}}, "bob")
	if err != nil || !strings.HasPrefix(second.Version, "2-") || second.Rules != 2 {
		t.Fatalf("second push = %+v, %v", second, err)
	}
	// A new Store over the same database finds the current set.
	fresh := New(db, nil, nil)
	cur, err := fresh.Current(ctx)
	if err != nil || cur.GetVersion() != second.Version || len(cur.GetFiles()) != 2 || cur.GetPushedBy() != "bob" {
		t.Errorf("Current after reopening = %v, %v", cur, err)
	}
	info, err := fresh.Info(ctx)
	if err != nil || info.Version != second.Version || len(info.Files) != 2 {
		t.Errorf("Info after reopening = %+v, %v", info, err)
	}
}
