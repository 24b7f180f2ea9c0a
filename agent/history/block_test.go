package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// writeOldLayout writes evs as agents before blocks did: one entry per
// event with its JSON, and an empty index entry per indexed value.
func writeOldLayout(t *testing.T, s *Store, evs []ecs.Event) {
	t.Helper()
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i := range evs {
		ev := &evs[i]
		val, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		ek := eventKey(ev.Timestamp, s.seq.Add(1))
		if err := wb.Set(ek, val); err != nil {
			t.Fatal(err)
		}
		for _, xk := range indexKeys(ev, ek) {
			if err := wb.Set(xk, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
}

// A history written by an agent before blocks is counted, searched (by
// scan and through its index, alongside newer blocks) and swept.
func TestOldLayoutReadAndSwept(t *testing.T) {
	dir := t.TempDir()
	now := t0.Add(200 * time.Second)
	opts := Options{MaxAge: 150 * time.Second, Now: func() time.Time { return now }}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var old []ecs.Event
	for i := range 100 {
		exe := "/usr/bin/cat"
		if i%10 == 0 {
			exe = "/tmp/xmrig"
		}
		old = append(old, procEvent(i, exe))
	}
	writeOldLayout(t, s, old)
	s.Close()

	s, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Events != 100 || !st.Oldest.Equal(t0) || !st.Newest.Equal(t0.Add(99*time.Second)) {
		t.Fatalf("old layout counted as %+v", st)
	}
	for i := 100; i < 150; i++ {
		exe := "/usr/bin/cat"
		if i%10 == 0 {
			exe = "/tmp/xmrig"
		}
		s.Add(procEvent(i, exe))
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Events != 150 || !st.Newest.Equal(t0.Add(149*time.Second)) {
		t.Fatalf("with new blocks: %+v", st)
	}
	got, st := search(t, s, `process.executable == "/tmp/xmrig"`, time.Time{})
	if len(got) != 15 || st.Index != "process.executable" || st.Scanned != 15 {
		t.Fatalf("indexed search over both layouts: %d events, %+v", len(got), st)
	}
	got, _ = search(t, s, `process.executable == "/tmp/xmrig"`, t0.Add(95*time.Second))
	if len(got) != 5 || !got[0].Timestamp.Equal(t0.Add(100*time.Second)) {
		t.Fatalf("indexed search since: %d events", len(got))
	}
	got, st = search(t, s, `process.command_line contains "--n 9"`, time.Time{})
	if len(got) != 11 || st.Scanned != 150 { // 9, 90 to 99
		t.Fatalf("scan over both layouts: %d events, %+v", len(got), st)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Timestamp.Before(got[i-1].Timestamp) {
			t.Fatal("scan not in time order")
		}
	}

	// The age bound (150 s before t0+200 s) takes the first 50 old
	// events, then the size bound the rest of the old layout first.
	if n, err := s.Sweep(); err != nil || n != 50 {
		t.Fatalf("age sweep deleted %d, err %v", n, err)
	}
	if st := s.Stats(); st.Events != 100 || !st.Oldest.Equal(t0.Add(50*time.Second)) {
		t.Fatalf("after the age sweep: %+v", st)
	}
	s.opts.MaxBytes = s.Stats().Bytes / 3
	if _, err := s.Sweep(); err != nil {
		t.Fatal(err)
	}
	st2 := s.Stats()
	got, _ = search(t, s, `process.command_line contains "--n"`, time.Time{})
	if int64(len(got)) != st2.Events || st2.Events == 0 || st2.Bytes > s.opts.MaxBytes || !got[0].Timestamp.Equal(st2.Oldest) || !st2.Newest.Equal(t0.Add(149*time.Second)) {
		t.Fatalf("after the size sweep: %d found, %+v", len(got), st2)
	}
	// Reopened, the counts are what the sweeps left.
	s.Close()
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Events != st2.Events || st.Bytes != st2.Bytes || !st.Oldest.Equal(st2.Oldest) {
		t.Fatalf("reopened: %+v, want %+v", st, st2)
	}
}

// Events written together are cut into blocks by count and by time span;
// each block's events come back, in time order, through scans, the index
// and since.
func TestBlocksCutByCountAndSpan(t *testing.T) {
	s := openTest(t, Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	const n = 3*blockEvents + 10
	base := t0
	for i := range n {
		ev := procEvent(0, "/usr/bin/cat")
		ev.Timestamp = base.Add(time.Duration(n-i) * time.Millisecond) // written out of order
		ev.Process.CommandLine = fmt.Sprintf("cat %d", n-i)
		if i == 7 {
			ev.Process.Executable = "/tmp/xmrig"
		}
		s.Add(ev)
	}
	late := procEvent(0, "/tmp/xmrig")
	late.Timestamp = base.Add(5 * time.Second) // beyond the span: a block of its own
	s.Add(late)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	blocks := 0
	s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: blockPrefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			b, ok := parseBlockKey(it.Item().Key())
			if !ok || b.events > blockEvents || b.last.Sub(b.first) >= blockSpan {
				t.Errorf("block %+v", b)
			}
			blocks++
		}
		return nil
	})
	if blocks != 5 {
		t.Errorf("%d blocks, want 5", blocks)
	}
	got, _ := search(t, s, `process.command_line startswith "cat " or process.command_line contains "xmrig"`, time.Time{})
	if len(got) != n+1 {
		t.Fatalf("scan found %d, want %d", len(got), n+1)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Timestamp.Before(got[i-1].Timestamp) {
			t.Fatalf("event %d out of time order", i)
		}
	}
	got, st := search(t, s, `process.executable == "/tmp/xmrig"`, time.Time{})
	if len(got) != 2 || st.Scanned != 2 || got[0].Process.CommandLine != fmt.Sprintf("cat %d", n-7) {
		t.Fatalf("indexed: %d events, %+v", len(got), st)
	}
	got, _ = search(t, s, `process.command_line startswith "cat " or process.command_line contains "xmrig"`, base.Add(time.Duration(n-99)*time.Millisecond))
	if len(got) != 100+1 { // the last 100 of the first write, and the late one
		t.Fatalf("since: %d events, want 101", len(got))
	}
}

// A block's encoding reads back what was written; damaged blocks are
// errors, never panics.
func TestBlockRoundTrip(t *testing.T) {
	w := newBlockWriter()
	evs := []ecs.Event{procEvent(1, "/usr/bin/cat"), procEvent(2, "/tmp/xmrig"), procEvent(3, "/usr/bin/cat")}
	for i := range evs {
		w.add(&evs[i])
	}
	v := w.value()
	b, err := parseBlock(v, true)
	if err != nil || len(b.events) != 3 || len(b.index) != 2 {
		t.Fatalf("parsed %+v, %v", b, err)
	}
	for i, be := range b.events {
		want := appendEvent(nil, &evs[i])
		if !bytes.Equal(be.data, want) || be.time != evs[i].Timestamp.UnixNano() {
			t.Errorf("event %d: %x", i, be.data)
		}
	}
	if pos, err := parsePositions(w.index[0].pos); err != nil || len(pos) != 2 || pos[0] != 0 || pos[1] != 2 {
		t.Errorf("positions of %q: %v %v", w.index[0].prefix, pos, err)
	}
	for i := range v {
		if _, err := parseBlock(v[:i], true); err == nil {
			t.Fatalf("a block cut at %d of %d bytes parsed", i, len(v))
		}
	}
}

func FuzzParseBlock(f *testing.F) {
	w := newBlockWriter()
	ev := procEvent(1, "/usr/bin/cat")
	w.add(&ev)
	f.Add(w.value())
	f.Add([]byte("cb\x01\x00\x00"))
	f.Add([]byte("cb\x01\x01\x03y/x\x05\x01"))
	f.Fuzz(func(t *testing.T, v []byte) {
		b, err := parseBlock(v, true)
		if err != nil {
			return
		}
		for _, x := range b.index {
			_ = x.prefix
		}
		_, _ = parsePositions(v)
	})
}
