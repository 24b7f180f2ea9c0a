package sigma

import (
	"fmt"
	"path"
	"strings"
)

// node is a compiled boolean expression over one event.
type node interface {
	eval(c *evalCtx) bool
}

type andNode struct{ xs []node }

func (n *andNode) eval(c *evalCtx) bool {
	for _, x := range n.xs {
		if !x.eval(c) {
			return false
		}
	}
	return true
}

type orNode struct{ xs []node }

func (n *orNode) eval(c *evalCtx) bool {
	for _, x := range n.xs {
		if x.eval(c) {
			return true
		}
	}
	return false
}

type notNode struct{ x node }

func (n *notNode) eval(c *evalCtx) bool { return !n.x.eval(c) }

// maxConditionLen and maxConditionDepth bound what parseCondition
// accepts, so hostile input cannot exhaust the stack.
const (
	maxConditionLen   = 4096
	maxConditionDepth = 64
)

// parseCondition compiles a condition over the named searches.
func parseCondition(s string, searches map[string]node, names []string) (node, error) {
	if len(s) > maxConditionLen {
		return nil, fmt.Errorf("longer than %d characters", maxConditionLen)
	}
	if i := strings.IndexByte(s, '|'); i >= 0 {
		agg := strings.TrimSpace(s[i+1:])
		kind := "an aggregation"
		switch {
		case strings.HasPrefix(agg, "near"):
			kind = "near"
		case strings.HasPrefix(agg, "count"):
			kind = "count()"
		}
		return nil, fmt.Errorf("%w: the condition uses %s (%q)", ErrCorrelation, kind, "| "+agg)
	}
	toks, err := lexCondition(s)
	if err != nil {
		return nil, err
	}
	p := &condParser{toks: toks, searches: searches, names: names}
	n, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	return n, nil
}

func lexCondition(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case isIdentByte(c):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q at offset %d", c, i)
		}
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty")
	}
	return toks, nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '*' || c == '-' || c == '.' || c == '?' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

type condParser struct {
	toks     []string
	pos      int
	searches map[string]node
	names    []string
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *condParser) or(depth int) (node, error) {
	if depth > maxConditionDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxConditionDepth)
	}
	x, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	xs := []node{x}
	for strings.EqualFold(p.peek(), "or") {
		p.pos++
		y, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		xs = append(xs, y)
	}
	if len(xs) == 1 {
		return x, nil
	}
	return &orNode{xs}, nil
}

func (p *condParser) and(depth int) (node, error) {
	x, err := p.not(depth)
	if err != nil {
		return nil, err
	}
	xs := []node{x}
	for strings.EqualFold(p.peek(), "and") {
		p.pos++
		y, err := p.not(depth)
		if err != nil {
			return nil, err
		}
		xs = append(xs, y)
	}
	if len(xs) == 1 {
		return x, nil
	}
	return &andNode{xs}, nil
}

func (p *condParser) not(depth int) (node, error) {
	if strings.EqualFold(p.peek(), "not") {
		p.pos++
		if depth > maxConditionDepth {
			return nil, fmt.Errorf("nested deeper than %d", maxConditionDepth)
		}
		x, err := p.not(depth + 1)
		if err != nil {
			return nil, err
		}
		return &notNode{x}, nil
	}
	return p.primary(depth)
}

func (p *condParser) primary(depth int) (node, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, fmt.Errorf("ends too early")
	case t == "(":
		p.pos++
		x, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return x, nil
	case t == ")":
		return nil, fmt.Errorf("unexpected )")
	case isKeyword(t):
		if (t == "1" || strings.EqualFold(t, "any") || strings.EqualFold(t, "all")) && strings.EqualFold(p.tokAt(p.pos+1), "of") {
			return p.quantifier()
		}
		return nil, fmt.Errorf("unexpected %q", t)
	}
	if isNumber(t) && strings.EqualFold(p.tokAt(p.pos+1), "of") {
		return nil, fmt.Errorf("%q: only \"1 of\" and \"all of\" are defined", t+" of")
	}
	p.pos++
	if strings.ContainsAny(t, "*?") {
		return nil, fmt.Errorf("pattern %q needs \"1 of\" or \"all of\"", t)
	}
	s, ok := p.searches[t]
	if !ok {
		return nil, fmt.Errorf("unknown search %q", t)
	}
	return s, nil
}

func (p *condParser) tokAt(i int) string {
	if i < len(p.toks) {
		return p.toks[i]
	}
	return ""
}

// quantifier parses "1 of X", "any of X" and "all of X".
func (p *condParser) quantifier() (node, error) {
	q := strings.ToLower(p.toks[p.pos])
	p.pos += 2
	target := p.peek()
	if target == "" || target == "(" || target == ")" || isKeyword(target) && !strings.EqualFold(target, "them") {
		return nil, fmt.Errorf("%s of: want a search name, a pattern or them", q)
	}
	p.pos++
	var xs []node
	for _, n := range p.names {
		if strings.EqualFold(target, "them") {
			if strings.HasPrefix(n, "_") {
				continue
			}
		} else if ok, _ := path.Match(target, n); !ok {
			continue
		}
		xs = append(xs, p.searches[n])
	}
	if len(xs) == 0 {
		return nil, fmt.Errorf("%s of %s: no search matches", q, target)
	}
	if len(xs) == 1 {
		return xs[0], nil
	}
	if q == "all" {
		return &andNode{xs}, nil
	}
	return &orNode{xs}, nil
}

func isKeyword(t string) bool {
	switch strings.ToLower(t) {
	case "and", "or", "not", "of", "them", "1", "any", "all":
		return true
	}
	return false
}

func isNumber(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return false
		}
	}
	return t != ""
}
