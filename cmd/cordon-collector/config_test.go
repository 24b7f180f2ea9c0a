package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIncidentsConfig(t *testing.T) {
	tests := []struct {
		name, yaml, err string
		check           func(t *testing.T, c config)
	}{
		{"defaults", "", "", func(t *testing.T, c config) {
			tg, err := c.Incidents.targets()
			if err != nil || tg["P1"].Acknowledge != 15*time.Minute || tg["P5"].Contain != 7*24*time.Hour {
				t.Errorf("targets %v %v", tg, err)
			}
		}},
		{"override one target", "incidents:\n  window: 10m\n  playbook_dry_run: true\n  service_levels:\n    P1: {acknowledge: 5m}\n", "", func(t *testing.T, c config) {
			tg, _ := c.Incidents.targets()
			if c.Incidents.Window != 10*time.Minute || !c.Incidents.PlaybookDryRun || tg["P1"].Acknowledge != 5*time.Minute || tg["P1"].Contain != time.Hour {
				t.Errorf("config %+v targets %v", c.Incidents, tg)
			}
		}},
		{"unknown priority", "incidents:\n  service_levels:\n    P9: {acknowledge: 5m}\n", `incidents.service_levels: unknown priority "P9"`, nil},
		{"bad duration", "incidents:\n  service_levels:\n    P1: {acknowledge: soon}\n", "line 3", nil},
		{"negative window", "incidents:\n  window: -1m\n", "incidents.window must be positive", nil},
		{"unknown key", "incidents:\n  windw: 1m\n", "line 2: field windw not found", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "collector.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c := defaultConfig()
			err := loadConfig(path, &c)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
