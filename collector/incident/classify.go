package incident

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"

	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// level maps a finding severity to a level, 1 being the highest.
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

// Incident types (the taxonomy of docs/incident-handling.md), from the
// ATT&CK tactics and techniques of the findings. When the findings span
// several types, the incident takes the one earliest in typeOrder: what
// the attacker already achieved matters more than how they got in.
const (
	TypeRansomware          = "ransomware"           // T1486, T1490
	TypeDataBreach          = "data_breach"          // TA0010 exfiltration, TA0009 collection
	TypeDenialOfService     = "denial_of_service"    // TA0040 impact (other techniques)
	TypeLateralMovement     = "lateral_movement"     // TA0008
	TypeCredentialAccess    = "credential_access"    // TA0006
	TypePrivilegeEscalation = "privilege_escalation" // TA0004
	TypePersistence         = "persistence"          // TA0003
	TypeMalware             = "malware"              // TA0002 execution, TA0005 defense evasion, TA0011 command and control
	TypeUnauthorizedAccess  = "unauthorized_access"  // TA0001 initial access
	TypeReconnaissance      = "reconnaissance"       // TA0043, TA0042, TA0007 discovery
	TypePolicyViolation     = "policy_violation"     // findings without any ATT&CK tactic
	TypeUnclassified        = "unclassified"         // only tactics Cordon does not know
)

var tacticType = map[string]string{
	"TA0040": TypeDenialOfService,
	"TA0010": TypeDataBreach,
	"TA0009": TypeDataBreach,
	"TA0008": TypeLateralMovement,
	"TA0006": TypeCredentialAccess,
	"TA0004": TypePrivilegeEscalation,
	"TA0003": TypePersistence,
	"TA0002": TypeMalware,
	"TA0005": TypeMalware,
	"TA0011": TypeMalware,
	"TA0001": TypeUnauthorizedAccess,
	"TA0043": TypeReconnaissance,
	"TA0042": TypeReconnaissance,
	"TA0007": TypeReconnaissance,
}

// techniqueType refines a type by technique.
var techniqueType = map[string]string{
	"T1486": TypeRansomware, // data encrypted for impact
	"T1490": TypeRansomware, // inhibit system recovery
}

var typeOrder = []string{
	TypeRansomware, TypeDataBreach, TypeDenialOfService, TypeLateralMovement,
	TypeCredentialAccess, TypePrivilegeEscalation, TypePersistence,
	TypeMalware, TypeUnauthorizedAccess, TypeReconnaissance,
	TypeUnclassified, TypePolicyViolation,
}

// Types returns the incident types, most serious first.
func Types() []string { return slices.Clone(typeOrder) }

// typeOf returns the incident type of a set of tactics and techniques.
func typeOf(tactics, techniques []string) string {
	if len(tactics) == 0 && len(techniques) == 0 {
		return TypePolicyViolation
	}
	best := slices.Index(typeOrder, TypeUnclassified)
	pick := func(typ string) { best = min(best, slices.Index(typeOrder, typ)) }
	for _, t := range tactics {
		if typ, ok := tacticType[t]; ok {
			pick(typ)
		}
	}
	for _, t := range techniques {
		base, _, _ := strings.Cut(t, ".")
		if typ, ok := techniqueType[base]; ok {
			pick(typ)
		}
	}
	return typeOrder[best]
}

// Kill-chain stages of the ATT&CK tactics, as urgency levels: the further
// an attack has progressed, the more urgent (lower) the level.
var tacticStage = map[string]int{
	// Acting on objectives.
	"TA0008": 1, "TA0009": 1, "TA0010": 1, "TA0040": 1,
	// Entrenched: holding on, rising, or steering the host.
	"TA0003": 2, "TA0004": 2, "TA0006": 2, "TA0011": 2,
	// Foothold: running code on the host.
	"TA0001": 3, "TA0002": 3, "TA0005": 3,
	// Looking around.
	"TA0043": 4, "TA0042": 4, "TA0007": 4,
}

// urgencyOf returns the urgency from the tactics seen: the furthest
// kill-chain stage, 3 when no tactic is known. A critical finding makes
// the incident urgent (1) at any stage: rules mark critical what needs
// action within minutes.
func urgencyOf(tactics []string, severity string) int {
	if severity == "critical" {
		return 1
	}
	u := 3
	known := false
	for _, t := range tactics {
		if s, ok := tacticStage[t]; ok {
			if !known {
				u = 4
			}
			u, known = min(u, s), true
		}
	}
	return u
}

// criticalityShift is how many steps an asset's criticality raises (or,
// negative, lowers) the impact.
var criticalityShift = map[string]int{
	"critical": 2,
	"high":     1,
	"medium":   0,
	"low":      -1,
}

// Criticalities lists the known values of the criticality tag, highest
// first.
var criticalities = []string{"critical", "high", "medium", "low"}

// highestCriticality returns the highest known criticality of cs, or
// "unknown".
func highestCriticality(cs []string) string {
	for _, c := range criticalities {
		if slices.Contains(cs, c) {
			return c
		}
	}
	return "unknown"
}

// impactOf returns the impact from the highest severity, the highest
// asset criticality and the breadth of the incident: the severity level,
// raised by the criticality's shift, by one step when two or more hosts
// or three or more users are affected, and by one more when five or more
// hosts are.
func impactOf(severity, criticality string, hosts, users int) int {
	i := level(severity) - criticalityShift[criticality]
	if hosts >= 2 || users >= 3 {
		i--
	}
	if hosts >= 5 {
		i--
	}
	return clamp(i)
}

// origin returns internal, external or unknown from the addresses in
// evidence: external when any address is public, internal when all are
// private, loopback or link-local, unknown when there is none.
func originOf(addrs []string) string {
	o := OriginUnknown
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		if !local(a) {
			return OriginExternal
		}
		o = OriginInternal
	}
	return o
}

// local reports whether a is an address that does not leave the
// organisation: private, loopback, link-local or unspecified.
func local(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified()
}

// facts are what classification and correlation read from the evidence
// of a finding.
type facts struct {
	users  []string
	addrs  []string // remote addresses, as written
	hashes []string // file sha256
}

func factsOf(evidence json.RawMessage) facts {
	var events []ecs.Event
	var f facts
	if err := json.Unmarshal(evidence, &events); err != nil {
		return f
	}
	for _, ev := range events {
		if ev.Process != nil && ev.Process.User.Name != "" {
			f.users = append(f.users, ev.Process.User.Name)
		}
		for _, ep := range []*ecs.Endpoint{ev.Source, ev.Destination} {
			if ep != nil && ep.IP != "" {
				f.addrs = append(f.addrs, ep.IP)
			}
		}
		if ev.File != nil && ev.File.Hash != nil && ev.File.Hash.SHA256 != "" {
			f.hashes = append(f.hashes, strings.ToLower(ev.File.Hash.SHA256))
		}
	}
	f.users, f.addrs, f.hashes = union(nil, f.users), union(nil, f.addrs), union(nil, f.hashes)
	return f
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
