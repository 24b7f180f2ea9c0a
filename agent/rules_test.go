package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/actions/isolation"
	"github.com/cordon-edr/cordon/agent/localapi"
	"github.com/cordon-edr/cordon/agent/spool"
	"github.com/cordon-edr/cordon/agent/watchdog"
	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

func markerRule(id, marker string) string {
	return `title: Marker ` + marker + `
id: ` + id + `
logsource:
    category: process_creation
    product: linux
detection:
    selection:
        CommandLine|contains: ` + marker + `
    condition: selection
level: high
`
}

const (
	ruleA = "3d6c1a52-2c55-4b7c-9d0e-6a1f54c1e00a"
	ruleB = "3d6c1a52-2c55-4b7c-9d0e-6a1f54c1e00b"
)

// testAgent is an Agent with only what detection and pushed rules need.
func testAgent(t *testing.T, stateDir string) *Agent {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	db, err := spool.OpenDB(filepath.Join(stateDir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := spool.Open(db, spool.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close(); db.Close() })
	rs, err := newRuleSets(stateDir, log)
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{log: log, spool: q, engine: detectors.NewEngine(), rules: rs, swaps: make(chan batchSwap),
		drills: newDrillMarks(), hub: localapi.NewHub(10), isolator: isolation.New(stateDir, log),
		dog: watchdog.New(watchdog.Options{Logger: log}), iocs: newIndicatorSets(stateDir, log)}
	a.sigma = a.engine.AddBatch(rs.initial().Batch())
	a.iocBatch = a.engine.AddBatch(a.iocs.initial())
	return a
}

func markerEvent(pid int, marker string) ecs.Event {
	return ecs.Event{Event: ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
		Process: &ecs.Process{PID: pid, Executable: "/bin/echo", Name: "echo", CommandLine: "echo " + marker, Args: []string{"echo", marker}}}
}

// waitFinding waits until the spool holds n findings and returns their
// rule ids in order.
func waitFinding(t *testing.T, q *spool.Queue, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		fs, err := q.Peek(100, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) >= n {
			var ids []string
			for _, f := range fs {
				ids = append(ids, f.GetRule().GetId())
			}
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool holds %d findings, want %d", len(fs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPushedRulesSwapWholeOrNotAtAll(t *testing.T) {
	dir := t.TempDir()
	a := testAgent(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan ecs.Event)
	done := make(chan error, 1)
	go func() { done <- a.detect(ctx, events) }()

	res := a.applyRules(ctx, &protocol.RuleSet{Version: "1-aaaa", Files: []*protocol.RuleFile{{Name: "a.yml", Content: []byte(markerRule(ruleA, "marker-aaa"))}}})
	if !res.GetOk() || res.GetVersion() != "1-aaaa" || res.GetRules() == 0 {
		t.Fatalf("good set: %v", res)
	}
	if v, _, _ := a.rules.state(); v != "1-aaaa" || a.hello().GetRulesVersion() != "1-aaaa" || a.heartbeat().GetRulesVersion() != "1-aaaa" {
		t.Fatalf("version after applying: %q, hello %q", v, a.hello().GetRulesVersion())
	}
	events <- markerEvent(100, "marker-aaa")
	if ids := waitFinding(t, a.spool, 1); ids[0] != ruleA {
		t.Fatalf("findings %v, want the pushed rule %s", ids, ruleA)
	}

	// A set with one good and one broken file is refused whole: rule B
	// of its good file never runs, rule A keeps running.
	broken := strings.Replace(markerRule(ruleA, "marker-aaa"), "condition: selection", "condition: selection or", 1)
	res = a.applyRules(ctx, &protocol.RuleSet{Version: "2-bbbb", Files: []*protocol.RuleFile{
		{Name: "b.yml", Content: []byte(markerRule(ruleB, "marker-bbb"))},
		{Name: "team/a.yml", Content: []byte(broken)},
	}})
	if res.GetOk() || !strings.Contains(res.GetError(), "team/a.yml:9") {
		t.Fatalf("broken set: %v, want a refusal naming team/a.yml:9", res)
	}
	if v, _, refused := a.rules.state(); v != "1-aaaa" || !strings.Contains(refused, "2-bbbb") {
		t.Errorf("after a refusal: version %q, refusal %q", v, refused)
	}
	events <- markerEvent(101, "marker-bbb")
	events <- markerEvent(102, "marker-aaa")
	if ids := waitFinding(t, a.spool, 2); len(ids) != 2 || ids[1] != ruleA {
		t.Fatalf("findings %v after the refusal, want only rule A again", ids)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A restart runs the stored set, not the refused one.
	rs, err := newRuleSets(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	set := rs.initial()
	if v, n, _ := rs.state(); v != "1-aaaa" || n != len(set.Rules()) {
		t.Errorf("after a restart: version %q, %d rules", v, n)
	}
	var haveA, haveB bool
	for _, r := range set.Rules() {
		haveA = haveA || r.ID == ruleA
		haveB = haveB || r.ID == ruleB
	}
	if !haveA || haveB {
		t.Errorf("after a restart: rule A %v (want true), rule B %v (want false)", haveA, haveB)
	}
}
