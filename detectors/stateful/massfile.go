package stateful

import (
	"fmt"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// RuleIDMassFileChange is the id of the MassFileChange rule.
const RuleIDMassFileChange = "b7e3c2a1-5f0d-4e8b-9c61-2d4a7f8e0b13"

// MassFileChangeConfig tunes MassFileChange; zero fields take defaults.
type MassFileChangeConfig struct {
	// Files distinct files changed, renamed or deleted by one process
	// within Window fire the rule (default 200 in 10s).
	Files  int
	Window time.Duration
	// MaxProcesses bounds the processes tracked (default 4096).
	MaxProcesses int
	// Now is the clock for events without a timestamp.
	Now func() time.Time
}

// MassFileChange flags a process that changes, renames or deletes many
// distinct files in a short window, as ransomware encrypting a disk does.
// It fires once per process per window.
type MassFileChange struct {
	cfg   MassFileChangeConfig
	procs *lru[*burst]
}

// NewMassFileChange returns the detector.
func NewMassFileChange(cfg MassFileChangeConfig) *MassFileChange {
	if cfg.Files <= 0 {
		cfg.Files = 200
	}
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Second
	}
	if cfg.MaxProcesses <= 0 {
		cfg.MaxProcesses = 4096
	}
	return &MassFileChange{cfg: cfg, procs: newLRU(cfg.MaxProcesses, newBurst)}
}

func (d *MassFileChange) Rule() detectors.Rule {
	return detectors.Rule{
		ID: RuleIDMassFileChange, Name: "Mass file modification by one process", Version: ruleVersion,
		Author: ruleAuthor, License: ruleLicense, Severity: detectors.SeverityHigh,
		References: []string{"https://attack.mitre.org/techniques/T1486/"},
		Tactics:    []string{tacticImpact}, Techniques: []string{"T1486", "T1485"},
	}
}

func (d *MassFileChange) Detect(ev *ecs.Event) (detectors.Finding, bool) {
	if ev.Event.Category != ecs.CategoryFile || ev.File == nil || ev.File.Path == "" {
		return detectors.Finding{}, false
	}
	if ev.Event.Type != ecs.TypeChange && ev.Event.Type != ecs.TypeDeletion && ev.Event.Action != "rename" {
		return detectors.Finding{}, false
	}
	key := processKey(ev)
	if key == "" {
		return detectors.Finding{}, false
	}
	t := clock(d.cfg.Now).at(ev)
	b := d.procs.get(key)
	n := b.add(ev.File.Path, t, d.cfg.Window, 2*d.cfg.Files)
	if n < d.cfg.Files || t.Before(b.quietTo) {
		return detectors.Finding{}, false
	}
	b.quietTo = t.Add(d.cfg.Window)
	return detectors.Finding{Summary: fmt.Sprintf("%s (pid %d) changed, renamed or deleted %d files within %s, the last %s.",
		ev.Process.Executable, ev.Process.PID, n, d.cfg.Window, ev.File.Path)}, true
}
