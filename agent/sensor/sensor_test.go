package sensor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// fakeConn is a connector fed by the test. A nil datagram reads as an
// overrun.
type fakeConn struct {
	msgs   chan []byte
	closed chan struct{}
	once   sync.Once
}

func newFakeConn() *fakeConn {
	return &fakeConn{msgs: make(chan []byte, 64), closed: make(chan struct{})}
}

func (c *fakeConn) read(b []byte) (int, error) {
	select {
	case m := <-c.msgs:
		if m == nil {
			return 0, errOverrun
		}
		return copy(b, m), nil
	case <-c.closed:
		return 0, os.ErrClosed
	}
}

// fakeEpoch is the wall-clock time of kernel timestamp 0 in tests.
var fakeEpoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func (c *fakeConn) wallTime(ns uint64) time.Time { return fakeEpoch.Add(time.Duration(ns)) }
func (c *fakeConn) bootTime() (time.Time, bool)  { return time.Time{}, false }
func (c *fakeConn) describe() string             { return "fake connector" }
func (c *fakeConn) startReader() string          { return "" }
func (c *fakeConn) Close() error                 { c.once.Do(func() { close(c.closed) }); return nil }
func (c *fakeConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// fixtureSensor returns a sensor over testdata/proc with fixed user names.
func fixtureSensor(t *testing.T, conn connector) *Process {
	t.Helper()
	p := NewProcess(Options{ProcRoot: "testdata/proc/", NoEBPF: true})
	p.users.lookup = func(uid string) (string, error) {
		switch uid {
		case "0":
			return "root", nil
		case "1000":
			return "alice", nil
		}
		return "", errors.New("unknown user")
	}
	p.open = func() (connector, error) { return conn, nil }
	return p
}

// runSensor runs p until the test ends and returns its event channel.
func runSensor(t *testing.T, p *Process) <-chan ecs.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan ecs.Event, 16)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run() did not return after cancel")
		}
	})
	return out
}

func next(t *testing.T, out <-chan ecs.Event) ecs.Event {
	t.Helper()
	select {
	case e := <-out:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return ecs.Event{}
	}
}

