package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binaries built once for the whole test run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cordon-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", "../cordon-collector", "../cordon-agent", "../cordonctl")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func bin(name string) string { return filepath.Join(binDir, name) }

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// proc is a running binary whose output goes to a log file.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, exec.Command(bin(name), args...))
}

// startCmd starts cmd, a wrapper around binary name (ip netns exec,
// unshare) or the binary itself, with its output in a log file.
func startCmd(t testing.TB, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	args := cmd.Args[1:]
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		// Also when the process ended on its own or was stopped earlier.
		if t.Failed() {
			t.Logf("log of %s (%s):\n%s", p.name, strings.Join(args, " "), p.Log())
		}
	})
	return p
}

func (p *proc) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// stop ends the process with SIGTERM (SIGKILL after 10 s).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// collector is a running cordon-collector.
type collector struct {
	*proc
	data, listen, api, token string
	// ns, when set, is the network namespace the collector runs in:
	// cordonctl and API calls are made from inside it.
	ns string
}

func startCollector(t testing.TB, data, listen, api string) *collector {
	t.Helper()
	return startCollectorWith(t, collectorConfig(t, ""), data, listen, api)
}

// startCollectorWith starts a collector with a configuration file.
func startCollectorWith(t testing.TB, config, data, listen, api string) *collector {
	t.Helper()
	p := start(t, "cordon-collector", "run", "--config", config, "--data", data, "--listen", listen, "--api", api)
	c := &collector{proc: p, data: data, listen: listen, api: api}
	c.waitReady(t)
	return c
}

// noPlaybookActions keeps the playbooks' automatic actions on the
// incident's timeline instead of sending them. The tests' agents watch
// the whole machine the suite runs on, its builds and other tests
// included, and an automatic isolation of an agent in the machine's own
// network namespace would cut that machine off: the next tests could not
// reach a collector across a veth until an agent removed the leftover
// table. TestRansomwarePlaybookIsolates runs the actions, with its agent
// in a namespace of its own.
const noPlaybookActions = "incidents:\n  playbook_dry_run: true\n"

// collectorConfig writes a collector configuration of noPlaybookActions
// and body and returns its path.
func collectorConfig(t testing.TB, body string) string {
	t.Helper()
	return writeCollectorConfig(t, noPlaybookActions+body)
}

