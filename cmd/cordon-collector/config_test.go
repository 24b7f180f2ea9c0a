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
func TestParseConfigExports(t *testing.T) {
	c := defaultConfig()
	err := parseConfig([]byte(`
data: /var/lib/cordon
exports:
  - { name: soc, type: webhook, url: "https://soc.example/hook", secret: "k", min_priority: P3 }
  - { name: siem, type: syslog, address: "siem.example:6514", tls: true, format: cef }
  - name: splunk
    type: splunk_hec
    url: https://splunk.example:8088
    token: t
    events: [incident.opened, finding]
    min_severity: high
    retry_initial: 2s
`), "c.yaml", &c)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Exports) != 3 || c.Exports[0].MinPriority != "P3" || !c.Exports[1].TLS || c.Exports[2].RetryInitial != 2*time.Second {
		t.Errorf("parsed %+v", c.Exports)
	}
	if c.Exports[0].Format != "ocsf" || c.Exports[1].MaxAttempts == 0 {
		t.Errorf("defaults not filled in: %+v", c.Exports)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"exports:\n  - { name: soc, type: webhook, url: \"https://x\" }\n", "c.yaml: line 2: exports[0].secret: required"},
		{"exports:\n  - name: a\n    type: file\n    path: /x\n  - name: b\n    type: file\n    path: /y\n    min_priority: P9\n", "c.yaml: line 8: exports[1].min_priority"},
		{"exports:\n  - name: a\n    type: file\n    pth: /x\n", "line 4: field pth not found"},
		{"exports:\n  - name: a\n    type: file\n    path: /x\n    retry_max: soon\n", "line 5"},
		{"exports: {name: a}\n", "line 1"},
	} {
		c := defaultConfig()
		err := parseConfig([]byte(tc.yaml), "c.yaml", &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.yaml, err, tc.want)
		}
	}
}

// FuzzParseConfig: no input makes parsing panic, and an accepted
// configuration has valid sinks.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("exports:\n  - { name: soc, type: webhook, url: \"https://x/h\", secret: k, min_priority: P3 }\n"))
	f.Add([]byte("exports:\n  - { name: siem, type: syslog, address: \"h:6514\", tls: true, format: cef }\n"))
	f.Add([]byte("exports:\n  - { name: f, type: file, path: /tmp/x, max_bytes: 2048, events: [finding] }\n"))
	f.Add([]byte("api: { listen: \"127.0.0.1:1\" }\nexports: []\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := defaultConfig()
		if parseConfig(b, "fuzz.yaml", &c) != nil {
			return
		}
		for _, s := range c.Exports {
			if s.Name == "" || s.Type == "" || s.MaxAttempts < 1 || s.Timeout <= 0 {
				t.Fatalf("accepted an invalid sink %+v", s)
			}
		}
	})
}

func TestConfigHealth(t *testing.T) {
	for _, tt := range []struct{ yaml, err string }{
		{"health:\n  heartbeat: 1s\n  silence_grace: 3s\n", ""},
		{"health:\n  silence_grace: 20s\n", "health.silence_grace"},
		{"health:\n  heartbeat: 100ms\n", "health.heartbeat"},
		{"health:\n  sensor_loss_threshold: 0\n", "health.sensor_loss_threshold"},
	} {
		c := defaultConfig()
		err := parseConfig([]byte(tt.yaml), "collector.yml", &c)
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%q: error %v, want %q", tt.yaml, err, tt.err)
		}
	}
}
