package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrCorrelation marks rules that need correlation across events (the
// correlation format, or "| count()" and "| near" in a condition), which
// Cordon's Sigma engine refuses.
var ErrCorrelation = errors.New("correlation rules are not supported")

// ErrUnsupported marks Sigma features that Cordon refuses on purpose
// (rule collections, placeholders, time modifiers, filter documents).
var ErrUnsupported = errors.New("not supported")

// Error is a rule that does not compile, with where it went wrong.
type Error struct {
	File string
	Line int // 0 when unknown
	Err  error
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// lineError is an error at a line of the file being parsed.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return e.err.Error() }
func (e *lineError) Unwrap() error { return e.err }

func errAt(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &lineError{line: line, err: fmt.Errorf(format, args...)}
}

func wrapAt(n *yaml.Node, err error, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &lineError{line: line, err: fmt.Errorf(format+": %w", append(args, err)...)}
}

// maxRuleSize bounds one rule file; SigmaHQ's largest rule is a few
// kilobytes.
const maxRuleSize = 1 << 20

// Parse compiles the rules of one YAML file (usually one rule; several
// YAML documents give several rules). file names the file in errors.
func Parse(file string, data []byte) ([]*Rule, error) {
	if len(data) > maxRuleSize {
		return nil, &Error{File: file, Err: fmt.Errorf("rule file is %d bytes, more than the limit of %d", len(data), maxRuleSize)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var rules []*Rule
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &Error{File: file, Line: yamlErrLine(err), Err: fmt.Errorf("invalid YAML: %w", err)}
		}
		if len(n.Content) == 0 {
			continue
		}
		r, err := compileDoc(n.Content[0])
		if err != nil {
			var le *lineError
			if errors.As(err, &le) {
				return nil, &Error{File: file, Line: le.line, Err: le.err}
			}
			return nil, &Error{File: file, Err: err}
		}
		r.File = file
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return nil, &Error{File: file, Line: 1, Err: errors.New("no rule in file")}
	}
	return rules, nil
}

// yamlErrLine digs the line number out of a yaml.v3 error message
// ("yaml: line 12: ...").
func yamlErrLine(err error) int {
	msg := err.Error()
	i := strings.Index(msg, "line ")
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range msg[i+5:] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		if n > 1<<24 {
			return 0
		}
	}
	return n
}

// mapping returns the key/value pairs of a mapping node, refusing
// duplicate keys.
func mapping(n *yaml.Node, what string) ([][2]*yaml.Node, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, errAt(n, "%s: want a mapping", what)
	}
	seen := map[string]bool{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, errAt(k, "%s: keys must be strings", what)
		}
		if seen[k.Value] {
			return nil, errAt(k, "%s: duplicate key %q", what, k.Value)
		}
		seen[k.Value] = true
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out, nil
}

func scalarString(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errAt(n, "%s: want a string", what)
	}
	return n.Value, nil
}

func stringList(n *yaml.Node, what string) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, errAt(c, "%s: want a list of strings", what)
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, errAt(n, "%s: want a string or a list of strings", what)
}

// compileDoc compiles one YAML document into a rule.
func compileDoc(n *yaml.Node) (*Rule, error) {
	kv, err := mapping(n, "rule")
	if err != nil {
		return nil, err
	}
	r := &Rule{Line: n.Line}
	var detection *yaml.Node
	for _, p := range kv {
		k, v := p[0], p[1]
		var err error
		switch k.Value {
		case "title":
			r.Title, err = scalarString(v, "title")
		case "id":
			r.ID, err = scalarString(v, "id")
		case "status":
			r.Status, err = scalarString(v, "status")
		case "description":
			r.Description, err = scalarString(v, "description")
		case "author":
			r.Author, err = scalarString(v, "author")
		case "date":
			r.Date, err = scalarString(v, "date")
		case "modified":
			r.Modified, err = scalarString(v, "modified")
		case "level":
			r.Level, err = scalarString(v, "level")
			if err == nil {
				if _, ok := severities[r.Level]; !ok {
					err = errAt(v, "level %q: want informational, low, medium, high or critical", r.Level)
				}
			}
		case "license":
			r.License, err = scalarString(v, "license")
		case "references":
			r.References, err = stringList(v, "references")
		case "tags":
			r.Tags, err = stringList(v, "tags")
		case "falsepositives":
			r.FalsePositives, err = stringList(v, "falsepositives")
		case "logsource":
			err = r.parseLogsource(v)
		case "detection":
			detection = v
		case "correlation":
			return nil, errAt(k, "%w (the rule has a correlation section)", ErrCorrelation)
		case "action":
			return nil, errAt(k, "rule collections (action: %s) are %w: write one rule per document", v.Value, ErrUnsupported)
		case "filter":
			return nil, errAt(k, "Sigma filter documents are %w: put the exclusion in the rule's condition", ErrUnsupported)
		}
		if err != nil {
			var le *lineError
			if !errors.As(err, &le) {
				err = errAt(v, "%v", err)
			}
			return nil, err
		}
	}
	if r.Title == "" {
		return nil, errAt(n, "missing title")
	}
	if detection == nil {
		return nil, errAt(n, "missing detection")
	}
	if err := r.compileDetection(detection); err != nil {
		return nil, err
	}
	r.route = routeOf(r.Logsource)
	r.finish()
	return r, nil
}

func (r *Rule) parseLogsource(n *yaml.Node) error {
	kv, err := mapping(n, "logsource")
	if err != nil {
		return err
	}
	for _, p := range kv {
		v, err := scalarString(p[1], "logsource."+p[0].Value)
		if err != nil {
			return err
		}
		switch p[0].Value {
		case "category":
			r.Logsource.Category = v
		case "product":
			r.Logsource.Product = v
		case "service":
			r.Logsource.Service = v
		}
	}
	return nil
}
