package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// netnsLab is a small network made of namespaces: the collector in the
// test's own namespace at hostIP, an agent host in namespace agent
// (agentIP towards the collector, agentSideIP towards the third host),
// and a third host in namespace third at thirdIP. The agent host routes
// everything else towards the third host, so that the isolation probe
// has a route and only the firewall can stop it.
type netnsLab struct {
	agent, third         string
	hostIP, agentIP      string
	agentSideIP, thirdIP string
	hostLink             string
}

// needNetns skips unless the test may create network namespaces and
// nftables tables in them.
func needNetns(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: the test creates network namespaces and veth pairs, and the agent installs nftables rules")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2) to create network namespaces")
	}
}

func sh(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetnsLab(t testing.TB) *netnsLab {
	t.Helper()
	needNetns(t)
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, rand.IntN(1000))
	net8 := 100 + rand.IntN(150)
	l := &netnsLab{
		agent: "cordon-a" + id, third: "cordon-t" + id,
		hostIP: fmt.Sprintf("10.%d.1.1", net8), agentIP: fmt.Sprintf("10.%d.1.2", net8),
		agentSideIP: fmt.Sprintf("10.%d.2.2", net8), thirdIP: fmt.Sprintf("10.%d.2.3", net8),
		hostLink: "cdh" + id,
	}
	sh(t, "ip", "netns", "add", l.agent)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.agent).Run() })
	sh(t, "ip", "netns", "add", l.third)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.third).Run() })
	for _, c := range [][]string{
		{"ip", "link", "add", l.hostLink, "type", "veth", "peer", "name", "cda" + id},
		{"ip", "link", "set", "cda" + id, "netns", l.agent},
		{"ip", "addr", "add", l.hostIP + "/24", "dev", l.hostLink},
		{"ip", "link", "set", l.hostLink, "up"},
		{"ip", "-n", l.agent, "link", "set", "lo", "up"},
		{"ip", "-n", l.agent, "addr", "add", l.agentIP + "/24", "dev", "cda" + id},
		{"ip", "-n", l.agent, "link", "set", "cda" + id, "up"},
		{"ip", "-n", l.agent, "link", "add", "cdb" + id, "type", "veth", "peer", "name", "cdt" + id},
		{"ip", "-n", l.agent, "link", "set", "cdt" + id, "netns", l.third},
		{"ip", "-n", l.agent, "addr", "add", l.agentSideIP + "/24", "dev", "cdb" + id},
		{"ip", "-n", l.agent, "link", "set", "cdb" + id, "up"},
		{"ip", "-n", l.agent, "route", "add", "default", "via", l.thirdIP},
		{"ip", "-n", l.third, "link", "set", "lo", "up"},
		{"ip", "-n", l.third, "addr", "add", l.thirdIP + "/24", "dev", "cdt" + id},
		{"ip", "-n", l.third, "link", "set", "cdt" + id, "up"},
	} {
		sh(t, c...)
	}
	return l
}

// in runs f on a thread inside namespace ns: sockets f creates belong to
// that namespace for their whole life.
func in(ns string, f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering namespace %s: %w", ns, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and dies with its goroutine.
		return errors.Join(ferr, fmt.Errorf("leaving namespace %s: %w", ns, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// echo serves a line echo on TCP addr inside namespace ns until the test
// ends.
func echo(t testing.TB, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := in(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					c.Write([]byte(line))
				}
			}()
		}
	}()
}

// reach reports whether a connection from namespace ns to addr gets its
// line echoed within a second.
func reach(ns, addr string) error {
	var c net.Conn
	if err := in(ns, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, time.Second)
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return fmt.Errorf("echo answered %q", line)
	}
	return nil
}

// startIn starts a binary in namespace ns, like start.
func startIn(t testing.TB, ns, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin(name)}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

