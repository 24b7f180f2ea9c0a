// Package incident correlates findings into incidents and carries them
// through their lifecycle.
//
// The Engine consumes the findings log (ingest.Log) from an offset it
// stores in the same transaction as the incidents it changes, so a crash
// or a replay from an older offset never adds a finding twice: a finding
// already attached to an incident is skipped.
//
// # Correlation
//
// A finding joins the open incident (new, triage, investigating,
// contained or eradicated) of its agent, or else of an indicator it
// carries (its rule id, a file hash or a remote address of its evidence),
// when that incident was opened by findings of the same kind (drill or
// real: the two never mix), holds fewer than Config.MaxFindings findings,
// and its latest finding was observed within Config.Window of this one.
// Otherwise the finding opens a new incident. So findings of several
// hosts that share an indicator make one incident listing every host.
//
// # Classification
//
// On open and on every finding: type from the ATT&CK tactics and
// techniques (classify.go), impact from severity, asset criticality and
// breadth, urgency from the kill-chain stage, priority from the impact ×
// urgency matrix, origin from the addresses of the evidence. Impact and
// urgency a responder set stay as set. docs/incident-handling.md is the
// reference.
//
// # Lifecycle
//
// new → triage → investigating → contained → eradicated → recovered →
// closed, after NIST SP 800-61. An incident moves forward any number of
// steps or back one step; false_positive and duplicate are reachable from
// any status that is not terminal; closed, false_positive and duplicate
// are terminal. Reaching contained or later for the first time needs a
// succeeded containment command (Config.Containment) or a comment
// justifying it; closing a P1 or P2 incident requires a post-incident
// review (root cause, lessons learned, follow-up actions). Every change
// is on the timeline with its actor. Each of acknowledged_at (first move
// out of new), contained_at (contained or later), resolved_at (recovered,
// or closed without passing through recovered) and closed_at (closed,
// false_positive, duplicate) is set the first time its status is reached
// and never cleared.
//
// # Service levels and playbooks
//
// Each incident read carries its service level against the targets of
// its priority (sla.go); Figures gives MTTD, MTTA, MTTC and MTTR, drills
// apart. The playbook of the incident's type (collector/playbook) is
// attached with its checklist, and its automatic actions are sent
// through Config.Responder after the transaction that planned them
// commits (playbooks.go).
package incident
