package main

import (
	"strings"
	"testing"
	"time"
)

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