func TestConnectorEvents(t *testing.T) {
	const bootID = "b0071d00-0000-4000-8000-000000000001"
	boot := time.Unix(1700000000, 0).UTC()
	bash := ecs.Parent{PID: 100, EntityID: bootID + "-100-1000", Executable: "/usr/bin/bash", Name: "bash", CommandLine: "-bash"}
	systemd := ecs.Parent{PID: 1, EntityID: bootID + "-1-5", Executable: "/usr/lib/systemd/systemd", Name: "systemd", CommandLine: "/sbin/init splash"}
	python := ecs.Process{
		PID:              4242,
		EntityID:         bootID + "-4242-123456",
		Executable:       "/usr/bin/python3.12",
		Name:             "python3.12",
		CommandLine:      `python3 -c print("a b")`,
		Args:             []string{"python3", "-c", `print("a b")`},
		WorkingDirectory: "/home/alice",
		Start:            boot.Add(1234560 * time.Millisecond),
		User:             ecs.User{ID: "0", Name: "root"},
		Parent:           &bash,
		Ancestry:         []ecs.Parent{systemd},
	}
	pythonRef := ecs.Parent{PID: 4242, EntityID: python.EntityID, Executable: python.Executable, Name: python.Name, CommandLine: python.CommandLine}
	exited := func(pr ecs.Process, code int) ecs.Process {
		pr.ExitCode = &code
		return pr
	}

	tests := []struct {
		name     string
		msgs     [][]byte
		want     []ecs.Event
		wantLost uint64
	}{
		{
			name: "exec of a live process",
			msgs: [][]byte{execMsg(1000, 4242)},
			want: []ecs.Event{{
				Timestamp: fakeEpoch.Add(1000),
				Event:     ecs.Meta{Category: "process", Type: "start", Module: "netlink"},
				Process:   &python,
			}},
		},
		{
			name: "exec then exit",
			msgs: [][]byte{execMsg(1000, 4242), exitMsg(2000, 4242, 4242, 3<<8, 100)},
			want: []ecs.Event{
				{Timestamp: fakeEpoch.Add(1000), Event: ecs.Meta{Category: "process", Type: "start", Module: "netlink"}, Process: &python},
				{Timestamp: fakeEpoch.Add(2000), Event: ecs.Meta{Category: "process", Type: "end", Module: "netlink"}, Process: new(exited(python, 3))},
			},
		},
		{
			name: "exec of a zombie is reported with its command name and counted lost",
			msgs: [][]byte{execMsg(1000, 4300)},
			want: []ecs.Event{{
				Timestamp: fakeEpoch.Add(1000),
				Event:     ecs.Meta{Category: "process", Type: "start", Module: "netlink"},
				Process: &ecs.Process{
					PID: 4300, EntityID: bootID + "-4300-123500", Name: "short",
					Start: boot.Add(1235 * time.Second), User: ecs.User{ID: "1000", Name: "alice"},
					Parent: &bash, Ancestry: []ecs.Parent{systemd},
				},
			}},
			wantLost: 1,
		},
		{
			name: "exec of a reaped child takes its parent from the fork",
			msgs: [][]byte{
				execMsg(1000, 4242),
				forkMsg(1500, 4242, 5000),
				execMsg(2000, 5000),
				exitMsg(2500, 5000, 5000, 0, 4242),
			},
			want: []ecs.Event{
				{Timestamp: fakeEpoch.Add(1000), Event: ecs.Meta{Category: "process", Type: "start", Module: "netlink"}, Process: &python},
				{Timestamp: fakeEpoch.Add(2000), Event: ecs.Meta{Category: "process", Type: "start", Module: "netlink"}, Process: &ecs.Process{
					PID: 5000, Parent: &pythonRef, Ancestry: []ecs.Parent{bash, systemd},
				}},
				{Timestamp: fakeEpoch.Add(2500), Event: ecs.Meta{Category: "process", Type: "end", Module: "netlink"}, Process: &ecs.Process{
					PID: 5000, Parent: &pythonRef, Ancestry: []ecs.Parent{bash, systemd}, ExitCode: new(0),
				}},
			},
			wantLost: 1,
		},
		{
			name: "threads, unknown exits, forks without exec, junk and overruns make no events",
			msgs: [][]byte{
				procMsg(procEventFork, 1, 4242, 4242, 4243, 4242), // thread
				exitMsg(2, 4243, 4242, 0, 100),                    // thread exit
				exitMsg(3, 7777, 7777, 0, 1),                      // unknown process
				forkMsg(4, 100, 6000),
				exitMsg(5, 6000, 6000, 0, 100), // forked, never exec'd
				procMsgAck(procEventNone, 0, 1, 0),
				{1, 2, 3},
				nil, // overrun
				execMsg(9, 4242),
			},
			want: []ecs.Event{
				{Timestamp: fakeEpoch.Add(9), Event: ecs.Meta{Category: "process", Type: "start", Module: "netlink"}, Process: &python},
			},
			wantLost: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := newFakeConn()
			p := fixtureSensor(t, conn)
			out := runSensor(t, p)
			for _, m := range tt.msgs {
				conn.msgs <- m
			}
			for i, want := range tt.want {
				got := next(t, out)
				if !eventsEqual(got, want) {
					t.Errorf("event %d:\n got %s\nwant %s", i, dump(got), dump(want))
				}
			}
			select {
			case e := <-out:
				t.Errorf("unexpected event %s", dump(e))
			case <-time.After(50 * time.Millisecond):
			}
			if mode, reason := p.Mode(); mode != "netlink" || reason != "fake connector" {
				t.Errorf("Mode() = %q, %q", mode, reason)
			}
			if s := p.Stats(); s.Events != uint64(len(tt.want)) || s.Lost != tt.wantLost {
				t.Errorf("Stats() = %+v, want %d events, %d lost", s, len(tt.want), tt.wantLost)
			}
		})
	}
}

func TestAncestry(t *testing.T) {
	conn := newFakeConn()
	p := fixtureSensor(t, conn)
	out := runSensor(t, p)
	conn.msgs <- execMsg(1, 4242)
	next(t, out)
	got := p.Ancestry(4242)
	if len(got) != 2 || got[0].PID != 100 || got[0].Name != "bash" || got[1].PID != 1 {
		t.Errorf("Ancestry(4242) = %+v, want bash then systemd", got)
	}
	if got := p.Ancestry(1); got != nil {
		t.Errorf("Ancestry(1) = %+v, want none", got)
	}
	if got := p.Ancestry(31337); got != nil {
		t.Errorf("Ancestry(unknown) = %+v, want nil", got)
	}
}

