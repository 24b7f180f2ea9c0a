package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts a headless Chromium for the test and returns a context
// for its first tab. It skips the test when no Chromium is installed
// (.ci/run installs Debian's chromium package).
func browser(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		t.Skip("no chromium in PATH: the console's browser test needs it (apt-get install chromium)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1360, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first action starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

type css = chromedp.CSS

// ignore drops the value of an action, to run it among others.
func ignore[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}

// click clicks the element sel selects, again when the console re-rendered
// it between finding it and clicking it (live updates redraw the page):
// the browser then answers "Could not find node with given id" before any
// mouse event, so a retry never clicks twice.
func click(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		var err error
		for range 10 {
			_, err = chromedp.Click(css(sel))(ctx, tg)
			if err == nil || !strings.Contains(err.Error(), "Could not find node") {
				return chromedp.Void{}, err
			}
			time.Sleep(100 * time.Millisecond)
		}
		return chromedp.Void{}, err
	}
}

// value runs one browser action and returns its value, failing the test
// as run does.
func value[T any](t *testing.T, ctx context.Context, shots, what string, a chromedp.Action[T]) T {
	t.Helper()
	var v T
	run(t, ctx, shots, what, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		var err error
		v, err = a(ctx, tg)
		return chromedp.Void{}, err
	})
	return v
}

// artifacts returns the folder screenshots go to: $CORDON_ARTIFACTS when
// set, else a folder in the test's temporary directory (named in the log).
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CORDON_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// run runs browser actions with a deadline, failing the test with what
// was being done and a screenshot of the page.
func run(t *testing.T, ctx context.Context, shots, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		screenshot(t, ctx, shots, "failed-"+strings.ReplaceAll(what, " ", "-"))
		t.Fatalf("browser: %s: %v", what, err)
	}
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
	}
}

func (c *collector) apiKey(t *testing.T, name, role string) string {
	t.Helper()
	out, err := c.ctl("api-key", "create", "--name", name, "--role", role)
	if err != nil {
		t.Fatal(err)
	}
	return lastLine(out)
}

// signIn opens the console in the tab of ctx and signs in with key.
func signIn(t *testing.T, ctx context.Context, shots, url, key string) {
	t.Helper()
	run(t, ctx, shots, "sign in",
		chromedp.Navigate(url),
		chromedp.WaitVisible(css("#key")),
		chromedp.SendKeys(css("#key"), key),
		click("#signin"),
		chromedp.WaitVisible(css("#top")),
	)
}

type commandJSON struct {
	ID         string `json:"id"`
	AgentID    string `json:"agent_id"`
	Action     string `json:"action"`
	Status     string `json:"status"`
	Result     string `json:"result"`
	IncidentID string `json:"incident_id"`
}

