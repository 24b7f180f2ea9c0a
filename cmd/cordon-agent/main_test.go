package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("log_level: debug\nsensors:\n  network:\n    enabled: false\n"), 0o600)
	os.WriteFile(bad, []byte("log_level: debug\nsensors:\n  netwrk:\n    enabled: false\n"), 0o600)
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"config", "check", "--config", good}, 0, "ok: " + good, ""},
		{[]string{"config", "check", "--config", bad}, 1, "", bad + `: line 3: sensors.netwrk: unknown key; did you mean "network"?`},
		{[]string{"config", "check", "--config", filepath.Join(dir, "none.yaml")}, 1, "", "does not exist"},
		{[]string{"config", "lint"}, 2, "", "config check"},
		{[]string{"service", "restartt"}, 2, "", "install, uninstall, start, stop, status"},
		{[]string{"--version"}, 0, "cordon-agent dev (commit ", ""},
	} {
		var out, errOut strings.Builder
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.err) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, out.String(), errOut.String())
		}
	}
}
