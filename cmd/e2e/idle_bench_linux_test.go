package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// statFields reads /proc/PID/stat and returns its fields after the
// command name: field n of proc(5) is f[n-3].
func statFields(pid int) ([][]byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return nil, fmt.Errorf("pid %d: stat without a command name", pid)
	}
	f := bytes.Fields(b[end+1:])
	if len(f) < 22 {
		return nil, fmt.Errorf("pid %d: %d stat fields", pid, len(f))
	}
	return f, nil
}

// procUsage reads a process's CPU time (user and system) and resident
// memory from /proc/PID/stat.
func procUsage(pid int) (cpu time.Duration, rss int64, err error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, 0, err
	}
	ut, err1 := strconv.ParseInt(string(f[14-3]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[15-3]), 10, 64)
	pages, err3 := strconv.ParseInt(string(f[24-3]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, fmt.Errorf("pid %d: bad stat fields", pid)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, pages * int64(os.Getpagesize()), nil
}

// majorFaults is how many page faults of the process had to read from
// disk (field 12 of /proc/PID/stat), 0 when unreadable: the pages of its
// binary it touches again after handing them back count here.
func majorFaults(pid int) int64 {
	f, err := statFields(pid)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[12-3]), 10, 64)
	return n
}

// idleDuration is how long the idle benchmarks watch the agents:
// CORDON_BENCH_IDLE, 60 s by default.
func idleDuration() time.Duration {
	if v, err := time.ParseDuration(os.Getenv("CORDON_BENCH_IDLE")); err == nil && v > 0 {
		return v
	}
	return 60 * time.Second
}

// benchAgentBin is the cordon-agent the idle and storm benchmarks run:
// CORDON_BENCH_AGENT when set (to compare two builds in one session),
// else the one built for the tests.
func benchAgentBin() string {
	if p := os.Getenv("CORDON_BENCH_AGENT"); p != "" {
		return p
	}
	return bin("cordon-agent")
}

// idleWatch is one agent process an idle benchmark watches.
type idleWatch struct {
	name  string // prefix of its metrics
	pid   int
	state string // its state folder, for its status

	cpu0, cpu      time.Duration
	rssSum, rssMax int64
	ev0, ev        map[string]uint64
}

