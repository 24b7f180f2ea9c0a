package stateful

import (
	"fmt"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

// RuleIDPortScan is the id of the PortScan rule.
const RuleIDPortScan = "2c9d4e6f-8a1b-4c3d-9e5f-7a0b1c2d3e4f"

// PortScanConfig tunes PortScan; zero fields take defaults.
type PortScanConfig struct {
	// Ports distinct ports on one host within Window fire the rule
	// (default 20 in 60s): a vertical scan.
	Ports int
	// Hosts distinct hosts on one port within Window fire the rule
	// (default 64): a horizontal sweep.
	Hosts  int
	Window time.Duration
	// MaxKeys bounds the (process, host) and (process, port) pairs
	// tracked (default 8192).
	MaxKeys int
	Now     func() time.Time
}

// PortScan flags a process that connects out to many ports of one host,
// or to one port of many hosts, in a short window. It fires once per
// process and target per window.
type PortScan struct {
	cfg   PortScanConfig
	pairs *lru[*burst]
}

// NewPortScan returns the detector.
func NewPortScan(cfg PortScanConfig) *PortScan {
	if cfg.Ports <= 0 {
		cfg.Ports = 20
	}
	if cfg.Hosts <= 0 {
		cfg.Hosts = 64
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 8192
	}
	return &PortScan{cfg: cfg, pairs: newLRU(cfg.MaxKeys, newBurst)}
}

func (d *PortScan) Rule() detectors.Rule {
	return detectors.Rule{
		ID: RuleIDPortScan, Name: "Port scan from this host", Version: ruleVersion,
		Author: ruleAuthor, License: ruleLicense, Severity: detectors.SeverityMedium,
		References: []string{"https://attack.mitre.org/techniques/T1046/"},
		Tactics:    []string{tacticDiscovery}, Techniques: []string{"T1046"},
	}
}

func (d *PortScan) Detect(ev *ecs.Event) (detectors.Finding, bool) {
	if ev.Event.Category != ecs.CategoryNetwork || ev.Destination == nil || ev.Destination.IP == "" || ev.Destination.Port <= 0 {
		return detectors.Finding{}, false
	}
	if ev.Network != nil && (ev.Network.Direction == "ingress" || ev.Network.Direction == "inbound") {
		return detectors.Finding{}, false
	}
	proc := processKey(ev)
	t := clock(d.cfg.Now).at(ev)
	ip, port := ev.Destination.IP, itoa(ev.Destination.Port)
	vertical := d.pairs.get("h\x00" + proc + "\x00" + ip)
	nPorts := vertical.add(port, t, d.cfg.Window, 2*d.cfg.Ports)
	horizontal := d.pairs.get("p\x00" + proc + "\x00" + port)
	nHosts := horizontal.add(ip, t, d.cfg.Window, 2*d.cfg.Hosts)
	who := "a process"
	if ev.Process != nil {
		who = fmt.Sprintf("%s (pid %d)", ev.Process.Executable, ev.Process.PID)
	}
	switch {
	case nPorts >= d.cfg.Ports && !t.Before(vertical.quietTo):
		vertical.quietTo = t.Add(d.cfg.Window)
		return detectors.Finding{Summary: fmt.Sprintf("%s connected to %d ports of %s within %s.", who, nPorts, ip, d.cfg.Window)}, true
	case nHosts >= d.cfg.Hosts && !t.Before(horizontal.quietTo):
		horizontal.quietTo = t.Add(d.cfg.Window)
		return detectors.Finding{Summary: fmt.Sprintf("%s connected to port %s of %d hosts within %s.", who, port, nHosts, d.cfg.Window)}, true
	}
	return detectors.Finding{}, false
}
