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
	"slices"
	"strings"
	"testing"
	"time"
)

type huntJSON struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Counts struct {
		Agents, Pending, Answered, Partial, Failed, Matched, Matches int
	} `json:"counts"`
	Agents []struct {
		AgentID string `json:"agent_id"`
		Status  string `json:"status"`
		Reason  string `json:"reason"`
		Matches []struct {
			Time   time.Time `json:"time"`
			Source string    `json:"source"`
			Event  struct {
				Timestamp time.Time `json:"@timestamp"`
				File      *struct {
					Path string `json:"path"`
					Hash *struct {
						SHA256 string `json:"sha256"`
					} `json:"hash"`
				} `json:"file"`
			} `json:"event"`
		} `json:"matches"`
	} `json:"agents"`
}

// matched returns the agents with matches.
func (h *huntJSON) matched() []string {
	var out []string
	for _, a := range h.Agents {
		if len(a.Matches) > 0 {
			out = append(out, a.AgentID)
		}
	}
	slices.Sort(out)
	return out
}

// Three agents on one machine, each watching its own folder: a marker
// file written in the folders of two of them is found by a hunt for its
// hash on exactly those two, from their event history, with the times
// the file sensor saw it. A hunt created while one of them is stopped
// waits for it and is answered when it comes back, from the history it
// kept across the restart. A query that does not parse is refused with
// its position and nothing is sent.
func TestHuntFindsMarkerOnTwoOfThreeAgents(t *testing.T) {
	needRoot(t)
	c := newCollector(t)
	type agent struct {
		state, id, watched, conf string
		p                        *proc
	}
	var agents []*agent
	for i := range 3 {
		a := &agent{watched: t.TempDir()}
		a.state, a.id = c.enroll(t, "--tag", fmt.Sprintf("n=%d", i))
		a.conf = filepath.Join(t.TempDir(), "agent.yaml")
		yaml := fmt.Sprintf("sensors:\n  file:\n    paths: [%q]\n  network:\n    enabled: false\nhistory:\n  max_age: 1h\n  max_bytes: 64MiB\n", a.watched+"/...")
		if err := os.WriteFile(a.conf, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		a.p = start(t, "cordon-agent", "run", "--state", a.state, "--config", a.conf)
		agents = append(agents, a)
	}
	for _, a := range agents {
		c.agentOnline(t, a.id)
	}
	// Let the file sensors settle on their folders before the marker.
	eventually(t, 30*time.Second, "the file sensors watching", func() error {
		for _, a := range agents {
			var st statusJSON
			out, err := exec.Command(bin("cordon-agent"), "status", "--state", a.state, "--json").Output()
			if err != nil {
				return err
			}
			if err := json.Unmarshal(out, &st); err != nil {
				return err
			}
			ok := false
			for _, s := range st.Sensors {
				ok = ok || s.Name == "file" && strings.HasPrefix(s.Mode, "fsnotify")
			}
			if !ok {
				return fmt.Errorf("agent %s: %s", a.id, out)
			}
		}
		return nil
	})

	marker := make([]byte, 64)
	rand.Read(marker)
	sum := sha256.Sum256(marker)
	hash := hex.EncodeToString(sum[:])
	before := time.Now().Add(-time.Second)
	for _, a := range agents[:2] {
		if err := os.WriteFile(filepath.Join(a.watched, "marker.bin"), marker, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	after := time.Now().Add(time.Second)
	want := []string{agents[0].id, agents[1].id}
	slices.Sort(want)

	// A bad query is refused on the collector, naming the position.
	bad := `file.hash.sha256 == "` + hash + `" and proces.name == "x"`
	_, err := c.ctl("hunt", "create", "--query", bad)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("position %d", strings.Index(bad, "proces.name")+1)) || !strings.Contains(err.Error(), `unknown field "proces.name"`) {
		t.Fatalf("bad query: %v", err)
	}
	var hunts []huntJSON
	c.ctlJSON(t, &hunts, "hunts", "--json")
	if len(hunts) != 0 {
		t.Fatalf("a refused query left hunts: %+v", hunts)
	}

	query := fmt.Sprintf(`file.hash.sha256 == %q`, hash)
	var h huntJSON
	// The file events reach the history a moment after the sensors see
	// them: hunt until both holders report the marker.
	eventually(t, 60*time.Second, "a hunt matching the two holders", func() error {
		out, err := c.ctl("hunt", "create", "--query", query, "--since", "1h", "--wait", "--timeout", "60s", "--json")
		if err != nil {
			return err
		}
		h = huntJSON{}
		if err := json.Unmarshal([]byte(out), &h); err != nil {
			return err
		}
		if h.Status != "done" || h.Counts.Answered != 3 {
			return fmt.Errorf("hunt %s: %s, counts %+v", h.ID, h.Status, h.Counts)
		}
		if got := h.matched(); !slices.Equal(got, want) {
			return fmt.Errorf("hunt %s matched %v, want %v", h.ID, got, want)
		}
		return nil
	})
	for _, a := range h.Agents {
		for _, m := range a.Matches {
			if m.Source != "history" || m.Event.File == nil || m.Event.File.Hash == nil || m.Event.File.Hash.SHA256 != hash {
				t.Errorf("agent %s: match %+v", a.AgentID, m)
			}
			if m.Time.Before(before) || m.Time.After(after) || !m.Time.Equal(m.Event.Timestamp) {
				t.Errorf("agent %s: match at %v, the marker was written between %v and %v", a.AgentID, m.Time, before, after)
			}
			if filepath.Dir(m.Event.File.Path) != map[string]string{agents[0].id: agents[0].watched, agents[1].id: agents[1].watched}[a.AgentID] {
				t.Errorf("agent %s matched %s, outside its own folder", a.AgentID, m.Event.File.Path)
			}
		}
	}
	out, err := c.ctl("hunt", "show", h.ID)
	if err != nil || !strings.Contains(out, "3 answered") || !strings.Contains(out, "marker.bin") {
		t.Errorf("hunt show: %v\n%s", err, out)
	}

	// A stopped agent gets the hunt when it comes back, and answers from
	// the history it kept.
	agents[1].p.stop()
	eventually(t, 30*time.Second, "agent offline", func() error {
		var list []agentJSON
		c.ctlJSON(t, &list, "agents", "--json")
		for _, x := range list {
			if x.ID == agents[1].id && x.Online {
				return fmt.Errorf("still online")
			}
		}
		return nil
	})
	out, err = c.ctl("hunt", "create", "--query", query, "--agents", "n=1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var queued huntJSON
	if err := json.Unmarshal([]byte(out), &queued); err != nil || queued.Counts.Agents != 1 || queued.Counts.Pending != 1 {
		t.Fatalf("queued hunt: %v %+v", err, queued)
	}
	time.Sleep(time.Second)
	c.ctlJSON(t, &queued, "hunt", "show", queued.ID, "--json")
	if queued.Status != "running" || queued.Agents[0].Status != "pending" {
		t.Fatalf("the hunt of an offline agent is %s/%s", queued.Status, queued.Agents[0].Status)
	}
	start(t, "cordon-agent", "run", "--state", agents[1].state, "--config", agents[1].conf)
	eventually(t, 60*time.Second, "the restarted agent's answer", func() error {
		c.ctlJSON(t, &queued, "hunt", "show", queued.ID, "--json")
		if queued.Status != "done" {
			return fmt.Errorf("hunt %s", queued.Status)
		}
		return nil
	})
	if got := queued.matched(); !slices.Equal(got, []string{agents[1].id}) || queued.Agents[0].Status != "answered" {
		t.Fatalf("after the restart the hunt matched %v (%s: %s)", got, queued.Agents[0].Status, queued.Agents[0].Reason)
	}
}
