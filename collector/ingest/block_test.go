package ingest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

func TestBlockRoundTrip(t *testing.T) {
	for _, seqs := range [][]uint64{
		{1, 2},
		{5, 6, 9, 200, 201},
		{math.MaxUint64 - 2, math.MaxUint64},
	} {
		var b blockBuilder
		for _, s := range seqs {
			b.add(s, []byte(fmt.Sprintf("record %d", s)))
		}
		es, err := decodeLog(nil, seqs[0], b.val)
		if err != nil {
			t.Fatalf("%v: %v", seqs, err)
		}
		var got []uint64
		for _, e := range es {
			got = append(got, e.seq)
			if string(e.val) != fmt.Sprintf("record %d", e.seq) {
				t.Errorf("%v: position %d holds %q", seqs, e.seq, e.val)
			}
		}
		if !slices.Equal(got, seqs) {
			t.Errorf("positions %v, want %v", got, seqs)
		}
		for _, s := range seqs {
			if e, ok := findEntry(es, s); !ok || e.seq != s {
				t.Errorf("%v: position %d not found", seqs, s)
			}
		}
		if _, ok := findEntry(es, seqs[0]+1000); ok && !slices.Contains(seqs, seqs[0]+1000) {
			t.Errorf("%v: found a position it does not hold", seqs)
		}
	}
}

func TestDecodeLogRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		val  []byte
	}{
		{"empty block", []byte{formatBlock}},
		{"first gap not zero", []byte{formatBlock, 1, 1, 'a'}},
		{"repeated position", []byte{formatBlock, 0, 1, 'a', 0, 1, 'b'}},
		{"record past the end", []byte{formatBlock, 0, 5, 'a'}},
		{"truncated gap", []byte{formatBlock, 0, 1, 'a', 0x80}},
		{"truncated length", []byte{formatBlock, 0, 0x80}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if es, err := decodeLog(nil, 1, tt.val); !errors.Is(err, errBlock) {
				t.Errorf("decoded %v, %v; want a malformed block", es, err)
			}
		})
	}
	if _, err := decodeLog(nil, math.MaxUint64, []byte{formatBlock, 0, 0, 1, 0}); !errors.Is(err, errBlock) {
		t.Errorf("a block past the last position: %v", err)
	}
	// A format 2 record and a format 1 id are one finding at the key.
	for _, val := range [][]byte{{format2, 1, 2}, []byte("01938a4e-0000-7000-8000-000000000001")} {
		if es, err := decodeLog(nil, 7, val); err != nil || len(es) != 1 || es[0].seq != 7 || string(es[0].val) != string(val) {
			t.Errorf("value %q: %v, %v", val, es, err)
		}
	}
}

func FuzzDecodeLog(f *testing.F) {
	var b blockBuilder
	b.add(3, []byte{format2, 1})
	b.add(9, []byte("x"))
	f.Add(uint64(3), b.val)
	f.Add(uint64(1), []byte{formatBlock, 0, 0})
	f.Fuzz(func(t *testing.T, first uint64, val []byte) {
		es, err := decodeLog(nil, first, val)
		if err != nil {
			if !errors.Is(err, errBlock) {
				t.Fatalf("error %v is not a malformed block", err)
			}
			return
		}
		if len(es) == 0 || es[0].seq != first {
			t.Fatalf("entries %v do not start at %d", es, first)
		}
		for i := 1; i < len(es); i++ {
			if es[i].seq <= es[i-1].seq {
				t.Fatalf("positions out of order: %v", es)
			}
		}
	})
}

