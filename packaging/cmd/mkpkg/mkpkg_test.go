package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testDate = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestPackageVersion(t *testing.T) {
	for _, tc := range []struct{ version, commit, want string }{
		{"v1.2.3", "abc", "v1.2.3"},
		{"1.2.3-rc.1", "abc", "1.2.3-rc.1"},
		{"9cf26a5", "9cf26a5d1ee6ffff", "0.0.0+git20260301120000.9cf26a5d1ee6"},
		{"9cf26a5-dirty", "9cf26a5d1ee6", "0.0.0+git20260301120000.9cf26a5d1ee6.dirty"},
	} {
		if got := PackageVersion(tc.version, tc.commit, testDate); got != tc.want {
			t.Errorf("PackageVersion(%q) = %q, want %q", tc.version, got, tc.want)
		}
	}
}

// fakeBinaries writes stand-ins for the linux binaries.
func fakeBinaries(t *testing.T) string {
	dir := t.TempDir()
	for _, b := range []string{"cordon-agent", "cordon-collector", "cordonctl"} {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\necho "+b+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func options(t *testing.T, bin string) Options {
	return Options{Root: "../../..", Bin: bin, Arch: "amd64", Version: "v1.0.0", Commit: "abc", Date: testDate,
		Out: t.TempDir(), Formats: []string{"deb", "rpm"}, Packages: []string{"agent", "collector"}}
}

// The same inputs give the same bytes.
func TestBuildReproducible(t *testing.T) {
	bin := fakeBinaries(t)
	sums := func() map[string]string {
		paths, err := Build(options(t, bin))
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 4 {
			t.Fatalf("built %v", paths)
		}
		out := map[string]string{}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.Sum256(b)
			out[filepath.Base(p)] = hex.EncodeToString(h[:])
		}
		return out
	}
	first := sums()
	time.Sleep(1100 * time.Millisecond) // a clock that leaked in would now differ
	second := sums()
	for name, h := range first {
		if second[name] != h {
			t.Errorf("%s: %s then %s", name, h, second[name])
		}
	}
}

func TestBuildContents(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	o := options(t, fakeBinaries(t))
	o.Formats = []string{"deb"}
	paths, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pkg      string
		files    []string
		conffile string
	}{
		{"cordon-agent_", []string{"-rwxr-xr-x root/root", "./usr/bin/cordon-agent", "-rw------- root/root", "./etc/cordon/agent.yaml", "./usr/lib/systemd/system/cordon-agent.service"}, "/etc/cordon/agent.yaml"},
		{"cordon-collector_", []string{"./usr/bin/cordon-collector", "./usr/bin/cordonctl", "-rw-r----- root/cordon", "./etc/cordon/collector.yaml", "./usr/lib/systemd/system/cordon-collector.service"}, "/etc/cordon/collector.yaml"},
	} {
		var deb string
		for _, p := range paths {
			if strings.HasPrefix(filepath.Base(p), tc.pkg) {
				deb = p
			}
		}
		list, err := exec.Command("dpkg-deb", "-c", deb).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v %s", deb, err, list)
		}
		for _, f := range tc.files {
			if !strings.Contains(string(list), f) {
				t.Errorf("%s lacks %q:\n%s", deb, f, list)
			}
		}
		conf, err := exec.Command("dpkg-deb", "-f", deb, "Version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(conf)) != "1.0.0" {
			t.Errorf("version %q %v", conf, err)
		}
		dir := t.TempDir()
		if out, err := exec.Command("dpkg-deb", "-e", deb, dir).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		conffiles, _ := os.ReadFile(filepath.Join(dir, "conffiles"))
		if strings.TrimSpace(string(conffiles)) != tc.conffile {
			t.Errorf("%s conffiles %q, want %s", deb, conffiles, tc.conffile)
		}
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			if _, err := os.Stat(filepath.Join(dir, s)); err != nil {
				t.Errorf("%s has no %s", deb, s)
			}
		}
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	var out, errOut strings.Builder
	if err := run([]string{"--bin", "x", "--date", "yesterday"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("bad date: %v", err)
	}
	if err := run([]string{"--date", "0"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--bin") {
		t.Errorf("no --bin: %v", err)
	}
	o := options(t, t.TempDir())
	if _, err := Build(o); err == nil || !strings.Contains(err.Error(), "build it for linux/amd64 first") {
		t.Errorf("missing binaries: %v", err)
	}
}
