package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

const markerRule = `title: Marker Command
id: 3d6c1a52-2c55-4b7c-9d0e-6a1f54c1e001
author: Test
tags:
    - attack.execution
    - attack.t1059.004
logsource:
    category: process_creation
    product: linux
detection:
    selection:
        CommandLine|contains: cordon-marker-7f3a
    condition: selection
level: high
`

// authorizedKeysOverride takes the id of the built-in authorized_keys
// rule and narrows it to one user's file.
const authorizedKeysOverride = `title: Authorized Keys Of Root Written
id: 6a1c5bed-0194-47c8-8cb1-00a7d086f31b
logsource:
    category: file_event
    product: linux
detection:
    selection:
        TargetFilename: /root/.ssh/authorized_keys
    condition: selection
level: critical
`

func TestCompilePushedRefusesWithFileAndLine(t *testing.T) {
	broken := "title: Broken\nid: 11111111-2222-3333-4444-555555555555\nlogsource:\n    category: process_creation\n    product: linux\ndetection:\n    selection:\n        CommandLine|nosuchmodifier: x\n    condition: selection\n"
	for _, tc := range []struct {
		name  string
		files []File
		file  string
		line  int
		want  string
	}{
		{"unknown modifier", []File{{"ok.yml", []byte(markerRule)}, {"sub/broken.yml", []byte(broken)}}, "sub/broken.yml", 8, "nosuchmodifier"},
		{"bad yaml", []File{{"bad.yaml", []byte("title: x\n  id: [\n")}}, "bad.yaml", 2, "YAML"},
		{"no id", []File{{"noid.yml", []byte(strings.Replace(markerRule, "id: 3d6c1a52-2c55-4b7c-9d0e-6a1f54c1e001\n", "", 1))}}, "noid.yml", 1, "no id"},
		{"duplicate id", []File{{"a.yml", []byte(markerRule)}, {"b.yml", []byte(markerRule)}}, "b.yml", 1, "already used by a.yml:1"},
		{"go detector id", []File{{"a.yml", []byte(strings.Replace(markerRule, "3d6c1a52-2c55-4b7c-9d0e-6a1f54c1e001", detectors.Builtin()[0].Rule().ID, 1))}}, "a.yml", 1, "built-in detector"},
		{"path escape", []File{{"../a.yml", []byte(markerRule)}}, "../a.yml", 0, "clean relative path"},
		{"empty", nil, ".", 0, "no rule files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := CompilePushed(tc.files)
			var se *SetError
			if !errors.As(err, &se) {
				t.Fatalf("CompilePushed = %d rules, %v; want a *SetError", len(rs), err)
			}
			if rs != nil {
				t.Errorf("a refused set still returned %d rules", len(rs))
			}
			p := se.Problems[len(se.Problems)-1]
			if p.File != tc.file || p.Line != tc.line || !strings.Contains(p.Error(), tc.want) {
				t.Errorf("problem = %q at %s:%d; want %q at %s:%d", p.Error(), p.File, p.Line, tc.want, tc.file, tc.line)
			}
			if !strings.Contains(err.Error(), tc.file) {
				t.Errorf("error %q does not name the file %s", err, tc.file)
			}
		})
	}
}

func TestComposeAddsAndOverrides(t *testing.T) {
	builtin, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := CompilePushed([]File{{"marker.yml", []byte(markerRule)}, {"keys.yml", []byte(authorizedKeysOverride)}})
	if err != nil {
		t.Fatal(err)
	}
	set := Compose(builtin, pushed)
	if got, want := len(set.Rules()), len(builtin)+1; got != want {
		t.Fatalf("composed set has %d rules, want %d (built-in plus one added, one replaced)", got, want)
	}
	eng := detectors.NewEngine()
	eng.AddBatch(set.Batch())

	fs := eng.Process(&ecs.Event{Event: ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
		Process: &ecs.Process{PID: 10, Executable: "/bin/echo", Name: "echo", CommandLine: "echo cordon-marker-7f3a", Args: []string{"echo", "cordon-marker-7f3a"}}})
	if !hasRule(fs, "3d6c1a52-2c55-4b7c-9d0e-6a1f54c1e001") {
		t.Errorf("the pushed rule did not match its marker; findings %v", ruleIDs(fs))
	}
	// The built-in authorized_keys rule is replaced: another user's file
	// no longer matches, root's does, at the pushed rule's level.
	write := func(p string) []detectors.Finding {
		return eng.Process(&ecs.Event{Event: ecs.Meta{Category: ecs.CategoryFile, Type: ecs.TypeChange},
			File: &ecs.File{Path: p}, Process: &ecs.Process{PID: 11, Executable: "/usr/bin/tee", Name: "tee"}})
	}
	if fs := write("/home/u/.ssh/authorized_keys"); hasRule(fs, "6a1c5bed-0194-47c8-8cb1-00a7d086f31b") {
		t.Error("the built-in authorized_keys rule still runs after a pushed rule took its id")
	}
	fs = write("/root/.ssh/authorized_keys")
	if !hasRule(fs, "6a1c5bed-0194-47c8-8cb1-00a7d086f31b") || fs[0].Severity != detectors.SeverityCritical {
		t.Errorf("the overriding rule did not match root's file at its level; findings %v", fs)
	}
}

func TestDigestIgnoresOrder(t *testing.T) {
	a := []File{{"a.yml", []byte("x")}, {"b.yml", []byte("y")}}
	b := []File{a[1], a[0]}
	if Digest(a) != Digest(b) {
		t.Error("digest depends on file order")
	}
	if Digest(a) == Digest([]File{{"a.yml", []byte("xb.yml")}}) {
		t.Error("digest does not separate names from contents")
	}
}

func hasRule(fs []detectors.Finding, id string) bool {
	for _, f := range fs {
		if f.Rule.ID == id {
			return true
		}
	}
	return false
}

func ruleIDs(fs []detectors.Finding) []string {
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.Rule.ID)
	}
	return ids
}

// FuzzCompilePushed feeds pushed file names and contents, as the API and
// the control stream take them, to the compile step: it returns rules or
// a *SetError, never panics, and a refused set returns no rules.
func FuzzCompilePushed(f *testing.F) {
	f.Add("marker.yml", markerRule)
	f.Add("../x.yml", markerRule)
	f.Add("a/b.yaml", "title: x\n  id: [\n")
	f.Fuzz(func(t *testing.T, name, content string) {
		rs, err := CompilePushed([]File{{Name: name, Content: []byte(content)}})
		if err != nil {
			var se *SetError
			if !errors.As(err, &se) || len(se.Problems) == 0 || rs != nil {
				t.Fatalf("CompilePushed(%q) = %d rules, %v", name, len(rs), err)
			}
			return
		}
		for _, r := range rs {
			if r.ID == "" {
				t.Fatalf("a rule without id was accepted from %q", name)
			}
		}
	})
}
