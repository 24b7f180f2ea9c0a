package main

import (
	"flag"
	"fmt"
	"net/url"
	"strings"
)

// agent holds the fields of an API Agent that the table shows.
type agent struct {
	ID       string            `json:"id"`
	Hostname string            `json:"hostname"`
	Online   bool              `json:"online"`
	Isolated bool              `json:"isolated"`
	Revoked  bool              `json:"revoked"`
	Tags     map[string]string `json:"tags"`
	LastSeen apiTime           `json:"last_seen"`
	// RulesVersion is the pushed rule set the agent runs, RulesError why
	// it refused the last one.
	RulesVersion string `json:"rules_version"`
	RulesError   string `json:"rules_error"`
	// IocsVersion is the indicator set the agent matches.
	IocsVersion string `json:"iocs_version"`
}

func setupAgents(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print one JSON array of agents")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		raw, agents, err := listInto[agent](inv.ctx, c, "/api/v1/agents", nil)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		if len(agents) == 0 {
			fmt.Fprintln(inv.stderr, "no agents enrolled")
			return nil
		}
		now := inv.now()
		t := newTable(inv.stdout, "ID", "HOSTNAME", "ONLINE", "ISOLATED", "RULES", "TAGS", "LAST SEEN")
		for _, a := range agents {
			online := yesNo(a.Online)
			if a.Revoked {
				online = "revoked"
			}
			rules := "built-in"
			if a.RulesVersion != "" {
				rules = clean(a.RulesVersion)
			}
			if a.RulesError != "" {
				rules += " (refused a set)"
			}
			t.row(a.ID, orDash(a.Hostname), online, yesNo(a.Isolated), rules, orDash(joinTags(a.Tags)), ago(a.LastSeen.Time, now))
		}
		return t.flush()
	}
}

// finding holds the fields of an API Finding that the table shows.
type finding struct {
	ID       string `json:"id"`
	AgentID  string `json:"agent_id"`
	Hostname string `json:"hostname"`
	Rule     struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rule"`
	Severity string `json:"severity"`
	Attack   struct {
		Tactics    []string `json:"tactics"`
		Techniques []string `json:"techniques"`
	} `json:"attack"`
	Summary    string  `json:"summary"`
	DetectedAt apiTime `json:"detected_at"`
	Drill      bool    `json:"drill"`
}

// ruleLabel is the rule's name, else its id.
func (f *finding) ruleLabel() string {
	if f.Rule.Name != "" {
		return f.Rule.Name
	}
	return f.Rule.ID
}

func setupFindings(fs *flag.FlagSet) func(*invocation) error {
	agentID := fs.String("agent", "", "only findings of agent `ID`")
	incidentID := fs.String("incident", "", "only findings of incident `ID`")
	severity := fs.String("severity", "", "only findings of severity `S` (low, medium, high, critical)")
	asJSON := fs.Bool("json", false, "print one JSON array of findings")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		q := url.Values{}
		setIf(q, "agent", *agentID)
		setIf(q, "incident", *incidentID)
		setIf(q, "severity", *severity)
		raw, findings, err := listInto[finding](inv.ctx, c, "/api/v1/findings", q)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		if len(findings) == 0 {
			fmt.Fprintln(inv.stderr, "no findings")
			return nil
		}
		t := newTable(inv.stdout, "ID", "AGENT", "SEVERITY", "RULE", "TECHNIQUES", "DETECTED")
		for _, f := range findings {
			t.row(f.ID, f.AgentID, f.Severity, truncate(f.ruleLabel(), 48),
				orDash(strings.Join(f.Attack.Techniques, ",")), stamp(f.DetectedAt.Time))
		}
		return t.flush()
	}
}

// setIf sets q[key] to value when value is not empty.
func setIf(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}
