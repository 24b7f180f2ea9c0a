package stateful

import (
	"fmt"
	"math"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// RuleIDBeacon is the id of the Beacon rule.
const RuleIDBeacon = "4d5e6f70-8192-4a3b-8c4d-5e6f708192a3"

// BeaconConfig tunes Beacon; zero fields take defaults.
type BeaconConfig struct {
	// Connections to one destination at regular intervals fire the rule
	// (default 8) when their intervals vary by at most Jitter of the
	// mean (default 0.1) and the mean lies within [MinPeriod, MaxPeriod]
	// (default 5s to 1h).
	Connections int
	Jitter      float64
	MinPeriod   time.Duration
	MaxPeriod   time.Duration
	// MaxKeys bounds the (program, destination) pairs tracked (default
	// 8192).
	MaxKeys int
	Now     func() time.Time
}

// Beacon flags a program that connects out to the same destination at a
// steady period, as command-and-control implants check in. It fires once
// per program and destination, then again only after as many periods
// again.
type Beacon struct {
	cfg  BeaconConfig
	keys *lru[*beaconState]
}

type beaconState struct {
	times   []time.Time
	quietTo time.Time
}

// NewBeacon returns the detector.
func NewBeacon(cfg BeaconConfig) *Beacon {
	if cfg.Connections < 3 {
		cfg.Connections = 8
	}
	if cfg.Jitter <= 0 {
		cfg.Jitter = 0.1
	}
	if cfg.MinPeriod <= 0 {
		cfg.MinPeriod = 5 * time.Second
	}
	if cfg.MaxPeriod <= 0 {
		cfg.MaxPeriod = time.Hour
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 8192
	}
	return &Beacon{cfg: cfg, keys: newLRU(cfg.MaxKeys, func() *beaconState { return &beaconState{} })}
}

func (d *Beacon) Rule() detectors.Rule {
	return detectors.Rule{
		ID: RuleIDBeacon, Name: "Periodic outbound connections (beaconing)", Version: ruleVersion,
		Author: ruleAuthor, License: ruleLicense, Severity: detectors.SeverityMedium,
		References: []string{"https://attack.mitre.org/techniques/T1071/", "https://attack.mitre.org/techniques/T1029/"},
		Tactics:    []string{tacticCommandControl}, Techniques: []string{"T1071", "T1029"},
	}
}

func (d *Beacon) Detect(ev *ecs.Event) (detectors.Finding, bool) {
	if ev.Event.Category != ecs.CategoryNetwork || ev.Destination == nil || ev.Destination.IP == "" || ev.Process == nil {
		return detectors.Finding{}, false
	}
	if ev.Network != nil && (ev.Network.Direction == "ingress" || ev.Network.Direction == "inbound") {
		return detectors.Finding{}, false
	}
	t := clock(d.cfg.Now).at(ev)
	s := d.keys.get(ev.Process.Executable + "\x00" + ev.Destination.IP + "\x00" + itoa(ev.Destination.Port))
	if n := len(s.times); n > 0 && t.Before(s.times[n-1]) {
		s.times = s.times[:0] // the clock went back: start over
	}
	s.times = append(s.times, t)
	if len(s.times) > d.cfg.Connections {
		s.times = append(s.times[:0], s.times[len(s.times)-d.cfg.Connections:]...)
	}
	if len(s.times) < d.cfg.Connections || t.Before(s.quietTo) {
		return detectors.Finding{}, false
	}
	mean, sd := intervalStats(s.times)
	if mean < d.cfg.MinPeriod.Seconds() || mean > d.cfg.MaxPeriod.Seconds() || sd > d.cfg.Jitter*mean {
		return detectors.Finding{}, false
	}
	period := time.Duration(mean * float64(time.Second)).Round(time.Millisecond)
	s.quietTo = t.Add(time.Duration(d.cfg.Connections) * period)
	return detectors.Finding{Summary: fmt.Sprintf("%s (pid %d) connected to %s port %d %d times every %s (±%.0f%%).",
		ev.Process.Executable, ev.Process.PID, ev.Destination.IP, ev.Destination.Port, len(s.times), period, 100*sd/mean)}, true
}

// intervalStats returns the mean and standard deviation, in seconds, of
// the intervals between times.
func intervalStats(times []time.Time) (mean, sd float64) {
	n := float64(len(times) - 1)
	for i := 1; i < len(times); i++ {
		mean += times[i].Sub(times[i-1]).Seconds()
	}
	mean /= n
	for i := 1; i < len(times); i++ {
		d := times[i].Sub(times[i-1]).Seconds() - mean
		sd += d * d
	}
	return mean, math.Sqrt(sd / n)
}
