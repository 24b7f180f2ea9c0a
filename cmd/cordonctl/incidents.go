package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// incident holds the fields of an API Incident that cordonctl shows.
type incident struct {
	ID               string   `json:"id"`
	Title            string   `json:"title"`
	Status           string   `json:"status"`
	Type             string   `json:"type"`
	Impact           int      `json:"impact"`
	Urgency          int      `json:"urgency"`
	Priority         string   `json:"priority"`
	AssetCriticality loose    `json:"asset_criticality"`
	Origin           string   `json:"origin"`
	AffectedHosts    []string `json:"affected_hosts"`
	AffectedUsers    []string `json:"affected_users"`
	Assignee         string   `json:"assignee"`
	FindingIDs       []string `json:"finding_ids"`
	Timeline         []struct {
		At     apiTime `json:"at"`
		Actor  string  `json:"actor"`
		Action string  `json:"action"`
		Detail loose   `json:"detail"`
	} `json:"timeline"`
	Drill      bool     `json:"drill"`
	Severity   string   `json:"severity"`
	Tactics    []string `json:"tactics"`
	Techniques []string `json:"techniques"`
	Indicators []string `json:"indicators"`
	Overrides  []string `json:"overrides"`
	Review     *review  `json:"review"`
	Playbook   *struct {
		Name   string `json:"name"`
		Source string `json:"source"`
		DryRun bool   `json:"dry_run"`
		Steps  []struct {
			ID     string  `json:"id"`
			Title  string  `json:"title"`
			Done   bool    `json:"done"`
			DoneBy string  `json:"done_by"`
			DoneAt apiTime `json:"done_at"`
		} `json:"steps"`
		Actions []struct {
			Ref       string `json:"ref"`
			Action    string `json:"action"`
			AgentID   string `json:"agent_id"`
			Status    string `json:"status"`
			CommandID string `json:"command_id"`
			Detail    string `json:"detail"`
		} `json:"actions"`
	} `json:"playbook"`
	SLA *struct {
		AcknowledgeBy       apiTime  `json:"acknowledge_by"`
		ContainBy           apiTime  `json:"contain_by"`
		AcknowledgeBreached bool     `json:"acknowledge_breached"`
		ContainBreached     bool     `json:"contain_breached"`
		TimeToDetect        *float64 `json:"time_to_detect_seconds"`
		TimeToAcknowledge   *float64 `json:"time_to_acknowledge_seconds"`
		TimeToContain       *float64 `json:"time_to_contain_seconds"`
		TimeToResolve       *float64 `json:"time_to_resolve_seconds"`
	} `json:"sla"`
	Similar []struct {
		ID       string   `json:"id"`
		Title    string   `json:"title"`
		Status   string   `json:"status"`
		Priority string   `json:"priority"`
		Shared   []string `json:"shared"`
		Review   *review  `json:"review"`
	} `json:"similar"`
	DetectedAt     apiTime `json:"detected_at"`
	OpenedAt       apiTime `json:"opened_at"`
	AcknowledgedAt apiTime `json:"acknowledged_at"`
	ContainedAt    apiTime `json:"contained_at"`
	ResolvedAt     apiTime `json:"resolved_at"`
	ClosedAt       apiTime `json:"closed_at"`
	UpdatedAt      apiTime `json:"updated_at"`
}

// review is a post-incident review.
type review struct {
	RootCause       string   `json:"root_cause"`
	LessonsLearned  string   `json:"lessons_learned"`
	FollowUpActions []string `json:"follow_up_actions"`
}

func setupIncidents(fs *flag.FlagSet) func(*invocation) error {
	status := fs.String("status", "", "only incidents in status `S` (new, triage, investigating, contained, eradicated, recovered, closed, false_positive, duplicate)")
	agentID := fs.String("agent", "", "only incidents affecting agent `ID`")
	asJSON := fs.Bool("json", false, "print one JSON array of incidents")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		q := url.Values{}
		setIf(q, "status", *status)
		setIf(q, "agent", *agentID)
		raw, incidents, err := listInto[incident](inv.ctx, c, "/api/v1/incidents", q)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		if len(incidents) == 0 {
			fmt.Fprintln(inv.stderr, "no incidents")
			return nil
		}
		t := newTable(inv.stdout, "ID", "PRIORITY", "STATUS", "TYPE", "TITLE", "HOSTS", "FINDINGS", "ASSIGNEE", "DRILL")
		for _, in := range incidents {
			drill := ""
			if in.Drill {
				drill = "drill"
			}
			t.row(in.ID, orDash(in.Priority), in.Status, orDash(in.Type), truncate(in.Title, 60),
				strconv.Itoa(len(in.AffectedHosts)), strconv.Itoa(len(in.FindingIDs)), orDash(in.Assignee), drill)
		}
		return t.flush()
	}
}

