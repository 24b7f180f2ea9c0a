package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/cordon-edr/cordon/collector/export"
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
	// Exports are the sinks incidents and findings are delivered to.
	Exports []export.SinkConfig `yaml:"exports"`
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
