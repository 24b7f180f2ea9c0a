package sensor

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userHZ is the unit of the clock-tick fields of /proc/PID/stat. The kernel
// fixes it at 100 for user space on every architecture Go supports.
const userHZ = 100

// procfs reads process details from a procfs tree rooted at root. Its
// methods may be called concurrently; they share one read buffer.
type procfs struct {
	root string

	mu  sync.Mutex
	buf []byte
}

func newProcfs(root string) *procfs {
	return &procfs{root: root, buf: make([]byte, 4096)}
}

// readFile reads path into the shared buffer; the caller holds p.mu and
// must copy what it keeps.
func (p *procfs) readFile(path string) ([]byte, error) {
	b, err := readFile(path, p.buf)
	p.buf = b[:cap(b)]
	return b, err
}

// readlink reads a symbolic link into the shared buffer; the caller
// holds p.mu. Unlike os.Readlink it allocates only the result.
func (p *procfs) readlink(path string) (string, error) {
	for {
		n, err := readlink(path, p.buf)
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: path, Err: err}
		}
		if n < len(p.buf) {
			return string(p.buf[:n]), nil
		}
		// Possibly truncated: try again with room to spare.
		p.buf = make([]byte, 2*len(p.buf))
	}
}

// procInfo is what procfs knows about one process.
type procInfo struct {
	pid  int
	exe  string
	args []string
	// cmdline is args joined by spaces, or "" to join them when needed.
	cmdline string
	cwd     string
	stat    statInfo
	// statOK is set when stat was read; stat is zero otherwise.
	statOK bool
	// uid is the effective user id, "" when unknown.
	uid string
}

// statInfo is the part of /proc/PID/stat the sensor uses.
type statInfo struct {
	comm       string
	ppid       int
	startTicks uint64 // start time in clock ticks since boot; 0 when unknown
}

// errGone reports a process that exited before its details were read.
var errGone = errors.New("process exited before it could be read")

func (p *procfs) path(pid int, name string) string {
	return p.root + "/" + strconv.Itoa(pid) + "/" + name
}

// read reads everything the sensor reports about pid, most perishable
// first: the exe and cwd links and the command line disappear when the
// process exits, stat and status stay until it is reaped. It returns what
// it could read, and errGone when the executable could not be read because
// the process no longer exists (or is a zombie); other failures are
// returned wrapped.
func (p *procfs) read(pid int) (procInfo, error) { return p.readSome(pid, true) }

// readSome is read, reading only the executable and the working
// directory when full is false (the caller has the rest from the kernel's
// record of the exec).
func (p *procfs) readSome(pid int, full bool) (procInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info := procInfo{pid: pid}
	var firstErr error
	note := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	exe, err := p.readlink(p.path(pid, "exe"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			note(fmt.Errorf("read executable of pid %d: %w", pid, errGone))
		} else {
			note(fmt.Errorf("read executable of pid %d: %w", pid, err))
		}
	}
	info.exe = exe
	if full {
		if b, err := p.readFile(p.path(pid, "cmdline")); err == nil {
			info.args = parseCmdline(b)
		}
	}
	if cwd, err := p.readlink(p.path(pid, "cwd")); err == nil {
		info.cwd = cwd
	}
	if !full {
		return info, firstErr
	}
	b, err := p.readFile(p.path(pid, "stat"))
	if err == nil {
		info.stat, err = parseStat(b)
	}
	if err != nil {
		info.stat = statInfo{}
		note(fmt.Errorf("read stat of pid %d: %w", pid, err))
	}
	info.statOK = err == nil
	if b, err := p.readFile(p.path(pid, "status")); err == nil {
		info.uid, _ = parseStatusUID(b)
	}
	return info, firstErr
}

// link reads the symbolic link name ("exe", "cwd") of pid.
func (p *procfs) link(pid int, name string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readlink(p.path(pid, name))
}

// cmdline reads the arguments of pid.
func (p *procfs) cmdline(pid int) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := p.readFile(p.path(pid, "cmdline"))
	if err != nil {
		return nil, err
	}
	return parseCmdline(b), nil
}

// stat reads only /proc/PID/stat.
func (p *procfs) stat(pid int) (statInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := p.readFile(p.path(pid, "stat"))
	if err != nil {
		return statInfo{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	st, err := parseStat(b)
	if err != nil {
		return statInfo{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	return st, nil
}

// pids lists the numeric entries of the root.
func (p *procfs) pids() ([]int, error) {
	ents, err := os.ReadDir(p.root)
	if err != nil {
		return nil, fmt.Errorf("list processes in %s: %w", p.root, err)
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// bootID reads the kernel's boot id.
func (p *procfs) bootID() (string, error) {
	b, err := os.ReadFile(p.root + "/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("read boot id: empty")
	}
	return id, nil
}

// bootTime reads the boot time from the btime line of the root's stat file.
func (p *procfs) bootTime() (time.Time, error) {
	b, err := os.ReadFile(p.root + "/stat")
	if err != nil {
		return time.Time{}, fmt.Errorf("read boot time: %w", err)
	}
	t, err := parseBootTime(b)
	if err != nil {
		return time.Time{}, fmt.Errorf("read boot time: %w", err)
	}
	return t, nil
}

// parseStat parses the content of /proc/PID/stat. The command name (field
// 2) is in parentheses and may itself contain spaces and parentheses, so
// the fields are counted from the last closing parenthesis.
func parseStat(b []byte) (statInfo, error) {
	var st statInfo
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return st, errors.New("parse stat: no command name in parentheses")
	}
	st.comm = string(b[open+1 : end])
	// Fields from 3 (state) on; field N is at index N-3.
	fields := bytes.Fields(b[end+1:])
	const ppidIdx, startIdx = 4 - 3, 22 - 3
	if len(fields) <= startIdx {
		return st, fmt.Errorf("parse stat: %d fields after the command name, want at least %d", len(fields), startIdx+1)
	}
	ppid, err := strconv.Atoi(string(fields[ppidIdx]))
	if err != nil {
		return st, fmt.Errorf("parse stat ppid: %w", err)
	}
	start, err := strconv.ParseUint(string(fields[startIdx]), 10, 64)
	if err != nil {
		return st, fmt.Errorf("parse stat starttime: %w", err)
	}
	st.ppid, st.startTicks = ppid, start
	return st, nil
}

// parseStatusUID returns the effective uid from the content of
// /proc/PID/status, whose Uid line lists the real, effective, saved and
// filesystem uids.
func parseStatusUID(b []byte) (string, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 2 {
			return "", errors.New("parse status: short Uid line")
		}
		if _, err := strconv.ParseUint(string(f[1]), 10, 32); err != nil {
			return "", fmt.Errorf("parse status Uid: %w", err)
		}
		return string(f[1]), nil
	}
	return "", errors.New("parse status: no Uid line")
}

// parseCmdline splits the content of /proc/PID/cmdline, NUL-separated
// arguments each ending in NUL, into its arguments. A process that rewrote
// its arguments without NULs yields one argument.
func parseCmdline(b []byte) []string {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// parseBootTime returns the btime line of /proc/stat as a UTC time.
func parseBootTime(b []byte) (time.Time, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("btime "))
		if !ok {
			continue
		}
		sec, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("parse btime: %w", err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Time{}, errors.New("parse stat: no btime line")
}

// ticksToTime converts a start time in clock ticks since boot to UTC.
func ticksToTime(boot time.Time, ticks uint64) time.Time {
	return boot.Add(time.Duration(ticks) * (time.Second / userHZ)).UTC()
}
