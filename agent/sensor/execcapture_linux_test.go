package sensor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// runEBPF runs a sensor on its eBPF programs, skipping where they cannot
// load, and returns its events.
func runEBPF(t *testing.T) (*Process, <-chan ecs.Event) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("skipping: loading eBPF programs needs root")
	}
	p := NewProcess(Options{Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan ecs.Event, 4096)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if mode, reason := waitMode(t, p); mode != ModeEBPF {
		t.Skipf("skipping: eBPF capture unavailable here: %s: %s", mode, reason)
	}
	return p, out
}

// waitEvent returns the first event of type typ about pid.
func waitEvent(t *testing.T, out <-chan ecs.Event, typ string, pid int) ecs.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-out:
			if ev.Event.Type == typ && ev.Process != nil && ev.Process.PID == pid {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event for pid %d", typ, pid)
		}
	}
}

// A process reaped at once is reported in full from the kernel's
// records alone: resolved executable, argv, working directory, user,
// parent, entity id, and its end with the exit code.
func TestCaptureReapedProcess(t *testing.T) {
	p, out := runEBPF(t)
	dir := t.TempDir()
	marker := "cordon-ebpf-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	long := strings.Repeat("x", 3000) // past one page, under the 4 KiB cap
	cmd := exec.Command("/bin/sh", "-c", "exit 3", marker, long)
	cmd.Dir = dir
	if err := cmd.Run(); err == nil {
		t.Fatal("sh -c 'exit 3' succeeded")
	}
	pid := cmd.Process.Pid
	ev := waitEvent(t, out, ecs.TypeStart, pid)
	pr := ev.Process
	if !slices.Equal(pr.Args, []string{"/bin/sh", "-c", "exit 3", marker, long}) || pr.CommandLine != strings.Join(pr.Args, " ") {
		t.Errorf("args = %.80q, command line %.80q", pr.Args, pr.CommandLine)
	}
	want, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	if pr.Executable != want || pr.Name != filepath.Base(want) {
		t.Errorf("executable %q name %q, want %q", pr.Executable, pr.Name, want)
	}
	if pr.WorkingDirectory != dir {
		t.Errorf("working directory %q, want %q", pr.WorkingDirectory, dir)
	}
	if pr.Parent == nil || pr.Parent.PID != os.Getpid() {
		t.Errorf("parent %+v, want this test (pid %d)", pr.Parent, os.Getpid())
	}
	if !strings.HasPrefix(pr.EntityID, p.bootID+"-"+strconv.Itoa(pid)+"-") || pr.EntityID == p.bootID+"-"+strconv.Itoa(pid)+"-0" {
		t.Errorf("entity id %q", pr.EntityID)
	}
	if d := time.Since(pr.Start); d < 0 || d > time.Minute {
		t.Errorf("start %v is not a moment ago", pr.Start)
	}
	if pr.User.ID != "0" || ev.Event.Module != ModeEBPF {
		t.Errorf("user id %q module %q", pr.User.ID, ev.Event.Module)
	}
	end := waitEvent(t, out, ecs.TypeEnd, pid)
	if end.Process.ExitCode == nil || *end.Process.ExitCode != 3 || end.Process.EntityID != pr.EntityID {
		t.Errorf("end %+v, want exit code 3 and entity id %s", end.Process, pr.EntityID)
	}
	if p.Stats().Lost != 0 {
		t.Errorf("lost: %+v", p.Stats())
	}
}

// The kernel's record names a running process as /proc does, so events
// from either source name the same process; a working directory too deep
// for the record is completed from /proc.
func TestCaptureLiveProcess(t *testing.T) {
	p, out := runEBPF(t)
	dir := t.TempDir()
	for range 12 {
		dir = filepath.Join(dir, strings.Repeat("d", 30))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sleep", "5")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	pr := waitEvent(t, out, ecs.TypeStart, pid).Process
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	st, err := p.fs.stat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if want := p.bootID + "-" + strconv.Itoa(pid) + "-" + strconv.FormatUint(st.startTicks, 10); pr.EntityID != want {
		t.Errorf("entity id %q, want %q", pr.EntityID, want)
	}
	if !slices.Equal(pr.Args, []string{"/bin/sleep", "5"}) || pr.Executable != exe || pr.WorkingDirectory != dir {
		t.Errorf("event %+v, want executable %s and working directory %s", pr, exe, dir)
	}
	if a := p.Ancestry(pid); len(a) == 0 || a[0].PID != os.Getpid() {
		t.Errorf("ancestry %+v, want this test first", a)
	}
}

func TestNextPause(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		last  time.Duration
		bytes int
		since time.Duration
		want  time.Duration
	}{
		{"after a wait, however slow the records came", 0, 100, 10 * time.Second, captureTick},
		{"after a wait, however fast", 0, 4 << 20, ms, captureTick},
		{"a slow burst doubles the pause", 25 * ms, 10 << 10, 30 * ms, 50 * ms},
		{"up to the longest", 200 * ms, 10 << 10, 210 * ms, captureTickMax},
		{"no longer than pauseBytes take to gather", 100 * ms, 2 * pauseBytes, 100 * ms, 50 * ms},
		{"never shorter than the shortest", 100 * ms, 4 << 20, 100 * ms, captureTick},
		{"a pass that took no bytes", 50 * ms, 0, 60 * ms, 100 * ms},
	} {
		if got := nextPause(tc.last, tc.bytes, tc.since); got != tc.want {
			t.Errorf("%s: nextPause(%v, %d, %v) = %v, want %v", tc.name, tc.last, tc.bytes, tc.since, got, tc.want)
		}
	}
}
