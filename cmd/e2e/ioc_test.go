package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type iocFindingJSON struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Rule     struct {
		ID string `json:"id"`
	} `json:"rule"`
	Evidence []struct {
		File *struct {
			Path string `json:"path"`
		} `json:"file"`
	} `json:"evidence"`
}

// An indicator set with a marker's hash, pushed after the marker was
// written, finds it in the agent's history (a retro finding); a second
// set, as a STIX bundle, with the hash of a file not yet written raises a
// live finding once it is. A bad set is refused with its line.
func TestIndicatorSetRetroAndLive(t *testing.T) {
	needRoot(t)
	c := newCollector(t)
	watched := t.TempDir()
	state, id := c.enroll(t)
	conf := filepath.Join(t.TempDir(), "agent.yaml")
	yaml := fmt.Sprintf("sensors:\n  file:\n    paths: [%q]\n  network:\n    enabled: false\nhistory:\n  max_age: 1h\n  max_bytes: 64MiB\n", watched+"/...")
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, "cordon-agent", "run", "--state", state, "--config", conf)
	c.agentOnline(t, id)
	eventually(t, 30*time.Second, "the file sensor watching", func() error {
		out, err := exec.Command(bin("cordon-agent"), "status", "--state", state, "--json").Output()
		if err != nil {
			return err
		}
		var st statusJSON
		if err := json.Unmarshal(out, &st); err != nil {
			return err
		}
		for _, s := range st.Sensors {
			if s.Name == "file" && strings.HasPrefix(s.Mode, "fsnotify") {
				return nil
			}
		}
		return fmt.Errorf("%s", out)
	})

	marker := func() ([]byte, string) {
		b := make([]byte, 64)
		rand.Read(b)
		sum := sha256.Sum256(b)
		return b, hex.EncodeToString(sum[:])
	}
	first, firstHash := marker()
	firstPath := filepath.Join(watched, "first.bin")
	if err := os.WriteFile(firstPath, first, 0o644); err != nil {
		t.Fatal(err)
	}
	// The retro-hunt reads the history: wait until the marker's event is
	// there, as a hunt sees it.
	eventually(t, 60*time.Second, "the marker in the history", func() error {
		out, err := c.ctl("hunt", "create", "--query", fmt.Sprintf("file.hash.sha256 == %q", firstHash), "--since", "1h", "--wait", "--timeout", "60s", "--json")
		if err != nil {
			return err
		}
		if !strings.Contains(out, firstPath) {
			return fmt.Errorf("hunt did not match the marker yet")
		}
		return nil
	})

	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("type,value,severity,note\nsha256,"+firstHash+",high,marker\nsha256,"+firstHash[:40]+",high,short\n"), 0o600)
	if _, err := c.ctl("ioc", "push", bad); err == nil || !strings.Contains(err.Error(), "line 3: sha256") || !strings.Contains(err.Error(), "64 hex digits") {
		t.Fatalf("bad set: %v", err)
	}
	var set struct {
		Version    string `json:"version"`
		Indicators int    `json:"indicators"`
	}
	c.ctlJSON(t, &set, "ioc", "--json")
	if set.Version != "" {
		t.Fatalf("a refused set was stored: %+v", set)
	}

	good := filepath.Join(dir, "iocs.csv")
	os.WriteFile(good, []byte("type,value,severity,note\nsha256,"+firstHash+",high,first marker\n"), 0o600)
	c.ctlJSON(t, &set, "ioc", "push", good, "--json")
	if !strings.HasPrefix(set.Version, "1-") || set.Indicators != 1 {
		t.Fatalf("pushed set %+v", set)
	}
	findings := func() []iocFindingJSON {
		var all, out []iocFindingJSON
		c.ctlJSON(t, &all, "findings", "--agent", id, "--json")
		for _, f := range all {
			if f.Rule.ID == "cordon-ioc" {
				out = append(out, f)
			}
		}
		return out
	}
	var retro iocFindingJSON
	eventually(t, 60*time.Second, "a retro finding for the first marker", func() error {
		for _, f := range findings() {
			if strings.Contains(f.Summary, firstHash) {
				retro = f
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	if !strings.HasPrefix(retro.Summary, "Retro-hunt: ") || !strings.Contains(retro.Summary, `"first marker"`) || retro.Severity != "high" ||
		len(retro.Evidence) != 1 || retro.Evidence[0].File == nil || retro.Evidence[0].File.Path != firstPath {
		t.Errorf("retro finding %+v", retro)
	}
	eventually(t, 30*time.Second, "the agent reporting the set's version", func() error {
		var agents []struct {
			ID          string `json:"id"`
			IocsVersion string `json:"iocs_version"`
		}
		c.ctlJSON(t, &agents, "agents", "--json")
		if len(agents) != 1 || agents[0].IocsVersion != set.Version {
			return fmt.Errorf("agents %+v, want version %s", agents, set.Version)
		}
		return nil
	})

	// The second set, a STIX bundle, adds a hash of a file written after
	// the push: a live finding.
	second, secondHash := marker()
	bundle := `{"type": "bundle", "id": "bundle--1", "objects": [
	  {"type": "indicator", "spec_version": "2.1", "id": "indicator--1", "name": "first marker",
	   "pattern": "[file:hashes.'SHA-256' = '` + firstHash + `']", "pattern_type": "stix", "x_cordon_severity": "high"},
	  {"type": "indicator", "spec_version": "2.1", "id": "indicator--2", "name": "second marker",
	   "pattern": "[file:hashes.'SHA-256' = '` + secondHash + `']", "pattern_type": "stix", "x_cordon_severity": "critical"}]}`
	stix := filepath.Join(dir, "iocs.json")
	os.WriteFile(stix, []byte(bundle), 0o600)
	var set2 struct {
		Version string `json:"version"`
	}
	c.ctlJSON(t, &set2, "ioc", "push", stix, "--json")
	if !strings.HasPrefix(set2.Version, "2-") {
		t.Fatalf("second set %+v", set2)
	}
	eventually(t, 30*time.Second, "the agent matching the second set", func() error {
		out, err := exec.Command(bin("cordon-agent"), "status", "--state", state, "--json").Output()
		if err != nil {
			return err
		}
		var st struct {
			IocsVersion string `json:"iocs_version"`
			Retro       *struct {
				Version  string    `json:"version"`
				Finished time.Time `json:"finished"`
			} `json:"retro_hunt"`
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return err
		}
		if st.IocsVersion != set2.Version || st.Retro == nil || st.Retro.Version != set2.Version || st.Retro.Finished.IsZero() {
			return fmt.Errorf("status %s", out)
		}
		return nil
	})
	secondPath := filepath.Join(watched, "second.bin")
	if err := os.WriteFile(secondPath, second, 0o644); err != nil {
		t.Fatal(err)
	}
	var live iocFindingJSON
	eventually(t, 60*time.Second, "a live finding for the second marker", func() error {
		for _, f := range findings() {
			if strings.Contains(f.Summary, secondHash) {
				live = f
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	if !strings.HasPrefix(live.Summary, "Indicator sha256 "+secondHash) || !strings.Contains(live.Summary, `"second marker"`) || live.Severity != "critical" ||
		len(live.Evidence) != 1 || live.Evidence[0].File == nil || live.Evidence[0].File.Path != secondPath {
		t.Errorf("live finding %+v", live)
	}
	// The second set's retro-hunt did not report the first marker again.
	n := 0
	for _, f := range findings() {
		if strings.Contains(f.Summary, firstHash) && strings.HasPrefix(f.Summary, "Retro-hunt") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d retro findings for the first marker, want 1", n)
	}
}
