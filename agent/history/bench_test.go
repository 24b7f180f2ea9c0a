package history

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/cordon-edr/cordon/protocol/query"
)

// benchEvents is the size of the synthetic history the benchmarks read:
// a busy host's process, file and network events.
const benchEvents = 100000

var (
	benchOnce  sync.Once
	benchStore *Store
	benchDir   string
)

// syntheticEvent is event i of a mix of 50% process starts, 30% file
// changes and 20% connections, one every 100 ms; one in 10,000 is a miner.
func syntheticEvent(i int) ecs.Event {
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 100 * time.Millisecond)
	exe := fmt.Sprintf("/usr/bin/tool%d", i%200)
	if i%10000 == 5000 {
		exe = "/tmp/.cache/xmrig"
	}
	p := &ecs.Process{PID: 1000 + i%30000, Executable: exe, Name: exe[len("/usr/bin/"):],
		CommandLine: fmt.Sprintf("%s --job %d --verbose", exe, i), User: ecs.User{ID: "1000", Name: "app"},
		Parent: &ecs.Parent{PID: 1, Executable: "/usr/lib/systemd/systemd", Name: "systemd"}}
	switch i % 10 {
	case 0, 1, 2:
		size := int64(i % 65536)
		return ecs.Event{Timestamp: ts, Event: ecs.Meta{Category: "file", Type: "change"}, Process: p,
			File: &ecs.File{Path: fmt.Sprintf("/var/lib/app/data/%d.db", i%5000), Name: "x.db", Size: &size,
				Hash: &ecs.Hash{SHA256: fmt.Sprintf("%064x", i%20000)}}}
	case 3, 4:
		return ecs.Event{Timestamp: ts, Event: ecs.Meta{Category: "network", Type: "connection"}, Process: p,
			Source:      &ecs.Endpoint{IP: "10.0.0.5", Port: 40000 + i%20000},
			Destination: &ecs.Endpoint{IP: fmt.Sprintf("198.51.100.%d", i%250), Port: 443},
			Network:     &ecs.Network{Transport: "tcp", Type: "ipv4", Direction: "egress"}}
	}
	return ecs.Event{Timestamp: ts, Event: ecs.Meta{Category: "process", Type: "start"}, Process: p}
}

func benchHistory(b *testing.B) *Store {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "history-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchDir = dir
		s, err := Open(dir, Options{MaxAge: 1 << 62, Queue: benchEvents, Now: func() time.Time { return time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC) }})
		if err != nil {
			b.Fatal(err)
		}
		for i := range benchEvents {
			s.Add(syntheticEvent(i))
			if i%flushMax == flushMax-1 {
				if err := s.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := s.Flush(); err != nil {
			b.Fatal(err)
		}
		benchStore = s
	})
	return benchStore
}

func benchSearch(b *testing.B, q string, want int) {
	s := benchHistory(b)
	qq, err := query.Parse(q)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		n := 0
		st, err := s.Search(context.Background(), qq, time.Time{}, func(ecs.Event) bool { n++; return true })
		if err != nil || (want >= 0 && n != want) {
			b.Fatalf("%d matches (want %d), err %v", n, want, err)
		}
		b.ReportMetric(float64(st.Scanned), "events/op")
	}
}

// BenchmarkSearchIndexed reads the 10 miner events through the
// executable index.
func BenchmarkSearchIndexed(b *testing.B) {
	benchSearch(b, `process.executable == "/tmp/.cache/xmrig"`, benchEvents/10000)
}

// BenchmarkSearchScan tests every event: a substring of the command line
// has no index.
func BenchmarkSearchScan(b *testing.B) {
	benchSearch(b, `process.command_line contains "xmrig" and user.name != "root"`, benchEvents/10000)
}

// BenchmarkSearchScanCIDR tests every event against a CIDR.
func BenchmarkSearchScanCIDR(b *testing.B) {
	benchSearch(b, `destination.ip in 198.51.100.0/28`, -1)
}

// BenchmarkReadAll is the baseline: reading and decoding every event
// without a query (what any scan costs at least).
func BenchmarkReadAll(b *testing.B) {
	benchSearch(b, `not event.category == "none"`, benchEvents)
}

// BenchmarkAdd is the writer's cost per event: queued, then written in
// batches of flushMax events as Run does.
func BenchmarkAdd(b *testing.B) { benchAdd(b, flushMax, syntheticEvent) }

// BenchmarkAddOnePerWrite is the baseline: one badger write per event.
func BenchmarkAddOnePerWrite(b *testing.B) { benchAdd(b, 1, syntheticEvent) }

// benchAdd writes event(i) for each i, flushing every batch events.
func benchAdd(b *testing.B, batch int, event func(int) ecs.Event) {
	s, err := Open(b.TempDir(), Options{Queue: 2 * flushMax})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	for i := range b.N {
		s.Add(event(i))
		if i%batch == batch-1 {
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAddFull is the writer's cost per event once the history is at
// its size bound, as on a host that has run for days: each write is
// followed by a sweep of the oldest events, as in Run. The store is
// filled to fullBytes first (not timed). It also reports the bytes the
// process wrote to disk per event (Linux; the I/O accounting of the
// whole process, so it runs alone).
func BenchmarkAddFull(b *testing.B) {
	const fullBytes = 32 << 20
	s, err := Open(b.TempDir(), Options{MaxAge: 1 << 62, MaxBytes: fullBytes, Queue: 2 * flushMax})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	i, full := 0, false
	add := func() {
		s.Add(syntheticEvent(i))
		i++
		if i%flushMax == 0 {
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			if s.over() {
				full = true
				s.sweepNow()
			}
		}
	}
	for !full {
		add()
	}
	w0, werr := diskWrites()
	b.ResetTimer()
	for range b.N {
		add()
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if w1, err := diskWrites(); err == nil && werr == nil {
		b.ReportMetric(float64(w1-w0)/float64(b.N), "disk-B/op")
	}
}

// diskWrites is the bytes this process caused to be written to storage.
func diskWrites() (int64, error) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no write_bytes in /proc/self/io")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchStore != nil {
		benchStore.Close()
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}
