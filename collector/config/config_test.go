package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/yamlconf"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		check      func(t *testing.T, c Config)
	}{
		{"defaults", "", func(t *testing.T, c Config) {
			tg := c.Targets()
			if c.Data != "./cordon-data" || c.Listen != ":7443" || c.API.Listen != "127.0.0.1:7480" ||
				tg["P1"].Acknowledge != 15*time.Minute || tg["P5"].Contain != 7*24*time.Hour ||
				c.Gateway.IdleTimeout != 15*time.Second || c.Gateway.KeepAlive != 5*time.Second {
				t.Errorf("defaults %+v, targets %v", c, tg)
			}
		}},
		{"override one target", "incidents:\n  window: 10m\n  playbook_dry_run: true\n  service_levels:\n    P1: {acknowledge: 5m}\n", func(t *testing.T, c Config) {
			tg := c.Targets()
			if c.Incidents.Window != 10*time.Minute || !c.Incidents.PlaybookDryRun || tg["P1"].Acknowledge != 5*time.Minute || tg["P1"].Contain != time.Hour {
				t.Errorf("config %+v targets %v", c.Incidents, tg)
			}
		}},
		{"exports", `
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
`, func(t *testing.T, c Config) {
			if len(c.Exports) != 3 || c.Exports[0].MinPriority != "P3" || !c.Exports[1].TLS || c.Exports[2].RetryInitial != 2*time.Second {
				t.Errorf("parsed %+v", c.Exports)
			}
			if c.Exports[0].Format != "ocsf" || c.Exports[1].MaxAttempts == 0 {
				t.Errorf("defaults not filled in: %+v", c.Exports)
			}
		}},
		{"health", "health:\n  heartbeat: 1s\n  silence_grace: 3s\n", func(t *testing.T, c Config) {
			if c.Health.Heartbeat != time.Second || c.Health.SilenceGrace != 3*time.Second || c.Health.SensorLossThreshold == 0 {
				t.Errorf("health %+v", c.Health)
			}
		}},
		{"gateway", "gateway:\n  idle_timeout: 30s\n  keepalive: 10s\n", func(t *testing.T, c Config) {
			if c.Gateway.IdleTimeout != 30*time.Second || c.Gateway.KeepAlive != 10*time.Second {
				t.Errorf("gateway %+v", c.Gateway)
			}
		}},
		{"api with tls", "api:\n  listen: 0.0.0.0:8443\n  tls_cert: /etc/cordon/api.crt\n  tls_key: /etc/cordon/api.key\n", func(t *testing.T, c Config) {
			if c.API.Listen != "0.0.0.0:8443" {
				t.Errorf("api %+v", c.API)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("collector.yaml", []byte(tc.yaml))
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
		{"unknown key", "incidents:\n  windw: 1m\n", 2, "incidents.windw", `did you mean "window"?`},
		{"repeated key", "data: /a\nlisten: :1\ndata: /b\n", 3, "data", "repeated (first at line 1)"},
		{"bad duration", "incidents:\n  service_levels:\n    P1: {acknowledge: soon}\n", 3, "incidents.service_levels.P1.acknowledge", "not a duration"},
		{"negative window", "incidents:\n  window: -1m\n", 2, "incidents.window", "negative"},
		{"unknown priority", "incidents:\n  service_levels:\n    P9: {acknowledge: 5m}\n", 3, "incidents.service_levels.P9", `unknown priority "P9"`},
		{"bad bool", "incidents:\n  playbook_dry_run: perhaps\n", 2, "incidents.playbook_dry_run", "not true or false"},
		{"bad log level", "log_level: chatty\n", 1, "log_level", "not debug"},
		{"bad listen", "listen: 7443\n", 1, "listen", "want [HOST]:PORT"},
		{"api beyond loopback", "api:\n  listen: 0.0.0.0:7480\n", 2, "api.listen", "not loopback"},
		{"tls half set", "api:\n  tls_cert: /c.pem\n", 2, "api.tls_key", "go together"},
		{"export missing key", "exports:\n  - { name: soc, type: webhook, url: \"https://x\" }\n", 2, "exports[0].secret", "required"},
		{"export bad value", "exports:\n  - name: a\n    type: file\n    path: /x\n  - name: b\n    type: file\n    path: /y\n    min_priority: P9\n", 8, "exports[1].min_priority", "P9"},
		{"export unknown key", "exports:\n  - name: a\n    type: file\n    pth: /x\n", 4, "exports[0].pth", `did you mean "path"?`},
		{"export bad duration", "exports:\n  - name: a\n    type: file\n    path: /x\n    retry_max: soon\n", 5, "exports[0].retry_max", "not a duration"},
		{"exports not a list", "exports: {name: a}\n", 1, "exports", "want a list"},
		{"short silence grace", "health:\n  silence_grace: 20s\n", 2, "health.silence_grace", "shorter than two heartbeats"},
		{"fast heartbeat", "health:\n  heartbeat: 100ms\n", 2, "health.heartbeat", "not between 1s and 10m"},
		{"idle timeout long", "gateway:\n  idle_timeout: 1h\n", 2, "gateway.idle_timeout", "not between 3s and 10m"},
		{"keepalive too long", "gateway:\n  keepalive: 10s\n", 2, "gateway.keepalive", "more than half of idle_timeout"},
		{"no loss threshold", "health:\n  sensor_loss_threshold: 0\n", 2, "health.sensor_loss_threshold", "at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("collector.yaml", []byte(tc.yaml))
			var e *yamlconf.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want a *yamlconf.Error", err)
			}
			if e.File != "collector.yaml" || e.Line != tc.line || e.Key != tc.key || !strings.Contains(e.Err.Error(), tc.msg) {
				t.Errorf("got %v (line %d, key %q); want line %d, key %q, containing %q", err, e.Line, e.Key, tc.line, tc.key, tc.msg)
			}
		})
	}
}

func TestLoadEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "collector.yaml")
	if err := os.WriteFile(path, []byte("data: /srv/cordon\nlisten: :7443\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvListen: ":9443", EnvAPIListen: "127.0.0.1:9480"}
	c, err := Load(path, func(k string) string { return env[k] })
	if err != nil || c.Data != "/srv/cordon" || c.Listen != ":9443" || c.API.Listen != "127.0.0.1:9480" {
		t.Errorf("config %+v, %v", c, err)
	}
	env[EnvAPIListen] = "0.0.0.0:9480"
	if _, err := Load(path, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Errorf("api beyond loopback from the environment: %v", err)
	}
}

// The packaged configuration is valid.
func TestPackagedConfig(t *testing.T) {
	b, err := os.ReadFile("../../packaging/etc/collector.yaml")
	if err != nil {
		t.Skipf("no packaged configuration: %v", err)
	}
	c, err := Parse("collector.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "/var/lib/cordon" {
		t.Errorf("packaged data folder %q", c.Data)
	}
}

// FuzzParse: no input makes parsing panic, every refusal names the file,
// and an accepted configuration has valid sinks.
func FuzzParse(f *testing.F) {
	f.Add([]byte("exports:\n  - { name: soc, type: webhook, url: \"https://x/h\", secret: k, min_priority: P3 }\n"))
	f.Add([]byte("exports:\n  - { name: siem, type: syslog, address: \"h:6514\", tls: true, format: cef }\n"))
	f.Add([]byte("exports:\n  - { name: f, type: file, path: /tmp/x, max_bytes: 2048, events: [finding] }\n"))
	f.Add([]byte("api: { listen: \"127.0.0.1:1\" }\nincidents: {service_levels: {P2: {contain: 1h}}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("f.yaml", b)
		if err != nil {
			var e *yamlconf.Error
			if !errors.As(err, &e) || e.File != "f.yaml" {
				t.Fatalf("error %v does not name the file", err)
			}
			return
		}
		for _, s := range c.Exports {
			if s.Name == "" || s.Type == "" || s.MaxAttempts < 1 || s.Timeout <= 0 {
				t.Fatalf("accepted an invalid sink %+v", s)
			}
		}
	})
}
