package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// procUsage reads a process's CPU time (user and system) and resident
// memory from /proc/PID/stat.
func procUsage(pid int) (cpu time.Duration, rss int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, 0, fmt.Errorf("pid %d: stat without a command name", pid)
	}
	f := bytes.Fields(b[end+1:])
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("pid %d: %d stat fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(string(f[14-3]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[15-3]), 10, 64)
	pages, err3 := strconv.ParseInt(string(f[24-3]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, fmt.Errorf("pid %d: bad stat fields", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, pages * int64(os.Getpagesize()), nil
}

// BenchmarkAgentIdle runs the real cordon-agent, enrolled to a local
// collector, with its default sensors and rules, lets it settle for 15 s
// and then watches it for CORDON_BENCH_IDLE (60 s by default): its CPU
// share of one core and its resident memory, the mean and the peak. Only
// the agent process is measured; the host is whatever else runs on it.
// A second agent with the file and network sensors off and the process
// sensor without eBPF, watched in the same run, is the baseline: mostly
// what the uplink, spool, rules and runtime cost.
func BenchmarkAgentIdle(b *testing.B) {
	needRoot(b)
	d := 60 * time.Second
	if v, err := time.ParseDuration(os.Getenv("CORDON_BENCH_IDLE")); err == nil && v > 0 {
		d = v
	}
	c := newCollector(b)
	bare := filepath.Join(b.TempDir(), "bare.yaml")
	if err := os.WriteFile(bare, []byte("sensors:\n  process: {mode: netlink}\n  file: {enabled: false}\n  network: {enabled: false}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		state, id := c.enroll(b)
		bareState, bareID := c.enroll(b)
		agent := start(b, "cordon-agent", "run", "--state", state)
		baseline := start(b, "cordon-agent", "run", "--state", bareState, "--config", bare)
		c.agentOnline(b, id)
		c.agentOnline(b, bareID)
		time.Sleep(15 * time.Second) // start-up is not idle
		type watch struct {
			pid      int
			cpu0     time.Duration
			rssSum   int64
			rssPeak  int64
			cpuTotal time.Duration
		}
		ws := []*watch{{pid: agent.cmd.Process.Pid}, {pid: baseline.cmd.Process.Pid}}
		for _, w := range ws {
			cpu, _, err := procUsage(w.pid)
			if err != nil {
				b.Fatal(err)
			}
			w.cpu0 = cpu
		}
		ev0 := sensorEvents(b, state)
		t0 := time.Now()
		samples := 0
		for end := t0.Add(d); time.Now().Before(end); time.Sleep(time.Second) {
			samples++
			for _, w := range ws {
				cpu, rss, err := procUsage(w.pid)
				if err != nil {
					b.Fatal(err)
				}
				w.rssSum += rss
				w.rssPeak = max(w.rssPeak, rss)
				w.cpuTotal = cpu - w.cpu0
			}
		}
		elapsed := time.Since(t0)
		// The host is never idle here: what the sensors saw says how much
		// work the agent had, and what it cost per event.
		events := sensorEvents(b, state) - ev0
		b.ReportMetric(float64(events)/elapsed.Seconds(), "agent_events/s")
		if events > 0 {
			b.ReportMetric(float64(ws[0].cpuTotal.Microseconds())/float64(events), "agent_cpu_µs/event")
		}
		for i, name := range []string{"agent", "bare"} {
			w := ws[i]
			b.ReportMetric(100*w.cpuTotal.Seconds()/elapsed.Seconds(), name+"_cpu_%core")
			b.ReportMetric(float64(w.rssSum)/float64(samples)/(1<<20), name+"_rss_MiB")
			b.ReportMetric(float64(w.rssPeak)/(1<<20), name+"_rss_peak_MiB")
		}
		// Where the agent's resident memory is: its own (anonymous:
		// heap, stacks), mapped files (the binary, the spool) and shared
		// memory (the eBPF ring buffer).
		for _, f := range []string{"RssAnon", "RssFile", "RssShmem"} {
			b.ReportMetric(float64(statusKB(agent.cmd.Process.Pid, f))/1024, "agent_"+f+"_MiB")
		}
		agent.stop()
		baseline.stop()
	}
}

// sensorEvents is the number of events the agent's sensors delivered so
// far, from its status.
func sensorEvents(b *testing.B, state string) uint64 {
	var st struct {
		Sensors []struct {
			Events uint64 `json:"events"`
		} `json:"sensors"`
	}
	if err := json.Unmarshal([]byte(agentStatus(b, state)), &st); err != nil {
		b.Fatalf("decoding the agent's status: %v", err)
	}
	var n uint64
	for _, s := range st.Sensors {
		n += s.Events
	}
	return n
}

// statusKB reads a kB field of /proc/PID/status, 0 when missing.
func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			kb, _ := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			return kb
		}
	}
	return 0
}