// watchIdle watches the agents for d, sampling /proc every second, and
// reports per agent its CPU share of one core, its resident memory (mean,
// peak, and at the end where it is), and the events its sensors
// delivered per second: the host is whatever else runs on it, and the
// events say how much work it gave the agent.
func watchIdle(b *testing.B, d time.Duration, ws []*idleWatch) {
	b.Helper()
	for _, w := range ws {
		cpu, _, err := procUsage(w.pid)
		if err != nil {
			b.Fatal(err)
		}
		w.cpu0 = cpu
		w.ev0 = sensorEvents(b, w.state)
	}
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
			w.rssMax = max(w.rssMax, rss)
			w.cpu = cpu - w.cpu0
		}
	}
	elapsed := time.Since(t0)
	for _, w := range ws {
		w.ev = sensorEvents(b, w.state)
		var total uint64
		for sensor, n := range w.ev {
			n -= w.ev0[sensor]
			total += n
			b.ReportMetric(float64(n)/elapsed.Seconds(), w.name+"_"+sensor+"_events/s")
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), w.name+"_events/s")
		if total > 0 {
			b.ReportMetric(float64(w.cpu.Microseconds())/float64(total), w.name+"_cpu_µs/event")
		}
		b.ReportMetric(100*w.cpu.Seconds()/elapsed.Seconds(), w.name+"_cpu_%core")
		b.ReportMetric(float64(w.rssSum)/float64(samples)/(1<<20), w.name+"_rss_MiB")
		b.ReportMetric(float64(w.rssMax)/(1<<20), w.name+"_rss_peak_MiB")
		// Where the resident memory is at the end: its own (anonymous:
		// heap, stacks), mapped files (the binary, the databases'
		// memtable logs) and shared memory (the eBPF rings); and of the
		// mapped files, the agent's own binary: clean pages, shared with
		// any other process running it, that the kernel can drop.
		for _, f := range []string{"RssAnon", "RssFile", "RssShmem"} {
			b.ReportMetric(float64(statusKB(w.pid, f))/1024, w.name+"_"+f+"_MiB")
		}
		b.ReportMetric(float64(binaryRssKB(w.pid))/1024, w.name+"_binary_MiB")
	}
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
	d := idleDuration()
	c := newCollector(b)
	bare := filepath.Join(b.TempDir(), "bare.yaml")
	if err := os.WriteFile(bare, []byte("sensors:\n  process: {mode: netlink}\n  file: {enabled: false}\n  network: {enabled: false}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		state, id := c.enroll(b)
		bareState, bareID := c.enroll(b)
		// Each from its own copy of the binary, flushed to disk: the
		// kernel leaves alone the pages of a file two processes map, so
		// the agent could not hand back its start-up pages (package
		// agent/trim) while the baseline maps the same file, as no second
		// agent would on a real host.
		agent := startCmd(b, "cordon-agent", exec.Command(diskCopy(b, benchAgentBin()), "run", "--state", state))
		baseline := startCmd(b, "cordon-agent", exec.Command(diskCopy(b, benchAgentBin()), "run", "--state", bareState, "--config", bare))
		c.agentOnline(b, id)
		c.agentOnline(b, bareID)
		time.Sleep(15 * time.Second) // start-up is not idle
		watchIdle(b, d, []*idleWatch{
			{name: "agent", pid: agent.cmd.Process.Pid, state: state},
			{name: "bare", pid: baseline.cmd.Process.Pid, state: bareState},
		})
		agent.stop()
		baseline.stop()
	}
}

// BenchmarkAgentIdleFenced runs the agent where the host looks idle to
// the sensors that can be fenced off from it: in a network namespace of
// its own with only loopback, where it talks to a collector in the same
// namespace, and a mount namespace of its own with private tmpfs on
// /tmp and /dev/shm (its state folder bound into the new /tmp). Its file
// sensor then watches folders nothing else writes to, and the network
// sensor's socket table holds only its own connection. The process
// sensor's eBPF programs still see every exec of the host, and so does
// the network sensor's tracepoint for TCP state changes of the whole
// host: the events per second of each sensor are reported beside the
// CPU, so that a run can be told from one on a quieter host. (The
// process connector, which speaks only in the host's first network
// namespace, is refused here, so there is no quieter process sensor to
// run beside it: the sensor would fall back to polling /proc.)
func BenchmarkAgentIdleFenced(b *testing.B) {
	needRoot(b)
	needNetns(b)
	if _, err := exec.LookPath("unshare"); err != nil {
		b.Skip("needs unshare (util-linux) to give the agent a mount namespace of its own")
	}
	if fi, err := os.Stat("/mnt"); err != nil || !fi.IsDir() {
		b.Skip("needs a /mnt folder to stage the agent's private /tmp on")
	}
	d := idleDuration()
	ns := fmt.Sprintf("cordon-i%d%d", os.Getpid()%10000, rand.IntN(1000))
	sh(b, "ip", "netns", "add", ns)
	b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh(b, "ip", "-n", ns, "link", "set", "lo", "up")
	// Any port is free in a namespace just made.
	data := b.TempDir()
	p := startCmd(b, "cordon-collector", exec.Command("ip", "netns", "exec", ns, bin("cordon-collector"),
		"run", "--data", data, "--listen", "127.0.0.1:7443", "--api", "127.0.0.1:7480"))
	c := &collector{proc: p, data: data, listen: "127.0.0.1:7443", api: "127.0.0.1:7480", ns: ns}
	c.waitReady(b)
	for b.Loop() {
		state, id := c.enrollFenced(b)
		agent := startFenced(b, ns, state)
		c.agentOnline(b, id)
		time.Sleep(15 * time.Second) // start-up is not idle
		watchIdle(b, d, []*idleWatch{{name: "agent", pid: agent.cmd.Process.Pid, state: state}})
		agent.stop()
	}
}