func TestAncestryBoundedAndLoopSafe(t *testing.T) {
	c := newCache()
	for pid := 1; pid <= 20; pid++ {
		c.put(&proc{pid: pid, ppid: pid - 1, image: true})
	}
	if got := c.ancestry(20, 0, maxAncestors); len(got) != maxAncestors || got[0].PID != 20 || got[8].PID != 12 {
		t.Errorf("ancestry() = %+v, want 9 entries from 20 down", got)
	}
	c.put(&proc{pid: 30, ppid: 31})
	c.put(&proc{pid: 31, ppid: 30})
	if got := c.ancestry(30, 0, maxAncestors); len(got) != 2 {
		t.Errorf("ancestry() of a loop = %+v, want 2 entries", got)
	}
}

func TestRunClosesConnector(t *testing.T) {
	conn := newFakeConn()
	p := fixtureSensor(t, conn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, make(chan ecs.Event)) }()
	// An event nobody receives must not keep Run from returning.
	conn.msgs <- execMsg(1, 4242)
	waitMode(t, p)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run() did not return after cancel")
	}
	if !conn.isClosed() {
		t.Error("connector left open")
	}
}

func TestRunFallsBackToPolling(t *testing.T) {
	p := NewProcess(Options{PollInterval: time.Hour})
	p.openCapture = func() (*execCapture, error) {
		return nil, errors.New("loading the process eBPF programs: operation not permitted")
	}
	p.open = func() (connector, error) {
		return nil, errors.New("netlink process connector: bind: operation not permitted")
	}
	runSensor(t, p)
	mode, reason := waitMode(t, p)
	if mode != "poll" || reason != "netlink process connector: bind: operation not permitted" {
		t.Errorf("Mode() = %q, %q", mode, reason)
	}

	p = NewProcess(Options{ForcePoll: true, PollInterval: time.Hour})
	p.open = func() (connector, error) { t.Error("ForcePoll opened the connector"); return nil, errors.New("no") }
	runSensor(t, p)
	if mode, _ := waitMode(t, p); mode != "poll" {
		t.Errorf("Mode() = %q, want poll", mode)
	}
}

func TestProcessName(t *testing.T) {
	for _, tt := range []struct{ exe, comm, want string }{
		{"/usr/bin/python3.12", "python3", "python3.12"},
		{"/tmp/x (deleted)", "x", "x"},
		{"", "kworker/0:1", "kworker/0:1"},
	} {
		if got := processName(tt.exe, tt.comm); got != tt.want {
			t.Errorf("processName(%q, %q) = %q, want %q", tt.exe, tt.comm, got, tt.want)
		}
	}
}

func TestUsersCache(t *testing.T) {
	calls := 0
	u := newUsers()
	u.lookup = func(uid string) (string, error) {
		calls++
		if uid == "0" {
			return "root", nil
		}
		return "", errors.New("unknown user")
	}
	for range 3 {
		if got := u.name("0"); got != "root" {
			t.Errorf("name(0) = %q", got)
		}
		if got := u.name("4711"); got != "4711" {
			t.Errorf("name(4711) = %q, want the id", got)
		}
	}
	if got := u.name(""); got != "" {
		t.Errorf("name(\"\") = %q", got)
	}
	if calls != 2 {
		t.Errorf("%d lookups, want 2", calls)
	}
}

