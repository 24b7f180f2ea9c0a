package hunter

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/agent/history"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// The 72-hour history: a busy server's events at histRate per second,
// spread over histSpan and ending when the fill starts.
// CORDON_BENCH_HUNT_SPAN (at least 1h) fills less, for a quicker run:
// with 6h a twelfth of the events, and the hunts reach back 1 and 6
// hours.
var (
	histSpan    = 72 * time.Hour
	histN       int
	histSpanErr error
)

func init() {
	if v := os.Getenv("CORDON_BENCH_HUNT_SPAN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Hour {
			histSpanErr = fmt.Errorf("CORDON_BENCH_HUNT_SPAN=%q: want a duration of at least 1h, such as 6h", v)
		} else {
			histSpan = d
		}
	}
	histN = int(histSpan/time.Second) * histRate
}

const (
	histRate = 3
	// A marker (miner process, its dropped file, its pool connection) every
	// markerEvery events: about 26 of each over 72 hours.
	markerEvery = 30000
)

const (
	markerExe  = "/tmp/.cache/xmrig"
	markerHash = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
	markerIP   = "203.0.113.66"
)

var (
	histOnce  sync.Once
	histStore *history.Store
	histDir   string
	histEnd   time.Time
	histErr   error
	histFill  time.Duration
	histStats sync.Once
)

// Pools of values drawn from for the synthetic events: a web and database
// server's daemons, cron jobs, shells and package tools.
var (
	benchExes = func() []string {
		base := []string{"/usr/sbin/nginx", "/usr/bin/php-fpm8.2", "/usr/lib/postgresql/16/bin/postgres", "/usr/bin/bash",
			"/usr/bin/sh", "/usr/bin/python3", "/usr/bin/curl", "/usr/bin/git", "/usr/sbin/cron", "/usr/bin/logrotate",
			"/usr/bin/gzip", "/usr/bin/tar", "/usr/bin/ls", "/usr/bin/cat", "/usr/bin/grep", "/usr/bin/awk", "/usr/bin/sed",
			"/usr/lib/systemd/systemd-journald", "/usr/sbin/sshd", "/usr/bin/sudo", "/usr/bin/node", "/usr/bin/java"}
		for i := range 180 {
			base = append(base, fmt.Sprintf("/opt/app/bin/worker-%03d", i))
		}
		return base
	}()
	benchUsers   = []ecs.User{{ID: "0", Name: "root"}, {ID: "33", Name: "www-data"}, {ID: "112", Name: "postgres"}, {ID: "1000", Name: "deploy"}, {ID: "1001", Name: "app"}}
	benchParents = []*ecs.Parent{{PID: 1, Executable: "/usr/lib/systemd/systemd", Name: "systemd"}, {PID: 812, Executable: "/usr/sbin/cron", Name: "cron"},
		{PID: 1204, Executable: "/usr/sbin/sshd", Name: "sshd"}, {PID: 2210, Executable: "/usr/bin/bash", Name: "bash"}}
	benchDirs = []string{"/var/www/html/uploads", "/var/lib/postgresql/16/main/base", "/var/log/nginx", "/etc", "/home/deploy/app/releases", "/tmp"}
)

