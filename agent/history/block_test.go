package history

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

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
	if len(s.segs) != 1 {
		t.Fatalf("%d segments, want 1", len(s.segs))
	}
	f, err := os.Open(s.segs[0].path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := scanRecords(f, s.segs[0].blocksEnd, func(_ int64, h recHeader, _ []byte) error {
		if h.events > blockEvents || time.Duration(h.last-h.first) >= blockSpan {
			t.Errorf("block %+v", h)
		}
		blocks++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
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
	// The badger history's blocks carry their index section; segments'
	// do not.
	w := newBlockWriter()
	evs := []ecs.Event{procEvent(1, "/usr/bin/cat"), procEvent(2, "/tmp/xmrig"), procEvent(3, "/usr/bin/cat")}
	for i := range evs {
		w.add(&evs[i])
	}
	v := legacyValue(w)
	b, err := parseBlock(v, true)
	if err != nil || len(b.events) != 3 || len(b.index) != 2 {
		t.Fatalf("parsed %+v, %v", b, err)
	}
	if b, err := parseBlock(w.value(nil), true); err != nil || len(b.events) != 3 || len(b.index) != 0 {
		t.Fatalf("parsed without an index: %+v, %v", b, err)
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
	f.Add(w.value(nil))
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
