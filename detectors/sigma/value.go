package sigma

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// matcher tests one field of an event against one value.
type matcher interface {
	match(c *evalCtx, f fieldID) bool
	// literal returns a lower-case string that every matching value
	// contains, for the prefilter; ok is false when there is none.
	literal() (lit string, ok bool)
}

// fieldNode is one "field|modifiers: values" entry, or a keyword list
// (kw) that matches any of the route's keyword fields.
type fieldNode struct {
	f   fieldID
	kw  bool
	ms  []matcher
	all bool
	neq bool
}

func (n *fieldNode) eval(c *evalCtx) bool {
	if !n.kw {
		return n.evalField(c, n.f)
	}
	fs := keywordFields[c.route]
	if n.all && !n.neq {
		for _, m := range n.ms {
			hit := false
			for _, f := range fs {
				if m.match(c, f) {
					hit = true
					break
				}
			}
			if !hit {
				return false
			}
		}
		return true
	}
	for _, f := range fs {
		if n.evalField(c, f) {
			return true
		}
	}
	return false
}

func (n *fieldNode) evalField(c *evalCtx, f fieldID) bool {
	r := false
	if n.all {
		r = true
		for _, m := range n.ms {
			if !m.match(c, f) {
				r = false
				break
			}
		}
	} else {
		for _, m := range n.ms {
			if m.match(c, f) {
				r = true
				break
			}
		}
	}
	if n.neq {
		return !r
	}
	return r
}

// modifier flags collected from a field key.
type modifiers struct {
	op         strOp
	opName     string
	all, cased bool
	neq        bool
	kind       string // "", "re", "cidr", "exists", "fieldref", "gt", "gte", "lt", "lte"
	reFlags    string
	transforms []string // base64, base64offset, utf16le, utf16be, utf16, windash, in order
}

func parseModifiers(mods []string) (modifiers, error) {
	var m modifiers
	setKind := func(k string) error {
		if m.kind != "" && m.kind != k {
			return fmt.Errorf("modifiers %s and %s cannot be combined", m.kind, k)
		}
		m.kind = k
		return nil
	}
	setOp := func(op strOp, name string) error {
		if m.op != opEq && m.op != op {
			return fmt.Errorf("modifiers %s and %s cannot be combined", m.opName, name)
		}
		m.op, m.opName = op, name
		return nil
	}
	for _, mod := range mods {
		var err error
		switch mod {
		case "contains":
			err = setOp(opContains, mod)
		case "startswith":
			err = setOp(opPrefix, mod)
		case "endswith":
			err = setOp(opSuffix, mod)
		case "all":
			m.all = true
		case "cased":
			m.cased = true
		case "neq":
			m.neq = true
		case "re", "cidr", "exists", "fieldref", "gt", "gte", "lt", "lte":
			err = setKind(mod)
		case "i", "m", "s":
			if m.kind != "re" {
				return m, fmt.Errorf("modifier %s applies only after re", mod)
			}
			m.reFlags += mod
		case "base64", "base64offset", "utf16le", "utf16be", "utf16", "wide", "windash":
			if mod == "wide" {
				mod = "utf16le"
			}
			m.transforms = append(m.transforms, mod)
		case "expand":
			return m, fmt.Errorf("modifier expand needs placeholders from a processing pipeline, which Cordon does not have: %w", ErrUnsupported)
		case "minute", "hour", "day", "week", "month", "year":
			return m, fmt.Errorf("time modifier %s is %w", mod, ErrUnsupported)
		case "":
			return m, fmt.Errorf("empty modifier")
		default:
			return m, fmt.Errorf("unknown modifier %q", mod)
		}
		if err != nil {
			return m, err
		}
	}
	if m.kind != "" && m.kind != "fieldref" && (m.op != opEq || len(m.transforms) > 0) {
		return m, fmt.Errorf("modifier %s cannot be combined with %s", m.kind, m.describeString())
	}
	return m, nil
}

func (m modifiers) describeString() string {
	if m.opName != "" {
		return m.opName
	}
	return strings.Join(m.transforms, ", ")
}

