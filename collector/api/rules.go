package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cordon-edr/cordon/collector/events"
	"github.com/cordon-edr/cordon/collector/ruleset"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/detectors/rules"
)

// maxRulesBody bounds a pushed rule set's request: the set's own limit
// with room for JSON escaping.
const maxRulesBody = 2*rules.MaxPushedBytes + 1<<20

// ruleSetView is the answer of GET /api/v1/rules. Version is empty while
// no set was pushed: agents then run only their built-in pack.
type ruleSetView struct {
	Version  string    `json:"version"`
	Rules    int       `json:"rules"`
	Files    []string  `json:"files"`
	Digest   string    `json:"sha256,omitempty"`
	PushedBy string    `json:"pushed_by,omitempty"`
	PushedAt time.Time `json:"pushed_at,omitzero"`
}

func (s *server) getRules(w http.ResponseWriter, r *http.Request) error {
	if s.Rules == nil {
		return fmt.Errorf("this collector keeps no rule sets: %w", store.ErrNotFound)
	}
	info, err := s.Rules.Info(r.Context())
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(w, http.StatusOK, ruleSetView{Files: []string{}})
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ruleSetView(*info))
	return nil
}

// ruleProblem is one reason a pushed set was refused.
type ruleProblem struct {
	File   string `json:"file"`
	Line   int    `json:"line,omitempty"`
	Reason string `json:"reason"`
}

// refusedSet is the 400 answer to a set that does not compile.
type refusedSet struct {
	Error    string        `json:"error"`
	Field    string        `json:"field"`
	Problems []ruleProblem `json:"problems"`
}

func (s *server) pushRules(w http.ResponseWriter, r *http.Request) error {
	if s.Rules == nil {
		return fmt.Errorf("this collector keeps no rule sets: %w", store.ErrNotFound)
	}
	var body struct {
		Files []struct {
			Name    *string `json:"name"`
			Content *string `json:"content"`
		} `json:"files"`
	}
	if err := decodeMax(w, r, &body, maxRulesBody); err != nil {
		return err
	}
	if len(body.Files) == 0 {
		return store.Invalid("files", "want at least one rule file ({\"name\": ..., \"content\": ...})")
	}
	files := make([]ruleset.File, len(body.Files))
	for i, f := range body.Files {
		if f.Name == nil {
			return store.Invalid(fmt.Sprintf("files[%d].name", i), "missing")
		}
		if f.Content == nil {
			return store.Invalid(fmt.Sprintf("files[%d].content", i), "missing")
		}
		files[i] = ruleset.File{Name: *f.Name, Content: []byte(*f.Content)}
	}
	info, err := s.Rules.Push(r.Context(), files, caller(r).Name)
	var se *rules.SetError
	if errors.As(err, &se) {
		out := refusedSet{Error: se.Error(), Field: "files"}
		for _, p := range se.Problems {
			out.Problems = append(out.Problems, ruleProblem{File: p.File, Line: p.Line, Reason: p.Err.Error()})
		}
		if n, _ := r.Context().Value(noteCtx{}).(*auditNote); n != nil {
			n.detail = se.Error()
		}
		writeJSON(w, http.StatusBadRequest, out)
		return nil
	}
	if err != nil {
		return err
	}
	setTarget(r, info.Version)
	s.Events.Publish(events.KindAgent, "")
	writeJSON(w, http.StatusCreated, ruleSetView(*info))
	return nil
}
