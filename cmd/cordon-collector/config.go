package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cordon-edr/cordon/collector/export"
	"github.com/cordon-edr/cordon/collector/health"
	"github.com/cordon-edr/cordon/collector/incident"
	"github.com/cordon-edr/cordon/collector/registry"
)

// config is the collector's YAML configuration; every key is optional.
type config struct {
	Data     string `yaml:"data"`
	Listen   string `yaml:"listen"`
	LogLevel string `yaml:"log_level"`
	API      struct {
		Listen  string `yaml:"listen"`
		TLSCert string `yaml:"tls_cert"`
		TLSKey  string `yaml:"tls_key"`
	} `yaml:"api"`
	Incidents incidentsConfig `yaml:"incidents"`
	// Exports are the sinks incidents and findings are delivered to.
	Exports []export.SinkConfig `yaml:"exports"`
	Health  healthConfig        `yaml:"health"`
}

// healthConfig tunes the agents' heartbeat and the health findings.
type healthConfig struct {
	// Heartbeat is the interval agents are asked to heartbeat at.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// SilenceGrace is how long an agent may be silent without having
	// said goodbye before a finding is raised.
	SilenceGrace time.Duration `yaml:"silence_grace"`
	// SensorLossThreshold is how many events a sensor may lose or drop
	// between two heartbeats before a finding is raised.
	SensorLossThreshold uint64 `yaml:"sensor_loss_threshold"`
}

// incidentsConfig tunes incident handling.
type incidentsConfig struct {
	// Window is how far apart correlated findings may be.
	Window time.Duration `yaml:"window"`
	// Playbooks is a folder of playbook files overriding the defaults.
	Playbooks string `yaml:"playbooks"`
	// PlaybookDryRun writes playbook actions on the timeline instead of
	// sending them.
	PlaybookDryRun bool `yaml:"playbook_dry_run"`
	// ServiceLevels are the targets per priority (P1..P5).
	ServiceLevels map[string]struct {
		Acknowledge time.Duration `yaml:"acknowledge"`
		Contain     time.Duration `yaml:"contain"`
	} `yaml:"service_levels"`
}

// targets returns the service-level targets of the configuration over
// the defaults, or an error naming the bad key.
func (c incidentsConfig) targets() (map[string]incident.Target, error) {
	out := maps.Clone(incident.DefaultTargets)
	for p, t := range c.ServiceLevels {
		def, ok := out[p]
		if !ok {
			return nil, fmt.Errorf("incidents.service_levels: unknown priority %q (want P1 to P5)", p)
		}
		if t.Acknowledge < 0 || t.Contain < 0 {
			return nil, fmt.Errorf("incidents.service_levels.%s: durations must be positive", p)
		}
		if t.Acknowledge > 0 {
			def.Acknowledge = t.Acknowledge
		}
		if t.Contain > 0 {
			def.Contain = t.Contain
		}
		out[p] = def
	}
	return out, nil
}

func defaultConfig() config {
	c := config{Data: "./cordon-data", Listen: ":7443", LogLevel: "info"}
	c.API.Listen = "127.0.0.1:7480"
	c.Health.Heartbeat = registry.HeartbeatPeriod
	c.Health.SilenceGrace = health.DefaultGrace
	c.Health.SensorLossThreshold = health.DefaultLossThreshold
	return c
}

// loadConfig reads path over the defaults in c. Unknown keys are errors
// naming the file, line and key.
func loadConfig(path string, c *config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading configuration: %w", err)
	}
	return parseConfig(b, path, c)
}

// parseConfig decodes the YAML b, named path in errors, over c.
func parseConfig(b []byte, path string, c *config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := export.Validate(c.Exports); err != nil {
		var ce *export.ConfigError
		if errors.As(err, &ce) {
			if line := exportLine(b, ce.Index, ce.Field); line > 0 {
				return fmt.Errorf("%s: line %d: %w", path, line, err)
			}
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
		return fmt.Errorf("%s: api.tls_cert and api.tls_key go together: set both or neither", path)
	}
	switch h := c.Health; {
	case h.Heartbeat < time.Second || h.Heartbeat > 10*time.Minute:
		return fmt.Errorf("%s: health.heartbeat: %s is not between 1s and 10m", path, h.Heartbeat)
	case h.SilenceGrace < 2*h.Heartbeat:
		return fmt.Errorf("%s: health.silence_grace: %s is shorter than two heartbeats (health.heartbeat %s): a healthy agent would be reported", path, h.SilenceGrace, h.Heartbeat)
	case h.SensorLossThreshold == 0:
		return fmt.Errorf("%s: health.sensor_loss_threshold: must be at least 1", path)
	}
	if c.Incidents.Window < 0 {
		return fmt.Errorf("%s: incidents.window must be positive", path)
	}
	if _, err := c.Incidents.targets(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// exportLine returns the line of key field of the i-th exports entry in
// the YAML document b, or of the entry when it has no such key; 0 when
// not found.
func exportLine(b []byte, i int, field string) int {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return 0
	}
	for k := 0; k+1 < len(root.Content); k += 2 {
		if root.Content[k].Value != "exports" {
			continue
		}
		seq := root.Content[k+1]
		if seq.Kind != yaml.SequenceNode || i >= len(seq.Content) {
			return 0
		}
		item := seq.Content[i]
		for f := 0; f+1 < len(item.Content); f += 2 {
			if item.Content[f].Value == field {
				return item.Content[f].Line
			}
		}
		return item.Line
	}
	return 0
}
