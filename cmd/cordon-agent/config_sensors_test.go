package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigSensorKeys(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		err        string
		check      func(t *testing.T, c config)
	}{
		{name: "defaults", yaml: "", check: func(t *testing.T, c config) {
			if !c.Sensors.File.Enabled || !c.Sensors.Network.Enabled || c.Sensors.File.Paths != nil || c.fileHashMax() <= 0 {
				t.Errorf("defaults: %+v", c.Sensors)
			}
		}},
		{name: "paths and cap", yaml: "sensors:\n  file:\n    paths: [/etc/..., /root]\n    hash_max_bytes: 1024\n  network:\n    enabled: false\n",
			check: func(t *testing.T, c config) {
				if len(c.Sensors.File.Paths) != 2 || c.fileHashMax() != 1024 || c.Sensors.Network.Enabled {
					t.Errorf("got %+v", c.Sensors)
				}
			}},
		{name: "hashing off", yaml: "sensors:\n  file:\n    hash_max_bytes: 0\n", check: func(t *testing.T, c config) {
			if c.fileHashMax() >= 0 {
				t.Errorf("hash cap %d, want off", c.fileHashMax())
			}
		}},
		{name: "relative path", yaml: "sensors:\n  file:\n    paths:\n      - /etc\n      - etc\n", err: `line 5: sensors.file.paths[1]: watched path "etc": not an absolute path`},
		{name: "negative cap", yaml: "sensors:\n  file:\n    hash_max_bytes: -5\n", err: "line 3: sensors.file.hash_max_bytes"},
		{name: "unknown key", yaml: "sensors:\n  file:\n    path: /etc\n", err: "line 3: field path not found"},
		{name: "budget", yaml: "budget:\n  cpu_percent: 2.5\n  memory_mib: 96\n  window: 2m\n", check: func(t *testing.T, c config) {
			if c.Budget.CPUPercent != 2.5 || c.Budget.MemoryMiB != 96 || c.Budget.Window != 2*time.Minute {
				t.Errorf("budget %+v", c.Budget)
			}
		}},
		{name: "budget defaults", yaml: "budget:\n  memory_mib: 64\n", check: func(t *testing.T, c config) {
			if c.Budget.CPUPercent != 5 || c.Budget.MemoryMiB != 64 || c.Budget.Window != time.Minute {
				t.Errorf("budget %+v", c.Budget)
			}
		}},
		{name: "cpu budget zero", yaml: "log_level: info\nbudget:\n  cpu_percent: 0\n", err: "line 3: budget.cpu_percent: 0"},
		{name: "memory budget tiny", yaml: "budget:\n  memory_mib: 4\n", err: "line 2: budget.memory_mib: 4"},
		{name: "short window", yaml: "budget:\n  window: 1s\n", err: "line 2: budget.window: 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c := defaultConfig()
			err := loadConfig(p, &c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
