package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/agent/sensor/bench"
)

// stormEvent is what the exec storm benchmark reads of an event.
type stormEvent struct {
	Event struct {
		Type string `json:"type"`
	} `json:"event"`
	Process *struct {
		Executable string   `json:"executable"`
		Args       []string `json:"args"`
		Parent     *struct {
			Executable  string `json:"executable"`
			CommandLine string `json:"command_line"`
		} `json:"parent"`
	} `json:"process"`
}

// BenchmarkAgentExecStorm runs the real cordon-agent, enrolled to a local
// collector, with its default configuration (sensors, shipped rules,
// history, spool), through an exec storm of CORDON_BENCH_STORM (10 s):
// two shells spawning /bin/true with unique markers. It counts the execs
// that reach `cordon-agent events --json --follow`, with the full command
// line and the parent shell, and reports the agent process's own CPU time
// (from /proc/PID/stat, from the storm's start to a second after its end,
// so the history's last write is in) per storm exec and per event its
// sensors delivered. The host's own activity costs the agent too: the
// same agent's CPU in a window of the storm's length just before it is
// subtracted for storm_cpu_µs/exec, what the storm added per exec.
//
// A first, shorter storm (CORDON_BENCH_WARMUP, 3 s) runs before both
// windows and is reported on its own (first_storm_cpu_µs/exec,
// first_storm_major_faults): it pays once for reading back from disk the
// code that the agent handed back after start-up and a storm needs.
// CORDON_BENCH_CPUPROFILE=FILE writes the agent's CPU profile of the run
// there.
func BenchmarkAgentExecStorm(b *testing.B) {
	needRoot(b)
	d := stormDuration()
	c := newCollector(b)
	for b.Loop() {
		state, id := c.enroll(b)
		args := []string{"run", "--state", state}
		if p := os.Getenv("CORDON_BENCH_CPUPROFILE"); p != "" {
			args = append(args, "--cpuprofile", p)
		}
		started := time.Now()
		agent := startCmd(b, "cordon-agent", exec.Command(benchAgentBin(), args...))
		c.agentOnline(b, id)
		// Start-up is not the storm: the sensors' first scans, and the
		// agent handing back its binary's start-up pages (at 10 s).
		time.Sleep(time.Until(started.Add(12 * time.Second)))
		pid := agent.cmd.Process.Pid
		if w := stormWarmup(); w > 0 {
			// The first storm after the trim reads back from disk the
			// code it needs, once: measured apart, so that the storm
			// below is what a running agent spends on each exec.
			cpu0, _, err := procUsage(pid)
			if err != nil {
				b.Fatal(err)
			}
			faults0 := majorFaults(pid)
			spawned, err := bench.Storm(fmt.Sprintf("cordon-agentwarmup-%d", time.Now().UnixNano()), w)
			if err != nil {
				b.Fatal(err)
			}
			time.Sleep(time.Second) // as below
			cpu1, _, err := procUsage(pid)
			if err != nil {
				b.Fatal(err)
			}
			if spawned == 0 {
				b.Fatal("the first storm spawned nothing")
			}
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(spawned), "first_storm_cpu_µs/exec")
			b.ReportMetric(float64(majorFaults(pid)-faults0), "first_storm_major_faults")
		}

		out, stopFollow := followEvents(b, state)
		tag := fmt.Sprintf("cordon-agentstorm-%d", time.Now().UnixNano())
		seen := map[string]bool{}
		full := 0
		read := eachLine(out, func(line []byte) {
			if !bytes.Contains(line, []byte(tag)) {
				return
			}
			var ev stormEvent
			if json.Unmarshal(line, &ev) != nil || ev.Event.Type != "start" {
				return
			}
			p := ev.Process
			if p == nil || len(p.Args) < 2 || !strings.HasPrefix(p.Args[1], tag) || seen[p.Args[1]] {
				return
			}
			seen[p.Args[1]] = true
			if (p.Executable == "/usr/bin/true" || p.Executable == "/bin/true") && p.Parent != nil &&
				strings.HasSuffix(p.Parent.Executable, "sh") && strings.Contains(p.Parent.CommandLine, tag) {
				full++
			}
		})
		time.Sleep(500 * time.Millisecond) // let the follower subscribe

		// The host's own activity costs the agent CPU too, and on a busy
		// host as much as a slow storm: the same agent's CPU over a quiet
		// window of the storm's length, just before it, is the baseline.
		idleCPU0, _, err := procUsage(pid)
		idleFaults0 := majorFaults(pid)
		if err != nil {
			b.Fatal(err)
		}
		idleEv0, idleT0 := allSensorEvents(b, state), time.Now()
		time.Sleep(d)
		idleCPU1, _, err := procUsage(pid)
		if err != nil {
			b.Fatal(err)
		}
		idleElapsed, idleEvents := time.Since(idleT0), allSensorEvents(b, state)-idleEv0
		faults0 := majorFaults(pid)

		ev0 := allSensorEvents(b, state)
		cpu0, _, err := procUsage(pid)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		spawned, err := bench.Storm(tag, d)
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(t0)
		time.Sleep(time.Second) // the last events, the history's last write
		window := time.Since(t0)
		cpu1, _, err := procUsage(pid)
		if err != nil {
			b.Fatal(err)
		}
		events := allSensorEvents(b, state) - ev0
		faults := majorFaults(pid) - faults0
		stopFollow()
		<-read
		agent.stop()

		spawned = max(spawned, len(seen))
		if spawned == 0 {
			b.Fatal("the storm spawned nothing")
		}
		cpu := cpu1 - cpu0
		b.ReportMetric(float64(spawned)/elapsed.Seconds(), "execs/s")
		b.ReportMetric(100*float64(len(seen))/float64(spawned), "seen_%")
		b.ReportMetric(100*float64(full)/float64(spawned), "full_%")
		b.ReportMetric(float64(cpu.Microseconds())/float64(spawned), "agent_cpu_µs/exec")
		if events > 0 {
			b.ReportMetric(float64(cpu.Microseconds())/float64(events), "agent_cpu_µs/event")
		}
		// What the storm added over the quiet window, per storm exec.
		idleCPU := time.Duration(float64(idleCPU1-idleCPU0) * window.Seconds() / idleElapsed.Seconds())
		b.ReportMetric(float64((cpu-idleCPU).Microseconds())/float64(spawned), "storm_cpu_µs/exec")
		b.ReportMetric(float64(idleEvents)/idleElapsed.Seconds(), "quiet_events/s")
		b.ReportMetric(100*(idleCPU1-idleCPU0).Seconds()/idleElapsed.Seconds(), "quiet_cpu_%core")
		b.ReportMetric(float64(faults0-idleFaults0), "quiet_major_faults")
		b.ReportMetric(float64(faults), "storm_major_faults")
	}
}

