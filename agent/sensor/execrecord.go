package sensor

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Layout of struct exec_event in bpf/execargs.c.
const (
	execRecordNameLen = 256
	execRecordArgsMax = 4096
	execRecordHeader  = 32
	execRecordLen     = execRecordHeader + execRecordNameLen + execRecordArgsMax
)

// execRecord is the kernel's record of one exec, from the eBPF program.
type execRecord struct {
	pid, ppid int
	uid       uint32
	// startBoot is the process's start time in nanoseconds since boot.
	startBoot uint64
	filename  string
	args      []string
	truncated bool
}

// startTicks is the start time in the clock ticks of /proc/PID/stat.
func (r execRecord) startTicks() uint64 { return r.startBoot / uint64(1e9/userHZ) }

// parseExecRecord decodes one ring buffer record of the eBPF program.
func parseExecRecord(b []byte) (execRecord, error) {
	const fixed = execRecordHeader + execRecordNameLen
	if len(b) < fixed {
		return execRecord{}, fmt.Errorf("exec record of %d bytes, want at least %d", len(b), fixed)
	}
	ne := binary.NativeEndian
	r := execRecord{
		pid:       int(int32(ne.Uint32(b[0:]))),
		ppid:      int(int32(ne.Uint32(b[4:]))),
		uid:       ne.Uint32(b[8:]),
		startBoot: ne.Uint64(b[16:]),
		truncated: b[24] != 0,
	}
	n := ne.Uint32(b[12:])
	if n > execRecordArgsMax || int(n) > len(b)-fixed {
		return execRecord{}, fmt.Errorf("exec record of pid %d: argument length %d over the %d bytes of the record", r.pid, n, len(b)-fixed)
	}
	if r.pid <= 0 {
		return execRecord{}, fmt.Errorf("exec record with pid %d", r.pid)
	}
	name := b[execRecordHeader : execRecordHeader+execRecordNameLen]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	r.filename = string(name)
	r.args = parseCmdline(b[fixed : fixed+int(n)])
	return r, nil
}
