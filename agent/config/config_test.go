package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/cordon-edr/cordon/protocol/yamlconf"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(t *testing.T, c Config)
	}{
		{"defaults", "", func(t *testing.T, c Config) {
			if c.State != DefaultState || c.LogLevel != "info" || c.Sensors.Process.Mode != "auto" ||
				!c.Sensors.File.Enabled || !c.Sensors.Network.Enabled || c.Sensors.File.Paths != nil || c.FileHashMax() <= 0 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{"sensors", "sensors:\n  file:\n    paths: [/etc/..., /root]\n    hash_max_bytes: 1024\n  network:\n    enabled: false\n", func(t *testing.T, c Config) {
			if len(c.Sensors.File.Paths) != 2 || c.FileHashMax() != 1024 || c.Sensors.Network.Enabled || !c.Sensors.File.Enabled {
				t.Errorf("sensors %+v", c.Sensors)
			}
		}},
		{"hashing off", "sensors:\n  file:\n    hash_max_bytes: 0\n", func(t *testing.T, c Config) {
			if c.FileHashMax() >= 0 {
				t.Errorf("hash cap %d, want off", c.FileHashMax())
			}
		}},
		{"noise window", "detection:\n  noise_window: 5m\n", func(t *testing.T, c Config) {
			if c.Detection.NoiseWindow != 5*time.Minute {
				t.Errorf("noise window %v", c.Detection.NoiseWindow)
			}
		}},
		{"isolation", "isolation:\n  allow_dns: true\n  allow_dhcp: true\n  allow_cidrs: [10.0.0.0/8, 192.168.1.7]\n  probe: 192.0.2.1:9\n", func(t *testing.T, c Config) {
			iso := c.IsolationAllowances()
			want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32")}
			if !slices.Equal(iso.AllowCIDRs, want) || !iso.AllowDNS || !iso.AllowDHCP || iso.Probe != "192.0.2.1:9" {
				t.Errorf("isolation %+v", iso)
			}
		}},
		{"enrollment", "collector: collector.example:7443\nenroll:\n  token: t0k\n  ca_pin: sha256:ab\n  tags: {criticality: high}\n", func(t *testing.T, c Config) {
			if c.Collector != "collector.example:7443" || c.Enroll.Token != "t0k" || c.Enroll.CAPin != "sha256:ab" || c.Enroll.Tags["criticality"] != "high" {
				t.Errorf("enroll %+v", c.Enroll)
			}
		}},
		{"exceptions", `detection:
  exceptions:
    - rule: 5cd16c8f-44a6-4654-81e7-a84d6db507d4
      where:
        Image|startswith: /dev/shm/vendor-
      expires: 2030-01-01T00:00:00Z
      reason: the vendor's updater runs from /dev/shm
    - rule: 8ec43485-531b-4498-881b-db65f6f79511
      reason: accounts are created by provisioning on this host
`, func(t *testing.T, c Config) {
			ex := c.Exceptions()
			shm := &ecs.Event{Event: ecs.Meta{Category: "process", Type: "start"}, Process: &ecs.Process{Executable: "/dev/shm/vendor-update"}}
			other := &ecs.Event{Event: ecs.Meta{Category: "process", Type: "start"}, Process: &ecs.Process{Executable: "/dev/shm/x"}}
			if len(ex) != 2 || !ex[0].Match(shm) || ex[0].Match(other) || ex[1].Match != nil || ex[0].Expires.Year() != 2030 {
				t.Errorf("compiled exceptions: %+v", ex)
			}
		}},
		{"budget", "budget:\n  cpu_percent: 2.5\n  memory_mib: 96\n  window: 2m\n", func(t *testing.T, c Config) {
			if c.Budget.CPUPercent != 2.5 || c.Budget.MemoryMiB != 96 || c.Budget.Window != 2*time.Minute {
				t.Errorf("budget %+v", c.Budget)
			}
		}},
		{"budget defaults", "budget:\n  memory_mib: 64\n", func(t *testing.T, c Config) {
			if c.Budget.CPUPercent != 5 || c.Budget.MemoryMiB != 64 || c.Budget.Window != time.Minute {
				t.Errorf("budget %+v", c.Budget)
			}
		}},
		{"restart window", "uplink:\n  restart_window: 30s\n", func(t *testing.T, c Config) {
			if c.Uplink.RestartWindow != 30*time.Second {
				t.Errorf("restart window %v", c.Uplink.RestartWindow)
			}
		}},
		{"default restart window", "log_level: info\n", func(t *testing.T, c Config) {
			if c.Uplink.RestartWindow != 10*time.Second {
				t.Errorf("restart window %v", c.Uplink.RestartWindow)
			}
			if c.Uplink.IdleTimeout != 15*time.Second || c.Uplink.KeepAlive != 5*time.Second {
				t.Errorf("idle timeout %v, keepalive %v; want 15s and 5s", c.Uplink.IdleTimeout, c.Uplink.KeepAlive)
			}
		}},
		{"liveness", "uplink:\n  idle_timeout: 1m\n  keepalive: 20s\n", func(t *testing.T, c Config) {
			if c.Uplink.IdleTimeout != time.Minute || c.Uplink.KeepAlive != 20*time.Second {
				t.Errorf("idle timeout %v, keepalive %v", c.Uplink.IdleTimeout, c.Uplink.KeepAlive)
			}
		}},
		{"history", "history:\n  max_age: 24h\n  max_bytes: 64MiB\n", func(t *testing.T, c Config) {
			if !c.History.Enabled || c.History.MaxAge != 24*time.Hour || c.History.MaxBytes != 64<<20 {
				t.Errorf("history %+v", c.History)
			}
		}},
		{"history off", "history:\n  enabled: false\n", func(t *testing.T, c Config) {
			if c.History.Enabled || c.History.MaxAge != 72*time.Hour || c.History.MaxBytes != 512<<20 {
				t.Errorf("history %+v", c.History)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("agent.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// Each kind of mistake names the file, the line and the key.
func TestParseMistakes(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int
		key, msg   string
	}{
		{"unknown key", "sensors:\n  file:\n    path: /etc\n", 3, "sensors.file.path", `did you mean "paths"?`},
		{"unknown top-level key", "log_level: info\nstat: /x\n", 2, "stat", `did you mean "state"?`},
		{"repeated key", "state: /a\nstate: /b\n", 2, "state", "repeated (first at line 1)"},
		{"bad duration", "detection:\n  noise_window: soon\n", 2, "detection.noise_window", `"soon" is not a duration`},
		{"negative duration", "detection:\n  noise_window: -1m\n", 2, "detection.noise_window", "negative"},
		{"bad bool", "sensors:\n  network:\n    enabled: sometimes\n", 3, "sensors.network.enabled", "not true or false"},
		{"bad number", "sensors:\n  file:\n    hash_max_bytes: lots\n", 3, "sensors.file.hash_max_bytes", "not a whole number"},
		{"negative number", "sensors:\n  file:\n    hash_max_bytes: -5\n", 3, "sensors.file.hash_max_bytes", "negative"},
		{"bad choice", "sensors:\n  process:\n    mode: ebpf\n", 3, "sensors.process.mode", "not auto, netlink or poll"},
		{"relative path", "sensors:\n  file:\n    paths:\n      - /etc\n      - etc\n", 5, "sensors.file.paths[1]", "not an absolute path"},
		{"list expected", "protected_processes: sshd\n", 1, "protected_processes", "want a list"},
		{"bad log level", "log_level: loud\n", 1, "log_level", "not debug, info, warn or error"},
		{"bad collector", "collector: collector.example\n", 1, "collector", "want HOST:PORT"},
		{"bad pin", "enroll:\n  ca_pin: abcdef\n", 2, "enroll.ca_pin", "sha256:"},
		{"bad cidr", "isolation:\n  allow_cidrs:\n    - 10.0.0.0/8\n    - tenth-network\n", 4, "isolation.allow_cidrs[1]", "not a CIDR"},
		{"bad probe", "isolation:\n  probe: somewhere\n", 2, "isolation.probe", "want IP:PORT"},
		{"exception without reason", "detection:\n  exceptions:\n    - rule: x\n", 3, "detection.exceptions[0].reason", "missing"},
		{"exception without rule", "detection:\n  exceptions:\n    - reason: y\n", 3, "detection.exceptions[0].rule", "missing"},
		{"bad expiry", "detection:\n  exceptions:\n    - rule: x\n      reason: y\n      expires: soon\n", 5, "detection.exceptions[0].expires", "not an RFC 3339 time"},
		{"bad selection", "detection:\n  exceptions:\n    - rule: x\n      reason: y\n      where:\n        Nope: 1\n", 6, "detection.exceptions[0].where", "field Nope"},
		{"syntax", "state: [\n", 1, "", "not valid YAML"},
		{"cpu budget zero", "log_level: info\nbudget:\n  cpu_percent: 0\n", 3, "budget.cpu_percent", "not above 0"},
		{"memory budget tiny", "budget:\n  memory_mib: 4\n", 2, "budget.memory_mib", "not between 16"},
		{"short budget window", "budget:\n  window: 1s\n", 2, "budget.window", "not between 10s and 1h"},
		{"restart window zero", "uplink:\n  restart_window: 0s\n", 2, "uplink.restart_window", "not above 0"},
		{"restart window long", "uplink:\n  restart_window: 1h\n", 2, "uplink.restart_window", "at most 10m"},
		{"idle timeout short", "uplink:\n  idle_timeout: 1s\n", 2, "uplink.idle_timeout", "not between 3s and 10m"},
		{"keepalive over half the idle timeout", "uplink:\n  idle_timeout: 10s\n  keepalive: 6s\n", 3, "uplink.keepalive", "more than half of idle_timeout"},
		{"keepalive zero", "uplink:\n  keepalive: 0s\n", 2, "uplink.keepalive", "under 1s"},
		{"history age", "history:\n  max_age: 0s\n", 2, "history.max_age", "not positive"},
		{"history size", "history:\n  max_bytes: 1KiB\n", 2, "history.max_bytes", "below 1MiB"},
		{"history size unit", "history:\n  max_bytes: lots\n", 2, "history.max_bytes", "not a size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("agent.yaml", []byte(tc.yaml))
			var e *yamlconf.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want a *yamlconf.Error", err)
			}
			if e.File != "agent.yaml" || e.Line != tc.line || e.Key != tc.key || !strings.Contains(e.Err.Error(), tc.msg) {
				t.Errorf("got %v (line %d, key %q); want line %d, key %q, containing %q", err, e.Line, e.Key, tc.line, tc.key, tc.msg)
			}
		})
	}
}

func TestLoadEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte("collector: old.example:7443\nenroll:\n  tags: {site: paris}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		EnvCollector: "new.example:7443", EnvToken: "tok", EnvCAPin: "sha256:00",
		EnvTags: "criticality=high, team=db",
	}
	c, err := Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Collector != "new.example:7443" || c.Enroll.Token != "tok" || c.Enroll.CAPin != "sha256:00" ||
		c.Enroll.Tags["site"] != "paris" || c.Enroll.Tags["criticality"] != "high" || c.Enroll.Tags["team"] != "db" || c.Source != path {
		t.Errorf("config %+v", c)
	}
	env[EnvTags] = "criticality"
	if _, err := Load(path, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "environment: "+EnvTags) {
		t.Errorf("bad tags: %v", err)
	}
	env = map[string]string{EnvCollector: "no-port"}
	if _, err := Load("", func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "collector") {
		t.Errorf("bad collector from the environment: %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	c, err = Load("", nil)
	if err != nil || c.Source != "built-in defaults" {
		t.Errorf("no file: %+v %v", c, err)
	}
}

// The packaged configuration is valid and changes none of the defaults.
func TestPackagedConfig(t *testing.T) {
	b, err := os.ReadFile("../../packaging/etc/agent.yaml")
	if err != nil {
		t.Skipf("no packaged configuration: %v", err)
	}
	c, err := Parse("agent.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.State != d.State || c.LogLevel != d.LogLevel || c.Sensors.Process.Mode != d.Sensors.Process.Mode {
		t.Errorf("packaged %+v, defaults %+v", c, d)
	}
}

// FuzzParse: no input makes parsing panic, and every refusal is a
// *yamlconf.Error naming the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte("state: /var/lib/cordon-agent\nsensors:\n  file:\n    paths: [/etc/...]\n"))
	f.Add([]byte("detection:\n  exceptions:\n    - {rule: x, reason: y, where: {Image|endswith: /sh}}\n"))
	f.Add([]byte("isolation: {allow_cidrs: [10.0.0.0/8], probe: \"192.0.2.1:9\"}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Parse("f.yaml", b)
		var e *yamlconf.Error
		if err != nil && (!errors.As(err, &e) || e.File != "f.yaml") {
			t.Fatalf("error %v does not name the file", err)
		}
	})
}