// allSensorEvents is the number of events all the agent's sensors
// delivered so far, from its status.
func allSensorEvents(b *testing.B, state string) uint64 {
	var n uint64
	for _, e := range sensorEvents(b, state) {
		n += e
	}
	return n
}

// BenchmarkExecsnoopStorm is BenchmarkAgentExecStorm's baseline on the
// same machine: libbpf-tools' execsnoop (Debian's libbpf-tools package),
// which does nothing but print each exec's command line from an eBPF
// program, through the same storm. It reports execsnoop's own CPU time
// per storm exec and the share of execs it printed with their marker, so
// that the agent's cost per exec reads as a ratio to the cheapest
// exec capture this kernel and machine allow.
func BenchmarkExecsnoopStorm(b *testing.B) {
	needRoot(b)
	path, err := exec.LookPath("execsnoop")
	if err != nil {
		path = "/usr/sbin/execsnoop"
		if _, err := os.Stat(path); err != nil {
			b.Skip("skipping: execsnoop not found (Debian's libbpf-tools package)")
		}
	}
	d := stormDuration()
	for b.Loop() {
		cmd := exec.Command(path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		tag := fmt.Sprintf("cordon-execsnoop-%d", time.Now().UnixNano())
		seen := map[string]bool{}
		read := eachLine(out, func(line []byte) {
			// COMM PID PPID RET ARGS: the marker is /bin/true's first
			// argument.
			f := strings.Fields(string(line))
			if len(f) >= 6 && strings.HasPrefix(f[5], tag) {
				seen[f[5]] = true
			}
		})
		time.Sleep(3 * time.Second) // loading its program
		pid := cmd.Process.Pid
		cpu0, _, err := procUsage(pid)
		if err != nil {
			b.Fatalf("execsnoop did not start: %v: %s", err, stderr.String())
		}
		t0 := time.Now()
		spawned, err := bench.Storm(tag, d)
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(t0)
		time.Sleep(time.Second)
		cpu1, _, err := procUsage(pid)
		if err != nil {
			b.Fatalf("execsnoop stopped during the storm: %v: %s", err, stderr.String())
		}
		// It prints what its output buffer still holds as it exits.
		_ = cmd.Process.Signal(os.Interrupt)
		<-read
		_ = cmd.Wait()
		spawned = max(spawned, len(seen))
		if spawned == 0 {
			b.Fatal("the storm spawned nothing")
		}
		b.ReportMetric(float64(spawned)/elapsed.Seconds(), "execs/s")
		b.ReportMetric(100*float64(len(seen))/float64(spawned), "seen_%")
		b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(spawned), "execsnoop_cpu_µs/exec")
	}
}

// stormWarmup is the length of the storm BenchmarkAgentExecStorm runs
// before the one it measures: CORDON_BENCH_WARMUP (3 s; 0 for none).
func stormWarmup() time.Duration {
	if v, err := time.ParseDuration(os.Getenv("CORDON_BENCH_WARMUP")); err == nil && v >= 0 {
		return v
	}
	return 3 * time.Second
}

// stormDuration is how long the storm benchmarks' storms last:
// CORDON_BENCH_STORM, 10 s by default.
func stormDuration() time.Duration {
	if v, err := time.ParseDuration(os.Getenv("CORDON_BENCH_STORM")); err == nil && v > 0 {
		return v
	}
	return 10 * time.Second
}

// eachLine calls fn with each line r gives, on a goroutine of its own,
// until r ends; the channel it returns is closed then.
func eachLine(r io.Reader, fn func(line []byte)) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			fn(sc.Bytes())
		}
	}()
	return done
}
