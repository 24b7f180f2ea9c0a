package export

import (
	"strconv"
	"time"

	"github.com/cordon-edr/cordon/collector/command"
)

// ocsfRemediation maps a command's action to the activity of an OCSF
// Remediation Activity (D3FEND tactics): 1 Isolate, 2 Evict, 3 Restore,
// 5 Detect, 99 Other.
func ocsfRemediation(action string) (int, string) {
	switch action {
	case command.ActionIsolate:
		return 1, "Isolate"
	case command.ActionKill, command.ActionSuspend, command.ActionQuarantine:
		return 2, "Evict"
	case command.ActionRelease, command.ActionResume, command.ActionRestore:
		return 3, "Restore"
	case command.ActionCollect:
		return 5, "Detect"
	}
	return 99, "Other"
}

// ocsfCommandStatus maps a command's status to the OCSF event status.
func ocsfCommandStatus(s command.Status) (int, string) {
	switch s {
	case command.StatusSucceeded:
		return 1, "Success"
	case command.StatusFailed, command.StatusExpired:
		return 2, "Failure"
	}
	return 99, "Other"
}

// commandTime is when the command's latest change happened.
func commandTime(c *command.Command) time.Time {
	if !c.FinishedAt.IsZero() {
		return c.FinishedAt
	}
	return c.CreatedAt
}

// ocsfCommand maps a command event to an OCSF Remediation Activity
// (class 7001).
func ocsfCommand(ev *Event) map[string]any {
	c := ev.Command
	act, actName := ocsfRemediation(c.Action)
	st, stName := ocsfCommandStatus(c.Status)
	msg := c.Reason
	if c.Result != "" {
		msg = c.Result
	}
	return map[string]any{
		"category_uid":  7,
		"category_name": "Remediation",
		"class_uid":     7001,
		"class_name":    "Remediation Activity",
		"activity_id":   act,
		"activity_name": actName,
		"type_uid":      700100 + act,
		"type_name":     "Remediation Activity: " + actName,
		"severity_id":   1,
		"severity":      "Informational",
		"status_id":     st,
		"status":        stName,
		"status_detail": string(c.Status),
		"time":          ms(commandTime(c)),
		"start_time":    ms(c.CreatedAt),
		"message":       msg,
		"command_uid":   c.ID,
		"device":        map[string]any{"uid": c.AgentID, "hostname": ev.hostName(c.AgentID), "type_id": 0, "type": "Unknown"},
		"actor":         map[string]any{"user": map[string]any{"name": c.RequestedBy}},
		"metadata":      ocsfMetadata(ev, c.IncidentID),
		"unmapped": map[string]any{
			"cordon": map[string]any{
				"command_id":  c.ID,
				"action":      c.Action,
				"args":        c.Args,
				"reason":      c.Reason,
				"result":      c.Result,
				"status":      string(c.Status),
				"incident_id": c.IncidentID,
				"drill":       c.Action == command.ActionDrill,
			},
		},
	}
}

// ecsCommand maps a command event to an ECS event document.
func ecsCommand(ev *Event) map[string]any {
	c := ev.Command
	outcome := "unknown"
	switch c.Status {
	case command.StatusSucceeded:
		outcome = "success"
	case command.StatusFailed, command.StatusExpired:
		outcome = "failure"
	}
	msg := c.Reason
	if c.Result != "" {
		msg = c.Result
	}
	event := map[string]any{
		"kind": "event", "category": []string{"host"}, "type": []string{"change"},
		"action": ev.Kind, "id": ev.ID, "outcome": outcome,
		"created": ev.At.UTC().Format(time.RFC3339Nano),
		"start":   c.CreatedAt.UTC().Format(time.RFC3339Nano),
		"module":  "cordon", "dataset": "cordon.command",
	}
	if !c.FinishedAt.IsZero() {
		event["end"] = c.FinishedAt.UTC().Format(time.RFC3339Nano)
	}
	return map[string]any{
		"@timestamp": commandTime(c).UTC().Format(time.RFC3339Nano),
		"message":    msg,
		"ecs":        map[string]any{"version": "8.11.0"},
		"event":      event,
		"host":       map[string]any{"id": c.AgentID, "name": ev.hostName(c.AgentID)},
		"user":       map[string]any{"name": c.RequestedBy},
		"labels":     map[string]any{"drill": c.Action == command.ActionDrill, "action": c.Action},
		"cordon":     map[string]any{"command": c},
	}
}

// cefCommand returns the header fields and extensions of a command event.
func cefCommand(ev *Event, add func(k, v string)) (sig, name string, sev int) {
	c := ev.Command
	sev = 3
	if c.Status == command.StatusFailed || c.Status == command.StatusExpired {
		sev = 5
	}
	add("rt", strconv.FormatInt(ms(commandTime(c)), 10))
	add("start", strconv.FormatInt(ms(c.CreatedAt), 10))
	if !c.FinishedAt.IsZero() {
		add("end", strconv.FormatInt(ms(c.FinishedAt), 10))
	}
	add("cat", ev.Kind)
	add("externalId", c.ID)
	add("act", c.Action)
	add("dvchost", ev.hostName(c.AgentID))
	add("deviceExternalId", c.AgentID)
	add("suser", c.RequestedBy)
	add("outcome", string(c.Status))
	add("reason", c.Reason)
	add("msg", c.Result)
	add("cs3Label", "incidentId")
	add("cs3", c.IncidentID)
	add("cs4Label", "drill")
	add("cs4", strconv.FormatBool(c.Action == command.ActionDrill))
	if pid := c.Args["pid"]; pid != "" {
		add("dpid", pid)
	}
	return ev.Kind, c.Action + " on " + ev.hostName(c.AgentID), sev
}
