package detectors

import (
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

func childOf(parent string, pid int) *ecs.Event {
	ev := startEvent("/usr/bin/true", "true")
	ev.Process.PID = pid
	ev.Process.Parent = &ecs.Parent{PID: 1, EntityID: parent}
	return ev
}

func TestNoiseWindow(t *testing.T) {
	now := testClock
	e := NewEngine(
		fixed{rule: Rule{ID: "a", Severity: SeverityHigh}, f: Finding{Summary: "A fired."}, ok: true},
		fixed{rule: Rule{ID: "b", Severity: SeverityLow}, f: Finding{Summary: "B fired."}, ok: true},
	)
	e.SetClock(func() time.Time { return now })
	e.SetNoiseWindow(time.Minute)
	ids := func(fs []Finding) string {
		var s []string
		for _, f := range fs {
			s = append(s, f.Rule.ID)
		}
		return strings.Join(s, ",")
	}
	if got := ids(e.Process(childOf("tree1", 10))); got != "a,b" {
		t.Fatalf("first event: %s", got)
	}
	// Same tree within the window: folded.
	for i := 0; i < 4; i++ {
		now = now.Add(5 * time.Second)
		if fs := e.Process(childOf("tree1", 11+i)); len(fs) != 0 {
			t.Fatalf("repeat %d reported: %s", i, ids(fs))
		}
	}
	// Another tree is reported at once.
	if got := ids(e.Process(childOf("tree2", 20))); got != "a,b" {
		t.Fatalf("other tree: %s", got)
	}
	// After the window: the summaries of tree1's repeats, then the new
	// event's findings (a new window).
	now = testClock.Add(61 * time.Second)
	fs := e.Process(childOf("tree1", 30))
	var summaries int
	for _, f := range fs {
		if strings.Contains(f.Summary, "Repeated 4 more times on this process tree within 1m0s.") {
			summaries++
			if f.Evidence[0].Process.PID != 14 || !f.DetectedAt.Equal(now) {
				t.Errorf("summary evidence is not the last repeat: %+v", f)
			}
		}
	}
	if summaries != 2 || len(fs) != 4 {
		t.Fatalf("after the window: %d findings, %d summaries: %+v", len(fs), summaries, fs)
	}
	// Flush reports open windows with repeats, and only those.
	now = now.Add(time.Second)
	e.Process(childOf("tree1", 31))
	fl := e.Flush()
	if len(fl) != 2 || !strings.Contains(fl[0].Summary, "Repeated 1 more time ") {
		t.Fatalf("flush: %+v", fl)
	}
	if e.Flush() != nil {
		t.Error("second flush reported again")
	}
}

func TestNoiseWindowOff(t *testing.T) {
	e := NewEngine(fixed{rule: Rule{ID: "a"}, f: Finding{Summary: "x"}, ok: true})
	e.SetNoiseWindow(0)
	for i := 0; i < 3; i++ {
		if n := len(e.Process(childOf("t", i))); n != 1 {
			t.Fatalf("event %d: %d findings", i, n)
		}
	}
	if e.Flush() != nil {
		t.Error("flush without noise control")
	}
}

func TestNoiseWindowBounded(t *testing.T) {
	now := testClock
	e := NewEngine(fixed{rule: Rule{ID: "a"}, f: Finding{Summary: "x"}, ok: true})
	e.SetClock(func() time.Time { return now })
	e.SetNoiseWindow(time.Hour)
	for i := 0; i < maxNoiseKeys+500; i++ {
		e.Process(childOf(strings.Repeat("t", 1+i%3)+string(rune('a'+i%26))+time.Duration(i).String(), i))
	}
	if n := len(e.noise.open); n > maxNoiseKeys {
		t.Errorf("%d open windows, want at most %d", n, maxNoiseKeys)
	}
}

func TestExceptions(t *testing.T) {
	now := testClock
	e := NewEngine(
		fixed{rule: Rule{ID: "a"}, f: Finding{Summary: "a"}, ok: true},
		fixed{rule: Rule{ID: "b"}, f: Finding{Summary: "b"}, ok: true},
	)
	e.AddBatch(fixedBatch{rules: []Rule{{ID: "c"}}, hits: []int{0}})
	e.SetClock(func() time.Time { return now })
	e.SetExceptions([]Exception{
		{RuleID: "a", Match: func(ev *ecs.Event) bool { return ev.Process.PID == 1 }, Reason: "pid 1 is fine"},
		{RuleID: "c", Expires: testClock.Add(time.Hour), Reason: "for an hour"},
	})
	ids := func(fs []Finding) string {
		var s []string
		for _, f := range fs {
			s = append(s, f.Rule.ID)
		}
		return strings.Join(s, ",")
	}
	if got := ids(e.Process(childOf("t", 1))); got != "b" {
		t.Errorf("pid 1: %s, want b", got)
	}
	if got := ids(e.Process(childOf("t", 2))); got != "a,b" {
		t.Errorf("pid 2: %s, want a,b", got)
	}
	now = testClock.Add(2 * time.Hour)
	if got := ids(e.Process(childOf("t", 2))); got != "a,b,c" {
		t.Errorf("after expiry: %s, want a,b,c", got)
	}
	if got := e.Excepted(); got[0] != 1 || got[1] != 2 {
		t.Errorf("Excepted() = %v, want [1 2]", got)
	}
}
