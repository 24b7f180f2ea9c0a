package incident

import (
	"encoding/json"
	"slices"
	"time"
)

// Status is where an incident is in its lifecycle.
type Status string

// Statuses, in lifecycle order, then the terminal alternatives.
const (
	StatusNew           Status = "new"
	StatusTriage        Status = "triage"
	StatusInvestigating Status = "investigating"
	StatusContained     Status = "contained"
	StatusEradicated    Status = "eradicated"
	StatusRecovered     Status = "recovered"
	StatusClosed        Status = "closed"
	StatusFalsePositive Status = "false_positive"
	StatusDuplicate     Status = "duplicate"
)

var lifecycle = []Status{
	StatusNew, StatusTriage, StatusInvestigating, StatusContained,
	StatusEradicated, StatusRecovered, StatusClosed,
}

// Known reports whether s is a status.
func (s Status) Known() bool {
	return slices.Contains(lifecycle, s) || s == StatusFalsePositive || s == StatusDuplicate
}

// Terminal reports whether no transition leaves s.
func (s Status) Terminal() bool {
	return s == StatusClosed || s == StatusFalsePositive || s == StatusDuplicate
}

// open reports whether new findings may still join an incident in s.
func (s Status) open() bool {
	return s.Known() && !s.Terminal() && s != StatusRecovered
}

// Incident is a set of correlated findings, as the REST API shows it.
type Incident struct {
	ID               string `json:"id"`
	Title            string `json:"title"`
	Status           Status `json:"status"`
	Type             string `json:"type"`
	Impact           int    `json:"impact"`
	Urgency          int    `json:"urgency"`
	Priority         string `json:"priority"`
	AssetCriticality string `json:"asset_criticality"`
	// Origin is internal, external or unknown.
	Origin string `json:"origin"`
	// AffectedHosts holds agent ids.
	AffectedHosts []string `json:"affected_hosts"`
	AffectedUsers []string `json:"affected_users"`
	Assignee      string   `json:"assignee"`
	FindingIDs    []string `json:"finding_ids"`
	Timeline      []Entry  `json:"timeline"`
	Review        *Review  `json:"review,omitempty"`
	// Playbook is the playbook of the incident's type, with its
	// checklist and automatic actions.
	Playbook *PlaybookState `json:"playbook,omitempty"`
	Drill    bool           `json:"drill"`
	// Severity is the highest severity of the findings.
	Severity string `json:"severity"`
	// Tactics and Techniques are the union of the findings' ATT&CK ids.
	Tactics    []string `json:"tactics"`
	Techniques []string `json:"techniques"`
	// Indicators are what correlates findings across hosts:
	// "rule:<id>", "sha256:<hex>" and "ip:<address>".
	Indicators []string `json:"indicators"`
	// Overrides names the fields ("impact", "urgency") a responder set;
	// classification leaves them alone afterwards.
	Overrides []string `json:"overrides"`
	// SLA is computed when the incident is read.
	SLA *SLA `json:"sla,omitempty"`
	// Similar lists closed incidents that resemble this one; only when
	// one incident is read.
	Similar []Similar `json:"similar,omitempty"`
	// DetectedAt is the earliest observed_at of the findings; OpenedAt is
	// when the collector opened the incident.
	DetectedAt     time.Time `json:"detected_at"`
	OpenedAt       time.Time `json:"opened_at"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	ContainedAt    time.Time `json:"contained_at,omitzero"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
	ClosedAt       time.Time `json:"closed_at,omitzero"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Entry is one line of an incident's append-only timeline.
type Entry struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Detail string    `json:"detail,omitempty"`
}

// Timeline actions.
const (
	ActionOpened          = "opened"
	ActionFindingAdded    = "finding_added"
	ActionEscalated       = "escalated"
	ActionStatusChanged   = "status_changed"
	ActionAssigned        = "assigned"
	ActionImpact          = "impact_changed"
	ActionUrgency         = "urgency_changed"
	ActionComment         = "comment"
	ActionReview          = "review_added"
	ActionCommand         = "command_requested"
	ActionHostAdded       = "host_added"
	ActionCommandFinished = "command_finished"
	ActionReclassified    = "reclassified"
)

// Origins of an incident, from the addresses in its evidence.
const (
	OriginInternal = "internal"
	OriginExternal = "external"
	OriginUnknown  = "unknown"
)

// ActorCordon is the timeline actor of the collector's own changes.
const ActorCordon = "cordon"

// Review is the post-incident review.
type Review struct {
	RootCause       string   `json:"root_cause"`
	LessonsLearned  string   `json:"lessons_learned"`
	FollowUpActions []string `json:"follow_up_actions"`
}

// record is an Incident as stored, with what correlation needs.
type record struct {
	Incident
	// LastObserved is the latest observed_at of its findings.
	LastObserved time.Time `json:"last_observed"`
	Hostname     string    `json:"hostname"`
	// Criticality is the criticality tag of each affected agent.
	Criticality map[string]string `json:"criticality"`
	// Addresses are the remote addresses in the evidence.
	Addresses []string `json:"addresses"`
	// Rules are the rule ids of the findings.
	Rules []string `json:"rules"`
}

// UnmarshalJSON decodes a stored record and fills in the fields that
// records stored by earlier versions lack.
func (r *record) UnmarshalJSON(b []byte) error {
	type plain record
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	r.upgrade()
	return nil
}

// upgrade fills in what records stored before classification and service
// levels lack: per-host criticality, highest severity, opening time.
func (r *record) upgrade() {
	if r.Criticality == nil {
		r.Criticality = make(map[string]string, len(r.AffectedHosts))
		for _, h := range r.AffectedHosts {
			r.Criticality[h] = r.AssetCriticality
		}
	}
	if r.Severity == "" {
		r.Severity = [...]string{"critical", "high", "medium", "low"}[clamp(r.Impact)-1]
	}
	if r.OpenedAt.IsZero() {
		r.OpenedAt = r.DetectedAt
		if len(r.Timeline) > 0 {
			r.OpenedAt = r.Timeline[0].At
		}
	}
	if r.Overrides == nil {
		r.Overrides = []string{}
	}
}
