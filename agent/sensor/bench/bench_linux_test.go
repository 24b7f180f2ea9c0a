package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cordon-edr/cordon/agent/sensor"
	"github.com/cordon-edr/cordon/agent/sensor/fswatch"
	"github.com/cordon-edr/cordon/agent/sensor/netwatch"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// duration reads a duration from the environment, for longer or shorter
// runs than the default.
func duration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// cpuTime is the CPU time this process used so far. The exec storm runs
// in child shells, whose time is not counted here.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stormResult is what one sensor saw of one storm.
type stormResult struct {
	spawned, seen, full int
	// events counts every event the sensor delivered, the storm's and
	// the rest of the host's.
	events  int
	cpu     time.Duration
	elapsed time.Duration
}

// runStorm runs a storm while p watches, and counts the markers it saw,
// and those seen with the full command line and the parent shell.
func runStorm(b *testing.B, p *sensor.Process, wantMode string, d time.Duration) stormResult {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan ecs.Event, 65536)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, out) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m, _ := p.Mode(); m != "" {
			if m != wantMode {
				b.Skipf("process sensor runs in mode %s, not %s (needs root)", m, wantMode)
			}
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("process sensor did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tag := fmt.Sprintf("cordon-storm-%d-%s", time.Now().UnixNano(), wantMode)
	seen := map[string]bool{}
	var full int
	collect := make(chan struct{})
	go func() {
		defer close(collect)
		for ev := range out {
			pr := ev.Process
			if ev.Event.Type != ecs.TypeStart || pr == nil || len(pr.Args) < 2 || !strings.HasPrefix(pr.Args[1], tag) {
				continue
			}
			if seen[pr.Args[1]] {
				continue
			}
			seen[pr.Args[1]] = true
			if pr.Executable == "/usr/bin/true" || pr.Executable == "/bin/true" {
				if pr.Parent != nil && strings.HasSuffix(pr.Parent.Executable, "sh") && strings.Contains(pr.Parent.CommandLine, tag) {
					full++
				}
			}
		}
	}()
	ev0 := p.Stats().Events
	cpu0, t0 := cpuTime(), time.Now()
	spawned, err := Storm(tag, d)
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(t0)
	time.Sleep(500 * time.Millisecond) // let the last events arrive
	cpu := cpuTime() - cpu0
	events := p.Stats().Events - ev0
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	close(out)
	<-collect
	r := stormResult{cpu: cpu, elapsed: elapsed, full: full, events: int(events), spawned: spawned}
	r.seen = len(seen)
	// A worker stopped during an exec reports it or not depending on
	// when its trap runs: count what the sensor saw if it is more.
	r.spawned = max(r.spawned, r.seen)
	return r
}

// BenchmarkExecStorm runs storms of CORDON_BENCH_STORM (10 s) each,
// watched by the process sensor with its eBPF exec capture, by the
// netlink connector alone, and by a 100 ms gopsutil poll (the baseline),
// one sub-benchmark each so that one mode can be profiled alone
// (-bench ExecStorm/ebpf), and reports for each the share of execs seen,
// the share seen with full command line and parent, and the sensor's CPU
// per exec.
func BenchmarkExecStorm(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("needs root for the netlink process connector")
	}
	d := duration("CORDON_BENCH_STORM", 10*time.Second)
	modes := []struct {
		name, mode string
		opts       sensor.Options
	}{
		{"ebpf", sensor.ModeEBPF, sensor.Options{}},
		{"netlink", sensor.ModeNetlink, sensor.Options{NoEBPF: true}},
		{"poll", sensor.ModePoll, sensor.Options{ForcePoll: true, PollInterval: 100 * time.Millisecond}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			for b.Loop() {
				report(b, runStorm(b, sensor.NewProcess(m.opts), m.mode, d))
			}
		})
	}
}

func report(b *testing.B, r stormResult) {
	if r.spawned == 0 {
		b.Fatal("the storm spawned nothing")
	}
	b.ReportMetric(float64(r.spawned)/r.elapsed.Seconds(), "execs/s")
	b.ReportMetric(100*float64(r.seen)/float64(r.spawned), "seen_%")
	b.ReportMetric(100*float64(r.full)/float64(r.spawned), "full_%")
	b.ReportMetric(float64(r.cpu.Microseconds())/float64(r.spawned), "cpu_µs/exec")
	if r.events > 0 {
		b.ReportMetric(float64(r.cpu.Microseconds())/float64(r.events), "cpu_µs/event")
	}
}

