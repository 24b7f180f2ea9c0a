package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const defaultWaitTimeout = 2 * time.Minute

// cmdObj holds the fields of an API Command that cordonctl shows.
type cmdObj struct {
	ID          string           `json:"id"`
	AgentID     string           `json:"agent_id"`
	Action      string           `json:"action"`
	Args        map[string]loose `json:"args"`
	Reason      string           `json:"reason"`
	IncidentID  string           `json:"incident_id"`
	RequestedBy string           `json:"requested_by"`
	Status      string           `json:"status"`
	Result      loose            `json:"result"`
	CreatedAt   apiTime          `json:"created_at"`
	FinishedAt  apiTime          `json:"finished_at"`
}

// terminal reports whether a command status is final.
func terminal(status string) bool {
	switch status {
	case "succeeded", "failed", "expired":
		return true
	}
	return false
}

// actionFlags are the flags shared by the commands that create a response
// command: isolate, release, kill and drill.
type actionFlags struct {
	reason   *string
	incident *string
	wait     *bool
	timeout  *time.Duration
	json     *bool
}

// defineActionFlags defines --wait, --timeout and --json and, when
// reasonUsage is not empty, --reason and --incident.
func defineActionFlags(fs *flag.FlagSet, reasonUsage string) *actionFlags {
	f := &actionFlags{
		reason:   new(string),
		incident: new(string),
		wait:     fs.Bool("wait", false, "wait until the agent has run the command; exit 1 unless it succeeded"),
		timeout:  fs.Duration("timeout", defaultWaitTimeout, "how long --wait waits, a `DURATION` such as 2m or 30s"),
		json:     fs.Bool("json", false, "print the command as one JSON object"),
	}
	if reasonUsage != "" {
		f.reason = fs.String("reason", "", reasonUsage)
		f.incident = fs.String("incident", "", "link the command to incident `ID`")
	}
	return f
}

func setupIsolate(fs *flag.FlagSet) func(*invocation) error {
	f := defineActionFlags(fs, "why the host is isolated: `TEXT` for the audit trail (required)")
	return func(inv *invocation) error {
		if strings.TrimSpace(*f.reason) == "" {
			return usagef("--reason is required")
		}
		return inv.sendCommand("isolate", nil, f)
	}
}

func setupRelease(fs *flag.FlagSet) func(*invocation) error {
	f := defineActionFlags(fs, "why the isolation is lifted: `TEXT` for the audit trail")
	return func(inv *invocation) error {
		return inv.sendCommand("release", nil, f)
	}
}

func setupKill(fs *flag.FlagSet) func(*invocation) error { return setupProcess("kill", fs) }

func setupDrill(fs *flag.FlagSet) func(*invocation) error {
	scenario := fs.String("scenario", "", "drill scenario `NAME` (default: the agent's default scenario)")
	f := defineActionFlags(fs, "")
	return func(inv *invocation) error {
		var args map[string]string
		if *scenario != "" {
			args = map[string]string{"scenario": *scenario}
		}
		return inv.sendCommand("drill", args, f)
	}
}

