package stateful

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/detectors"
	"github.com/cordon-edr/cordon/protocol/ecs"
)

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func fileEv(at time.Duration, entity, path, typ string) *ecs.Event {
	return &ecs.Event{
		Timestamp: t0.Add(at),
		Event:     ecs.Meta{Category: ecs.CategoryFile, Type: typ},
		Process:   &ecs.Process{PID: 7, EntityID: entity, Executable: "/tmp/locker"},
		File:      &ecs.File{Path: path},
	}
}

func connEv(at time.Duration, exe, ip string, port int) *ecs.Event {
	return &ecs.Event{
		Timestamp:   t0.Add(at),
		Event:       ecs.Meta{Category: ecs.CategoryNetwork, Type: ecs.TypeConnection},
		Process:     &ecs.Process{PID: 8, EntityID: "e-" + exe, Executable: exe},
		Destination: &ecs.Endpoint{IP: ip, Port: port},
		Network:     &ecs.Network{Transport: "tcp", Direction: "egress"},
	}
}

func startEv(at time.Duration, pid int, exe, uid string) *ecs.Event {
	return &ecs.Event{
		Timestamp: t0.Add(at),
		Event:     ecs.Meta{Category: ecs.CategoryProcess, Type: ecs.TypeStart},
		Process:   &ecs.Process{PID: pid, EntityID: fmt.Sprintf("b-%d-1", pid), Executable: exe, User: ecs.User{ID: uid, Name: "u" + uid}},
	}
}

// run feeds events to d and returns the indexes of those that fired.
func run(d detectors.Detector, evs []*ecs.Event) []int {
	var fired []int
	for i, ev := range evs {
		if _, ok := d.Detect(ev); ok {
			fired = append(fired, i)
		}
	}
	return fired
}

func TestMassFileChange(t *testing.T) {
	cfg := MassFileChangeConfig{Files: 50, Window: 10 * time.Second}
	var encrypt []*ecs.Event
	for i := 0; i < 120; i++ {
		encrypt = append(encrypt, fileEv(time.Duration(i)*50*time.Millisecond, "p1", fmt.Sprintf("/home/a/doc%d.txt", i), ecs.TypeChange))
	}
	fired := run(NewMassFileChange(cfg), encrypt)
	if len(fired) != 1 || fired[0] != 49 {
		t.Errorf("ransomware burst fired at %v, want once at event 49", fired)
	}
	// The same file rewritten many times is one file.
	var rewrite []*ecs.Event
	for i := 0; i < 200; i++ {
		rewrite = append(rewrite, fileEv(time.Duration(i)*10*time.Millisecond, "p2", "/var/log/app.log", ecs.TypeChange))
	}
	if f := run(NewMassFileChange(cfg), rewrite); len(f) != 0 {
		t.Errorf("one file rewritten fired at %v", f)
	}
	// Slow changes never fill a window.
	var slow []*ecs.Event
	for i := 0; i < 200; i++ {
		slow = append(slow, fileEv(time.Duration(i)*time.Second, "p3", fmt.Sprintf("/srv/f%d", i), ecs.TypeDeletion))
	}
	if f := run(NewMassFileChange(cfg), slow); len(f) != 0 {
		t.Errorf("one change a second fired at %v", f)
	}
	// Creations do not count; two processes do not add up.
	var mixed []*ecs.Event
	for i := 0; i < 100; i++ {
		mixed = append(mixed, fileEv(time.Duration(i)*time.Millisecond, "c", fmt.Sprintf("/src/o%d", i), ecs.TypeCreation))
		mixed = append(mixed, fileEv(time.Duration(i)*time.Millisecond, fmt.Sprintf("q%d", i%3), fmt.Sprintf("/src/m%d", i), ecs.TypeChange))
	}
	if f := run(NewMassFileChange(cfg), mixed); len(f) != 0 {
		t.Errorf("creations and split processes fired at %v", f)
	}
	// After a quiet window it fires again.
	var twice []*ecs.Event
	twice = append(twice, encrypt...)
	for i := 0; i < 60; i++ {
		twice = append(twice, fileEv(30*time.Second+time.Duration(i)*time.Millisecond, "p1", fmt.Sprintf("/home/a/x%d", i), ecs.TypeChange))
	}
	if f := run(NewMassFileChange(cfg), twice); len(f) != 2 {
		t.Errorf("two bursts 30s apart fired %v, want twice", f)
	}
}

