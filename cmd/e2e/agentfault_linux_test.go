package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/cordon-edr/cordon/detectors"
)

// spooledID matches the agent's log line for a finding it spooled.
var spooledID = regexp.MustCompile(`msg=finding .*finding=([0-9a-f-]{36})`)

// ackedBatch matches the agent's debug log line for an acknowledged batch.
var ackedBatch = regexp.MustCompile(`msg="batch acknowledged".* findings=(\d+)`)

// spooledIDs returns the ids of the findings an agent's log says it
// spooled.
func spooledIDs(log string) []string {
	var ids []string
	for _, m := range spooledID.FindAllStringSubmatch(log, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// spooledFor counts the findings of the rule named name an agent's log
// says it spooled with exe in their summary.
func spooledFor(log, name, exe string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "msg=finding ") && strings.Contains(l, `rule="`+name+`"`) && strings.Contains(l, exe) {
			n++
		}
	}
	return n
}

// storedFindings pages through every finding the collector lists.
func (c *collector) storedFindings(t *testing.T) []findingJSON {
	t.Helper()
	var all []findingJSON
	cursor := ""
	for {
		var page struct {
			Items []findingJSON `json:"items"`
			Next  string        `json:"next"`
		}
		if err := c.get(t, "/api/v1/findings?limit=1000&cursor="+url.QueryEscape(cursor), &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all
		}
		cursor = page.Next
	}
}

// ranExe counts the findings of rule whose evidence ran exe.
func ranExe(fs []findingJSON, rule, exe string) int {
	n := 0
	for _, f := range fs {
		if f.Rule.ID != rule {
			continue
		}
		for _, ev := range f.Evidence {
			if ev.Process.Executable == exe {
				n++
				break
			}
		}
	}
	return n
}

