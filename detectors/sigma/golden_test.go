package sigma_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/detectors/rules"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/findings")

var testClock = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// goldenFinding is one finding of a golden file, with the line of the
// events file that caused it. Evidence is left out: the event is on that
// line.
type goldenFinding struct {
	Line       int            `json:"line"`
	Rule       detectors.Rule `json:"rule"`
	Severity   string         `json:"severity"`
	Tactics    []string       `json:"tactics"`
	Techniques []string       `json:"techniques"`
	Summary    string         `json:"summary"`
	ObservedAt time.Time      `json:"observed_at"`
}

// TestGolden runs every testdata/events/NAME.jsonl through the shipped
// rule pack and compares the findings with testdata/findings/NAME.json.
// "go test ./detectors/sigma -update" rewrites them; review the diff.
func TestGolden(t *testing.T) {
	set, err := rules.Load()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no event files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		t.Run(name, func(t *testing.T) {
			e := detectors.NewEngine()
			e.AddBatch(set.Batch())
			e.SetClock(func() time.Time { return testClock })
			got := []goldenFinding{}
			for i, ev := range readEvents(t, file) {
				for _, f := range e.Process(&ev) {
					if len(f.Evidence) != 1 || f.Rule.ID == "" || len(f.Techniques) == 0 || f.Rule.Author == "" || len(f.Rule.References) == 0 && !strings.HasPrefix(f.Rule.Author, "Cordon") {
						t.Errorf("line %d: incomplete finding %+v", i+1, f)
					}
					got = append(got, goldenFinding{
						Line: i + 1, Rule: f.Rule, Severity: f.Severity, Tactics: f.Tactics,
						Techniques: f.Techniques, Summary: f.Summary, ObservedAt: f.ObservedAt,
					})
				}
			}
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			gotJSON = append(gotJSON, '\n')
			golden := filepath.Join("testdata", "findings", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
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
	var out []ecs.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev ecs.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s:%d: %v", file, len(out)+1, err)
		}
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
