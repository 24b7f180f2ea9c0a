package sensor

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire constants of the netlink process connector, from the kernel's
// include/uapi/linux/{netlink,connector,cn_proc}.h. They are spelled out
// here rather than taken from golang.org/x/sys/unix so that the parser
// builds on every OS and is tested everywhere.
const (
	nlmsgHdrLen  = 16 // struct nlmsghdr
	cnMsgLen     = 20 // struct cn_msg, without data
	procEvHdrLen = 16 // struct proc_event up to event_data

	nlmsgNoop  = 0x1
	nlmsgError = 0x2

	cnIdxProc = 0x1
	cnValProc = 0x1

	procCnMcastListen = 1
	procCnMcastIgnore = 2
)

// procEventKind is proc_event.what.
type procEventKind uint32

// The proc_event kinds the sensor understands; others parse with their kind
// set and no data.
const (
	procEventNone procEventKind = 0x00000000 // acknowledgement of a listen/ignore request
	procEventFork procEventKind = 0x00000001
	procEventExec procEventKind = 0x00000002
	procEventExit procEventKind = 0x80000000
)

// procEvent is one decoded message of the process connector.
type procEvent struct {
	kind procEventKind
	cpu  uint32
	// ts is the kernel's CLOCK_MONOTONIC time of the event in nanoseconds.
	ts uint64

	// pid and tgid are the subject: the child of a fork, the process that
	// exec'd or exited. tgid is the process id, pid the thread id.
	pid, tgid int
	// ppid and ptgid are the forking task for a fork, and the parent for
	// an exit on kernels that report it (zero otherwise).
	ppid, ptgid int

	// exitCode is the wait(2) status of an exit; exitSignal the signal the
	// parent is sent (usually SIGCHLD).
	exitCode, exitSignal uint32

	// ack and ackErr are set for procEventNone: the acknowledged request's
	// cn_msg.ack plus one, and the errno of the request (0 on success).
	ack, ackErr uint32
}

// errShortMessage reports a message truncated before a field it declares.
var errShortMessage = errors.New("short process connector message")

// parseProcEvent decodes one datagram read from the process connector:
// a netlink header, a cn_msg and a proc_event, all in host byte order. The
// connector sends one event per datagram, so only the first netlink message
// is read. It never panics on malformed input.
func parseProcEvent(b []byte) (procEvent, error) {
	var ev procEvent
	ne := binary.NativeEndian
	if len(b) < nlmsgHdrLen {
		return ev, fmt.Errorf("parse netlink header: %w", errShortMessage)
	}
	msgLen := ne.Uint32(b[0:4])
	typ := ne.Uint16(b[4:6])
	if msgLen < nlmsgHdrLen || uint64(msgLen) > uint64(len(b)) {
		return ev, fmt.Errorf("parse netlink header: length %d outside 16..%d", msgLen, len(b))
	}
	body := b[nlmsgHdrLen:msgLen]
	switch typ {
	case nlmsgNoop:
		return ev, errors.New("parse netlink header: no-op message")
	case nlmsgError:
		if len(body) < 4 {
			return ev, fmt.Errorf("parse netlink error: %w", errShortMessage)
		}
		return ev, fmt.Errorf("netlink error message: errno %d", -int32(ne.Uint32(body[0:4])))
	}

	if len(body) < cnMsgLen {
		return ev, fmt.Errorf("parse connector header: %w", errShortMessage)
	}
	idx, val := ne.Uint32(body[0:4]), ne.Uint32(body[4:8])
	if idx != cnIdxProc || val != cnValProc {
		return ev, fmt.Errorf("parse connector header: callback %d.%d is not the process connector", idx, val)
	}
	ack := ne.Uint32(body[12:16])
	dataLen := int(ne.Uint16(body[16:18]))
	data := body[cnMsgLen:]
	if dataLen > len(data) {
		return ev, fmt.Errorf("parse connector header: data length %d exceeds %d: %w", dataLen, len(data), errShortMessage)
	}
	data = data[:dataLen]

	if len(data) < procEvHdrLen {
		return ev, fmt.Errorf("parse proc_event: %w", errShortMessage)
	}
	ev.kind = procEventKind(ne.Uint32(data[0:4]))
	ev.cpu = ne.Uint32(data[4:8])
	ev.ts = ne.Uint64(data[8:16])
	d := data[procEvHdrLen:]
	u32 := func(i int) uint32 { return ne.Uint32(d[4*i : 4*i+4]) }
	pid := func(i int) int { return int(int32(u32(i))) }

	switch ev.kind {
	case procEventNone:
		if len(d) < 4 {
			return ev, fmt.Errorf("parse ack event: %w", errShortMessage)
		}
		ev.ack = ack
		ev.ackErr = u32(0)
	case procEventFork:
		if len(d) < 16 {
			return ev, fmt.Errorf("parse fork event: %w", errShortMessage)
		}
		ev.ppid, ev.ptgid, ev.pid, ev.tgid = pid(0), pid(1), pid(2), pid(3)
	case procEventExec:
		if len(d) < 8 {
			return ev, fmt.Errorf("parse exec event: %w", errShortMessage)
		}
		ev.pid, ev.tgid = pid(0), pid(1)
	case procEventExit:
		// Kernels before 4.18 end the exit event after exit_signal.
		if len(d) < 16 {
			return ev, fmt.Errorf("parse exit event: %w", errShortMessage)
		}
		ev.pid, ev.tgid = pid(0), pid(1)
		ev.exitCode, ev.exitSignal = u32(2), u32(3)
		if len(d) >= 24 {
			ev.ppid, ev.ptgid = pid(4), pid(5)
		}
	}
	return ev, nil
}

// listenMessage builds the request that subscribes (op
// procCnMcastListen) or unsubscribes (procCnMcastIgnore) a connector
// socket. ack is echoed back, plus one, in the kernel's acknowledgement.
func listenMessage(op, ack uint32) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	ne.PutUint32(b[0:4], uint32(len(b)))
	ne.PutUint16(b[4:6], 0x3) // NLMSG_DONE: the connector's message type
	c := b[nlmsgHdrLen:]
	ne.PutUint32(c[0:4], cnIdxProc)
	ne.PutUint32(c[4:8], cnValProc)
	ne.PutUint32(c[12:16], ack)
	ne.PutUint16(c[16:18], 4)
	ne.PutUint32(c[20:24], op)
	return b
}

// exitStatus turns a wait(2) status into a shell-style exit code: the
// code for a normal exit, 128 plus the signal number for a kill.
func exitStatus(status uint32) int {
	if sig := status & 0x7f; sig != 0 {
		return 128 + int(sig)
	}
	return int(status>>8) & 0xff
}
