package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/agent/history"
	"github.com/cordon-edr/cordon/detectors/ioc"
	"github.com/cordon-edr/cordon/protocol"
	"github.com/cordon-edr/cordon/protocol/ecs"
	"github.com/cordon-edr/cordon/protocol/query"
)

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func fileEvent(at time.Time, path, content string) ecs.Event {
	return ecs.Event{Timestamp: at, Event: ecs.Meta{Category: ecs.CategoryFile, Type: "creation"},
		File: &ecs.File{Path: path, Name: filepath.Base(path), Hash: &ecs.Hash{SHA256: hashOf(content)}}}
}

// summaries waits until the spool holds n findings and returns their
// summaries.
func summaries(t *testing.T, a *Agent, n int) []string {
	t.Helper()
	waitFinding(t, a.spool, n)
	fs, err := a.spool.Peek(100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		if f.GetRule().GetId() != ioc.RuleID {
			t.Errorf("finding of rule %s", f.GetRule().GetId())
		}
		out = append(out, f.GetSeverity()+" "+f.GetSummary())
	}
	return out
}

func TestIndicatorSetMatchesLiveAndHuntsTheHistory(t *testing.T) {
	dir := t.TempDir()
	a := testAgent(t, dir)
	log := slog.New(slog.DiscardHandler)
	h, err := history.Open(filepath.Join(dir, "history"), history.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	a.hist = h
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	go a.runRetros(ctx)
	events := make(chan ecs.Event)
	done := make(chan error, 1)
	go func() { done <- a.detect(ctx, events) }()

	// Before any set: events go to the history, nothing matches.
	past := time.Now().Add(-time.Hour)
	events <- fileEvent(past, "/srv/old/dropper", "dropper")
	events <- fileEvent(past.Add(time.Second), "/srv/old/other", "other")
	events <- ecs.Event{Timestamp: past.Add(2 * time.Second), Event: ecs.Meta{Category: ecs.CategoryNetwork, Type: "connection"},
		Destination: &ecs.Endpoint{IP: "198.51.100.23", Port: 443}, Process: &ecs.Process{PID: 42, Executable: "/usr/bin/curl"}}
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}

	set := &protocol.IndicatorSet{Version: "1-aaaa", Indicators: []*protocol.Indicator{
		{Type: "sha256", Value: hashOf("dropper"), Severity: "high", Note: "the dropper"},
		{Type: "cidr", Value: "198.51.100.0/24", Severity: "low", Note: "hosting range"},
	}}
	res := a.applyIndicators(ctx, set)
	if !res.GetOk() || res.GetIndicators() != 2 {
		t.Fatalf("good set: %v", res)
	}
	if a.hello().GetIocsVersion() != "1-aaaa" || a.heartbeat().GetIocsVersion() != "1-aaaa" {
		t.Errorf("hello and heartbeat report %q, %q", a.hello().GetIocsVersion(), a.heartbeat().GetIocsVersion())
	}
	got := summaries(t, a, 2)
	for _, want := range []string{"high Retro-hunt: indicator sha256 " + hashOf("dropper"), "low Retro-hunt: indicator cidr 198.51.100.0/24 (destination.ip 198.51.100.23)"} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("findings %q lack %q", got, want)
		}
	}

	// Live: a new event with the hash matches at once.
	events <- fileEvent(time.Now(), "/srv/new/dropper", "dropper")
	got = summaries(t, a, 3)
	if !strings.HasPrefix(got[2], "high Indicator sha256 ") || !strings.Contains(got[2], `"the dropper"`) || !strings.Contains(got[2], "/srv/new/dropper") {
		t.Errorf("live finding %q", got[2])
	}

	// A new version hunts only for what it adds: the old file with the
	// second hash, not the dropper again.
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	set2 := &protocol.IndicatorSet{Version: "2-bbbb", Indicators: append(set.Indicators,
		&protocol.Indicator{Type: "path", Value: "/srv/old/other", Severity: "critical"})}
	if res := a.applyIndicators(ctx, set2); !res.GetOk() {
		t.Fatalf("second set: %v", res)
	}
	got = summaries(t, a, 4)
	if !strings.HasPrefix(got[3], "critical Retro-hunt: indicator path /srv/old/other") {
		t.Errorf("retro finding of the second set %q", got[3])
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _, _, retro := a.iocs.state()
		if retro != nil && !retro.Finished.IsZero() && retro.Version == "2-bbbb" {
			if retro.Findings != 1 || retro.Indicators != 1 || retro.Error != "" {
				t.Errorf("retro-hunt %+v", retro)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retro-hunt did not finish: %+v", retro)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A bad set is refused whole; the previous one stays matched.
	res = a.applyIndicators(ctx, &protocol.IndicatorSet{Version: "3-cccc", Indicators: []*protocol.Indicator{{Type: "sha256", Value: "nope"}}})
	if res.GetOk() || !strings.Contains(res.GetError(), "indicator 1") {
		t.Errorf("bad set: %v", res)
	}
	if v, n, refused, _ := a.iocs.state(); v != "2-bbbb" || n != 3 || !strings.Contains(refused, "3-cccc") {
		t.Errorf("after a refusal: %s, %d, %q", v, n, refused)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A restart matches the stored set.
	again := newIndicatorSets(dir, log)
	if m := again.initial(); m.Version() != "2-bbbb" || m.Len() != 3 {
		t.Errorf("after a restart: %s with %d indicators", m.Version(), m.Len())
	}
}

func TestRetroQueriesParseAndStayUnderTheLimit(t *testing.T) {
	var inds []ioc.Indicator
	for i := range 500 {
		inds = append(inds, ioc.Indicator{Type: ioc.TypeSHA256, Value: hashOf(string(rune(i)))})
	}
	inds = append(inds,
		ioc.Indicator{Type: ioc.TypeIP, Value: "203.0.113.7"},
		ioc.Indicator{Type: ioc.TypePath, Value: `/tmp/a "quoted" \ path`},
		ioc.Indicator{Type: ioc.TypeCIDR, Value: "2001:db8::/32"},
		ioc.Indicator{Type: ioc.TypeFilename, Value: "xmrig"})
	qs := retroQueries(inds)
	var hashes, scans int
	for _, q := range qs {
		if len(q) > query.MaxLength {
			t.Errorf("query of %d bytes", len(q))
		}
		parsed, err := query.Parse(q)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		switch eq := parsed.Equalities(); {
		case len(eq["file.hash.sha256"]) > 0:
			hashes += len(eq["file.hash.sha256"])
		case strings.Contains(q, " or "):
			scans++
		}
	}
	if hashes != 500 || scans != 1 {
		t.Errorf("%d hashes looked up (want 500), %d scans (want 1) in %d queries", hashes, scans, len(qs))
	}
	ev := ecs.Event{File: &ecs.File{Path: `/tmp/a "quoted" \ path`}}
	found := false
	for _, q := range qs {
		parsed, _ := query.Parse(q)
		found = found || parsed.Match(&ev)
	}
	if !found {
		t.Error("no query finds the quoted path")
	}
}

func TestEventKey(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	file := func(at time.Time, action, path, sum string) *ecs.Event {
		return &ecs.Event{Timestamp: at, Event: ecs.Meta{Action: action},
			File: &ecs.File{Path: path, Hash: &ecs.Hash{SHA256: sum}}}
	}
	// As the file sensor reports a write when fanotify names the writer.
	written := func(ev *ecs.Event) *ecs.Event {
		ev.Event.Category = ecs.CategoryFile
		ev.Process = &ecs.Process{PID: 42, Executable: "/tmp/dropper"}
		return ev
	}
	proc := func(at time.Time, pid int) *ecs.Event {
		return &ecs.Event{Timestamp: at, Process: &ecs.Process{PID: pid, Executable: "/tmp/x"}}
	}
	for _, tc := range []struct {
		name string
		a, b *ecs.Event
		same bool
	}{
		{"a write's creation and change", file(t0, "creation", "/tmp/a", "aa"), file(t0.Add(time.Millisecond), "change", "/tmp/a", "aa"), true},
		{"new content at the same path", file(t0, "change", "/tmp/a", "aa"), file(t0.Add(time.Second), "change", "/tmp/a", "bb"), false},
		{"the same content at another path", file(t0, "creation", "/tmp/a", "aa"), file(t0, "creation", "/tmp/b", "aa"), false},
		{"a write's creation and change, naming the writer", written(file(t0, "creation", "/tmp/a", "aa")), written(file(t0.Add(time.Millisecond), "change", "/tmp/a", "aa")), true},
		{"new content by the same writer", written(file(t0, "change", "/tmp/a", "aa")), written(file(t0.Add(time.Second), "change", "/tmp/a", "bb")), false},
		{"two runs of one executable", proc(t0, 10), proc(t0.Add(time.Second), 11), false},
		{"one run found by two queries", proc(t0, 10), proc(t0, 10), true},
	} {
		if got := eventKey(tc.a) == eventKey(tc.b); got != tc.same {
			t.Errorf("%s: same key %v, want %v (%q, %q)", tc.name, got, tc.same, eventKey(tc.a), eventKey(tc.b))
		}
	}
}
