package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// config is the agent's YAML configuration; every key is optional.
type config struct {
	// State is the state folder.
	State string `yaml:"state"`
	// Collector overrides the collector address stored at enrollment.
	Collector string `yaml:"collector"`
	LogLevel  string `yaml:"log_level"`
	Sensors   struct {
		Process struct {
			// Mode is "auto" (kernel events where possible) or "poll".
			Mode string `yaml:"mode"`
		} `yaml:"process"`
	} `yaml:"sensors"`
	// Isolation says what an isolated host may still reach besides the
	// collector.
	Isolation struct {
		AllowDNS   bool     `yaml:"allow_dns"`
		AllowDHCP  bool     `yaml:"allow_dhcp"`
		AllowCIDRs []string `yaml:"allow_cidrs"`
		// Probe is a UDP host:port outside the allowances that the
		// isolation proof must fail to reach.
		Probe string `yaml:"probe"`
	} `yaml:"isolation"`
	// ProtectedProcesses are executables (full paths) or process names
	// that kill and suspend refuse.
	ProtectedProcesses []string `yaml:"protected_processes"`
}

func defaultConfig() config {
	c := config{State: defaultState, LogLevel: "info"}
	c.Sensors.Process.Mode = "auto"
	return c
}

// loadConfig reads path over the defaults in c. Unknown keys and bad
// values are errors naming the file, line and key.
func loadConfig(path string, c *config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading configuration: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file keeps the defaults
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	var root yaml.Node
	_ = yaml.Unmarshal(b, &root)
	switch c.Sensors.Process.Mode {
	case "auto", "poll":
	default:
		return fmt.Errorf("%s: line %d: sensors.process.mode: %q is not auto or poll", path, findLine(&root, "sensors", "process", "mode"), c.Sensors.Process.Mode)
	}
	return checkIsolation(path, &root, c)
}

// findLine returns the line of the value at path in a document, or 0.
func findLine(n *yaml.Node, path ...string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return 0
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return n.Line
}
