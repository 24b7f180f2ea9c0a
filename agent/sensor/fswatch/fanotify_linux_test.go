package fswatch

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// TestFanotifyNamesTheWriter has another process create, write, rename,
// chmod and delete files in a watched folder, on the root filesystem and
// on tmpfs, and checks that each event names it: its pid, executable,
// command line and entity id.
// writerEnv names the folder the test binary, run again, changes as the
// writer of TestFanotifyNamesTheWriter.
const writerEnv = "FSWATCH_TEST_WRITER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(writerEnv); dir != "" {
		if err := write(dir); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// write makes the writer's changes in dir: create, append, a new folder
// with a file, rename, chmod and delete; then, once told on its standard
// input, a write in the new folder; then it waits for its input to end.
func write(dir string) error {
	created, moved := filepath.Join(dir, "created"), filepath.Join(dir, "moved")
	key := filepath.Join(dir, "sub", "authorized_keys")
	steps := []func() error{
		func() error { return os.WriteFile(created, []byte("one\n"), 0o644) },
		func() error { return appendTo(created, "two\n") },
		func() error { return os.Mkdir(filepath.Join(dir, "sub"), 0o755) },
		func() error { return os.WriteFile(key, []byte("key\n"), 0o600) },
		func() error { return os.Rename(created, moved) },
		func() error { return os.Chmod(moved, 0o755|os.ModeSetuid) },
		func() error { return os.Remove(moved) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return fmt.Errorf("waiting to go on: %w", err)
	}
	if err := appendTo(key, "again\n"); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, in)
	return nil
}

func appendTo(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func TestFanotifyNamesTheWriter(t *testing.T) {
	if ok, _ := hasSysAdmin(); !ok {
		t.Skip("naming the process behind a change needs CAP_SYS_ADMIN: run the tests as root to check it")
	}
	roots := map[string]string{"disk": t.TempDir()}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		shm, err := os.MkdirTemp("/dev/shm", "fswatch-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(shm) })
		roots["tmpfs"] = shm
	}
	if dir, err := overlay(t); err != nil {
		t.Logf("no overlay filesystem to test on: %v", err)
	} else {
		roots["overlay"] = dir
	}
	for name, dir := range roots {
		t.Run(name, func(t *testing.T) { testFanotifyWriter(t, dir) })
	}
}

// overlay mounts an overlay filesystem, as container runtimes do, for
// the test's time.
func overlay(t *testing.T) (string, error) {
	base := t.TempDir()
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			return "", err
		}
	}
	merged := filepath.Join(base, "merged")
	opts := "lowerdir=" + filepath.Join(base, "lower") + ",upperdir=" + filepath.Join(base, "upper") + ",workdir=" + filepath.Join(base, "work")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mounting an overlay: %w", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting the overlay: %v", err)
		}
	})
	return merged, nil
}

func testFanotifyWriter(t *testing.T, dir string) {
	s, out := run(t, Options{Paths: []string{dir + "/..."}})
	if mode, reason := s.Mode(); mode != ModeFanotify || strings.Contains(reason, "refused") {
		t.Fatalf("mode %q (%s), want %q on every folder", mode, reason, ModeFanotify)
	}
	// The writer is this test binary run again (see TestMain), so every
	// change is made by one process. It waits on its standard input
	// before it exits, so procfs still knows it while its events are
	// read.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), writerEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer: %v", err)
		}
	}()
	pid := cmd.Process.Pid
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, ev ecs.Event) {
		t.Helper()
		p := ev.Process
		if ev.Event.Module != ModuleFanotify || p == nil || p.PID != pid || p.Executable != exe || p.Name != filepath.Base(exe) ||
			!strings.HasPrefix(p.CommandLine, os.Args[0]+" ") || !strings.HasPrefix(p.EntityID, bootID()+"-"+strconv.Itoa(pid)+"-") {
			t.Errorf("%s: module %q process %+v, want pid %d executable %s", what, ev.Event.Module, p, pid, exe)
		}
	}
	created, moved := filepath.Join(dir, "created"), filepath.Join(dir, "moved")
	// The events come in any order: creations wait for their hash.
	want := map[string]func(ecs.Event) bool{
		"creation":   is(created, ecs.TypeCreation, ActionCreated),
		"folder":     is(filepath.Join(dir, "sub"), ecs.TypeCreation, ActionCreated),
		"rename":     is(created, ecs.TypeChange, ActionRenamed),
		"new name":   is(moved, ecs.TypeCreation, ActionCreated),
		"attributes": is(moved, ecs.TypeChange, ActionAttributes),
		"deletion":   is(moved, ecs.TypeDeletion, ActionDeleted),
		// The key's creation, named by its writer or found by reading
		// the new folder (see below), so not checked: a write while it
		// still waits for its hash is merged into it, not reported.
		"key": is(filepath.Join(dir, "sub", "authorized_keys"), ecs.TypeCreation, ActionCreated),
	}
	timeout := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case ev := <-out:
			for what, match := range want {
				if match(ev) {
					if what != "key" {
						check(what, ev)
					}
					delete(want, what)
				}
			}
		case <-timeout:
			t.Fatalf("no events for %v", slices.Sorted(maps.Keys(want)))
		}
	}
	// The key may be written before the new folder is marked: then it is
	// found by reading the folder, and which process wrote it is not
	// known. Written again now, it is the writer's.
	if _, err := io.WriteString(stdin, "go on\n"); err != nil {
		t.Fatal(err)
	}
	check("write in the new folder", waitFor(t, out, "write in the new folder", is(filepath.Join(dir, "sub", "authorized_keys"), ecs.TypeChange, ActionUpdated)))
}

