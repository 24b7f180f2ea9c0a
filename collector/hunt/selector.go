package hunt

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cordon-edr/cordon/collector/store"
)

// Selector picks the agents of a hunt. Its text form is "all" (or empty),
// or a comma-separated list of agent ids and tags ("criticality=high"):
// an agent is selected when its id is listed, or when it carries every
// listed tag.
type Selector struct {
	All  bool              `json:"all,omitempty"`
	IDs  []string          `json:"agent_ids,omitempty"`
	Tags map[string]string `json:"tags,omitempty"`
}

// ParseSelector reads a selector's text form.
func ParseSelector(s string) (Selector, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return Selector{All: true}, nil
	}
	var sel Selector
	for i, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		switch {
		case term == "":
			return Selector{}, store.Invalid("agents", "term %d is empty", i+1)
		case term == "all":
			return Selector{}, store.Invalid("agents", "\"all\" cannot be combined with other terms")
		case strings.Contains(term, "="):
			k, v, _ := strings.Cut(term, "=")
			if k == "" {
				return Selector{}, store.Invalid("agents", "term %d (%q) has no tag name", i+1, term)
			}
			if sel.Tags == nil {
				sel.Tags = map[string]string{}
			}
			if old, dup := sel.Tags[k]; dup && old != v {
				return Selector{}, store.Invalid("agents", "tag %q given twice with different values; no agent can match", k)
			}
			sel.Tags[k] = v
		default:
			sel.IDs = append(sel.IDs, term)
		}
	}
	return sel, nil
}

// String is the selector's text form.
func (s Selector) String() string {
	if s.All {
		return "all"
	}
	parts := append([]string(nil), s.IDs...)
	var tags []string
	for k, v := range s.Tags {
		tags = append(tags, k+"="+v)
	}
	sort.Strings(tags)
	return strings.Join(append(parts, tags...), ",")
}

// Match reports whether the agent with id and tags is selected.
func (s Selector) Match(id string, tags map[string]string) bool {
	if s.All {
		return true
	}
	for _, x := range s.IDs {
		if x == id {
			return true
		}
	}
	if len(s.Tags) == 0 {
		return false
	}
	for k, v := range s.Tags {
		if tags[k] != v {
			return false
		}
	}
	return true
}

// Check reports ids the selector names that are not among known.
func (s Selector) Check(known map[string]bool) error {
	for _, id := range s.IDs {
		if !known[id] {
			return store.Missing("agents", "no agent %q (tags are written name=value)", id)
		}
	}
	return nil
}

func (s Selector) describe() string { return fmt.Sprintf("%q", s.String()) }
