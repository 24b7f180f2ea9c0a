package ingest

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/protocol"
)

// v1Findings are findings as format 1 stored them (JSON under
// finding/<id>, the id under log/<seq> and the indexes), written byte for
// byte as before.
var v1Findings = []struct {
	seq        uint64
	id, agent  string
	sev, value string
}{
	{1, "01938a4e-0000-7000-8000-000000000001", "a1", "high",
		`{"id":"01938a4e-0000-7000-8000-000000000001","agent_id":"a1","hostname":"web-1","rule":{"id":"r1","name":"Reverse shell","version":"1","references":[]},` +
			`"severity":"high","attack":{"tactics":["TA0002"],"techniques":[]},"summary":"bash -i","evidence":[{"process":{"pid":42}}],` +
			`"observed_at":"2026-01-01T00:00:00Z","detected_at":"2026-01-01T00:00:01Z","received_at":"2026-01-01T00:00:02.5Z","drill":false,"seq":1}`},
	{3, "01938a4e-0000-7000-8000-000000000003", "a2", "low",
		`{"id":"01938a4e-0000-7000-8000-000000000003","agent_id":"a2","hostname":"","rule":{"id":"r2","name":"Cron edit","version":"2","author":"cordon","references":["https://example.org/r2"],"license":"MIT"},` +
			`"severity":"low","attack":{"tactics":[],"techniques":["T1053.003"]},"summary":"crontab -e","evidence":[],` +
			`"observed_at":"2026-01-01T00:01:00Z","detected_at":"2026-01-01T00:01:00Z","received_at":"2026-01-01T00:01:03Z","drill":true,"seq":3}`},
}

