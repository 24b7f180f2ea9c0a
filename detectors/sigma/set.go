package sigma

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Set runs a collection of compiled rules. Its detectors share per-event
// work (routing, the literal prefilter, lower-cased field values), so the
// Engine must call them in order for each event, as detectors.Engine
// does, and never concurrently.
type Set struct {
	rules []*Rule
	metas []detectors.Rule
	bit   []int // rule index → bit in its route's candidate set
	route [numRoutes]*routeSet
	naive bool

	ctx  evalCtx
	last int // index of the last detector that ran on ctx.ev
	cand []uint64
}

// routeSet is the part of a Set that one route runs.
type routeSet struct {
	rules  []int    // indexes into Set.rules
	always []uint64 // rules without a necessary literal
	scan   []fieldID
	ac     *automaton
}

// Options configures a Set.
type Options struct {
	// License is the licence of rules that do not name one, e.g.
	// "DRL-1.1" for the SigmaHQ rules.
	License string
}

// NewSet builds a Set over rules, in order. Rules that no Cordon event
// reaches are kept (Rules lists them) but never run.
func NewSet(rules []*Rule, opts Options) *Set {
	s := &Set{rules: slices.Clone(rules), last: -1}
	s.bit = make([]int, len(rules))
	for i, r := range s.rules {
		s.metas = append(s.metas, r.Meta(opts.License))
		if r.route == routeNone {
			continue
		}
		rs := s.route[r.route]
		if rs == nil {
			rs = &routeSet{}
			s.route[r.route] = rs
		}
		s.bit[i] = len(rs.rules)
		rs.rules = append(rs.rules, i)
	}
	maxWords := 0
	for rt, rs := range s.route {
		if rs == nil {
			continue
		}
		words := (len(rs.rules) + 63) / 64
		maxWords = max(maxWords, words)
		rs.always = make([]uint64, words)
		var lits []string
		var owners []int
		scan := map[fieldID]bool{}
		for _, f := range keywordFields[rt] {
			scan[f] = true
		}
		for b, ri := range rs.rules {
			r := s.rules[ri]
			for _, f := range r.fields {
				scan[f] = true
			}
			ls, ok := necessary(r.cond)
			if !ok {
				rs.always[b/64] |= 1 << (b % 64)
				continue
			}
			for _, l := range ls {
				lits = append(lits, l)
				owners = append(owners, b)
			}
		}
		for f := range scan {
			if f != fUnknown {
				rs.scan = append(rs.scan, f)
			}
		}
		slices.Sort(rs.scan)
		rs.ac = buildAutomaton(lits, owners, words)
	}
	s.cand = make([]uint64, maxWords)
	return s
}

// Rules returns the rules of the set, in order.
func (s *Set) Rules() []*Rule { return slices.Clone(s.rules) }

// Detectors returns one detector per rule, in order, for a
// detectors.Engine. Unrouted rules are left out.
func (s *Set) Detectors() []detectors.Detector {
	var out []detectors.Detector
	for i, r := range s.rules {
		if r.route == routeNone && !s.naive {
			continue
		}
		out = append(out, &ruleDetector{s: s, i: i})
	}
	return out
}

// prepare readies the set for a new event.
func (s *Set) prepare(ev *ecs.Event) {
	r := eventRoute(ev)
	s.ctx.reset(ev, r)
	if s.naive {
		return
	}
	rs := s.route[r]
	if rs == nil {
		return
	}
	copy(s.cand, rs.always)
	for _, f := range rs.scan {
		v, _ := s.ctx.value(f, false)
		if !rs.ac.scan(v, s.cand) {
			// Non-ASCII text: the automaton only folds ASCII case, so
			// let every rule of the route run.
			for i := range s.cand {
				s.cand[i] = ^uint64(0)
			}
			return
		}
	}
}

// Batch returns the set as a detectors.Batch of its routed rules (every
// rule in naive mode), for detectors.Engine.AddBatch: the fast way to run
// a Set, evaluating only the rules the prefilter lets through.
func (s *Set) Batch() detectors.Batch {
	b := &batch{s: s, index: make([]int, len(s.rules))}
	for i, r := range s.rules {
		b.index[i] = -1
		if r.route == routeNone && !s.naive {
			continue
		}
		b.index[i] = len(b.rules)
		b.rules = append(b.rules, s.metas[i])
	}
	return b
}

type batch struct {
	s     *Set
	rules []detectors.Rule
	index []int // Set rule index → batch rule index
}

func (b *batch) Rules() []detectors.Rule { return b.rules }

