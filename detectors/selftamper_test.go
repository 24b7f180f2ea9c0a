package detectors

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

func TestSelfTamperFlagsOnlyTheAgentsFiles(t *testing.T) {
	eng := NewEngine(NewSelfTamper([]string{"/usr/local/bin/cordon-agent", "/etc/cordon/agent.yml", ""}))
	file := func(path, typ, action string) *ecs.Event {
		return &ecs.Event{Event: ecs.Meta{Category: ecs.CategoryFile, Type: typ, Action: action}, File: &ecs.File{Path: path}}
	}
	for _, tt := range []struct {
		ev   *ecs.Event
		want bool
	}{
		{file("/usr/local/bin/cordon-agent", ecs.TypeChange, "updated"), true},
		{file("/etc/cordon/./agent.yml", ecs.TypeDeletion, "deleted"), true},
		{file("/usr/local/bin/other", ecs.TypeChange, "updated"), false},
		{&ecs.Event{Event: ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart}, Process: &ecs.Process{Executable: "/usr/local/bin/cordon-agent"}}, false},
	} {
		fs := eng.Process(tt.ev)
		if got := len(fs) == 1 && fs[0].Rule.ID == RuleIDAgentFilesModified; got != tt.want {
			t.Errorf("%+v: findings %+v, want %v", tt.ev.File, fs, tt.want)
		}
		if tt.want && (fs[0].Severity != SeverityHigh || fs[0].Techniques[0] != techDisableTools) {
			t.Errorf("finding %+v", fs[0])
		}
	}
}

func TestIsolationTamperedFinding(t *testing.T) {
	at := time.Unix(1700000000, 0)
	f := IsolationTampered("no table", nil, at)
	if f.Rule.ID != RuleIDIsolationTampered || f.Severity != SeverityHigh || len(f.Techniques) == 0 || f.DetectedAt != at {
		t.Fatalf("finding: %+v", f)
	}
	if !strings.Contains(f.Summary, "no table") || !strings.Contains(f.Summary, "have been re-applied") {
		t.Errorf("summary %q", f.Summary)
	}
	f = IsolationTampered("no table", errors.New("permission denied"), at)
	if !strings.Contains(f.Summary, "could not be re-applied (permission denied)") {
		t.Errorf("summary after a failed re-apply: %q", f.Summary)
	}
	pf, err := f.Proto("01890a5d-ac96-774b-bcce-b302099a8057")
	if err != nil {
		t.Fatal(err)
	}
	// The collector refuses evidence that is not a JSON array.
	if string(pf.GetEvidenceJson()) != "[]" {
		t.Errorf("evidence %q, want []", pf.GetEvidenceJson())
	}
}