// agentConfig writes an agent configuration for state with extra YAML
// lines and returns its path.
func agentConfig(t *testing.T, state string, extra ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	cfg := fmt.Sprintf("state: %s\nlog_level: debug\n%s", state, strings.Join(extra, "\n"))
	if err := os.WriteFile(path, []byte(cfg+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runMany runs exe n times, one after the other.
func runMany(t *testing.T, exe string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if out, err := exec.Command(exe).CombinedOutput(); err != nil {
			t.Fatalf("running %s: %v %s", exe, err, out)
		}
	}
}

// countDistinct checks that every id in want is stored exactly once and
// that no id is stored twice, and returns how many distinct ids are
// stored.
// waitStored waits until the collector stores every finding in ids.
func waitStored(t *testing.T, c *collector, ids []string) {
	t.Helper()
	eventually(t, 120*time.Second, "every spooled finding stored", func() error {
		have := map[string]bool{}
		for _, f := range c.storedFindings(t) {
			have[f.ID] = true
		}
		missing := 0
		for _, id := range ids {
			if !have[id] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d missing", missing, len(ids))
		}
		return nil
	})
}

func countDistinct(t *testing.T, stored []findingJSON, want []string) int {
	t.Helper()
	seen := map[string]int{}
	for _, f := range stored {
		seen[f.ID]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("finding %s is stored %d times", id, n)
		}
	}
	lost := 0
	for _, id := range want {
		if seen[id] == 0 {
			lost++
			if lost <= 5 {
				t.Errorf("finding %s was spooled by the agent but is not in the store", id)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d spooled findings lost", lost, len(want))
	}
	return len(seen)
}

// The agent is killed with SIGKILL while it sends a backlog of findings
// in batches: after a restart with the same state folder, every finding
// it had spooled is stored once.
func TestAgentKilledMidBatch(t *testing.T) {
	needRoot(t)
	c := newCollector(t)
	state, id := c.enroll(t)
	config := agentConfig(t, state)
	agent := start(t, "cordon-agent", "run", "--config", config)
	c.agentOnline(t, id)

	// A backlog of several batches (500 findings each at most): spooled
	// while the collector is away, sent when it is back.
	c.stop()
	exe := copyExec(t, "/bin/true", shmDir(t))
	const runs = 1500
	runMany(t, exe, runs)
	eventually(t, 120*time.Second, fmt.Sprintf("the agent to spool %d findings for %s", runs, exe), func() error {
		if n := spooledFor(agent.Log(), "Binary executed from a temporary directory", exe); n < runs {
			return fmt.Errorf("%d spooled", n)
		}
		return nil
	})
	spooled := spooledIDs(agent.Log())

	// Batches of findings for other processes on the host may have been
	// acknowledged before the collector stopped.
	ackedBefore := len(ackedBatch.FindAllString(agent.Log(), -1))
	c = startCollector(t, c.data, c.listen, c.api)
	// Kill the agent as soon as the collector acknowledged its first
	// batch of the backlog: the next one is on its way.
	deadline := time.Now().Add(60 * time.Second)
	for len(ackedBatch.FindAllString(agent.Log(), -1)) == ackedBefore {
		if time.Now().After(deadline) {
			t.Fatal("no batch acknowledged within 60s of the collector's restart")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := agent.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-agent.done
	batches, acked := 0, 0
	for _, m := range ackedBatch.FindAllStringSubmatch(agent.Log(), -1)[ackedBefore:] {
		batches++
		n, _ := strconv.Atoi(m[1])
		acked += n
	}
	if acked >= len(spooled) {
		t.Fatalf("all %d findings were acknowledged before the kill; the test needs the kill mid-backlog", acked)
	}

	agent = start(t, "cordon-agent", "run", "--config", config)
	var stored []findingJSON
	waitStored(t, c, spooled)
	// Give a duplicate time to show up, then count again.
	time.Sleep(3 * time.Second)
	stored = c.storedFindings(t)
	distinct := countDistinct(t, stored, spooled)
	if n := ranExe(stored, detectors.RuleIDExecFromTempDir, exe); n != runs {
		t.Errorf("%d findings of the temporary-directory rule for %s stored, want one per run: %d", n, exe, runs)
	}
	// Other processes on the host keep the spool moving, so pending
	// need not be zero here; nothing may have been dropped.
	if st := agentStatus(t, state); !strings.Contains(st, `"dropped": 0`) {
		t.Errorf("the agent dropped findings:\n%s", st)
	}
	t.Logf("%d findings spooled; %d batch(es) of %d findings acknowledged when SIGKILL hit; %d stored after the restart (with findings for other processes since), each once",
		len(spooled), batches, acked, distinct)
}

// startCollectorIn starts a collector inside network namespace ns, its
// agent port and API on addresses of that namespace.
func startCollectorIn(t *testing.T, ns, data, listen, api string) *collector {
	t.Helper()
	p := startIn(t, ns, "cordon-collector", "run", "--config", collectorConfig(t, ""), "--data", data, "--listen", listen, "--api", api)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the collector in %s:\n%s", ns, p.Log())
		}
	})
	c := &collector{proc: p, data: data, listen: listen, api: api, ns: ns}
	c.waitReady(t)
	return c
}

// httpClient returns a client for the collector's API, which dials from
// inside the collector's namespace when it has one.
func (c *collector) httpClient() *http.Client {
	if c.ns == "" {
		return http.DefaultClient
	}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			err = in(c.ns, func() error {
				var d net.Dialer
				conn, err = d.DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
	}}
}

// agentConnected waits until cordon-agent status says the agent is (or
// is not) connected to its collector.
func agentConnected(t *testing.T, state string, want bool, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("cordon-agent status to say connected: %v", want), func() error {
		if st := agentStatus(t, state); !strings.Contains(st, fmt.Sprintf(`"connected": %v`, want)) {
			return fmt.Errorf("status:\n%s", st)
		}
		return nil
	})
}

// The link between agent and collector is cut and restored: the
// collector runs in a network namespace of its own, reached through a
// veth pair, and the agent on the host. Findings raised while the link
// is down are spooled, and once it is back the agent reconnects and
// every finding arrives once.
func TestLinkCutAndRestored(t *testing.T) {
	needRoot(t)
	needNetns(t)
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, rand.IntN(1000))
	ns, hostLink := "cordon-c"+id, "cch"+id
	net8 := 100 + rand.IntN(150)
	hostIP, collIP := fmt.Sprintf("10.%d.7.1", net8), fmt.Sprintf("10.%d.7.2", net8)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("creating a network namespace is not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, c := range [][]string{
		{"ip", "link", "add", hostLink, "type", "veth", "peer", "name", "ccc" + id},
		{"ip", "link", "set", "ccc" + id, "netns", ns},
		{"ip", "addr", "add", hostIP + "/24", "dev", hostLink},
		{"ip", "link", "set", hostLink, "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "addr", "add", collIP + "/24", "dev", "ccc" + id},
		{"ip", "-n", ns, "link", "set", "ccc" + id, "up"},
	} {
		sh(t, c...)
	}
	// Deleting the namespace removes the pair with it; the host end goes
	// too should the test fail before.
	t.Cleanup(func() { exec.Command("ip", "link", "del", hostLink).Run() })

	// The namespace is the test's own: fixed ports are free in it.
	c := startCollectorIn(t, ns, t.TempDir(), collIP+":7443", "127.0.0.1:7480")
	state, agentID := c.enroll(t)
	agent := start(t, "cordon-agent", "run", "--config", agentConfig(t, state))
	c.agentOnline(t, agentID)
	agentConnected(t, state, true, 30*time.Second)

	sh(t, "ip", "link", "set", hostLink, "down")
	cut := time.Now()
	exe := copyExec(t, "/bin/true", shmDir(t))
	const runs = 100
	runMany(t, exe, runs)
	eventually(t, 60*time.Second, fmt.Sprintf("the agent to spool %d findings for %s", runs, exe), func() error {
		if n := spooledFor(agent.Log(), "Binary executed from a temporary directory", exe); n < runs {
			return fmt.Errorf("%d spooled", n)
		}
		return nil
	})
	// Keep the link down until both sides have noticed the cut, so that
	// the test covers a reconnection and not a connection that merely
	// waited. Both sides close a connection that heard nothing for the
	// idle timeout (15 s by default, with a keep-alive every 5 s).
	var agentNoticed, collectorNoticed time.Duration
	eventually(t, 120*time.Second, "the agent and the collector to notice the cut", func() error {
		if agentNoticed == 0 && strings.Contains(agentStatus(t, state), `"connected": false`) {
			agentNoticed = time.Since(cut)
		}
		if collectorNoticed == 0 && !c.isOnline(t, agentID) {
			collectorNoticed = time.Since(cut)
		}
		if agentNoticed == 0 || collectorNoticed == 0 {
			return fmt.Errorf("agent noticed after %s, collector after %s (0: not yet)", agentNoticed, collectorNoticed)
		}
		return nil
	})
	if n := strings.Count(agent.Log(), "collector connection lost"); n < 1 {
		t.Errorf("the agent did not log the lost connection")
	}
	if !strings.Contains(c.Log(), "agent disconnected") {
		t.Errorf("the collector did not log the agent's disconnection")
	}
	if err := exec.Command("ping", "-c", "1", "-W", "1", collIP).Run(); err == nil {
		t.Fatal("the collector's address still answers with the link down")
	}

	sh(t, "ip", "link", "set", hostLink, "up")
	restored := time.Now()
	agentConnected(t, state, true, 120*time.Second)
	reconnected := time.Since(restored)
	c.agentOnline(t, agentID)
	if n := strings.Count(agent.Log(), "connected to collector"); n < 2 {
		t.Errorf("the agent logged %d connections to the collector, want the first and one after the link came back", n)
	}
	var stored []findingJSON
	eventually(t, 60*time.Second, fmt.Sprintf("%d findings for %s stored", runs, exe), func() error {
		stored = c.storedFindings(t)
		if n := ranExe(stored, detectors.RuleIDExecFromTempDir, exe); n != runs {
			return fmt.Errorf("%d stored", n)
		}
		return nil
	})
	// Other processes on the host (other tests, builds) raise findings
	// too and keep the spool moving: every finding spooled by now must
	// arrive, though the newest may still be on their way.
	spooled := spooledIDs(agent.Log())
	waitStored(t, c, spooled)
	// Give a duplicate time to show up, then count again.
	time.Sleep(3 * time.Second)
	stored = c.storedFindings(t)
	countDistinct(t, stored, spooled)
	if n := ranExe(stored, detectors.RuleIDExecFromTempDir, exe); n != runs {
		t.Errorf("%d findings for %s stored, want %d", n, exe, runs)
	}
	if n := len(connectTimes(t, c.Log())); n < 2 {
		t.Errorf("the collector logged %d agent sessions, want the first and one after the link came back", n)
	}
	t.Logf("%d findings raised with the link down; the agent noticed the cut after %s, the collector showed it offline after %s, the agent reconnected %s after the link came back, and every finding was stored once",
		runs, agentNoticed.Round(100*time.Millisecond), collectorNoticed.Round(100*time.Millisecond), reconnected.Round(100*time.Millisecond))
}

// While the host is isolated, the agent checks its nftables table: when
// someone deletes it, the agent puts it back, logs it and raises a
// finding.
func TestIsolationTableRestoredWhenDeleted(t *testing.T) {
	l := newNetnsLab(t)
	c := startCollector(t, t.TempDir(),
		fmt.Sprintf("%s:%d", l.hostIP, freePort(t, "udp")),
		fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")))
	_, id, config := c.enrollIn(t, l.agent)
	agent := startIn(t, l.agent, "cordon-agent", "run", "--config", config)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the agent:\n%s", agent.Log())
		}
	})
	c.agentOnline(t, id)
	echo(t, l.third, net.JoinHostPort(l.thirdIP, "7007"))
	echo(t, l.agent, net.JoinHostPort(l.agentSideIP, "7008"))

	if out, err := c.ctl("isolate", id, "--reason", "watchdog test", "--wait", "--timeout", "30s"); err != nil {
		t.Fatalf("isolate: %v\n%s", err, out)
	}
	l.wantIsolated(t, true, "after isolate")

	// What nft delete table inet cordon does.
	if err := in(l.agent, func() error {
		nc, err := nftables.New()
		if err != nil {
			return err
		}
		nc.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "cordon"})
		return nc.Flush()
	}); err != nil {
		t.Fatalf("deleting the table: %v", err)
	}
	deleted := time.Now()
	if l.hasTable(t) {
		t.Fatal("the table is still there after nft delete table")
	}
	eventually(t, 30*time.Second, "the agent to put the table back", func() error {
		if !l.hasTable(t) {
			return fmt.Errorf("no table inet cordon")
		}
		return nil
	})
	back := time.Since(deleted)
	l.wantIsolated(t, true, "after the agent re-applied the table")
	if !strings.Contains(agent.Log(), "isolation rules were removed or changed; re-applied") {
		t.Errorf("the agent did not log the re-application")
	}
	var f findingJSON
	eventually(t, 30*time.Second, "a tamper finding from the agent", func() error {
		for _, s := range c.storedFindings(t) {
			if s.Rule.ID == detectors.RuleIDIsolationTampered && s.AgentID == id {
				f = s
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	if f.Severity != "high" {
		t.Errorf("tamper finding severity %q, want high", f.Severity)
	}
	// Still reachable for the collector, and released as usual.
	if out, err := c.ctl("release", id, "--wait", "--timeout", "30s"); err != nil {
		t.Fatalf("release: %v\n%s", err, out)
	}
	l.wantIsolated(t, false, "after release")
	t.Logf("table deleted; back after %s, finding %s raised", back.Round(100*time.Millisecond), f.ID)
}

// mountTmpfs mounts a tmpfs of size (such as "16m") on a new folder,
// unmounted after the test, and skips when mounting is not permitted.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mounting a tmpfs is not permitted here: %v: %s", err, out)
	}
	// Registered after TempDir's cleanup, so it runs before it.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// plainDir makes a folder outside the temporary directories (whose
// executables the built-in rule flags as medium), removed after the test.
func plainDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "cordon-e2e-")
	if err != nil {
		t.Skipf("cannot create a folder in /run: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// spoolStatus is the spool part of `cordon-agent status --json`.
type spoolStatus struct {
	Pending           int64             `json:"pending"`
	Dropped           int64             `json:"dropped"`
	DroppedBySeverity map[string]uint64 `json:"dropped_by_severity"`
	Full              string            `json:"full"`
	FreeBytes         uint64            `json:"free_bytes"`
}

func agentSpool(t *testing.T, state string) spoolStatus {
	t.Helper()
	var st struct {
		Spool spoolStatus `json:"spool"`
	}
	if err := json.Unmarshal([]byte(agentStatus(t, state)), &st); err != nil {
		t.Fatalf("decoding the agent's status: %v", err)
	}
	return st.Spool
}

// alive fails the test when the agent has ended.
func alive(t *testing.T, agent *proc) {
	t.Helper()
	select {
	case <-agent.done:
		l := agent.Log()
		t.Fatalf("agent ended:\n%s", l[max(0, len(l)-3000):])
	default:
	}
}

// spooledNice counts the high-severity findings for nice an agent's log
// says it spooled (other processes on the host may raise findings too).
func spooledNice(log string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "msg=finding ") && strings.Contains(l, "severity=high") && strings.Contains(l, "/usr/bin/nice") {
			n++
		}
	}
	return n
}

// highNice counts the high-severity findings whose evidence ran nice.
func highNice(fs []findingJSON) int {
	n := 0
	for _, f := range fs {
		if f.Severity == "high" && ranExe([]findingJSON{f}, f.Rule.ID, "/usr/bin/nice") > 0 {
			n++
		}
	}
	return n
}

// The agent's state folder is a 16 MiB tmpfs and the collector is down:
// low-severity findings fill the spool until the free space falls under
// the reserve. The agent keeps running, its status says the spool is full
// for lack of disk with the drops counted, a high-severity finding raised
// then is still spooled while low ones are dropped, and everything
// spooled reaches the collector when it returns. The agent also starts
// on the nearly full disk, and takes low findings again once space is
// freed.
func TestAgentDiskFull(t *testing.T) {
	needRoot(t)
	nice, err := exec.LookPath("nice")
	if err != nil || nice != "/usr/bin/nice" {
		t.Skipf("the high-severity rule needs /usr/bin/nice: %q %v", nice, err)
	}
	state := mountTmpfs(t, "16m")
	c := newCollector(t)
	if out, err := exec.Command(bin("cordon-agent"), c.enrollArgs(t, state)...).CombinedOutput(); err != nil {
		t.Fatalf("enroll: %v\n%s", err, out)
	}
	id := agentID(t, state)
	config := agentConfig(t, state, "history: {enabled: false}")
	agent := start(t, "cordon-agent", "run", "--config", config)
	c.agentOnline(t, id)
	c.stop()

	// A copy of /bin/true named groups, outside temporary folders: one
	// low-severity finding per run.
	low := filepath.Join(plainDir(t), "groups")
	if err := os.WriteFile(low, mustRead(t, "/bin/true"), 0o755); err != nil {
		t.Fatal(err)
	}
	var sp spoolStatus
	for round := 0; ; round++ {
		if round == 60 {
			t.Fatalf("spool not full for lack of disk after %d rounds: %+v", round, sp)
		}
		runMany(t, low, 250)
		time.Sleep(time.Second)
		alive(t, agent)
		sp = agentSpool(t, state)
		if sp.Full == "disk" && sp.DroppedBySeverity["low"] > 0 {
			t.Logf("round %d: spool full for lack of disk: %+v", round, sp)
			break
		}
	}

	// A high-severity finding raised while the disk is nearly full is
	// kept; the low ones around it are dropped.
	runNice := func() {
		cmd := exec.Command(nice, "/bin/sh") // no stdin: the shell exits at once
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nice /bin/sh: %v %s", err, out)
		}
	}
	before := sp
	for i := 0; i < 3; i++ {
		runNice()
		runMany(t, low, 100)
	}
	eventually(t, 30*time.Second, "the high findings spooled and the low ones dropped", func() error {
		alive(t, agent)
		sp = agentSpool(t, state)
		if n := spooledNice(agent.Log()); n < 3 {
			return fmt.Errorf("%d high findings spooled, want 3", n)
		}
		// Not every one of the 300 low findings need be dropped: badger
		// gives space back as it compacts, and while the free space is
		// above the soft reserve a low finding is spooled. That some are
		// dropped while every high one is kept is the point.
		if sp.DroppedBySeverity["low"] <= before.DroppedBySeverity["low"] {
			return fmt.Errorf("low drops %d, want more than the %d before", sp.DroppedBySeverity["low"], before.DroppedBySeverity["low"])
		}
		return nil
	})
	t.Logf("low findings dropped while the high ones were kept: %d of 300", sp.DroppedBySeverity["low"]-before.DroppedBySeverity["low"])
	if sp.DroppedBySeverity["high"] != 0 || sp.Full != "disk" {
		t.Fatalf("spool %+v, want full for disk with no high finding dropped", sp)
	}
	out, _ := exec.Command("df", "-k", state).CombinedOutput()
	t.Logf("after the high findings: %+v; %s", sp, lastLine(string(out)))

	// The agent starts on a disk filled by something else down to 2 MiB
	// free, under the hard reserve: it drops every finding, high ones
	// included, and does not crash.
	agent.stop()
	ballast := filepath.Join(state, "ballast")
	var fs syscall.Statfs_t
	if err := syscall.Statfs(state, &fs); err != nil {
		t.Fatal(err)
	}
	if free := int64(fs.Bavail) * fs.Bsize; free > 2<<20 {
		if err := os.WriteFile(ballast, make([]byte, free-2<<20), 0o600); err != nil {
			t.Fatalf("writing the ballast: %v", err)
		}
	}
	agent = start(t, "cordon-agent", "run", "--config", config)
	eventually(t, 30*time.Second, "the restarted agent's status", func() error {
		alive(t, agent)
		out, err := exec.Command(bin("cordon-agent"), "status", "--state", state, "--json").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	runNice()
	runMany(t, low, 100)
	eventually(t, 30*time.Second, "the high finding dropped under the hard reserve", func() error {
		alive(t, agent)
		if sp = agentSpool(t, state); sp.DroppedBySeverity["high"] == 0 || sp.Full != "disk" {
			return fmt.Errorf("spool %+v, want full for disk with a high finding dropped", sp)
		}
		return nil
	})
	if spooledNice(agent.Log()) > 0 {
		t.Fatal("a high finding was spooled under the hard reserve")
	}
	out, _ = exec.Command("df", "-k", state).CombinedOutput()
	t.Logf("restarted with the ballast: %+v; %s", sp, lastLine(string(out)))

	// The ballast removed, the disk is back between the reserves: high
	// findings are kept again, low ones still dropped.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	runMany(t, low, 100)
	runNice()
	eventually(t, 30*time.Second, "the restarted agent to drop low findings and keep the high one", func() error {
		alive(t, agent)
		sp = agentSpool(t, state)
		if sp.Full != "disk" || sp.DroppedBySeverity["low"] == 0 {
			return fmt.Errorf("spool %+v, want full for disk with low drops", sp)
		}
		if spooledNice(agent.Log()) == 0 {
			return errors.New("no high finding spooled after the restart")
		}
		return nil
	})
	spooled := spooledIDs(agent.Log())

	// The collector returns: every spooled finding arrives, the high ones
	// among them.
	c = startCollector(t, c.data, c.listen, c.api)
	eventually(t, 120*time.Second, "the kept findings at the collector", func() error {
		alive(t, agent)
		stored := c.storedFindings(t)
		if n := highNice(stored); n < 4 {
			return fmt.Errorf("%d high findings for nice stored, want 4", n)
		}
		have := map[string]bool{}
		for _, f := range stored {
			have[f.ID] = true
		}
		for _, id := range spooled {
			if !have[id] {
				return fmt.Errorf("finding %s spooled after the restart is not stored yet", id)
			}
		}
		if p := agentSpool(t, state).Pending; p != 0 {
			return fmt.Errorf("%d findings still pending", p)
		}
		return nil
	})
	out, _ = exec.Command("df", "-k", state).CombinedOutput()
	t.Logf("after delivery: %+v; %s", agentSpool(t, state), lastLine(string(out)))

	// Delivered, the findings give their space back: the spool is no
	// longer full and low findings are spooled again.
	eventually(t, 60*time.Second, "the spool no longer full", func() error {
		alive(t, agent)
		if sp := agentSpool(t, state); sp.Full != "" {
			return fmt.Errorf("spool %+v, want not full", sp)
		}
		return nil
	})
	n := len(spooledIDs(agent.Log()))
	runMany(t, low, 5)
	eventually(t, 30*time.Second, "low findings spooled again", func() error {
		alive(t, agent)
		if len(spooledIDs(agent.Log())) == n {
			return fmt.Errorf("no low finding spooled; spool %+v", agentSpool(t, state))
		}
		return nil
	})
	out, _ = exec.Command("df", "-k", state).CombinedOutput()
	t.Logf("space back: %+v; %s", agentSpool(t, state), lastLine(string(out)))
	for _, l := range strings.Split(agent.Log(), "\n") {
		if strings.Contains(l, "reclaim") {
			t.Log(l)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fillTo writes a ballast file in dir leaving about free bytes on its
// filesystem, and returns its path.
func fillTo(t *testing.T, dir string, free int64) string {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	ballast, err := os.CreateTemp(dir, "ballast-")
	if err != nil {
		t.Fatal(err)
	}
	defer ballast.Close()
	if now := int64(fs.Bavail) * fs.Bsize; now > free {
		if _, err := ballast.Write(make([]byte, now-free)); err != nil {
			t.Fatalf("writing the ballast: %v", err)
		}
	}
	return ballast.Name()
}

// The writers beside the spool hold back on a full disk: the history
// stops writing under its reserve and counts what it skipped, and a
// command the journal has no room for fails with a clear result, the
// agent running on.
func TestAgentDiskFullHistoryAndJournal(t *testing.T) {
	needRoot(t)
	state := mountTmpfs(t, "48m")
	c := newCollector(t)
	if out, err := exec.Command(bin("cordon-agent"), c.enrollArgs(t, state)...).CombinedOutput(); err != nil {
		t.Fatalf("enroll: %v\n%s", err, out)
	}
	id := agentID(t, state)
	agent := start(t, "cordon-agent", "run", "--config", agentConfig(t, state))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the agent:\n%s", agent.Log())
		}
	})
	c.agentOnline(t, id)

	// Between the history's reserve (24 MiB) and the spool's (8 MiB):
	// the history stops, findings are still spooled.
	ballast := fillTo(t, state, 16<<20)
	exe := copyExec(t, "/bin/true", shmDir(t))
	type historyStatus struct {
		Events          int64  `json:"events"`
		Segments        int    `json:"segments"`
		SkippedDiskFull uint64 `json:"skipped_disk_full"`
		DiskLow         bool   `json:"disk_low"`
		FreeBytes       uint64 `json:"free_bytes"`
	}
	var hs historyStatus
	eventually(t, 60*time.Second, "the history to skip events for lack of disk", func() error {
		alive(t, agent)
		runMany(t, exe, 20)
		var st struct {
			History *historyStatus `json:"history"`
		}
		if err := json.Unmarshal([]byte(agentStatus(t, state)), &st); err != nil {
			return err
		}
		if st.History == nil {
			return errors.New("no history in the status")
		}
		hs = *st.History
		if !hs.DiskLow || hs.SkippedDiskFull == 0 {
			return fmt.Errorf("history %+v", hs)
		}
		return nil
	})
	out, err := exec.Command(bin("cordon-agent"), "status", "--state", state).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "skipped for lack of disk") || !strings.Contains(string(out), "PAUSED: disk") {
		t.Errorf("cordon-agent status does not say the history is paused: %v\n%s", err, out)
	}
	if sp := agentSpool(t, state); sp.DroppedBySeverity["medium"] != 0 {
		t.Errorf("findings were dropped above the spool's reserve: %+v", sp)
	}
	t.Logf("history under its reserve: %+v", hs)

	// Under the hard reserve a command fails, saying why, and the agent
	// keeps running.
	ballast2 := fillTo(t, state, 2<<20)
	out2, err := c.ctl("drill", id, "--wait", "--json", "--timeout", "60s")
	if err == nil || !strings.Contains(out2, "disk is full") || !strings.Contains(out2, "not run") {
		t.Fatalf("drill with the disk full: %v\n%s", err, out2)
	}
	alive(t, agent)
	if !strings.Contains(agent.Log(), "command refused: no room to journal it") {
		t.Errorf("the agent did not log the refused command")
	}
	for _, l := range strings.Split(out2, "\n") {
		if strings.Contains(l, "disk is full") {
			t.Logf("drill with 2 MiB free: %s", strings.TrimSpace(l))
			break
		}
	}

	// With room again commands run and the history writes.
	for _, b := range []string{ballast, ballast2} {
		if err := os.Remove(b); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := c.ctl("drill", id, "--wait", "--timeout", "60s"); err != nil {
		t.Fatalf("drill with room again: %v\n%s", err, out)
	}
	eventually(t, 60*time.Second, "the history to write again", func() error {
		alive(t, agent)
		runMany(t, exe, 5)
		var st struct {
			History historyStatus `json:"history"`
		}
		if err := json.Unmarshal([]byte(agentStatus(t, state)), &st); err != nil {
			return err
		}
		if st.History.DiskLow || st.History.Events <= hs.Events || st.History.Segments == 0 {
			return fmt.Errorf("history %+v", st.History)
		}
		return nil
	})
}
