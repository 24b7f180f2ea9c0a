package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

func TestConfigNoiseWindow(t *testing.T) {
	tests := []struct {
		yaml string
		want time.Duration
		err  string
	}{
		{"detection:\n  noise_window: 5m\n", 5 * time.Minute, ""},
		{"log_level: info\n", 0, ""},
		{"detection:\n  noise_window: soon\n", 0, "line 2"},
		{"detection:\n  noise_window: -1m\n", 0, "line 2: detection.noise_window"},
		{"detection:\n  noise: 5m\n", 0, "noise"},
	}
	for _, tt := range tests {
		p := filepath.Join(t.TempDir(), "agent.yml")
		if err := os.WriteFile(p, []byte(tt.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		c := defaultConfig()
		err := loadConfig(p, &c)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one containing %q", tt.yaml, err, tt.err)
			}
			continue
		}
		if err != nil || c.Detection.NoiseWindow != tt.want {
			t.Errorf("%q: %v, %v; want %v", tt.yaml, c.Detection.NoiseWindow, err, tt.want)
		}
	}
}

func TestRulesCheckCommand(t *testing.T) {
	dir := t.TempDir()
	ok := "title: T\nid: 1\nlogsource:\n  product: linux\n  category: process_creation\ndetection:\n  s:\n    Image|endswith: /x\n  condition: s\n"
	bad := "title: T\ndetection:\n  s:\n    Image|bogus: /x\n  condition: s\n"
	os.WriteFile(filepath.Join(dir, "a.yml"), []byte(ok), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(bad), 0o644)
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("not a rule"), 0o644)
	var out, errOut strings.Builder
	if code := run([]string{"rules", "check", filepath.Join(dir, "a.yml")}, &out, &errOut); code != 0 {
		t.Fatalf("good rule: exit %d: %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code := run([]string{"rules", "check", dir}, &out, &errOut)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if code != 1 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ok ") ||
		!strings.HasPrefix(lines[1], "error "+filepath.Join(dir, "b.yaml")+":4: ") || !strings.Contains(lines[1], `unknown modifier "bogus"`) {
		t.Fatalf("exit %d, output:\n%s\nstderr: %s", code, out.String(), errOut.String())
	}
	if code := run([]string{"rules", "check"}, &out, &errOut); code != 2 {
		t.Errorf("no path: exit %d, want 2", code)
	}
	if code := run([]string{"rules", "check", filepath.Join(dir, "missing")}, &out, &errOut); code != 1 {
		t.Errorf("missing path: exit %d, want 1", code)
	}
}

func TestConfigExceptions(t *testing.T) {
	good := `detection:
  exceptions:
    - rule: 5cd16c8f-44a6-4654-81e7-a84d6db507d4
      where:
        Image|startswith: /dev/shm/vendor-
      expires: 2030-01-01T00:00:00Z
      reason: the vendor's updater runs from /dev/shm
    - rule: 8ec43485-531b-4498-881b-db65f6f79511
      reason: accounts are created by provisioning on this host
`
	tests := []struct {
		yaml string
		n    int
		err  string
	}{
		{good, 2, ""},
		{"detection:\n  exceptions:\n    - rule: x\n", 0, "line 3: detection.exceptions[0].reason: missing"},
		{"detection:\n  exceptions:\n    - reason: y\n", 0, "line 3: detection.exceptions[0].rule: missing"},
		{"detection:\n  exceptions:\n    - rule: x\n      reason: y\n      where:\n        Nope: 1\n", 0, "detection.exceptions[0].where: line 6: field Nope"},
		{"detection:\n  exceptions:\n    - rule: x\n      reason: y\n      expires: soon\n", 0, "line 3: detection.exceptions[0].expires"},
	}
	for _, tt := range tests {
		p := filepath.Join(t.TempDir(), "agent.yml")
		if err := os.WriteFile(p, []byte(tt.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		c := defaultConfig()
		err := loadConfig(p, &c)
		var n int
		if err == nil {
			var ex []detectors.Exception
			ex, err = c.exceptions(p)
			n = len(ex)
			if err == nil && tt.n == 2 {
				shm := &ecs.Event{Event: ecs.Meta{Category: "process", Type: "start"}, Process: &ecs.Process{Executable: "/dev/shm/vendor-update"}}
				other := &ecs.Event{Event: ecs.Meta{Category: "process", Type: "start"}, Process: &ecs.Process{Executable: "/dev/shm/x"}}
				if !ex[0].Match(shm) || ex[0].Match(other) || ex[1].Match != nil || ex[0].Expires.Year() != 2030 {
					t.Errorf("compiled exceptions: %+v", ex)
				}
			}
		}
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one containing %q", tt.yaml, err, tt.err)
			}
			continue
		}
		if err != nil || n != tt.n {
			t.Errorf("%q: %d exceptions, %v", tt.yaml, n, err)
		}
	}
}

func TestConfigRestartWindow(t *testing.T) {
	tests := []struct {
		yaml string
		want time.Duration
		err  string
	}{
		{"log_level: info\n", 10 * time.Second, ""},
		{"uplink:\n  restart_window: 30s\n", 30 * time.Second, ""},
		{"uplink:\n  restart_window: 0s\n", 0, "line 2: uplink.restart_window"},
		{"uplink:\n  restart_window: 1h\n", 0, "line 2: uplink.restart_window"},
		{"uplink:\n  restart_window: soon\n", 0, "line 2"},
	}
	for _, tt := range tests {
		p := filepath.Join(t.TempDir(), "agent.yml")
		if err := os.WriteFile(p, []byte(tt.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		c := defaultConfig()
		err := loadConfig(p, &c)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want one containing %q", tt.yaml, err, tt.err)
			}
			continue
		}
		if err != nil || c.Uplink.RestartWindow != tt.want {
			t.Errorf("%q: %v, %v; want %v", tt.yaml, c.Uplink.RestartWindow, err, tt.want)
		}
	}
}