// writeCollectorConfig writes body as a collector configuration and
// returns its path.
func writeCollectorConfig(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "collector.yml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitReady waits for the collector's admin key and API and keeps the key.
func (c *collector) waitReady(t testing.TB) {
	t.Helper()
	eventually(t, 30*time.Second, "the collector's admin key and API", func() error {
		b, err := os.ReadFile(filepath.Join(c.data, "admin.token"))
		if err != nil {
			return err
		}
		c.token = strings.TrimSpace(string(b))
		_, err = c.ctl("agents")
		return err
	})
}

func newCollector(t testing.TB) *collector {
	return startCollector(t, t.TempDir(),
		fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp")),
		fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")))
}

// ctl runs cordonctl against the collector and returns its stdout.
func (c *collector) ctl(args ...string) (string, error) {
	cmd := exec.Command(bin("cordonctl"), args...)
	if c.ns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", c.ns, bin("cordonctl")}, args...)...)
	}
	cmd.Env = append(os.Environ(), "CORDON_API=http://"+c.api, "CORDON_TOKEN="+c.token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("cordonctl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

func (c *collector) ctlJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out, err := c.ctl(args...)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("cordonctl %s printed no JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// enrollArgs creates a token and returns the arguments of a matching
// cordon-agent enroll.
func (c *collector) enrollArgs(t testing.TB, state string, tokenArgs ...string) []string {
	t.Helper()
	out, err := c.ctl(append([]string{"enroll-token", "create"}, tokenArgs...)...)
	if err != nil {
		t.Fatal(err)
	}
	token := lastLine(out)
	out, err = c.ctl("ca-pin")
	if err != nil {
		t.Fatal(err)
	}
	return []string{"enroll", "--collector", c.listen, "--token", token, "--ca-pin", lastLine(out), "--state", state}
}

// enroll enrolls an agent with state in a new folder and returns it and
// the agent id.
func (c *collector) enroll(t testing.TB, extra ...string) (state, id string) {
	t.Helper()
	state = t.TempDir()
	runEnroll(t, c.ns, func() *exec.Cmd {
		return exec.Command(bin("cordon-agent"), append(c.enrollArgs(t, state), extra...)...)
	})
	var ident struct {
		AgentID string `json:"agent_id"`
	}
	b, err := os.ReadFile(filepath.Join(state, "agent.json"))
	if err != nil || json.Unmarshal(b, &ident) != nil || ident.AgentID == "" {
		t.Fatalf("no agent id in the state folder after enrollment (%v)", err)
	}
	return state, ident.AgentID
}

// followEvents starts `cordon-agent events --json --follow` for the agent
// with state and returns its output and a stop function, which the test's
// end also calls.
func followEvents(t testing.TB, state string) (io.Reader, func()) {
	t.Helper()
	follow := exec.Command(bin("cordon-agent"), "events", "--state", state, "--json", "--follow")
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { follow.Process.Kill(); follow.Wait() }) }
	t.Cleanup(stop)
	return out, stop
}

// runEnroll runs the enrollment command mk makes and fails t when it
// fails, printing the packet path of the host and of ns.
func runEnroll(t testing.TB, ns string, mk func() *exec.Cmd) {
	t.Helper()
	if out, err := mk().CombinedOutput(); err != nil {
		t.Fatalf("enroll: %v\n%s\n%s", err, out, netDiagnostics(ns))
	}
}

// netDiagnostics describes the packet path, for a test that could not
// reach its collector: the kernel's last messages (a full connection
// tracking table says so there), and for the host's network namespace
// and ns (if not ""), connection tracking counts, firewall rules,
// routes, neighbours, interfaces with their packet and drop counters,
// and UDP sockets with their queues. What cannot be read is left out.
func netDiagnostics(ns string) string {
	var b strings.Builder
	if out, err := exec.Command("dmesg").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		fmt.Fprintf(&b, "kernel messages, the last %d:\n%s\n", min(20, len(lines)), strings.Join(lines[max(0, len(lines)-20):], "\n"))
	}
	places := []string{""}
	if ns != "" {
		places = append(places, ns)
	}
	for _, where := range places {
		run := func(name string, args ...string) {
			if where != "" {
				args = append([]string{"netns", "exec", where, name}, args...)
				name = "ip"
			}
			if out, err := exec.Command(name, args...).CombinedOutput(); err == nil {
				fmt.Fprintf(&b, "$ %s %s\n%s", name, strings.Join(args, " "), out)
			}
		}
		run("cat", "/proc/sys/net/netfilter/nf_conntrack_count", "/proc/sys/net/netfilter/nf_conntrack_max")
		run("cat", "/proc/sys/net/ipv4/conf/all/rp_filter")
		run("nft", "list", "ruleset")
		run("ip", "route")
		run("ip", "neigh")
		run("ip", "-s", "-br", "link")
		run("ss", "-uan")
	}
	return b.String()
}

type agentJSON struct {
	ID       string            `json:"id"`
	Hostname string            `json:"hostname"`
	Online   bool              `json:"online"`
	Isolated bool              `json:"isolated"`
	Tags     map[string]string `json:"tags"`
	LastSeen time.Time         `json:"last_seen"`
}

type findingJSON struct {
	ID      string `json:"id"`
	AgentID string `json:"agent_id"`
	Rule    struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"rule"`
	Severity string `json:"severity"`
	Attack   struct {
		Tactics    []string `json:"tactics"`
		Techniques []string `json:"techniques"`
	} `json:"attack"`
	Evidence []struct {
		Process struct {
			PID        int    `json:"pid"`
			Executable string `json:"executable"`
		} `json:"process"`
	} `json:"evidence"`
	Drill      bool      `json:"drill"`
	IncidentID string    `json:"incident_id"`
	DetectedAt time.Time `json:"detected_at"`
}

type incidentJSON struct {
	ID            string   `json:"id"`
	Title         string   `json:"title"`
	Status        string   `json:"status"`
	Type          string   `json:"type"`
	Priority      string   `json:"priority"`
	Impact        int      `json:"impact"`
	Urgency       int      `json:"urgency"`
	AffectedHosts []string `json:"affected_hosts"`
	FindingIDs    []string `json:"finding_ids"`
	Assignee      string   `json:"assignee"`
	Drill         bool     `json:"drill"`
}

func (c *collector) agentOnline(t testing.TB, id string) {
	t.Helper()
	eventually(t, 30*time.Second, "agent "+id+" online", func() error {
		var agents []agentJSON
		out, err := c.ctl("agents", "--json")
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(out), &agents); err != nil {
			return err
		}
		for _, a := range agents {
			if a.ID == id && a.Online {
				return nil
			}
		}
		return fmt.Errorf("not online in %s", out)
	})
}

// isOnline reports whether the collector's agent list shows agent id
// online.
func (c *collector) isOnline(t testing.TB, id string) bool {
	t.Helper()
	out, err := c.ctl("agents", "--json")
	if err != nil {
		t.Fatalf("listing agents: %v\n%s", err, out)
	}
	var agents []agentJSON
	if err := json.Unmarshal([]byte(out), &agents); err != nil {
		t.Fatalf("decoding the agent list: %v\n%s", err, out)
	}
	for _, a := range agents {
		if a.ID == id {
			return a.Online
		}
	}
	t.Fatalf("agent %s is not in the list: %s", id, out)
	return false
}

// eventually retries f until it succeeds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// copyExec copies an executable into dir and returns the copy's path.
func copyExec(t testing.TB, src, dir string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// shmDir makes a folder under /dev/shm removed after the test.
func shmDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "cordon-e2e-")
	if err != nil {
		t.Skipf("cannot create a folder in /dev/shm to run a binary from: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: the agent reads exec events from the kernel's netlink process connector, which needs CAP_NET_ADMIN; polling would miss a process as short-lived as /bin/true")
	}
}
