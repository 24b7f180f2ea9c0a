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
// A finding joins the incident its agent opened last when that incident
// is still open (new, triage, investigating, contained or eradicated), was
// opened by findings of the same kind (drill or real: the two never mix),
// holds fewer than Config.MaxFindings findings, and its latest finding was
// observed within Config.Window of this one. Otherwise the finding opens a
// new incident.
//
// # Lifecycle
//
// new → triage → investigating → contained → eradicated → recovered →
// closed, after NIST SP 800-61. An incident moves forward any number of
// steps or back one step; false_positive and duplicate are reachable from
// any status that is not terminal; closed, false_positive and duplicate
// are terminal. Closing a P1 or P2 incident requires a post-incident
// review (root cause and lessons learned). Every change is on the
// timeline with its actor. Each of acknowledged_at (first move out of
// new), contained_at, resolved_at (recovered, or closed without passing
// through recovered) and closed_at (closed, false_positive, duplicate) is
// set the first time its status is reached and never cleared.
package incident