// rss is this process's resident set in bytes.
func rss() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkIdle runs the three sensors with their default settings for
// CORDON_BENCH_IDLE (20 s) and reports their CPU share of one core and
// the process's resident memory. The host is whatever else runs on it.
func BenchmarkIdle(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("needs root to run the sensors in their Linux modes")
	}
	d := duration("CORDON_BENCH_IDLE", 20*time.Second)
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan ecs.Event, 4096)
		var events int
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for range out {
				events++
			}
		}()
		p := sensor.NewProcess(sensor.Options{})
		fs, err := fswatch.New(fswatch.Options{Process: p.Lookup})
		if err != nil {
			b.Fatal(err)
		}
		ns := netwatch.New(netwatch.Options{Process: p.Lookup})
		var g errgroup.Group
		g.Go(func() error { return p.Run(ctx, out) })
		g.Go(func() error { return fs.Run(ctx, out) })
		g.Go(func() error { return ns.Run(ctx, out) })
		time.Sleep(3 * time.Second) // setting up watches is not idle
		cpu0, t0 := cpuTime(), time.Now()
		var peak int64
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
			peak = max(peak, rss())
		}
		cpu, elapsed := cpuTime()-cpu0, time.Since(t0)
		cancel()
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		close(out)
		<-drained
		b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "cpu_%core")
		b.ReportMetric(float64(peak)/(1<<20), "rss_MiB")
		b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	}
}

// BenchmarkFileLatency measures the time from writing a new file in a
// watched folder to its event, hash included, and reports the median and
// the 99th percentile: with fsnotify alone, and with fanotify naming the
// writer, read from procfs or, as in the agent, from the process
// sensor's cache (the process sensor runs beside it then).
func BenchmarkFileLatency(b *testing.B) {
	b.Run("fsnotify", func(b *testing.B) { benchFileLatency(b, true, false) })
	b.Run("fanotify-procfs", func(b *testing.B) { benchFileLatency(b, false, false) })
	b.Run("fanotify-cache", func(b *testing.B) { benchFileLatency(b, false, true) })
}

func benchFileLatency(b *testing.B, noFanotify, cache bool) {
	dir := b.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := fswatch.Options{Paths: []string{dir + "/..."}, NoFanotify: noFanotify}
	if cache {
		p := sensor.NewProcess(sensor.Options{})
		procEvents := make(chan ecs.Event, 1024)
		go func() { _ = p.Run(ctx, procEvents) }()
		go func() {
			for range procEvents {
			}
		}()
		for {
			if m, _ := p.Mode(); m != "" {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if ref, ok := p.Lookup(os.Getpid()); !ok || ref.Executable == "" {
			b.Skip("the process sensor does not know this process")
		}
		opts.Process = p.Lookup
	}
	s, err := fswatch.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan ecs.Event, 4096)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	for {
		if m, _ := s.Mode(); m != "" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if mode, reason := s.Mode(); !noFanotify && mode != fswatch.ModeFanotify {
		b.Skipf("fanotify does not run here: %s", reason)
	}
	payload := []byte(strings.Repeat("x", 4096))
	var lat []time.Duration
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		path := filepath.Join(dir, "f"+strconv.Itoa(i))
		i++
		t0 := time.Now()
		if err := os.WriteFile(path, payload, 0o644); err != nil {
			b.Fatal(err)
		}
		timeout := time.After(5 * time.Second)
	wait:
		for {
			select {
			case ev := <-out:
				if ev.File != nil && ev.File.Path == path && ev.File.Hash != nil && (noFanotify || ev.Process != nil) {
					lat = append(lat, time.Since(t0))
					break wait
				}
			case <-timeout:
				b.Fatalf("no hashed event for %s", path)
			}
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	cancel()
	<-done
	slices.Sort(lat)
	// The whole process's CPU: the writes, the sensor and, in the cache
	// variant, the process sensor with every exec on the host.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu_us/file")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