// TestFanotifyQueueFullCountsLoss stalls the sensor's consumer and checks
// that fanotify changes beyond the sensor's queue are dropped and counted
// as lost, and that the sensor still stops cleanly.
func TestFanotifyQueueFullCountsLoss(t *testing.T) {
	if ok, _ := hasSysAdmin(); !ok {
		t.Skip("fanotify needs CAP_SYS_ADMIN: run the tests as root to check its queue")
	}
	dir := t.TempDir()
	s, err := New(Options{Paths: []string{dir}, ChangeQueue: 4, HashMaxBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan ecs.Event) // never read: the loop stalls on its first event
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, out) }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if m, _ := s.Mode(); m == ModeFanotify {
			break
		} else if m != "" || time.Now().After(deadline) {
			cancel()
			t.Fatalf("mode %q, want %q", m, ModeFanotify)
		}
	}
	for i := 0; i < 200 && s.Stats().Lost == 0; i++ {
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); s.Stats().Lost == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Stats().Lost == 0 {
		t.Error("200 files created with the consumer stalled: nothing counted as lost")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestFanotifyMarksFollowTheirFolders checks the group's marks, as the
// kernel lists them in the descriptor's fdinfo: a folder renamed away,
// whose old path then names another watched folder, loses its own mark
// when it is forgotten (not the other's), and a removed folder is
// forgotten without error.
func TestFanotifyMarksFollowTheirFolders(t *testing.T) {
	if ok, _ := hasSysAdmin(); !ok {
		t.Skip("fanotify needs CAP_SYS_ADMIN: run the tests as root to check its marks")
	}
	n, err := newFanSource()
	if err != nil {
		t.Skipf("no fanotify group here: %v", err)
	}
	defer n.close()
	root := t.TempDir()
	watched, elsewhere := filepath.Join(root, "watched"), filepath.Join(root, "elsewhere")
	ino := map[string]uint64{}
	for _, d := range []string{"a", "b", "c"} {
		p := filepath.Join(watched, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		ino[d] = st.Ino
	}
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b", "c"} {
		if err := n.add(filepath.Join(watched, d)); err != nil {
			t.Skipf("this filesystem cannot be marked: %v", err)
		}
	}
	if got, want := marked(t, n), []uint64{ino["a"], ino["b"], ino["c"]}; !sameSet(got, want) {
		t.Fatalf("marked inodes %v after marking three folders, want %v", got, want)
	}
	// a is renamed out of the watched tree, and c takes its old name.
	if err := os.Rename(filepath.Join(watched, "a"), filepath.Join(elsewhere, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(watched, "c"), filepath.Join(watched, "a")); err != nil {
		t.Fatal(err)
	}
	n.remove(filepath.Join(watched, "a")) // the folder first marked there
	if got, want := marked(t, n), []uint64{ino["b"], ino["c"]}; !sameSet(got, want) {
		t.Errorf("marked inodes %v after forgetting the folder renamed away, want %v (b, and c under a's old name)", got, want)
	}
	// b is removed: its mark goes with it, and forgetting it is harmless.
	if err := os.Remove(filepath.Join(watched, "b")); err != nil {
		t.Fatal(err)
	}
	n.remove(filepath.Join(watched, "b"))
	n.remove(filepath.Join(watched, "c")) // c, now at a's old name
	if got := marked(t, n); len(got) != 0 {
		t.Errorf("marked inodes %v after forgetting every folder, want none", got)
	}

	// A folder renamed within the watched tree and marked under its new
	// path before its old one is forgotten keeps its mark and its path.
	d, e := filepath.Join(watched, "d"), filepath.Join(watched, "e")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := n.add(d); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(d, e); err != nil {
		t.Fatal(err)
	}
	if err := n.add(e); err != nil {
		t.Fatal(err)
	}
	n.remove(d)
	var st unix.Stat_t
	if err := unix.Stat(e, &st); err != nil {
		t.Fatal(err)
	}
	if got := marked(t, n); !sameSet(got, []uint64{st.Ino}) {
		t.Errorf("marked inodes %v after a rename within the tree, want %v", got, []uint64{st.Ino})
	}
	n.mu.Lock()
	_, known := n.dirs[n.paths[e]]
	n.mu.Unlock()
	if !known {
		t.Error("the renamed folder's events would be skipped: its handle no longer names it")
	}
}

// marked returns the inodes n's group has marks on, from the kernel's
// fdinfo of its descriptor ("fanotify ino:HEX ...").
func marked(t *testing.T, n *fanSource) []uint64 {
	t.Helper()
	var b []byte
	var err error
	if cerr := n.raw.Control(func(fd uintptr) {
		b, err = os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	}); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "fanotify ino:")
		if !ok {
			continue
		}
		hex, _, _ := strings.Cut(rest, " ")
		v, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			t.Fatalf("fdinfo line %q: %v", line, err)
		}
		out = append(out, v)
	}
	return out
}

func sameSet(a, b []uint64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
