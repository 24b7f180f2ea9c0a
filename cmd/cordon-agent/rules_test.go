package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
