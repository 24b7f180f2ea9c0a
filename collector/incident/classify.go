package incident

import (
	"slices"

	"github.com/cordon-edr/cordon/collector/store"
)

// level maps a finding severity to an impact or urgency level, 1 being
// the highest.
func level(severity string) int {
	switch severity {
	case "critical":
		return 1
	case "high":
		return 2
	case "medium":
		return 3
	}
	return 4
}

// priorities is the impact × urgency matrix (rows impact 1..4, columns
// urgency 1..4):
//
//	            urgency 1   2   3   4
//	impact 1            P1  P2  P2  P3
//	impact 2            P2  P2  P3  P3
//	impact 3            P2  P3  P3  P4
//	impact 4            P3  P3  P4  P5
//
// so an incident opened by a critical finding is P1, high P2, medium P3,
// low P5.
var priorities = [4][4]string{
	{"P1", "P2", "P2", "P3"},
	{"P2", "P2", "P3", "P3"},
	{"P2", "P3", "P3", "P4"},
	{"P3", "P3", "P4", "P5"},
}

// Priority returns the priority of an impact and an urgency, both 1..4.
func Priority(impact, urgency int) string {
	return priorities[clamp(impact)-1][clamp(urgency)-1]
}

func clamp(n int) int {
	return min(max(n, 1), 4)
}

// Incident types, from the ATT&CK tactics of their findings. When the
// findings span several tactics, the type is that of the tactic furthest
// along an attack, in the order of typeOrder: what the attacker already
// achieved matters more than how they got in.
const (
	TypeImpact              = "impact"               // TA0040
	TypeExfiltration        = "data_exfiltration"    // TA0010, TA0009
	TypeLateralMovement     = "lateral_movement"     // TA0008
	TypeCredentialAccess    = "credential_access"    // TA0006
	TypeCommandAndControl   = "command_and_control"  // TA0011
	TypePrivilegeEscalation = "privilege_escalation" // TA0004
	TypePersistence         = "persistence"          // TA0003
	TypeExecution           = "malicious_execution"  // TA0002, TA0005
	TypeInitialAccess       = "initial_access"       // TA0001
	TypeReconnaissance      = "reconnaissance"       // TA0043, TA0042, TA0007
	TypeUnclassified        = "unclassified"         // no known tactic
)

var tacticType = map[string]string{
	"TA0040": TypeImpact,
	"TA0010": TypeExfiltration,
	"TA0009": TypeExfiltration,
	"TA0008": TypeLateralMovement,
	"TA0006": TypeCredentialAccess,
	"TA0011": TypeCommandAndControl,
	"TA0004": TypePrivilegeEscalation,
	"TA0003": TypePersistence,
	"TA0002": TypeExecution,
	"TA0005": TypeExecution,
	"TA0001": TypeInitialAccess,
	"TA0043": TypeReconnaissance,
	"TA0042": TypeReconnaissance,
	"TA0007": TypeReconnaissance,
}

var typeOrder = []string{
	TypeImpact, TypeExfiltration, TypeLateralMovement, TypeCredentialAccess,
	TypeCommandAndControl, TypePrivilegeEscalation, TypePersistence,
	TypeExecution, TypeInitialAccess, TypeReconnaissance, TypeUnclassified,
}

// typeOf returns the incident type of a set of tactics.
func typeOf(tactics []string) string {
	best := len(typeOrder) - 1
	for _, t := range tactics {
		if typ, ok := tacticType[t]; ok {
			best = min(best, slices.Index(typeOrder, typ))
		}
	}
	return typeOrder[best]
}

// checkTransition says whether an incident may move from one status to
// another, with a FieldError on "status" (a conflict) when it may not.
func checkTransition(from, to Status) error {
	switch {
	case from.Terminal():
		return store.Conflict("status", "the incident is %s, a final status", from)
	case to == StatusFalsePositive || to == StatusDuplicate:
		return nil
	}
	i, j := slices.Index(lifecycle, from), slices.Index(lifecycle, to)
	if j > i || j == i-1 {
		return nil
	}
	return store.Conflict("status", "cannot move from %s to %s: an incident moves forward, or back one step", from, to)
}