// enrollFenced enrolls an agent from inside the collector's namespace,
// with its state in a new folder.
func (c *collector) enrollFenced(b *testing.B) (state, id string) {
	b.Helper()
	state = b.TempDir()
	args := append([]string{"netns", "exec", c.ns, bin("cordon-agent")}, c.enrollArgs(b, state)...)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		b.Fatalf("enroll in %s: %v\n%s", c.ns, err, out)
	}
	return state, agentID(b, state)
}

// fencedScript runs the agent in its own mount namespace: a new tmpfs,
// with the state folder bound into it, is moved over /tmp, another one
// covers /dev/shm, and the agent runs from its folder on the host (the
// working directory, which the new /tmp does not hide) with the state
// at /tmp/state. Arguments: the binary's folder, its name, the state
// folder, then the agent's own extra arguments.
const fencedScript = `set -e
cd "$1"
mount -t tmpfs -o size=64m,mode=1777 cordon-idle-tmp /mnt
mkdir /mnt/state
mount --bind "$3" /mnt/state
mount --move /mnt /tmp
mount -t tmpfs -o size=16m,mode=1777 cordon-idle-shm /dev/shm
agent=$2
shift 3
exec "./$agent" run --state /tmp/state "$@"
`

// startFenced starts the agent in network namespace ns and a mount
// namespace of its own (fencedScript). Every step execs the next, so the
// process is the agent itself.
func startFenced(b *testing.B, ns, state string, args ...string) *proc {
	b.Helper()
	agent := benchAgentBin()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
		"sh", "-c", fencedScript, "sh", filepath.Dir(agent), filepath.Base(agent), state}, args...)...)
	p := startCmd(b, "cordon-agent", cmd)
	eventually(b, 30*time.Second, "the fenced agent's status socket", func() error {
		select {
		case <-p.done:
			return fmt.Errorf("the agent ended:\n%s", p.Log())
		default:
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.cmd.Process.Pid))
		if err != nil {
			return err
		}
		if filepath.Base(exe) != filepath.Base(agent) {
			return fmt.Errorf("process %d still runs %s", p.cmd.Process.Pid, exe)
		}
		return nil
	})
	return p
}

// sensorEvents is the number of events each of the agent's sensors
// delivered so far, from its status.
func sensorEvents(b *testing.B, state string) map[string]uint64 {
	var st struct {
		Sensors []struct {
			Name   string `json:"name"`
			Events uint64 `json:"events"`
		} `json:"sensors"`
	}
	if err := json.Unmarshal([]byte(agentStatus(b, state)), &st); err != nil {
		b.Fatalf("decoding the agent's status: %v", err)
	}
	n := make(map[string]uint64, len(st.Sensors))
	for _, s := range st.Sensors {
		n[s.Name] = s.Events
	}
	return n
}

// binaryRssKB is how much of the process's own executable is resident
// through its mappings, in kB, from /proc/PID/smaps.
func binaryRssKB(pid int) int64 {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0
	}
	var kb int64
	inExe := false
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) >= 5 && bytes.IndexByte(f[0], '-') > 0 && !bytes.HasSuffix(f[0], []byte(":")) {
			// A mapping's header: range, perms, offset, device, inode, path.
			inExe = len(f) >= 6 && string(bytes.Join(f[5:], []byte(" "))) == exe
			continue
		}
		if inExe && string(f[0]) == "Rss:" && len(f) >= 2 {
			v, _ := strconv.ParseInt(string(f[1]), 10, 64)
			kb += v
		}
	}
	return kb
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
