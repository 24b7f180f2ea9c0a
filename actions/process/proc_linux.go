package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cordon-edr/cordon/protocol/ecs"
)

// pfKthread is the PF_KTHREAD bit of the flags field of /proc/PID/stat.
const pfKthread = 0x00200000

// parseStat reads the fields of /proc/PID/stat that the checks use.
func parseStat(pid int, b []byte) (Info, error) {
	in := Info{PID: pid}
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return in, errors.New("parse stat: no command name in parentheses")
	}
	in.Comm = string(b[open+1 : end])
	f := bytes.Fields(b[end+1:])
	// Field N of stat(5) is f[N-3].
	const stateIdx, ppidIdx, flagsIdx, startIdx = 0, 1, 6, 19
	if len(f) <= startIdx {
		return in, fmt.Errorf("parse stat: %d fields after the command name, want at least %d", len(f), startIdx+1)
	}
	if len(f[stateIdx]) != 1 {
		return in, fmt.Errorf("parse stat: state %q", f[stateIdx])
	}
	in.State = f[stateIdx][0]
	var err error
	if in.PPID, err = strconv.Atoi(string(f[ppidIdx])); err != nil {
		return in, fmt.Errorf("parse stat ppid: %w", err)
	}
	flags, err := strconv.ParseUint(string(f[flagsIdx]), 10, 64)
	if err != nil {
		return in, fmt.Errorf("parse stat flags: %w", err)
	}
	if in.StartTicks, err = strconv.ParseUint(string(f[startIdx]), 10, 64); err != nil {
		return in, fmt.Errorf("parse stat starttime: %w", err)
	}
	in.Kernel = flags&pfKthread != 0
	return in, nil
}

// ErrGone is returned for a pid with no process.
var ErrGone = errors.New("no such process")

func readInfo(proc string, pid int) (Info, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", proc, pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Info{PID: pid}, fmt.Errorf("pid %d: %w", pid, ErrGone)
		}
		return Info{PID: pid}, fmt.Errorf("reading pid %d: %w", pid, err)
	}
	in, err := parseStat(pid, b)
	if err != nil {
		return in, fmt.Errorf("pid %d: %w", pid, err)
	}
	in.Exe, _ = os.Readlink(fmt.Sprintf("%s/%d/exe", proc, pid))
	in.Exe = strings.TrimSuffix(in.Exe, " (deleted)")
	return in, nil
}

// Controller signals processes on this host.
type Controller struct {
	policy Policy
	proc   string
	bootID string
}

// New returns a controller that protects the calling process, its
// ancestors and the protected executables or names.
func New(protected []string) (*Controller, error) {
	c := &Controller{proc: "/proc", policy: Policy{Self: os.Getpid(), Protected: protected}}
	for pid := os.Getppid(); pid > 1; {
		c.policy.Ancestors = append(c.policy.Ancestors, pid)
		in, err := readInfo(c.proc, pid)
		if err != nil {
			break
		}
		pid = in.PPID
	}
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil, fmt.Errorf("reading the boot id entity ids are built from: %w", err)
	}
	c.bootID = strings.TrimSpace(string(b))
	return c, nil
}

// EntityID returns the entity id of a process as the sensor computes it.
func (c *Controller) EntityID(in Info) string { return ecs.EntityID(c.bootID, in.PID, in.StartTicks) }

// target is one process held by a pidfd, so the signal reaches exactly
// the process that was checked.
type target struct {
	Info
	fd int
}

// open checks pid and holds it. The pidfd is opened first and the
// process read after: if what was read still has the start time wanted,
// the pidfd refers to it and not to a later process with the same pid.
func (c *Controller) open(pid int, startTicks uint64) (*target, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("pid %d: %w", pid, ErrGone)
		}
		return nil, fmt.Errorf("opening pid %d: %w", pid, err)
	}
	in, err := readInfo(c.proc, pid)
	if err == nil && startTicks != 0 && in.StartTicks != startTicks {
		err = fmt.Errorf("pid %d: %w: it is now another process", pid, ErrGone)
	}
	if err == nil {
		err = c.policy.Check(in)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &target{Info: in, fd: fd}, nil
}

func (t *target) close() { unix.Close(t.fd) }

func (t *target) signal(sig unix.Signal) error {
	if err := unix.PidfdSendSignal(t.fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil // it exited on its own
		}
		return fmt.Errorf("signalling pid %d: %w", t.PID, err)
	}
	return nil
}