// TestBlocks stores findings in groups large enough for several blocks,
// with duplicates among them, and reads them back every way: the log in
// windows, by id, attached to an incident, and after the store is
// opened again.
func TestBlocks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openDB(t, dir)
	s := newStore(t, db)
	var all []*protocol.Finding
	for round := range 3 {
		fs := batch(700)
		if round > 0 {
			// Resent findings of the previous round, among new ones.
			fs = append(fs[:300], append(slices.Clone(all[len(all)-50:]), fs[300:]...)...)
		}
		stored, dups, err := s.Append(ctx, fmt.Sprintf("a%d", round%2), fs)
		if err != nil {
			t.Fatal(err)
		}
		if want := 700; stored != want || (round > 0 && dups != 50) {
			t.Fatalf("round %d: stored %d, duplicates %d", round, stored, dups)
		}
		for _, f := range fs {
			if !slices.ContainsFunc(all, func(g *protocol.Finding) bool { return g.Id == f.Id }) {
				all = append(all, f)
			}
		}
	}
	// More than one finding per log entry, and entries past the value
	// threshold (in the value log).
	var entries, blocks int
	err := db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = logPrefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			entries++
			if it.Item().ValueSize() > 1<<10 {
				blocks++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if entries > len(all)/50 || blocks == 0 {
		t.Errorf("%d log entries (%d past 1 KiB) for %d findings", entries, blocks, len(all))
	}

	read := func(s *Store) []Record {
		t.Helper()
		recs, _, err := s.Read(ctx, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	recs := read(s)
	if len(recs) != len(all) {
		t.Fatalf("read %d findings, want %d", len(recs), len(all))
	}
	for i, r := range recs {
		if r.Finding.ID != all[i].Id {
			t.Fatalf("log record %d (offset %d) is %s, want %s", i, r.Seq, r.Finding.ID, all[i].Id)
		}
	}
	// Windows of the log starting inside blocks, in gaps left by
	// duplicates, and at their ends.
	for _, from := range []uint64{recs[0].Seq, recs[1].Seq, recs[299].Seq, recs[299].Seq + 1, recs[700].Seq, recs[len(recs)-1].Seq} {
		for _, limit := range []int{1, 3, 250} {
			got, next, err := s.Read(ctx, from, limit)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(recs, func(r Record) bool { return r.Seq >= from })
			want := recs[i:min(len(recs), i+limit)]
			if fmt.Sprint(seqsOf(got)) != fmt.Sprint(seqsOf(want)) {
				t.Fatalf("read %d from %d: %v, want %v", limit, from, seqsOf(got), seqsOf(want))
			}
			if next != want[len(want)-1].Seq+1 {
				t.Errorf("read %d from %d: next %d, want %d", limit, from, next, want[len(want)-1].Seq+1)
			}
		}
	}

	// By id, and attached to an incident.
	picked := []string{all[0].Id, all[1].Id, all[500].Id, all[len(all)-1].Id}
	err = db.Update(func(txn *badger.Txn) error {
		for _, id := range picked {
			if ok, err := s.Attach(txn, id, "inc1"); err != nil || !ok {
				return fmt.Errorf("attach %s: %v %v", id, ok, err)
			}
		}
		if ok, err := s.Attach(txn, picked[1], "inc2"); err != nil || ok {
			return fmt.Errorf("second attach of %s: %v %v", picked[1], ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, pf := range all {
		f, err := s.Get(ctx, pf.Id)
		if err != nil {
			t.Fatalf("get %s: %v", pf.Id, err)
		}
		want := ""
		if slices.Contains(picked, pf.Id) {
			want = "inc1"
		}
		if f.ID != pf.Id || f.Summary != pf.Summary || f.IncidentID != want {
			t.Fatalf("finding %d read back as %+v, incident %q", i, f, f.IncidentID)
		}
	}
	inc, _, err := s.List(ctx, Query{Incident: "inc1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(inc) != len(picked) || inc[0].ID != picked[3] || inc[3].ID != picked[0] {
		t.Errorf("incident inc1 lists %d findings", len(inc))
	}

	// Opened again: the same log, continued after its last position.
	db.Close()
	db = openDB(t, dir)
	defer db.Close()
	s = newStore(t, db)
	again := read(s)
	if len(again) != len(recs) || again[0].Finding.IncidentID != "inc1" || again[2].Finding.IncidentID != "" {
		t.Fatalf("after reopening: %d findings", len(again))
	}
	if _, _, err := s.Append(ctx, "a1", batch(1)); err != nil {
		t.Fatal(err)
	}
	if got := read(s); len(got) != len(recs)+1 || got[len(got)-1].Seq <= recs[len(recs)-1].Seq {
		t.Errorf("appended after reopening at %d, last before %d", got[len(got)-1].Seq, recs[len(recs)-1].Seq)
	}
	if _, err := s.Get(ctx, "01938a4e-0000-7000-8000-00000000ffff"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get of an unknown id: %v", err)
	}
}
