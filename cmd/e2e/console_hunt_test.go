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
// against the real collector and two agents: a responder opens a drill
// incident, hunts for its indicators, sees the hunt complete for both
// agents and adds the other agent, which saw the drill's processes, to
// the incident after a confirmation; starts a hunt with a query that does not parse and sees the
// collector's error with its position; starts a good one and sees its
// detail; a viewer sees the hunts without any hunt button.
func TestConsoleHunts(t *testing.T) {
	ctx := browser(t)
	shots := artifacts(t)
	c := newCollector(t)
	agentID := c.runAgent(t)
	// A second agent on the same machine sees the drill's processes too
	// (one kernel), but the drill runs on the first: the second is the
	// host the hunt finds outside the incident.
	otherID := c.runAgent(t)
	responder := c.apiKey(t, "hunt-responder", "responder")
	viewer := c.apiKey(t, "hunt-viewer", "viewer")
	url := "http://" + c.api + "/"

	incID := c.drillIncident(t, agentID).ID

	signIn(t, ctx, shots, url, responder)
	run(t, ctx, shots, "open the drill incident",
		ignore(chromedp.Evaluate[string](fmt.Sprintf(`location.hash = "#/incident/%s"`, incID))),
		chromedp.WaitVisible(css("#incident-title")),
		chromedp.WaitVisible(css("#hunt #hunt-incident")),
	)
	run(t, ctx, shots, "hunt for the incident's indicators",
		click("#hunt-incident"),
		chromedp.WaitVisible(css("#hunt #hunt-progress")),
		// The card follows the hunt until no agent is pending.
		ignore(chromedp.Poll[bool](`document.querySelector("#hunt .hstatus")?.textContent === "done"`, chromedp.WithPollingTimeout(40*time.Second))),
	)
	progress := value(t, ctx, shots, "read the hunt's progress", chromedp.Text(css("#hunt #hunt-progress")))
	screenshot(t, ctx, shots, "hunt-01-incident-hunted")
	if !strings.HasPrefix(progress, "2 answered") {
		t.Errorf("the incident's hunt shows %q, want both agents' answers", progress)
	}
	var hunts []struct {
		ID         string `json:"id"`
		IncidentID string `json:"incident_id"`
		Status     string `json:"status"`
	}
	c.ctlJSON(t, &hunts, "hunts", "--json")
	if len(hunts) != 1 || hunts[0].IncidentID != incID || hunts[0].Status != "done" {
		t.Fatalf("hunts through the API: %+v", hunts)
	}

	// The second agent saw the drill's processes: it is offered, and
	// added after a confirmation. The first, in the incident already, is
	// not offered.
	addSel := fmt.Sprintf(`#hunt button[data-add-host="%s"]`, otherID)
	run(t, ctx, shots, "add the matching host to the incident",
		chromedp.WaitVisible(css(addSel)),
		click(addSel),
		chromedp.WaitVisible(css("#confirm-add-host")),
		chromedp.SendKeys(css("#add-reason"), "ran the drill's binaries"),
		click("#confirm"),
		click("#confirm-add-host"),
		chromedp.WaitVisible(css(fmt.Sprintf(`table.hosts tr[data-agent="%s"]`, otherID))),
		chromedp.WaitVisible(css("#hunt-no-others")),
	)
	screenshot(t, ctx, shots, "hunt-01b-host-added")
	offeredSelf := value(t, ctx, shots, "count offers of the incident's host", chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll('#hunt button[data-add-host="%s"]').length`, agentID)))
	if offeredSelf != 0 {
		t.Error("the incident's own host is offered for adding")
	}
	var inc incidentJSON
	c.ctlJSON(t, &inc, "incident", "show", incID, "--json")
	if !slices.Contains(inc.AffectedHosts, otherID) {
		t.Errorf("the added host is not in the incident: %+v", inc.AffectedHosts)
	}

	// A query that does not parse: the collector's error, with its
	// position, under the form; nothing is created.
	run(t, ctx, shots, "start a bad hunt",
		click(`a[data-nav="hunts"]`),
		chromedp.WaitVisible(css(fmt.Sprintf(`tr[data-hunt="%s"]`, hunts[0].ID))),
		chromedp.SendKeys(css("#hunt-query"), `proces.name == "xmrig"`),
		click("#hunt-start"),
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
		// The list may be drawn again meanwhile: a form drawn anew is
		// empty already.
		chromedp.WaitVisible(css("#hunt-query")),
		ignore(chromedp.Evaluate[string](`document.querySelector("#hunt-query")?.value && (document.querySelector("#hunt-query").value = "")`)),
		chromedp.SendKeys(css("#hunt-query"), `process.name == "cordon-agent"`),
		click("#hunt-start"),
		chromedp.WaitVisible(css("#hunt-title")),
		chromedp.WaitVisible(css(fmt.Sprintf(`table.hunt-agents tr[data-agent="%s"]`, agentID))),
		ignore(chromedp.Poll[bool](`document.querySelector("#hunt-status")?.textContent === "done"`, chromedp.WithPollingTimeout(40*time.Second))),
		// Both agents' own processes match, with their times.
		chromedp.WaitVisible(css("table.hunt-matches tbody tr")),
	)
	status := value(t, ctx, shots, "read the agent's status", chromedp.Text(css(fmt.Sprintf(`table.hunt-agents tr[data-agent="%s"] .astatus`, agentID))))
	screenshot(t, ctx, shots, "hunt-03-detail")
	if status != "answered" && status != "partial" {
		t.Errorf("the agent's part of the hunt is %q", status)
	}

	// A viewer sees the hunts and the incident's hunt without buttons.
	run(t, ctx, shots, "sign in as a viewer",
		click("#signout"),
		chromedp.WaitVisible(css("#key")),
		chromedp.SendKeys(css("#key"), viewer),
		click("#signin"),
		chromedp.WaitVisible(css("#top")),
		ignore(chromedp.Evaluate[string](fmt.Sprintf(`location.hash = "#/incident/%s"`, incID))),
		chromedp.WaitVisible(css("#incident-title")),
		chromedp.WaitVisible(css("#hunt #hunt-progress")),
	)
	onIncident := value(t, ctx, shots, "count hunt buttons on the incident", chromedp.Evaluate[int](`document.querySelectorAll("button[data-hunt], button[data-add-host]").length`))
	screenshot(t, ctx, shots, "hunt-04-viewer-incident")
	run(t, ctx, shots, "viewer opens the hunts",
		click(`a[data-nav="hunts"]`),
		chromedp.WaitVisible(css("table.hunts")),
	)
	onHunts := value(t, ctx, shots, "count hunt controls on the hunts page", chromedp.Evaluate[int](`document.querySelectorAll("button[data-hunt], #hunt-query").length`))
	screenshot(t, ctx, shots, "hunt-05-viewer-hunts")
	if onIncident != 0 || onHunts != 0 {
		t.Errorf("a viewer sees %d hunt buttons on the incident and %d hunt controls on the hunts page", onIncident, onHunts)
	}
}
