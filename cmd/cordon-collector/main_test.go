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
	os.WriteFile(good, []byte("data: /var/lib/cordon\nincidents:\n  window: 10m\n"), 0o600)
	os.WriteFile(bad, []byte("data: /var/lib/cordon\nincidents:\n  window: 10 minutes\n"), 0o600)
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"config", "check", "--config", good}, 0, "ok: " + good, ""},
		{[]string{"config", "check", "--config", bad}, 1, "", bad + `: line 3: incidents.window: "10 minutes" is not a duration`},
		{[]string{"config"}, 2, "", "config check"},
		{[]string{"service"}, 2, "", "install, uninstall, start, stop, status"},
		{[]string{"run", "--config", bad}, 1, "", "line 3: incidents.window"},
		{[]string{"--version"}, 0, "cordon-collector dev (commit ", ""},
	} {
		var out, errOut strings.Builder
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errOut.String(), tc.err) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, out.String(), errOut.String())
		}
	}
}
