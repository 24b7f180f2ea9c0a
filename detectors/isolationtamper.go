package detectors

import (
	"fmt"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// RuleIDIsolationTampered is the id of the finding the agent raises when
// the firewall rules of an isolated host were removed or changed behind
// its back.
const RuleIDIsolationTampered = "cordon-health-isolation-tampered"

// IsolationTamperedRule describes that finding.
func IsolationTamperedRule() Rule {
	return Rule{
		ID:         RuleIDIsolationTampered,
		Name:       "Cordon isolation rules removed or changed",
		Version:    builtinRuleVersion,
		Author:     builtinRuleAuthor,
		License:    builtinRuleLicense,
		Severity:   SeverityHigh,
		References: []string{"https://attack.mitre.org/techniques/T1562/004/"},
		Tactics:    []string{tacticDefenseImpairment},
		Techniques: []string{techDisableTools},
	}
}

// IsolationTampered is the finding for an isolation whose rules were
// found wrong (problem says how) at, and re-applied unless reapplyErr
// says why they could not be.
func IsolationTampered(problem string, reapplyErr error, at time.Time) Finding {
	r := IsolationTamperedRule()
	outcome := "have been re-applied"
	if reapplyErr != nil {
		outcome = fmt.Sprintf("could not be re-applied (%v)", reapplyErr)
	}
	return Finding{
		Rule:       r,
		Severity:   r.Severity,
		Tactics:    r.Tactics,
		Techniques: r.Techniques,
		Summary:    fmt.Sprintf("The isolation firewall rules of this host were removed or changed (%s) and %s: someone on the host may be undoing the containment.", problem, outcome),
		// No event shows a table deleted: the evidence is the check.
		Evidence:   []ecs.Event{},
		ObservedAt: at,
		DetectedAt: at,
	}
}
