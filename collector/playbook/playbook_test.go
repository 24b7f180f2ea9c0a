package playbook

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var types = []string{"ransomware", "malware", "data_breach", "denial_of_service", "lateral_movement", "credential_access",
	"privilege_escalation", "persistence", "unauthorized_access", "reconnaissance", "policy_violation", "unclassified"}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "p.yaml: empty playbook"},
		{"not yaml", "type: [", "p.yaml:1: did not find expected node content"},
		{"unknown key", "type: malware\nname: x\ncolour: red\n", "p.yaml:3: field colour not found in type playbook.Playbook"},
		{"no type", "name: x\n", "p.yaml:1: type: missing"},
		{"unknown type", "type: mischief\nname: x\n", `p.yaml:1: type: unknown incident type "mischief"`},
		{"no name", "type: malware\n", "p.yaml:1: name: missing"},
		{"bad step id", "type: malware\nname: x\nsteps:\n  - id: Bad Id\n    title: t\n", `p.yaml:4: steps[0].id: "Bad Id" is not a lowercase id`},
		{"duplicate step", "type: malware\nname: x\nsteps:\n  - id: a\n    title: t\n  - id: a\n    title: u\n", `p.yaml:6: steps[1].id: "a" used twice`},
		{"step without title", "type: malware\nname: x\nsteps:\n  - id: a\n", "p.yaml:4: steps[0].title: missing"},
		{"bad action", "type: malware\nname: x\nactions:\n  - id: a\n    action: nuke\n", `p.yaml:4: actions[0].action: "nuke" is not one of isolate`},
		{"bad criticality", "type: malware\nname: x\nactions:\n  - id: a\n    action: isolate\n    when: {criticality_below: huge}\n", `p.yaml:4: actions[0].when.criticality_below: "huge"`},
		{"bad approval", "type: malware\nname: x\nactions:\n  - id: a\n    action: isolate\n    approval_from: unknown\n", `p.yaml:4: actions[0].approval_from: "unknown"`},
		{"bad priority", "type: malware\nname: x\nactions:\n  - id: a\n    action: isolate\n    when: {min_priority: P9}\n", `p.yaml:4: actions[0].when.min_priority: "P9" is not P1 to P5`},
		{"wrong type of value", "type: malware\nname: x\ndry_run: maybe\n", "p.yaml:3: cannot unmarshal !!str `maybe` into bool"},
		{"unknown when key", "type: malware\nname: x\nactions:\n  - id: a\n    action: isolate\n    when: {host: x}\n", "p.yaml:6: field host not found in type playbook.When"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.yaml), types)
			var pe *Error
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %v, want one starting %q", err, tt.want)
			}
		})
	}
}

func TestDefaultsCoverEveryType(t *testing.T) {
	s, err := Load("", types)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range types {
		p := s[typ]
		if p == nil || len(p.Steps) == 0 || !strings.HasPrefix(p.Source, "embedded:") {
			t.Errorf("type %s: playbook %+v", typ, p)
		}
	}
	if a := s["ransomware"].Actions; len(a) != 1 || a[0].Action != "isolate" || a[0].ApprovalFrom != "high" {
		t.Errorf("ransomware actions %+v", a)
	}
}

func TestLoadOverrides(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("mal.yaml", "type: malware\nname: Our malware runbook\ndry_run: true\nsteps:\n  - id: call\n    title: Call the SOC lead\n")
	write("notes.txt", "not a playbook")
	s, err := Load(dir, types)
	if err != nil {
		t.Fatal(err)
	}
	if p := s["malware"]; p.Name != "Our malware runbook" || !p.DryRun || len(p.Steps) != 1 || p.Source != filepath.Join(dir, "mal.yaml") {
		t.Errorf("override %+v", p)
	}
	if s["ransomware"] == nil {
		t.Error("defaults lost")
	}

	write("mal2.yml", "type: malware\nname: Another\n")
	if _, err := Load(dir, types); err == nil || !strings.Contains(err.Error(), "mal2.yml:1: type malware already has a playbook in") {
		t.Errorf("two files for one type: %v", err)
	}
	os.Remove(filepath.Join(dir, "mal2.yml"))
	write("broken.yaml", "type: malware\nname: x\nsteps:\n  - id: a\n    titel: t\n")
	if _, err := Load(dir, types); err == nil || !strings.Contains(err.Error(), "broken.yaml:5: field titel not found") {
		t.Errorf("broken file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing"), types); err == nil {
		t.Error("a missing folder loads")
	}
}

func TestConditions(t *testing.T) {
	a := Action{ID: "x", Action: "isolate", When: When{CriticalityBelow: "high", MinPriority: "P2"}, ApprovalFrom: "medium"}
	tests := []struct {
		criticality, priority string
		drill                 bool
		applies, approval     bool
	}{
		{"low", "P1", false, true, false},
		{"medium", "P2", false, true, true},
		{"unknown", "P2", false, true, true},
		{"high", "P1", false, false, true},
		{"critical", "P1", false, false, true},
		{"low", "P3", false, false, false},
		{"low", "P1", true, false, false},
	}
	for _, tt := range tests {
		if got := a.Applies(tt.criticality, tt.priority, tt.drill); got != tt.applies {
			t.Errorf("Applies(%s, %s, drill %v) = %v", tt.criticality, tt.priority, tt.drill, got)
		}
		if got := a.NeedsApproval(tt.criticality); got != tt.approval {
			t.Errorf("NeedsApproval(%s) = %v", tt.criticality, got)
		}
	}
	a.When = When{Drill: true}
	if !a.Applies("critical", "P5", true) {
		t.Error("an action without conditions but drill: true skips a drill")
	}
}

func FuzzParse(f *testing.F) {
	entries, _ := defaults.ReadDir("defaults")
	for _, e := range entries {
		b, _ := defaults.ReadFile("defaults/" + e.Name())
		f.Add(b)
	}
	f.Add([]byte("type: malware\nname: x\nsteps: [{id: a, title: b}]\nactions: [{id: c, action: isolate, when: {criticality_below: high}}]\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("type: &a malware\nname: *a\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse("f.yaml", b, types)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.File != "f.yaml" || pe.Msg == "" {
				t.Fatalf("error %v does not name the file", err)
			}
			return
		}
		if p.Type == "" || p.Name == "" {
			t.Fatalf("accepted playbook without type or name: %+v", p)
		}
	})
}
