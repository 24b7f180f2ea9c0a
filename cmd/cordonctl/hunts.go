package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// huntObj holds the fields of an API Hunt that cordonctl shows.
type huntObj struct {
	ID         string  `json:"id"`
	Query      string  `json:"query"`
	Selector   string  `json:"selector"`
	Since      apiTime `json:"since"`
	IncidentID string  `json:"incident_id"`
	CreatedBy  string  `json:"created_by"`
	CreatedAt  apiTime `json:"created_at"`
	ExpiresAt  apiTime `json:"expires_at"`
	Status     string  `json:"status"`
	Counts     struct {
		Agents, Pending, Answered, Partial, Failed, Expired, Matched, Matches int
	} `json:"counts"`
	Agents []huntAgent `json:"agents"`
}

type huntAgent struct {
	AgentID  string `json:"agent_id"`
	Hostname string `json:"hostname"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
	Scanned  uint64 `json:"scanned"`
	Matches  []struct {
		Time   apiTime         `json:"time"`
		Source string          `json:"source"`
		Event  json.RawMessage `json:"event"`
	} `json:"matches"`
}

// huntFlags are the flags shared by hunt create and incident hunt.
type huntFlags struct {
	agents, since, ttl, budget *string
	maxMatches                 *int
	wait                       *bool
	timeout                    *time.Duration
	json                       *bool
}

func defineHuntFlags(fs *flag.FlagSet) *huntFlags {
	return &huntFlags{
		agents:     fs.String("agents", "all", "the agents: `all`, or agent ids and tags (criticality=high) separated by commas"),
		since:      fs.String("since", "", "how far back agents read their history, a `DURATION` (default 24h)"),
		ttl:        fs.String("ttl", "", "how long the hunt waits for offline agents, a `DURATION` (default 24h)"),
		budget:     fs.String("budget", "", "the time each agent may spend, a `DURATION` (default 30s)"),
		maxMatches: fs.Int("max-matches", 0, "the matches each agent returns at most (`N`, default 1000)"),
		wait:       fs.Bool("wait", false, "wait until every agent answered (or the timeout)"),
		timeout:    fs.Duration("timeout", defaultWaitTimeout, "how long --wait waits, a `DURATION`"),
		json:       fs.Bool("json", false, "print the hunt as one JSON object"),
	}
}

func (f *huntFlags) body() map[string]any {
	b := map[string]any{"agents": *f.agents}
	for k, v := range map[string]string{"since": *f.since, "ttl": *f.ttl, "budget": *f.budget} {
		if v != "" {
			b[k] = v
		}
	}
	if *f.maxMatches > 0 {
		b["max_matches"] = *f.maxMatches
	}
	return b
}

func setupHuntCreate(fs *flag.FlagSet) func(*invocation) error {
	q := fs.String("query", "", "the `QUERY` (see docs/hunting.md), e.g. 'process.executable endswith \"/xmrig\"'")
	f := defineHuntFlags(fs)
	return func(inv *invocation) error {
		if *q == "" {
			return usagef("--query is required")
		}
		body := f.body()
		body["query"] = *q
		return inv.startHunt("/api/v1/hunts", body, f, nil)
	}
}

// startHunt posts a hunt, then shows it (after waiting, with --wait).
// affected, when not nil, are the incident's hosts: the hosts that match
// but are not among them are named.
func (inv *invocation) startHunt(path string, body map[string]any, f *huntFlags, affected []string) error {
	if *f.timeout <= 0 {
		return usagef("--timeout: want a positive duration, got %s", *f.timeout)
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(inv.ctx, http.MethodPost, path, nil, body, &raw); err != nil {
		return err
	}
	var h huntObj
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("decoding the hunt: %w", err)
	}
	if h.ID == "" {
		return errors.New("the API returned a hunt without an id")
	}
	if !*f.wait {
		if *f.json {
			return writeJSON(inv.stdout, raw)
		}
		fmt.Fprintf(inv.stdout, "hunt %s: %d agents, query %s\n", clean(h.ID), h.Counts.Agents, clean(h.Query))
		if affected == nil {
			fmt.Fprintf(inv.stdout, "follow it with: cordonctl hunt show %s\n", clean(h.ID))
		} else {
			fmt.Fprintf(inv.stdout, "follow it with: cordonctl incident hunt-results %s %s\n", clean(h.IncidentID), clean(h.ID))
		}
		return nil
	}
	raw, h, err = inv.waitHunt(c, h, *f.timeout)
	if err != nil {
		return err
	}
	if *f.json {
		return writeJSON(inv.stdout, raw)
	}
	return inv.printHunt(inv.stdout, &h, affected)
}

// waitHunt polls a hunt until no agent is pending or timeout passes.
func (inv *invocation) waitHunt(c *client, h huntObj, timeout time.Duration) (json.RawMessage, huntObj, error) {
	ctx, cancel := context.WithTimeout(inv.ctx, timeout)
	defer cancel()
	fmt.Fprintf(inv.stderr, "waiting for hunt %s on %d agents\n", clean(h.ID), h.Counts.Agents)
	ticker := time.NewTicker(inv.poll)
	defer ticker.Stop()
	answered := -1
	for {
		var raw json.RawMessage
		err := c.do(ctx, http.MethodGet, "/api/v1/hunts/"+pathEscape(h.ID), nil, nil, &raw)
		var ue *unreachableError
		switch {
		case ctx.Err() != nil:
		case errors.As(err, &ue):
		case err != nil:
			return nil, h, err
		default:
			var n huntObj
			if err := json.Unmarshal(raw, &n); err != nil {
				return nil, h, fmt.Errorf("decoding the hunt: %w", err)
			}
			h = n
			if done := h.Counts.Agents - h.Counts.Pending; done != answered {
				fmt.Fprintf(inv.stderr, "  %d of %d agents done\n", done, h.Counts.Agents)
				answered = done
			}
			if h.Status != "running" {
				return raw, h, nil
			}
		}
		select {
		case <-ctx.Done():
			if inv.ctx.Err() != nil {
				return nil, h, fmt.Errorf("interrupted while waiting for hunt %s; it keeps running", clean(h.ID))
			}
			return nil, h, fmt.Errorf("timed out after %s waiting for hunt %s (%d agents pending); see cordonctl hunt show %s", timeout, clean(h.ID), h.Counts.Pending, clean(h.ID))
		case <-ticker.C:
		}
	}
}

func setupHuntShow(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the hunt as one JSON object")
	return func(inv *invocation) error {
		return inv.showHunt(inv.args[0], *asJSON, nil)
	}
}

func (inv *invocation) showHunt(id string, asJSON bool, affected []string) error {
	c, err := inv.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(inv.ctx, http.MethodGet, "/api/v1/hunts/"+pathEscape(id), nil, nil, &raw); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(inv.stdout, raw)
	}
	var h huntObj
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("decoding the hunt: %w", err)
	}
	return inv.printHunt(inv.stdout, &h, affected)
}

// printHunt writes a hunt for people: its progress, each agent's status,
// and the matches, oldest first per agent.
func (inv *invocation) printHunt(w io.Writer, h *huntObj, affected []string) error {
	n := h.Counts
	fmt.Fprintf(w, "hunt %s (%s)\n", clean(h.ID), clean(h.Status))
	fmt.Fprintf(w, "query     %s\n", clean(h.Query))
	fmt.Fprintf(w, "agents    %s: %d answered, %d partial, %d failed, %d pending, %d expired of %d\n",
		clean(h.Selector), n.Answered, n.Partial, n.Failed, n.Pending, n.Expired, n.Agents)
	fmt.Fprintf(w, "matches   %d on %d agents\n", n.Matches, n.Matched)
	fmt.Fprintf(w, "since     %s\n", stamp(h.Since.Time))
	if h.IncidentID != "" {
		fmt.Fprintf(w, "incident  %s\n", clean(h.IncidentID))
	}
	fmt.Fprintln(w)
	t := newTable(w, "AGENT", "HOSTNAME", "STATUS", "MATCHES", "SCANNED", "REASON")
	for _, a := range h.Agents {
		t.row(a.AgentID, orDash(a.Hostname), a.Status, strconv.Itoa(len(a.Matches)), strconv.FormatUint(a.Scanned, 10), orDash(truncate(a.Reason, 60)))
	}
	if err := t.flush(); err != nil {
		return err
	}
	var matched []string
	for _, a := range h.Agents {
		if len(a.Matches) == 0 {
			continue
		}
		matched = append(matched, a.AgentID)
		fmt.Fprintf(w, "\n%s (%s):\n", clean(a.AgentID), clean(orDash(a.Hostname)))
		for _, m := range a.Matches {
			fmt.Fprintf(w, "  %s  %-7s  %s\n", stamp(m.Time.Time), clean(m.Source), clean(summarizeEvent(m.Event)))
		}
	}
	if affected != nil {
		var outside []string
		for _, id := range matched {
			if !slices.Contains(affected, id) {
				outside = append(outside, id)
			}
		}
		fmt.Fprintln(w)
		if len(outside) == 0 {
			fmt.Fprintln(w, "every matching host is already in the incident")
		} else {
			fmt.Fprintf(w, "matching hosts not yet in incident %s:\n", clean(h.IncidentID))
			for _, id := range outside {
				fmt.Fprintf(w, "  %s    add with: cordonctl incident add-host %s %s\n", clean(id), clean(h.IncidentID), clean(id))
			}
		}
	}
	return nil
}

// summarizeEvent renders the fields of an ECS event that say what it is.
func summarizeEvent(raw json.RawMessage) string {
	var ev struct {
		Event struct {
			Category, Type, Action string
		} `json:"event"`
		Process *struct {
			PID         int    `json:"pid"`
			Executable  string `json:"executable"`
			CommandLine string `json:"command_line"`
		} `json:"process"`
		File *struct {
			Path string `json:"path"`
			Hash *struct {
				SHA256 string `json:"sha256"`
			} `json:"hash"`
		} `json:"file"`
		Source, Destination *struct {
			IP   string `json:"ip"`
			Port int    `json:"port"`
		}
	}
	if json.Unmarshal(raw, &ev) != nil {
		return string(raw)
	}
	var b strings.Builder
	b.WriteString(ev.Event.Category + "/" + ev.Event.Type)
	if p := ev.Process; p != nil {
		fmt.Fprintf(&b, " pid=%d", p.PID)
		if p.Executable != "" {
			b.WriteString(" exe=" + p.Executable)
		}
	}
	if f := ev.File; f != nil {
		b.WriteString(" file=" + f.Path)
		if f.Hash != nil && f.Hash.SHA256 != "" {
			b.WriteString(" sha256=" + f.Hash.SHA256)
		}
	}
	if d := ev.Destination; d != nil && d.IP != "" {
		fmt.Fprintf(&b, " dst=%s:%d", d.IP, d.Port)
	}
	return b.String()
}

func setupHunts(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print one JSON array of hunts")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		raw, hunts, err := listInto[huntObj](inv.ctx, c, "/api/v1/hunts", url.Values{})
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		if len(hunts) == 0 {
			fmt.Fprintln(inv.stderr, "no hunts")
			return nil
		}
		t := newTable(inv.stdout, "ID", "STATUS", "AGENTS", "DONE", "MATCHED", "MATCHES", "CREATED", "QUERY")
		now := inv.now()
		for _, h := range hunts {
			t.row(h.ID, h.Status, strconv.Itoa(h.Counts.Agents), strconv.Itoa(h.Counts.Agents-h.Counts.Pending-h.Counts.Expired),
				strconv.Itoa(h.Counts.Matched), strconv.Itoa(h.Counts.Matches), stampAgo(h.CreatedAt.Time, now), truncate(h.Query, 60))
		}
		return t.flush()
	}
}

// affectedHosts reads an incident's affected hosts.
func (inv *invocation) affectedHosts(c *client, id string) ([]string, error) {
	var in incident
	if err := c.do(inv.ctx, http.MethodGet, "/api/v1/incidents/"+pathEscape(id), nil, nil, &in); err != nil {
		return nil, err
	}
	if in.AffectedHosts == nil {
		in.AffectedHosts = []string{}
	}
	return in.AffectedHosts, nil
}

func setupIncidentHunt(fs *flag.FlagSet) func(*invocation) error {
	f := defineHuntFlags(fs)
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		id := inv.args[0]
		affected, err := inv.affectedHosts(c, id)
		if err != nil {
			return err
		}
		return inv.startHunt("/api/v1/incidents/"+pathEscape(id)+"/hunt", f.body(), f, affected)
	}
}

func setupIncidentHuntResults(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the hunt as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		affected, err := inv.affectedHosts(c, inv.args[0])
		if err != nil {
			return err
		}
		return inv.showHunt(inv.args[1], *asJSON, affected)
	}
}

func setupIncidentAddHost(fs *flag.FlagSet) func(*invocation) error {
	reason := fs.String("reason", "", "why the host is added (goes on the timeline)")
	asJSON := fs.Bool("json", false, "print the incident as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		body := map[string]string{"agent_id": inv.args[1], "reason": *reason}
		if err := c.do(inv.ctx, http.MethodPost, "/api/v1/incidents/"+pathEscape(inv.args[0])+"/hosts", nil, body, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		var in incident
		if err := json.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("decoding the incident: %w", err)
		}
		fmt.Fprintf(inv.stdout, "incident %s: %d affected hosts (%s), priority %s\n", clean(in.ID), len(in.AffectedHosts), clean(strings.Join(in.AffectedHosts, ", ")), clean(orDash(in.Priority)))
		return nil
	}
}
