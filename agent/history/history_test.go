package history

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/cordon-edr/cordon/protocol/query"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func procEvent(i int, exe string) ecs.Event {
	return ecs.Event{
		Timestamp: t0.Add(time.Duration(i) * time.Second),
		Event:     ecs.Meta{Category: "process", Type: "start"},
		Process:   &ecs.Process{PID: 1000 + i, Executable: exe, Name: exe[len(exe)-3:], CommandLine: fmt.Sprintf("%s --n %d", exe, i)},
	}
}

func search(t *testing.T, s *Store, q string, since time.Time) ([]ecs.Event, SearchStats) {
	t.Helper()
	qq, err := query.Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	var out []ecs.Event
	st, err := s.Search(context.Background(), qq, since, func(ev ecs.Event) bool { out = append(out, ev); return true })
	if err != nil {
		t.Fatal(err)
	}
	return out, st
}

func TestSearchIndexAndScan(t *testing.T) {
	s := openTest(t, Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	for i := range 100 {
		exe := "/usr/bin/cat"
		if i%10 == 0 {
			exe = "/tmp/xmrig"
		}
		s.Add(procEvent(i, exe))
	}
	s.Add(ecs.Event{Timestamp: t0.Add(50 * time.Second), Event: ecs.Meta{Category: "network", Type: "connection"},
		Destination: &ecs.Endpoint{IP: "::ffff:203.0.113.7", Port: 443}})
	s.Add(ecs.Event{Timestamp: t0.Add(51 * time.Second), Event: ecs.Meta{Category: "file", Type: "creation"},
		File: &ecs.File{Path: "/srv/a/marker", Hash: &ecs.Hash{SHA256: "abc"}}})
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Events != 102 || st.Bytes <= 0 || !st.Oldest.Equal(t0) {
		t.Fatalf("stats = %+v", st)
	}

	got, st := search(t, s, `process.executable == "/tmp/xmrig"`, time.Time{})
	if len(got) != 10 || st.Index != "process.executable" || st.Scanned != 10 {
		t.Fatalf("indexed search: %d events, %+v", len(got), st)
	}
	if !slices.IsSortedFunc(got, func(a, b ecs.Event) int { return a.Timestamp.Compare(b.Timestamp) }) {
		t.Error("events not in time order")
	}
	got, _ = search(t, s, `process.executable == "/tmp/xmrig"`, t0.Add(45*time.Second))
	if len(got) != 5 || !got[0].Timestamp.Equal(t0.Add(50*time.Second)) {
		t.Fatalf("since: %d events, first %v", len(got), got[0].Timestamp)
	}
	got, st = search(t, s, `process.command_line endswith "--n 7" or process.command_line contains "--n 7"`, time.Time{})
	if len(got) != 11 || st.Index != "" || st.Scanned != 102 { // 7 and 70 to 79
		t.Fatalf("scan: %d events, %+v", len(got), st)
	}
	got, st = search(t, s, `destination.ip == 203.0.113.7`, time.Time{})
	if len(got) != 1 || st.Index != "destination.ip" {
		t.Fatalf("address index: %d events, %+v", len(got), st)
	}
	got, st = search(t, s, `file.hash.sha256 == "abc" and file.path startswith "/srv/"`, time.Time{})
	if len(got) != 1 || st.Index != "file.hash.sha256" {
		t.Fatalf("hash index: %d events, %+v", len(got), st)
	}
}

func TestSearchStopsAtBudget(t *testing.T) {
	s := openTest(t, Options{})
	for i := range 50 {
		s.Add(procEvent(i, "/usr/bin/cat"))
	}
	s.Flush()
	q, _ := query.Parse(`process.name == "cat"`)
	n := 0
	if _, err := s.Search(context.Background(), q, time.Time{}, func(ecs.Event) bool { n++; return n < 5 }); err != nil || n != 5 {
		t.Fatalf("stopped after %d events, err %v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Search(ctx, q, time.Time{}, func(ecs.Event) bool { return true }); err == nil {
		t.Fatal("a cancelled search returned no error")
	}
}

func TestSweepByAgeAndSize(t *testing.T) {
	now := t0.Add(100 * time.Second)
	s := openTest(t, Options{MaxAge: 60 * time.Second, Now: func() time.Time { return now }})
	s.segSpan = int64(10 * time.Second) // segments of 10 events, deleted whole
	for i := range 100 {
		s.Add(procEvent(i, "/usr/bin/cat"))
	}
	s.Flush()
	n, err := s.Sweep()
	if err != nil || n != 40 {
		t.Fatalf("age sweep deleted %d, err %v", n, err)
	}
	st := s.Stats()
	if st.Events != 60 || !st.Oldest.Equal(t0.Add(40*time.Second)) {
		t.Fatalf("after the age sweep: %+v", st)
	}
	// Index entries go with their events.
	got, _ := search(t, s, `process.executable == "/usr/bin/cat"`, time.Time{})
	if len(got) != 60 {
		t.Fatalf("index still finds %d events", len(got))
	}

	// Size: allow about half of what is held; the oldest go first.
	s.opts.MaxBytes = st.Bytes / 2
	if _, err := s.Sweep(); err != nil {
		t.Fatal(err)
	}
	st2 := s.Stats()
	if st2.Bytes > s.opts.MaxBytes || st2.Events != 30 || st2.Segments != 3 || !st2.Newest.Equal(t0.Add(99*time.Second)) {
		t.Fatalf("after the size sweep: %+v (bound %d)", st2, s.opts.MaxBytes)
	}
	got, _ = search(t, s, `process.name == "cat"`, time.Time{})
	if int64(len(got)) != st2.Events || !got[0].Timestamp.Equal(st2.Oldest) {
		t.Fatalf("search sees %d events from %v, stats %+v", len(got), got[0].Timestamp, st2)
	}
}

// A segment that cannot be read (here a folder where a file should be)
// is left where it is, and deleted once the sweep deletes a newer one.
func TestUnreadableSegmentSweptAfterNewerOnes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, segName(0))
	if err := os.Mkdir(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(100 * time.Second)
	s, err := Open(dir, Options{MaxAge: 60 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("a segment it cannot read stopped the history: %v", err)
	}
	defer s.Close()
	s.segSpan = int64(10 * time.Second)
	for i := range 30 {
		s.Add(procEvent(70+i, "/usr/bin/cat")) // all within the age bound
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sweep(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bad); err != nil {
		t.Fatalf("deleted before any newer segment went: %v", err)
	}
	now = now.Add(40 * time.Second) // the first segment of events ages out
	n, err := s.Sweep()
	if err != nil || n != 10 {
		t.Fatalf("sweep deleted %d events, err %v", n, err)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the unreadable segment is still there once a newer one was deleted: %v", err)
	}
	if st := s.Stats(); st.Events != 20 {
		t.Fatalf("after the sweep: %+v", st)
	}
}

func TestReopenCounts(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		s.Add(procEvent(i, "/usr/bin/cat"))
	}
	s.Flush()
	want := s.Stats()
	s.Close()
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := s.Stats()
	if got.Events != want.Events || !got.Oldest.Equal(want.Oldest) || !got.Newest.Equal(want.Newest) {
		t.Fatalf("reopened: %+v, want %+v", got, want)
	}
	// Closing sealed the segment: its size now counts its index.
	if got.Bytes <= want.Bytes || got.Bytes != dirSize(t, dir) {
		t.Fatalf("reopened with %d bytes, %d before, %d on disk", got.Bytes, want.Bytes, dirSize(t, dir))
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func TestAddNeverBlocks(t *testing.T) {
	s := openTest(t, Options{Queue: 4})
	for i := range 10 {
		s.Add(procEvent(i, "/usr/bin/cat"))
	}
	if st := s.Stats(); st.Dropped != 6 {
		t.Fatalf("dropped %d, want 6", st.Dropped)
	}
}

func TestRunWritesAndStops(t *testing.T) {
	s := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	for i := range 10 {
		s.Add(procEvent(i, "/usr/bin/cat"))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Events != 10 {
		t.Fatalf("held %d events after Run stopped", st.Events)
	}
}

// The writer writes on its timer without waiting for a full batch or for
// the end, and writes what is queued when it stops: every event added is
// then found, through the index and by a scan, also after a reopen.
func TestRunFlushesOnTimerAndClose(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	s.Add(procEvent(0, "/tmp/xmrig"))
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().Events != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a lone event was not written by the writer's timer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	const n = 3*flushMax + 17
	for i := 1; i < n; i++ {
		exe := "/usr/bin/cat"
		if i%100 == 0 {
			exe = "/tmp/xmrig"
		}
		for !s.Add(procEvent(i, exe)) {
			time.Sleep(time.Millisecond) // a full queue drops; this test wants them all
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Events != n {
		t.Fatalf("%d events held after Run stopped and a reopen, want %d", st.Events, n)
	}
	if got, st := search(t, s, `process.executable == "/tmp/xmrig"`, time.Time{}); len(got) != n/100+1 || st.Index == "" {
		t.Errorf("indexed search found %d (index %q), want %d", len(got), st.Index, n/100+1)
	}
	if got, _ := search(t, s, `process.command_line contains "--n"`, time.Time{}); len(got) != n {
		t.Errorf("scan found %d, want %d", len(got), n)
	}
}

// Under the reserve the history writes nothing, counts what it skipped
// and says the disk is low; with room again it writes.
func TestDiskReserveSkipsWrites(t *testing.T) {
	var free uint64 = 100 << 20
	s := openTest(t, Options{
		Now:       func() time.Time { return t0.Add(time.Hour) },
		FreeSpace: func() (uint64, error) { return free, nil },
		Reserve:   10 << 20,
	})
	add := func(from, n int) {
		t.Helper()
		for i := range n {
			s.Add(procEvent(from+i, "/usr/bin/cat"))
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	add(0, 5)
	free = 10<<20 - 1
	add(5, 7)
	st := s.Stats()
	if st.Events != 5 || st.SkippedDiskFull != 7 || !st.DiskLow || st.FreeBytes != 10<<20-1 || st.Dropped != 0 {
		t.Fatalf("under the reserve: %+v, want 5 events, 7 skipped, disk low", st)
	}
	if n, err := s.Sweep(); err != nil || n != 0 {
		t.Fatalf("sweep under the reserve: %d, %v", n, err)
	}
	free = 10 << 20
	add(12, 3)
	st = s.Stats()
	if st.Events != 8 || st.SkippedDiskFull != 7 || st.DiskLow {
		t.Fatalf("with room again: %+v, want 8 events, 7 skipped", st)
	}
	got, _ := search(t, s, `process.executable == "/usr/bin/cat"`, time.Time{})
	if len(got) != 8 {
		t.Fatalf("%d events found, want 8", len(got))
	}
}