// exited waits until the process has exited, at most until ctx ends.
func (t *target) exited(ctx context.Context) error {
	for {
		fds := []unix.PollFd{{Fd: int32(t.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting for pid %d to exit: %w", t.PID, err)
		}
		if n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("pid %d did not exit: %w", t.PID, ctx.Err())
		}
	}
}

// children returns the pids whose parent is pid.
func (c *Controller) children(pid int) []int {
	ents, err := os.ReadDir(c.proc)
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", c.proc, p))
		if err != nil {
			continue
		}
		if in, err := parseStat(p, b); err == nil && in.PPID == pid {
			out = append(out, p)
		}
	}
	return out
}

// Do carries out r and returns a short result.
func (c *Controller) Do(ctx context.Context, r Request) (string, error) {
	root, err := c.open(r.PID, 0)
	if err != nil {
		return "", err
	}
	defer root.close()
	if r.EntityID != "" {
		if got := c.EntityID(root.Info); got != r.EntityID {
			return "", fmt.Errorf("%w: pid %d is now %s (entity %s), not entity %s: the process exited and its pid was reused",
				ErrRefused, r.PID, orComm(root.Info), got, r.EntityID)
		}
	}
	targets := []*target{root}
	if r.Tree {
		// Stop the root first so it cannot fork while its tree is
		// collected (a resume continues it last, below).
		if r.Action != Resume {
			if err := root.signal(unix.SIGSTOP); err != nil {
				return "", err
			}
		}
		desc, err := c.descendants(root, r.Action != Resume)
		defer func() {
			for _, t := range desc {
				t.close()
			}
		}()
		if err != nil {
			if r.Action == Kill {
				// Leave nothing stopped because of a refused kill.
				for _, t := range append(desc, root) {
					t.signal(unix.SIGCONT)
				}
			}
			return "", err
		}
		targets = append(desc, root)
	}
	switch r.Action {
	case Kill:
		for _, t := range targets {
			if err := t.signal(unix.SIGKILL); err != nil {
				return "", err
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for _, t := range targets {
			if err := t.exited(wctx); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("killed %s", describe(c, targets)), nil
	case Suspend:
		for _, t := range targets {
			if err := t.signal(unix.SIGSTOP); err != nil {
				return "", err
			}
		}
		if err := c.waitState(ctx, targets, func(s byte) bool { return s == 'T' || s == 't' }); err != nil {
			return "", err
		}
		return fmt.Sprintf("suspended %s", describe(c, targets)), nil
	case Resume:
		for _, t := range targets {
			if err := t.signal(unix.SIGCONT); err != nil {
				return "", err
			}
		}
		if err := c.waitState(ctx, targets, func(s byte) bool { return s != 'T' && s != 't' }); err != nil {
			return "", err
		}
		return fmt.Sprintf("resumed %s", describe(c, targets)), nil
	}
	return "", fmt.Errorf("unknown process action %q", r.Action)
}

// descendants holds every descendant of root, stopping each as it is
// found when stop is set, so that none can fork past the walk.
func (c *Controller) descendants(root *target, stop bool) ([]*target, error) {
	var out []*target
	seen := map[int]bool{root.PID: true}
	queue := []int{root.PID}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		for _, pid := range c.children(parent) {
			if seen[pid] {
				continue
			}
			seen[pid] = true
			t, err := c.open(pid, 0)
			if errors.Is(err, ErrGone) {
				continue
			}
			if err != nil {
				return out, err
			}
			if stop {
				if err := t.signal(unix.SIGSTOP); err != nil {
					t.close()
					return out, err
				}
			}
			out = append(out, t)
			queue = append(queue, pid)
		}
	}
	return out, nil
}

// waitState waits until every target's state satisfies ok.
func (c *Controller) waitState(ctx context.Context, targets []*target, ok func(byte) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, t := range targets {
		for {
			in, err := readInfo(c.proc, t.PID)
			if errors.Is(err, ErrGone) || (err == nil && (in.StartTicks != t.StartTicks || ok(in.State) || in.State == 'Z')) {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("pid %d stayed in state %c", t.PID, in.State)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

func describe(c *Controller, targets []*target) string {
	root := targets[len(targets)-1]
	s := fmt.Sprintf("pid %d (%s, entity %s)", root.PID, orComm(root.Info), c.EntityID(root.Info))
	if n := len(targets) - 1; n > 0 {
		s += fmt.Sprintf(" and %d descendants", n)
	}
	return s
}
