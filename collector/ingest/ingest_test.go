package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

var quiet = slog.New(slog.DiscardHandler)

func openDB(t *testing.T, dir string) *badger.DB {
	t.Helper()
	db, err := store.Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newStore(t *testing.T, db *badger.DB) *Store {
	t.Helper()
	s, err := New(Config{DB: db, Agents: hosts{"a1": "web-1"}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type hosts map[string]string

func (h hosts) Lookup(id string) (string, map[string]string, bool) {
	n, ok := h[id]
	return n, nil, ok
}

func finding(sev string) *protocol.Finding {
	return &protocol.Finding{
		Id:       uuid.Must(uuid.NewV7()).String(),
		Rule:     &protocol.Rule{Id: "r1", Name: "Reverse shell", Version: "1"},
		Severity: sev,
		Tactics:  []string{"TA0002"},
		Summary:  "bash -i >& /dev/tcp/...",
		EvidenceJson: []byte(`[{"@timestamp":"2026-01-01T00:00:00Z","event":{"category":"process","type":"start"},
			"process":{"pid":42,"user":{"name":"www-data"}}}]`),
		ObservedUnixNano: time.Now().UnixNano(),
		DetectedUnixNano: time.Now().UnixNano(),
	}
}

func batch(n int) []*protocol.Finding {
	var fs []*protocol.Finding
	for range n {
		fs = append(fs, finding("high"))
	}
	return fs
}

func TestAppendIdempotent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openDB(t, dir)
	s := newStore(t, db)
	fs := batch(3)

	for i, want := range []struct{ stored, dups int }{{3, 0}, {0, 3}} {
		stored, dups, err := s.Append(ctx, "a1", fs)
		if err != nil {
			t.Fatal(err)
		}
		if stored != want.stored || dups != want.dups {
			t.Errorf("append %d: stored %d, duplicates %d; want %d, %d", i, stored, dups, want.stored, want.dups)
		}
	}
	// A batch repeating an id within itself.
	again := finding("low")
	stored, dups, err := s.Append(ctx, "a1", []*protocol.Finding{again, again, fs[0]})
	if err != nil || stored != 1 || dups != 2 {
		t.Errorf("batch with repeats: stored %d, duplicates %d, err %v; want 1, 2, nil", stored, dups, err)
	}
	if st := s.Stats(); st.Stored != 4 || st.Duplicates != 5 {
		t.Errorf("stats %+v, want 4 stored, 5 duplicates", st)
	}

	// After a restart the findings are still there, once.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	s = newStore(t, db)
	stored, dups, err = s.Append(ctx, "a1", fs)
	if err != nil || stored != 0 || dups != 3 {
		t.Errorf("after restart: stored %d, duplicates %d, err %v; want 0, 3, nil", stored, dups, err)
	}
	recs, _, err := s.Read(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Errorf("log holds %d records, want 4", len(recs))
	}
	f, err := s.Get(ctx, fs[1].Id)
	if err != nil {
		t.Fatal(err)
	}
	if f.Hostname != "web-1" || f.AgentID != "a1" || f.Severity != "high" || f.Rule.Name != "Reverse shell" {
		t.Errorf("stored finding %+v", f)
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	defer db.Close()
	s := newStore(t, db)

	noID := finding("high")
	noID.Id = ""
	badID := finding("high")
	badID.Id = "not-a-uuid"
	badSev := finding("severe")
	badEvidence := finding("low")
	badEvidence.EvidenceJson = []byte(`{"not":"an array"}`)
	good := finding("medium")
	noEvidence := finding("critical")
	noEvidence.EvidenceJson = nil

	stored, dups, err := s.Append(ctx, "a1", []*protocol.Finding{noID, badID, badSev, good, badEvidence, noEvidence})
	if err != nil || stored != 2 || dups != 0 {
		t.Fatalf("stored %d, duplicates %d, err %v; want 2, 0, nil", stored, dups, err)
	}
	if got := s.Stats().Rejected; got != 4 {
		t.Errorf("rejected %d, want 4", got)
	}
	f, err := s.Get(ctx, noEvidence.Id)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Evidence) != "[]" {
		t.Errorf("missing evidence stored as %s, want []", f.Evidence)
	}
}

func TestConvertFields(t *testing.T) {
	now := time.Now().UTC()
	tests := []struct {
		name  string
		edit  func(f *protocol.Finding)
		field string
	}{
		{"valid", func(*protocol.Finding) {}, ""},
		{"missing id", func(f *protocol.Finding) { f.Id = "" }, "id"},
		{"invalid id", func(f *protocol.Finding) { f.Id = "1234" }, "id"},
		{"unknown severity", func(f *protocol.Finding) { f.Severity = "HIGH" }, "severity"},
		{"evidence not JSON", func(f *protocol.Finding) { f.EvidenceJson = []byte("[{") }, "evidence_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := finding("low")
			tt.edit(f)
			_, err := convert("a1", "h", f, now)
			field := ""
			if fe, ok := err.(*store.FieldError); ok {
				field = fe.Field
			} else if err != nil {
				t.Fatalf("error %v is not a FieldError", err)
			}
			if field != tt.field {
				t.Errorf("error %v, want one on field %q", err, tt.field)
			}
		})
	}
}

func TestReadFromOffset(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openDB(t, dir)
	s := newStore(t, db)
	wake := s.Notify()
	fs := batch(5)
	if _, _, err := s.Append(ctx, "a1", fs); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	default:
		t.Error("Notify channel not closed by Append")
	}

	recs, next, err := s.Read(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Seq != 1 || recs[1].Seq != 2 || next != 3 || recs[0].Finding.ID != fs[0].Id {
		t.Fatalf("Read(0, 2) = %v, next %d", seqsOf(recs), next)
	}
	recs, next, err = s.Read(ctx, next, 100)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqsOf(recs)) != "[3 4 5]" || next != 6 {
		t.Fatalf("Read(3, 100) = %v, next %d", seqsOf(recs), next)
	}
	recs, next, err = s.Read(ctx, next, 100)
	if err != nil || len(recs) != 0 || next != 6 {
		t.Fatalf("Read at the end = %v, next %d, err %v", seqsOf(recs), next, err)
	}

	// The log continues after a restart.
	db.Close()
	db = openDB(t, dir)
	defer db.Close()
	s = newStore(t, db)
	if _, _, err := s.Append(ctx, "a1", batch(1)); err != nil {
		t.Fatal(err)
	}
	recs, next, err = s.Read(ctx, 6, 100)
	if err != nil || fmt.Sprint(seqsOf(recs)) != "[6]" || next != 7 {
		t.Fatalf("after restart Read(6) = %v, next %d, err %v", seqsOf(recs), next, err)
	}
}

func seqsOf(recs []Record) []uint64 {
	var s []uint64
	for _, r := range recs {
		s = append(s, r.Seq)
	}
	return s
}

// TestConcurrentAppendsRead checks that a reader following the log while
// many appends run sees every finding exactly once.
func TestConcurrentAppendsRead(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	defer db.Close()
	s := newStore(t, db)

	const writers, batches, size = 6, 8, 5
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range batches {
				if _, _, err := s.Append(ctx, fmt.Sprintf("a%d", w), batch(size)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[string]bool{}
	var offset uint64
	for finished := false; ; {
		wake := s.Notify()
		recs, next, err := s.Read(ctx, offset, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if seen[r.Finding.ID] {
				t.Fatalf("finding %s read twice", r.Finding.ID)
			}
			seen[r.Finding.ID] = true
		}
		offset = next
		if len(recs) > 0 {
			continue
		}
		if finished {
			break
		}
		select {
		case <-wake:
		case <-done:
			finished = true
		}
	}
	if len(seen) != writers*batches*size {
		t.Errorf("read %d findings, want %d", len(seen), writers*batches*size)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, t.TempDir())
	defer db.Close()
	s := newStore(t, db)
	var ids []string
	for i, sev := range []string{"low", "high", "high", "critical", "high"} {
		f := finding(sev)
		ids = append(ids, f.Id)
		if _, _, err := s.Append(ctx, fmt.Sprintf("a%d", i%2), []*protocol.Finding{f}); err != nil {
			t.Fatal(err)
		}
	}
	err := db.Update(func(txn *badger.Txn) error {
		for _, id := range ids[3:] {
			if ok, err := s.Attach(txn, id, "inc1"); err != nil || !ok {
				return fmt.Errorf("attach %s: %v %v", id, ok, err)
			}
		}
		if ok, err := s.Attach(txn, ids[3], "inc2"); err != nil || ok {
			return fmt.Errorf("second attach of %s: %v %v", ids[3], ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		q    Query
		want []int // indexes into ids, newest first
	}{
		{Query{}, []int{4, 3, 2, 1, 0}},
		{Query{Agent: "a0"}, []int{4, 2, 0}},
		{Query{Severity: "high"}, []int{4, 2, 1}},
		{Query{Agent: "a1", Severity: "high"}, []int{1}},
		{Query{Incident: "inc1"}, []int{4, 3}},
		{Query{Incident: "inc1", Severity: "critical"}, []int{3}},
		{Query{Page: store.Page{Limit: 2}}, []int{4, 3}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.q), func(t *testing.T) {
			got, _, err := s.List(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var want, have []string
			for _, i := range tt.want {
				want = append(want, ids[i])
			}
			for _, f := range got {
				have = append(have, f.ID)
			}
			if fmt.Sprint(have) != fmt.Sprint(want) {
				t.Errorf("got %v, want %v", have, want)
			}
		})
	}
	if _, _, err := s.List(ctx, Query{Severity: "bad"}); err == nil {
		t.Error("unknown severity accepted")
	}
}
