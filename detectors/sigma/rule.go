package sigma

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cordon-edr/cordon/detectors"
)

// Rule is one compiled Sigma rule.
type Rule struct {
	Title          string
	ID             string
	Status         string
	Description    string
	Author         string
	Date           string
	Modified       string
	Level          string
	License        string
	References     []string
	Tags           []string
	FalsePositives []string
	Logsource      Logsource

	// File and Line locate the rule's document.
	File string
	Line int
	// Warnings are things that compile but will not work as the author
	// may expect on Cordon's events (unmapped fields, an unrouted
	// logsource).
	Warnings []string

	route  route
	cond   node
	fields []fieldID // fields the rule reads, sorted
}

// Logsource is the rule's logsource section.
type Logsource struct {
	Category string
	Product  string
	Service  string
}

// Routed reports whether Cordon's events can reach the rule; when not,
// the reason says why.
func (r *Rule) Routed() (bool, string) {
	if r.route != routeNone {
		return true, ""
	}
	ls := r.Logsource
	switch {
	case ls.Product != "" && ls.Product != "linux":
		return false, fmt.Sprintf("product %q is not linux", ls.Product)
	case ls.Service != "":
		return false, fmt.Sprintf("service %q has no Cordon event source", ls.Service)
	default:
		return false, fmt.Sprintf("category %q has no Cordon event source", ls.Category)
	}
}

// Route names the events the rule runs on: "process", "file",
// "file_delete", "network", or "" when none.
func (r *Rule) Route() string { return routeNames[r.route] }

// Meta returns the rule's metadata in the form findings carry.
// defaultLicense applies when the rule names none.
func (r *Rule) Meta(defaultLicense string) detectors.Rule {
	version := r.Modified
	if version == "" {
		version = "1"
	}
	license := r.License
	if license == "" {
		license = defaultLicense
	}
	tactics, techniques := Attack(r.Tags)
	return detectors.Rule{
		ID:         r.ID,
		Name:       r.Title,
		Version:    version,
		Author:     r.Author,
		License:    license,
		References: append([]string(nil), r.References...),
		Severity:   Severity(r.Level),
		Tactics:    tactics,
		Techniques: techniques,
	}
}

var severities = map[string]string{
	"":              detectors.SeverityMedium,
	"informational": detectors.SeverityLow,
	"low":           detectors.SeverityLow,
	"medium":        detectors.SeverityMedium,
	"high":          detectors.SeverityHigh,
	"critical":      detectors.SeverityCritical,
}

// Severity maps a Sigma level onto a finding severity: informational and
// low give low; no level gives medium.
func Severity(level string) string {
	if s, ok := severities[level]; ok {
		return s
	}
	return detectors.SeverityMedium
}

// compileDetection compiles the detection section.
func (r *Rule) compileDetection(n *yaml.Node) error {
	kv, err := mapping(n, "detection")
	if err != nil {
		return err
	}
	searches := map[string]node{}
	var names []string
	var condNode *yaml.Node
	fields := map[fieldID]bool{}
	unknown := map[string]bool{}
	for _, p := range kv {
		k, v := p[0], p[1]
		switch k.Value {
		case "condition":
			condNode = v
			continue
		case "timeframe":
			// Only meaningful with a correlation, which the condition
			// check below refuses.
			continue
		}
		s, err := compileSearch(k.Value, v, fields, unknown)
		if err != nil {
			return err
		}
		searches[k.Value] = s
		names = append(names, k.Value)
	}
	if condNode == nil {
		return errAt(n, "detection: missing condition")
	}
	var conds []string
	switch condNode.Kind {
	case yaml.ScalarNode:
		conds = []string{condNode.Value}
	case yaml.SequenceNode:
		for _, c := range condNode.Content {
			if c.Kind != yaml.ScalarNode {
				return errAt(c, "condition: want a string")
			}
			conds = append(conds, c.Value)
		}
	default:
		return errAt(condNode, "condition: want a string or a list of strings")
	}
	if len(conds) == 0 {
		return errAt(condNode, "condition is empty")
	}
	var alts []node
	for _, c := range conds {
		nd, err := parseCondition(c, searches, names)
		if err != nil {
			return wrapAt(condNode, err, "condition %q", c)
		}
		alts = append(alts, nd)
	}
	if len(alts) == 1 {
		r.cond = alts[0]
	} else {
		r.cond = &orNode{alts}
	}
	for f := range fields {
		r.fields = append(r.fields, f)
	}
	sort.Slice(r.fields, func(i, j int) bool { return r.fields[i] < r.fields[j] })
	var unk []string
	for f := range unknown {
		unk = append(unk, f)
	}
	sort.Strings(unk)
	for _, f := range unk {
		r.Warnings = append(r.Warnings, fmt.Sprintf("field %s is not in Cordon's events: it never has a value", f))
	}
	return nil
}

// finish adds the warnings that depend on the route.
func (r *Rule) finish() {
	if r.route == routeNone {
		// Unmapped fields are expected for logsources Cordon has no
		// events for; say only that the rule is not routed.
		r.Warnings = nil
		_, why := r.Routed()
		r.Warnings = append(r.Warnings, "not routed: "+why)
	}
	for _, f := range r.fields {
		if f == fDestinationHostname && r.route != routeNone {
			r.Warnings = append(r.Warnings, "field DestinationHostname is not in Cordon's events yet: it never has a value")
		}
	}
}

// compileSearch compiles one search identifier's definition.
func compileSearch(name string, n *yaml.Node, fields map[fieldID]bool, unknown map[string]bool) (node, error) {
	switch n.Kind {
	case yaml.MappingNode:
		return compileMap(name, n, fields, unknown)
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return nil, errAt(n, "search %s: empty list", name)
		}
		maps := 0
		for _, c := range n.Content {
			if c.Kind == yaml.AliasNode {
				c = c.Alias
			}
			if c.Kind == yaml.MappingNode {
				maps++
			}
		}
		if maps == 0 {
			m, err := compileValues(name, "", n, nil, fields, unknown, true)
			if err != nil {
				return nil, err
			}
			return m, nil
		}
		if maps != len(n.Content) {
			return nil, errAt(n, "search %s: a list must hold either maps or keywords, not both", name)
		}
		var alts []node
		for _, c := range n.Content {
			m, err := compileMap(name, c, fields, unknown)
			if err != nil {
				return nil, err
			}
			alts = append(alts, m)
		}
		if len(alts) == 1 {
			return alts[0], nil
		}
		return &orNode{alts}, nil
	case yaml.ScalarNode:
		return compileValues(name, "", n, nil, fields, unknown, true)
	}
	return nil, errAt(n, "search %s: want a map, a list of maps or a list of keywords", name)
}

// compileMap compiles a map of field conditions, all of which must hold.
func compileMap(name string, n *yaml.Node, fields map[fieldID]bool, unknown map[string]bool) (node, error) {
	kv, err := mapping(n, "search "+name)
	if err != nil {
		return nil, err
	}
	if len(kv) == 0 {
		return nil, errAt(n, "search %s: empty map", name)
	}
	var all []node
	for _, p := range kv {
		parts := strings.Split(p[0].Value, "|")
		nd, err := compileValues(name, parts[0], p[1], parts[1:], fields, unknown, parts[0] == "")
		if err != nil {
			if _, ok := err.(*lineError); !ok {
				err = errAt(p[0], "%v", err)
			}
			return nil, err
		}
		all = append(all, nd)
	}
	if len(all) == 1 {
		return all[0], nil
	}
	return &andNode{all}, nil
}
