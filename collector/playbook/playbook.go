package playbook

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Playbook is the response to one incident type.
type Playbook struct {
	Type    string   `yaml:"type" json:"type"`
	Name    string   `yaml:"name" json:"name"`
	DryRun  bool     `yaml:"dry_run" json:"dry_run"`
	Steps   []Step   `yaml:"steps" json:"steps"`
	Actions []Action `yaml:"actions" json:"actions"`
	// Source is the file the playbook came from.
	Source string `yaml:"-" json:"source"`
}

// Step is one item of the handler's checklist.
type Step struct {
	ID    string `yaml:"id" json:"id"`
	Title string `yaml:"title" json:"title"`
	line  int
}

// Action is an automatic response, taken on each affected host that
// meets its conditions when the incident opens or gains a host.
type Action struct {
	ID     string `yaml:"id" json:"id"`
	Action string `yaml:"action" json:"action"`
	Reason string `yaml:"reason" json:"reason"`
	When   When   `yaml:"when" json:"when"`
	// ApprovalFrom is the criticality from which a host's action waits
	// for a responder's approval; "" never waits.
	ApprovalFrom string `yaml:"approval_from" json:"approval_from,omitempty"`
	line         int
}

// When are the conditions of an action; all must hold.
type When struct {
	// CriticalityBelow: only hosts whose criticality is below this one
	// (a host without criticality counts as medium).
	CriticalityBelow string `yaml:"criticality_below" json:"criticality_below,omitempty"`
	// MinPriority: only incidents of this priority or a higher one (P1
	// is the highest).
	MinPriority string `yaml:"min_priority" json:"min_priority,omitempty"`
	// Drill: act on drill incidents too.
	Drill bool `yaml:"drill" json:"drill"`
}

// Actions a playbook may take: the commands that need no arguments
// beyond the host.
var Actions = []string{"isolate", "collect"}

// criticality ranks, lowest first; "unknown" ranks as medium.
var ranks = map[string]int{"low": 0, "medium": 1, "unknown": 1, "high": 2, "critical": 3}

// Rank returns the rank of a criticality, lowest 0; unknown values rank
// as medium.
func Rank(criticality string) int {
	if r, ok := ranks[criticality]; ok {
		return r
	}
	return ranks["unknown"]
}

// Applies reports whether a on a host of criticality, in an incident of
// priority and drill, meets its conditions.
func (a *Action) Applies(criticality, priority string, drill bool) bool {
	if drill && !a.When.Drill {
		return false
	}
	if a.When.CriticalityBelow != "" && Rank(criticality) >= Rank(a.When.CriticalityBelow) {
		return false
	}
	if a.When.MinPriority != "" && priority > a.When.MinPriority {
		return false
	}
	return true
}

// NeedsApproval reports whether a on a host of criticality waits for a
// responder.
func (a *Action) NeedsApproval(criticality string) bool {
	return a.ApprovalFrom != "" && Rank(criticality) >= Rank(a.ApprovalFrom)
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

var priorities = []string{"P1", "P2", "P3", "P4", "P5"}

// Error is a problem in a playbook file, at a line (0 when unknown).
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// lineRE finds the line yaml.v3 puts in its messages.
var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Parse reads one playbook from the YAML in b; name is the file name used
// in errors. types lists the known incident types (nil accepts any).
func Parse(name string, b []byte, types []string) (*Playbook, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Msg: "empty playbook"}
		}
		return nil, yamlError(name, err)
	}
	var p Playbook
	if err := decodeStrict(&root, &p); err != nil {
		return nil, yamlError(name, err)
	}
	// Record where each step and action is, for the errors below.
	if doc := root.Content; len(doc) == 1 && doc[0].Kind == yaml.MappingNode {
		m := doc[0].Content
		for i := 0; i+1 < len(m); i += 2 {
			seq := m[i+1]
			switch m[i].Value {
			case "steps":
				for j, n := range seq.Content {
					if j < len(p.Steps) {
						p.Steps[j].line = n.Line
					}
				}
			case "actions":
				for j, n := range seq.Content {
					if j < len(p.Actions) {
						p.Actions[j].line = n.Line
					}
				}
			}
		}
	}
	p.Source = name
	if err := p.check(name, types); err != nil {
		return nil, err
	}
	return &p, nil
}

