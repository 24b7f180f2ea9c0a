package stateful

import (
	"fmt"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// RuleIDSpawnBurst is the id of the SpawnBurst rule.
const RuleIDSpawnBurst = "9f1e2d3c-4b5a-4697-8a8b-0c1d2e3f4a5b"

// SpawnBurstConfig tunes SpawnBurst; zero fields take defaults.
type SpawnBurstConfig struct {
	// Starts process starts of one program by one user within Window
	// fire the rule (default 300 in 5s).
	Starts int
	Window time.Duration
	// MaxKeys bounds the (user, program) pairs tracked (default 4096).
	MaxKeys int
	Now     func() time.Time
}

// SpawnBurst flags a burst of process starts of one program by one user,
// as a fork bomb or a runaway respawn loop causes. The process sensor
// reports execs, so a bomb that only forks without exec is not seen.
type SpawnBurst struct {
	cfg  SpawnBurstConfig
	keys *lru[*burst]
}

// NewSpawnBurst returns the detector.
func NewSpawnBurst(cfg SpawnBurstConfig) *SpawnBurst {
	if cfg.Starts <= 0 {
		cfg.Starts = 300
	}
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Second
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 4096
	}
	return &SpawnBurst{cfg: cfg, keys: newLRU(cfg.MaxKeys, newBurst)}
}

func (d *SpawnBurst) Rule() detectors.Rule {
	return detectors.Rule{
		ID: RuleIDSpawnBurst, Name: "Process spawning burst (fork bomb)", Version: ruleVersion,
		Author: ruleAuthor, License: ruleLicense, Severity: detectors.SeverityMedium,
		References: []string{"https://attack.mitre.org/techniques/T1499/001/"},
		Tactics:    []string{tacticImpact}, Techniques: []string{"T1499.001"},
	}
}

func (d *SpawnBurst) Detect(ev *ecs.Event) (detectors.Finding, bool) {
	p := ev.Process
	if ev.Event.Category != ecs.CategoryProcess || ev.Event.Type != ecs.TypeStart || p == nil || p.Executable == "" {
		return detectors.Finding{}, false
	}
	t := clock(d.cfg.Now).at(ev)
	b := d.keys.get(p.User.ID + "\x00" + p.Executable)
	n := b.add(processKey(ev), t, d.cfg.Window, 2*d.cfg.Starts)
	if n < d.cfg.Starts || t.Before(b.quietTo) {
		return detectors.Finding{}, false
	}
	b.quietTo = t.Add(d.cfg.Window)
	user := p.User.Name
	if user == "" {
		user = "uid " + p.User.ID
	}
	return detectors.Finding{Summary: fmt.Sprintf("%s started %d times within %s as %s.", p.Executable, n, d.cfg.Window, user)}, true
}
