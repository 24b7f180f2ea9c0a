package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startHealthCollector starts a collector whose agents heartbeat every
// second and are reported after grace of silence.
func startHealthCollector(t *testing.T, grace time.Duration) *collector {
	t.Helper()
	conf := collectorConfig(t, fmt.Sprintf("health:\n  heartbeat: 1s\n  silence_grace: %s\n", grace))
	data := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	return startCollectorWith(t, conf, data, listen, api)
}

// quietAgentConfig runs an agent with only the polling process sensor, so
// that two agents on one test machine stay light.
func quietAgentConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yml")
	body := "sensors:\n  process: { mode: poll }\n  file: { enabled: false }\n  network: { enabled: false }\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// An agent killed with SIGKILL says nothing; the collector notices the
// silence after its grace period and raises a finding, which opens an
// incident for the host. An agent stopped cleanly with SIGTERM says
// goodbye first and raises none, though it stays silent for longer.
func TestSilentAgentBecomesAFinding(t *testing.T) {
	const grace = 3 * time.Second
	c := startHealthCollector(t, grace)
	conf := quietAgentConfig(t)
	killedState, killed := c.enroll(t, "--tag", "criticality=high")
	stoppedState, stopped := c.enroll(t)
	k := start(t, "cordon-agent", "run", "--config", conf, "--state", killedState)
	s := start(t, "cordon-agent", "run", "--config", conf, "--state", stoppedState)
	c.agentOnline(t, killed)
	c.agentOnline(t, stopped)

	s.stop()
	eventually(t, 10*time.Second, "the stopped agent's goodbye", func() error {
		if !strings.Contains(c.Log(), "agent said goodbye") {
			return fmt.Errorf("not in the collector's log")
		}
		return nil
	})
	if err := k.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-k.done
	killedAt := time.Now()

	health := func(agent string) []findingJSON {
		var all []findingJSON
		c.ctlJSON(t, &all, "findings", "--agent", agent, "--json")
		var out []findingJSON
		for _, f := range all {
			if strings.HasPrefix(f.Rule.ID, "cordon-health-") {
				out = append(out, f)
			}
		}
		return out
	}
	var f findingJSON
	eventually(t, 60*time.Second, "a silence finding for the killed agent", func() error {
		got := health(killed)
		if len(got) == 0 {
			return fmt.Errorf("none yet")
		}
		f = got[0]
		return nil
	})
	t.Logf("silence finding %s %s %v after the kill (grace %s)", f.Rule.ID, f.Severity, time.Since(killedAt).Round(100*time.Millisecond), grace)
	if f.Rule.ID != "cordon-health-silent" || f.Severity != "high" {
		t.Errorf("finding %s %s, want cordon-health-silent high (the host is tagged criticality=high)", f.Rule.ID, f.Severity)
	}
	if !slices.Contains(f.Attack.Techniques, "T1685") || !slices.Contains(f.Attack.Tactics, "TA0112") {
		t.Errorf("ATT&CK %v %v, want TA0112 and T1685", f.Attack.Tactics, f.Attack.Techniques)
	}
	eventually(t, 30*time.Second, "an incident for the killed agent", func() error {
		var incs []incidentJSON
		out, err := c.ctl("incidents", "--agent", killed, "--json")
		if err != nil {
			return err
		}
		if err := jsonUnmarshal(out, &incs); err != nil {
			return err
		}
		for _, i := range incs {
			if slices.Contains(i.FindingIDs, f.ID) {
				return nil
			}
		}
		return fmt.Errorf("no incident holds %s in %s", f.ID, out)
	})

	// The stopped agent has been silent longer than the killed one, and
	// the monitor has reported that one: the clean stop raised nothing.
	if got := health(stopped); len(got) != 0 {
		t.Errorf("health findings for the cleanly stopped agent: %+v", got)
	}
	if got := health(killed); len(got) != 1 {
		t.Errorf("%d health findings for the killed agent, want one", len(got))
	}
}

// A change to the agent's own configuration file is reported by the
// agent itself.
func TestAgentReportsChangesToItsOwnFiles(t *testing.T) {
	c := newCollector(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "agent.yml")
	body := fmt.Sprintf("sensors:\n  process: { mode: poll }\n  file: { paths: [%q] }\n  network: { enabled: false }\n", t.TempDir())
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	state, id := c.enroll(t)
	start(t, "cordon-agent", "run", "--config", conf, "--state", state)
	c.agentOnline(t, id)
	eventually(t, 60*time.Second, "a finding for the changed configuration", func() error {
		// Written again on every try: the sensor may still be starting.
		if err := os.WriteFile(conf, []byte(body+"# changed\n"), 0o600); err != nil {
			return err
		}
		var all []findingJSON
		out, err := c.ctl("findings", "--agent", id, "--json")
		if err != nil {
			return err
		}
		if err := jsonUnmarshal(out, &all); err != nil {
			return err
		}
		for _, f := range all {
			if f.Rule.ID == "cordon-health-agent-files" {
				return nil
			}
		}
		return fmt.Errorf("none in %d findings", len(all))
	})
}
