package export

import (
	"time"

	"github.com/cordon-edr/cordon/collector/ingest"
)

// ecsDoc maps ev to an Elastic Common Schema alert document; the Cordon
// record itself travels under "cordon". The mapping is documented in
// docs/exports.md.
func ecsDoc(ev *Event) map[string]any {
	if isCommand(ev.Kind) {
		return ecsCommand(ev)
	}
	if ev.Kind == KindFinding {
		f := ev.Finding
		return map[string]any{
			"@timestamp": f.DetectedAt.UTC().Format(time.RFC3339Nano),
			"message":    f.Summary,
			"ecs":        map[string]any{"version": "8.11.0"},
			"event": map[string]any{
				"kind": "alert", "category": []string{"intrusion_detection"}, "type": []string{"info"},
				"action": ev.Kind, "id": ev.ID, "severity": ecsSeverity(f.Severity),
				"created": ev.At.UTC().Format(time.RFC3339Nano),
				"start":   f.ObservedAt.UTC().Format(time.RFC3339Nano),
				"module":  "cordon", "dataset": "cordon.finding",
			},
			"rule": map[string]any{"id": f.Rule.ID, "name": f.Rule.Name, "version": f.Rule.Version, "reference": f.Rule.References},
			"threat": map[string]any{
				"framework": "MITRE ATT&CK",
				"tactic":    map[string]any{"id": f.Attack.Tactics},
				"technique": map[string]any{"id": f.Attack.Techniques},
			},
			"host":   map[string]any{"id": f.AgentID, "name": ev.hostName(f.AgentID)},
			"labels": map[string]any{"drill": f.Drill},
			"cordon": map[string]any{"finding": f},
		}
	}
	in := ev.Incident
	typ := "info"
	if ev.Kind == KindIncidentClosed {
		typ = "end"
	}
	o := ev.observables()
	event := map[string]any{
		"kind": "alert", "category": []string{"intrusion_detection"}, "type": []string{typ},
		"action": ev.Kind, "id": ev.ID, "severity": ecsPriority(in.Priority),
		"created": ev.At.UTC().Format(time.RFC3339Nano),
		"start":   in.DetectedAt.UTC().Format(time.RFC3339Nano),
		"module":  "cordon", "dataset": "cordon.incident",
	}
	if !in.ClosedAt.IsZero() {
		event["end"] = in.ClosedAt.UTC().Format(time.RFC3339Nano)
	}
	doc := map[string]any{
		"@timestamp": in.UpdatedAt.UTC().Format(time.RFC3339Nano),
		"message":    in.Title,
		"ecs":        map[string]any{"version": "8.11.0"},
		"event":      event,
		"related":    map[string]any{"hosts": o.Hostnames, "user": o.Users, "hash": o.Hashes, "ip": o.IPs},
		"labels":     map[string]any{"drill": in.Drill, "priority": in.Priority, "status": string(in.Status)},
		"cordon":     map[string]any{"incident": in},
	}
	if len(in.AffectedHosts) == 1 {
		doc["host"] = map[string]any{"id": in.AffectedHosts[0], "name": ev.hostName(in.AffectedHosts[0])}
	}
	return doc
}

// ecsSeverity maps a finding severity to event.severity, on the 0 to
// 100 scale of Elastic's detection rules.
func ecsSeverity(sev string) int {
	switch sev {
	case ingest.SeverityLow:
		return 21
	case ingest.SeverityMedium:
		return 47
	case ingest.SeverityHigh:
		return 73
	case ingest.SeverityCritical:
		return 99
	}
	return 0
}

func ecsPriority(p string) int {
	switch p {
	case "P1":
		return 99
	case "P2":
		return 73
	case "P3":
		return 47
	case "P4":
		return 21
	}
	return 1
}
