package history

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/cordon-edr/cordon/protocol/query"
)

// fileEvent is a file change with a path of its own, so that each event
// adds a key to the index.
func fileEvent(i int) ecs.Event {
	return ecs.Event{
		Timestamp: t0.Add(time.Duration(i) * time.Millisecond),
		Event:     ecs.Meta{Category: "file", Type: "change"},
		File:      &ecs.File{Path: fmt.Sprintf("/var/lib/app/%06d.db", i), Hash: &ecs.Hash{SHA256: fmt.Sprintf("%064x", i%7)}},
	}
}

func addAll(t testing.TB, s *Store, from, n int, event func(int) ecs.Event) {
	t.Helper()
	for i := from; i < from+n; i++ {
		for !s.Add(event(i)) {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if i%flushMax == flushMax-1 {
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
}

// The writer cuts segments at their size bound and seals each with its
// index; after a reopen every event is found through the index (whose
// directory then has many chunks) and by a scan, in time order.
func TestSegmentsCutSealedAndReopened(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Now: func() time.Time { return t0.Add(time.Hour) }}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.segBytes = 256 << 10
	const n = 12000
	addAll(t, s, 0, n, fileEvent)
	st := s.Stats()
	if st.Events != n || st.Segments < 4 {
		t.Fatalf("stats %+v, want %d events in several segments", st, n)
	}
	for _, g := range s.segs[:len(s.segs)-1] {
		if g.dirStart == 0 || g.size > s.segBytes+64<<10 {
			t.Errorf("segment %s: sealed %v, %d bytes", g.path, g.dirStart > 0, g.size)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st2 := s.Stats(); st2.Events != n || st2.Segments != st.Segments || st2.Bytes != dirSize(t, dir) {
		t.Fatalf("reopened: %+v, was %+v", st2, st)
	}
	for _, i := range []int{0, 1, 4999, 5000, n - 1} {
		got, st := search(t, s, fmt.Sprintf(`file.path == "/var/lib/app/%06d.db"`, i), time.Time{})
		if len(got) != 1 || st.Scanned != 1 || got[0].File.Path != fileEvent(i).File.Path {
			t.Errorf("path %d: %d events, %+v", i, len(got), st)
		}
	}
	got, st3 := search(t, s, `file.path in ("/nowhere", "/var/lib/app/000007.db", "/var/lib/app/011000.db")`, time.Time{})
	if len(got) != 2 || st3.Scanned != 2 {
		t.Errorf("two paths: %d events, %+v", len(got), st3)
	}
	got, st3 = search(t, s, fmt.Sprintf(`file.hash.sha256 == "%064x"`, 3), time.Time{})
	if len(got) != n/7 || st3.Scanned != n/7 {
		t.Errorf("hash: %d events (want %d), %+v", len(got), n/7, st3)
	}
	inOrder(t, got)
	got, _ = search(t, s, `file.path startswith "/var/lib/app/"`, t0.Add(time.Duration(n-100)*time.Millisecond))
	if len(got) != 100 {
		t.Errorf("scan since: %d events, want 100", len(got))
	}
	inOrder(t, got)
}

func inOrder(t *testing.T, evs []ecs.Event) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].Timestamp.Before(evs[i-1].Timestamp) {
			t.Fatalf("event %d out of time order", i)
		}
	}
}

// A segment the writer left without its footer (the agent was killed)
// keeps every whole record: the store reopens it, cuts a torn last
// record, rebuilds its index and seals it.
func TestSegmentRecoveredAfterKill(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
		want   int
	}{
		{"whole", func(*testing.T, string, int64) {}, 1500},
		{"torn last record", func(t *testing.T, path string, size int64) {
			if err := os.Truncate(path, size-10); err != nil {
				t.Fatal(err)
			}
		}, 1500 - (1500 % blockEvents)},
		{"garbage after", func(t *testing.T, path string, _ int64) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("\x00\x00\x01\x00garbage that is no record"))
			f.Close()
		}, 1500},
		{"cut in the header", func(t *testing.T, path string, _ int64) {
			if err := os.Truncate(path, 3); err != nil {
				t.Fatal(err)
			}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			// One write of 1500 events 1 ms apart: blocks of 512, 512
			// and 476, all in one segment, left unsealed as a kill
			// leaves it.
			addAll(t, s, 0, 1500, fileEvent)
			g := s.segs[0]
			g.f.Close()
			tc.damage(t, g.path, g.blocksEnd)

			s2, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if st := s2.Stats(); st.Events != int64(tc.want) {
				t.Fatalf("recovered %d events, want %d", st.Events, tc.want)
			}
			if tc.want == 0 {
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Fatalf("an empty segment was kept: %v", ents)
				}
				return
			}
			if g := s2.segs[0]; g.dirStart == 0 {
				t.Fatal("the recovered segment was not sealed")
			}
			got, st := search(t, s2, `file.path == "/var/lib/app/000100.db"`, time.Time{})
			if len(got) != 1 || st.Index == "" {
				t.Fatalf("indexed search after recovery: %d events, %+v", len(got), st)
			}
			got, _ = search(t, s2, `file.path startswith "/var/"`, time.Time{})
			if len(got) != tc.want {
				t.Fatalf("scan after recovery: %d events", len(got))
			}
			// The store writes on into a new segment.
			addAll(t, s2, 1500, 10, fileEvent)
			if st := s2.Stats(); st.Events != int64(tc.want+10) || st.Segments != 2 {
				t.Fatalf("after more writes: %+v", st)
			}
		})
	}
}