func setupIncidentShow(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the incident as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodGet, "/api/v1/incidents/"+pathEscape(inv.args[0]), nil, nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		var in incident
		if err := json.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("decoding the incident: %w", err)
		}
		_, findings, err := listInto[finding](inv.ctx, c, "/api/v1/findings", url.Values{"incident": {in.ID}})
		if err != nil {
			return err
		}
		return inv.printIncident(inv.stdout, &in, findings)
	}
}

// printIncident writes the readable view of one incident: a header, its
// fields, the affected hosts and users, its findings and its timeline.
func (inv *invocation) printIncident(w io.Writer, in *incident, findings []finding) error {
	now := inv.now()
	header := "Incident " + in.ID
	if in.Drill {
		header += "  [DRILL]"
	}
	fmt.Fprintf(w, "%s\n%s\n\n", clean(header), clean(in.Title))

	t := newTable(w)
	field := func(name, value string) { t.row(name+":", value) }
	priority := orDash(in.Priority)
	if in.Impact != 0 || in.Urgency != 0 {
		priority += fmt.Sprintf(" (impact %d, urgency %d)", in.Impact, in.Urgency)
	}
	field("Status", in.Status)
	field("Priority", priority)
	field("Type", orDash(in.Type))
	field("Origin", orDash(in.Origin))
	field("Asset criticality", orDash(string(in.AssetCriticality)))
	field("Assignee", orDash(in.Assignee))
	field("Detected", stampAgo(in.DetectedAt.Time, now))
	for _, f := range []struct {
		name string
		at   apiTime
	}{
		{"Acknowledged", in.AcknowledgedAt},
		{"Contained", in.ContainedAt},
		{"Resolved", in.ResolvedAt},
		{"Closed", in.ClosedAt},
		{"Updated", in.UpdatedAt},
	} {
		if !f.at.IsZero() {
			field(f.name, stampAgo(f.at.Time, now))
		}
	}
	if err := t.flush(); err != nil {
		return err
	}

	if in.SLA != nil {
		fmt.Fprintf(w, "\nService level:\n")
		t = newTable(&indent{w: w})
		t.row("Acknowledge by:", stamp(in.SLA.AcknowledgeBy.Time), breached(in.SLA.AcknowledgeBreached))
		t.row("Contain by:", stamp(in.SLA.ContainBy.Time), breached(in.SLA.ContainBreached))
		if err := t.flush(); err != nil {
			return err
		}
	}

	fmt.Fprintf(w, "\nAffected hosts (%d):\n", len(in.AffectedHosts))
	for _, h := range in.AffectedHosts {
		fmt.Fprintf(w, "  %s\n", clean(h))
	}
	fmt.Fprintf(w, "\nAffected users (%d):\n", len(in.AffectedUsers))
	for _, u := range in.AffectedUsers {
		fmt.Fprintf(w, "  %s\n", clean(u))
	}

	fmt.Fprintf(w, "\nFindings (%d):\n", max(len(findings), len(in.FindingIDs)))
	if len(findings) > 0 {
		t = newTable(&indent{w: w}, "ID", "AGENT", "SEVERITY", "RULE", "TECHNIQUES", "DETECTED")
		for _, f := range findings {
			t.row(f.ID, f.AgentID, f.Severity, truncate(f.ruleLabel(), 48),
				orDash(strings.Join(f.Attack.Techniques, ",")), stamp(f.DetectedAt.Time))
		}
		if err := t.flush(); err != nil {
			return err
		}
	} else {
		for _, id := range in.FindingIDs {
			fmt.Fprintf(w, "  %s\n", clean(id))
		}
	}

	fmt.Fprintf(w, "\nTimeline (%d):\n", len(in.Timeline))
	if len(in.Timeline) > 0 {
		t = newTable(&indent{w: w})
		for _, e := range in.Timeline {
			t.row(stamp(e.At.Time), orDash(e.Actor), e.Action, string(e.Detail))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	if pb := in.Playbook; pb != nil {
		mode := ""
		if pb.DryRun {
			mode = ", dry run"
		}
		fmt.Fprintf(w, "\nPlaybook: %s (%s%s)\n", clean(pb.Name), clean(pb.Source), mode)
		for _, s := range pb.Steps {
			box := "[ ]"
			if s.Done {
				box = "[x]"
			}
			fmt.Fprintf(w, "  %s %s  %s\n", box, clean(s.ID), clean(s.Title))
		}
		for _, a := range pb.Actions {
			fmt.Fprintf(w, "  action %s: %s\n", clean(a.Ref), clean(a.Status))
		}
	}

	if in.Review != nil {
		fmt.Fprintf(w, "\nReview:\n  Root cause: %s\n  Lessons learned: %s\n", clean(in.Review.RootCause), clean(in.Review.LessonsLearned))
		for _, a := range in.Review.FollowUpActions {
			fmt.Fprintf(w, "  Follow-up: %s\n", clean(a))
		}
	}

	if len(in.Similar) > 0 {
		fmt.Fprintf(w, "\nSimilar closed incidents (%d):\n", len(in.Similar))
		for _, s := range in.Similar {
			fmt.Fprintf(w, "  %s  %s  %s  %s\n    shares: %s\n", clean(s.ID), clean(orDash(s.Priority)), clean(s.Status),
				clean(truncate(s.Title, 60)), clean(strings.Join(s.Shared, ", ")))
			if s.Review != nil {
				fmt.Fprintf(w, "    root cause: %s\n    lessons learned: %s\n", clean(s.Review.RootCause), clean(s.Review.LessonsLearned))
			}
		}
	}
	return nil
}

func breached(b bool) string {
	if b {
		return "BREACHED"
	}
	return "ok"
}

// indent prefixes every line written through it with two spaces.
type indent struct {
	w   io.Writer
	mid bool // the last write did not end a line
}

func (in *indent) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, c := range p {
		if !in.mid {
			b.WriteString("  ")
		}
		b.WriteByte(c)
		in.mid = c != '\n'
	}
	if _, err := in.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func setupIncidentUpdate(fs *flag.FlagSet) func(*invocation) error {
	status := fs.String("status", "", "move the incident to status `S`")
	assignee := fs.String("assignee", "", "assign the incident to `USER`")
	impact := fs.Int("impact", 0, "set the impact, `N` from 1 to 4")
	urgency := fs.Int("urgency", 0, "set the urgency, `N` from 1 to 4")
	comment := fs.String("comment", "", "add `TEXT` to the timeline (the reason, with --impact or --urgency; the justification when containing without a containment command)")
	rootCause := fs.String("review-root-cause", "", "post-incident review: the root cause `TEXT`")
	lessons := fs.String("review-lessons", "", "post-incident review: the lessons learned `TEXT`")
	var followUps listFlag
	fs.Var(&followUps, "review-followup", "post-incident review: a follow-up `ACTION` (repeatable)")
	asJSON := fs.Bool("json", false, "print the updated incident as one JSON object")
	return func(inv *invocation) error {
		body := map[string]any{}
		if inv.isSet("status") {
			body["status"] = *status
		}
		if inv.isSet("assignee") {
			body["assignee"] = *assignee
		}
		if inv.isSet("impact") {
			body["impact"] = *impact
		}
		if inv.isSet("urgency") {
			body["urgency"] = *urgency
		}
		if inv.isSet("comment") {
			body["comment"] = *comment
		}
		if inv.isSet("review-root-cause") || inv.isSet("review-lessons") || inv.isSet("review-followup") {
			if !inv.isSet("review-root-cause") || !inv.isSet("review-lessons") || !inv.isSet("review-followup") {
				return usagef("a review needs --review-root-cause, --review-lessons and at least one --review-followup")
			}
			body["review"] = review{RootCause: *rootCause, LessonsLearned: *lessons, FollowUpActions: followUps}
		}
		if len(body) == 0 {
			return usagef("nothing to update: give at least one of --status, --assignee, --impact, --urgency, --comment, --review-*")
		}
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodPatch, "/api/v1/incidents/"+pathEscape(inv.args[0]), nil, body, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		var in incident
		if err := json.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("decoding the incident: %w", err)
		}
		fmt.Fprintf(inv.stdout, "incident %s updated: status %s, priority %s, assignee %s\n",
			clean(in.ID), clean(in.Status), clean(orDash(in.Priority)), clean(orDash(in.Assignee)))
		return nil
	}
}