func waitMode(t *testing.T, p *Process) (mode, reason string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if mode, reason = p.Mode(); mode != "" {
			return mode, reason
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("sensor did not pick a mode within 10s")
	return "", ""
}

func eventsEqual(a, b ecs.Event) bool {
	return dump(a) == dump(b)
}

// dump renders an event for comparison and failure messages.
func dump(e ecs.Event) string {
	var sb strings.Builder
	sb.WriteString(e.Timestamp.Format(time.RFC3339Nano) + " " + e.Event.Category + "/" + e.Event.Type + "/" + e.Event.Module)
	if pr := e.Process; pr != nil {
		sb.WriteString(" " + strings.Join([]string{
			strconv.Itoa(pr.PID), pr.EntityID, pr.Executable, pr.Name, pr.CommandLine,
			"[" + strings.Join(pr.Args, "|") + "]", pr.WorkingDirectory,
			pr.Start.Format(time.RFC3339Nano), pr.User.ID, pr.User.Name,
		}, ";"))
		if pr.ExitCode != nil {
			sb.WriteString(" exit=" + strconv.Itoa(*pr.ExitCode))
		}
		if pr.Parent != nil {
			sb.WriteString(" parent=" + ref(*pr.Parent))
		}
		for _, a := range pr.Ancestry {
			sb.WriteString(" ancestor=" + ref(a))
		}
	}
	return sb.String()
}

func ref(r ecs.Parent) string {
	return strings.Join([]string{strconv.Itoa(r.PID), r.EntityID, r.Executable, r.Name, r.CommandLine}, ";")
}

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// When the eBPF programs cannot load, the sensor runs on the connector
// alone and its status says why.
func TestModeNamesEBPFFailure(t *testing.T) {
	conn := newFakeConn()
	p := fixtureSensor(t, conn)
	p.opts.NoEBPF = false
	p.openCapture = func() (*execCapture, error) { return nil, errors.New("program rejected by the verifier") }
	runSensor(t, p)
	mode, reason := waitMode(t, p)
	if mode != ModeNetlink || !strings.Contains(reason, "eBPF exec capture unavailable: program rejected by the verifier") {
		t.Errorf("Mode() = %q, %q", mode, reason)
	}
}

func TestCacheRemembersExited(t *testing.T) {
	c := newCache()
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return now }

	c.put(&proc{pid: 10, exe: "/usr/bin/touch", image: true})
	if _, ok := c.remove(10); !ok {
		t.Fatal("remove(10) found nothing")
	}
	if p, _, ok := c.lookup(10); !ok || p.exe != "/usr/bin/touch" {
		t.Fatalf("lookup(10) after exit = %+v, %v; want the exited touch", p, ok)
	}
	if _, ok := c.get(10); ok {
		t.Error("get(10) found an exited process; only lookup should")
	}
	if got := c.ancestry(10, 0, maxAncestors); len(got) != 1 || got[0].Executable != "/usr/bin/touch" {
		t.Errorf("ancestry through an exited process = %+v, want the exited touch", got)
	}

	// A new process with the same pid wins over the exited one.
	c.put(&proc{pid: 10, exe: "/usr/bin/sleep", image: true})
	if p, _, _ := c.lookup(10); p.exe != "/usr/bin/sleep" {
		t.Errorf("lookup(10) with a live reuse = %q, want /usr/bin/sleep", p.exe)
	}
	c.remove(10)
	if p, _, _ := c.lookup(10); p.exe != "/usr/bin/sleep" {
		t.Errorf("lookup(10) after the reuse exited = %q, want /usr/bin/sleep", p.exe)
	}

	// Exited processes are forgotten after exitedKeep.
	now = now.Add(exitedKeep + time.Second)
	if p, _, ok := c.lookup(10); ok {
		t.Errorf("lookup(10) after %v = %+v, want nothing", exitedKeep, p)
	}

	// And beyond exitedMax, oldest first.
	for pid := 1; pid <= exitedMax+10; pid++ {
		c.put(&proc{pid: pid})
		c.remove(pid)
	}
	if _, _, ok := c.lookup(1); ok {
		t.Error("the oldest exited process is still remembered beyond exitedMax")
	}
	if _, _, ok := c.lookup(exitedMax + 10); !ok {
		t.Error("the newest exited process is forgotten")
	}
	if len(c.exited) > exitedMax || len(c.exitOrder) > exitedMax {
		t.Errorf("remembered %d (order %d), want at most %d", len(c.exited), len(c.exitOrder), exitedMax)
	}

	// retain remembers what it drops.
	c.put(&proc{pid: 99999, exe: "/bin/gone"})
	c.retain(map[int]bool{})
	if p, _, ok := c.lookup(99999); !ok || p.exe != "/bin/gone" {
		t.Errorf("lookup after retain = %+v, %v; want /bin/gone", p, ok)
	}
}

