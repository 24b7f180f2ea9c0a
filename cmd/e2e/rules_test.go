package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// writeRules writes rule files (name → YAML) into a new folder.
func writeRules(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func e2eMarkerRule(id, marker string) string {
	return fmt.Sprintf(`title: Team Marker %s
id: %s
author: Blue Team
tags:
    - attack.execution
    - attack.t1059.004
logsource:
    category: process_creation
    product: linux
detection:
    selection:
        CommandLine|contains: %s
    condition: selection
level: high
`, marker, id, marker)
}

// agentRules returns the rules_version the collector shows for agent id.
func agentRules(c *collector, id string) (string, error) {
	out, err := c.ctl("agents", "--json")
	if err != nil {
		return "", err
	}
	var agents []struct {
		ID           string `json:"id"`
		RulesVersion string `json:"rules_version"`
		RulesError   string `json:"rules_error"`
	}
	if err := json.Unmarshal([]byte(out), &agents); err != nil {
		return "", err
	}
	for _, a := range agents {
		if a.ID == id {
			return a.RulesVersion, nil
		}
	}
	return "", fmt.Errorf("agent %s not listed", id)
}

// localRules returns the rules_version cordon-agent status reports.
func localRules(t *testing.T, state string) (string, error) {
	out, err := exec.Command(bin("cordon-agent"), "status", "--state", state, "--json").Output()
	if err != nil {
		return "", fmt.Errorf("cordon-agent status: %v", err)
	}
	var st struct {
		RulesVersion string `json:"rules_version"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", err
	}
	return st.RulesVersion, nil
}

// A rule set pushed with cordonctl reaches a running agent and one that
// connects later, its custom rule produces findings, a restart keeps
// it, and a broken set is refused with its file and line while nothing
// changes.
func TestPushedRuleSet(t *testing.T) {
	needRoot(t)
	c := newCollector(t)
	state, id := c.enroll(t)
	agent := start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)

	marker := "cordon-e2e-" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	ruleID := uuid.NewString()
	dir := writeRules(t, map[string]string{"team/marker.yml": e2eMarkerRule(ruleID, marker)})
	out, err := c.ctl("rules", "push", dir)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Version  string `json:"version"`
		Rules    int    `json:"rules"`
		PushedBy string `json:"pushed_by"`
	}
	c.ctlJSON(t, &set, "rules", "--json")
	if set.Version == "" || set.Rules != 1 || !strings.Contains(out, set.Version) {
		t.Fatalf("after the push: %+v; cordonctl said %q", set, out)
	}

	eventually(t, 30*time.Second, "the agent runs rule set "+set.Version, func() error {
		got, err := agentRules(c, id)
		if err != nil || got != set.Version {
			return fmt.Errorf("collector shows %q (%v)", got, err)
		}
		if got, err := localRules(t, state); err != nil || got != set.Version {
			return fmt.Errorf("cordon-agent status shows %q (%v)", got, err)
		}
		return nil
	})

	// The marker's command line: sh lives long enough for every sensor
	// mode to read it.
	if out, err := exec.Command("/bin/sh", "-c", "sleep 0.5 # "+marker).CombinedOutput(); err != nil {
		t.Fatalf("running the marker: %v %s", err, out)
	}
	eventually(t, 30*time.Second, "a finding of the pushed rule", func() error {
		var all []findingJSON
		out, err := c.ctl("findings", "--agent", id, "--json")
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(out), &all); err != nil {
			return err
		}
		for _, f := range all {
			if f.Rule.ID == ruleID {
				if f.Severity != "high" || f.Rule.Name != "Team Marker "+marker {
					t.Errorf("finding of the pushed rule: %+v", f)
				}
				return nil
			}
		}
		return errors.New("none yet")
	})

	// A broken set: one good file and one that does not compile. It is
	// refused with the file and line, and nothing changes.
	broken := strings.Replace(e2eMarkerRule(uuid.NewString(), "other-marker"), "condition: selection", "condition: selection and", 1)
	bad := writeRules(t, map[string]string{
		"good.yml":       e2eMarkerRule(uuid.NewString(), "third-marker"),
		"team/bad.yaml":  broken,
		"notes/read.txt": "not a rule",
	})
	out, err = c.ctl("rules", "push", bad)
	if err == nil || !strings.Contains(err.Error(), "team/bad.yaml:13") {
		t.Fatalf("pushing a broken set: %v\n%s; want a refusal naming team/bad.yaml:13", err, out)
	}
	var after struct {
		Version string `json:"version"`
	}
	c.ctlJSON(t, &after, "rules", "--json")
	if after.Version != set.Version {
		t.Errorf("a refused push changed the current set to %q", after.Version)
	}
	if got, _ := agentRules(c, id); got != set.Version {
		t.Errorf("after a refused push the agent runs %q", got)
	}

	// A restart runs the stored set at once.
	agent.stop()
	start(t, "cordon-agent", "run", "--state", state)
	eventually(t, 30*time.Second, "the restarted agent's status", func() error {
		got, err := localRules(t, state)
		if err != nil || got != set.Version {
			return fmt.Errorf("cordon-agent status shows %q (%v)", got, err)
		}
		return nil
	})

	// An agent enrolled after the push gets the set when it connects.
	state2, id2 := c.enroll(t)
	start(t, "cordon-agent", "run", "--state", state2)
	eventually(t, 30*time.Second, "the new agent runs rule set "+set.Version, func() error {
		got, err := agentRules(c, id2)
		if err != nil || got != set.Version {
			return fmt.Errorf("collector shows %q (%v)", got, err)
		}
		return nil
	})
	if !strings.Contains(c.Log(), "rule set delivered") {
		t.Error("the collector logged no delivery")
	}
}
