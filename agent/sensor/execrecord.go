package sensor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// Layout of struct header and struct event in bpf/execargs.c.
const (
	recordHeader  = 48
	recordPathLen = 256
	recordArgsMax = 4096
	// recordExecFixed is the part of an exec record before argv.
	recordExecFixed = recordHeader + 2*recordPathLen
	recordExecMax   = recordExecFixed + recordArgsMax
)

// Record kinds.
const (
	recordExec = 1
	recordFork = 2
	recordExit = 3
)

// Record flags.
const (
	flagArgsTruncated = 1 << iota
	flagExeTruncated
	flagCwdTruncated
	flagExeDeleted
)

// kernelRecord is the kernel's record of one fork, exec or exit, from the
// eBPF program.
type kernelRecord struct {
	kind uint32
	// pid is the process (tgid); ppid its parent (real_parent's tgid).
	pid, ppid int
	uid       uint32
	// ts is the kernel's CLOCK_MONOTONIC time of the event in
	// nanoseconds, like the process connector's.
	ts uint64
	// startBoot is the process's start time in nanoseconds since boot.
	startBoot uint64
	// exitCode is the wait(2) status of an exit.
	exitCode uint32

	// Exec records only. exe is the resolved executable ("" when the
	// kernel could not name it), cwd the working directory; cmdline is
	// args joined by spaces, and each argument a substring of it.
	exe, cwd                                  string
	args                                      []string
	cmdline                                   string
	argsTruncated, exeTruncated, cwdTruncated bool
}

// startTicks is the start time in the clock ticks of /proc/PID/stat.
func (r *kernelRecord) startTicks() uint64 { return r.startBoot / uint64(1e9/userHZ) }

// parseRecord decodes one ring buffer record of the eBPF program into r.
// It never panics on malformed input.
func parseRecord(b []byte, r *kernelRecord) error {
	if len(b) < recordHeader {
		return fmt.Errorf("kernel record of %d bytes, want at least %d", len(b), recordHeader)
	}
	ne := binary.NativeEndian
	*r = kernelRecord{
		kind:      ne.Uint32(b[0:]),
		pid:       int(int32(ne.Uint32(b[4:]))),
		ppid:      int(int32(ne.Uint32(b[8:]))),
		uid:       ne.Uint32(b[12:]),
		ts:        ne.Uint64(b[16:]),
		startBoot: ne.Uint64(b[24:]),
		exitCode:  ne.Uint32(b[32:]),
	}
	if r.pid <= 0 {
		return fmt.Errorf("kernel record with pid %d", r.pid)
	}
	switch r.kind {
	case recordFork, recordExit:
		return nil
	case recordExec:
	default:
		return fmt.Errorf("kernel record of pid %d: unknown kind %d", r.pid, r.kind)
	}
	if len(b) < recordExecFixed {
		return fmt.Errorf("exec record of pid %d: %d bytes, want at least %d", r.pid, len(b), recordExecFixed)
	}
	n := ne.Uint32(b[36:])
	if n > recordArgsMax || int(n) > len(b)-recordExecFixed {
		return fmt.Errorf("exec record of pid %d: argument length %d over the %d bytes of the record", r.pid, n, len(b)-recordExecFixed)
	}
	flags := b[40]
	r.argsTruncated = flags&flagArgsTruncated != 0
	r.exeTruncated = flags&flagExeTruncated != 0
	r.cwdTruncated = flags&flagCwdTruncated != 0
	r.exe = cString(b[recordHeader : recordHeader+recordPathLen])
	if flags&flagExeDeleted != 0 && r.exe != "" {
		r.exe += " (deleted)" // as /proc/PID/exe says it
	}
	r.cwd = cString(b[recordHeader+recordPathLen : recordExecFixed])
	r.cmdline, r.args = splitArgs(b[recordExecFixed : recordExecFixed+int(n)])
	return nil
}

// cString returns the bytes of b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// splitArgs splits NUL-separated arguments as parseCmdline does, with
// two allocations whatever their number: the command line (arguments
// joined by spaces) and the slice of arguments, each a substring of it.
func splitArgs(b []byte) (cmdline string, args []string) {
	b = bytes.TrimSuffix(b, []byte{0})
	if len(b) == 0 {
		return "", nil
	}
	n := bytes.Count(b, []byte{0}) + 1
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if c == 0 {
			c = ' '
		}
		sb.WriteByte(c)
	}
	cmdline = sb.String()
	args = make([]string, 0, n)
	start := 0
	for i, c := range b {
		if c == 0 {
			args = append(args, cmdline[start:i])
			start = i + 1
		}
	}
	return cmdline, append(args, cmdline[start:])
}
