package query

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cordon-edr/cordon/protocol/ecs"

	"github.com/cordon-edr/cordon/protocol/suggest"
)

// Limits of a query.
const (
	// MaxLength is the longest query text accepted, in bytes.
	MaxLength = 8192
	// MaxDepth bounds the nesting of "not" and parentheses.
	MaxDepth = 64
	// MaxListValues bounds the values of one "in" list.
	MaxListValues = 1024
)

// Error is a query that does not parse or names something unknown. Pos is
// the byte offset of the offending token, counting from 1.
type Error struct {
	Pos int
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("query: position %d: %s", e.Pos, e.Msg) }

// Op is a comparison operator.
type Op string

// Operators.
const (
	OpEq         Op = "=="
	OpNe         Op = "!="
	OpContains   Op = "contains"
	OpStartsWith Op = "startswith"
	OpEndsWith   Op = "endswith"
	OpMatches    Op = "matches"
	OpIn         Op = "in"
	OpGt         Op = ">"
	OpGe         Op = ">="
	OpLt         Op = "<"
	OpLe         Op = "<="
)

// Node is a parsed query: And, Or, Not or Compare.
type Node interface{ node() }

// And matches when every one of its parts matches.
type And []Node

// Or matches when any of its parts matches.
type Or []Node

// Not inverts its part.
type Not struct{ X Node }

// Compare is one field comparison.
type Compare struct {
	Field  string
	Op     Op
	Values []string // one value, or the list of "in"
	Pos    int
}

func (And) node()      {}
func (Or) node()       {}
func (Not) node()      {}
func (*Compare) node() {}

// Query is a parsed, validated and compiled query.
type Query struct {
	text  string
	root  Node
	match func(ev *ecs.Event) bool
}

// String returns the query's text as it was parsed.
func (q *Query) String() string { return q.text }

// Root returns the parsed tree.
func (q *Query) Root() Node { return q.root }

// Match reports whether ev matches the query.
func (q *Query) Match(ev *ecs.Event) bool { return q.match(ev) }

// Parse parses, validates and compiles a query.
func Parse(text string) (*Query, error) {
	if len(text) > MaxLength {
		return nil, &Error{Pos: MaxLength + 1, Msg: fmt.Sprintf("the query is longer than %d bytes", MaxLength)}
	}
	if !utf8.ValidString(text) {
		return nil, &Error{Pos: 1, Msg: "the query is not valid UTF-8"}
	}
	toks, err := lex(text)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if p.peek().kind == tokEOF {
		return nil, &Error{Pos: 1, Msg: "the query is empty"}
	}
	root, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("unexpected %s: expected \"and\", \"or\" or the end of the query", t)}
	}
	m, err := compile(root)
	if err != nil {
		return nil, err
	}
	return &Query{text: text, root: root, match: m}, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokString
	tokOp
	tokLParen
	tokRParen
	tokLBrack
	tokRBrack
	tokComma
)

type token struct {
	kind tokKind
	text string // the word, the unquoted string or the operator
	pos  int    // 1-based byte offset
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of query"
	case tokString:
		return strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("._:/-@*+", c) >= 0 || c >= 0x80
}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tokLParen, "(", i + 1})
			i++
		case c == ')':
			out = append(out, token{tokRParen, ")", i + 1})
			i++
		case c == '[':
			out = append(out, token{tokLBrack, "[", i + 1})
			i++
		case c == ']':
			out = append(out, token{tokRBrack, "]", i + 1})
			i++
		case c == ',':
			out = append(out, token{tokComma, ",", i + 1})
			i++
		case c == '=' || c == '!' || c == '<' || c == '>':
			op := string(c)
			if i+1 < len(s) && s[i+1] == '=' {
				op += "="
			}
			switch op {
			case "==", "!=", "<", "<=", ">", ">=":
			default:
				return nil, &Error{Pos: i + 1, Msg: fmt.Sprintf("unknown operator %q (did you mean \"==\" or \"!=\"?)", op)}
			}
			out = append(out, token{tokOp, op, i + 1})
			i += len(op)
		case c == '"':
			end, val, err := scanString(s, i)
			if err != nil {
				return nil, err
			}
			out = append(out, token{tokString, val, i + 1})
			i = end
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			out = append(out, token{tokWord, s[i:j], i + 1})
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, &Error{Pos: i + 1, Msg: fmt.Sprintf("unexpected character %q", r)}
		}
	}
	return append(out, token{tokEOF, "", len(s) + 1}), nil
}

