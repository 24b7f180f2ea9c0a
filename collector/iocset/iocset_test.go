package iocset

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/detectors/ioc"
)

const good = "type,value,severity,note\nip,203.0.113.7,high,c2\ncidr,198.51.100.0/24,,\n"

// The versioning itself (numbering, waking, the cache) is tested in
// collector/pushset; these are the indicator set's own parts.
func TestPushVersionsAndRefuses(t *testing.T) {
	db, err := store.Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := New(db, nil, nil)
	ctx := context.Background()
	if _, err := s.Info(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Info before any push = %v", err)
	}
	if cur, err := s.Current(ctx); cur != nil || err != nil {
		t.Fatalf("Current before any push = %v, %v", cur, err)
	}
	first, err := s.Push(ctx, "a.csv", []byte(good), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.Version, "1-") || first.Indicators != 2 || first.Types["cidr"] != 1 || first.PushedBy != "alice" {
		t.Errorf("first push = %+v", first)
	}
	// The same indicators in another form are the same set.
	again, err := s.Push(ctx, "b.csv", []byte("type,value,severity,note\ncidr,198.51.100.9/24,medium,\nip,::ffff:203.0.113.7,high,c2\n"), "bob")
	if err != nil || again.Version != first.Version {
		t.Errorf("the same set again = %+v, %v; want %s", again, err, first.Version)
	}
	_, err = s.Push(ctx, "bad.csv", []byte(good+"ip,nope,,\n"), "bob")
	var pe *ioc.Error
	if !errors.As(err, &pe) || pe.Problems[0].Line != 4 {
		t.Fatalf("a bad set = %v, want an *ioc.Error on line 4", err)
	}
	if info, _ := s.Info(ctx); info.Version != first.Version {
		t.Errorf("a refused set changed the current one to %s", info.Version)
	}
	second, err := s.Push(ctx, "c.csv", []byte(good+"path,/tmp/x,critical,\n"), "bob")
	if err != nil || !strings.HasPrefix(second.Version, "2-") {
		t.Fatalf("second push = %+v, %v", second, err)
	}
	fresh := New(db, nil, nil)
	cur, err := fresh.Current(ctx)
	if err != nil || cur.GetVersion() != second.Version || len(cur.GetIndicators()) != 3 || cur.GetPushedBy() != "bob" {
		t.Fatalf("Current after reopening = %v, %v", cur, err)
	}
	if i := cur.GetIndicators()[2]; i.GetType() != "path" || i.GetValue() != "/tmp/x" || i.GetSeverity() != "critical" {
		t.Errorf("wire indicator %v", i)
	}
}
