package history

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// writeLegacy writes a badger history as older agents did: evs one entry
// per event with its JSON and an empty index entry per indexed value,
// blocks in blocks with their index entries.
func writeLegacy(t *testing.T, dir string, evs, blocks []ecs.Event) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	wb := db.NewWriteBatch()
	seq := uint32(0)
	for i := range evs {
		ev := &evs[i]
		val, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		seq++
		ek := eventKey(ev.Timestamp, seq)
		if err := wb.Set(ek, val); err != nil {
			t.Fatal(err)
		}
		for _, xk := range indexKeys(ev, ek) {
			if err := wb.Set(xk, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	w := newBlockWriter()
	var last time.Time
	emit := func() {
		if w.n == 0 {
			return
		}
		seq++
		bk := blockKey(w.first, last, seq, w.n)
		if err := wb.Set(bk, legacyValue(w)); err != nil {
			t.Fatal(err)
		}
		for _, x := range w.index {
			k := append(append(slices.Clone(blockIndexPrefix), x.prefix...), bk[len(blockPrefix):]...)
			if err := wb.Set(k, x.pos); err != nil {
				t.Fatal(err)
			}
		}
		w.reset()
	}
	for i := range blocks {
		if w.full(blocks[i].Timestamp) {
			emit()
		}
		w.add(&blocks[i])
		last = blocks[i].Timestamp
	}
	emit()
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// legacyValue is w's block as the badger history stored it: with an
// index section naming each of its index entries ("y/" keys) and the
// length of their values, for its sweeper.
func legacyValue(w *blockWriter) []byte {
	v := append([]byte(nil), blockMagic...)
	v = binary.AppendUvarint(v, uint64(len(w.index)))
	for _, x := range w.index {
		v = binary.AppendUvarint(v, uint64(len(blockIndexPrefix)+len(x.prefix)))
		v = append(append(v, blockIndexPrefix...), x.prefix...)
		v = binary.AppendUvarint(v, uint64(len(x.pos)))
	}
	v = binary.AppendUvarint(v, uint64(w.n))
	return append(v, w.events.Bytes()...)
}

func procEvents(from, to int) []ecs.Event {
	var out []ecs.Event
	for i := from; i < to; i++ {
		exe := "/usr/bin/cat"
		if i%10 == 0 {
			exe = "/tmp/xmrig"
		}
		out = append(out, procEvent(i, exe))
	}
	return out
}

// The badger history of an older agent, in both its layouts, is counted
// and searched (by scan and through its index) with the segments written
// since, never written to, and deleted whole once its newest event is
// past the age bound.
func TestLegacyReadAndDeletedByAge(t *testing.T) {
	root := t.TempDir()
	legacyDir := filepath.Join(root, "history")
	writeLegacy(t, legacyDir, procEvents(0, 60), procEvents(60, 100))
	now := t0.Add(200 * time.Second)
	opts := Options{MaxAge: 150 * time.Second, Now: func() time.Time { return now }, LegacyDir: legacyDir}
	s, err := Open(filepath.Join(root, "eventlog"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Events != 100 || !st.Oldest.Equal(t0) || !st.Newest.Equal(t0.Add(99*time.Second)) || st.Bytes <= 0 {
		t.Fatalf("the older history counted as %+v", st)
	}
	for _, ev := range procEvents(100, 150) {
		s.Add(ev)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Events != 150 || !st.Oldest.Equal(t0) || !st.Newest.Equal(t0.Add(149*time.Second)) {
		t.Fatalf("with segments: %+v", st)
	}
	got, st := search(t, s, `process.executable == "/tmp/xmrig"`, time.Time{})
	if len(got) != 15 || st.Index != "process.executable" || st.Scanned != 15 {
		t.Fatalf("indexed search over both: %d events, %+v", len(got), st)
	}
	inOrder(t, got)
	got, _ = search(t, s, `process.executable == "/tmp/xmrig"`, t0.Add(95*time.Second))
	if len(got) != 5 || !got[0].Timestamp.Equal(t0.Add(100*time.Second)) {
		t.Fatalf("indexed search since: %d events", len(got))
	}
	got, st = search(t, s, `process.command_line contains "--n 9"`, time.Time{})
	if len(got) != 11 || st.Scanned != 150 { // 9, 90 to 99
		t.Fatalf("scan over both: %d events, %+v", len(got), st)
	}
	inOrder(t, got)

	// Its newest event (t0+99 s) is inside the age bound: kept whole.
	if n, err := s.Sweep(); err != nil || n != 0 {
		t.Fatalf("sweep deleted %d, err %v", n, err)
	}
	now = t0.Add(250 * time.Second)
	if n, err := s.Sweep(); err != nil || n != 100 {
		t.Fatalf("sweep past its newest event deleted %d, err %v", n, err)
	}
	if _, err := os.Stat(legacyDir); !os.IsNotExist(err) {
		t.Fatalf("the older history is still there: %v", err)
	}
	if st := s.Stats(); st.Events != 50 || !st.Oldest.Equal(t0.Add(100*time.Second)) {
		t.Fatalf("after the sweep: %+v", st)
	}
	if got, _ := search(t, s, `process.name == "cat"`, time.Time{}); len(got) != 45 {
		t.Fatalf("search after the sweep: %d events", len(got))
	}
}

// Over the size bound the older history goes first, before any segment.
func TestLegacyDeletedFirstBySize(t *testing.T) {
	root := t.TempDir()
	legacyDir := filepath.Join(root, "history")
	writeLegacy(t, legacyDir, nil, procEvents(0, 100))
	opts := Options{Now: func() time.Time { return t0.Add(time.Hour) }, LegacyDir: legacyDir}
	s, err := Open(filepath.Join(root, "eventlog"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, ev := range procEvents(100, 150) {
		s.Add(ev)
	}
	s.Flush()
	st := s.Stats()
	s.opts.MaxBytes = st.Bytes - 1
	if n, err := s.Sweep(); err != nil || n != 100 {
		t.Fatalf("size sweep deleted %d, err %v", n, err)
	}
	if st := s.Stats(); st.Events != 50 || st.Segments != 1 {
		t.Fatalf("after the size sweep: %+v", st)
	}
}
