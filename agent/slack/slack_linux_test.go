package slack

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary run TestApplyHelper as a program of
// its own.
const helperEnv = "CORDON_SLACK_HELPER"

// helperSlack is the slack the helper asks for.
const helperSlack = 3 * time.Millisecond

// TestApplyHelper is not a test: run by TestApplyExecutesAgain, it
// applies helperSlack and prints what its threads and a child have.
func TestApplyHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("run by TestApplyExecutesAgain")
	}
	fmt.Printf("start pid=%d\n", os.Getpid())
	if err := Apply(helperSlack); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	// The threads that run goroutines: lock goroutines to as many as
	// there are, and more.
	var mu sync.Mutex
	var slacks []int
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			s, _ := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
			mu.Lock()
			slacks = append(slacks, s)
			mu.Unlock()
			<-release
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	leader, _ := os.ReadFile("/proc/self/timerslack_ns")
	child, _ := exec.Command("cat", "/proc/self/timerslack_ns").Output()
	fmt.Printf("applied pid=%d leader=%s child=%s threads=%v marker=%q\n", os.Getpid(),
		strings.TrimSpace(string(leader)), strings.TrimSpace(string(child)), slacks, os.Getenv(execMarker))
	os.Exit(0)
}

func TestApplyExecutesAgain(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestApplyHelper$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var starts []string
	var applied string
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "start "):
			starts = append(starts, l)
		case strings.HasPrefix(l, "applied "):
			applied = l
		}
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	if len(starts) != 2 || starts[0] != "start pid="+pid || starts[1] != starts[0] {
		t.Errorf("want the helper started twice in process %s, once to set the slack and once with it; got %q\n%s", pid, starts, out)
	}
	ns := strconv.FormatInt(helperSlack.Nanoseconds(), 10)
	want := fmt.Sprintf("applied pid=%s leader=%s child=%s threads=[%s] marker=\"\"", pid, ns, ns,
		strings.TrimSpace(strings.Repeat(ns+" ", 8)))
	if applied != want {
		t.Errorf("helper printed\n%q\nwant\n%q\n%s", applied, want, out)
	}
}

func TestApplyDoesNotLoop(t *testing.T) {
	cur, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(execMarker, "1")
	err = Apply(time.Duration(cur) + time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "after executing the agent again") {
		t.Errorf("Apply after an exec that did not keep the slack: %v, want an error saying so", err)
	}
	if _, ok := os.LookupEnv(execMarker); ok {
		t.Errorf("%s is still set: the agent's children would inherit it", execMarker)
	}
}

func TestApplyKeepsALargerSlack(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	const larger = 5 * time.Millisecond
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(larger), 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0)
	// Were Apply to execute the program again, this test binary would
	// start over instead of returning here.
	if err := Apply(time.Millisecond); err != nil {
		t.Fatalf("Apply(1ms) with a 5 ms slack: %v", err)
	}
	if got, _ := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0); got != int(larger) {
		t.Errorf("slack %d ns after Apply(1ms), want the 5 ms set before", got)
	}
}

func TestApplyRefusesNonPositive(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Millisecond} {
		if err := Apply(d); err == nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("Apply(%v) = %v, want an error saying it must be positive", d, err)
		}
	}
}
