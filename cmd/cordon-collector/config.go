package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
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
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
		return fmt.Errorf("%s: api.tls_cert and api.tls_key go together: set both or neither", path)
	}
	return nil
}
