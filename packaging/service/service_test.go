package service

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden units")

// The units the packages ship, against testdata/*.service.
func TestSystemdUnitGolden(t *testing.T) {
	for _, spec := range []Spec{Agent, Collector} {
		t.Run(spec.Name, func(t *testing.T) {
			got, err := SystemdUnit(spec, "/usr/bin/"+spec.Name, []string{"run"})
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", spec.Name+".service")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("unit differs from %s (go test -update to accept):\n%s", golden, got)
			}
		})
	}
}

// What each unit must keep, whatever else changes.
func TestSystemdUnitHardening(t *testing.T) {
	agent, _ := SystemdUnit(Agent, "/usr/bin/cordon-agent", []string{"run"})
	collector, _ := SystemdUnit(Collector, "/usr/bin/cordon-collector", []string{"run"})
	for _, tc := range []struct {
		unit string
		want []string
	}{
		{agent, []string{"ExecStart=/usr/bin/cordon-agent \"run\"\n", "User=root\n", "Restart=on-failure\n", "NoNewPrivileges=yes\n",
			"StateDirectory=cordon-agent\n", "CapabilityBoundingSet=CAP_NET_ADMIN ", " CAP_KILL ", "EnvironmentFile=-/etc/default/cordon-agent\n"}},
		{collector, []string{"User=cordon\n", "ProtectSystem=strict\n", "NoNewPrivileges=yes\n", "StateDirectory=cordon\n",
			"ReadWritePaths=/var/lib/cordon /var/log/cordon\n", "Restart=on-failure\n", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"}},
	} {
		for _, w := range tc.want {
			if !strings.Contains(tc.unit, w) {
				t.Errorf("unit lacks %q:\n%s", w, tc.unit)
			}
		}
	}
	for _, forbidden := range []string{"CAP_SYS_MODULE", "CAP_SETUID", "CAP_NET_RAW"} {
		if strings.Contains(agent, forbidden) {
			t.Errorf("the agent keeps %s", forbidden)
		}
	}
}

func TestSystemdUnitQuotesPaths(t *testing.T) {
	got, err := SystemdUnit(Agent, "/opt/my cordon/cordon-agent", []string{"run", "--config", `/etc/a "b".yaml`})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `ExecStart=/opt/my\x20cordon/cordon-agent "run" "--config" "/etc/a \"b\".yaml"`) {
		t.Errorf("got %s", got)
	}
}

func TestArgs(t *testing.T) {
	args, err := Args("")
	if err != nil || len(args) != 1 || args[0] != "run" {
		t.Errorf("no config: %v %v", args, err)
	}
	args, err = Args("agent.yaml")
	if err != nil || len(args) != 3 || !filepath.IsAbs(args[2]) {
		t.Errorf("relative config: %v %v", args, err)
	}
}

func TestControlUnknownAction(t *testing.T) {
	if _, err := Control(Agent, "restartt", nil); err == nil || !strings.Contains(err.Error(), "unknown action") {
		t.Errorf("error %v", err)
	}
}

// Status of a service that is not installed is a clear error, whatever
// the machine's service manager.
func TestStatusNotInstalled(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the service managers of other systems are not exercised here")
	}
	spec := Agent
	spec.Name = "cordon-test-absent"
	out, err := Control(spec, "status", nil)
	if !errors.Is(err, ErrNotInstalled) {
		t.Skipf("this machine reports %q, %v for an absent service", out, err)
	}
	if !strings.Contains(err.Error(), "cordon-test-absent is not installed with ") || !strings.Contains(err.Error(), "service install") {
		t.Errorf("error %v", err)
	}
}
