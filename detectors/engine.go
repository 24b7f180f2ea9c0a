package detectors

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// Severities, lowest first.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Rule describes what a detector looks for. It travels with every finding
// the detector produces.
type Rule struct {
	// ID is stable across versions of the rule (a UUID).
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Author  string `json:"author"`
	License string `json:"license"`
	// References are URLs: write-ups of the behaviour and the public rules
	// this one follows.
	References []string `json:"references,omitempty"`
	// Severity is the default severity of the rule's findings: low,
	// medium, high or critical.
	Severity string `json:"severity"`
	// Tactics and Techniques are ATT&CK ids, e.g. TA0002 and T1059.004.
	Tactics    []string `json:"tactics,omitempty"`
	Techniques []string `json:"techniques,omitempty"`
}

// Finding is one detection on this host.
type Finding struct {
	Rule       Rule     `json:"rule"`
	Severity   string   `json:"severity"`
	Tactics    []string `json:"tactics,omitempty"`
	Techniques []string `json:"techniques,omitempty"`
	// Summary is one human sentence: what ran, with its pid.
	Summary string `json:"summary"`
	// Evidence holds copies of the events that matched, each with the
	// process ancestry the sensor filled in.
	Evidence []ecs.Event `json:"evidence"`
	// ObservedAt is when the sensor saw the (last) matching event.
	ObservedAt time.Time `json:"observed_at"`
	// DetectedAt is when the engine produced the finding.
	DetectedAt time.Time `json:"detected_at"`
}

// Detector looks at one event at a time. Detect reports whether the event
// matches and, if so, a Finding in which only Summary needs to be set: the
// Engine fills every empty field from the Rule and the event. A detector
// may keep state between calls; the Engine never calls it concurrently.
type Detector interface {
	Rule() Rule
	Detect(ev *ecs.Event) (Finding, bool)
}

// Batch is a set of rules evaluated together so that they share the work
// each event costs (routing, prefilters, normalized field values), as a
// compiled Sigma rule set does. The Engine treats each of its rules like
// a detector of its own.
type Batch interface {
	// Rules returns the batch's rules; Match.Rule indexes it.
	Rules() []Rule
	// DetectAll appends to dst a Match for each rule that ev matches, in
	// rule order, with a Finding as Detector.Detect returns it.
	DetectAll(ev *ecs.Event, dst []Match) []Match
}

// Match is one rule of a Batch matching an event.
type Match struct {
	Rule    int
	Finding Finding
}

// Engine runs a fixed set of detectors and batches over events.
//
// Process must not be called from several goroutines at once, because
// detectors may keep state; ReplaceBatch must be called from the
// goroutine that calls Process; Rules may be called at any time. Run one
// Engine per event stream.
type Engine struct {
	units []unit
	// rules is written only by the goroutine that runs Process (through
	// ReplaceBatch), under mu; Rules reads it under mu from anywhere.
	mu      sync.RWMutex
	rules   []Rule
	now     func() time.Time
	matches []Match // reused by Process
	noise   *noise  // nil when noise control is off

	exceptions []Exception
	excepted   []int
}

// unit is a detector or a batch; first is the index of its first rule.
type unit struct {
	d     Detector
	b     Batch
	first int
}

// NewEngine returns an Engine running ds in order. Its clock is time.Now
// until SetClock replaces it.
func NewEngine(ds ...Detector) *Engine {
	e := &Engine{now: time.Now}
	for _, d := range ds {
		e.units = append(e.units, unit{d: d, first: len(e.rules)})
		e.rules = append(e.rules, d.Rule())
	}
	return e
}

// BatchID names a batch added to an Engine, for ReplaceBatch.
type BatchID int

// AddBatch adds a batch after the detectors and batches already there.
// Call it before the first Process.
func (e *Engine) AddBatch(b Batch) BatchID {
	e.units = append(e.units, unit{b: b, first: len(e.rules)})
	e.rules = append(e.rules, b.Rules()...)
	return BatchID(len(e.units) - 1)
}

// ReplaceBatch puts b in the place of the batch that AddBatch returned
// id for. The change is whole: the next Process runs every rule of b and
// none of the batch it replaced. Call it from the goroutine that calls
// Process, between two calls.
func (e *Engine) ReplaceBatch(id BatchID, b Batch) error {
	i := int(id)
	if i < 0 || i >= len(e.units) || e.units[i].b == nil {
		return fmt.Errorf("detectors: no batch %d to replace", id)
	}
	units := slices.Clone(e.units)
	units[i].b = b
	var rules []Rule
	for j := range units {
		units[j].first = len(rules)
		if units[j].b != nil {
			rules = append(rules, units[j].b.Rules()...)
		} else {
			rules = append(rules, units[j].d.Rule())
		}
	}
	e.mu.Lock()
	e.units, e.rules = units, rules
	e.mu.Unlock()
	return nil
}

