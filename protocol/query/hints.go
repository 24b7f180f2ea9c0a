package query

import "strings"

// Equalities returns, for each field, the values the field must equal for
// any event to match: the field is compared with "==" or "in" (a list of
// values, not CIDRs) in a part of a top-level "and" (or the whole query).
// A store with an index on one of these fields can read only the events
// with those values instead of scanning everything.
func (q *Query) Equalities() map[string][]string {
	out := map[string][]string{}
	for _, n := range conjuncts(q.root) {
		c, ok := n.(*Compare)
		if !ok {
			continue
		}
		switch c.Op {
		case OpEq:
			out[c.Field] = []string{c.Values[0]}
		case OpIn:
			if fields[c.Field].kind == KindIP {
				cidr := false
				for _, v := range c.Values {
					cidr = cidr || strings.Contains(v, "/")
				}
				if cidr {
					continue
				}
			}
			out[c.Field] = append([]string(nil), c.Values...)
		}
	}
	return out
}

// PathPrefixes returns the paths every matching file must be at or under,
// when the query requires it: a top-level part comparing file.path with
// "==", "startswith" or "in", or file.directory with "==". An agent walks
// these to answer from the files on disk as well as from its history; nil
// means the query names no such paths.
func (q *Query) PathPrefixes() []string {
	var out []string
	for _, n := range conjuncts(q.root) {
		c, ok := n.(*Compare)
		if !ok {
			continue
		}
		switch {
		case c.Field == "file.path" && (c.Op == OpEq || c.Op == OpStartsWith || c.Op == OpIn):
			return append(out, c.Values...)
		case c.Field == "file.directory" && c.Op == OpEq:
			return append(out, c.Values[0])
		}
	}
	return out
}

// conjuncts returns the parts of a top-level "and", or the root alone.
func conjuncts(n Node) []Node {
	if a, ok := n.(And); ok {
		return a
	}
	return []Node{n}
}
