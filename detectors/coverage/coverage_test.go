package coverage

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/detectors/rules"
	"github.com/cordon-edr/cordon/detectors/stateful"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

var update = flag.Bool("update", false, "rewrite docs/detection-coverage.md")

// builtins run inside the shell without an exec.
var builtins = map[string]bool{
	"echo": true, "printf": true, "cd": true, "export": true, "set": true, "unset": true, "read": true,
	"while": true, "do": true, "done": true, "if": true, "then": true, "else": true, "elif": true, "fi": true,
	"for": true, "in": true, "case": true, "esac": true, "trap": true, "source": true, ".": true, "exit": true,
	"return": true, "local": true, "true": true, "false": true, "[": true, "[[": true, "]]": true, "test": true,
	"eval": true, "alias": true, "history": true, "{": true, "}": true, "function": true, "shift": true,
}

var (
	assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=\S*\s*`)
	subshell   = regexp.MustCompile(`\$\(([^()]*)\)`)
	splitter   = regexp.MustCompile(`\|\||&&|[;|&\n]`)
	fileWrite  = regexp.MustCompile(`(?:write|writes|append|appends|create|creates|modify|modifies|overwrite|chmod)\w* (/[^\s,;)]+)`)
)

// events returns the events a run of the test produces, as Cordon's
// sensors would report them: the executor's shell, each command it
// executes (builtins excluded, command substitutions included, sudo
// followed by the command it runs), and the files the test writes.
func replayEvents(a *Atomic) []ecs.Event {
	cmd := a.CommandLine()
	shell := "/usr/bin/sh"
	if a.Executor == "bash" {
		shell = "/usr/bin/bash"
	}
	t := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	pid := 5000
	wrapper := ecs.Parent{PID: pid, EntityID: fmt.Sprintf("boot-%d-1", pid), Executable: shell, Name: shell[strings.LastIndexByte(shell, '/')+1:], CommandLine: shell[strings.LastIndexByte(shell, '/')+1:] + " -c " + cmd}
	start := func(exe, cmdline string, parent ecs.Parent) ecs.Event {
		pid++
		t = t.Add(10 * time.Millisecond)
		return ecs.Event{
			Timestamp: t,
			Event:     ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
			Process: &ecs.Process{
				PID: pid, EntityID: fmt.Sprintf("boot-%d-1", pid), Executable: exe, Name: exe[strings.LastIndexByte(exe, '/')+1:],
				CommandLine: cmdline, Args: strings.Fields(cmdline), WorkingDirectory: "/root", User: ecs.User{ID: "0", Name: "root"},
				Parent: &parent,
			},
		}
	}
	evs := []ecs.Event{start(shell, wrapper.CommandLine, ecs.Parent{PID: 4999, EntityID: "boot-4999-1", Executable: "/usr/bin/bash", Name: "bash", CommandLine: "-bash"})}
	var segments []string
	text := cmd
	for _, m := range subshell.FindAllStringSubmatch(cmd, -1) {
		segments = append(segments, m[1])
	}
	segments = append(segments, splitter.Split(text, -1)...)
	for _, seg := range segments {
		seg = strings.TrimSpace(strings.Trim(strings.TrimSpace(seg), "()`"))
		for {
			loc := assignment.FindStringIndex(seg)
			if loc == nil || loc[1] == len(seg) {
				break
			}
			seg = seg[loc[1]:]
		}
		fields := strings.Fields(seg)
		// Keywords that start a clause precede the command they run.
		for len(fields) > 0 && (fields[0] == "then" || fields[0] == "do" || fields[0] == "else" || fields[0] == "!" || fields[0] == "{") {
			fields = fields[1:]
		}
		if len(fields) == 0 || builtins[fields[0]] || strings.HasPrefix(fields[0], "#") || strings.Contains(fields[0], "=") {
			continue
		}
		parent := wrapper
		for {
			exe := fields[0]
			if !strings.HasPrefix(exe, "/") {
				exe = "/usr/bin/" + exe
			}
			ev := start(exe, strings.Join(fields, " "), parent)
			evs = append(evs, ev)
			if fields[0] != "sudo" && fields[0] != "nohup" && fields[0] != "env" || len(fields) < 2 {
				break
			}
			parent = ecs.Parent{PID: ev.Process.PID, EntityID: ev.Process.EntityID, Executable: exe, Name: fields[0], CommandLine: ev.Process.CommandLine}
			fields = fields[1:]
			for len(fields) > 1 && strings.HasPrefix(fields[0], "-") {
				fields = fields[1:]
			}
		}
	}
	// Files the test writes, from its expected telemetry.
	if _, files, ok := strings.Cut(a.Telemetry, "file:"); ok {
		for _, m := range fileWrite.FindAllStringSubmatch(files, -1) {
			path := strings.TrimRight(m[1], ".")
			mode := "0644"
			if strings.HasPrefix(m[0], "chmod") && strings.Contains(cmd, "u+s") || strings.Contains(cmd, "chmod 4") {
				mode = "4755"
			}
			t = t.Add(10 * time.Millisecond)
			evs = append(evs, ecs.Event{
				Timestamp: t,
				Event:     ecs.Meta{Category: ecs.CategoryFile, Type: ecs.TypeChange},
				Process:   evs[len(evs)-1].Process,
				File:      &ecs.File{Path: path, Name: path[strings.LastIndexByte(path, '/')+1:], Mode: mode},
			})
		}
	}
	return evs
}