// Files a process (or another) created moments before are work files,
// not data held to ransom: a build's or a test suite's temporary folder.
func TestMassFileChangeSparesNewFiles(t *testing.T) {
	cfg := MassFileChangeConfig{Files: 50, Window: 10 * time.Second, Fresh: time.Minute}
	renamed := func(ev *ecs.Event) *ecs.Event { ev.Event.Action = ecs.ActionRenamed; return ev }
	var churn, build, lockCopy, renameNew, renameOld, stale []*ecs.Event
	for i := 0; i < 200; i++ {
		at := time.Duration(i) * time.Millisecond
		path := fmt.Sprintf("/tmp/work/f%d", i)
		// One process writes and deletes its own temporary files.
		churn = append(churn,
			fileEv(at, "p1", path, ecs.TypeCreation),
			fileEv(at, "p1", path, ecs.TypeChange),
			fileEv(at+time.Millisecond, "p1", path, ecs.TypeDeletion))
		// A compiler writes them, the build tool removes its folder.
		build = append(build, fileEv(at, "compile", path, ecs.TypeCreation), fileEv(at, "compile", path, ecs.TypeChange))
		// Ransomware writes an encrypted copy, then deletes the original.
		lockCopy = append(lockCopy,
			fileEv(at, "p1", fmt.Sprintf("/home/a/doc%d.txt.locked", i), ecs.TypeCreation),
			fileEv(at, "p1", fmt.Sprintf("/home/a/doc%d.txt.locked", i), ecs.TypeChange),
			fileEv(at, "p1", fmt.Sprintf("/home/a/doc%d.txt", i), ecs.TypeDeletion))
		// Saving through a new file renamed into place renames a new file;
		// renaming files that were there before counts.
		renameNew = append(renameNew, fileEv(at, "p1", path+".tmp", ecs.TypeCreation), renamed(fileEv(at, "p1", path+".tmp", ecs.TypeChange)))
		renameOld = append(renameOld, renamed(fileEv(at, "p1", fmt.Sprintf("/home/a/doc%d.txt", i), ecs.TypeChange)))
		// Files made long ago count again.
		stale = append(stale, fileEv(at, "c", path, ecs.TypeCreation))
	}
	for i := 0; i < 200; i++ {
		build = append(build, fileEv(time.Second+time.Duration(i)*time.Millisecond, "go", fmt.Sprintf("/tmp/work/f%d", i), ecs.TypeDeletion))
		stale = append(stale, fileEv(2*time.Minute+time.Duration(i)*time.Millisecond, "p1", fmt.Sprintf("/tmp/work/f%d", i), ecs.TypeDeletion))
	}
	for _, tc := range []struct {
		name string
		evs  []*ecs.Event
		want []int
	}{
		{"own temporary files", churn, nil},
		{"a build's work folder", build, nil},
		{"encrypted copies, originals deleted", lockCopy, []int{3*49 + 2}},
		{"new files renamed into place", renameNew, nil},
		{"files renamed", renameOld, []int{49}},
		{"files created before the fresh period", stale, []int{200 + 49}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if f := run(NewMassFileChange(cfg), tc.evs); !slices.Equal(f, tc.want) {
				t.Errorf("fired at %v, want %v", f, tc.want)
			}
		})
	}
	// A path deleted and made again is new again.
	d := NewMassFileChange(cfg)
	for i := 0; i < 100; i++ {
		at := time.Duration(i) * 10 * time.Millisecond
		for _, ev := range []*ecs.Event{
			fileEv(at, "c", "/tmp/x", ecs.TypeCreation),
			fileEv(at, "c", "/tmp/x", ecs.TypeDeletion),
		} {
			if _, ok := d.Detect(ev); ok {
				t.Fatal("one path made and deleted again and again fired")
			}
		}
	}
	if n := d.created.len(); n != 0 {
		t.Errorf("%d deleted paths still remembered as new", n)
	}
}