// SetClock sets the clock that stamps DetectedAt, and ObservedAt for
// events without a timestamp. Call it before the first Process.
func (e *Engine) SetClock(now func() time.Time) {
	e.now = now
}

// Rules returns the rules of the engine's detectors, in order.
func (e *Engine) Rules() []Rule {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.clone()
	}
	return out
}

// Process runs every detector over ev and returns the findings, in
// detector order; nil when nothing matched. ev is not kept: evidence holds
// deep copies, so the caller may reuse it. With noise control on (see
// SetNoiseWindow) repeats are folded, and the summaries of windows that
// closed are appended.
func (e *Engine) Process(ev *ecs.Event) []Finding {
	if ev == nil {
		return nil
	}
	var out []Finding
	for _, u := range e.units {
		if u.b != nil {
			e.matches = u.b.DetectAll(ev, e.matches[:0])
			for _, m := range e.matches {
				rule := e.rules[u.first+m.Rule]
				if len(e.exceptions) > 0 && e.except(rule.ID, ev, e.now()) {
					continue
				}
				out = append(out, e.complete(m.Finding, rule, ev))
			}
			clear(e.matches)
			continue
		}
		f, ok := u.d.Detect(ev)
		if !ok {
			continue
		}
		rule := e.rules[u.first]
		if len(e.exceptions) > 0 && e.except(rule.ID, ev, e.now()) {
			continue
		}
		out = append(out, e.complete(f, rule, ev))
	}
	if e.noise != nil {
		out = e.noise.filter(out, e.now())
	}
	return out
}

// complete fills what f leaves empty from its rule and the event.
func (e *Engine) complete(f Finding, rule Rule, ev *ecs.Event) Finding {
	f.Rule = rule.clone()
	if f.Severity == "" {
		f.Severity = rule.Severity
	}
	if f.Tactics == nil {
		f.Tactics = slices.Clone(rule.Tactics)
	}
	if f.Techniques == nil {
		f.Techniques = slices.Clone(rule.Techniques)
	}
	if f.Evidence == nil {
		f.Evidence = []ecs.Event{cloneEvent(ev)}
	}
	now := e.now()
	if f.ObservedAt.IsZero() {
		f.ObservedAt = ev.Timestamp
		if f.ObservedAt.IsZero() {
			f.ObservedAt = now
		}
	}
	if f.DetectedAt.IsZero() {
		f.DetectedAt = now
	}
	return f
}

// Proto returns the wire form of f under the given finding id (a UUIDv7
// minted by the agent). The Drill flag is left for the caller to set.
func (f *Finding) Proto(id string) (*protocol.Finding, error) {
	if id == "" {
		return nil, errors.New("detectors: finding id is empty")
	}
	evidence, err := json.Marshal(f.Evidence)
	if err != nil {
		return nil, fmt.Errorf("detectors: encode evidence of rule %s: %w", f.Rule.ID, err)
	}
	return &protocol.Finding{
		Id: id,
		Rule: &protocol.Rule{
			Id:         f.Rule.ID,
			Name:       f.Rule.Name,
			Version:    f.Rule.Version,
			Author:     f.Rule.Author,
			References: slices.Clone(f.Rule.References),
			License:    f.Rule.License,
		},
		Severity:         f.Severity,
		Tactics:          slices.Clone(f.Tactics),
		Techniques:       slices.Clone(f.Techniques),
		Summary:          f.Summary,
		EvidenceJson:     evidence,
		ObservedUnixNano: unixNano(f.ObservedAt),
		DetectedUnixNano: unixNano(f.DetectedAt),
	}, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (r Rule) clone() Rule {
	r.References = slices.Clone(r.References)
	r.Tactics = slices.Clone(r.Tactics)
	r.Techniques = slices.Clone(r.Techniques)
	return r
}

// cloneEvent returns a deep copy of ev.
func cloneEvent(ev *ecs.Event) ecs.Event {
	c := *ev
	if ev.Process != nil {
		p := *ev.Process
		p.Args = slices.Clone(p.Args)
		p.Ancestry = slices.Clone(p.Ancestry)
		if p.Parent != nil {
			parent := *p.Parent
			p.Parent = &parent
		}
		if p.ExitCode != nil {
			code := *p.ExitCode
			p.ExitCode = &code
		}
		c.Process = &p
	}
	if ev.File != nil {
		f := *ev.File
		if f.Hash != nil {
			h := *f.Hash
			f.Hash = &h
		}
		c.File = &f
	}
	if ev.Source != nil {
		s := *ev.Source
		c.Source = &s
	}
	if ev.Destination != nil {
		d := *ev.Destination
		c.Destination = &d
	}
	if ev.Network != nil {
		n := *ev.Network
		c.Network = &n
	}
	if ev.Host != nil {
		h := *ev.Host
		c.Host = &h
	}
	return c
}