func writeV1(t *testing.T, db *badger.DB) {
	t.Helper()
	err := db.Update(func(txn *badger.Txn) error {
		for _, f := range v1Findings {
			id := []byte(f.id)
			for _, kv := range [][2][]byte{
				{findingKey(f.id), []byte(f.value)},
				{logKey(f.seq), id},
				{indexKey(agentIndex(f.agent), f.seq), id},
				{indexKey(severityIndex(f.sev), f.seq), id},
			} {
				if err := txn.Set(kv[0], kv[1]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A store written in format 1 opens, reads, deduplicates, lists and
// attaches as before, next to findings appended in format 2.
func TestOpensFormat1Store(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openDB(t, dir)
	writeV1(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	s := newStore(t, db)

	f, err := s.Get(ctx, v1Findings[1].id)
	if err != nil {
		t.Fatal(err)
	}
	if f.AgentID != "a2" || f.Rule.License != "MIT" || !f.Drill || f.Attack.Techniques[0] != "T1053.003" ||
		f.ReceivedAt.Second() != 3 || string(f.Evidence) != "[]" {
		t.Errorf("format 1 finding read as %+v", f)
	}

	// The log goes on after the last format 1 entry, and old ids are
	// still duplicates.
	dup := finding("high")
	dup.Id = v1Findings[0].id
	fresh := finding("critical")
	stored, dups, err := s.Append(ctx, "a1", []*protocol.Finding{dup, fresh})
	if err != nil || stored != 1 || dups != 1 {
		t.Fatalf("append next to format 1: stored %d, duplicates %d, err %v; want 1, 1, nil", stored, dups, err)
	}
	recs, next, err := s.Read(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(seqsOf(recs)); got != "[1 3 5]" || next != 6 {
		t.Fatalf("log offsets %s next %d, want [1 3 5] next 6 (4 went to the duplicate)", got, next)
	}
	if recs[0].Finding.ID != v1Findings[0].id || recs[0].Finding.Hostname != "web-1" || recs[2].Finding.ID != fresh.Id {
		t.Errorf("log records %+v %+v %+v", recs[0].Finding, recs[1].Finding, recs[2].Finding)
	}

	// Attaching a format 1 finding writes its record in its log entry and
	// the incident in its key.
	err = db.Update(func(txn *badger.Txn) error {
		for _, id := range []string{v1Findings[0].id, fresh.Id} {
			if ok, err := s.Attach(txn, id, "inc1"); err != nil || !ok {
				return fmt.Errorf("attach %s: %v %v", id, ok, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(txn *badger.Txn) error {
		r, err := loadByID(txn, v1Findings[0].id)
		if err != nil {
			return err
		}
		if r.Format != formatRef4 || r.Seq != 1 || r.First != 1 || r.IncidentID != "inc1" || r.Hostname != "web-1" {
			return fmt.Errorf("attached format 1 finding is now %+v (format %d, seq %d)", r.Finding, r.Format, r.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		q    Query
		want []string
	}{
		{Query{}, []string{fresh.Id, v1Findings[1].id, v1Findings[0].id}},
		{Query{Agent: "a1"}, []string{fresh.Id, v1Findings[0].id}},
		{Query{Severity: "low"}, []string{v1Findings[1].id}},
		{Query{Incident: "inc1"}, []string{fresh.Id, v1Findings[0].id}},
	}
	for _, tt := range tests {
		got, _, err := s.List(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, f := range got {
			have = append(have, f.ID)
		}
		if fmt.Sprint(have) != fmt.Sprint(tt.want) {
			t.Errorf("list %+v: got %v, want %v", tt.q, have, tt.want)
		}
	}
	if recs, _, err := s.Read(ctx, 1, 1); err != nil || len(recs) != 1 || recs[0].Finding.IncidentID != "inc1" {
		t.Errorf("log entry 1 after attach: %v, %v", recs, err)
	}
}

// refValue is the value of finding/<id> in format 2.
func refValue(seq uint64) []byte {
	b := make([]byte, 9)
	b[0] = format2
	binary.BigEndian.PutUint64(b[1:], seq)
	return b
}

// A store written in format 2 (one log entry per finding, its position
// under its id, one empty index entry per finding and index, an attached
// finding's record rewritten with its incident) opens, reads, lists and
// attaches next to findings appended in blocks after it.
func TestOpensFormat2Store(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openDB(t, dir)
	var old []*Finding
	err := db.Update(func(txn *badger.Txn) error {
		for i, sev := range []string{"high", "low", "high"} {
			f, err := convert(fmt.Sprintf("a%d", i%2), "web-1", finding(sev), time.Now())
			if err != nil {
				return err
			}
			seq := uint64(i + 1)
			if i == 0 {
				f.IncidentID = "inc0"
				if err := txn.Set(indexKey(incidentIndex("inc0"), seq), nil); err != nil {
					return err
				}
			}
			old = append(old, f)
			for _, kv := range [][2][]byte{
				{findingKey(f.ID), refValue(seq)},
				{logKey(seq), encodeRecord(nil, f)},
				{indexKey(agentIndex(f.AgentID), seq), nil},
				{indexKey(severityIndex(f.Severity), seq), nil},
			} {
				if err := txn.Set(kv[0], kv[1]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, db)
	fresh := batch(5)
	if stored, _, err := s.Append(ctx, "a1", fresh); err != nil || stored != 5 {
		t.Fatalf("append next to format 2: %d, %v", stored, err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		for _, id := range []string{old[1].ID, fresh[2].Id} {
			if ok, err := s.Attach(txn, id, "inc1"); err != nil || !ok {
				return fmt.Errorf("attach %s: %v %v", id, ok, err)
			}
		}
		if ok, err := s.Attach(txn, old[0].ID, "inc1"); err != nil || ok {
			return fmt.Errorf("attach of a finding attached in format 2: %v %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openDB(t, dir)
	defer db.Close()
	s = newStore(t, db)

	recs, next, err := s.Read(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(seqsOf(recs)); got != "[1 2 3 4 5 6 7 8]" || next != 9 {
		t.Fatalf("log offsets %s next %d", got, next)
	}
	incidents := []string{}
	for _, r := range recs {
		incidents = append(incidents, r.Finding.IncidentID)
	}
	if got := strings.Join(incidents, ","); got != "inc0,inc1,,,,inc1,," {
		t.Errorf("incidents along the log: %q", got)
	}
	for _, tt := range []struct {
		q    Query
		want []uint64
	}{
		{Query{}, []uint64{8, 7, 6, 5, 4, 3, 2, 1}},
		{Query{Agent: "a0"}, []uint64{3, 1}},
		{Query{Agent: "a1"}, []uint64{8, 7, 6, 5, 4, 2}},
		{Query{Severity: "low"}, []uint64{2}},
		{Query{Incident: "inc1"}, []uint64{6, 2}},
		{Query{Incident: "inc0"}, []uint64{1}},
	} {
		got, _, err := s.List(ctx, tt.q)
		if err != nil {
			t.Fatal(err)
		}
		var have, want []string
		for _, f := range got {
			have = append(have, f.ID)
		}
		for _, seq := range tt.want {
			want = append(want, recs[seq-1].Finding.ID)
		}
		if fmt.Sprint(have) != fmt.Sprint(want) {
			t.Errorf("list %+v: got %v, want %v", tt.q, have, want)
		}
	}
	if f, err := s.Get(ctx, old[1].ID); err != nil || f.IncidentID != "inc1" || f.Severity != "low" {
		t.Errorf("format 2 finding attached since: %+v, %v", f, err)
	}
}