// sendCommand creates a response command for the agent named by the first
// argument, prints it and, with --wait, waits for its outcome.
func (inv *invocation) sendCommand(action string, args map[string]string, f *actionFlags) error {
	if *f.timeout <= 0 {
		return usagef("--timeout: want a positive duration, got %s", *f.timeout)
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	if args == nil {
		args = map[string]string{}
	}
	body := map[string]any{
		"agent_id": inv.args[0],
		"action":   action,
		"args":     args,
		"reason":   *f.reason,
	}
	if *f.incident != "" {
		body["incident_id"] = *f.incident
	}
	var raw json.RawMessage
	if err := c.do(inv.ctx, http.MethodPost, "/api/v1/commands", nil, body, &raw); err != nil {
		return err
	}
	var cmd cmdObj
	if err := json.Unmarshal(raw, &cmd); err != nil {
		return fmt.Errorf("decoding the command: %w", err)
	}
	if cmd.ID == "" {
		return errors.New("the API returned a command without an id")
	}
	if !*f.wait {
		if *f.json {
			return writeJSON(inv.stdout, raw)
		}
		fmt.Fprintf(inv.stdout, "command %s: %s on %s: %s\n", clean(cmd.ID), clean(cmd.Action), clean(cmd.AgentID), clean(cmd.Status))
		return nil
	}

	raw, cmd, err = inv.wait(c, raw, cmd, *f.timeout)
	if err != nil {
		return err
	}
	if *f.json {
		if err := writeJSON(inv.stdout, raw); err != nil {
			return err
		}
	} else {
		line := fmt.Sprintf("command %s: %s on %s: %s", cmd.ID, cmd.Action, cmd.AgentID, cmd.Status)
		if cmd.Result != "" {
			line += ": " + string(cmd.Result)
		}
		fmt.Fprintln(inv.stdout, clean(line))
	}
	if cmd.Status != "succeeded" {
		return fmt.Errorf("command %s %s: %s", clean(cmd.ID), cmd.Status, clean(orDash(string(cmd.Result))))
	}
	return nil
}

// wait polls the command every poll interval until its status is final
// or timeout passes, reporting each change of status on stderr. It
// returns the last state of the command; a timeout or an interrupt is an
// error, a failed or expired command is not (the caller decides).
func (inv *invocation) wait(c *client, raw json.RawMessage, cmd cmdObj, timeout time.Duration) (json.RawMessage, cmdObj, error) {
	ctx, cancel := context.WithTimeout(inv.ctx, timeout)
	defer cancel()
	fmt.Fprintf(inv.stderr, "waiting for command %s (%s on %s): %s\n", clean(cmd.ID), clean(cmd.Action), clean(cmd.AgentID), clean(cmd.Status))
	ticker := time.NewTicker(inv.poll)
	defer ticker.Stop()
	path := "/api/v1/commands/" + pathEscape(cmd.ID)
	last := cmd.Status
	unreachable := false
	for !terminal(cmd.Status) {
		select {
		case <-ctx.Done():
			return nil, cmd, inv.waitStopped(cmd, timeout)
		case <-ticker.C:
		}
		var next json.RawMessage
		err := c.do(ctx, http.MethodGet, path, nil, nil, &next)
		var ue *unreachableError
		switch {
		case ctx.Err() != nil:
			return nil, cmd, inv.waitStopped(cmd, timeout)
		case errors.As(err, &ue):
			// The collector may be restarting: keep polling until the timeout.
			if !unreachable {
				fmt.Fprintf(inv.stderr, "  %v; retrying\n", err)
				unreachable = true
			}
			continue
		case err != nil:
			return nil, cmd, err
		}
		unreachable = false
		var n cmdObj
		if err := json.Unmarshal(next, &n); err != nil {
			return nil, cmd, fmt.Errorf("decoding the command: %w", err)
		}
		raw, cmd = next, n
		if cmd.Status != last {
			fmt.Fprintf(inv.stderr, "  %s\n", clean(cmd.Status))
			last = cmd.Status
		}
	}
	return raw, cmd, nil
}

// waitStopped explains why waiting ended before the command did.
func (inv *invocation) waitStopped(cmd cmdObj, timeout time.Duration) error {
	if inv.ctx.Err() != nil {
		return fmt.Errorf("interrupted while waiting for command %s (last status %s); it keeps running on the collector", clean(cmd.ID), clean(cmd.Status))
	}
	return fmt.Errorf("timed out after %s waiting for command %s (last status %s); it may still run, see cordonctl commands", timeout, clean(cmd.ID), clean(cmd.Status))
}

func setupCommands(fs *flag.FlagSet) func(*invocation) error {
	agentID := fs.String("agent", "", "only commands for agent `ID`")
	status := fs.String("status", "", "only commands in status `S` (pending, delivered, succeeded, failed, expired)")
	asJSON := fs.Bool("json", false, "print one JSON array of commands")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		q := url.Values{}
		setIf(q, "agent", *agentID)
		setIf(q, "status", *status)
		raw, cmds, err := listInto[cmdObj](inv.ctx, c, "/api/v1/commands", q)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		if len(cmds) == 0 {
			fmt.Fprintln(inv.stderr, "no commands")
			return nil
		}
		t := newTable(inv.stdout, "ID", "AGENT", "ACTION", "STATUS", "REQUESTED BY", "CREATED", "RESULT")
		for _, cmd := range cmds {
			t.row(cmd.ID, cmd.AgentID, cmd.Action, cmd.Status, orDash(cmd.RequestedBy),
				stamp(cmd.CreatedAt.Time), orDash(truncate(string(cmd.Result), 60)))
		}
		return t.flush()
	}
}
