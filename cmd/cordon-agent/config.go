package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/cordon-edr/cordon/agent/sensor/fswatch"
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
			// Mode is "auto" (kernel events, with argv captured by eBPF
			// where it loads), "netlink" (kernel events without eBPF) or
			// "poll".
			Mode string `yaml:"mode"`
		} `yaml:"process"`
		File struct {
			Enabled bool `yaml:"enabled"`
			// Paths are the watched paths; "/..." at the end watches
			// recursively. Empty means the built-in list.
			Paths []string `yaml:"paths"`
			// HashMaxBytes caps the size of the files hashed; 0 turns
			// hashing off.
			HashMaxBytes int64 `yaml:"hash_max_bytes"`
		} `yaml:"file"`
		Network struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"network"`
	} `yaml:"sensors"`
}

func defaultConfig() config {
	c := config{State: defaultState, LogLevel: "info"}
	c.Sensors.Process.Mode = "auto"
	c.Sensors.File.Enabled = true
	c.Sensors.File.HashMaxBytes = fswatch.DefaultHashMaxBytes
	c.Sensors.Network.Enabled = true
	return c
}

// fileHashMax is the file sensor's hash cap: 0 in the configuration turns
// hashing off, which the sensor spells as a negative cap.
func (c config) fileHashMax() int64 {
	if c.Sensors.File.HashMaxBytes == 0 {
		return -1
	}
	return c.Sensors.File.HashMaxBytes
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
	case "auto", "netlink", "poll":
	default:
		return fmt.Errorf("%s: line %d: sensors.process.mode: %q is not auto, netlink or poll", path, findLine(&root, "sensors", "process", "mode"), c.Sensors.Process.Mode)
	}
	for i, p := range c.Sensors.File.Paths {
		if err := fswatch.ParsePaths([]string{p}); err != nil {
			return fmt.Errorf("%s: line %d: sensors.file.paths[%d]: %w", path, findLine(&root, "sensors", "file", "paths", strconv.Itoa(i)), i, err)
		}
	}
	if c.Sensors.File.HashMaxBytes < 0 {
		return fmt.Errorf("%s: line %d: sensors.file.hash_max_bytes: %d is negative", path, findLine(&root, "sensors", "file", "hash_max_bytes"), c.Sensors.File.HashMaxBytes)
	}
	return nil
}

// findLine returns the line of the value at path in a document, or 0;
// a number in path indexes a sequence.
func findLine(n *yaml.Node, path ...string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, key := range path {
		if n.Kind == yaml.SequenceNode {
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(n.Content) {
				return 0
			}
			n = n.Content[i]
			continue
		}
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
