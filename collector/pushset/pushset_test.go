package pushset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
)

// note is a set of one line of text; its wire form is the text itself
// behind the version.
type note struct {
	Seq     uint64 `json:"seq"`
	Version string `json:"version"`
	Digest  string `json:"sha256"`
	Text    string `json:"text"`
	At      time.Time
}

var notes = Kind[note, *string]{
	Name:   "note",
	Prefix: "note",
	Seq:    func(n *note) uint64 { return n.Seq },
	Digest: func(n *note) string { return n.Digest },
	Wire: func(n *note) *string {
		s := n.Version + " " + n.Text
		return &s
	},
}

func openDB(t *testing.T) *badger.DB {
	t.Helper()
	db, err := store.Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func push(s *Store[note, *string], text string) (*note, error) {
	sum := sha256.Sum256([]byte(text))
	digest := hex.EncodeToString(sum[:])
	return s.Push(context.Background(), digest, func(seq uint64, version string, at time.Time) *note {
		return &note{Seq: seq, Version: version, Digest: digest, Text: text, At: at}
	})
}

func TestPushVersionsWakesAndSurvivesReopening(t *testing.T) {
	db := openDB(t)
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	s := New(db, notes, func() time.Time { return at })
	ctx := context.Background()
	if _, err := s.Latest(ctx); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "no note was pushed yet") {
		t.Fatalf("Latest before any push = %v, want not found", err)
	}
	if cur, err := s.Current(ctx); cur != nil || err != nil {
		t.Fatalf("Current before any push = %v, %v", cur, err)
	}
	wake := make(chan struct{}, 1)
	stop := s.Notify(func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	defer stop()
	first, err := push(s, "one")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	default:
		t.Error("a push did not wake the waiter")
	}
	if first.Seq != 1 || first.Version != "1-"+first.Digest[:12] || !first.At.Equal(at) || first.At.Location() != time.UTC {
		t.Errorf("first push = %+v", first)
	}
	if cur, _ := s.Current(ctx); *cur != first.Version+" one" {
		t.Errorf("Current after the first push = %q", *cur)
	}
	again, err := push(s, "one")
	if err != nil || again.Version != first.Version || again.Seq != 1 {
		t.Errorf("the same content again = %+v, %v; want version %s unchanged", again, err, first.Version)
	}
	second, err := push(s, "two")
	if err != nil || second.Seq != 2 || !strings.HasPrefix(second.Version, "2-") {
		t.Fatalf("second push = %+v, %v", second, err)
	}
	stop()
	if _, err := push(s, "three"); err != nil {
		t.Fatalf("a push after the waiter stopped: %v", err)
	}

	// A new Store over the same database finds the current version.
	fresh := New(db, notes, nil)
	cur, err := fresh.Current(ctx)
	if err != nil || !strings.HasPrefix(*cur, "3-") || !strings.HasSuffix(*cur, " three") {
		t.Errorf("Current after reopening = %v, %v", cur, err)
	}
	latest, err := fresh.Latest(ctx)
	if err != nil || latest.Seq != 3 || latest.Text != "three" {
		t.Errorf("Latest after reopening = %+v, %v", latest, err)
	}
}

func TestVersion(t *testing.T) {
	if v := Version(7, "0123456789abcdef"); v != "7-0123456789ab" {
		t.Errorf("Version = %q", v)
	}
	if v := Version(1, "abc"); v != "1-abc" {
		t.Errorf("Version of a short digest = %q", v)
	}
}