// decodeStrict decodes n into v refusing unknown keys.
func decodeStrict(n *yaml.Node, v any) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		return err
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	return dec.Decode(v)
}

func yamlError(name string, err error) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		return &Error{File: name, Line: line, Msg: m[2]}
	}
	return &Error{File: name, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

func (p *Playbook) check(name string, types []string) error {
	bad := func(line int, format string, a ...any) error {
		return &Error{File: name, Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	switch {
	case p.Type == "":
		return bad(1, "type: missing (the incident type this playbook answers)")
	case types != nil && !slices.Contains(types, p.Type):
		return bad(1, "type: unknown incident type %q (want one of %s)", p.Type, strings.Join(types, ", "))
	case strings.TrimSpace(p.Name) == "":
		return bad(1, "name: missing")
	}
	seen := map[string]bool{}
	for i, s := range p.Steps {
		switch {
		case !idPattern.MatchString(s.ID):
			return bad(s.line, "steps[%d].id: %q is not a lowercase id (letters, digits, - and _)", i, s.ID)
		case seen[s.ID]:
			return bad(s.line, "steps[%d].id: %q used twice", i, s.ID)
		case strings.TrimSpace(s.Title) == "":
			return bad(s.line, "steps[%d].title: missing", i)
		}
		seen[s.ID] = true
	}
	for i, a := range p.Actions {
		switch {
		case !idPattern.MatchString(a.ID):
			return bad(a.line, "actions[%d].id: %q is not a lowercase id (letters, digits, - and _)", i, a.ID)
		case seen[a.ID]:
			return bad(a.line, "actions[%d].id: %q used twice", i, a.ID)
		case !slices.Contains(Actions, a.Action):
			return bad(a.line, "actions[%d].action: %q is not one of %s", i, a.Action, strings.Join(Actions, ", "))
		case a.When.CriticalityBelow != "" && !known(a.When.CriticalityBelow):
			return bad(a.line, "actions[%d].when.criticality_below: %q is not low, medium, high or critical", i, a.When.CriticalityBelow)
		case a.ApprovalFrom != "" && !known(a.ApprovalFrom):
			return bad(a.line, "actions[%d].approval_from: %q is not low, medium, high or critical", i, a.ApprovalFrom)
		case a.When.MinPriority != "" && !slices.Contains(priorities, a.When.MinPriority):
			return bad(a.line, "actions[%d].when.min_priority: %q is not P1 to P5", i, a.When.MinPriority)
		}
		seen[a.ID] = true
	}
	return nil
}

func known(c string) bool {
	return c != "unknown" && slices.Contains([]string{"low", "medium", "high", "critical"}, c)
}

//go:embed defaults/*.yaml
var defaults embed.FS

// Set is the playbook of each incident type.
type Set map[string]*Playbook

// Load returns the embedded default playbooks overridden by the *.yaml
// and *.yml files of dir ("" for none): a file replaces the default of
// its type. Every error names its file and line.
func Load(dir string, types []string) (Set, error) {
	s := Set{}
	if err := s.add(defaults, "defaults", "embedded:", types); err != nil {
		return nil, err
	}
	if dir == "" {
		return s, nil
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("reading the playbooks folder: %w", err)
	}
	overrides := Set{}
	if err := overrides.add(os.DirFS(dir), ".", dir+string(filepath.Separator), types); err != nil {
		return nil, err
	}
	for t, p := range overrides {
		s[t] = p
	}
	return s, nil
}

func (s Set) add(fsys fs.FS, dir, label string, types []string) error {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fmt.Errorf("reading playbooks in %s: %w", label, err)
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	from := map[string]string{}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, pathJoin(dir, n))
		if err != nil {
			return fmt.Errorf("reading playbook %s%s: %w", label, n, err)
		}
		p, err := Parse(label+n, b, types)
		if err != nil {
			return err
		}
		if prev, ok := from[p.Type]; ok {
			return &Error{File: label + n, Line: 1, Msg: fmt.Sprintf("type %s already has a playbook in %s", p.Type, prev)}
		}
		from[p.Type] = label + n
		s[p.Type] = p
	}
	return nil
}

func pathJoin(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}