// TestConsole drives the web console in a real headless Chromium against
// the real collector and agent: a responder signs in, sees a drill
// incident arrive in the queue live, opens it, isolates its host with a
// reason and sees the command reach its final state, ticks a step of its
// playbook checklist, and runs a drill from the fleet page, which shows
// the pushed rule set's version; a viewer sees the same pages without
// any action.
func TestConsole(t *testing.T) {
	ctx := browser(t)
	shots := artifacts(t)
	c := newCollector(t)
	agentID := c.runAgent(t)
	responder := c.apiKey(t, "console-responder", "responder")
	viewer := c.apiKey(t, "console-viewer", "viewer")
	url := "http://" + c.api + "/"

	// A pushed rule set, whose version the fleet page shows.
	rulesDir := writeRules(t, map[string]string{"marker.yml": e2eMarkerRule("0b4b7f0e-3c43-4f5e-9a57-2d1c9e0c7a11", "cordon-console-marker")})
	if out, err := c.ctl("rules", "push", rulesDir); err != nil {
		t.Fatalf("rules push: %v\n%s", err, out)
	}
	var rules struct {
		Version string `json:"version"`
	}
	c.ctlJSON(t, &rules, "rules", "--json")
	eventually(t, 30*time.Second, "the agent runs the pushed rules", func() error {
		got, err := agentRules(c, agentID)
		if err != nil || got != rules.Version {
			return fmt.Errorf("agent runs %q (%v), want %q", got, err, rules.Version)
		}
		return nil
	})

	// A wrong key is refused on the sign-in page.
	run(t, ctx, shots, "refuse a wrong key",
		chromedp.Navigate(url),
		chromedp.WaitVisible(css("#key")),
		chromedp.SendKeys(css("#key"), "cdk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
		click("#signin"),
		chromedp.WaitVisible(css(".signin .error")),
	)
	screenshot(t, ctx, shots, "01-sign-in-refused")

	signIn(t, ctx, shots, url, responder)
	// The agent's own detections (binaries run from /tmp by the tests) may
	// already be in the queue; the drill incident is not yet.
	run(t, ctx, shots, "the queue and live stream",
		chromedp.WaitVisible(css("table.queue, p.empty")),
		chromedp.WaitVisible(css("#live:not(.off)")),
		// A page reload would lose this mark.
		ignore(chromedp.Evaluate[int](`window.cordonTestMark = 1`)),
	)

	// A drill opens an incident; the open queue shows it without a reload.
	incID := c.drillIncident(t, agentID).ID
	row := fmt.Sprintf(`tr.row[data-id="%s"]`, incID)
	run(t, ctx, shots, "see the drill incident arrive live",
		chromedp.WaitVisible(css(row)),
		chromedp.WaitVisible(css(row+` td.timer[data-timer="ack"]`)),
	)
	mark := value(t, ctx, shots, "check for a reload", chromedp.Evaluate[int](`window.cordonTestMark || 0`))
	if mark != 1 {
		t.Error("the queue was reloaded to show the new incident; want a live update")
	}
	screenshot(t, ctx, shots, "02-queue")

	// Open the incident: classification, process tree, hosts, timeline.
	run(t, ctx, shots, "open the incident",
		click(row),
		chromedp.WaitVisible(css("#incident-title")),
		chromedp.WaitVisible(css(`ul.tree .proc.hit`)),
		chromedp.WaitVisible(css(fmt.Sprintf(`tr[data-agent="%s"] button[data-action="isolate"]`, agentID))),
	)
	title := value(t, ctx, shots, "read the title", chromedp.Text(css("#incident-title")))
	tree := value(t, ctx, shots, "read the process tree", chromedp.Text(css("ul.tree")))
	if title == "" || !strings.Contains(tree, "pid") {
		t.Errorf("incident page: title %q, process tree %q", title, tree)
	}
	screenshot(t, ctx, shots, "03-incident")

	// The playbook checklist: tick its first step, and the tick stays
	// after a reload.
	run(t, ctx, shots, "see the playbook checklist",
		chromedp.WaitVisible(css(`#playbook ul.checklist li[data-step] input[type="checkbox"]`)),
	)
	step := value(t, ctx, shots, "read the first step", chromedp.Evaluate[string](`document.querySelector("#playbook li[data-step]:not(.done)")?.dataset.step || ""`))
	if step == "" {
		t.Fatal("the playbook has no open step to tick")
	}
	stepSel := fmt.Sprintf(`#playbook li[data-step="%s"]`, step)
	run(t, ctx, shots, "tick a playbook step",
		click(stepSel+` input[type="checkbox"]`),
		chromedp.WaitVisible(css(stepSel+`.done`)),
		chromedp.Reload(),
		chromedp.WaitVisible(css("#incident-title")),
		chromedp.WaitVisible(css(stepSel+`.done`)),
	)
	ticked := value(t, ctx, shots, "read the step after a reload", chromedp.Evaluate[bool](`document.querySelector('`+stepSel+` input[type="checkbox"]').checked`))
	if !ticked {
		t.Error("the ticked step is not checked after a reload")
	}
	screenshot(t, ctx, shots, "03b-playbook-ticked")
	var withPlaybook struct {
		Playbook struct {
			Steps []struct {
				ID     string `json:"id"`
				Done   bool   `json:"done"`
				DoneBy string `json:"done_by"`
			} `json:"steps"`
		} `json:"playbook"`
	}
	c.ctlJSON(t, &withPlaybook, "incident", "show", incID, "--json")
	if i := slices.IndexFunc(withPlaybook.Playbook.Steps, func(s struct {
		ID     string `json:"id"`
		Done   bool   `json:"done"`
		DoneBy string `json:"done_by"`
	}) bool {
		return s.ID == step
	}); i < 0 || !withPlaybook.Playbook.Steps[i].Done || withPlaybook.Playbook.Steps[i].DoneBy != "console-responder" {
		t.Errorf("step %s through the API: %+v", step, withPlaybook.Playbook.Steps)
	}

	// Isolate its host with a reason; the dialog follows the command to
	// its final state. (Whether this agent can isolate is not the point:
	// the console must show what the agent answered.)
	run(t, ctx, shots, "isolate the host",
		click(fmt.Sprintf(`tr[data-agent="%s"] button[data-action="isolate"]`, agentID)),
		chromedp.WaitVisible(css("#reason")),
		chromedp.SendKeys(css("#reason"), "drill: beaconing host"),
		click("#confirm"),
		click("#confirm-action"),
		chromedp.WaitVisible(css("#progress")),
		ignore(chromedp.Poll[bool](`["succeeded","failed","expired"].includes(document.querySelector("#command-status")?.textContent)`, chromedp.WithPollingTimeout(40*time.Second))),
	)
	status := value(t, ctx, shots, "read the command status", chromedp.Text(css("#command-status")))
	result := value(t, ctx, shots, "read the command result", chromedp.Text(css("#command-result")))
	screenshot(t, ctx, shots, "04-isolate-progress")
	var cmds []commandJSON
	c.ctlJSON(t, &cmds, "commands", "--agent", agentID, "--json")
	var iso *commandJSON
	for i := range cmds {
		if cmds[i].Action == "isolate" {
			iso = &cmds[i]
		}
	}
	if iso == nil || iso.IncidentID != incID {
		t.Fatalf("no isolate command for the incident in %+v", cmds)
	}
	want := iso.Result
	if want == "" {
		want = "—"
	}
	if status != iso.Status || result != want {
		t.Errorf("console shows %q %q; the API says %q %q", status, result, iso.Status, iso.Result)
	}
	run(t, ctx, shots, "close the progress",
		click("#close-progress"),
		chromedp.WaitVisible(css(fmt.Sprintf(`tr[data-command="%s"]`, iso.ID))),
	)

	// A status change from the page lands on the incident.
	run(t, ctx, shots, "acknowledge the incident",
		// Typing marks the form as being edited, so live updates (the
		// agent's heartbeats) leave it alone; SetValue alone fires no
		// input event, as a person choosing an option would.
		chromedp.SendKeys(css("#assignee"), "ann"),
		chromedp.SetValue(css("#status"), "triage"),
		click("#save"),
		chromedp.WaitVisible(css(`.status.s-triage`)),
	)
	screenshot(t, ctx, shots, "05-incident-after")
	var inc incidentJSON
	c.ctlJSON(t, &inc, "incident", "show", incID, "--json")
	if inc.Status != "triage" || inc.Assignee != "ann" {
		t.Errorf("incident after the update: %+v", inc)
	}

	// The fleet page runs a drill, a command that succeeds.
	run(t, ctx, shots, "run a drill from the fleet page",
		click(`a[data-nav="fleet"]`),
		chromedp.WaitVisible(css(fmt.Sprintf(`tr[data-agent="%s"] .dot.on`, agentID))),
		click(fmt.Sprintf(`tr[data-agent="%s"] button[data-action="drill"]`, agentID)),
		chromedp.WaitVisible(css("#reason")),
		chromedp.SendKeys(css("#reason"), "weekly drill"),
		click("#confirm"),
		click("#confirm-action"),
		ignore(chromedp.Poll[bool](`document.querySelector("#command-status")?.textContent === "succeeded"`, chromedp.WithPollingTimeout(40*time.Second))),
	)
	screenshot(t, ctx, shots, "06-drill-succeeded")
	run(t, ctx, shots, "close the drill progress",
		click("#close-progress"),
		chromedp.WaitVisible(css(`table.fleet`)),
	)
	screenshot(t, ctx, shots, "07-fleet")
	shown := value(t, ctx, shots, "read the rules version", chromedp.Text(css(fmt.Sprintf(`tr[data-agent="%s"] td.rules`, agentID))))
	if shown != rules.Version {
		t.Errorf("the fleet page shows rules %q, want %q", shown, rules.Version)
	}

	// Every change made from the console is in the audit trail under the
	// responder's key.
	var trail []struct {
		Actor, Action, Outcome string
	}
	c.ctlJSON(t, &trail, "audit", "--actor", "console-responder", "--json")
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Action+":"+e.Outcome)
	}
	slices.Sort(actions)
	if !slices.Equal(actions, []string{"command.create:success", "command.create:success", "incident.update:success", "incident.update:success"}) {
		t.Errorf("audit trail of the responder: %v", actions)
	}

	// After signing out, a viewer sees the incident and the fleet without
	// any action.
	vctx := ctx
	run(t, ctx, shots, "sign out and in as a viewer",
		click("#signout"),
		chromedp.WaitVisible(css("#key")),
		chromedp.SendKeys(css("#key"), viewer),
		click("#signin"),
		chromedp.WaitVisible(css("#top")),
		chromedp.WaitVisible(css("table.queue")),
	)
	run(t, vctx, shots, "viewer opens the incident",
		// A hash change: Navigate would wait for a page load that never comes.
		ignore(chromedp.Evaluate[string](fmt.Sprintf(`location.hash = "#/incident/%s"`, incID))),
		chromedp.WaitVisible(css("#incident-title")),
		chromedp.WaitVisible(css("table.hosts")),
	)
	run(t, vctx, shots, "viewer sees the playbook",
		chromedp.WaitVisible(css(stepSel+`.done`)),
	)
	buttons := value(t, vctx, shots, "count buttons", chromedp.Evaluate[int](`document.querySelectorAll("button[data-action]").length`))
	forms := value(t, vctx, shots, "count forms", chromedp.Evaluate[int](`document.querySelectorAll("form.update, #save").length`))
	controls := value(t, vctx, shots, "count playbook controls", chromedp.Evaluate[int](`document.querySelectorAll("#playbook input, #playbook button").length`))
	screenshot(t, vctx, shots, "08-viewer-incident")
	if buttons != 0 || forms != 0 || controls != 0 {
		t.Errorf("a viewer sees %d action buttons, %d update forms and %d playbook controls on the incident", buttons, forms, controls)
	}
	run(t, vctx, shots, "viewer opens the fleet",
		click(`a[data-nav="fleet"]`),
		chromedp.WaitVisible(css(fmt.Sprintf(`tr[data-agent="%s"]`, agentID))),
	)
	buttons = value(t, vctx, shots, "count fleet buttons", chromedp.Evaluate[int](`document.querySelectorAll("button[data-action]").length`))
	if buttons != 0 {
		t.Errorf("a viewer sees %d action buttons on the fleet page", buttons)
	}
}
