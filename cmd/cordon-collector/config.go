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
	"github.com/cordon-edr/cordon/collector/incident"
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
