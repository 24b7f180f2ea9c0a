package sensor

import (
	"encoding/binary"
	"testing"
)

// procMsg builds a process connector datagram the way the kernel does:
// nlmsghdr, cn_msg, proc_event header, then the event data as 32-bit
// words.
func procMsg(kind procEventKind, ts uint64, words ...uint32) []byte {
	return procMsgAck(kind, ts, 0, words...)
}

func procMsgAck(kind procEventKind, ts uint64, ack uint32, words ...uint32) []byte {
	ne := binary.NativeEndian
	data := make([]byte, procEvHdrLen+4*len(words))
	ne.PutUint32(data[0:4], uint32(kind))
	ne.PutUint32(data[4:8], 1) // cpu
	ne.PutUint64(data[8:16], ts)
	for i, w := range words {
		ne.PutUint32(data[procEvHdrLen+4*i:], w)
	}
	b := make([]byte, nlmsgHdrLen+cnMsgLen+len(data))
	ne.PutUint32(b[0:4], uint32(len(b)))
	ne.PutUint16(b[4:6], 3) // NLMSG_DONE
	c := b[nlmsgHdrLen:]
	ne.PutUint32(c[0:4], cnIdxProc)
	ne.PutUint32(c[4:8], cnValProc)
	ne.PutUint32(c[12:16], ack)
	ne.PutUint16(c[16:18], uint16(len(data)))
	copy(c[cnMsgLen:], data)
	return b
}

func forkMsg(ts uint64, parent, child int) []byte {
	return procMsg(procEventFork, ts, uint32(parent), uint32(parent), uint32(child), uint32(child))
}

func execMsg(ts uint64, pid int) []byte {
	return procMsg(procEventExec, ts, uint32(pid), uint32(pid))
}

func exitMsg(ts uint64, pid, tgid int, status uint32, parent int) []byte {
	return procMsg(procEventExit, ts, uint32(pid), uint32(tgid), status, 17, uint32(parent), uint32(parent))
}

