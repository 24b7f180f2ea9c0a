package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildAgent builds cordon-agent stamped with version into dir.
func buildAgent(t *testing.T, dir, version string) {
	t.Helper()
	const bi = "github.com/cordon-edr/cordon/cmd/internal/buildinfo"
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X "+bi+".Version="+version+" -X "+bi+".Commit=0123456789ab -X "+bi+".Date=2026-03-01T12:00:00Z",
		"-o", filepath.Join(dir, "cordon-agent"), "../../../cmd/cordon-agent")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the agent: %v\n%s", err, out)
	}
}

// cleanEnv is the environment without the enrollment variables, so the
// postinstall does not enroll this machine.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CORDON_") {
			env = append(env, kv)
		}
	}
	return env
}

func sh(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustSh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := sh(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// TestInstallUpgradePurgeDeb installs the agent package on this machine
// with dpkg, checks what it put there and what the agent says, upgrades
// it over enrollment, spool and isolation state, and purges it.
func TestInstallUpgradePurgeDeb(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installing a package needs root")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	if _, err := sh(t, "dpkg", "-s", "cordon-agent"); err == nil {
		t.Skip("cordon-agent is already installed on this machine; not touching it")
	}
	for _, p := range []string{"/etc/cordon/agent.yaml", "/var/lib/cordon-agent", "/usr/bin/cordon-agent"} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("%s exists on this machine; not touching it", p)
		}
	}
	t.Cleanup(func() {
		if _, err := sh(t, "dpkg", "-s", "cordon-agent"); err == nil {
			sh(t, "dpkg", "--purge", "cordon-agent")
		}
	})

	// Two versions of the package.
	var debs [2]string
	for i, v := range []string{"v1.0.0", "v1.1.0"} {
		bin := t.TempDir()
		buildAgent(t, bin, v)
		o := Options{Root: "../../..", Bin: bin, Arch: "amd64", Version: v, Commit: "0123456789ab", Date: testDate,
			Out: t.TempDir(), Formats: []string{"deb"}, Packages: []string{"agent"}}
		if out, err := exec.Command("go", "env", "GOARCH").Output(); err == nil {
			o.Arch = strings.TrimSpace(string(out))
		}
		paths, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		debs[i] = paths[0]
	}

	mustSh(t, "dpkg", "-i", debs[0])
	for path, mode := range map[string]os.FileMode{
		"/usr/bin/cordon-agent":                        0o755,
		"/etc/cordon/agent.yaml":                       0o600,
		"/usr/lib/systemd/system/cordon-agent.service": 0o644,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("after install: %v", err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	unit, _ := os.ReadFile("/usr/lib/systemd/system/cordon-agent.service")
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/cordon-agent \"run\"") {
		t.Errorf("installed unit:\n%s", unit)
	}
	if out := mustSh(t, "/usr/bin/cordon-agent", "--version"); !strings.HasPrefix(out, "cordon-agent v1.0.0 (commit 0123456789ab, built 2026-03-01T12:00:00Z,") {
		t.Errorf("--version: %q", out)
	}
	// With no --config the agent reads the packaged file.
	if out := mustSh(t, "/usr/bin/cordon-agent", "config", "check"); strings.TrimSpace(out) != "ok: /etc/cordon/agent.yaml" {
		t.Errorf("config check: %q", out)
	}
	// The service: installed and stopped (not enrolled) where systemd
	// runs; elsewhere a clear error naming the service manager.
	out, err := sh(t, "/usr/bin/cordon-agent", "service", "status")
	if _, serr := os.Stat("/run/systemd/system"); serr == nil {
		if err != nil || !strings.Contains(out, "cordon-agent: stopped (linux-systemd)") {
			t.Errorf("service status under systemd: %v %q", err, out)
		}
	} else if err == nil || !strings.Contains(out, "cordon-agent: service status: cordon-agent is not installed with ") ||
		!strings.Contains(out, "systemd is not running here") || strings.Contains(out, "panic") {
		t.Errorf("service status without systemd: %v %q", err, out)
	}

	// State as a running, enrolled, isolated agent leaves it, and an
	// edited configuration.
	state := map[string]string{
		"/var/lib/cordon-agent/agent.json":        `{"agent_id":"a1"}`,
		"/var/lib/cordon-agent/spool/000001.vlog": "spooled findings",
		"/var/lib/cordon-agent/isolation.json":    `{"isolated":true}`,
	}
	for p, content := range state {
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	edited := "# edited\nlog_level: debug\n"
	if err := os.WriteFile("/etc/cordon/agent.yaml", []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}

	mustSh(t, "dpkg", "-i", debs[1])
	if out := mustSh(t, "/usr/bin/cordon-agent", "--version"); !strings.HasPrefix(out, "cordon-agent v1.1.0 ") {
		t.Errorf("after upgrade, --version: %q", out)
	}
	for p, content := range state {
		if b, err := os.ReadFile(p); err != nil || string(b) != content {
			t.Errorf("after upgrade %s: %q, %v", p, b, err)
		}
	}
	if b, _ := os.ReadFile("/etc/cordon/agent.yaml"); string(b) != edited {
		t.Errorf("the upgrade replaced the edited configuration: %q", b)
	}

	mustSh(t, "dpkg", "--purge", "cordon-agent")
	for _, p := range []string{"/usr/bin/cordon-agent", "/etc/cordon", "/var/lib/cordon-agent", "/usr/lib/systemd/system/cordon-agent.service"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("after purge %s is left", p)
		}
	}
	if out, err := sh(t, "dpkg", "-s", "cordon-agent"); err == nil {
		t.Errorf("dpkg still knows the package:\n%s", out)
	}
}

// TestRPMContents lists what the rpm holds, with rpm itself.
func TestRPMContents(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed")
	}
	o := options(t, fakeBinaries(t))
	o.Formats = []string{"rpm"}
	paths, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		info := mustSh(t, "rpm", "-qip", p)
		list := mustSh(t, "rpm", "-qlp", p)
		conf := mustSh(t, "rpm", "-qcp", p)
		scripts := mustSh(t, "rpm", "-qp", "--scripts", p)
		name := "cordon-agent"
		if strings.Contains(filepath.Base(p), "collector") {
			name = "cordon-collector"
		}
		short := strings.TrimPrefix(name, "cordon-")
		if !strings.Contains(info, "Name        : "+name) || !strings.Contains(info, "Version     : 1.0.0") {
			t.Errorf("%s info:\n%s", p, info)
		}
		for _, f := range []string{"/usr/bin/" + name, "/etc/cordon/" + short + ".yaml", "/usr/lib/systemd/system/" + name + ".service"} {
			if !strings.Contains(list, f+"\n") {
				t.Errorf("%s lacks %s:\n%s", p, f, list)
			}
		}
		if strings.TrimSpace(conf) != "/etc/cordon/"+short+".yaml" {
			t.Errorf("%s config files: %q", p, conf)
		}
		if !strings.Contains(scripts, "preuninstall scriptlet") || !strings.Contains(scripts, "postinstall scriptlet") {
			t.Errorf("%s scripts:\n%s", p, scripts)
		}
	}
}
