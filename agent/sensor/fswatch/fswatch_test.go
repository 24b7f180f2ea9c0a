package fswatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// run starts a sensor on opts and returns its events channel; the sensor
// stops when the test ends.
func run(t *testing.T, opts Options) (*Sensor, <-chan ecs.Event) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan ecs.Event, 1024)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m, _ := s.Mode(); m != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sensor did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, out
}

// waitFor reads events until one matches, failing after a few seconds.
func waitFor(t *testing.T, out <-chan ecs.Event, what string, match func(ecs.Event) bool) ecs.Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-out:
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event for %s", what)
		}
	}
}

func is(path, typ, action string) func(ecs.Event) bool {
	return func(ev ecs.Event) bool {
		return ev.Event.Category == ecs.CategoryFile && ev.File != nil && ev.File.Path == path &&
			ev.Event.Type == typ && ev.Event.Action == action
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestLifecycle runs through a file's life with each source: fanotify
// beside fsnotify where it runs, and fsnotify alone.
func TestLifecycle(t *testing.T) {
	t.Run("default", func(t *testing.T) { testLifecycle(t, false) })
	t.Run("fsnotify", func(t *testing.T) { testLifecycle(t, true) })
}

func testLifecycle(t *testing.T, noFanotify bool) {
	dir := t.TempDir()
	s, out := run(t, Options{Paths: []string{dir + "/..."}, NoFanotify: noFanotify})
	mode, reason := s.Mode()
	module := ModuleFsnotify
	if mode == ModeFanotify {
		module = ModuleFanotify
	} else if !noFanotify {
		t.Logf("fanotify does not run here: %s", reason)
	}
	// byUs checks the process fanotify names: this test's.
	byUs := func(what string, ev ecs.Event) {
		t.Helper()
		if module != ModuleFanotify {
			if ev.Process != nil {
				t.Errorf("%s: process %+v from fsnotify", what, ev.Process)
			}
			return
		}
		if ev.Process == nil || ev.Process.PID != os.Getpid() || ev.Process.Executable == "" {
			t.Errorf("%s: process %+v, want pid %d with its executable", what, ev.Process, os.Getpid())
		}
	}

	f := filepath.Join(dir, "cron.job")
	content := []byte("* * * * * root /tmp/x\n")
	if err := os.WriteFile(f, content, 0o644); err != nil {
		t.Fatal(err)
	}
	ev := waitFor(t, out, "creation", is(f, ecs.TypeCreation, ActionCreated))
	if ev.Event.Module != module || ev.File.Name != "cron.job" || ev.File.Directory != dir {
		t.Errorf("creation event: %+v %+v", ev.Event, ev.File)
	}
	byUs("creation", ev)
	// The write may land before or after the hash: wait for the hash of
	// the full content, in the creation or a later change.
	if ev.File.Hash == nil || ev.File.Hash.SHA256 != sha(content) {
		waitFor(t, out, "hash of the content", func(ev ecs.Event) bool {
			return ev.File != nil && ev.File.Path == f && ev.File.Hash != nil && ev.File.Hash.SHA256 == sha(content)
		})
	}

	if err := os.Chmod(f, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	ev = waitFor(t, out, "attribute change", is(f, ecs.TypeChange, ActionAttributes))
	if ev.File.Mode != "4755" {
		t.Errorf("file.mode = %q after chmod 4755", ev.File.Mode)
	}
	byUs("attribute change", ev)
	if runtime.GOOS == "linux" && os.Getuid() == 0 && (ev.File.UID != "0" || ev.File.Owner != "root") {
		t.Errorf("owner = %q %q, want 0 root", ev.File.UID, ev.File.Owner)
	}

	g := filepath.Join(dir, "renamed.job")
	if err := os.Rename(f, g); err != nil {
		t.Fatal(err)
	}
	byUs("rename", waitFor(t, out, "rename", is(f, ecs.TypeChange, ActionRenamed)))
	byUs("new name", waitFor(t, out, "new name", is(g, ecs.TypeCreation, ActionCreated)))

	if err := os.Remove(g); err != nil {
		t.Fatal(err)
	}
	byUs("deletion", waitFor(t, out, "deletion", is(g, ecs.TypeDeletion, ActionDeleted)))
}

func TestNewFoldersAreWatched(t *testing.T) {
	dir := t.TempDir()
	_, out := run(t, Options{Paths: []string{dir + "/..."}})

	sub := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "folder a", is(filepath.Join(dir, "a"), ecs.TypeCreation, ActionCreated))
	// b may be created before a is watched: either way it is reported.
	waitFor(t, out, "folder b", is(sub, ecs.TypeCreation, ActionCreated))
	// Give the watch on b a moment to be set: a file created in it at
	// once is found by the walk or by the watch.
	f := filepath.Join(sub, "authorized_keys")
	if err := os.WriteFile(f, []byte("ssh-ed25519 AAAA attacker\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "file in new folder", is(f, ecs.TypeCreation, ActionCreated))
	time.Sleep(50 * time.Millisecond)
	if err := os.WriteFile(f, []byte("changed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ev := waitFor(t, out, "change in new folder", is(f, ecs.TypeChange, ActionUpdated))
	if ev.File.Hash == nil || ev.File.Hash.SHA256 != sha([]byte("changed\n")) {
		// A second write event may carry the final hash.
		waitFor(t, out, "final hash", func(ev ecs.Event) bool {
			return ev.File != nil && ev.File.Path == f && ev.File.Hash != nil && ev.File.Hash.SHA256 == sha([]byte("changed\n"))
		})
	}
}

func TestNonRecursiveAndExcluded(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "deep")
	state := filepath.Join(dir, "state")
	for _, d := range []string{deep, state} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	other := t.TempDir()
	_, out := run(t, Options{Paths: []string{dir, other + "/..."}, Exclude: []string{filepath.Join(other, "state")}})
	if err := os.Mkdir(filepath.Join(other, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(deep, "x"), filepath.Join(other, "state", "x"), filepath.Join(state, "x")} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The marker is written last: every event before it must be about
	// the folder's own entries.
	marker := filepath.Join(dir, "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-out:
			switch {
			case ev.File.Path == marker:
				return
			case strings.HasPrefix(ev.File.Path, deep+"/"):
				t.Errorf("event below a non-recursive watch: %+v", ev.File)
			case strings.HasPrefix(ev.File.Path, filepath.Join(other, "state")):
				t.Errorf("event in an excluded folder: %+v", ev.File)
			}
		case <-timeout:
			t.Fatal("no event for the marker")
		}
	}
}

func TestMissingPathIsRetried(t *testing.T) {
	dir := t.TempDir()
	later := filepath.Join(dir, "later")
	s, out := run(t, Options{Paths: []string{later + "/..."}, Retry: 20 * time.Millisecond})
	if _, reason := s.Mode(); !strings.Contains(reason, "missing: "+later) {
		t.Errorf("reason %q does not name the missing path", reason)
	}
	if err := os.Mkdir(later, 0o755); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, reason := s.Mode(); !strings.Contains(reason, "missing") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("missing path never picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f := filepath.Join(later, "x")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "file in the folder that appeared", is(f, ecs.TypeCreation, ActionCreated))
}

func TestGlobFolderAppears(t *testing.T) {
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, out := run(t, Options{Paths: []string{home + "/*", home + "/*/.ssh/..."}, Retry: time.Hour})
	ssh := filepath.Join(home, "alice", ".ssh")
	if err := os.Mkdir(ssh, 0o700); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, ".ssh created", is(ssh, ecs.TypeCreation, ActionCreated))
	time.Sleep(50 * time.Millisecond)
	keys := filepath.Join(ssh, "authorized_keys")
	if err := os.WriteFile(keys, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "authorized_keys", is(keys, ecs.TypeCreation, ActionCreated))
}

func TestHashCap(t *testing.T) {
	dir := t.TempDir()
	_, out := run(t, Options{Paths: []string{dir}, HashMaxBytes: 8})
	small, big := filepath.Join(dir, "small"), filepath.Join(dir, "big")
	if err := os.WriteFile(small, []byte("12345678"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "small file hashed", func(ev ecs.Event) bool {
		return ev.File.Path == small && ev.File.Hash != nil && ev.File.Hash.SHA256 == sha([]byte("12345678"))
	})
	if err := os.WriteFile(big, []byte("123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	ev := waitFor(t, out, "big file", func(ev ecs.Event) bool {
		return ev.File.Path == big && ev.File.Size != nil && *ev.File.Size == 9
	})
	if ev.File.Hash != nil {
		t.Errorf("file over the cap hashed: %+v", ev.File.Hash)
	}
}

func TestHashQueue(t *testing.T) {
	q := newHashQueue(2)
	now := time.Now()
	if !q.push(hashItem{path: "/a", typ: ecs.TypeChange, action: ActionUpdated, at: now}) ||
		!q.push(hashItem{path: "/a", typ: ecs.TypeCreation, action: ActionCreated, at: now}) ||
		!q.push(hashItem{path: "/b", typ: ecs.TypeChange, action: ActionUpdated, at: now}) {
		t.Fatal("push refused below the cap")
	}
	if q.push(hashItem{path: "/c", typ: ecs.TypeChange, action: ActionUpdated, at: now}) {
		t.Error("push accepted past the cap")
	}
	if !q.push(hashItem{path: "/b", typ: ecs.TypeChange, action: ActionUpdated, at: now}) {
		t.Error("a write to a waiting path must merge even when the queue is full")
	}
	it, ok := q.pop(<-q.ch)
	if !ok || it.path != "/a" || it.typ != ecs.TypeCreation {
		t.Errorf("first item = %+v, %v; want /a merged into a creation", it, ok)
	}
	q.close()
	if q.push(hashItem{path: "/d"}) {
		t.Error("push accepted after close")
	}
}

func TestModeString(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{
		{0o644, "0644"},
		{0o755 | os.ModeSetuid, "4755"},
		{0o755 | os.ModeSetgid, "2755"},
		{0o777 | os.ModeSticky | os.ModeDir, "1777"},
	} {
		if got := modeString(tc.mode); got != tc.want {
			t.Errorf("modeString(%v) = %q, want %q", tc.mode, got, tc.want)
		}
	}
}

// A change whose writer the process sensor did not know when it was read
// asks again for its lineage, once; a known one is not asked again.
func TestCompleteProcessLineage(t *testing.T) {
	asked := 0
	known := false
	s, err := New(Options{Paths: []string{t.TempDir()}, Lineage: func(pid int) ([]ecs.Parent, bool) {
		asked++
		if !known {
			return nil, false
		}
		return []ecs.Parent{{PID: 20, Executable: "/bin/sh"}, {PID: 10, Executable: "/usr/sbin/nginx"}}, true
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := &ecs.Process{PID: 30, Executable: "/usr/bin/touch"}
	from := origin{module: ModuleFanotify, proc: p, read: time.Now().Add(-time.Second)}
	from.lineage = s.lineage(p)
	if from.lineage || p.Parent != nil {
		t.Fatalf("lineage of an unknown writer = %v, %+v", from.lineage, p.Parent)
	}
	known = true
	got := s.completeProcess(context.Background(), from)
	if !got.lineage || got.proc.Parent == nil || got.proc.Parent.Executable != "/bin/sh" ||
		len(got.proc.Ancestry) != 1 || got.proc.Ancestry[0].Executable != "/usr/sbin/nginx" {
		t.Fatalf("completed process = %+v, want parent /bin/sh, ancestry nginx", got.proc)
	}
	if p.Parent != nil {
		t.Error("completeProcess changed the process it was given")
	}
	asked = 0
	if again := s.completeProcess(context.Background(), got); asked != 0 || again.proc != got.proc {
		t.Errorf("a known lineage was asked again (%d times)", asked)
	}
}

// On a loaded host the process sensor can be further behind than
// attributionWait: while it says it is busy with a burst, a change whose
// writer it does not know yet asks again, up to attributionMax; once it
// is idle, or without Busy, the change asks once.
func TestCompleteProcessWaitsForABusySensor(t *testing.T) {
	for _, tc := range []struct {
		name      string
		busy      func() bool
		knownAt   int  // the ask that finds the writer
		pidOnly   bool // before that, the writer is known but its parent only by pid
		wantKnown bool
		wantAsks  int
	}{
		{"busy, then known", func() bool { return true }, 4, false, true, 4},
		{"busy, the parent by pid, then known", func() bool { return true }, 3, true, true, 3},
		{"idle: asked once", func() bool { return false }, 4, false, false, 1},
		{"no Busy: asked once", nil, 4, false, false, 1},
		{"busy, never known: gives up", func() bool { return true }, 1000, false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := 0
			s, err := New(Options{Paths: []string{t.TempDir()}, Busy: tc.busy, Lineage: func(pid int) ([]ecs.Parent, bool) {
				asked++
				if asked < tc.knownAt && tc.pidOnly {
					return []ecs.Parent{{PID: 20}}, true
				}
				if asked < tc.knownAt {
					return nil, false
				}
				return []ecs.Parent{{PID: 20, Executable: "/bin/sh"}}, true
			}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got := s.completeProcess(context.Background(), origin{module: ModuleFanotify, proc: &ecs.Process{PID: 30}, read: start})
			took := time.Since(start)
			if got.lineage != tc.wantKnown || (got.proc.Parent != nil && got.proc.Parent.Executable != "") != tc.wantKnown {
				t.Errorf("lineage %v, parent %+v; want known %v", got.lineage, got.proc.Parent, tc.wantKnown)
			}
			if tc.wantAsks > 0 && asked != tc.wantAsks {
				t.Errorf("asked %d times, want %d", asked, tc.wantAsks)
			}
			if tc.wantAsks == 0 && (took < attributionMax || took > 10*attributionMax) {
				t.Errorf("gave up after %s, want about %s", took, attributionMax)
			}
		})
	}
}

// A watched root that is removed and made again is watched again by the
// retry, though it is neither missing at start nor a glob.
func TestRemovedRootIsWatchedAgain(t *testing.T) {
	root := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	_, out := run(t, Options{Paths: []string{root + "/..."}, Retry: 20 * time.Millisecond})
	if err := os.Remove(root); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "root removed", is(root, ecs.TypeDeletion, ActionDeleted))
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	// The new folder is watched by the next retry; until then a write in
	// it goes unseen, so write until one is seen.
	f := filepath.Join(root, "dropper")
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		if err := os.WriteFile(f, []byte{byte(i)}, 0o755); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-out:
			if ev.File != nil && ev.File.Path == f {
				return
			}
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no event from the root made again")
		}
	}
}

// The retry does not walk the trees it already watches again: their new
// folders come as events.
func TestRetryLeavesWatchedTreesAlone(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"etc/a/b", "home/alice/.ssh"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := run(t, Options{Paths: []string{dir + "/etc/...", dir + "/home/*/.ssh/..."}, Retry: 10 * time.Millisecond})
	before := s.walks.Load()
	if before < 2 {
		t.Fatalf("%d trees walked at start, want 2", before)
	}
	time.Sleep(300 * time.Millisecond)
	if n := s.walks.Load(); n != before {
		t.Errorf("%d trees walked again in 30 retries of watched trees", n-before)
	}
	// A new glob match is still walked.
	if err := os.MkdirAll(filepath.Join(dir, "home/bob/.ssh/x"), 0o755); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.walks.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("the new glob match was never walked")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
