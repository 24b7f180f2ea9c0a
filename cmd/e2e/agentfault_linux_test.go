package e2e

import (
	"fmt"
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
	eventually(t, 120*time.Second, "every spooled finding stored", func() error {
		stored = c.storedFindings(t)
		have := map[string]bool{}
		for _, f := range stored {
			have[f.ID] = true
		}
		missing := 0
		for _, id := range spooled {
			if !have[id] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d missing", missing, len(spooled))
		}
		return nil
	})
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
