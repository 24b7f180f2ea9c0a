package sensor

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordon-edr/cordon/protocol/ecs"
	"golang.org/x/sys/unix"
)

// TestNetlinkShortLived needs root: it checks that the connector mode sees
// processes that exit at once with their executable path and command line.
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

	// Without eBPF: this checks that /proc is read in time.
	p := NewProcess(Options{Logger: testLogger(t), NoEBPF: true})
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan ecs.Event, 1024)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, out) }()
	if mode, reason := waitMode(t, p); mode != "netlink" {
		cancel()
		t.Fatalf("Mode() = %q, %q; want netlink", mode, reason)
	}
	var events []ecs.Event
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for e := range out {
			events = append(events, e)
		}
	}()

	// The copies are started by a shell, as the sensor sees workloads in
	// production: a test binary that both starts them and runs the sensor
	// makes them compete for its scheduler.
	const runs = 20
	loop := exec.Command("/bin/sh", "-c", `i=0; while [ $i -lt `+strconv.Itoa(runs)+` ]; do "$0"; i=$((i+1)); done`, trueCopy)
	if err := loop.Run(); err != nil {
		t.Fatal(err)
	}
	// This shell lives long enough for /proc to be read under any load;
	// the race with processes that exit at once is the copies' part.
	sh := exec.Command("/bin/sh", "-c", "sleep 0.2; echo hi")
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
	var loopEvent, shEvent *ecs.Process
	for _, e := range events {
		pr := e.Process
		if e.Event.Module != "netlink" || e.Timestamp.Location() != time.UTC {
			t.Errorf("event %+v at %v", e.Event, e.Timestamp)
		}
		switch {
		case pr.PID == loop.Process.Pid && e.Event.Type == "start":
			loopEvent = pr
		case pr.PID == sh.Process.Pid && e.Event.Type == "start":
			shEvent = pr
		case pr.Parent != nil && pr.Parent.PID == loop.Process.Pid && e.Event.Type == "start":
			seen++
			if pr.Executable == trueCopy {
				withExe++
			}
		case pr.Parent != nil && pr.Parent.PID == loop.Process.Pid && e.Event.Type == "end":
			ended++
		}
	}
	t.Logf("%d/%d execs of a copy of /bin/true seen, %d with their executable, %d ended; stats %+v", seen, runs, withExe, ended, p.Stats())
	// The connector itself loses nothing; how many executables /proc still
	// had is a matter of load (measured by the exec-storm benchmark, with
	// eBPF closing the gap), but an exec whose details vanished must be
	// counted as lost, never dropped silently.
	if seen != runs || ended != runs {
		t.Errorf("saw %d/%d exec and %d/%d exit events, want all", seen, runs, ended, runs)
	}
	if lost := int(p.Stats().Lost); withExe+lost < runs {
		t.Errorf("%d execs with their executable and %d counted as lost, want %d together", withExe, lost, runs)
	}

	// Started by this Go test: the parent comes from the cache.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range []*ecs.Process{loopEvent, shEvent} {
		if pr == nil {
			t.Fatal("no start event for a shell started by the test")
		}
		if pr.Parent == nil || pr.Parent.PID != os.Getpid() || pr.Parent.EntityID == "" || pr.Parent.Executable != self {
			t.Errorf("parent of %s = %+v, want this test (%s)", pr.CommandLine, pr.Parent, self)
		}
		if pr.EntityID == "" || pr.Executable == "" || pr.WorkingDirectory == "" || pr.User.Name != "root" || pr.Start.IsZero() {
			t.Errorf("incomplete event %+v", pr)
		}
		if !strings.HasPrefix(pr.EntityID, p.bootID+"-"+strconv.Itoa(pr.PID)+"-") {
			t.Errorf("entity id %q", pr.EntityID)
		}
	}
	if want := []string{"/bin/sh", "-c", "sleep 0.2; echo hi"}; !slices.Equal(shEvent.Args, want) || shEvent.CommandLine != "/bin/sh -c sleep 0.2; echo hi" {
		t.Errorf("sh: args %q, command line %q", shEvent.Args, shEvent.CommandLine)
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

func TestWallClock(t *testing.T) {
	mono := func() uint64 {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
			t.Fatal(err)
		}
		return uint64(ts.Nano())
	}
	var c wallClock
	for _, ago := range []time.Duration{0, 5 * time.Second, time.Hour} {
		got := c.wall(mono() - uint64(ago))
		if d := time.Since(got.Add(ago)).Abs(); d > 50*time.Millisecond {
			t.Errorf("%v ago: wall = %v, %v off", ago, got, d)
		}
	}
	// A reading younger than wallClockAge serves without the clocks
	// being read again...
	c.offset -= int64(time.Hour)
	if got := c.wall(mono()); time.Since(got) < 59*time.Minute {
		t.Errorf("a fresh reading was not reused: wall = %v", got)
	}
	// ...and an older one is taken again, as after the wall clock was set.
	c.synced = c.synced.Add(-wallClockAge)
	if got := c.wall(mono()); time.Since(got).Abs() > 50*time.Millisecond {
		t.Errorf("an old reading was reused: wall = %v", got)
	}
}
