package slack

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Apply makes d the timer slack of every thread of the process. When the
// process runs with d or more already (a service manager may set more),
// it returns nil. Otherwise it sets the calling thread's slack and
// executes the running program again with the same arguments and
// environment, in the same process, whose threads then all start with
// d: on success it does not return. It returns an error when d is not
// positive, when the slack cannot be set, or when the program, executed
// again, still runs without it; the caller goes on without the slack
// then.
func Apply(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("timer slack %v: must be positive", d)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("reading the timer slack: %w", err)
	}
	_, again := os.LookupEnv(execMarker)
	os.Unsetenv(execMarker)
	if time.Duration(cur) >= d {
		return nil
	}
	if again {
		return fmt.Errorf("the timer slack is %v after executing the agent again with %v", time.Duration(cur), d)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(d.Nanoseconds()), 0, 0, 0); err != nil {
		return fmt.Errorf("setting the timer slack to %v: %w", d, err)
	}
	env := append(os.Environ(), execMarker+"=1")
	err = syscall.Exec("/proc/self/exe", os.Args, env)
	// Still here: the exec failed. This thread's slack stays; the
	// others' cannot be had.
	return fmt.Errorf("executing the agent again to set its timer slack: %w", err)
}
