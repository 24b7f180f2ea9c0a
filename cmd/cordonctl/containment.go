package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strconv"
)

func setupSuspend(fs *flag.FlagSet) func(*invocation) error { return setupProcess("suspend", fs) }
func setupResume(fs *flag.FlagSet) func(*invocation) error  { return setupProcess("resume", fs) }

// setupProcess defines the flags of kill, suspend and resume.
func setupProcess(action string, fs *flag.FlagSet) func(*invocation) error {
	pid := fs.Int("pid", 0, "process id `N` (required)")
	entity := fs.String("entity-id", "", "the process's entity `ID` (process.entity_id of a finding): the agent refuses if the pid now belongs to another process")
	tree := fs.Bool("tree", false, "act on the process's descendants as well")
	f := defineActionFlags(fs, "why: `TEXT` for the audit trail")
	return func(inv *invocation) error {
		if !inv.isSet("pid") {
			return usagef("--pid is required")
		}
		if *pid <= 0 {
			return usagef("--pid: want a process id above 0, got %d", *pid)
		}
		args := map[string]string{"pid": strconv.Itoa(*pid)}
		if *entity != "" {
			args["entity_id"] = *entity
		}
		if *tree {
			args["tree"] = "true"
		}
		return inv.sendCommand(action, args, f)
	}
}

func setupAgentBreakGlass(fs *flag.FlagSet) func(*invocation) error {
	asJSON := fs.Bool("json", false, "print the API's answer as one JSON object")
	return func(inv *invocation) error {
		c, err := inv.client()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := c.do(inv.ctx, http.MethodGet, "/api/v1/agents/"+pathEscape(inv.args[0])+"/break-glass", nil, nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(inv.stdout, raw)
		}
		var bg struct {
			AgentID string `json:"agent_id"`
			Code    string `json:"code"`
		}
		if err := json.Unmarshal(raw, &bg); err != nil || bg.Code == "" {
			return fmt.Errorf("decoding the break-glass code: %v", err)
		}
		fmt.Fprintf(inv.stderr, "on the host of agent %s, as root: cordon-agent release --break-glass CODE\n", bg.AgentID)
		fmt.Fprintln(inv.stdout, bg.Code)
		return nil
	}
}

func setupQuarantine(fs *flag.FlagSet) func(*invocation) error {
	path := fs.String("path", "", "absolute `PATH` of the file on the host (required)")
	f := defineActionFlags(fs, "why: `TEXT` for the audit trail")
	return func(inv *invocation) error {
		if *path == "" {
			return usagef("--path is required")
		}
		return inv.sendCommand("quarantine", map[string]string{"path": *path}, f)
	}
}

func setupRestore(fs *flag.FlagSet) func(*invocation) error {
	path := fs.String("path", "", "original `PATH` of the quarantined file (its latest quarantine)")
	id := fs.String("id", "", "quarantine `ID`, from the result of the quarantine command")
	f := defineActionFlags(fs, "why: `TEXT` for the audit trail")
	return func(inv *invocation) error {
		if (*path == "") == (*id == "") {
			return usagef("give one of --path and --id")
		}
		args := map[string]string{}
		if *path != "" {
			args["path"] = *path
		} else {
			args["id"] = *id
		}
		return inv.sendCommand("restore", args, f)
	}
}
