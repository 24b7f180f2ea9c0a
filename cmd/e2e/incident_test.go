package e2e

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// handledIncident is what the lifecycle test reads of an incident.
type handledIncident struct {
	incidentJSON
	Overrides []string `json:"overrides"`
	Timeline  []struct {
		Actor  string `json:"actor"`
		Action string `json:"action"`
		Detail string `json:"detail"`
	} `json:"timeline"`
	SLA *struct {
		AcknowledgeBreached bool     `json:"acknowledge_breached"`
		TimeToDetect        *float64 `json:"time_to_detect_seconds"`
		TimeToAcknowledge   *float64 `json:"time_to_acknowledge_seconds"`
		TimeToContain       *float64 `json:"time_to_contain_seconds"`
	} `json:"sla"`
	Review *struct {
		RootCause string `json:"root_cause"`
	} `json:"review"`
	ClosedAt string `json:"closed_at"`
	Playbook *struct {
		Name  string `json:"name"`
		Steps []struct {
			ID    string `json:"id"`
			Title string `json:"title"`
			Done  bool   `json:"done"`
		} `json:"steps"`
	} `json:"playbook"`
}

// A handler takes a drill incident through its whole lifecycle with
// cordonctl: assignment, an override to P1, a refused containment
// without justification, containment, a refused close without review,
// the review, the close, the report; and the drill stays out of the real
// figures.
func TestDrillIncidentLifecycle(t *testing.T) {
	c := newCollector(t)
	id := c.runAgent(t, "--tag", "criticality=low")
	inc := c.drillIncident(t, id)
	if !strings.HasPrefix(inc.Priority, "P") || inc.Type == "" || inc.Status != "new" {
		t.Fatalf("drill incident %+v", inc)
	}

	update := func(args ...string) (string, error) {
		return c.ctl(append([]string{"incident", "update", inc.ID}, args...)...)
	}
	must := func(args ...string) {
		t.Helper()
		if out, err := update(args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	refused := func(want string, args ...string) {
		t.Helper()
		out, err := update(args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("incident update %v: %v (want a refusal naming %q)\n%s", args, err, want, out)
		}
	}

	must("--assignee", "alice", "--status", "triage")
	refused("comment", "--impact", "1", "--urgency", "1")
	must("--impact", "1", "--urgency", "1", "--comment", "treated as P1 for the exercise")
	must("--status", "investigating")

	// The playbook of the incident's type is attached; tick its first step.
	var opened handledIncident
	c.ctlJSON(t, &opened, "incident", "show", inc.ID, "--json")
	if opened.Playbook == nil || len(opened.Playbook.Steps) == 0 {
		t.Fatalf("no playbook on a %s incident: %+v", opened.Type, opened.Playbook)
	}
	step := opened.Playbook.Steps[0]
	if out, err := c.ctl("incident", "check", inc.ID, step.ID); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := c.ctl("incident", "check", inc.ID, "no-such-step"); err == nil || !strings.Contains(err.Error(), "no step") {
		t.Fatalf("ticking an unknown step: %v\n%s", err, out)
	}
	if out, err := c.ctl("incident", "comment", inc.ID, "process tree checked"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	refused("containment", "--status", "contained")
	must("--status", "contained", "--comment", "drill process gone; nothing to isolate")
	must("--status", "eradicated")
	must("--status", "recovered")
	refused("review", "--status", "closed")
	refused("--review-followup", "--review-root-cause", "drill scenario", "--review-lessons", "the alert reached us")
	must("--review-root-cause", "scheduled drill scenario", "--review-lessons", "detected within seconds",
		"--review-followup", "run the reverse-shell scenario next month")
	must("--status", "closed")

	var got handledIncident
	c.ctlJSON(t, &got, "incident", "show", inc.ID, "--json")
	if got.Status != "closed" || got.Priority != "P1" || got.Assignee != "alice" || got.Review == nil || got.ClosedAt == "" ||
		fmt.Sprint(got.Overrides) != "[impact urgency]" {
		t.Fatalf("closed incident %+v", got)
	}
	if got.SLA == nil || got.SLA.TimeToDetect == nil || got.SLA.TimeToAcknowledge == nil || got.SLA.TimeToContain == nil {
		t.Fatalf("service level of the drill: %+v", got.SLA)
	}
	var trail []string
	for _, e := range got.Timeline {
		trail = append(trail, e.Actor+" "+e.Action+": "+e.Detail)
	}
	for _, want := range []string{
		"admin assigned: alice",
		"admin status_changed: new → triage",
		"admin impact_changed: ",
		"admin comment: process tree checked",
		"admin checklist_done: " + step.ID,
		"admin status_changed: investigating → contained (containment justified in the comment)",
		"admin review_added: root cause: scheduled drill scenario",
		"admin status_changed: recovered → closed",
	} {
		if !slices.ContainsFunc(trail, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("timeline lacks %q:\n%s", want, strings.Join(trail, "\n"))
		}
	}

	report, err := c.ctl("incident", "report", inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Incident report: [DRILL] ",
		"| Status | closed |",
		"| Priority | P1 |",
		"| Impact | 1 (set by a responder) |",
		"## Playbook: " + opened.Playbook.Name,
		"- [x] " + step.Title + " (admin, ",
		"## Evidence",
		"## Timeline",
		"| admin | status_changed | recovered → closed |",
		"**Root cause.** scheduled drill scenario",
		"- run the reverse-shell scenario next month",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}

	// Drills stay out of the real figures. (Real incidents may exist: the
	// agent sees the test's own binaries run from a temporary folder; none
	// of them is acknowledged, so the real MTTA stays 0.)
	var stats struct {
		Real, Drill struct {
			Incidents int     `json:"incidents"`
			MTTA      float64 `json:"mtta_seconds"`
		}
	}
	c.ctlJSON(t, &stats, "incident", "stats", "--json")
	if stats.Real.MTTA != 0 || stats.Drill.Incidents != 1 || stats.Drill.MTTA <= 0 {
		t.Errorf("stats %+v", stats)
	}
	resp, err := http.Get("http://" + c.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "\ncordon_incidents_mtta_seconds 0\n") {
		t.Errorf("a drill counted in the real figures:\n%s", b)
	}
}

// runAgent enrolls an agent (extra: enroll-token flags, as for enroll),
// starts it and waits until the collector has it online; it returns the
// agent's id.
func (c *collector) runAgent(t testing.TB, extra ...string) string {
	t.Helper()
	state, id := c.enroll(t, extra...)
	start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, id)
	return id
}

// drillIncident runs a drill on the agent and returns the drill incident
// it opens.
func (c *collector) drillIncident(t testing.TB, agentID string) incidentJSON {
	t.Helper()
	if out, err := c.ctl("drill", agentID, "--wait"); err != nil {
		t.Fatalf("drill: %v\n%s", err, out)
	}
	return c.waitIncident(t, "the drill incident", func(i incidentJSON) bool {
		return i.Drill && slices.Contains(i.AffectedHosts, agentID)
	})
}

// waitIncident waits up to 30s for an incident that match accepts and
// returns it.
func (c *collector) waitIncident(t testing.TB, what string, match func(incidentJSON) bool) incidentJSON {
	t.Helper()
	var inc incidentJSON
	eventually(t, 30*time.Second, what, func() error {
		var incs []incidentJSON
		out, err := c.ctl("incidents", "--json")
		if err != nil {
			return err
		}
		if err := jsonUnmarshal(out, &incs); err != nil {
			return err
		}
		for _, i := range incs {
			if match(i) {
				inc = i
				return nil
			}
		}
		return fmt.Errorf("none in %s", out)
	})
	return inc
}
