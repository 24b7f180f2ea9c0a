package ioc

import (
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// RuleID is the rule of every indicator finding.
const RuleID = "cordon-ioc"

// Rule describes the findings of a Matcher.
var Rule = detectors.Rule{
	ID:       RuleID,
	Name:     "Known indicator of compromise",
	Version:  "1",
	Author:   "Cordon",
	License:  "Apache-2.0",
	Severity: DefaultSeverity,
}

var severityRank = map[string]int{"low": 1, "medium": 2, "high": 3, "critical": 4}

// Hit is one indicator matching one field of an event.
type Hit struct {
	Indicator Indicator
	// Field is the event field that matched, e.g. "file.hash.sha256".
	Field string
	// Seen is the field's value.
	Seen string
}

func (h Hit) String() string {
	s := fmt.Sprintf("%s %s", h.Indicator.Type, h.Indicator.Value)
	if h.Indicator.Type == TypeCIDR || h.Seen != h.Indicator.Value {
		s += fmt.Sprintf(" (%s %s)", h.Field, h.Seen)
	} else {
		s += fmt.Sprintf(" (%s)", h.Field)
	}
	if h.Indicator.Note != "" {
		s += fmt.Sprintf(" %q", h.Indicator.Note)
	}
	return s
}

// Matcher matches events against an indicator set. Every lookup is a
// map read: by value for hashes, paths, names and addresses, and by the
// masked address for each prefix length the set's CIDRs use. It keeps no
// state, so one Matcher may serve several goroutines.
type Matcher struct {
	version string
	strs    map[string]map[string]Indicator // type → value → indicator
	ips     map[netip.Addr]Indicator
	cidrs   map[netip.Prefix]Indicator
	bits4   []int // prefix lengths of the IPv4 CIDRs
	bits6   []int
	list    []Indicator
}

// NewMatcher checks and normalizes inds (as they come from the wire) and
// returns a Matcher over them, or an error naming the first bad one.
func NewMatcher(version string, inds []Indicator) (*Matcher, error) {
	m := &Matcher{version: version, strs: map[string]map[string]Indicator{}, ips: map[netip.Addr]Indicator{}, cidrs: map[netip.Prefix]Indicator{}}
	seen := map[string]bool{}
	for i, ind := range inds {
		n, err := Normalize(ind)
		if err != nil {
			return nil, fmt.Errorf("indicator %d: %w", i+1, err)
		}
		if seen[n.Key()] {
			continue
		}
		seen[n.Key()] = true
		m.list = append(m.list, n)
		switch n.Type {
		case TypeIP:
			m.ips[netip.MustParseAddr(n.Value)] = n
		case TypeCIDR:
			p := netip.MustParsePrefix(n.Value)
			m.cidrs[p] = n
			if p.Addr().Is4() {
				m.bits4 = addBits(m.bits4, p.Bits())
			} else {
				m.bits6 = addBits(m.bits6, p.Bits())
			}
		default:
			if m.strs[n.Type] == nil {
				m.strs[n.Type] = map[string]Indicator{}
			}
			m.strs[n.Type][n.Value] = n
		}
	}
	return m, nil
}

func addBits(bits []int, b int) []int {
	for _, x := range bits {
		if x == b {
			return bits
		}
	}
	return append(bits, b)
}

// Has reports whether the set holds an indicator of ind's type and value.
func (m *Matcher) Has(ind Indicator) bool {
	n, err := Normalize(ind)
	if err != nil || m == nil {
		return false
	}
	var ok bool
	switch n.Type {
	case TypeIP:
		_, ok = m.ips[netip.MustParseAddr(n.Value)]
	case TypeCIDR:
		_, ok = m.cidrs[netip.MustParsePrefix(n.Value)]
	default:
		_, ok = m.strs[n.Type][n.Value]
	}
	return ok
}

// Indicators returns the set's indicators, normalized, in their order.
func (m *Matcher) Indicators() []Indicator { return append([]Indicator(nil), m.list...) }

// Version is the set's version.
func (m *Matcher) Version() string { return m.version }

// Len is the number of indicators.
func (m *Matcher) Len() int { return len(m.list) }

// Match returns the indicators ev matches, nil for none.
func (m *Matcher) Match(ev *ecs.Event) []Hit {
	if m == nil || len(m.list) == 0 || ev == nil {
		return nil
	}
	var hits []Hit
	look := func(typ, field, value string) {
		if value == "" {
			return
		}
		if ind, ok := m.strs[typ][value]; ok {
			hits = append(hits, Hit{Indicator: ind, Field: field, Seen: value})
		}
	}
	if f := ev.File; f != nil {
		if f.Hash != nil && f.Hash.SHA256 != "" {
			h := f.Hash.SHA256
			if _, ok := m.strs[TypeSHA256]; ok && hasUpper(h) {
				h = strings.ToLower(h)
			}
			look(TypeSHA256, "file.hash.sha256", h)
		}
		look(TypePath, "file.path", f.Path)
		name := f.Name
		if name == "" && f.Path != "" {
			name = path.Base(f.Path)
		}
		look(TypeFilename, "file.name", name)
	}
	if p := ev.Process; p != nil {
		look(TypePath, "process.executable", p.Executable)
		look(TypeFilename, "process.name", p.Name)
	}
	if len(m.ips) == 0 && len(m.cidrs) == 0 {
		return hits
	}
	if ev.Destination != nil {
		hits = m.matchAddr(hits, "destination.ip", ev.Destination.IP)
	}
	if ev.Source != nil {
		hits = m.matchAddr(hits, "source.ip", ev.Source.IP)
	}
	return hits
}

func (m *Matcher) matchAddr(hits []Hit, field, ip string) []Hit {
	if ip == "" {
		return hits
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return hits
	}
	a = a.Unmap().WithZone("")
	if ind, ok := m.ips[a]; ok {
		hits = append(hits, Hit{Indicator: ind, Field: field, Seen: a.String()})
	}
	bits := m.bits6
	if a.Is4() {
		bits = m.bits4
	}
	for _, b := range bits {
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if ind, ok := m.cidrs[p]; ok {
			hits = append(hits, Hit{Indicator: ind, Field: field, Seen: a.String()})
		}
	}
	return hits
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// Finding builds the finding for the hits on ev: the highest severity of
// the indicators, and a summary naming each indicator and its note.
// retro marks a match found in the history after the set changed.
func (m *Matcher) Finding(ev *ecs.Event, hits []Hit, retro bool) detectors.Finding {
	sev := ""
	parts := make([]string, len(hits))
	for i, h := range hits {
		if severityRank[h.Indicator.Severity] > severityRank[sev] {
			sev = h.Indicator.Severity
		}
		parts[i] = h.String()
	}
	prefix := "Indicator"
	if retro {
		prefix = "Retro-hunt: indicator"
	}
	if len(hits) > 1 {
		prefix += "s"
	}
	summary := fmt.Sprintf("%s %s matched %s (indicator set %s)", prefix, strings.Join(parts, ", "), subject(ev), m.version)
	return detectors.Finding{Severity: sev, Summary: summary}
}

// subject names what the event is about, for the summary.
func subject(ev *ecs.Event) string {
	switch {
	case ev.File != nil && ev.File.Path != "":
		s := "file " + ev.File.Path
		if ev.Process != nil && ev.Process.PID != 0 {
			s += fmt.Sprintf(" written by %s (pid %d)", ev.Process.Executable, ev.Process.PID)
		}
		return s
	case ev.Destination != nil && ev.Destination.IP != "":
		s := fmt.Sprintf("connection to %s", netip.AddrPortFrom(parseAddr(ev.Destination.IP), uint16(ev.Destination.Port)))
		if ev.Process != nil && ev.Process.PID != 0 {
			s += fmt.Sprintf(" by %s (pid %d)", ev.Process.Executable, ev.Process.PID)
		}
		return s
	case ev.Process != nil:
		return fmt.Sprintf("process %s (pid %d)", ev.Process.Executable, ev.Process.PID)
	}
	return "an event"
}

func parseAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}

// Rules implements detectors.Batch.
func (m *Matcher) Rules() []detectors.Rule { return []detectors.Rule{Rule} }

// DetectAll implements detectors.Batch: one match when any indicator
// matches ev.
func (m *Matcher) DetectAll(ev *ecs.Event, dst []detectors.Match) []detectors.Match {
	hits := m.Match(ev)
	if len(hits) == 0 {
		return dst
	}
	return append(dst, detectors.Match{Rule: 0, Finding: m.Finding(ev, hits, false)})
}