// A file change or connection read after its writer, or the writer's
// shell, exited still gets the chain of processes behind it: ancestry
// falls back to the exited records, and a live process that took an
// ancestor's pid after the child started does not stand in for it.
func TestLineageThroughExited(t *testing.T) {
	// An empty procfs: what the cache holds is all there is.
	p := NewProcess(Options{ProcRoot: t.TempDir()})
	c := p.cache
	now := time.Unix(1_700_000_000, 0)
	c.now = func() time.Time { return now }

	c.put(&proc{pid: 1, exe: "/sbin/init", startTicks: 1, image: true})
	c.put(&proc{pid: 200, ppid: 1, exe: "/usr/sbin/nginx", startTicks: 100, image: true})
	c.put(&proc{pid: 300, ppid: 200, exe: "/bin/sh", startTicks: 110, image: true})
	c.put(&proc{pid: 400, ppid: 300, exe: "/usr/bin/touch", startTicks: 120, image: true})
	c.remove(400)
	c.remove(300)

	want := []string{"/bin/sh", "/usr/sbin/nginx", "/sbin/init"}
	got, ok := p.Lineage(400)
	if !ok || !sameExes(got, want) {
		t.Fatalf("Lineage(exited touch) = %+v, %v; want %v", got, ok, want)
	}

	// The shell's pid is taken by a process started after touch: the
	// exited shell is still touch's parent.
	c.put(&proc{pid: 300, ppid: 1, exe: "/usr/bin/sleep", startTicks: 500, image: true})
	if got, _ := p.Lineage(400); !sameExes(got, want) {
		t.Errorf("Lineage with the parent's pid reused = %+v, want %v", got, want)
	}

	// A process without a parent is known, with no lineage; an unknown
	// one is not known; an unknown parent is named by its pid.
	if got, ok := p.Lineage(1); !ok || len(got) != 0 {
		t.Errorf("Lineage(1) = %+v, %v; want none, true", got, ok)
	}
	if got, ok := p.Lineage(31337); ok || got != nil {
		t.Errorf("Lineage(unknown) = %+v, %v; want nil, false", got, ok)
	}
	c.put(&proc{pid: 600, ppid: 599, exe: "/bin/true", image: true})
	if got, ok := p.Lineage(600); !ok || len(got) != 1 || got[0].PID != 599 || got[0].Executable != "" {
		t.Errorf("Lineage with an unknown parent = %+v, %v; want pid 599 alone", got, ok)
	}

	// A child known only from its fork has its parent's chain.
	c.fork(700, 200)
	if got, ok := p.Lineage(700); !ok || !sameExes(got, []string{"/usr/sbin/nginx", "/sbin/init"}) {
		t.Errorf("Lineage(forked child) = %+v, %v; want nginx then init", got, ok)
	}

	// Once the exited records expire, the chain stops at them.
	now = now.Add(exitedKeep + time.Second)
	if got, ok := p.Lineage(400); ok || got != nil {
		t.Errorf("Lineage after %v = %+v, %v; want nil, false", exitedKeep, got, ok)
	}
}