// compileValues compiles one field entry (or a keyword list when field
// is "" and keyword is true).
func compileValues(search, field string, n *yaml.Node, mods []string, fields map[fieldID]bool, unknown map[string]bool, keyword bool) (node, error) {
	m, err := parseModifiers(mods)
	if err != nil {
		return nil, errAt(n, "search %s, field %q: %w", search, field, err)
	}
	if keyword && field == "" && m.op == opEq {
		// Keywords are searched for anywhere in the event's text.
		m.op, m.opName = opContains, "contains"
	}
	fn := &fieldNode{kw: keyword && field == "", all: m.all, neq: m.neq}
	where := fmt.Sprintf("search %s, field %q", search, field)
	if fn.kw {
		where = fmt.Sprintf("search %s, keywords", search)
	} else {
		f, ok := fieldByName[field]
		if !ok {
			f = fUnknown
			unknown[field] = true
		} else {
			fields[f] = true
		}
		fn.f = f
	}
	var vals []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		vals = []*yaml.Node{n}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind == yaml.AliasNode {
				c = c.Alias
			}
			if c.Kind != yaml.ScalarNode {
				return nil, errAt(c, "%s: values must be scalars", where)
			}
			vals = append(vals, c)
		}
		if len(vals) == 0 {
			return nil, errAt(n, "%s: empty list of values", where)
		}
	default:
		return nil, errAt(n, "%s: want a value or a list of values", where)
	}
	if m.all && len(vals) < 2 {
		return nil, errAt(n, "%s: modifier all needs a list of at least two values", where)
	}
	for _, v := range vals {
		ms, err := compileValue(v, m, fields, unknown)
		if err != nil {
			return nil, errAt(v, "%s: %w", where, err)
		}
		fn.ms = append(fn.ms, ms...)
	}
	if m.all && len(fn.ms) != len(vals) {
		// A transform expanded a value into alternatives, which the AND
		// of all cannot express per value.
		return nil, errAt(n, "%s: modifier all cannot be combined with %s", where, strings.Join(m.transforms, ", "))
	}
	return fn, nil
}

// compileValue compiles one value into matchers (several when a
// transform such as windash or base64offset yields alternatives).
func compileValue(v *yaml.Node, m modifiers, fields map[fieldID]bool, unknown map[string]bool) ([]matcher, error) {
	null := v.Tag == "!!null"
	switch m.kind {
	case "exists":
		b, err := strconv.ParseBool(v.Value)
		if err != nil {
			return nil, fmt.Errorf("exists wants true or false, got %q", v.Value)
		}
		return []matcher{existsMatcher{want: b}}, nil
	case "gt", "gte", "lt", "lte":
		x, err := strconv.ParseFloat(v.Value, 64)
		if err != nil || null {
			return nil, fmt.Errorf("%s wants a number, got %q", m.kind, v.Value)
		}
		return []matcher{numMatcher{op: m.kind, x: x}}, nil
	case "cidr":
		p, err := netip.ParsePrefix(v.Value)
		if err != nil {
			return nil, fmt.Errorf("cidr: %v", err)
		}
		return []matcher{cidrMatcher{p.Masked()}}, nil
	case "re":
		flags := m.reFlags
		if m.cased {
			flags = strings.ReplaceAll(flags, "i", "")
		}
		expr := v.Value
		if flags != "" {
			expr = "(?" + flags + ")" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("re: %v", err)
		}
		return []matcher{reMatcher{re}}, nil
	case "fieldref":
		other, ok := fieldByName[v.Value]
		if !ok {
			other = fUnknown
			unknown[v.Value] = true
		} else {
			fields[other] = true
		}
		return []matcher{fieldrefMatcher{other: other, op: m.op, cased: m.cased}}, nil
	}
	if null {
		if len(m.transforms) > 0 || m.op != opEq {
			return nil, fmt.Errorf("null cannot take modifiers")
		}
		return []matcher{nullMatcher{}}, nil
	}
	if len(m.transforms) == 0 {
		toks := parseWildcards(v.Value)
		sm, err := newStrMatcher(toks, m.op, m.cased)
		if err != nil {
			return nil, err
		}
		return []matcher{sm}, nil
	}
	// Transformed values are literal: wildcards mean nothing inside a
	// base64 or UTF-16 encoding.
	vs := []string{v.Value}
	for _, t := range m.transforms {
		var next []string
		for _, s := range vs {
			next = append(next, transform(t, s)...)
		}
		if len(next) > 64 {
			return nil, fmt.Errorf("%s yields %d variants, more than 64", t, len(next))
		}
		vs = next
	}
	var out []matcher
	for _, s := range vs {
		sm, err := newStrMatcher([]wtok{{s: s}}, m.op, m.cased)
		if err != nil {
			return nil, err
		}
		out = append(out, sm)
	}
	return out, nil
}

