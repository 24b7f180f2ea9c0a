package stateful

import (
	"fmt"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// RuleIDFirstSeen is the id of the FirstSeen rule.
const RuleIDFirstSeen = "6e7f8091-a2b3-4c4d-8e5f-60718293a4b5"

// FirstSeenConfig tunes FirstSeen; zero fields take defaults.
type FirstSeenConfig struct {
	// Learning is how long, from the first event, executables are only
	// learned (default 24h).
	Learning time.Duration
	// MaxKnown bounds the executables remembered (default 65536); past
	// it the least recently run are forgotten.
	MaxKnown int
	Now      func() time.Time
}

// FirstSeen learns the executables that run on the host during a
// learning period, then flags each executable it has not seen before,
// once. An executable is its path and, when the sensor hashed it, its
// SHA-256, so a replaced binary counts as new.
type FirstSeen struct {
	cfg   FirstSeenConfig
	since time.Time
	known *lru[struct{}]
}

// NewFirstSeen returns the detector.
func NewFirstSeen(cfg FirstSeenConfig) *FirstSeen {
	if cfg.Learning <= 0 {
		cfg.Learning = 24 * time.Hour
	}
	if cfg.MaxKnown <= 0 {
		cfg.MaxKnown = 65536
	}
	return &FirstSeen{cfg: cfg, known: newLRU(cfg.MaxKnown, func() struct{} { return struct{}{} })}
}

func (d *FirstSeen) Rule() detectors.Rule {
	return detectors.Rule{
		ID: RuleIDFirstSeen, Name: "Executable first seen on this host", Version: ruleVersion,
		Author: ruleAuthor, License: ruleLicense, Severity: detectors.SeverityLow,
		References: []string{"https://attack.mitre.org/techniques/T1204/002/"},
		Tactics:    []string{tacticExecution}, Techniques: []string{"T1204.002"},
	}
}

// Learning reports whether the detector is still learning at t.
func (d *FirstSeen) Learning(t time.Time) bool {
	return d.since.IsZero() || t.Sub(d.since) < d.cfg.Learning
}

func (d *FirstSeen) Detect(ev *ecs.Event) (detectors.Finding, bool) {
	p := ev.Process
	if ev.Event.Category != ecs.CategoryProcess || ev.Event.Type != ecs.TypeStart || p == nil || p.Executable == "" {
		return detectors.Finding{}, false
	}
	t := clock(d.cfg.Now).at(ev)
	if d.since.IsZero() {
		d.since = t
	}
	key := p.Executable
	if ev.File != nil && ev.File.Hash != nil && ev.File.Hash.SHA256 != "" {
		key += "\x00" + ev.File.Hash.SHA256
	}
	_, seen := d.known.m[key]
	d.known.get(key)
	if seen || d.Learning(t) {
		return detectors.Finding{}, false
	}
	return detectors.Finding{Summary: fmt.Sprintf("%s (pid %d) ran for the first time since learning began on %s.",
		p.Executable, p.PID, d.since.UTC().Format(time.RFC3339))}, true
}