// scanString reads the double-quoted string starting at s[i].
func scanString(s string, i int) (end int, val string, err error) {
	j := i + 1
	for j < len(s) {
		switch s[j] {
		case '\\':
			j += 2
			continue
		case '"':
			v, uerr := strconv.Unquote(s[i : j+1])
			if uerr != nil {
				return 0, "", &Error{Pos: i + 1, Msg: "bad escape in string"}
			}
			return j + 1, v, nil
		case '\n':
			return 0, "", &Error{Pos: i + 1, Msg: "string not closed before the end of the line"}
		}
		j++
	}
	return 0, "", &Error{Pos: i + 1, Msg: "string not closed"}
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(t token, kw string) bool {
	return t.kind == tokWord && strings.EqualFold(t.text, kw)
}

func (p *parser) or(depth int) (Node, error) {
	first, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	parts := Or{first}
	for p.keyword(p.peek(), "or") {
		p.next()
		n, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		parts = append(parts, n)
	}
	if len(parts) == 1 {
		return first, nil
	}
	return parts, nil
}

func (p *parser) and(depth int) (Node, error) {
	first, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	parts := And{first}
	for p.keyword(p.peek(), "and") {
		p.next()
		n, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		parts = append(parts, n)
	}
	if len(parts) == 1 {
		return first, nil
	}
	return parts, nil
}

func (p *parser) unary(depth int) (Node, error) {
	t := p.peek()
	if depth >= MaxDepth {
		return nil, &Error{Pos: t.pos, Msg: fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
	}
	switch {
	case p.keyword(t, "not"):
		p.next()
		x, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return Not{x}, nil
	case t.kind == tokLParen:
		p.next()
		x, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, &Error{Pos: c.pos, Msg: fmt.Sprintf("expected \")\" to close the \"(\" at position %d, found %s", t.pos, c)}
		}
		return x, nil
	}
	return p.compare()
}

var wordOps = map[string]Op{
	"contains": OpContains, "startswith": OpStartsWith, "endswith": OpEndsWith,
	"matches": OpMatches, "in": OpIn,
}

func (p *parser) compare() (Node, error) {
	ft := p.next()
	if ft.kind != tokWord {
		return nil, &Error{Pos: ft.pos, Msg: fmt.Sprintf("expected a field name, found %s", ft)}
	}
	if _, ok := fields[ft.text]; !ok {
		return nil, &Error{Pos: ft.pos, Msg: fmt.Sprintf("unknown field %q%s", ft.text, suggestField(ft.text))}
	}
	ot := p.next()
	var op Op
	switch {
	case ot.kind == tokOp:
		op = Op(ot.text)
	case ot.kind == tokWord:
		op = wordOps[strings.ToLower(ot.text)]
	}
	if op == "" {
		return nil, &Error{Pos: ot.pos, Msg: fmt.Sprintf("expected an operator after %s (==, !=, contains, startswith, endswith, matches, in, >, >=, <, <=), found %s", ft.text, ot)}
	}
	c := &Compare{Field: ft.text, Op: op, Pos: ft.pos}
	vt := p.peek()
	if op == OpIn && (vt.kind == tokLBrack || vt.kind == tokLParen) {
		closer := tokRBrack
		if vt.kind == tokLParen {
			closer = tokRParen
		}
		p.next()
		for {
			v := p.next()
			if v.kind != tokWord && v.kind != tokString {
				return nil, &Error{Pos: v.pos, Msg: fmt.Sprintf("expected a value in the list, found %s", v)}
			}
			c.Values = append(c.Values, v.text)
			if len(c.Values) > MaxListValues {
				return nil, &Error{Pos: v.pos, Msg: fmt.Sprintf("more than %d values in one list", MaxListValues)}
			}
			sep := p.next()
			if sep.kind == closer {
				break
			}
			if sep.kind != tokComma {
				return nil, &Error{Pos: sep.pos, Msg: fmt.Sprintf("expected \",\" or the end of the list, found %s", sep)}
			}
		}
	} else {
		v := p.next()
		if v.kind != tokWord && v.kind != tokString {
			return nil, &Error{Pos: v.pos, Msg: fmt.Sprintf("expected a value after %s %s, found %s", ft.text, op, v)}
		}
		c.Values = []string{v.text}
	}
	return c, nil
}

// suggestField names a known field close to an unknown one.
func suggestField(name string) string {
	known := make([]string, 0, len(fields))
	for f := range fields {
		known = append(known, f)
	}
	best := suggest.Closest(name, known, 3)
	if best == "" {
		return " (see the list of fields in docs/hunting.md)"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

type matcher func(ev *ecs.Event) bool

func compile(n Node) (matcher, error) {
	switch n := n.(type) {
	case And:
		ms, err := compileAll(n)
		if err != nil {
			return nil, err
		}
		return func(ev *ecs.Event) bool {
			for _, m := range ms {
				if !m(ev) {
					return false
				}
			}
			return true
		}, nil
	case Or:
		ms, err := compileAll(n)
		if err != nil {
			return nil, err
		}
		return func(ev *ecs.Event) bool {
			for _, m := range ms {
				if m(ev) {
					return true
				}
			}
			return false
		}, nil
	case Not:
		m, err := compile(n.X)
		if err != nil {
			return nil, err
		}
		return func(ev *ecs.Event) bool { return !m(ev) }, nil
	case *Compare:
		return compileCompare(n)
	}
	return nil, fmt.Errorf("query: unknown node %T", n)
}

func compileAll(ns []Node) ([]matcher, error) {
	out := make([]matcher, len(ns))
	for i, n := range ns {
		m, err := compile(n)
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// test is a predicate on one value of a field.
type test func(v string) bool

func compileCompare(c *Compare) (matcher, error) {
	f := fields[c.Field]
	bad := func(format string, args ...any) error {
		return &Error{Pos: c.Pos, Msg: fmt.Sprintf("%s %s: ", c.Field, c.Op) + fmt.Sprintf(format, args...)}
	}
	val := c.Values[0]
	var t test
	switch c.Op {
	case OpEq, OpNe:
		switch f.kind {
		case KindInt:
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, bad("%q is not a number", val)
			}
			t = func(v string) bool { x, err := strconv.ParseInt(v, 10, 64); return err == nil && x == n }
		case KindIP:
			a, err := netip.ParseAddr(val)
			if err != nil {
				return nil, bad("%q is not an IP address (use \"in\" for a CIDR)", val)
			}
			a = a.Unmap()
			t = func(v string) bool { x, err := netip.ParseAddr(v); return err == nil && x.Unmap() == a }
		case KindTime:
			tm, err := parseTime(val)
			if err != nil {
				return nil, bad("%v", err)
			}
			t = func(v string) bool { x, err := time.Parse(time.RFC3339Nano, v); return err == nil && x.Equal(tm) }
		default:
			t = func(v string) bool { return v == val }
		}
		if c.Op == OpNe {
			eq := t
			t = func(v string) bool { return !eq(v) }
		}
	case OpContains, OpStartsWith, OpEndsWith:
		if f.kind == KindInt || f.kind == KindTime {
			return nil, bad("%s is a %s field; use ==, !=, <, <=, >, >=", c.Field, f.kind)
		}
		switch c.Op {
		case OpContains:
			t = func(v string) bool { return strings.Contains(v, val) }
		case OpStartsWith:
			t = func(v string) bool { return strings.HasPrefix(v, val) }
		default:
			t = func(v string) bool { return strings.HasSuffix(v, val) }
		}
	case OpMatches:
		if f.kind == KindInt || f.kind == KindTime {
			return nil, bad("%s is a %s field; \"matches\" takes string fields", c.Field, f.kind)
		}
		re, err := regexp.Compile(val)
		if err != nil {
			return nil, bad("bad regular expression: %v", err)
		}
		t = re.MatchString
	case OpIn:
		var err error
		if t, err = inTest(f.kind, c.Values); err != nil {
			return nil, bad("%v", err)
		}
	case OpGt, OpGe, OpLt, OpLe:
		cmp := map[Op]func(int) bool{
			OpGt: func(d int) bool { return d > 0 }, OpGe: func(d int) bool { return d >= 0 },
			OpLt: func(d int) bool { return d < 0 }, OpLe: func(d int) bool { return d <= 0 },
		}[c.Op]
		switch f.kind {
		case KindInt:
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, bad("%q is not a number", val)
			}
			t = func(v string) bool {
				x, err := strconv.ParseInt(v, 10, 64)
				return err == nil && cmp(compareInt(x, n))
			}
		case KindTime:
			tm, err := parseTime(val)
			if err != nil {
				return nil, bad("%v", err)
			}
			t = func(v string) bool {
				x, err := time.Parse(time.RFC3339Nano, v)
				return err == nil && cmp(x.Compare(tm))
			}
		default:
			return nil, bad("%s is a %s field; ordering takes numbers and @timestamp", c.Field, f.kind)
		}
	default:
		return nil, bad("unknown operator")
	}
	get := f.get
	return func(ev *ecs.Event) bool {
		vals, ok := get(ev)
		if !ok {
			return false
		}
		for _, v := range vals {
			if t(v) {
				return true
			}
		}
		return false
	}, nil
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2024-05-01T12:00:00Z", s)
	}
	return t, nil
}

func inTest(kind Kind, values []string) (test, error) {
	switch kind {
	case KindIP:
		var prefixes []netip.Prefix
		for _, v := range values {
			if strings.Contains(v, "/") {
				p, err := netip.ParsePrefix(v)
				if err != nil {
					return nil, fmt.Errorf("%q is not a CIDR", v)
				}
				prefixes = append(prefixes, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR", v)
			}
			a = a.Unmap()
			prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
		}
		return func(v string) bool {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return false
			}
			a = a.Unmap()
			for _, p := range prefixes {
				if p.Contains(a) {
					return true
				}
			}
			return false
		}, nil
	case KindInt:
		set := map[int64]bool{}
		for _, v := range values {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not a number", v)
			}
			set[n] = true
		}
		return func(v string) bool { n, err := strconv.ParseInt(v, 10, 64); return err == nil && set[n] }, nil
	case KindTime:
		return nil, fmt.Errorf("@timestamp takes <, <=, >, >= and ==, not \"in\"")
	}
	set := make(map[string]bool, len(values))
	for _, v := range values {
		set[v] = true
	}
	return func(v string) bool { return set[v] }, nil
}
