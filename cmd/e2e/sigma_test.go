package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// sigmaShmRule is SigmaHQ's "Process Execution From Shared Memory
// Directory", shipped in the agent's rule pack.
const sigmaShmRule = "5cd16c8f-44a6-4654-81e7-a84d6db507d4"

// A SigmaHQ rule from the shipped pack fires on a real exec, and its
// finding reaches cordonctl with the rule, severity and ATT&CK ids.
func TestSigmaFindingCarriesRuleAndAttack(t *testing.T) {
	needRoot(t)
	c := newCollector(t)
	state, id := c.enroll(t)
	start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)

	exe := copyExec(t, "/bin/true", shmDir(t))
	if out, err := exec.Command(exe).CombinedOutput(); err != nil {
		t.Fatalf("running %s: %v %s", exe, err, out)
	}
	var f findingJSON
	eventually(t, 30*time.Second, "a Sigma finding for "+exe, func() error {
		for _, g := range findingsFor(t, c, id, exe) {
			if g.Rule.ID == sigmaShmRule {
				f = g
				return nil
			}
		}
		return errors.New("none yet")
	})
	if f.Rule.Name != "Process Execution From Shared Memory Directory" || f.Rule.Version == "" || f.Severity != "high" {
		t.Errorf("rule and severity: %+v", f)
	}
	if !slices.Contains(f.Attack.Techniques, "T1027.011") || !slices.Contains(f.Attack.Tactics, "TA0005") || !slices.Contains(f.Attack.Tactics, "TA0002") {
		t.Errorf("ATT&CK ids: %+v", f.Attack)
	}
}

// `cordon-agent rules check` accepts good rules, names the file and line
// of a bad one, and exits non-zero.
func TestRulesCheck(t *testing.T) {
	dir := t.TempDir()
	good := "title: Good\nid: 3b0a2c7e-0000-4000-8000-000000000001\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: /nc\n  condition: sel\nlevel: high\n"
	bad := "title: Bad\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: /nc\n  condition: sel | count() by host > 5\n"
	for name, body := range map[string]string{"good.yml": good, "sub/bad.yml": bad} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(bin("cordon-agent"), "rules", "check", filepath.Join(dir, "good.yml")).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok ") || !strings.Contains(string(out), "good.yml:1") {
		t.Fatalf("good rule: %v\n%s", err, out)
	}
	out, err = exec.Command(bin("cordon-agent"), "rules", "check", dir, "--json").Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("a folder with a bad rule: exit %v, want 1\n%s", err, out)
	}
	var lines []struct {
		File  string `json:"file"`
		Line  int    `json:"line"`
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &lines); err != nil || len(lines) != 2 {
		t.Fatalf("json: %v\n%s", err, out)
	}
	b := lines[1]
	if !lines[0].OK || b.OK || !strings.HasSuffix(b.File, filepath.Join("sub", "bad.yml")) || b.Line != 8 || !strings.Contains(b.Error, "correlation") {
		t.Fatalf("lines: %+v", lines)
	}
	// The shipped SigmaHQ pack, as packaged in the repository, checks clean.
	out, err = exec.Command(bin("cordon-agent"), "rules", "check", filepath.Join("..", "..", "detectors", "rules")).CombinedOutput()
	if err != nil {
		t.Fatalf("shipped rules: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "\nok ") + 1; n < 216 {
		t.Errorf("%d rules ok, want every shipped rule", n)
	}
}