func TestPortScan(t *testing.T) {
	cfg := PortScanConfig{Ports: 20, Hosts: 30, Window: time.Minute}
	var vertical []*ecs.Event
	for p := 1; p <= 100; p++ {
		vertical = append(vertical, connEv(time.Duration(p)*100*time.Millisecond, "/usr/bin/nc", "10.0.0.9", p))
	}
	if f := run(NewPortScan(cfg), vertical); len(f) != 1 || f[0] != 19 {
		t.Errorf("vertical scan fired at %v, want once at 19", f)
	}
	var sweep []*ecs.Event
	for h := 1; h <= 50; h++ {
		sweep = append(sweep, connEv(time.Duration(h)*100*time.Millisecond, "/tmp/sweep", fmt.Sprintf("10.0.1.%d", h), 22))
	}
	if f := run(NewPortScan(cfg), sweep); len(f) != 1 || f[0] != 29 {
		t.Errorf("horizontal sweep fired at %v, want once at 29", f)
	}
	var normal []*ecs.Event
	for i := 0; i < 500; i++ {
		normal = append(normal, connEv(time.Duration(i)*time.Second, "/usr/bin/curl", fmt.Sprintf("203.0.113.%d", i%5), 443))
	}
	if f := run(NewPortScan(cfg), normal); len(f) != 0 {
		t.Errorf("repeated connections to a few hosts fired at %v", f)
	}
	inbound := connEv(0, "/usr/sbin/sshd", "10.0.0.1", 22)
	inbound.Network.Direction = "ingress"
	if _, ok := NewPortScan(PortScanConfig{Ports: 1, Hosts: 1}).Detect(inbound); ok {
		t.Error("an inbound connection counted")
	}
}

func TestSpawnBurst(t *testing.T) {
	cfg := SpawnBurstConfig{Starts: 100, Window: 5 * time.Second}
	var bomb []*ecs.Event
	for i := 0; i < 300; i++ {
		bomb = append(bomb, startEv(time.Duration(i)*5*time.Millisecond, 1000+i, "/usr/bin/bash", "1000"))
	}
	if f := run(NewSpawnBurst(cfg), bomb); len(f) != 1 || f[0] != 99 {
		t.Errorf("fork bomb fired at %v, want once at 99", f)
	}
	var build []*ecs.Event
	for i := 0; i < 300; i++ {
		// A build: many compilers, but different users or slower.
		build = append(build, startEv(time.Duration(i)*100*time.Millisecond, 5000+i, "/usr/bin/cc", "1000"))
	}
	if f := run(NewSpawnBurst(cfg), build); len(f) != 0 {
		t.Errorf("ten starts a second fired at %v", f)
	}
	var users []*ecs.Event
	for i := 0; i < 300; i++ {
		users = append(users, startEv(time.Duration(i)*time.Millisecond, 9000+i, "/usr/bin/id", fmt.Sprint(i%4)))
	}
	if f := run(NewSpawnBurst(cfg), users); len(f) != 0 {
		t.Errorf("starts spread over four users fired at %v", f)
	}
}

func TestBeacon(t *testing.T) {
	cfg := BeaconConfig{Connections: 6, Jitter: 0.1}
	var steady []*ecs.Event
	jitter := []time.Duration{0, 800, -500, 300, -900, 600, 0, 200, -300, 100, 0, 0, 0, 0, 0, 0, 0}
	for i := 0; i < 16; i++ {
		steady = append(steady, connEv(time.Duration(i)*30*time.Second+jitter[i]*time.Millisecond, "/tmp/.x", "198.51.100.23", 443))
	}
	f := run(NewBeacon(cfg), steady)
	if len(f) != 2 || f[0] != 5 || f[1] != 12 {
		t.Errorf("30s beacon fired at %v, want at 5 and, six periods later, 12", f)
	}
	var irregular []*ecs.Event
	at := time.Duration(0)
	for i := 0; i < 30; i++ {
		at += time.Duration(5+(i*7)%40) * time.Second
		irregular = append(irregular, connEv(at, "/usr/bin/firefox", "203.0.113.5", 443))
	}
	if f := run(NewBeacon(cfg), irregular); len(f) != 0 {
		t.Errorf("irregular browsing fired at %v", f)
	}
	var fast []*ecs.Event
	for i := 0; i < 30; i++ {
		fast = append(fast, connEv(time.Duration(i)*100*time.Millisecond, "/usr/bin/app", "10.0.0.2", 5432))
	}
	if f := run(NewBeacon(cfg), fast); len(f) != 0 {
		t.Errorf("connections every 100ms (below MinPeriod) fired at %v", f)
	}
}