// Damage to a sealed segment is an error for what it touches, never a
// panic: a damaged index falls back to a scan, a block whose checksum
// fails is skipped, and everything else answers as before.
func TestDamagedSegmentsSearched(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.segBytes = 256 << 10
	addAll(t, s, 0, 12000, fileEvent)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.segs) < 3 {
		t.Fatalf("%d segments", len(s.segs))
	}
	first, second := s.segs[0], s.segs[1]
	// The first segment's directory, and a block in the middle of the
	// second.
	f, err := os.Open(second.path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	var lost int
	scanRecords(f, second.blocksEnd, func(off int64, h recHeader, _ []byte) error {
		offs = append(offs, off)
		if len(offs) == 2 {
			lost = h.events
		}
		return nil
	})
	f.Close()
	s.Close()
	if len(offs) < 3 {
		t.Fatalf("%d blocks in the second segment, want 3 or more", len(offs))
	}
	flip(t, first.path, first.dirStart+1)
	flip(t, second.path, offs[1]+recHeaderLen+5)

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	i := first.events / 2 // in the first segment
	got, _ := search(t, s, fmt.Sprintf(`file.path == "/var/lib/app/%06d.db"`, i), time.Time{})
	if len(got) != 1 {
		t.Errorf("event in the segment with a damaged index: %d found", len(got))
	}
	got, _ = search(t, s, `file.path startswith "/var/"`, time.Time{})
	if len(got) != 12000-lost {
		t.Errorf("scan found %d, want %d (all but the damaged block's)", len(got), 12000-lost)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// Searches run while the writer writes, cuts and sweeps segments, and
// the race detector sees no unguarded state.
func TestSearchWhileWriting(t *testing.T) {
	now := atomic.Int64{}
	now.Store(t0.UnixNano())
	s := openTest(t, Options{MaxAge: 2 * time.Second, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	s.segBytes = 32 << 10
	s.sweepEvery = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.Run(ctx)
	}()
	q, err := query.Parse(`file.hash.sha256 == "` + fmt.Sprintf("%064x", 0) + `"`)
	if err != nil {
		t.Fatal(err)
	}
	scan, _ := query.Parse(`file.path startswith "/var/"`)
	for round := range 20 {
		for i := round * 500; i < (round+1)*500; i++ {
			ev := fileEvent(i)
			ev.Timestamp = time.Unix(0, now.Load())
			for !s.Add(ev) {
				time.Sleep(time.Millisecond)
			}
			now.Add(int64(time.Millisecond))
		}
		for _, qq := range []*query.Query{q, scan} {
			if _, err := s.Search(context.Background(), qq, time.Time{}, func(ecs.Event) bool { return true }); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(30 * time.Millisecond) // a sweep or two
	}
	cancel()
	wg.Wait()
	if st := s.Stats(); st.Events == 0 || st.Oldest.Before(time.Unix(0, now.Load()).Add(-3*time.Second)) {
		t.Fatalf("after the run: %+v", st)
	}
}

// Segment files are read whatever they hold: a fuzzed file is either
// opened (recovered, sealed) or skipped, and searches over it end
// without panics.
func FuzzSegmentFile(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		f.Fatal(err)
	}
	addAll(f, s, 0, 40, fileEvent)
	path := s.segs[0].path
	unsealed, _ := os.ReadFile(path)
	s.Close()
	sealed, _ := os.ReadFile(path)
	f.Add(unsealed)
	f.Add(sealed)
	f.Add(sealed[:len(sealed)-trailerLen+4])
	f.Add(append([]byte(nil), segMagic...))
	qi, _ := query.Parse(`file.path == "/var/lib/app/000003.db"`)
	qs, _ := query.Parse(`file.path startswith "/var/"`)
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, q := range []*query.Query{qi, qs} {
			s.Search(context.Background(), q, time.Time{}, func(ecs.Event) bool { return true })
		}
		addAll(t, s, 0, 3, fileEvent)
	})
}
