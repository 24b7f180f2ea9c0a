package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/cordon-edr/cordon/agent/identity"
	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol"
)

// findingsFor returns the findings of agent id whose evidence ran exe.
func findingsFor(t *testing.T, c *collector, id, exe string) []findingJSON {
	t.Helper()
	var all []findingJSON
	c.ctlJSON(t, &all, "findings", "--agent", id, "--json")
	var out []findingJSON
	for _, f := range all {
		for _, ev := range f.Evidence {
			if ev.Process.Executable == exe {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// The spine, as a user runs it: enroll, run a binary from /dev/shm, see
// the finding and the incident through cordonctl.
func TestEnrollDetectIncident(t *testing.T) {
	needRoot(t)
	c := newCollector(t)
	state, id := c.enroll(t, "--tag", "criticality=high")
	start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)

	var agents []agentJSON
	c.ctlJSON(t, &agents, "agents", "--json")
	if len(agents) != 1 || agents[0].Tags["criticality"] != "high" || agents[0].Hostname == "" {
		t.Fatalf("agents: %+v", agents)
	}

	exe := copyExec(t, "/bin/true", shmDir(t))
	if out, err := exec.Command(exe).CombinedOutput(); err != nil {
		t.Fatalf("running %s: %v %s", exe, err, out)
	}
	var f findingJSON
	eventually(t, 30*time.Second, "a finding for "+exe, func() error {
		fs := findingsFor(t, c, id, exe)
		if len(fs) == 0 {
			return errors.New("none yet")
		}
		f = fs[0]
		return nil
	})
	if f.AgentID != id || f.Rule.ID == "" || f.Rule.Name == "" || f.Severity == "" || len(f.Attack.Techniques) == 0 || f.Drill {
		t.Fatalf("finding: %+v", f)
	}

	inc := c.waitIncident(t, "an incident holding finding "+f.ID, func(i incidentJSON) bool {
		return slices.Contains(i.FindingIDs, f.ID)
	})
	if inc.Status != "new" || !slices.Contains(inc.AffectedHosts, id) || inc.Priority == "" || inc.Drill {
		t.Fatalf("incident: %+v", inc)
	}
	var shown incidentJSON
	c.ctlJSON(t, &shown, "incident", "show", inc.ID, "--json")
	if shown.ID != inc.ID {
		t.Fatalf("incident show: %+v", shown)
	}
	if out, err := c.ctl("incident", "show", inc.ID); err != nil || !strings.Contains(out, inc.ID) {
		t.Fatalf("incident show (table): %v\n%s", err, out)
	}
}

// A drill from cordonctl runs on the agent and opens an incident marked
// as a drill.
func TestDrillOpensDrillIncident(t *testing.T) {
	c := newCollector(t)
	state, id := c.enroll(t)
	start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)
	if inc := c.drillIncident(t, id); len(inc.FindingIDs) == 0 {
		t.Errorf("drill incident %s has no findings", inc.ID)
	}
}

// With the collector down the agent spools; when it returns, every
// finding arrives once.
func TestCollectorOutage(t *testing.T) {
	c := newCollector(t)
	state, id := c.enroll(t)
	start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)

	c.stop()
	// A copy of sleep lives long enough for any sensor mode to see it.
	exe := copyExec(t, "/bin/sleep", shmDir(t))
	const n = 5
	for i := 0; i < n; i++ {
		if out, err := exec.Command(exe, "0.5").CombinedOutput(); err != nil {
			t.Fatalf("running %s: %v %s", exe, err, out)
		}
	}
	// Let the agent notice the outage and spool.
	time.Sleep(2 * time.Second)

	c = startCollector(t, c.data, c.listen, c.api)
	// Count one rule's findings: the Sigma pack flags the same runs too.
	ofRule := func(fs []findingJSON) []findingJSON {
		var out []findingJSON
		for _, f := range fs {
			if f.Rule.ID == detectors.RuleIDExecFromTempDir {
				out = append(out, f)
			}
		}
		return out
	}
	eventually(t, 60*time.Second, fmt.Sprintf("%d findings for %s", n, exe), func() error {
		if got := len(ofRule(findingsFor(t, c, id, exe))); got != n {
			return fmt.Errorf("%d findings", got)
		}
		return nil
	})
	// Give a duplicate time to show up, then count again.
	time.Sleep(3 * time.Second)
	fs := ofRule(findingsFor(t, c, id, exe))
	seen := map[string]bool{}
	for _, f := range fs {
		if seen[f.ID] {
			t.Fatalf("finding %s listed twice", f.ID)
		}
		seen[f.ID] = true
	}
	if len(fs) != n {
		t.Fatalf("%d findings after the outage, want %d", len(fs), n)
	}
}

func TestEnrollmentRefusals(t *testing.T) {
	c := newCollector(t)
	agentCount := func() int {
		var agents []agentJSON
		c.ctlJSON(t, &agents, "agents", "--json")
		return len(agents)
	}
	enroll := func(args ...string) (string, error) {
		out, err := exec.Command(bin("cordon-agent"), args...).CombinedOutput()
		return string(out), err
	}
	pinOut, _ := c.ctl("ca-pin")
	pin := lastLine(pinOut)

	t.Run("unknown token", func(t *testing.T) {
		out, err := enroll("enroll", "--collector", c.listen, "--token", "cdt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "--ca-pin", pin, "--state", t.TempDir())
		if err == nil || !strings.Contains(out, "refused enrollment") {
			t.Fatalf("got %v: %s", err, out)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		args := c.enrollArgs(t, t.TempDir(), "--ttl", "1s")
		time.Sleep(1500 * time.Millisecond)
		out, err := enroll(args...)
		if err == nil || !strings.Contains(out, "expired") {
			t.Fatalf("got %v: %s", err, out)
		}
	})
	t.Run("used-up token", func(t *testing.T) {
		args := c.enrollArgs(t, t.TempDir(), "--uses", "1")
		if out, err := enroll(args...); err != nil {
			t.Fatalf("first use: %v: %s", err, out)
		}
		args[len(args)-1] = t.TempDir()
		out, err := enroll(args...)
		if err == nil || !strings.Contains(out, "refused enrollment") {
			t.Fatalf("second use: got %v: %s", err, out)
		}
	})
	t.Run("wrong CA pin", func(t *testing.T) {
		args := c.enrollArgs(t, t.TempDir())
		for i, a := range args {
			if a == pin {
				args[i] = "sha256:" + strings.Repeat("0", 64)
			}
		}
		out, err := enroll(args...)
		if err == nil || !strings.Contains(out, "pin") {
			t.Fatalf("got %v: %s", err, out)
		}
	})
	// One agent enrolled above (the first use of the used-up token).
	if n := agentCount(); n != 1 {
		t.Fatalf("%d agents registered, want only the one good enrollment", n)
	}
}

func TestRevokedAgentIsRefused(t *testing.T) {
	c := newCollector(t)
	state, id := c.enroll(t)
	req, _ := http.NewRequest("POST", "http://"+c.api+"/api/v1/agents/"+id+"/revoke", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %s", resp.Status)
	}
	agent := start(t, "cordon-agent", "run", "--state", state)
	eventually(t, 20*time.Second, "the agent to report its refusal", func() error {
		if !strings.Contains(agent.Log(), "rejected this agent's certificate") {
			return errors.New("not yet")
		}
		return nil
	})
}

// A garbled or oversized frame closes that stream only: the collector
// keeps serving, the same connection can open a good stream, and other
// agents stay connected.
func TestBadFramesCloseOnlyTheirStream(t *testing.T) {
	c := newCollector(t)
	state, id := c.enroll(t)
	start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)

	// A second enrolled identity speaks raw frames.
	rawState, _ := c.enroll(t)
	_, tlsConf, err := identity.Load(rawState)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, c.listen, tlsConf.Clone(), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")

	for _, bad := range []struct {
		name string
		data []byte
	}{
		{"oversized", binary.BigEndian.AppendUint32(nil, protocol.MaxFrameSize+1)},
		{"garbled", append(binary.BigEndian.AppendUint32(nil, 4), 0xff, 0xff, 0xff, 0xff)},
	} {
		st, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Write(bad.data)
		f, err := protocol.NewFrameReader(st, 0).Read()
		if err != nil {
			t.Fatalf("%s: reading the collector's answer: %v", bad.name, err)
		}
		if f.GetError().GetCode() != protocol.ErrorFrame {
			t.Fatalf("%s: got %v, want an Error frame with code %q", bad.name, f, protocol.ErrorFrame)
		}
	}
	// The same connection still works.
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("opening a stream after the bad ones: %v", err)
	}
	if err := protocol.WriteFrame(st, &protocol.Frame{Body: &protocol.Frame_FindingBatch{FindingBatch: &protocol.FindingBatch{Seq: 1}}}); err != nil {
		t.Fatal(err)
	}
	f, err := protocol.NewFrameReader(st, 0).Read()
	if err != nil || f.GetBatchAck().GetSeq() != 1 {
		t.Fatalf("an empty batch after bad streams: got %v, %v; want its ack", f, err)
	}
	c.agentOnline(t, id)
}

func jsonUnmarshal(s string, v any) error {
	return json.Unmarshal([]byte(s), v)
}