// transform applies an encoding modifier to a value.
func transform(t, s string) []string {
	switch t {
	case "base64":
		return []string{base64.StdEncoding.EncodeToString([]byte(s))}
	case "base64offset":
		var out []string
		start := [3]int{0, 2, 3}
		for i := 0; i < 3; i++ {
			enc := base64.StdEncoding.EncodeToString(append([]byte(strings.Repeat(" ", i)), s...))
			end := len(enc)
			switch (len(s) + i) % 3 {
			case 1:
				end -= 3
			case 2:
				end -= 2
			}
			if start[i] < end {
				out = append(out, enc[start[i]:end])
			}
		}
		return out
	case "utf16le", "utf16be", "utf16":
		u := utf16.Encode([]rune(s))
		var b []byte
		if t == "utf16" {
			b = append(b, 0xff, 0xfe)
		}
		for _, c := range u {
			if t == "utf16be" {
				b = append(b, byte(c>>8), byte(c))
			} else {
				b = append(b, byte(c), byte(c>>8))
			}
		}
		return []string{string(b)}
	case "windash":
		return windash(s)
	}
	return []string{s}
}

var dashes = []string{"-", "/", "\u2013", "\u2014", "\u2015"}

// windash returns the value with every dash or slash that starts a word
// replaced by each of -, /, en dash, em dash and horizontal bar.
func windash(s string) []string {
	out := []string{""}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		isDash := r == '-' || r == '/' || r == '\u2013' || r == '\u2014' || r == '\u2015'
		wordStart := i == 0 || s[i-1] == ' '
		if isDash && wordStart && len(out) < 64 {
			var next []string
			for _, o := range out {
				for _, d := range dashes {
					next = append(next, o+d)
				}
			}
			out = next
		} else {
			for j := range out {
				out[j] += s[i : i+size]
			}
		}
		i += size
	}
	return out
}

// wtok is a token of a value with wildcards: a literal, or * (star), or
// ? (one).
type wtok struct {
	s    string
	star bool
	one  bool
}

