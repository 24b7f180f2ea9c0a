package sensor

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// TestNetlinkShortLived needs root: it checks that the connector mode sees
// a process that exits at once with its executable path and command line.
func TestNetlinkShortLived(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("skipping: the netlink process connector needs root; run this test as root")
	}
	shm, err := os.Stat("/dev/shm")
	if err != nil || !shm.IsDir() {
		t.Skip("skipping: no /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "cordon-sensor-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	trueCopy := filepath.Join(dir, "true")
	copyFile(t, "/bin/true", trueCopy)

	p := NewProcess(Options{Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan ecs.Event, 1024)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, out) }()
	if mode, reason := waitMode(t, p); mode != "netlink" {
		cancel()
		t.Fatalf("Mode() = %q, %q; want netlink", mode, reason)
	}

	var (
		mu     sync.Mutex
		events []ecs.Event
	)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for e := range out {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}
	}()

	const runs = 20
	pids := make(map[int]bool)
	for range runs {
		cmd := exec.Command(trueCopy)
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pids[cmd.Process.Pid] = true
	}
	sh := exec.Command("/bin/sh", "-c", "echo hi")
	if b, err := sh.Output(); err != nil || string(b) != "hi\n" {
		t.Fatalf("sh: %q, %v", b, err)
	}

	time.Sleep(500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
	close(out)
	<-collected

	var seen, withExe, ended int
	var shEvent *ecs.Process
	for _, e := range events {
		pr := e.Process
		switch {
		case pr.PID == sh.Process.Pid && e.Event.Type == "start":
			shEvent = pr
		case pids[pr.PID] && e.Event.Type == "start":
			seen++
			if pr.Executable == trueCopy {
				withExe++
			}
			if pr.Parent == nil || pr.Parent.PID != os.Getpid() {
				t.Errorf("parent of %d = %+v, want this test", pr.PID, pr.Parent)
			}
			if e.Event.Module != "netlink" || e.Timestamp.Location() != time.UTC {
				t.Errorf("event %+v at %v", e.Event, e.Timestamp)
			}
		case pids[pr.PID] && e.Event.Type == "end":
			ended++
		}
	}
	t.Logf("%d/%d execs of a copy of /bin/true seen, %d with their executable, %d ended; stats %+v", seen, runs, withExe, ended, p.Stats())
	if withExe < runs-1 {
		t.Errorf("saw %d/%d execs with executable %s, want at least %d", withExe, runs, trueCopy, runs-1)
	}
	if shEvent == nil {
		t.Fatal("no start event for /bin/sh -c \"echo hi\"")
	}
	if want := []string{"/bin/sh", "-c", "echo hi"}; !slices.Equal(shEvent.Args, want) || shEvent.CommandLine != "/bin/sh -c echo hi" {
		t.Errorf("sh: args %q, command line %q", shEvent.Args, shEvent.CommandLine)
	}
	if shEvent.EntityID == "" || shEvent.Executable == "" || shEvent.User.Name != "root" {
		t.Errorf("sh event = %+v", shEvent)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
