package ingest

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

// Severities of a finding, lowest first.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// KnownSeverity reports whether s is one of the four severities.
func KnownSeverity(s string) bool {
	switch s {
	case SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
		return true
	}
	return false
}

// Finding is a stored detection, as the REST API shows it.
type Finding struct {
	ID       string `json:"id"`
	AgentID  string `json:"agent_id"`
	Hostname string `json:"hostname"`
	Rule     Rule   `json:"rule"`
	Severity string `json:"severity"`
	Attack   Attack `json:"attack"`
	Summary  string `json:"summary"`
	// Evidence is a JSON array of ECS events (protocol/ecs).
	Evidence   json.RawMessage `json:"evidence"`
	ObservedAt time.Time       `json:"observed_at"`
	DetectedAt time.Time       `json:"detected_at"`
	ReceivedAt time.Time       `json:"received_at"`
	Drill      bool            `json:"drill"`
	IncidentID string          `json:"incident_id,omitempty"`
}

// Rule identifies the rule that produced a finding.
type Rule struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Author     string   `json:"author,omitempty"`
	References []string `json:"references"`
	License    string   `json:"license,omitempty"`
}

// Attack holds the ATT&CK ids of a finding.
type Attack struct {
	Tactics    []string `json:"tactics"`
	Techniques []string `json:"techniques"`
}

// convert validates a finding from the wire and turns it into the read
// model. The error is a *store.FieldError naming the offending field.
func convert(agentID, hostname string, f *protocol.Finding, received time.Time) (*Finding, error) {
	if f.GetId() == "" {
		return nil, store.Invalid("id", "missing")
	}
	id, err := uuid.Parse(f.GetId())
	if err != nil {
		return nil, store.Invalid("id", "%q is not a UUID", f.GetId())
	}
	if !KnownSeverity(f.GetSeverity()) {
		return nil, store.Invalid("severity", "%q is not one of low, medium, high, critical", f.GetSeverity())
	}
	evidence := json.RawMessage("[]")
	if ev := bytes.TrimSpace(f.GetEvidenceJson()); len(ev) > 0 {
		// Compacted, as the JSON encoding of the record stored it before.
		var buf bytes.Buffer
		buf.Grow(len(ev))
		if ev[0] != '[' || json.Compact(&buf, ev) != nil {
			return nil, store.Invalid("evidence_json", "not a JSON array")
		}
		evidence = buf.Bytes()
	}
	detected := unixTime(f.GetDetectedUnixNano(), received)
	r := f.GetRule()
	return &Finding{
		ID:       id.String(),
		AgentID:  agentID,
		Hostname: hostname,
		Rule: Rule{
			ID:         r.GetId(),
			Name:       r.GetName(),
			Version:    r.GetVersion(),
			Author:     r.GetAuthor(),
			References: nonNil(r.GetReferences()),
			License:    r.GetLicense(),
		},
		Severity: f.GetSeverity(),
		Attack: Attack{
			Tactics:    nonNil(f.GetTactics()),
			Techniques: nonNil(f.GetTechniques()),
		},
		Summary:    f.GetSummary(),
		Evidence:   evidence,
		ObservedAt: unixTime(f.GetObservedUnixNano(), detected),
		DetectedAt: detected,
		ReceivedAt: received,
		Drill:      f.GetDrill(),
	}, nil
}

// unixTime converts nanoseconds since the epoch to UTC, or returns
// fallback when the agent sent no time.
func unixTime(ns int64, fallback time.Time) time.Time {
	if ns <= 0 {
		return fallback
	}
	return time.Unix(0, ns).UTC()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string(nil), s...)
}
