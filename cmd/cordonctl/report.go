package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ", ") }

func (l *listFlag) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("empty value")
	}
	*l = append(*l, s)
	return nil
}

func setupIncidentComment(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the updated incident as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		body := map[string]any{"comment": inv.args[1]}
		if err := c.do(inv.ctx, http.MethodPatch, "/api/v1/incidents/"+pathEscape(inv.args[0]), nil, body, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		fmt.Fprintf(inv.stdout, "comment added to incident %s\n", clean(inv.args[0]))
		return nil
	}
}

// patchIncident sends body as a change of incident id and prints what
// done says, or the incident as JSON.
func (inv *invocation) patchIncident(id string, body map[string]any, asJSON bool, done string) error {
	c, err := inv.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(inv.ctx, http.MethodPatch, "/api/v1/incidents/"+pathEscape(id), nil, body, &raw); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(inv.stdout, raw)
	}
	fmt.Fprintln(inv.stdout, clean(done))
	return nil
}

func setupIncidentCheck(fs *flag.FlagSet) func(*invocation) error {
	undo := fs.Bool("undo", false, "untick the step")
	comment := fs.String("comment", "", "add `TEXT` to the timeline with the tick")
	asJSON := fs.Bool("json", false, "print the updated incident as one JSON object")
	return func(inv *invocation) error {
		key, verb := "check", "done"
		if *undo {
			key, verb = "uncheck", "not done"
		}
		body := map[string]any{key: inv.args[1]}
		if inv.isSet("comment") {
			body["comment"] = *comment
		}
		return inv.patchIncident(inv.args[0], body, *asJSON, fmt.Sprintf("incident %s: step %s %s", inv.args[0], inv.args[1], verb))
	}
}

func setupIncidentApprove(fs *flag.FlagSet) func(*invocation) error {
	comment := fs.String("comment", "", "add `TEXT` to the timeline with the approval")
	asJSON := fs.Bool("json", false, "print the updated incident as one JSON object")
	return func(inv *invocation) error {
		body := map[string]any{"approve": inv.args[1]}
		if inv.isSet("comment") {
			body["comment"] = *comment
		}
		return inv.patchIncident(inv.args[0], body, *asJSON, fmt.Sprintf("incident %s: %s approved", inv.args[0], inv.args[1]))
	}
}

