package agent

import (
	"context"
	"log/slog"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/detectors/rules"
	"github.com/cordon-edr/cordon/detectors/sigma"
	"github.com/cordon-edr/cordon/protocol"
)

// rulesFile is where the state folder keeps the pushed rule set, so that
// a restart runs it again before the collector is reachable.
const rulesFile = "rules.json"

// storedRules is the content of a pushed rule set as the state folder
// keeps it.
type storedRules struct {
	Files []storedFile `json:"files"`
}

type storedFile struct {
	Name    string `json:"name"`
	Content []byte `json:"content"`
}

// ruleSets knows the pushed rule set the agent runs, composed with the
// built-in pack, and the last set it refused.
type ruleSets = pushedSets[*protocol.RuleSet, storedRules, *sigma.Set]

func newRuleSets(stateDir string, log *slog.Logger) (*ruleSets, error) {
	builtin, err := rules.Builtin()
	if err != nil {
		return nil, err
	}
	kind := pushKind[*protocol.RuleSet, storedRules, *sigma.Set]{
		name:     "rule set",
		file:     rulesFile,
		what:     "rules",
		fallback: "running the built-in pack",
		content: func(rs *protocol.RuleSet) storedRules {
			var st storedRules
			for _, f := range rs.GetFiles() {
				st.Files = append(st.Files, storedFile{Name: f.GetName(), Content: f.GetContent()})
			}
			return st
		},
		// The Sigma set to run: the built-in pack with the pushed rules
		// added or overriding.
		build: func(_ string, st storedRules) (*sigma.Set, error) {
			files := make([]rules.File, len(st.Files))
			for i, f := range st.Files {
				files[i] = rules.File{Name: f.Name, Content: f.Content}
			}
			pushed, err := rules.CompilePushed(files)
			if err != nil {
				return nil, err
			}
			return rules.Compose(builtin, pushed), nil
		},
		batch: func(s *sigma.Set) detectors.Batch { return s.Batch() },
		size:  func(s *sigma.Set) int { return len(s.Rules()) },
	}
	return newPushedSets(kind, stateDir, rules.Compose(builtin, nil), log), nil
}

// applyRules runs a set pushed by the collector, whole or not at all; on
// any error the rules running before keep running and the answer says
// why.
func (a *Agent) applyRules(ctx context.Context, rs *protocol.RuleSet) *protocol.RuleSetResult {
	n, err := applySet(ctx, a, a.rules, a.sigma, rs)
	if err != nil {
		return &protocol.RuleSetResult{Version: rs.GetVersion(), Error: err.Error()}
	}
	return &protocol.RuleSetResult{Version: rs.GetVersion(), Ok: true, Rules: uint32(n)}
}
