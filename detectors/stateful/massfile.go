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
	// Fresh is how long a file counts as new after the sensor saw it
	// created (default 10m); changing, renaming or deleting a new file
	// destroys no data that was there before, so it does not count.
	// MaxFresh bounds the new files remembered (default 8192, the
	// oldest forgotten first).
	Fresh    time.Duration
	MaxFresh int
	// Now is the clock for events without a timestamp.
	Now func() time.Time
}

// MassFileChange flags a process that changes, renames or deletes many
// distinct files in a short window, as ransomware encrypting a disk does.
// It fires once per process per window.
//
// Files created in the last Fresh period do not count, whoever created
// them: a compiler's or a package manager's work folder, or a test
// suite's temporary files, churn through hundreds of files a second
// that they made themselves, which ransomware does not need to do to
// the files it holds to ransom. Those files were there before: they are
// rewritten in place (a change), renamed (file.path is the old name) or
// deleted once their encrypted copy is written (the copy is a creation,
// which never counts).
type MassFileChange struct {
	cfg     MassFileChangeConfig
	procs   *lru[*burst]
	created *lru[*time.Time] // path → when the sensor saw it created
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
	if cfg.Fresh <= 0 {
		cfg.Fresh = 10 * time.Minute
	}
	if cfg.MaxFresh <= 0 {
		cfg.MaxFresh = 8192
	}
	return &MassFileChange{
		cfg:     cfg,
		procs:   newLRU(cfg.MaxProcesses, newBurst),
		created: newLRU(cfg.MaxFresh, func() *time.Time { return new(time.Time) }),
	}
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
	t := clock(d.cfg.Now).at(ev)
	if ev.Event.Type == ecs.TypeCreation {
		*d.created.get(ev.File.Path) = t
		return detectors.Finding{}, false
	}
	// A rename is a change of its old name.
	if ev.Event.Type != ecs.TypeChange && ev.Event.Type != ecs.TypeDeletion {
		return detectors.Finding{}, false
	}
	if c, ok := d.created.peek(ev.File.Path); ok {
		if t.Sub(*c) <= d.cfg.Fresh {
			if ev.Event.Type == ecs.TypeDeletion || ev.Event.Action == ecs.ActionRenamed {
				// The path is gone; made again, it is new again.
				d.created.remove(ev.File.Path)
			}
			return detectors.Finding{}, false
		}
		d.created.remove(ev.File.Path)
	}
	key := processKey(ev)
	if key == "" {
		return detectors.Finding{}, false
	}
	b := d.procs.get(key)
	n := b.add(ev.File.Path, t, d.cfg.Window, 2*d.cfg.Files)
	if n < d.cfg.Files || t.Before(b.quietTo) {
		return detectors.Finding{}, false
	}
	b.quietTo = t.Add(d.cfg.Window)
	return detectors.Finding{Summary: fmt.Sprintf("%s (pid %d) changed, renamed or deleted %d files within %s, the last %s.",
		ev.Process.Executable, ev.Process.PID, n, d.cfg.Window, ev.File.Path)}, true
}