func TestParseProcEvent(t *testing.T) {
	ne := binary.NativeEndian
	corrupt := func(b []byte, f func([]byte)) []byte { f(b); return b }
	tests := []struct {
		name    string
		in      []byte
		want    procEvent
		wantErr bool
	}{
		{
			name: "fork",
			in:   procMsg(procEventFork, 1e9, 10, 11, 20, 20),
			want: procEvent{kind: procEventFork, cpu: 1, ts: 1e9, ppid: 10, ptgid: 11, pid: 20, tgid: 20},
		},
		{
			name: "exec",
			in:   execMsg(42, 20),
			want: procEvent{kind: procEventExec, cpu: 1, ts: 42, pid: 20, tgid: 20},
		},
		{
			name: "exit with parent",
			in:   exitMsg(43, 21, 20, 0x0100, 10),
			want: procEvent{kind: procEventExit, cpu: 1, ts: 43, pid: 21, tgid: 20, exitCode: 0x0100, exitSignal: 17, ppid: 10, ptgid: 10},
		},
		{
			name: "exit without parent (before 4.18)",
			in:   procMsg(procEventExit, 44, 20, 20, 9, 17),
			want: procEvent{kind: procEventExit, cpu: 1, ts: 44, pid: 20, tgid: 20, exitCode: 9, exitSignal: 17},
		},
		{
			name: "ack",
			in:   procMsgAck(procEventNone, 0, 8, 1),
			want: procEvent{kind: procEventNone, cpu: 1, ack: 8, ackErr: 1},
		},
		{
			name: "unknown kind parses without data",
			in:   procMsg(0x200, 45, 20, 20, 0x41414141, 0x41414141, 0x41414141, 0x41414141),
			want: procEvent{kind: 0x200, cpu: 1, ts: 45},
		},
		{
			name: "trailing padding ignored",
			in:   append(execMsg(46, 30), 0, 0, 0, 0),
			want: procEvent{kind: procEventExec, cpu: 1, ts: 46, pid: 30, tgid: 30},
		},
		{name: "empty", in: nil, wantErr: true},
		{name: "short header", in: make([]byte, 15), wantErr: true},
		{name: "length beyond buffer", in: corrupt(execMsg(1, 2), func(b []byte) { ne.PutUint32(b, 1000) }), wantErr: true},
		{name: "length below header", in: corrupt(execMsg(1, 2), func(b []byte) { ne.PutUint32(b, 8) }), wantErr: true},
		{name: "noop", in: corrupt(execMsg(1, 2), func(b []byte) { ne.PutUint16(b[4:], nlmsgNoop) }), wantErr: true},
		{name: "netlink error", in: corrupt(execMsg(1, 2), func(b []byte) { ne.PutUint16(b[4:], nlmsgError) }), wantErr: true},
		{name: "other connector", in: corrupt(execMsg(1, 2), func(b []byte) { ne.PutUint32(b[16:], 7) }), wantErr: true},
		{name: "data length beyond message", in: corrupt(execMsg(1, 2), func(b []byte) { ne.PutUint16(b[32:], 200) }), wantErr: true},
		{name: "short proc_event", in: procMsg(procEventExec, 1)[:nlmsgHdrLen+cnMsgLen+8], wantErr: true},
		{name: "short exec", in: procMsg(procEventExec, 1, 5), wantErr: true},
		{name: "short fork", in: procMsg(procEventFork, 1, 5, 5, 6), wantErr: true},
		{name: "short exit", in: procMsg(procEventExit, 1, 5, 5, 0), wantErr: true},
		{name: "short ack", in: procMsg(procEventNone, 1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcEvent(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseProcEvent() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("parseProcEvent() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestListenMessage(t *testing.T) {
	ne := binary.NativeEndian
	b := listenMessage(procCnMcastListen, 77)
	if len(b) != 40 || ne.Uint32(b[0:4]) != 40 || ne.Uint16(b[4:6]) != 3 {
		t.Fatalf("bad netlink header: % x", b[:16])
	}
	c := b[nlmsgHdrLen:]
	if ne.Uint32(c[0:4]) != cnIdxProc || ne.Uint32(c[4:8]) != cnValProc || ne.Uint32(c[12:16]) != 77 ||
		ne.Uint16(c[16:18]) != 4 || ne.Uint32(c[20:24]) != procCnMcastListen {
		t.Fatalf("bad connector message: % x", c)
	}
}

func TestExitStatus(t *testing.T) {
	for _, tt := range []struct {
		status uint32
		want   int
	}{
		{0, 0},
		{1 << 8, 1},
		{255 << 8, 255},
		{9, 137},            // SIGKILL
		{0x80 | 11, 139},    // SIGSEGV with core dump
		{0x7f | 19<<8, 255}, // stopped (never an exit); still bounded
	} {
		if got := exitStatus(tt.status); got != tt.want {
			t.Errorf("exitStatus(%#x) = %d, want %d", tt.status, got, tt.want)
		}
	}
}

func FuzzParseProcEvent(f *testing.F) {
	f.Add(forkMsg(1, 10, 20))
	f.Add(execMsg(2, 20))
	f.Add(exitMsg(3, 20, 20, 0, 10))
	f.Add(procMsg(procEventExit, 4, 20, 20, 9, 17))
	f.Add(procMsgAck(procEventNone, 0, 8, 0))
	f.Add(listenMessage(procCnMcastListen, 1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := parseProcEvent(b)
		if err != nil {
			return
		}
		if len(b) < nlmsgHdrLen+cnMsgLen+procEvHdrLen {
			t.Fatalf("accepted a %d-byte message", len(b))
		}
		switch ev.kind {
		case procEventFork, procEventExec, procEventExit, procEventNone:
		default:
			if ev.pid != 0 || ev.tgid != 0 {
				t.Fatalf("unknown kind %#x decoded data: %+v", ev.kind, ev)
			}
		}
	})
}