// parseWildcards splits a value into literals and wildcards. A backslash
// escapes *, ? and a backslash; before any other character it is a
// literal backslash.
func parseWildcards(v string) []wtok {
	var toks []wtok
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			toks = append(toks, wtok{s: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v) && (v[i+1] == '*' || v[i+1] == '?' || v[i+1] == '\\'):
			lit.WriteByte(v[i+1])
			i++
		case c == '*':
			flush()
			if len(toks) == 0 || !toks[len(toks)-1].star {
				toks = append(toks, wtok{star: true})
			}
		case c == '?':
			flush()
			toks = append(toks, wtok{one: true})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return toks
}

type strOp uint8

const (
	opEq strOp = iota
	opContains
	opPrefix
	opSuffix
	opGlob
)

// strMatcher matches a string value, lower-cased unless cased.
type strMatcher struct {
	op    strOp
	pat   string
	re    *regexp.Regexp // opGlob
	cased bool
	lit   string // longest literal, lower-cased, for the prefilter
}

func newStrMatcher(toks []wtok, op strOp, cased bool) (*strMatcher, error) {
	switch op {
	case opContains:
		toks = append(append([]wtok{{star: true}}, toks...), wtok{star: true})
	case opPrefix:
		toks = append(toks, wtok{star: true})
	case opSuffix:
		toks = append([]wtok{{star: true}}, toks...)
	}
	// Collapse runs of stars.
	var t []wtok
	for _, k := range toks {
		if k.star && len(t) > 0 && t[len(t)-1].star {
			continue
		}
		if !k.star && !k.one && k.s == "" {
			continue
		}
		t = append(t, k)
	}
	m := &strMatcher{cased: cased}
	low := func(s string) string {
		if cased {
			return s
		}
		return strings.ToLower(s)
	}
	for _, k := range t {
		if !k.star && !k.one && len(k.s) > len(m.lit) {
			m.lit = strings.ToLower(k.s)
		}
	}
	lits, stars, ones := 0, 0, 0
	for _, k := range t {
		switch {
		case k.star:
			stars++
		case k.one:
			ones++
		default:
			lits++
		}
	}
	n := len(t)
	switch {
	case ones == 0 && lits == 0 && stars == 0:
		m.op, m.pat = opEq, ""
	case ones == 0 && lits == 0:
		m.op, m.pat = opPrefix, "" // "*" matches anything
	case ones == 0 && lits == 1 && n == 1:
		m.op, m.pat = opEq, low(t[0].s)
	case ones == 0 && lits == 1 && n == 3 && t[0].star && t[2].star:
		m.op, m.pat = opContains, low(t[1].s)
	case ones == 0 && lits == 1 && n == 2 && t[1].star:
		m.op, m.pat = opPrefix, low(t[0].s)
	case ones == 0 && lits == 1 && n == 2 && t[0].star:
		m.op, m.pat = opSuffix, low(t[1].s)
	default:
		var b strings.Builder
		b.WriteString("(?s)^")
		for _, k := range t {
			switch {
			case k.star:
				b.WriteString(".*")
			case k.one:
				b.WriteString(".")
			default:
				b.WriteString(regexp.QuoteMeta(low(k.s)))
			}
		}
		b.WriteString("$")
		re, err := regexp.Compile(b.String())
		if err != nil {
			return nil, fmt.Errorf("wildcard value: %v", err)
		}
		m.op, m.re = opGlob, re
	}
	return m, nil
}

func (m *strMatcher) match(c *evalCtx, f fieldID) bool {
	v, _ := c.value(f, !m.cased)
	switch m.op {
	case opEq:
		return v == m.pat
	case opContains:
		return strings.Contains(v, m.pat)
	case opPrefix:
		return strings.HasPrefix(v, m.pat)
	case opSuffix:
		return strings.HasSuffix(v, m.pat)
	default:
		return m.re.MatchString(v)
	}
}

func (m *strMatcher) literal() (string, bool) {
	if m.lit == "" || !isASCII(m.lit) {
		return "", false
	}
	return m.lit, true
}

type nullMatcher struct{}

func (nullMatcher) match(c *evalCtx, f fieldID) bool {
	_, ok := c.value(f, false)
	return !ok
}
func (nullMatcher) literal() (string, bool) { return "", false }

type existsMatcher struct{ want bool }

func (m existsMatcher) match(c *evalCtx, f fieldID) bool {
	_, ok := c.value(f, false)
	return ok == m.want
}
func (existsMatcher) literal() (string, bool) { return "", false }

type numMatcher struct {
	op string
	x  float64
}

func (m numMatcher) match(c *evalCtx, f fieldID) bool {
	v, ok := c.value(f, false)
	if !ok {
		return false
	}
	y, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return false
	}
	switch m.op {
	case "gt":
		return y > m.x
	case "gte":
		return y >= m.x
	case "lt":
		return y < m.x
	default:
		return y <= m.x
	}
}
func (numMatcher) literal() (string, bool) { return "", false }

type cidrMatcher struct{ p netip.Prefix }

func (m cidrMatcher) match(c *evalCtx, f fieldID) bool {
	v, ok := c.value(f, false)
	if !ok {
		return false
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return false
	}
	return m.p.Contains(a.Unmap())
}
func (cidrMatcher) literal() (string, bool) { return "", false }

type reMatcher struct{ re *regexp.Regexp }

func (m reMatcher) match(c *evalCtx, f fieldID) bool {
	v, ok := c.value(f, false)
	if !ok {
		return false
	}
	return m.re.MatchString(v)
}
func (reMatcher) literal() (string, bool) { return "", false }

type fieldrefMatcher struct {
	other fieldID
	op    strOp
	cased bool
}

func (m fieldrefMatcher) match(c *evalCtx, f fieldID) bool {
	v, ok := c.value(f, !m.cased)
	if !ok {
		return false
	}
	w, ok := c.value(m.other, !m.cased)
	if !ok {
		return false
	}
	switch m.op {
	case opContains:
		return strings.Contains(v, w)
	case opPrefix:
		return strings.HasPrefix(v, w)
	case opSuffix:
		return strings.HasSuffix(v, w)
	default:
		return v == w
	}
}
func (fieldrefMatcher) literal() (string, bool) { return "", false }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