// histEvent is event i of the 72-hour history ending at end: 45% process
// starts, 35% file changes (two in three hashed), 20% connections.
func histEvent(r *rand.Rand, i int, end time.Time) ecs.Event {
	step := histSpan / time.Duration(histN)
	ts := end.Add(-histSpan + time.Duration(i)*step + time.Duration(r.Int64N(int64(step))))
	exe := benchExes[r.IntN(len(benchExes))]
	user := benchUsers[r.IntN(len(benchUsers))]
	marker := i%markerEvery == markerEvery/2
	if marker {
		exe, user = markerExe, ecs.User{ID: "33", Name: "www-data"}
	}
	name := exe[lastSlash(exe)+1:]
	p := &ecs.Process{PID: 2000 + r.IntN(60000), Executable: exe, Name: name, User: user,
		CommandLine:      fmt.Sprintf("%s --worker %d --config /etc/%s.conf", exe, r.IntN(64), name),
		WorkingDirectory: "/", Parent: benchParents[r.IntN(len(benchParents))]}
	p.Args = []string{exe, "--worker", fmt.Sprint(r.IntN(64))}
	switch k := r.IntN(100); {
	case k < 35 || marker && i%3 == 0:
		dir := benchDirs[r.IntN(len(benchDirs))]
		size := r.Int64N(1 << 20)
		f := &ecs.File{Path: fmt.Sprintf("%s/f%05d.dat", dir, r.IntN(20000)), Directory: dir, Type: "file", Size: &size, Owner: user.Name}
		f.Name = f.Path[lastSlash(f.Path)+1:]
		if k%3 != 0 || marker {
			f.Hash = &ecs.Hash{SHA256: fmt.Sprintf("%016x%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())}
		}
		if marker {
			f.Path, f.Name, f.Directory, f.Hash.SHA256 = "/var/www/html/uploads/.x.bin", ".x.bin", "/var/www/html/uploads", markerHash
		}
		return ecs.Event{Timestamp: ts, Event: ecs.Meta{Category: "file", Type: "change", Module: "fanotify"}, Process: p, File: f}
	case k < 55 || marker && i%3 == 1:
		dst := fmt.Sprintf("10.%d.%d.%d", r.IntN(4), r.IntN(256), 1+r.IntN(254))
		if r.IntN(4) == 0 {
			dst = fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(190), r.IntN(256), r.IntN(256), 1+r.IntN(254))
		}
		if marker {
			dst = markerIP
		}
		return ecs.Event{Timestamp: ts, Event: ecs.Meta{Category: "network", Type: "connection", Module: "ebpf"}, Process: p,
			Source:      &ecs.Endpoint{IP: "10.0.0.5", Port: 32768 + r.IntN(28000)},
			Destination: &ecs.Endpoint{IP: dst, Port: []int{443, 5432, 80, 53, 6379}[r.IntN(5)]},
			Network:     &ecs.Network{Transport: "tcp", Type: "ipv4", Direction: "egress"}}
	}
	return ecs.Event{Timestamp: ts, Event: ecs.Meta{Category: "process", Type: "start", Module: "ebpf"}, Process: p}
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

// history72h fills a history with 72 hours of events through the store's
// own write path (Add, then Flush every 2,000 events as the writer does),
// then closes and reopens it so its compactions are done before a hunt
// is timed, as on an agent that has been running.
func history72h(b *testing.B) *history.Store {
	if histSpanErr != nil {
		b.Fatal(histSpanErr)
	}
	histOnce.Do(func() {
		histDir, histErr = os.MkdirTemp("", "hunt-bench-")
		if histErr != nil {
			return
		}
		histEnd = time.Now().UTC()
		start := time.Now()
		s, err := history.Open(histDir, history.Options{Queue: 4096})
		if err != nil {
			histErr = err
			return
		}
		r := rand.New(rand.NewPCG(72, 1))
		for i := range histN {
			s.Add(histEvent(r, i, histEnd))
			if i%2000 == 1999 {
				if histErr = s.Flush(); histErr != nil {
					return
				}
			}
		}
		if histErr = s.Flush(); histErr != nil {
			return
		}
		if histErr = s.Close(); histErr != nil {
			return
		}
		histFill = time.Since(start)
		histStore, histErr = history.Open(histDir, history.Options{})
	})
	if histErr != nil {
		b.Fatal(histErr)
	}
	return histStore
}

// BenchmarkHunt72h answers typical hunts from one agent's 72 hours of
// history with the agent's own Hunter (history, then the host's running
// processes and sockets), over 1 hour (the baseline), 24 and 72 hours
// (with CORDON_BENCH_HUNT_SPAN, those within the span and the span).
func BenchmarkHunt72h(b *testing.B) {
	s := history72h(b)
	st := s.Stats()
	histStats.Do(func() {
		var disk int64
		filepath.WalkDir(histDir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					disk += fi.Size()
				}
			}
			return nil
		})
		fmt.Printf("history: %d events (%d/s over %s, filled in %s), %.0f MiB logical, %.0f MiB on disk, dropped %d\n",
			st.Events, histRate, histSpan, histFill.Round(time.Second), float64(st.Bytes)/(1<<20), float64(disk)/(1<<20), st.Dropped)
	})
	h := New(Config{History: s, Logger: slog.New(slog.DiscardHandler)})
	queries := []struct{ name, q string }{
		{"exe-endswith", `process.executable endswith "/xmrig"`},
		{"sha256", `file.hash.sha256 == "` + markerHash + `"`},
		{"dst-cidr", `destination.ip in 203.0.113.0/24`},
		{"exe-and-user", `process.executable endswith "/xmrig" and user.name != "root"`},
	}
	for _, q := range queries {
		for _, since := range hoursBack() {
			b.Run(fmt.Sprintf("%s/since=%s", q.name, since), func(b *testing.B) {
				req := &protocol.HuntRequest{Id: "bench", Query: q.q, SinceUnixNano: histEnd.Add(-since).UnixNano()}
				var (
					took                []time.Duration
					cpu                 time.Duration
					heapPeak, rssGrowth uint64
					res                 *protocol.HuntResult
				)
				b.ResetTimer()
				for range b.N {
					runtime.GC()
					heapBefore := heapLive()
					rssBefore := resetPeakRSS()
					stop := sampleHeap()
					cpuBefore := cpuTime()
					start := time.Now()
					res = h.Hunt(context.Background(), req)
					took = append(took, time.Since(start))
					cpu += cpuTime() - cpuBefore
					heapPeak = max(heapPeak, stop()-min(heapBefore, stop()))
					if peak := peakRSS(); peak > rssBefore {
						rssGrowth = max(rssGrowth, peak-rssBefore)
					}
				}
				b.StopTimer()
				slices.Sort(took)
				b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
				b.ReportMetric(ms(took[min(len(took)-1, len(took)*99/100)]), "p99-ms")
				b.ReportMetric(ms(cpu)/float64(b.N), "cpu-ms/op")
				b.ReportMetric(float64(heapPeak)/(1<<20), "heap-peak-MiB")
				b.ReportMetric(float64(rssGrowth)/(1<<20), "rss-growth-MiB")
				b.ReportMetric(float64(res.GetScanned()), "events/op")
				b.ReportMetric(float64(len(res.GetMatches())), "matches")
				if res.GetStatus() != "answered" {
					b.Logf("%s since %s: %s (%s)", q.name, since, res.GetStatus(), res.GetReason())
				}
			})
		}
	}
}

// hoursBack is how far back the hunts reach: 1 hour (the baseline), 24
// and 72 hours, those within histSpan, and histSpan itself.
func hoursBack() []time.Duration {
	var back []time.Duration
	for _, d := range []time.Duration{time.Hour, 24 * time.Hour, 72 * time.Hour} {
		if d <= histSpan {
			back = append(back, d)
		}
	}
	if back[len(back)-1] != histSpan {
		back = append(back, histSpan)
	}
	return back
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var heapMetric = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

func heapLive() uint64 {
	s := slices.Clone(heapMetric)
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap samples the live heap every 5 ms until the returned function
// is called, which returns the highest sample (calling it again returns
// the same).
func sampleHeap() func() uint64 {
	done := make(chan struct{})
	var (
		peak uint64
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, heapLive())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() uint64 {
		once.Do(func() { close(done); wg.Wait() })
		return peak
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if histStore != nil {
		histStore.Close()
	}
	if histDir != "" {
		os.RemoveAll(histDir)
	}
	os.Exit(code)
}