type result struct {
	a          *Atomic
	events     int
	rules      []string
	techniques []string
	detected   bool
	right      bool
}

// TestAtomicCoverage replays every Atomic Red Team Linux test through the
// agent's detection engine (built-in rules, the Sigma pack and the
// stateful detectors) and checks the share detected, and detected with
// the test's technique, does not fall. Run with -update to rewrite
// docs/detection-coverage.md.
func TestAtomicCoverage(t *testing.T) {
	atomics, err := Load("testdata/linux-tests.json")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load()
	if err != nil {
		t.Fatal(err)
	}
	var results []result
	detected, right := 0, 0
	for i := range atomics {
		a := &atomics[i]
		e := detectors.NewEngine(append(detectors.Builtin(), stateful.All(nil)...)...)
		e.AddBatch(set.Batch())
		r := result{a: a}
		evs := replayEvents(a)
		r.events = len(evs)
		for j := range evs {
			for _, f := range e.Process(&evs[j]) {
				if !slices.Contains(r.rules, f.Rule.Name) {
					r.rules = append(r.rules, f.Rule.Name)
				}
				for _, tech := range f.Techniques {
					if !slices.Contains(r.techniques, tech) {
						r.techniques = append(r.techniques, tech)
					}
					if SameTechnique(tech, a.Technique) {
						r.right = true
					}
				}
			}
		}
		r.detected = len(r.rules) > 0
		if r.detected {
			detected++
		}
		if r.right {
			right++
		}
		results = append(results, r)
	}
	n := len(atomics)
	t.Logf("%d of %d detected (%.0f%%), %d with the right technique (%.0f%%)", detected, n, 100*float64(detected)/float64(n), right, 100*float64(right)/float64(n))
	// Floors at the measured figures: a change that loses coverage fails.
	if detected < minDetected || right < minRight {
		t.Errorf("coverage fell: %d detected (floor %d), %d with the right technique (floor %d)", detected, minDetected, right, minRight)
	}
	if *update {
		const path = "../../docs/detection-coverage.md"
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out, err := ReplaceSection(string(doc), "replay", report(results, detected, right))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Measured floors; raise them when coverage improves.
const (
	minDetected = 40
	minRight    = 32
)

func report(results []result, detected, right int) string {
	n := len(results)
	var b strings.Builder
	fmt.Fprintf(&b, `## Replay

Each test's command, with its inputs (and the safe overrides the corpus
gives) filled in, is turned into the events Cordon's sensors report for it:
the executor's shell started with the whole command, one process start per
command the shell executes (builtins left out, command substitutions and the
command behind sudo, env or nohup included, each a child of the shell), and
a file change for each file the test's expected telemetry says it writes.
The events go through the same engine the agent runs. A replay cannot see
what a test's scripts do beyond its own command line, nor what the sensors
would miss; the live run below can.

Generated by `+"`go test ./detectors/coverage -update`"+`.

| | Tests | Share |
| --- | --- | --- |
| Detected (any finding) | %d of %d | %.0f%% |
| Detected with the test's technique (same technique, or a sub-technique of it, or its parent) | %d of %d | %.0f%% |

| Technique | Test | Detected | Right technique | Techniques found | Rules |
| --- | --- | --- | --- | --- | --- |
`, detected, n, 100*float64(detected)/float64(n), right, n, 100*float64(right)/float64(n))
	yes := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.a.Technique, strings.ReplaceAll(r.a.Name, "|", "/"), yes(r.detected), yes(r.right),
			strings.Join(r.techniques, ", "), strings.ReplaceAll(strings.Join(r.rules, "; "), "|", "/"))
	}
	return b.String()
}

func TestSortFound(t *testing.T) {
	want := []string{"T1053", "T1053.003", "T1016", "T1059.004", "T1543.002"}
	wantRules := []string{"Bash Interactive Shell", "Local User Account Created", "New Cron File Created"}
	// Every order the findings can come in gives the same row.
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 4, 1, 3, 0}, {3, 0, 4, 2, 1}} {
		techniques := make([]string, len(order))
		rules := make([]string, 0, len(wantRules))
		for i, j := range order {
			techniques[i] = want[j]
			if j < len(wantRules) {
				rules = append(rules, wantRules[j])
			}
		}
		SortFound("T1053.003", techniques, rules)
		if !slices.Equal(techniques, want) {
			t.Errorf("order %v: techniques %v, want %v", order, techniques, want)
		}
		if !slices.Equal(rules, wantRules) {
			t.Errorf("order %v: rules %v, want %v", order, rules, wantRules)
		}
	}
	// A test whose technique was not found: all in ascending order.
	techniques := []string{"T1083", "T1059.004", "T1027"}
	SortFound("T1548.001", techniques, nil)
	if want := []string{"T1027", "T1059.004", "T1083"}; !slices.Equal(techniques, want) {
		t.Errorf("techniques %v, want %v", techniques, want)
	}
}
