package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestConsoleHunts drives the console's hunts in headless Chromium
// against the real collector and agent: a responder opens a drill
// incident, hunts for its indicators and sees the hunt complete for the
// agent; starts a hunt with a query that does not parse and sees the
// collector's error with its position; starts a good one and sees its
// detail; a viewer sees the hunts without any hunt button.
func TestConsoleHunts(t *testing.T) {
	ctx := browser(t)
	shots := artifacts(t)
	c := newCollector(t)
	state, agentID := c.enroll(t)
	start(t, "cordon-agent", "run", "--state", state)
	c.agentOnline(t, agentID)
	responder := c.apiKey(t, "hunt-responder", "responder")
	viewer := c.apiKey(t, "hunt-viewer", "viewer")
	url := "http://" + c.api + "/"

	if out, err := c.ctl("drill", agentID, "--wait"); err != nil {
		t.Fatalf("drill: %v\n%s", err, out)
	}
	var incID string
	eventually(t, 30*time.Second, "the drill incident", func() error {
		var incs []incidentJSON
		out, err := c.ctl("incidents", "--json")
		if err != nil {
			return err
		}
		if err := jsonUnmarshal(out, &incs); err != nil {
			return err
		}
		for _, i := range incs {
			if i.Drill && slices.Contains(i.AffectedHosts, agentID) {
				incID = i.ID
				return nil
			}
		}
		return fmt.Errorf("none in %s", out)
	})

	signIn(t, ctx, shots, url, responder)
	run(t, ctx, shots, "open the drill incident",
		ignore(chromedp.Evaluate[string](fmt.Sprintf(`location.hash = "#/incident/%s"`, incID))),
		chromedp.WaitVisible(css("#incident-title")),
		chromedp.WaitVisible(css("#hunt #hunt-incident")),
	)
	run(t, ctx, shots, "hunt for the incident's indicators",
		chromedp.Click(css("#hunt-incident")),
		chromedp.WaitVisible(css("#hunt #hunt-progress")),
		// The card follows the hunt until no agent is pending.
		ignore(chromedp.Poll[bool](`document.querySelector("#hunt .hstatus")?.textContent === "done"`, chromedp.WithPollingTimeout(40*time.Second))),
	)
	progress := value(t, ctx, shots, "read the hunt's progress", chromedp.Text(css("#hunt #hunt-progress")))
	screenshot(t, ctx, shots, "hunt-01-incident-hunted")
	if !strings.HasPrefix(progress, "1 answered") && !strings.HasPrefix(progress, "0 answered, 1 partial") {
		t.Errorf("the incident's hunt shows %q, want the agent's answer", progress)
	}
	// The hunt is the incident's, on the API too; the agent is already
	// in the incident, so no host is offered for adding.
	var hunts []struct {
		ID         string `json:"id"`
		IncidentID string `json:"incident_id"`
		Status     string `json:"status"`
	}
	c.ctlJSON(t, &hunts, "hunts", "--json")
	if len(hunts) != 1 || hunts[0].IncidentID != incID || hunts[0].Status != "done" {
		t.Fatalf("hunts through the API: %+v", hunts)
	}
	offered := value(t, ctx, shots, "count hosts offered", chromedp.Evaluate[int](`document.querySelectorAll("#hunt button[data-add-host]").length`))
	if offered != 0 {
		t.Errorf("%d hosts offered for adding; the only agent is in the incident already", offered)
	}

	// A query that does not parse: the collector's error, with its
	// position, under the form; nothing is created.
	run(t, ctx, shots, "start a bad hunt",
		chromedp.Click(css(`a[data-nav="hunts"]`)),
		chromedp.WaitVisible(css(fmt.Sprintf(`tr[data-hunt="%s"]`, hunts[0].ID))),
		chromedp.SendKeys(css("#hunt-query"), `proces.name == "xmrig"`),
		chromedp.Click(css("#hunt-start")),
		chromedp.WaitVisible(css("#hunt-error .error")),
	)
	msg := value(t, ctx, shots, "read the error", chromedp.Text(css("#hunt-error .error")))
	screenshot(t, ctx, shots, "hunt-02-bad-query")
	if !strings.Contains(msg, "position 1") || !strings.Contains(msg, "proces.name") {
		t.Errorf("bad query error %q, want the position and the field", msg)
	}
	c.ctlJSON(t, &hunts, "hunts", "--json")
	if len(hunts) != 1 {
		t.Errorf("a bad query created a hunt: %+v", hunts)
	}

	// A good one opens its detail, which follows it to the end.
	run(t, ctx, shots, "start a good hunt",
		ignore(chromedp.Evaluate[string](`document.querySelector("#hunt-query").value = ""`)),
		chromedp.SendKeys(css("#hunt-query"), `process.name == "cordon-agent"`),
		chromedp.Click(css("#hunt-start")),
		chromedp.WaitVisible(css("#hunt-title")),
		chromedp.WaitVisible(css(fmt.Sprintf(`table.hunt-agents tr[data-agent="%s"]`, agentID))),
		ignore(chromedp.Poll[bool](`document.querySelector("#hunt-status")?.textContent === "done"`, chromedp.WithPollingTimeout(40*time.Second))),
	)
	status := value(t, ctx, shots, "read the agent's status", chromedp.Text(css(fmt.Sprintf(`table.hunt-agents tr[data-agent="%s"] .astatus`, agentID))))
	screenshot(t, ctx, shots, "hunt-03-detail")
	if status != "answered" && status != "partial" {
		t.Errorf("the agent's part of the hunt is %q", status)
	}

	// A viewer sees the hunts and the incident's hunt without buttons.
	run(t, ctx, shots, "sign in as a viewer",
		chromedp.Click(css("#signout")),
		chromedp.WaitVisible(css("#key")),
		chromedp.SendKeys(css("#key"), viewer),
		chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("#top")),
		ignore(chromedp.Evaluate[string](fmt.Sprintf(`location.hash = "#/incident/%s"`, incID))),
		chromedp.WaitVisible(css("#incident-title")),
		chromedp.WaitVisible(css("#hunt #hunt-progress")),
	)
	onIncident := value(t, ctx, shots, "count hunt buttons on the incident", chromedp.Evaluate[int](`document.querySelectorAll("button[data-hunt], button[data-add-host]").length`))
	screenshot(t, ctx, shots, "hunt-04-viewer-incident")
	run(t, ctx, shots, "viewer opens the hunts",
		chromedp.Click(css(`a[data-nav="hunts"]`)),
		chromedp.WaitVisible(css("table.hunts")),
	)
	onHunts := value(t, ctx, shots, "count hunt controls on the hunts page", chromedp.Evaluate[int](`document.querySelectorAll("button[data-hunt], #hunt-query").length`))
	screenshot(t, ctx, shots, "hunt-05-viewer-hunts")
	if onIncident != 0 || onHunts != 0 {
		t.Errorf("a viewer sees %d hunt buttons on the incident and %d hunt controls on the hunts page", onIncident, onHunts)
	}
}
