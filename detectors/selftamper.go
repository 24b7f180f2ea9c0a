package detectors

import (
	"fmt"
	"path/filepath"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// RuleIDAgentFilesModified is the id of the rule SelfTamper reports under.
const RuleIDAgentFilesModified = "cordon-health-agent-files"

// ATT&CK v19: Defense Impairment, Disable or Modify Tools (T1562.001
// before v19).
const (
	tacticDefenseImpairment = "TA0112"
	techDisableTools        = "T1685"
)

// SelfTamper flags a change to one of the agent's own files: its binary,
// its configuration, its service unit. The file sensor must watch their
// folders for the events to arrive.
type SelfTamper struct {
	paths map[string]bool
}

// NewSelfTamper returns a detector for changes to paths.
func NewSelfTamper(paths []string) *SelfTamper {
	s := &SelfTamper{paths: map[string]bool{}}
	for _, p := range paths {
		if p != "" {
			s.paths[filepath.Clean(p)] = true
		}
	}
	return s
}

func (*SelfTamper) Rule() Rule {
	return Rule{
		ID:         RuleIDAgentFilesModified,
		Name:       "Cordon agent's own files modified",
		Version:    builtinRuleVersion,
		Author:     builtinRuleAuthor,
		License:    builtinRuleLicense,
		Severity:   SeverityHigh,
		References: []string{"https://attack.mitre.org/techniques/T1562/001/"},
		Tactics:    []string{tacticDefenseImpairment},
		Techniques: []string{techDisableTools},
	}
}

func (s *SelfTamper) Detect(ev *ecs.Event) (Finding, bool) {
	if ev.Event.Category != ecs.CategoryFile || ev.File == nil || !s.paths[filepath.Clean(ev.File.Path)] {
		return Finding{}, false
	}
	action := ev.Event.Action
	if action == "" {
		action = ev.Event.Type
	}
	return Finding{
		Summary: fmt.Sprintf("The agent's file %s was %s: the agent, its configuration or its service may have been tampered with.", clean(ev.File.Path), action),
	}, true
}
