// Package config reads the collector's configuration: the YAML file
// (/etc/cordon/collector.yaml by default), then the few environment
// variables that deployment tools set, over the built-in defaults. Every
// refused value names its file (or variable), line and key.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sort"
	"time"

	"github.com/cordon-edr/cordon/collector/export"
	"github.com/cordon-edr/cordon/collector/health"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/registry"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/yamlconf"
)

// DefaultPath is read when no --config is given and it exists.
const DefaultPath = "/etc/cordon/collector.yaml"

// The environment variables read over the file.
const (
	EnvData      = "CORDON_DATA"
	EnvListen    = "CORDON_LISTEN"
	EnvAPIListen = "CORDON_API_LISTEN"
)

// Config is the collector's configuration; every key is optional.
type Config struct {
	// Data is the data folder: the CA, the store, the admin token.
	Data string `yaml:"data"`
	// Listen is the UDP address agents connect to.
	Listen   string `yaml:"listen"`
	LogLevel string `yaml:"log_level"`
	API      struct {
		Listen  string `yaml:"listen"`
		TLSCert string `yaml:"tls_cert"`
		TLSKey  string `yaml:"tls_key"`
	} `yaml:"api"`
	Incidents Incidents `yaml:"incidents"`
	// Exports are the sinks incidents and findings are delivered to.
	Exports []export.SinkConfig `yaml:"exports"`
	Health  Health              `yaml:"health"`
	Gateway Gateway             `yaml:"gateway"`

	// Source names where the configuration came from: the file, or
	// "built-in defaults".
	Source string `yaml:"-"`

	targets map[string]incident.Target
}

// Incidents tunes incident handling.
type Incidents struct {
	// Window is how far apart correlated findings may be.
	Window time.Duration `yaml:"window"`
	// Playbooks is a folder of playbook files overriding the defaults.
	Playbooks string `yaml:"playbooks"`
	// PlaybookDryRun writes playbook actions on the timeline instead of
	// sending them.
	PlaybookDryRun bool `yaml:"playbook_dry_run"`
	// ServiceLevels are the targets per priority (P1..P5).
	ServiceLevels map[string]ServiceLevel `yaml:"service_levels"`
}

// Health tunes the agents' heartbeat and the health findings.
type Health struct {
	// Heartbeat is the interval agents are asked to heartbeat at.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// SilenceGrace is how long an agent may be silent without having
	// said goodbye before a finding is raised.
	SilenceGrace time.Duration `yaml:"silence_grace"`
	// SensorLossThreshold is how many events a sensor may lose or drop
	// between two heartbeats before a finding is raised.
	SensorLossThreshold uint64 `yaml:"sensor_loss_threshold"`
}

// Gateway tunes the agents' connections.
type Gateway struct {
	// IdleTimeout closes an agent's connection when nothing was heard
	// from it for this long; KeepAlive is how long a quiet connection
	// waits before it sends a PING.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	KeepAlive   time.Duration `yaml:"keepalive"`
}

// ServiceLevel overrides a priority's targets; 0 keeps the default.
type ServiceLevel struct {
	Acknowledge time.Duration `yaml:"acknowledge"`
	Contain     time.Duration `yaml:"contain"`
}

// Default returns the built-in configuration.
func Default() Config {
	c := Config{Data: "./cordon-data", Listen: ":7443", LogLevel: "info", Source: "built-in defaults"}
	c.API.Listen = "127.0.0.1:7480"
	c.Health.Heartbeat = registry.HeartbeatPeriod
	c.Health.SilenceGrace = health.DefaultGrace
	c.Health.SensorLossThreshold = health.DefaultLossThreshold
	c.Gateway.IdleTimeout = protocol.DefaultIdleTimeout
	c.Gateway.KeepAlive = protocol.DefaultKeepAlive
	return c
}

// Resolve returns the file to read: flag when given, else DefaultPath
// when it exists, else "" (the built-in defaults).
func Resolve(flag string) string { return yamlconf.Resolve(flag, DefaultPath) }

// Load reads path ("" for none) over the defaults, then the environment
// through getenv (nil for none), and checks the result.
func Load(path string, getenv func(string) string) (Config, error) {
	data, err := yamlconf.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return parse(path, data, getenv)
}

