package coverage

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// AtomicsFolder is where a test's PathToAtomicsFolder points: the files of
// testdata/src are found below it when a test runs.
const AtomicsFolder = "/tmp/AtomicRedTeam/atomics"

// Atomic is one test of testdata/linux-tests.json (Atomic Red Team, MIT
// licence, see testdata/LICENSE.txt).
type Atomic struct {
	Technique      string            `json:"technique"`
	Name           string            `json:"name"`
	GUID           string            `json:"guid"`
	Executor       string            `json:"executor"`
	Command        string            `json:"command"`
	Cleanup        string            `json:"cleanup"`
	Inputs         map[string]string `json:"inputs"`
	InputOverrides string            `json:"input_overrides"`
	Verdict        string            `json:"safe_verdict"`
	Telemetry      string            `json:"expected_telemetry"`
	// Deps holds each dependency as [description, check, get prerequisite].
	Deps [][]string `json:"deps"`
	// DepExecutor is the shell of the dependency commands ("sh", "bash"),
	// empty for the test's own executor.
	DepExecutor string `json:"dep_exec"`
}

// Dependency is a prerequisite of a test: Check exits 0 when it is met,
// Get tries to meet it.
type Dependency struct {
	Description, Check, Get string
}

// Load reads the tests from a linux-tests.json file.
func Load(path string) ([]Atomic, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the atomic tests: %w", err)
	}
	var atomics []Atomic
	if err := json.Unmarshal(b, &atomics); err != nil {
		return nil, fmt.Errorf("decoding the atomic tests in %s: %w", path, err)
	}
	for i, a := range atomics {
		if a.Executor != "sh" && a.Executor != "bash" {
			return nil, fmt.Errorf("%s: test %d (%s): executor %q, want sh or bash", path, i, a.Name, a.Executor)
		}
		for j, d := range a.Deps {
			if len(d) != 3 {
				return nil, fmt.Errorf("%s: test %d (%s): dependency %d has %d parts, want 3", path, i, a.Name, j, len(d))
			}
		}
	}
	return atomics, nil
}

// Fill returns s with the test's inputs filled in: its default inputs,
// replaced by the safe overrides the corpus gives, and
// PathToAtomicsFolder.
func (a *Atomic) Fill(s string) string {
	in := map[string]string{}
	for k, v := range a.Inputs {
		in[k] = v
	}
	for _, kv := range strings.FieldsFunc(a.InputOverrides, func(r rune) bool { return r == ';' || r == ',' }) {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok {
			in[k] = v
		}
	}
	for i := 0; i < 3; i++ { // inputs may refer to inputs
		for k, v := range in {
			s = strings.ReplaceAll(s, "#{"+k+"}", v)
		}
	}
	return strings.ReplaceAll(s, "PathToAtomicsFolder", AtomicsFolder)
}

// CommandLine returns the test's command with its inputs filled in.
func (a *Atomic) CommandLine() string { return a.Fill(a.Command) }

// CleanupLine returns the test's cleanup command with its inputs filled
// in, empty when it has none.
func (a *Atomic) CleanupLine() string { return strings.TrimSpace(a.Fill(a.Cleanup)) }

// Dependencies returns the test's prerequisites with their inputs filled
// in.
func (a *Atomic) Dependencies() []Dependency {
	var out []Dependency
	for _, d := range a.Deps {
		out = append(out, Dependency{Description: strings.TrimSpace(d[0]), Check: a.Fill(d[1]), Get: a.Fill(d[2])})
	}
	return out
}

// DependencyShell is the shell the prerequisites run in.
func (a *Atomic) DependencyShell() string {
	if a.DepExecutor != "" {
		return a.DepExecutor
	}
	return a.Executor
}

// Caution reports whether the corpus marks the test as safe only with
// care (it changes the host's state until its cleanup runs): such tests
// run last.
func (a *Atomic) Caution() bool { return a.Verdict == "SAFE_CAUTION" }

// SameTechnique reports whether two ATT&CK technique ids name the same
// technique, or one is a sub-technique of the other.
func SameTechnique(a, b string) bool {
	base := func(s string) string { s, _, _ = strings.Cut(s, "."); return s }
	return a == b || (base(a) == base(b) && (!strings.Contains(a, ".") || !strings.Contains(b, ".")))
}

// SortFound orders what a live run found for a test as the coverage
// document lists it, so that a run finding the same things writes the
// same row whatever order the collector returned the findings in: the
// techniques that are the test's own technique (SameTechnique) first,
// then the others, each in ascending order; rules by name. It sorts in
// place.
func SortFound(technique string, techniques, rules []string) {
	slices.SortFunc(techniques, func(a, b string) int {
		ownA, ownB := SameTechnique(a, technique), SameTechnique(b, technique)
		if ownA != ownB {
			if ownA {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	slices.Sort(rules)
}

// ReplaceSection returns doc with the text between the lines
// "<!-- name:begin -->" and "<!-- name:end -->" replaced by body, so that
// the replay and the live run each rewrite only their own part of
// docs/detection-coverage.md. A missing section is appended.
func ReplaceSection(doc, name, body string) (string, error) {
	begin, end := "<!-- "+name+":begin -->\n", "<!-- "+name+":end -->\n"
	body = begin + strings.TrimRight(body, "\n") + "\n" + end
	i := strings.Index(doc, begin)
	if i < 0 {
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		return doc + body, nil
	}
	j := strings.Index(doc[i:], end)
	if j < 0 {
		return "", fmt.Errorf("section %s: %q without %q", name, strings.TrimSpace(begin), strings.TrimSpace(end))
	}
	return doc[:i] + body + doc[i+j+len(end):], nil
}