func setupIncidentStats(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the figures as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodGet, "/api/v1/incidents/stats", nil, nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		type measures struct {
			Incidents           int     `json:"incidents"`
			Open                int     `json:"open"`
			MTTD                float64 `json:"mttd_seconds"`
			MTTA                float64 `json:"mtta_seconds"`
			MTTC                float64 `json:"mttc_seconds"`
			MTTR                float64 `json:"mttr_seconds"`
			AcknowledgeBreaches int     `json:"acknowledge_breaches"`
			ContainBreaches     int     `json:"contain_breaches"`
		}
		var f struct {
			Real  measures `json:"real"`
			Drill measures `json:"drill"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			return fmt.Errorf("decoding the figures: %w", err)
		}
		t := newTable(inv.stdout, "", "INCIDENTS", "OPEN", "MTTD", "MTTA", "MTTC", "MTTR", "ACK BREACHES", "CONTAIN BREACHES")
		for _, r := range []struct {
			name string
			m    measures
		}{{"real", f.Real}, {"drill", f.Drill}} {
			t.row(r.name, fmt.Sprint(r.m.Incidents), fmt.Sprint(r.m.Open), secs(r.m.MTTD), secs(r.m.MTTA), secs(r.m.MTTC), secs(r.m.MTTR),
				fmt.Sprint(r.m.AcknowledgeBreaches), fmt.Sprint(r.m.ContainBreaches))
		}
		return t.flush()
	}
}

func secs(s float64) string {
	if s == 0 {
		return "-"
	}
	return formatDuration(time.Duration(s * float64(time.Second)).Round(time.Second))
}

func setupIncidentReport(fs *flag.FlagSet) func(*invocation) error {
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var in incident
		if err := c.do(inv.ctx, http.MethodGet, "/api/v1/incidents/"+pathEscape(inv.args[0]), nil, nil, &in); err != nil {
			return err
		}
		_, findings, err := listInto[finding](inv.ctx, c, "/api/v1/findings", url.Values{"incident": {in.ID}})
		if err != nil {
			return err
		}
		var cmds []cmdObj
		for _, h := range in.AffectedHosts {
			_, all, err := listInto[cmdObj](inv.ctx, c, "/api/v1/commands", url.Values{"agent": {h}})
			if err != nil {
				return err
			}
			for _, cmd := range all {
				if cmd.IncidentID == in.ID {
					cmds = append(cmds, cmd)
				}
			}
		}
		return writeReport(inv.stdout, &in, findings, cmds)
	}
}

// md makes s safe inside one Markdown table cell or line: no control
// characters, no line breaks, no cell separators.
func md(s string) string {
	s = clean(s)
	s = strings.NewReplacer("\n", " ", "\r", " ", "|", `\|`).Replace(s)
	return s
}

func mdTime(t apiTime) string {
	if t.IsZero() {
		return "—"
	}
	return stamp(t.Time)
}

func mdSecs(v *float64) string {
	if v == nil {
		return "—"
	}
	if *v < 1 {
		return "under 1s"
	}
	return secs(*v)
}

// writeReport renders an incident as Markdown: summary, classification,
// service level, evidence, actions, timeline and review.
func writeReport(w io.Writer, in *incident, findings []finding, cmds []cmdObj) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	title := md(in.Title)
	if in.Drill {
		title = "[DRILL] " + strings.TrimPrefix(title, "[drill] ")
	}
	p("# Incident report: %s\n\n", title)

	p("## Summary\n\n")
	p("| | |\n|---|---|\n")
	row := func(k, v string) { p("| %s | %s |\n", k, v) }
	row("Incident", "`"+md(in.ID)+"`")
	row("Status", md(in.Status))
	row("Priority", md(orDash(in.Priority)))
	row("Drill", yesNo(in.Drill))
	row("Assignee", md(orDash(in.Assignee)))
	row("Affected hosts", md(orDash(strings.Join(in.AffectedHosts, ", "))))
	row("Affected users", md(orDash(strings.Join(in.AffectedUsers, ", "))))
	row("Detected", mdTime(in.DetectedAt))
	row("Opened", mdTime(in.OpenedAt))
	row("Acknowledged", mdTime(in.AcknowledgedAt))
	row("Contained", mdTime(in.ContainedAt))
	row("Resolved", mdTime(in.ResolvedAt))
	row("Closed", mdTime(in.ClosedAt))

	p("\n## Classification\n\n| | |\n|---|---|\n")
	overridden := func(f string) string {
		for _, o := range in.Overrides {
			if o == f {
				return " (set by a responder)"
			}
		}
		return ""
	}
	row("Type", md(orDash(in.Type)))
	row("Severity", md(orDash(in.Severity)))
	row("Impact", fmt.Sprintf("%d%s", in.Impact, overridden("impact")))
	row("Urgency", fmt.Sprintf("%d%s", in.Urgency, overridden("urgency")))
	row("Asset criticality", md(orDash(string(in.AssetCriticality))))
	row("Origin", md(orDash(in.Origin)))
	row("ATT&CK tactics", md(orDash(strings.Join(in.Tactics, ", "))))
	row("ATT&CK techniques", md(orDash(strings.Join(in.Techniques, ", "))))
	row("Indicators", md(orDash(strings.Join(in.Indicators, ", "))))

	if s := in.SLA; s != nil {
		p("\n## Service level\n\n| Milestone | Target | Took | Breached |\n|---|---|---|---|\n")
		p("| Detect | — | %s | — |\n", mdSecs(s.TimeToDetect))
		p("| Acknowledge | %s | %s | %s |\n", stamp(s.AcknowledgeBy.Time), mdSecs(s.TimeToAcknowledge), yesNo(s.AcknowledgeBreached))
		p("| Contain | %s | %s | %s |\n", stamp(s.ContainBy.Time), mdSecs(s.TimeToContain), yesNo(s.ContainBreached))
		p("| Resolve | — | %s | — |\n", mdSecs(s.TimeToResolve))
	}

	if pb := in.Playbook; pb != nil {
		p("\n## Playbook: %s\n\n", md(pb.Name))
		for _, s := range pb.Steps {
			box, by := " ", ""
			if s.Done {
				box, by = "x", fmt.Sprintf(" (%s, %s)", md(s.DoneBy), stamp(s.DoneAt.Time))
			}
			p("- [%s] %s%s\n", box, md(s.Title), by)
		}
		if len(pb.Actions) > 0 {
			p("\n| Automatic action | Host | Status | Detail |\n|---|---|---|---|\n")
			for _, a := range pb.Actions {
				p("| %s | %s | %s | %s |\n", md(a.Action), md(a.AgentID), md(a.Status), md(a.Detail))
			}
		}
	}

	p("\n## Evidence\n\n")
	if len(findings) == 0 {
		p("No findings.\n")
	} else {
		p("| Finding | Agent | Severity | Rule | Techniques | Detected | Summary |\n|---|---|---|---|---|---|---|\n")
		for _, f := range findings {
			p("| `%s` | %s | %s | %s | %s | %s | %s |\n", md(f.ID), md(f.AgentID), md(f.Severity), md(f.ruleLabel()),
				md(orDash(strings.Join(f.Attack.Techniques, ", "))), stamp(f.DetectedAt.Time), md(orDash(f.Summary)))
		}
	}

	p("\n## Actions\n\n")
	if len(cmds) == 0 {
		p("No response commands were sent for this incident.\n")
	} else {
		p("| Command | Action | Agent | Requested by | Status | Result | Reason |\n|---|---|---|---|---|---|---|\n")
		for _, c := range cmds {
			p("| `%s` | %s | %s | %s | %s | %s | %s |\n", md(c.ID), md(c.Action), md(c.AgentID), md(orDash(c.RequestedBy)),
				md(c.Status), md(orDash(string(c.Result))), md(orDash(c.Reason)))
		}
	}

	p("\n## Timeline\n\n| When | Who | What | Detail |\n|---|---|---|---|\n")
	for _, e := range in.Timeline {
		p("| %s | %s | %s | %s |\n", stamp(e.At.Time), md(orDash(e.Actor)), md(e.Action), md(string(e.Detail)))
	}

	p("\n## Post-incident review\n\n")
	if in.Review == nil {
		p("No review yet.\n")
	} else {
		p("**Root cause.** %s\n\n**Lessons learned.** %s\n\n**Follow-up actions.**\n\n", md(in.Review.RootCause), md(in.Review.LessonsLearned))
		for _, a := range in.Review.FollowUpActions {
			p("- %s\n", md(a))
		}
	}
	if len(in.Similar) > 0 {
		p("\n## Similar closed incidents\n\n")
		for _, s := range in.Similar {
			p("- `%s` %s %s: %s (shares %s)", md(s.ID), md(orDash(s.Priority)), md(s.Status), md(s.Title), md(strings.Join(s.Shared, ", ")))
			if s.Review != nil {
				p("; root cause: %s; lessons learned: %s", md(s.Review.RootCause), md(s.Review.LessonsLearned))
			}
			p("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