// agentIn enrolls an agent in namespace ns with the collector and
// returns its state folder, id and configuration file.
func (c *collector) enrollIn(t testing.TB, ns string) (state, id, config string) {
	t.Helper()
	state = t.TempDir()
	runEnroll(t, ns, func() *exec.Cmd {
		return exec.Command("ip", append([]string{"netns", "exec", ns, bin("cordon-agent")}, c.enrollArgs(t, state)...)...)
	})
	id = agentID(t, state)
	config = filepath.Join(t.TempDir(), "agent.yaml")
	// The process connector only speaks in the initial network
	// namespace, so this agent polls.
	cfg := fmt.Sprintf("state: %s\nsensors: {process: {mode: poll}}\nlog_level: debug\n", state)
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return state, id, config
}

func agentID(t testing.TB, state string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, "agent.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ident struct {
		AgentID string `json:"agent_id"`
	}
	if err := jsonUnmarshal(string(b), &ident); err != nil || ident.AgentID == "" {
		t.Fatalf("no agent id in %s: %v", state, err)
	}
	return ident.AgentID
}

func (c *collector) agent(t testing.TB, id string) agentJSON {
	t.Helper()
	var agents []agentJSON
	c.ctlJSON(t, &agents, "agents", "--json")
	for _, a := range agents {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("agent %s not listed", id)
	return agentJSON{}
}

// wantIsolated checks the third host in both directions: reachable
// when isolated is false, unreachable when it is true.
func (l *netnsLab) wantIsolated(t testing.TB, isolated bool, when string) {
	t.Helper()
	out := reach(l.agent, net.JoinHostPort(l.thirdIP, "7007"))
	in := reach(l.third, net.JoinHostPort(l.agentSideIP, "7008"))
	if isolated && (out == nil || in == nil) {
		t.Fatalf("%s: the third host is still reachable (agent→third: %v, third→agent: %v)", when, out, in)
	}
	if !isolated && (out != nil || in != nil) {
		t.Fatalf("%s: the third host is unreachable (agent→third: %v, third→agent: %v)", when, out, in)
	}
}

func TestIsolationInNamespaces(t *testing.T) {
	l := newNetnsLab(t)
	c := startCollector(t, t.TempDir(),
		fmt.Sprintf("%s:%d", l.hostIP, freePort(t, "udp")),
		fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")))
	state, id, config := c.enrollIn(t, l.agent)
	agent := startIn(t, l.agent, "cordon-agent", "run", "--config", config)
	c.agentOnline(t, id)

	echo(t, l.third, net.JoinHostPort(l.thirdIP, "7007"))
	echo(t, l.agent, net.JoinHostPort(l.agentSideIP, "7008"))
	l.wantIsolated(t, false, "before isolation")

	out, err := c.ctl("isolate", id, "--reason", "netns test", "--wait", "--timeout", "30s")
	if err != nil {
		t.Fatalf("isolate: %v\n%s\n%s", err, out, agent.Log())
	}
	t.Logf("isolate: %s", out)
	if !strings.Contains(out, "collector channel answered") {
		t.Fatalf("isolate succeeded without its proof in the result:\n%s", out)
	}
	l.wantIsolated(t, true, "after isolate")
	if !l.hasTable(t) {
		t.Fatal("no table inet cordon in the agent's namespace after isolate")
	}
	eventually(t, 10*time.Second, "cordonctl agents to show the agent isolated", func() error {
		if a := c.agent(t, id); !a.Isolated {
			return fmt.Errorf("agent %s: isolated=false", id)
		}
		return nil
	})
	if st := agentStatus(t, state); !strings.Contains(st, `"isolated": true`) {
		t.Fatalf("cordon-agent status does not show the isolation:\n%s", st)
	}

	// Still heartbeating and answering commands through the isolation.
	before := c.agent(t, id).LastSeen
	if out, err := c.ctl("drill", id, "--wait", "--timeout", "30s"); err != nil {
		t.Fatalf("a command to the isolated agent: %v\n%s", err, out)
	}
	if after := c.agent(t, id).LastSeen; !after.After(before) {
		t.Fatalf("no heartbeat from the isolated agent: last seen %s, before the command %s", after, before)
	}

	// A restart keeps the host isolated and the agent connected.
	agent.stop()
	l.wantIsolated(t, true, "with the agent stopped")
	restarted := time.Now()
	agent = startIn(t, l.agent, "cordon-agent", "run", "--config", config)
	eventually(t, 30*time.Second, "the restarted agent to reconnect", func() error {
		if a := c.agent(t, id); !a.Online || !a.LastSeen.After(restarted) || !a.Isolated {
			return fmt.Errorf("agent %+v", a)
		}
		return nil
	})
	l.wantIsolated(t, true, "after the agent restarted")
	if out, err := c.ctl("drill", id, "--wait", "--timeout", "30s"); err != nil {
		t.Fatalf("a command to the restarted isolated agent: %v\n%s", err, out)
	}

	if out, err := c.ctl("release", id, "--wait", "--timeout", "30s"); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	l.wantIsolated(t, false, "after release")
	eventually(t, 10*time.Second, "cordonctl agents to show the agent released", func() error {
		if a := c.agent(t, id); a.Isolated {
			return fmt.Errorf("agent %s: isolated=true", id)
		}
		return nil
	})
	if l.hasTable(t) {
		t.Fatal("table inet cordon is still there after release")
	}

	// The day the collector is gone: a local release with the code an
	// admin reads on the collector, and only with that code.
	if out, err := c.ctl("isolate", id, "--reason", "break-glass test", "--wait", "--timeout", "30s"); err != nil {
		t.Fatalf("isolate again: %v\n%s", err, out)
	}
	out, err = c.ctl("agent", "break-glass", id)
	if err != nil {
		t.Fatal(err)
	}
	code := lastLine(out)
	local := func(code string) (string, error) {
		out, err := exec.Command("ip", "netns", "exec", l.agent, bin("cordon-agent"), "release", "--break-glass", code, "--state", state).CombinedOutput()
		return string(out), err
	}
	if out, err := local("aaaaaaaaaaaaaaaaaaaaaaaa"); err == nil || !strings.Contains(out, "does not match") {
		t.Fatalf("a wrong break-glass code was not refused: %v\n%s", err, out)
	}
	l.wantIsolated(t, true, "after a wrong break-glass code")
	if out, err := local(code); err != nil {
		t.Fatalf("cordon-agent release --break-glass: %v\n%s", err, out)
	}
	l.wantIsolated(t, false, "after the break-glass release")
	if st := agentStatus(t, state); !strings.Contains(st, `"isolated": false`) {
		t.Fatalf("cordon-agent status still shows the isolation:\n%s", st)
	}
}

// hasTable reports whether the agent's namespace holds Cordon's table.
func (l *netnsLab) hasTable(t testing.TB) bool {
	t.Helper()
	var found bool
	if err := in(l.agent, func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
		for _, tb := range tables {
			found = found || tb.Name == "cordon"
		}
		return err
	}); err != nil {
		t.Fatalf("listing nftables tables: %v", err)
	}
	return found
}

func agentStatus(t testing.TB, state string) string {
	t.Helper()
	out, err := exec.Command(bin("cordon-agent"), "status", "--state", state, "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("cordon-agent status: %v\n%s", err, out)
	}
	return string(out)
}

// Ransomware on a host below high criticality: as soon as the incident
// opens, the default ransomware playbook isolates the host, with no
// responder involved, and the incident's timeline says so. The files it
// renames were there before the agent started, as a victim's are.
func TestRansomwarePlaybookIsolates(t *testing.T) {
	l := newNetnsLab(t)
	// The playbooks act for real here, on an agent in a namespace of its
	// own (see noPlaybookActions).
	conf := writeCollectorConfig(t, "incidents:\n  playbook_dry_run: false\n")
	c := startCollectorWith(t, conf, t.TempDir(),
		fmt.Sprintf("%s:%d", l.hostIP, freePort(t, "udp")),
		fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")))
	state, id, config := c.enrollIn(t, l.agent)
	victims := t.TempDir() // below /tmp, which the agent watches
	const files = 250      // the rule fires at 200 in 10 s
	for i := range files {
		if err := os.WriteFile(filepath.Join(victims, fmt.Sprintf("doc%03d.txt", i)), []byte("quarterly figures\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startIn(t, l.agent, "cordon-agent", "run", "--config", config)
	c.agentOnline(t, id)
	echo(t, l.third, net.JoinHostPort(l.thirdIP, "7007"))
	echo(t, l.agent, net.JoinHostPort(l.agentSideIP, "7008"))
	l.wantIsolated(t, false, "before the attack")
	waitFileSensor(t, state, victims)

	start := time.Now()
	for i := range files {
		old := filepath.Join(victims, fmt.Sprintf("doc%03d.txt", i))
		if err := os.Rename(old, old+".locked"); err != nil {
			t.Fatal(err)
		}
	}
	inc := c.waitIncident(t, "a ransomware incident on "+id, func(i incidentJSON) bool {
		return i.Type == "ransomware" && slices.Contains(i.AffectedHosts, id)
	})
	eventually(t, 30*time.Second, "the ransomware playbook to isolate the agent", func() error {
		if !c.agent(t, id).Isolated {
			return errors.New("not isolated")
		}
		return nil
	})
	t.Logf("from the first rename to the host isolated by the playbook: %s", time.Since(start).Round(time.Millisecond))
	l.wantIsolated(t, true, "after the ransomware playbook")
	if !l.hasTable(t) {
		t.Fatal("no table inet cordon in the agent's namespace after the playbook's isolation")
	}
	var shown handledIncident
	c.ctlJSON(t, &shown, "incident", "show", inc.ID, "--json")
	sent := false
	for _, e := range shown.Timeline {
		sent = sent || (e.Action == "playbook_action" && strings.Contains(e.Detail, "isolate on "+id+" sent as command"))
	}
	if !sent {
		t.Errorf("the incident's timeline does not say the playbook isolated %s: %+v", id, shown.Timeline)
	}
}

// waitFileSensor waits until the agent with state reports a file written
// in dir, so that what the test does there next is seen.
func waitFileSensor(t *testing.T, state, dir string) {
	t.Helper()
	out, stop := followEvents(t, state)
	defer stop()
	probe := filepath.Join(dir, "probe")
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), probe) {
				close(seen)
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	eventually(t, 30*time.Second, "the file sensor to report "+probe, func() error {
		if err := os.WriteFile(probe, []byte("probe\n"), 0o600); err != nil {
			return err
		}
		select {
		case <-seen:
			return nil
		case <-time.After(time.Second):
			return errors.New("not reported")
		}
	})
	if err := os.Remove(probe); err != nil {
		t.Fatal(err)
	}
}

// An isolation whose proof fails is rolled back and reported as failed:
// here the probe lies inside an allowance, so a datagram still leaves.
func TestIsolationRollsBackWhenUnproven(t *testing.T) {
	l := newNetnsLab(t)
	c := startCollector(t, t.TempDir(),
		fmt.Sprintf("%s:%d", l.hostIP, freePort(t, "udp")),
		fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")))
	state, id, config := c.enrollIn(t, l.agent)
	cfg := fmt.Sprintf("state: %s\nsensors: {process: {mode: poll}}\nisolation:\n  allow_cidrs: [%s/32]\n  probe: %s:9\n", state, l.thirdIP, l.thirdIP)
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startIn(t, l.agent, "cordon-agent", "run", "--config", config)
	c.agentOnline(t, id)
	echo(t, l.third, net.JoinHostPort(l.thirdIP, "7007"))

	out, err := c.ctl("isolate", id, "--reason", "unprovable", "--wait", "--timeout", "30s")
	if err == nil || !strings.Contains(out, "rolled back") || !strings.Contains(out, "still left the host") {
		t.Fatalf("an unproven isolation was not reported as failed and rolled back: %v\n%s", err, out)
	}
	if l.hasTable(t) {
		t.Fatal("table inet cordon is still there after the rollback")
	}
	if err := reach(l.agent, net.JoinHostPort(l.thirdIP, "7007")); err != nil {
		t.Fatalf("the host is still cut off after the rollback: %v", err)
	}
	if st := agentStatus(t, state); !strings.Contains(st, `"isolated": false`) {
		t.Fatalf("cordon-agent status shows an isolation after the rollback:\n%s", st)
	}
}

// The failure users fear most: an isolation that cuts the agent off its
// collector. Here the collector's name resolves, at isolation time, to an
// address the live connection does not use, so the rules would cut the
// channel: the agent must notice, remove its table within 10 seconds and
// report the failure over the channel it kept.
func TestIsolationRollsBackWhenChannelLost(t *testing.T) {
	l := newNetnsLab(t)
	port := freePort(t, "udp")
	c := startCollector(t, t.TempDir(), fmt.Sprintf("%s:%d", l.hostIP, port), fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")))
	state, id, config := c.enrollIn(t, l.agent)

	// ip netns exec puts /etc/netns/NS/hosts over /etc/hosts.
	etc := filepath.Join("/etc/netns", l.agent)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Skipf("cannot give the namespace its own hosts file: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	hosts := filepath.Join(etc, "hosts")
	setHost := func(ip string) {
		t.Helper()
		// Written in place: the bind mount follows the inode.
		f, err := os.OpenFile(hosts, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "127.0.0.1 localhost\n%s collector.test\n", ip)
		f.Close()
	}
	setHost(l.hostIP)
	cfg := fmt.Sprintf("state: %s\ncollector: collector.test:%d\nsensors: {process: {mode: poll}}\n", state, port)
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := startIn(t, l.agent, "cordon-agent", "run", "--config", config)
	c.agentOnline(t, id)

	// Nothing answers at the new address; the live connection stays on
	// the old one.
	setHost(strings.TrimSuffix(l.hostIP, ".1") + ".9")
	time.Sleep(6 * time.Second) // past the resolver's hosts-file recheck

	start := time.Now()
	var queued struct {
		ID string `json:"id"`
	}
	c.ctlJSON(t, &queued, "isolate", id, "--reason", "cut off", "--json")
	eventually(t, 12*time.Second, "the agent to roll the isolation back", func() error {
		if !strings.Contains(agent.Log(), "isolation failed and was rolled back") {
			return fmt.Errorf("no rollback in the agent's log yet")
		}
		return nil
	})
	if took := time.Since(start); took > 12*time.Second {
		t.Errorf("rolled back %s after the request, want within 10 s of the rules going in", took)
	}
	if l.hasTable(t) {
		t.Fatal("table inet cordon is still there after the rollback")
	}

	// The cut killed the connection the result had to travel on; once
	// the name points at the collector again, the agent reconnects, the
	// collector delivers the command again and the agent answers with
	// its journaled result instead of running it twice.
	setHost(l.hostIP)
	var cmd struct {
		Status string `json:"status"`
		Result string `json:"result"`
	}
	eventually(t, 60*time.Second, "the failure to reach the collector", func() error {
		if err := c.get(t, "/api/v1/commands/"+queued.ID, &cmd); err != nil {
			return err
		}
		if cmd.Status != "failed" {
			return fmt.Errorf("command is %s", cmd.Status)
		}
		return nil
	})
	if !strings.Contains(cmd.Result, "collector channel did not answer") || !strings.Contains(cmd.Result, "rolled back") {
		t.Fatalf("result %q does not say the channel was lost and the rules rolled back", cmd.Result)
	}
	if n := strings.Count(agent.Log(), `msg="isolation failed and was rolled back"`); n != 1 {
		t.Errorf("the isolation ran %d times, want once", n)
	}
	eventually(t, 10*time.Second, "the agent online and not isolated", func() error {
		if a := c.agent(t, id); !a.Online || a.Isolated {
			return fmt.Errorf("agent %+v", a)
		}
		return nil
	})
}
