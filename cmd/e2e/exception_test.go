package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/detectors"
)

// An exception in the agent's configuration silences one rule on the
// events it matches, and only that rule.
func TestRuleException(t *testing.T) {
	needRoot(t)
	c := newCollector(t)
	state, id := c.enroll(t)
	dir := shmDir(t)
	cfg := filepath.Join(t.TempDir(), "agent.yml")
	yaml := "detection:\n  exceptions:\n" +
		"    - rule: " + sigmaShmRule + "\n" +
		"      where:\n        Image|startswith: " + dir + "/\n" +
		"      expires: 2099-01-01\n" +
		"      reason: this test's binaries run from /dev/shm on purpose\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, "cordon-agent", "run", "--state", state, "--config", cfg)
	c.agentOnline(t, id)

	exe := copyExec(t, "/bin/true", dir)
	if out, err := exec.Command(exe).CombinedOutput(); err != nil {
		t.Fatalf("running %s: %v %s", exe, err, out)
	}
	eventually(t, 30*time.Second, "the built-in finding for "+exe, func() error {
		for _, f := range findingsFor(t, c, id, exe) {
			if f.Rule.ID == detectors.RuleIDExecFromTempDir {
				return nil
			}
		}
		return errors.New("none yet")
	})
	// Findings of one event are spooled together; give a straggler time.
	time.Sleep(2 * time.Second)
	for _, f := range findingsFor(t, c, id, exe) {
		if f.Rule.ID == sigmaShmRule {
			t.Fatalf("the excepted rule still reported %s", exe)
		}
	}
}