func (b *batch) DetectAll(ev *ecs.Event, dst []detectors.Match) []detectors.Match {
	s := b.s
	s.prepare(ev)
	s.last = len(s.rules) // the next ruleDetector call prepares again
	if s.naive {
		for i, r := range s.rules {
			if r.cond.eval(&s.ctx) {
				dst = append(dst, detectors.Match{Rule: b.index[i], Finding: detectors.Finding{Summary: summary(r, ev)}})
			}
		}
		return dst
	}
	rs := s.route[s.ctx.route]
	if rs == nil {
		return dst
	}
	for w := range (len(rs.rules) + 63) / 64 {
		word := s.cand[w]
		for word != 0 {
			bit := w*64 + bits.TrailingZeros64(word)
			word &= word - 1
			if bit >= len(rs.rules) {
				break
			}
			i := rs.rules[bit]
			r := s.rules[i]
			if r.cond.eval(&s.ctx) {
				dst = append(dst, detectors.Match{Rule: b.index[i], Finding: detectors.Finding{Summary: summary(r, ev)}})
			}
		}
	}
	return dst
}

// ruleDetector runs one rule of a Set.
type ruleDetector struct {
	s *Set
	i int
}

func (d *ruleDetector) Rule() detectors.Rule { return d.s.metas[d.i] }

func (d *ruleDetector) Detect(ev *ecs.Event) (detectors.Finding, bool) {
	s := d.s
	if ev != s.ctx.ev || d.i <= s.last {
		s.prepare(ev)
	}
	s.last = d.i
	r := s.rules[d.i]
	if !s.naive {
		if r.route != s.ctx.route || r.route == routeNone {
			return detectors.Finding{}, false
		}
		b := s.bit[d.i]
		if s.cand[b/64]&(1<<(b%64)) == 0 {
			return detectors.Finding{}, false
		}
	}
	if !r.cond.eval(&s.ctx) {
		return detectors.Finding{}, false
	}
	return detectors.Finding{Summary: summary(r, ev)}, true
}

// maxSummaryCommandLen bounds the command line quoted in a summary.
const maxSummaryCommandLen = 200

func summary(r *Rule, ev *ecs.Event) string {
	var what string
	p := ev.Process
	switch {
	case ev.File != nil && p != nil:
		verb := "changed"
		switch ev.Event.Type {
		case ecs.TypeCreation:
			verb = "created"
		case ecs.TypeDeletion:
			verb = "deleted"
		}
		what = fmt.Sprintf("%s (pid %d) %s %s", p.Executable, p.PID, verb, ev.File.Path)
	case ev.File != nil:
		what = "file " + ev.File.Path
	case ev.Destination != nil && p != nil:
		what = fmt.Sprintf("%s (pid %d) connected to %s port %d", p.Executable, p.PID, ev.Destination.IP, ev.Destination.Port)
	case p != nil:
		cmd := p.CommandLine
		if len(cmd) > maxSummaryCommandLen {
			cmd = cmd[:maxSummaryCommandLen] + "…"
		}
		cmd = strings.ToValidUTF8(cmd, "?")
		what = fmt.Sprintf("%s (pid %d) ran %q", p.Executable, p.PID, cmd)
	default:
		what = "an event of category " + ev.Event.Category
	}
	return fmt.Sprintf("Sigma rule %q matched: %s.", r.Title, what)
}

// necessary returns strings, lower-cased, at least one of which occurs
// in the event's fields whenever n matches; ok is false when there is no
// such set (a negation, a regular expression, a number).
func necessary(n node) ([]string, bool) {
	switch n := n.(type) {
	case *fieldNode:
		if n.neq {
			return nil, false
		}
		if n.all {
			var best string
			for _, m := range n.ms {
				if l, ok := m.literal(); ok && len(l) > len(best) {
					best = l
				}
			}
			if best == "" {
				return nil, false
			}
			return []string{best}, true
		}
		var out []string
		for _, m := range n.ms {
			l, ok := m.literal()
			if !ok {
				return nil, false
			}
			out = append(out, l)
		}
		return dedupe(out), true
	case *andNode:
		var best []string
		found := false
		for _, x := range n.xs {
			ls, ok := necessary(x)
			if !ok {
				continue
			}
			if !found || better(ls, best) {
				best, found = ls, true
			}
		}
		return best, found
	case *orNode:
		var out []string
		for _, x := range n.xs {
			ls, ok := necessary(x)
			if !ok {
				return nil, false
			}
			out = append(out, ls...)
		}
		return dedupe(out), true
	}
	return nil, false
}

// better prefers the literal set whose shortest literal is longer (fewer
// chance hits), then the smaller set.
func better(a, b []string) bool {
	ma, mb := minLen(a), minLen(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func minLen(ls []string) int {
	m := -1
	for _, l := range ls {
		if m < 0 || len(l) < m {
			m = len(l)
		}
	}
	return m
}

func dedupe(ls []string) []string {
	slices.Sort(ls)
	return slices.Compact(ls)
}