// A process the sensor has not read yet has its parent read from
// procfs, and the chain from the parent on from the cache.
func TestLineageOfUnreadProcess(t *testing.T) {
	root := t.TempDir()
	p := NewProcess(Options{ProcRoot: root})
	c := p.cache
	c.put(&proc{pid: 1, exe: "/sbin/init", startTicks: 1, image: true})
	c.put(&proc{pid: 200, ppid: 1, exe: "/usr/sbin/sshd", startTicks: 100, image: true})
	c.put(&proc{pid: 300, ppid: 200, exe: "/bin/bash", startTicks: 110, image: true})
	writeStat := func(pid, ppid int, start uint64) {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := fmt.Sprintf("%d (curl) S %d %d %d 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", pid, ppid, pid, pid, start)
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeStat(400, 300, 120)
	got, ok := p.Lineage(400)
	if want := []string{"/bin/bash", "/usr/sbin/sshd", "/sbin/init"}; !ok || !sameExes(got, want) {
		t.Errorf("Lineage(unread curl) = %+v, %v; want %v", got, ok, want)
	}
	// A parent started after the child is another process with a reused
	// pid: the child is named with its parent's pid alone.
	writeStat(500, 300, 90)
	if got, ok := p.Lineage(500); !ok || len(got) != 1 || got[0].PID != 300 || got[0].Executable != "" {
		t.Errorf("Lineage(child older than its parent's record) = %+v, %v; want pid 300 alone", got, ok)
	}
	// Neither the cache nor procfs knows it.
	if got, ok := p.Lineage(600); ok || got != nil {
		t.Errorf("Lineage(unknown) = %+v, %v; want nil, false", got, ok)
	}
}

func sameExes(got []ecs.Parent, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i, g := range got {
		if g.Executable != want[i] {
			return false
		}
	}
	return true
}

func TestLookupExitedPidReused(t *testing.T) {
	p := NewProcess(Options{ProcRoot: "testdata/proc"})
	// testdata/proc/100 is a bash started at tick 1000.
	for _, tc := range []struct {
		name  string
		start uint64
		want  bool
	}{
		{"the same process, not yet reaped", 1000, true},
		{"another process now has the pid", 999, false},
		{"start time unknown", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.cache.put(&proc{pid: 100, ppid: 4242, startTicks: tc.start, exe: "/usr/bin/touch", image: true})
			p.cache.remove(100)
			ref, ok := p.Lookup(100)
			if ok != tc.want || (ok && ref.Executable != "/usr/bin/touch") {
				t.Errorf("Lookup(100) = %+v, %v; want found %v", ref, ok, tc.want)
			}
			// The exited record's parent, or else the live process's,
			// which procfs names (bash, child of pid 1).
			wantParent := 4242
			if !tc.want {
				wantParent = 1
			}
			if l, ok := p.Lineage(100); !ok || len(l) == 0 || l[0].PID != wantParent {
				t.Errorf("Lineage(100) = %+v, %v; want the chain from pid %d", l, ok, wantParent)
			}
		})
	}
	// A pid procfs does not have: the exited record stands.
	p.cache.put(&proc{pid: 5555, startTicks: 42, exe: "/usr/bin/touch", image: true})
	p.cache.remove(5555)
	if _, ok := p.Lookup(5555); !ok {
		t.Error("Lookup of an exited pid procfs no longer has found nothing")
	}
}

func TestChainMemo(t *testing.T) {
	var m chainMemo
	sh := []ecs.Parent{{PID: 10, EntityID: "e10", Executable: "/bin/sh", CommandLine: "sh -c loop"}, {PID: 1, Executable: "/sbin/init"}}
	first := m.share(10, slices.Clone(sh))
	if !slices.Equal(first, sh) {
		t.Fatalf("share returned %v, want %v", first, sh)
	}
	if cap(first) != len(first) {
		t.Errorf("a kept chain has room to grow (len %d, cap %d): an append would write into other events' ancestry", len(first), cap(first))
	}
	// A sibling's walk finds the same chain: it gets the same copy.
	if again := m.share(10, slices.Clone(sh)); &again[0] != &first[0] {
		t.Error("an equal chain from the same parent was copied again")
	}
	// The parent exec'd: its record changed, so the chain is a new one,
	// and the first stays as it was for the events that hold it.
	execd := slices.Clone(sh)
	execd[0].Executable, execd[0].CommandLine = "/usr/bin/python3", "python3 x.py"
	got := m.share(10, execd)
	if &got[0] == &first[0] || got[0].Executable != "/usr/bin/python3" {
		t.Errorf("a changed parent got the kept chain: %v", got)
	}
	if first[0].Executable != "/bin/sh" {
		t.Errorf("a kept chain changed under the events holding it: %v", first)
	}
	// An equal chain under another parent pid is not taken for it.
	if other := m.share(11, slices.Clone(sh)); &other[0] == &first[0] {
		t.Error("a chain kept for pid 10 was returned for pid 11")
	}
	// More parents than the memo keeps: the oldest goes, nothing breaks.
	for pid := 100; pid < 100+2*chainMemoSize; pid++ {
		c := []ecs.Parent{{PID: pid, Executable: "/bin/sh"}}
		if got := m.share(pid, c); !slices.Equal(got, c) {
			t.Fatalf("pid %d: share returned %v", pid, got)
		}
	}
}
