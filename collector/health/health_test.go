package health

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/collector/registry"
	"github.com/cordon-edr/cordon/collector/store"
	"github.com/cordon-edr/cordon/protocol"
)

type memIngest struct {
	mu  sync.Mutex
	got []*protocol.Finding
	ids []string // agent of each
}

func (m *memIngest) Append(_ context.Context, agentID string, fs []*protocol.Finding) (int, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range fs {
		m.got = append(m.got, f)
		m.ids = append(m.ids, agentID)
	}
	return len(fs), 0, nil
}

func (m *memIngest) rules() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, f := range m.got {
		out = append(out, f.GetRule().GetId())
	}
	return out
}

type memAgents map[string]*registry.Agent

func (m memAgents) Get(_ context.Context, id string) (*registry.Agent, error) {
	a, ok := m[id]
	if !ok {
		return nil, registry.ErrUnknownAgent
	}
	return a, nil
}

func (m memAgents) Seen(context.Context) ([]string, error) {
	var out []string
	for id, a := range m {
		if !a.Revoked {
			out = append(out, id)
		}
	}
	return out, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	m      *Monitor
	ingest *memIngest
	clock  *clock
	agents memAgents
	cfg    Config
}

func newFixture(t *testing.T, agents memAgents) *fixture {
	t.Helper()
	db, err := store.Open(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{ingest: &memIngest{}, clock: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, agents: agents}
	f.cfg = Config{DB: db, Ingest: f.ingest, Agents: agents, Grace: 90 * time.Second, Now: f.clock.now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.m = New(f.cfg)
	if err := f.m.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

// round is one pass of Run's loop.
func (f *fixture) round() {
	f.m.scan()
	f.m.flush(context.Background())
}

func TestSilenceWithoutGoodbyeIsReportedOnce(t *testing.T) {
	f := newFixture(t, memAgents{
		"a1": {ID: "a1", Hostname: "db1", Tags: map[string]string{"criticality": "critical"}},
		"a2": {ID: "a2", Hostname: "web1"},
	})
	f.m.Seen("a1")
	f.m.Seen("a2")
	f.clock.add(60 * time.Second)
	f.m.Heartbeat("a2", &protocol.Heartbeat{})
	f.m.Goodbye("a2", "agent stopping")
	f.clock.add(60 * time.Second) // a1 silent 120 s; a2 stopped cleanly
	f.round()
	f.clock.add(10 * time.Minute)
	f.round()
	if got := f.ingest.rules(); len(got) != 1 || got[0] != RuleSilent || f.ingest.ids[0] != "a1" {
		t.Fatalf("findings %v for agents %v, want one %s for a1", got, f.ingest.ids, RuleSilent)
	}
	fd := f.ingest.got[0]
	if fd.GetSeverity() != "critical" {
		t.Errorf("severity %q on a critical host, want critical", fd.GetSeverity())
	}
	if fd.GetTechniques()[0] != techDisableTools || fd.GetTactics()[0] != tacticDefenseImpairment {
		t.Errorf("ATT&CK %v %v", fd.GetTactics(), fd.GetTechniques())
	}

	// Back, then silent again: a new silence is news.
	f.m.Seen("a1")
	f.clock.add(91 * time.Second)
	f.round()
	if n := len(f.ingest.rules()); n != 2 {
		t.Errorf("%d findings after a second silence, want 2", n)
	}
}

func TestRestartRemembersGoodbyesAndReports(t *testing.T) {
	agents := memAgents{
		"stopped":  {ID: "stopped", Hostname: "h1"},
		"reported": {ID: "reported", Hostname: "h2", Tags: map[string]string{"criticality": "low"}},
		"killed":   {ID: "killed", Hostname: "h3"},
		"revoked":  {ID: "revoked", Hostname: "h4"},
	}
	f := newFixture(t, agents)
	for id := range agents {
		f.m.Seen(id)
	}
	f.m.Goodbye("stopped", "agent stopping")
	f.clock.add(50 * time.Second)
	f.m.Heartbeat("killed", &protocol.Heartbeat{})
	f.clock.add(50 * time.Second)
	agents["revoked"].Revoked = true
	f.round() // "reported" is reported; "killed" is within its grace
	if got := f.ingest.rules(); len(got) != 1 || f.ingest.ids[0] != "reported" || f.ingest.got[0].GetSeverity() != "low" {
		t.Fatalf("findings %v for %v, want one (low) for the agent silent past its grace", got, f.ingest.ids)
	}

	// The collector restarts: a new monitor over the same store.
	f.clock.add(time.Hour)
	f.m = New(f.cfg)
	if err := f.m.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.round()
	if n := len(f.ingest.rules()); n != 1 {
		t.Fatalf("%d findings right after the restart, want the silence clocks started afresh", n)
	}
	f.clock.add(91 * time.Second)
	f.round()
	// Only "killed": "stopped" said goodbye, "reported" was reported
	// before the restart, "revoked" is revoked.
	if got := f.ingest.ids; len(got) != 2 || got[1] != "killed" {
		t.Errorf("findings for %v, want a second one for the killed agent only", got)
	}
}

func beat(sensors ...*protocol.SensorStats) *protocol.Heartbeat {
	return &protocol.Heartbeat{Sensors: sensors}
}

func TestSensorDegradedOrStopped(t *testing.T) {
	f := newFixture(t, memAgents{"a": {ID: "a", Hostname: "h", Tags: map[string]string{"criticality": "high"}}})
	f.m.Seen("a")
	f.m.Heartbeat("a", beat(&protocol.SensorStats{Name: "process", Mode: "netlink+ebpf"}, &protocol.SensorStats{Name: "file", Mode: "fsnotify"}))
	f.m.Heartbeat("a", beat(&protocol.SensorStats{Name: "process", Mode: "netlink+ebpf"}, &protocol.SensorStats{Name: "file", Mode: "fsnotify"}))
	f.round()
	if n := len(f.ingest.rules()); n != 0 {
		t.Fatalf("%d findings for steady sensors", n)
	}
	// The process sensor falls back to polling, the file sensor vanishes.
	f.m.Heartbeat("a", beat(&protocol.SensorStats{Name: "process", Mode: "poll"}))
	f.m.Heartbeat("a", beat(&protocol.SensorStats{Name: "process", Mode: "poll"}))
	f.round()
	got := f.ingest.got
	if len(got) != 2 {
		t.Fatalf("findings %v, want two (file stopped, process degraded)", f.ingest.rules())
	}
	for _, fd := range got {
		if fd.GetRule().GetId() != RuleSensorDegraded || fd.GetSeverity() != "high" {
			t.Errorf("finding %s %s, want %s high", fd.GetRule().GetId(), fd.GetSeverity(), RuleSensorDegraded)
		}
	}
	// An upgrade is no finding; a failure afterwards is.
	f.m.Heartbeat("a", beat(&protocol.SensorStats{Name: "process", Mode: "netlink"}))
	f.m.Heartbeat("a", beat(&protocol.SensorStats{Name: "process", Mode: "failed"}))
	f.round()
	if n := len(f.ingest.got); n != 3 {
		t.Errorf("%d findings after recovering and failing, want 3", n)
	}
}

func TestSensorLossJump(t *testing.T) {
	f := newFixture(t, memAgents{"a": {ID: "a", Hostname: "h"}})
	f.m.Seen("a")
	s := func(lost, dropped uint64) *protocol.Heartbeat {
		return beat(&protocol.SensorStats{Name: "process", Mode: "netlink", Lost: lost, Dropped: dropped})
	}
	f.m.Heartbeat("a", s(10, 0))
	f.m.Heartbeat("a", s(500, 400)) // 890 more: under the threshold
	f.m.Heartbeat("a", s(0, 0))     // the agent restarted: counters reset
	f.round()
	if n := len(f.ingest.got); n != 0 {
		t.Fatalf("%d findings below the threshold and across a restart", n)
	}
	f.m.Heartbeat("a", s(1500, 200))
	f.m.Heartbeat("a", s(5000, 200)) // within lossEvery of the first
	f.round()
	if got := f.ingest.rules(); len(got) != 1 || got[0] != RuleSensorLoss || f.ingest.got[0].GetSeverity() != "low" {
		t.Fatalf("findings %v, want one low %s", got, RuleSensorLoss)
	}
	f.clock.add(lossEvery)
	f.m.Heartbeat("a", s(9000, 200))
	f.round()
	if n := len(f.ingest.got); n != 2 {
		t.Errorf("%d findings after lossEvery, want 2", n)
	}
}

func TestSeverityByCriticality(t *testing.T) {
	for _, tt := range []struct{ base, crit, want string }{
		{"medium", "", "medium"}, {"medium", "critical", "critical"}, {"medium", "high", "high"},
		{"medium", "low", "low"}, {"low", "low", "low"}, {"low", "critical", "high"}, {"medium", "bogus", "medium"},
	} {
		if got := severity(tt.base, tt.crit); got != tt.want {
			t.Errorf("severity(%q, %q) = %q, want %q", tt.base, tt.crit, got, tt.want)
		}
	}
}
