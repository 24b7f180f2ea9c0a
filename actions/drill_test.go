package actions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

func testMarker(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "cordon-drill-test-" + hex.EncodeToString(b)
}

func skipUnlessLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("drills run on linux, not %s", runtime.GOOS)
	}
}

// startEvents turns the processes a drill started into the process start
// events a sensor reports for them.
func startEvents(steps []step) []ecs.Event {
	var evs []ecs.Event
	for i, s := range steps {
		evs = append(evs, ecs.Event{
			Timestamp: time.Now(),
			Event:     ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
			Process: &ecs.Process{
				PID:         1000 + i,
				Executable:  s.exe,
				Name:        filepath.Base(s.exe),
				CommandLine: s.commandLine(),
				Args:        slices.Clone(s.args),
			},
		})
	}
	return evs
}

// TestDrillIsFlagged runs each scenario for real and feeds the processes
// it started, as a sensor would report them, to the built-in rules.
func TestDrillIsFlagged(t *testing.T) {
	skipUnlessLinux(t)
	tests := []struct {
		name  string
		run   func(d *drill, ctx context.Context) (string, error)
		needs string
		steps int
		rule  string
	}{
		{"tmp-exec", (*drill).tmpExec, "", 2, detectors.RuleIDExecFromTempDir},
		{"reverse-shell", (*drill).reverseShell, "bash", 1, detectors.RuleIDShellToSocket},
		{"download-pipe with curl", func(d *drill, ctx context.Context) (string, error) {
			return d.downloadPipe(ctx, true)
		}, "curl", 1, detectors.RuleIDDownloadToShell},
		{"download-pipe without curl", func(d *drill, ctx context.Context) (string, error) {
			return d.downloadPipe(ctx, false)
		}, "", 1, detectors.RuleIDDownloadToShell},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needs != "" && !hasProgram(tt.needs) {
				t.Skipf("%s is not installed", tt.needs)
			}
			marker := testMarker(t)
			var steps []step
			d := &drill{marker: marker, observe: func(s step) { steps = append(steps, s) }}
			result, err := tt.run(d, t.Context())
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("result: %s", result)
			if len(steps) != tt.steps {
				t.Fatalf("started %d processes, want %d: %+v", len(steps), tt.steps, steps)
			}
			for _, s := range steps {
				if !strings.Contains(s.exe, marker) && !strings.Contains(s.commandLine(), marker) {
					t.Errorf("process %s (%s) does not carry the marker", s.exe, s.commandLine())
				}
			}
			e := detectors.NewEngine(detectors.Builtin()...)
			var fired []string
			for _, ev := range startEvents(steps) {
				for _, f := range e.Process(&ev) {
					fired = append(fired, f.Rule.ID)
					t.Logf("finding: %s", f.Summary)
				}
			}
			if !slices.Contains(fired, tt.rule) {
				t.Errorf("rule %s did not fire on %+v (fired %v)", tt.rule, steps, fired)
			}
			if tt.name == "tmp-exec" {
				dir := filepath.Dir(steps[0].exe)
				if filepath.Base(dir) != marker {
					t.Errorf("drill directory %s is not named after the marker", dir)
				}
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("drill directory %s not removed: %v", dir, err)
				}
			}
		})
	}
}

func TestDrillAll(t *testing.T) {
	skipUnlessLinux(t)
	if !hasProgram("bash") {
		t.Skip("bash is not installed")
	}
	result, err := Drill(t.Context(), ScenarioAll, testMarker(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range DrillScenarios() {
		if s != ScenarioAll && !strings.Contains(result, s+": ran") {
			t.Errorf("result %q lacks scenario %s", result, s)
		}
	}
}

func TestDrillDefaultScenario(t *testing.T) {
	skipUnlessLinux(t)
	result, err := Drill(t.Context(), "", testMarker(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(result, DefaultDrillScenario+": ") {
		t.Errorf("result %q is not from %s", result, DefaultDrillScenario)
	}
}

func TestDrillRefusesExistingDirectory(t *testing.T) {
	skipUnlessLinux(t)
	marker := testMarker(t)
	dir := filepath.Join("/dev/shm", marker)
	if _, err := os.Stat("/dev/shm"); err != nil {
		dir = filepath.Join(os.TempDir(), marker)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(dir)
	if _, err := Drill(t.Context(), ScenarioTmpExec, marker); err == nil {
		t.Error("drill reused an existing directory")
	}
}

func TestDrillRejects(t *testing.T) {
	skipUnlessLinux(t)
	_, err := Drill(t.Context(), "rm-rf", testMarker(t))
	if err == nil {
		t.Fatal("unknown scenario accepted")
	}
	for _, s := range DrillScenarios() {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name scenario %s", err, s)
		}
	}
	for _, m := range []string{"", "..", "../x", "a/b", "a b", "-rf", "a;reboot", "a$(id)", "a'b", strings.Repeat("a", 101)} {
		if _, err := Drill(t.Context(), ScenarioTmpExec, m); err == nil {
			t.Errorf("marker %q accepted", m)
		}
	}
}

func TestDrillHonoursContext(t *testing.T) {
	skipUnlessLinux(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Drill(ctx, ScenarioTmpExec, testMarker(t)); err == nil {
		t.Error("drill ran with a cancelled context")
	}
}

func TestDrillScenarios(t *testing.T) {
	got := DrillScenarios()
	want := []string{ScenarioTmpExec, ScenarioReverseShell, ScenarioDownloadPipe, ScenarioAll}
	if !slices.Equal(got, want) {
		t.Errorf("DrillScenarios() = %v, want %v", got, want)
	}
}