// Parse decodes the YAML data, named name in errors, over the defaults
// and checks it.
func Parse(name string, data []byte) (Config, error) { return parse(name, data, nil) }

func parse(name string, data []byte, getenv func(string) string) (Config, error) {
	c := Default()
	doc := &yamlconf.Doc{File: name}
	if name != "" {
		c.Source = name
		var err error
		if doc, err = yamlconf.Decode(name, data, &c); err != nil {
			return Config{}, err
		}
	}
	if getenv != nil {
		for _, e := range []struct {
			name string
			to   *string
		}{{EnvData, &c.Data}, {EnvListen, &c.Listen}, {EnvAPIListen, &c.API.Listen}} {
			if v := getenv(e.name); v != "" {
				*e.to = v
			}
		}
	}
	if err := c.check(doc); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) check(doc *yamlconf.Doc) error {
	if c.Data == "" {
		return doc.Errorf("data", "empty; the collector needs a data folder")
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return doc.Errorf("log_level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return doc.Errorf("listen", "%q: want [HOST]:PORT, e.g. :7443", c.Listen)
	}
	if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
		key := "api.tls_key"
		if c.API.TLSCert == "" {
			key = "api.tls_cert"
		}
		return doc.Errorf(key, "missing: api.tls_cert and api.tls_key go together; set both or neither")
	}
	if err := CheckAPIListen(c.API.Listen, c.API.TLSCert != ""); err != nil {
		return doc.Wrap("api.listen", err)
	}
	switch h := c.Health; {
	case h.Heartbeat < time.Second || h.Heartbeat > 10*time.Minute:
		return doc.Errorf("health.heartbeat", "%s is not between 1s and 10m", h.Heartbeat)
	case h.SilenceGrace < 2*h.Heartbeat:
		return doc.Errorf("health.silence_grace", "%s is shorter than two heartbeats (health.heartbeat %s): a healthy agent would be reported", h.SilenceGrace, h.Heartbeat)
	case h.SensorLossThreshold == 0:
		return doc.Errorf("health.sensor_loss_threshold", "must be at least 1")
	}
	if key, err := protocol.CheckLiveness(c.Gateway.IdleTimeout, c.Gateway.KeepAlive); err != nil {
		return doc.Wrap("gateway."+key, err)
	}
	if c.Incidents.Window < 0 {
		return doc.Errorf("incidents.window", "%s is negative", c.Incidents.Window)
	}
	targets := maps.Clone(incident.DefaultTargets)
	prios := make([]string, 0, len(c.Incidents.ServiceLevels))
	for p := range c.Incidents.ServiceLevels {
		prios = append(prios, p)
	}
	sort.Strings(prios)
	for _, p := range prios {
		t := c.Incidents.ServiceLevels[p]
		key := "incidents.service_levels." + p
		def, ok := targets[p]
		if !ok {
			return doc.Errorf(key, "unknown priority %q (want P1 to P5)", p)
		}
		if t.Acknowledge < 0 || t.Contain < 0 {
			return doc.Errorf(key, "durations must be positive")
		}
		if t.Acknowledge > 0 {
			def.Acknowledge = t.Acknowledge
		}
		if t.Contain > 0 {
			def.Contain = t.Contain
		}
		targets[p] = def
	}
	c.targets = targets
	if err := export.Validate(c.Exports); err != nil {
		var ce *export.ConfigError
		if errors.As(err, &ce) {
			return doc.Errorf(fmt.Sprintf("exports[%d].%s", ce.Index, ce.Field), "%s", ce.Msg)
		}
		return doc.Wrap("exports", err)
	}
	return nil
}

// Targets returns the service-level targets per priority.
func (c *Config) Targets() map[string]incident.Target {
	if c.targets == nil {
		return maps.Clone(incident.DefaultTargets)
	}
	return c.targets
}

// CheckAPIListen refuses to serve bearer tokens in clear text beyond
// loopback.
func CheckAPIListen(addr string, tls bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want HOST:PORT, e.g. 127.0.0.1:7480", addr)
	}
	if tls || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not loopback: set api.tls_cert and api.tls_key to serve the API beyond this machine", addr)
}
