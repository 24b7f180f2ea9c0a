package export

import (
	"encoding/json"
	"time"

	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/ingest"
)

// OCSFVersion is the OCSF schema version of the OCSF bodies.
const OCSFVersion = "1.3.0"

// ocsf maps ev to an OCSF Detection Finding (class 2004) for a finding,
// or an Incident Finding (class 2005) for an incident change. The
// mapping is documented in docs/exports.md.
func ocsf(ev *Event) map[string]any {
	switch {
	case ev.Kind == KindFinding:
		return ocsfDetection(ev)
	case isCommand(ev.Kind):
		return ocsfCommand(ev)
	}
	return ocsfIncident(ev)
}

func ocsfMetadata(ev *Event, uid string) map[string]any {
	return map[string]any{
		"version":    OCSFVersion,
		"uid":        ev.ID,
		"event_code": ev.Kind,
		"product": map[string]any{
			"name": "Cordon", "vendor_name": "Cordon", "uid": "cordon-edr",
		},
		"correlation_uid": uid,
		"logged_time":     ms(ev.At),
	}
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func ocsfSeverity(sev string) (int, string) {
	switch sev {
	case ingest.SeverityLow:
		return 2, "Low"
	case ingest.SeverityMedium:
		return 3, "Medium"
	case ingest.SeverityHigh:
		return 4, "High"
	case ingest.SeverityCritical:
		return 5, "Critical"
	}
	return 0, "Unknown"
}

func ocsfAttacks(a ingest.Attack) []map[string]any {
	out := []map[string]any{}
	for _, t := range a.Tactics {
		out = append(out, map[string]any{"tactic": map[string]any{"uid": t}})
	}
	for _, t := range a.Techniques {
		out = append(out, map[string]any{"technique": map[string]any{"uid": t}})
	}
	return out
}

func ocsfDetection(ev *Event) map[string]any {
	f := ev.Finding
	sevID, sev := ocsfSeverity(f.Severity)
	var evidence any = []any{}
	if len(f.Evidence) > 0 {
		evidence = json.RawMessage(f.Evidence)
	}
	return map[string]any{
		"category_uid":  2,
		"category_name": "Findings",
		"class_uid":     2004,
		"class_name":    "Detection Finding",
		"activity_id":   1,
		"activity_name": "Create",
		"type_uid":      200401,
		"type_name":     "Detection Finding: Create",
		"severity_id":   sevID,
		"severity":      sev,
		"status_id":     1,
		"status":        "New",
		"is_alert":      true,
		"time":          ms(f.DetectedAt),
		"message":       f.Summary,
		"metadata":      ocsfMetadata(ev, f.IncidentID),
		"finding_info": map[string]any{
			"uid":             f.ID,
			"title":           ruleTitle(f),
			"desc":            f.Summary,
			"created_time":    ms(f.DetectedAt),
			"first_seen_time": ms(f.ObservedAt),
			"last_seen_time":  ms(f.ObservedAt),
			"analytic": map[string]any{
				"uid": f.Rule.ID, "name": f.Rule.Name, "version": f.Rule.Version,
				"type_id": 1, "type": "Rule",
			},
			"attacks": ocsfAttacks(f.Attack),
		},
		"device": map[string]any{
			"uid": f.AgentID, "hostname": ev.hostName(f.AgentID), "type_id": 0, "type": "Unknown",
		},
		"unmapped": map[string]any{
			"cordon": map[string]any{
				"incident_id": f.IncidentID,
				"drill":       f.Drill,
				"received_at": ms(f.ReceivedAt),
				"evidence":    evidence,
			},
		},
	}
}

func ruleTitle(f *ingest.Finding) string {
	switch {
	case f.Rule.Name != "":
		return f.Rule.Name
	case f.Rule.ID != "":
		return f.Rule.ID
	}
	return "Cordon detection"
}

func ocsfActivity(kind string) (int, string) {
	switch kind {
	case KindIncidentOpened:
		return 1, "Create"
	case KindIncidentClosed:
		return 3, "Close"
	}
	return 2, "Update"
}

func ocsfStatus(s incident.Status) (int, string) {
	switch s {
	case incident.StatusNew:
		return 1, "New"
	case incident.StatusTriage, incident.StatusInvestigating, incident.StatusContained, incident.StatusEradicated:
		return 2, "In Progress"
	case incident.StatusRecovered:
		return 4, "Resolved"
	case incident.StatusClosed, incident.StatusFalsePositive, incident.StatusDuplicate:
		return 5, "Closed"
	}
	return 99, "Other"
}

// level maps Cordon's 1 (highest) to 4 impact or urgency to OCSF's
// 1 (low) to 4 (critical).
func level(n int) (int, string) {
	switch n {
	case 1:
		return 4, "Critical"
	case 2:
		return 3, "High"
	case 3:
		return 2, "Medium"
	case 4:
		return 1, "Low"
	}
	return 0, "Unknown"
}

func prioritySeverity(p string) (int, string) {
	switch p {
	case "P1":
		return 5, "Critical"
	case "P2":
		return 4, "High"
	case "P3":
		return 3, "Medium"
	case "P4":
		return 2, "Low"
	case "P5":
		return 1, "Informational"
	}
	return 0, "Unknown"
}

func ocsfPriority(p string) (int, string) {
	switch p {
	case "P1":
		return 4, "Critical"
	case "P2":
		return 3, "High"
	case "P3":
		return 2, "Medium"
	case "P4", "P5":
		return 1, "Low"
	}
	return 0, "Unknown"
}

func ocsfIncident(ev *Event) map[string]any {
	in := ev.Incident
	act, actName := ocsfActivity(ev.Kind)
	stID, st := ocsfStatus(in.Status)
	sevID, sev := prioritySeverity(in.Priority)
	prID, pr := ocsfPriority(in.Priority)
	imID, im := level(in.Impact)
	urID, ur := level(in.Urgency)
	findings := make([]map[string]any, 0, len(in.FindingIDs))
	for _, id := range in.FindingIDs {
		findings = append(findings, map[string]any{"uid": id, "title": "Cordon finding " + id})
	}
	hosts := make([]map[string]any, 0, len(in.AffectedHosts))
	for _, id := range in.AffectedHosts {
		hosts = append(hosts, map[string]any{"uid": id, "hostname": ev.hostName(id)})
	}
	out := map[string]any{
		"category_uid":        2,
		"category_name":       "Findings",
		"class_uid":           2005,
		"class_name":          "Incident Finding",
		"activity_id":         act,
		"activity_name":       actName,
		"type_uid":            200500 + act,
		"type_name":           "Incident Finding: " + actName,
		"severity_id":         sevID,
		"severity":            sev,
		"status_id":           stID,
		"status":              st,
		"status_detail":       string(in.Status),
		"priority_id":         prID,
		"priority":            pr,
		"impact_id":           imID,
		"impact":              im,
		"urgency_id":          urID,
		"urgency":             ur,
		"time":                ms(in.UpdatedAt),
		"start_time":          ms(in.DetectedAt),
		"desc":                in.Title,
		"message":             in.Title,
		"is_suspected_breach": in.Priority == "P1",
		"finding_info_list":   findings,
		"metadata":            ocsfMetadata(ev, in.ID),
		"unmapped": map[string]any{
			"cordon": map[string]any{
				"incident_id":       in.ID,
				"type":              in.Type,
				"priority":          in.Priority,
				"asset_criticality": in.AssetCriticality,
				"origin":            in.Origin,
				"affected_hosts":    hosts,
				"affected_users":    in.AffectedUsers,
				"drill":             in.Drill,
			},
		},
	}
	if in.Assignee != "" {
		out["assignee"] = map[string]any{"name": in.Assignee}
	}
	if !in.ClosedAt.IsZero() {
		out["end_time"] = ms(in.ClosedAt)
	}
	switch {
	case in.Drill:
		out["verdict_id"], out["verdict"] = 6, "Test"
	case in.Status == incident.StatusFalsePositive:
		out["verdict_id"], out["verdict"] = 1, "False Positive"
	case in.Status == incident.StatusDuplicate:
		out["verdict_id"], out["verdict"] = 10, "Duplicate"
	}
	return out
}