func TestFirstSeen(t *testing.T) {
	d := NewFirstSeen(FirstSeenConfig{Learning: time.Hour})
	evs := []*ecs.Event{
		startEv(0, 1, "/usr/bin/ls", "0"),
		startEv(10*time.Minute, 2, "/usr/bin/git", "0"),
		startEv(59*time.Minute, 3, "/usr/bin/new-in-learning", "0"),
		startEv(2*time.Hour, 4, "/usr/bin/ls", "0"),
		startEv(2*time.Hour, 5, "/tmp/dropper", "0"),
		startEv(3*time.Hour, 6, "/tmp/dropper", "0"),
		startEv(3*time.Hour, 7, "/usr/bin/new-in-learning", "0"),
	}
	f := run(d, evs)
	if len(f) != 1 || f[0] != 4 {
		t.Errorf("fired at %v, want only the dropper's first run (4)", f)
	}
	// A replaced binary (new hash) counts as new.
	a := startEv(4*time.Hour, 8, "/usr/bin/ls", "0")
	a.File = &ecs.File{Path: "/usr/bin/ls", Hash: &ecs.Hash{SHA256: "aa"}}
	if _, ok := d.Detect(a); !ok {
		t.Error("a new hash of a known path was not flagged")
	}
	// The injected clock dates events without a timestamp.
	now := t0
	d2 := NewFirstSeen(FirstSeenConfig{Learning: time.Minute, Now: func() time.Time { return now }})
	e := startEv(0, 1, "/bin/a", "0")
	e.Timestamp = time.Time{}
	d2.Detect(e)
	now = now.Add(2 * time.Minute)
	e2 := startEv(0, 2, "/bin/b", "0")
	e2.Timestamp = time.Time{}
	if _, ok := d2.Detect(e2); !ok {
		t.Error("with the injected clock past learning, a new executable was not flagged")
	}
}

func TestBoundedState(t *testing.T) {
	d := NewFirstSeen(FirstSeenConfig{Learning: time.Nanosecond, MaxKnown: 100})
	for i := 0; i < 10000; i++ {
		d.Detect(startEv(time.Duration(i)*time.Second, i, fmt.Sprintf("/bin/x%d", i), "0"))
	}
	if n := d.known.len(); n != 100 {
		t.Errorf("%d executables remembered, want the bound 100", n)
	}
	m := NewMassFileChange(MassFileChangeConfig{MaxProcesses: 10, Files: 5})
	for i := 0; i < 1000; i++ {
		m.Detect(fileEv(0, fmt.Sprintf("p%d", i), "/f", ecs.TypeChange))
	}
	if n := m.procs.len(); n != 10 {
		t.Errorf("%d processes tracked, want the bound 10", n)
	}
	m = NewMassFileChange(MassFileChangeConfig{MaxFresh: 10})
	for i := 0; i < 1000; i++ {
		m.Detect(fileEv(0, "p", fmt.Sprintf("/f%d", i), ecs.TypeCreation))
	}
	if n := m.created.len(); n != 10 {
		t.Errorf("%d new files remembered, want the bound 10", n)
	}
	b := newBurst()
	for i := 0; i < 10000; i++ {
		b.add(fmt.Sprint(i), t0, time.Hour, 50)
	}
	if len(b.q)-b.head != 50 || len(b.counts) != 50 {
		t.Errorf("burst counts %d/%d, want 50", len(b.q)-b.head, len(b.counts))
	}
	// Forgotten occurrences wait to be dropped in bulk, never more of
	// them than are counted.
	if len(b.q) > 2*50 {
		t.Errorf("burst holds %d occurrences, want at most 100", len(b.q))
	}
}

func TestRulesAreComplete(t *testing.T) {
	ids := map[string]bool{}
	for _, d := range All(nil) {
		r := d.Rule()
		if r.ID == "" || ids[r.ID] || r.Name == "" || r.Severity == "" || len(r.Tactics) == 0 || len(r.Techniques) == 0 || r.Author == "" {
			t.Errorf("incomplete rule %+v", r)
		}
		ids[r.ID] = true
	}
	// Findings from the Engine carry summaries.
	e := detectors.NewEngine(NewSpawnBurst(SpawnBurstConfig{Starts: 2}))
	e.Process(startEv(0, 1, "/bin/x", "0"))
	fs := e.Process(startEv(time.Millisecond, 2, "/bin/x", "0"))
	if len(fs) != 1 || !strings.Contains(fs[0].Summary, "/bin/x started 2 times") {
		t.Errorf("findings %+v", fs)
	}
}

// BenchmarkSpawnBurstStorm feeds SpawnBurst an exec storm: one program
// started 1,000 times a second by one user, so its window stays full
// and every start forgets the oldest.
func BenchmarkSpawnBurstStorm(b *testing.B) {
	d := NewSpawnBurst(SpawnBurstConfig{})
	evs := make([]*ecs.Event, 4096)
	for i := range evs {
		evs[i] = startEv(0, 1000+i, "/usr/bin/true", "0")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ev := evs[i%len(evs)]
		ev.Timestamp = t0.Add(time.Duration(i) * time.Millisecond)
		d.Detect(ev)
		i++
	}
}
